"""ReSV float reference (model/reference/resv.py) and the block traces (model/stimulus/traces.py)."""

import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from model.reference.clustering import leader_cluster
from model.config import PRESETS
from model.reference.resv import (ResvHead, exact_wicsum, hash_keys, make_hyperplanes, quantize_scores,
                        wicsum_select, wicsum_threshold)
from model.stimulus.traces import buffer_trace, hcu_trace, wtu_trace
from model.stimulus.workload import WORKLOADS, StreamingWorkload

EDGE = PRESETS["edge"]
TINY = PRESETS["tiny"]


# Hashing --------------------------------------------------------------------------------------

def test_hash_bit_order():
    # worked by hand: hyperplane 0 = x axis -> bit 0 (LSB), hyperplane 1 = y axis -> bit 1;
    # a projection of exactly 0 gives bit 0.
    keys = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [2.0, 3.0], [0.0, 0.0]])
    planes = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert hash_keys(keys, planes).tolist() == [1, 0, 2, 3, 0]


def test_hash_uses_all_64_bits():
    planes = np.eye(64)
    assert hash_keys(np.ones((1, 64)), planes).tolist() == [2 ** 64 - 1]
    with pytest.raises(ValueError, match="must agree on d"):
        hash_keys(np.ones((1, 3)), planes)


def test_hyperplanes_are_seeded_per_head():
    first = make_hyperplanes(32, 128, 0, 3, 5)
    assert first.shape == (32, 128)
    assert np.array_equal(first, make_hyperplanes(32, 128, 0, 3, 5))
    assert not np.allclose(first, make_hyperplanes(32, 128, 0, 3, 4))
    with pytest.raises(ValueError, match="hash_bits must be at most 64"):
        make_hyperplanes(65, 8, 0, 0, 0)
    with pytest.raises(ValueError, match="seed must be an integer of at least 0, not -1"):
        make_hyperplanes(32, 8, -1, 0, 0)
    with pytest.raises(TypeError, match="layer must be an integer, not 0.5"):
        make_hyperplanes(32, 8, 0, 0.5, 0)


# Score quantization ----------------------------------------------------------------------------

def test_quantize_scores_worked_by_hand():
    # head_dim 1: s = floor(exp(logit - max) * (2**bits - 1) + 0.5); bits 4 (max 15):
    # logits [0, ln(7.6/15), ln(7.4/15), -50] -> [15, 7.6 -> 8, 7.4 -> 7, 0]
    logits = np.array([[0.0, math.log(7.6 / 15), math.log(7.4 / 15), -50.0]])
    assert quantize_scores(logits, 4, 1).tolist() == [[15, 8, 7, 0]]
    # the row maximum sets the scale: shifting a row changes nothing
    assert quantize_scores(logits + 100.0, 4, 1).tolist() == [[15, 8, 7, 0]]
    # head_dim 4 divides by sqrt(4) = 2: logit 2 ln(7.6/15) -> 7.6 -> 8
    assert quantize_scores(np.array([0.0, 2 * math.log(7.6 / 15)]), 4, 4).tolist() == [15, 8]
    assert quantize_scores(np.zeros((2, 0)), 4, 1).shape == (2, 0)
    assert quantize_scores(logits, 4, 1).dtype == np.uint64
    with pytest.raises(ValueError, match="score_bits must be an integer from 1 to 63"):
        quantize_scores(logits, 0, 1)


# Exact WiCSum ----------------------------------------------------------------------------------

def with_code(code):
    return EDGE.replace(wicsum_ratio_code=code)


# worked by hand: scores [10, 20, 5, 20], counts [1, 2, 3, 1] -> weights [10, 40, 15, 20], W = 85
WORKED_SCORES = np.array([10, 20, 5, 20])
WORKED_COUNTS = np.array([1, 2, 3, 1])


