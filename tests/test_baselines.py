"""Peer retrieval rules (model/evaluation/baselines.py): hand-worked selections and budgets."""

import numpy as np
import pytest

from model.evaluation.baselines import (BASELINES, QUEST_PAGE, SINK_TOKENS, RetrievalProblem, full,
                             infinigen, quest, rekv, streamingllm, topk_oracle)


def problem(keys, queries, frame_of_token, budget, window=0, probabilities=None):
    return RetrievalProblem(np.asarray(keys, float), np.asarray(queries, float),
                            np.asarray(frame_of_token), budget, window, probabilities)


def test_full_and_streamingllm():
    p = problem(np.zeros((20, 2)), np.ones((1, 2)), np.arange(20) // 5, budget=10, window=3)
    assert full(p).all()
    # worked by hand: 4 sinks + the most recent 10 - 4 = 6 tokens
    expected = np.zeros(20, bool)
    expected[:SINK_TOKENS] = True
    expected[14:] = True
    assert np.array_equal(streamingllm(p), expected)


def test_rekv_picks_frames_by_mean_key():
    # worked by hand: 3 frames of 2 tokens; frame means . q (q = mean of rows = [1, 0]):
    # frame 0 mean [0, 1] -> 0; frame 1 mean [2, 0] -> 2; frame 2 mean [1, 0] -> 1.
    keys = [[0, 1], [0, 1], [2, 0], [2, 0], [1, 0], [1, 0]]
    queries = [[2, 0], [0, 0]]
    p = problem(keys, queries, [0, 0, 1, 1, 2, 2], budget=2)
    assert rekv(p).tolist() == [False, False, True, True, False, False]
    # budget 3 rounds up to whole frames: frames 1 and 2
    p.budget = 3
    assert rekv(p).tolist() == [False, False, True, True, True, True]


def test_quest_page_bound():
    # two pages of 16 tokens; page 0 has channel 0 from -1 to 1, page 1 from 0 to 0.5
    keys = np.zeros((2 * QUEST_PAGE, 2))
    keys[0, 0], keys[1, 0] = -1.0, 1.0
    keys[QUEST_PAGE, 0] = 0.5
    # worked by hand, q = [-3, 0]: page 0 bound max(-3*-1, -3*1) = 3; page 1 max(0, -1.5) = 0
    p = problem(keys, [[-3.0, 0.0]], np.arange(2 * QUEST_PAGE), budget=QUEST_PAGE)
    assert quest(p).tolist() == [True] * QUEST_PAGE + [False] * QUEST_PAGE
    # q = [1, 0]: page 0 bound 1 > page 1 bound 0.5 -> page 0
    p.queries = np.array([[1.0, 0.0]])
    assert quest(p)[:QUEST_PAGE].all() and not quest(p)[QUEST_PAGE:].any()


def test_infinigen_budget_is_the_mean_count_above_max_minus_alpha():
    # one channel of 4 (head_dim 4, 25% -> 1 skewed channel: channel 2 has the largest |k|);
    # scaled scores q.k/sqrt(4) = [10, 9, 1, 0] for q = [0, 0, 2, 0]; alpha 5 -> 2 tokens above
    keys = np.zeros((4, 4))
    keys[:, 2] = [10, 9, 1, 0]
    p = problem(keys, [[0, 0, 2, 0]], np.arange(4), budget=0)
    assert infinigen(p).tolist() == [True, True, False, False]


def test_topk_oracle_and_window():
    probabilities = np.array([[0.1, 0.5, 0.05, 0.3, 0.05]])
    p = problem(np.zeros((5, 2)), np.ones((1, 2)), np.arange(5), budget=3, window=1,
                probabilities=probabilities)
    # the window keeps token 4; the two largest others are tokens 1 and 3
    assert topk_oracle(p).tolist() == [False, True, False, True, True]
    p.probabilities = None
    with pytest.raises(ValueError, match="topk_oracle needs"):
        topk_oracle(p)


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_every_method_keeps_the_window_and_handles_an_empty_cache(name):
    rng = np.random.default_rng(1)
    keys = rng.standard_normal((50, 8))
    p = problem(keys, rng.standard_normal((4, 8)), np.arange(50) // 5, budget=20, window=10,
                probabilities=np.full((4, 50), 0.02))
    mask = BASELINES[name](p)
    assert mask.shape == (50,) and mask[40:].all()
    if name not in ("full", "infinigen"):
        assert 20 <= mask.sum() <= 20 + QUEST_PAGE
    empty = problem(np.zeros((0, 8)), np.ones((1, 8)), np.zeros(0, int), budget=0, window=4,
                    probabilities=np.zeros((1, 0)))
    assert BASELINES[name](empty).shape == (0,)