@pytest.mark.parametrize("code,threshold,expected", [
    # T = (85 * 128 + 128) >> 8 = 43: the two score-20 clusters give 60 >= 43
    (128, 43, [False, True, False, True]),
    # T = (85 * 192 + 128) >> 8 = 64: 60 < 64, add score 10 -> 70 >= 64
    (192, 64, [True, True, False, True]),
    # T = (85 * 180 + 128) >> 8 = 60: 60 reaches T exactly, so score 10 is not needed
    (180, 60, [False, True, False, True]),
    # T = (85 * 183 + 128) >> 8 = 61: 60 < 61, score 10 is needed
    (183, 61, [True, True, False, True]),
    # ratio 1: T = W = 85 -> every positive score
    (256, 85, [True, True, True, True]),
    # ratio 0: T = 0 -> nothing
    (0, 0, [False, False, False, False]),
])
def test_exact_wicsum_worked_by_hand(code, threshold, expected):
    config = with_code(code)
    assert wicsum_threshold(85, config) == threshold
    assert exact_wicsum(WORKED_SCORES, WORKED_COUNTS, config).tolist() == expected
    assert wicsum_select(WORKED_SCORES[None], WORKED_COUNTS, config)[0].tolist() == expected


def test_exact_wicsum_rounding_and_zero_threshold():
    # W = 1: ratio 128/256 -> T = (128 + 128) >> 8 = 1 (half rounds up) -> selected;
    # ratio 77/256 -> T = (77 + 128) >> 8 = 0 -> nothing selected
    assert exact_wicsum([1], [1], with_code(128)).tolist() == [True]
    assert exact_wicsum([1], [1], with_code(77)).tolist() == [False]
    # a zero score is never selected, even at ratio 1 (worked by hand: W = 5, T = 5)
    assert exact_wicsum([5, 0], [1, 9], with_code(256)).tolist() == [True, False]
    assert exact_wicsum(np.zeros(0, int), np.zeros(0, int), EDGE).tolist() == []


def test_exact_wicsum_rejects_out_of_range_inputs():
    with pytest.raises(ValueError, match=r"scores must be from 0 to 255, found 0 to 256"):
        exact_wicsum([0, 256], [1, 1], TINY)
    with pytest.raises(ValueError, match=r"counts must be from 0 to 255"):
        exact_wicsum([1, 1], [1, 300], TINY)
    with pytest.raises(ValueError, match=r"clusters must be at most max_clusters \(64\)"):
        exact_wicsum(np.ones(65, int), np.ones(65, int), TINY)
    with pytest.raises(ValueError, match="must agree"):
        exact_wicsum([1, 1], [1], TINY)


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_exact_wicsum_properties(data):
    config = TINY.replace(wicsum_ratio_code=data.draw(st.integers(0, 256)))
    clusters = data.draw(st.integers(1, 24))
    scores = np.array(data.draw(st.lists(st.integers(0, 255), min_size=clusters,
                                         max_size=clusters)))
    counts = np.array(data.draw(st.lists(st.integers(0, 255), min_size=clusters,
                                         max_size=clusters)))
    selected = exact_wicsum(scores, counts, config)
    weights = scores * counts
    threshold = (int(weights.sum()) * config.wicsum_ratio_code + 128) >> 8
    assert np.array_equal(wicsum_select(scores[None], counts, config)[0], selected)
    if threshold == 0:
        assert not selected.any()
        return
    # closed under "higher or equal score"
    lowest = scores[selected].min()
    assert np.array_equal(selected, scores >= lowest)
    # reaches the threshold, and dropping the lowest selected value would not
    assert weights[selected].sum() >= threshold
    assert weights[scores > lowest].sum() < threshold


# The incremental float model -------------------------------------------------------------------

def test_resv_head_matches_leader_clustering_and_means():
    wcfg = WORKLOADS["tiny"]
    stream = StreamingWorkload(wcfg)
    planes = make_hyperplanes(TINY.hash_bits, wcfg.head_dim, 0, 0, 1)
    head = ResvHead(TINY, wcfg.head_dim, planes, 8)     # capacity grows as needed
    steps = [head.step(frame.keys, frame.queries) for frame in stream.stream(0, 1, 12)]
    keys = stream.keys(0, 1, 12)
    cluster, _, _ = leader_cluster(hash_keys(keys, planes), TINY.hamming_threshold,
                                   TINY.hash_mem_entries, TINY.max_clusters)
    assert np.array_equal(head.token_cluster, cluster)
    means = np.array([keys[cluster == c].mean(axis=0) for c in range(head.clusters)])
    assert np.allclose(head.representatives(), means)
    last = steps[-1]
    assert last.scores.shape == (wcfg.query_rows, head.clusters)
    assert np.array_equal(last.selected, last.row_selected.any(axis=0))
    past = 11 * wcfg.tokens_per_frame
    assert last.retrieved.shape == (past,)
    assert last.retrieved[past - TINY.recent_window:].all()
    assert np.array_equal(last.retrieved[:past - TINY.recent_window],
                          last.selected[cluster[:past - TINY.recent_window]])


# Traces ----------------------------------------------------------------------------------------

def test_hcu_trace_hashes_the_workload_keys():
    trace = hcu_trace(EDGE, frames=6, seed=3, layer=1, kv_head=1)
    wcfg = WORKLOADS["tiny"].replace(seed=3, frames=6)
    keys = StreamingWorkload(wcfg).keys(1, 1, 6)
    expected = hash_keys(keys, make_hyperplanes(EDGE.hash_bits, wcfg.head_dim, 3, 1, 1))
    assert np.array_equal(trace["hashes"], expected)
    assert int(hcu_trace(TINY)["hashes"].max()) < 2 ** TINY.hash_bits


@pytest.mark.parametrize("config", [TINY, EDGE], ids=["tiny", "edge"])
def test_wtu_and_buffer_traces_fit_the_config(config):
    wtu = wtu_trace(config, seed=1)
    rows, clusters = wtu["scores"].shape
    assert rows <= config.max_rows and 1 <= clusters <= config.max_clusters
    assert int(wtu["scores"].max()) == config.max_score          # every row has its maximum
    assert int(wtu["counts"].max()) <= config.max_count and wtu["counts"].min() >= 1
    buffer = buffer_trace(config, seed=1)
    assert np.array_equal(buffer["count"], wtu["counts"])
    assert np.array_equal(buffer["scores"], wtu["scores"].max(axis=0))
    assert buffer["base"].tolist() == [int(sum(wtu["counts"][:c])) for c in range(clusters)]
    expected = np.zeros(clusters, bool)
    for row in wtu["scores"]:
        expected |= exact_wicsum(row, wtu["counts"], config)
    assert np.array_equal(buffer["selected"], expected)


def test_traces_reject_what_does_not_fit():
    small = TINY.replace(hash_mem_entries=2, max_clusters=2, hcu_lanes=2, topk_k=2,
                         hcu_tokens_in_flight=2, wtu_lanes=1)
    with pytest.raises(ValueError, match=r"frames=40 does not fit the configuration"):
        wtu_trace(small, frames=40)
    with pytest.raises(ValueError, match=r"has 44 query rows per frame but max_rows is 8"):
        wtu_trace(TINY, frames=2, workload="default")
    with pytest.raises(ValueError, match="workload must be one of"):
        hcu_trace(TINY, workload="nope")


def test_wtu_trace_of_the_default_workload_on_edge():
    wtu = wtu_trace(EDGE, frames=30, workload="default", layer=2, kv_head=7)
    assert wtu["scores"].shape[0] == WORKLOADS["default"].query_rows
    assert int(wtu["counts"].sum()) == 30 * WORKLOADS["default"].tokens_per_frame


def test_resv_head_errors():
    with pytest.raises(ValueError, match=r"hyperplanes must have shape \(16, 32\)"):
        ResvHead(TINY, 32, np.zeros((16, 8)), 10)
    head = ResvHead(TINY, 32, np.ones((16, 32)), 10)
    with pytest.raises(ValueError, match="undo_last: nothing to undo"):
        head.undo_last()
