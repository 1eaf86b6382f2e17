"""Tests of the retrieval buffer's numpy twin (:mod:`model.twins.retrieval_buffer`) and file interface."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from model.config import PRESETS
from model.stimulus.buffer_problems import make_problem, random_problem
from model.twins.retrieval_buffer import (MODE_DYNAMIC, MODE_TOPK, kept_clusters, merge_ranges,
                                          retrieve, run_arrays)
from model.stimulus.traces import buffer_trace
from sim.run import main as run_main

TINY = PRESETS["tiny"]  # topk_k = 4, kv_token_bits = 10, count_bits = 8, score_bits = 8


def run(config, scores, counts, selected=None, mode=MODE_DYNAMIC, gaps=None):
    return retrieve(config, **make_problem(scores, counts, selected, gaps, mode))


def descriptors(result):
    return list(zip(result["desc_base"].tolist(), result["desc_len"].tolist()))


# Directed cases, worked by hand from the contract in the module docstring ----------------------

def test_topk_ties_go_to_lower_index():
    # scores 5 7 7 3, counts 2 each -> bases 0 2 4 6; k = 2 keeps clusters 1 and 2 (both 7),
    # ranges [2, 4) and [4, 6) merge into (2, 4); cycles = 4 beats + 1 insertion + 2 sort
    # rounds (one per kept) + 2 kept + 1 drain pipeline + 2 flush.
    result = run(TINY.replace(topk_k=2), [5, 7, 7, 3], [2, 2, 2, 2], mode=MODE_TOPK)
    assert descriptors(result) == [(2, 4)]
    assert result["cycles"] == 12
    # all equal, k = 1: the lowest index wins.
    result = run(TINY.replace(topk_k=1), [4, 4, 4], [3, 1, 1], mode=MODE_TOPK)
    assert descriptors(result) == [(0, 3)]


def test_topk_k_at_least_clusters_keeps_every_candidate():
    # k = 64 >= 3 clusters; cluster 1 not selected: ranges [0, 1) and [3, 6) stay apart.
    result = run(TINY.replace(topk_k=64), [1, 2, 3], [1, 2, 3], selected=[1, 0, 1],
                 mode=MODE_TOPK)
    assert descriptors(result) == [(0, 1), (3, 3)]
    # beats, insertion, sort rounds (one per kept), kept, drain pipeline, flush
    assert result["cycles"] == 2 + 1 + 2 + 2 + 1 + 2


def test_dynamic_keeps_every_candidate_and_merges():
    # gaps 0 0 1 0: bases 0 2 5 6 for counts 2 3 1 1 -> [0, 5) merged, [5, 7) merged.
    result = run(TINY, [1, 9, 3, 3], [2, 3, 1, 1], gaps=[0, 0, 0, 0])
    assert descriptors(result) == [(0, 7)]
    result = run(TINY, [1, 9, 3, 3], [2, 3, 1, 1], gaps=[0, 1, 0, 0])
    assert descriptors(result) == [(0, 2), (3, 5)]
    assert result["cycles"] == 4 + 2  # pass-through: beats + 2


def test_budget_prefix_rule_drops_later_smaller_clusters():
    # scores 9 8 7, counts 3 5 1, budget 4: cluster 0 (total 3) kept, cluster 1 (total 8)
    # exceeds, so it and cluster 2 (which alone would still fit) are dropped.
    result = run(TINY.replace(token_budget=4), [9, 8, 7], [3, 5, 1])
    assert descriptors(result) == [(0, 3)]
    # beats, insertion, sort rounds (one per kept), kept, drain pipeline, flush
    assert result["cycles"] == 3 + 1 + 1 + 1 + 1 + 2
    # budget exactly reached is within: 3 + 5 = 8.
    result = run(TINY.replace(token_budget=8), [9, 8, 7], [3, 5, 1])
    assert descriptors(result) == [(0, 8)]


def test_budget_mode_holds_at_most_topk_k_clusters():
    # budget 100 would take all 6 clusters of 1 token; the buffer holds topk_k = 4, the
    # first 4 by rank: scores 6 5 4 3 -> clusters 0..3, merged into (0, 4).
    result = run(TINY.replace(token_budget=100), [6, 5, 4, 3, 2, 1], [1] * 6)
    assert descriptors(result) == [(0, 4)]


def test_topk_mode_ignores_the_budget():
    result = run(TINY.replace(token_budget=1), [9, 8], [3, 5], mode=MODE_TOPK)
    assert descriptors(result) == [(0, 8)]


def test_empty_selection_and_empty_clusters():
    result = run(TINY, [9, 9], [4, 4], selected=[0, 0])
    assert descriptors(result) == []
    assert result["cycles"] == 1 + 2  # one idle beat, flush
    result = run(TINY, [9, 9], [4, 4], selected=[0, 0], mode=MODE_TOPK)
    # idle beat, insertion cycle, no sort round (nothing kept), one drain step, drain
    # pipeline, flush
    assert result["cycles"] == 1 + 1 + 0 + 1 + 1 + 2
    # count 0 is no candidate: top-1 is cluster 1 (score 2), not cluster 0 (score 9).
    result = run(TINY.replace(topk_k=1), [9, 2], [0, 5], mode=MODE_TOPK)
    assert descriptors(result) == [(0, 5)]


def test_merged_length_covers_the_whole_address_space():
    # 4 x 255 + 4 = 1024 = 2**kv_token_bits tokens from address 0: one descriptor of length
    # 2**kv_token_bits, which the kv_token_bits + 1 bit length holds.
    result = run(TINY, [1, 1, 1, 1, 1], [255, 255, 255, 255, 4])
    assert descriptors(result) == [(0, 1 << TINY.kv_token_bits)]


# Properties ------------------------------------------------------------------------------------

problems = st.integers(1, 20).flatmap(lambda n: st.tuples(
    st.lists(st.integers(0, 3), min_size=n, max_size=n),   # scores: few values, many ties
    st.lists(st.integers(0, 6), min_size=n, max_size=n),   # counts
    st.lists(st.booleans(), min_size=n, max_size=n),       # selected
    st.lists(st.integers(0, 2), min_size=n, max_size=n),   # gaps
    st.integers(1, 8),                                      # k
    st.integers(0, 30)))                                    # budget


@settings(max_examples=150, deadline=None)
@given(problems)
def test_property_topk_is_a_stable_sort(problem):
    scores, counts, selected, _, k, _ = problem
    kept = kept_clusters(TINY.replace(topk_k=k), selected, scores, counts, MODE_TOPK)
    ranked = sorted((c for c in range(len(scores)) if selected[c] and counts[c] > 0),
                    key=lambda c: (-scores[c], c))
    assert sorted(np.flatnonzero(kept).tolist()) == sorted(ranked[:k])


@settings(max_examples=150, deadline=None)
@given(problems)
def test_property_budget_is_the_prefix_rule(problem):
    scores, counts, selected, _, k, budget = problem
    config = TINY.replace(topk_k=k, token_budget=budget)
    kept = kept_clusters(config, selected, scores, counts, MODE_DYNAMIC)
    ranked = sorted((c for c in range(len(scores)) if selected[c] and counts[c] > 0),
                    key=lambda c: (-scores[c], c))
    expected, total = [], 0
    for c in ranked:
        if budget and (total + counts[c] > budget or len(expected) == k):
            break
        expected.append(c)
        total += counts[c]
    assert sorted(np.flatnonzero(kept).tolist()) == sorted(expected)


@settings(max_examples=150, deadline=None)
@given(problems)
def test_property_descriptors_cover_exactly_the_kept_tokens(problem):
    scores, counts, selected, gaps, k, _ = problem
    problem = make_problem(scores, counts, selected, gaps)
    base, count = problem["base"], problem["count"]
    kept = kept_clusters(TINY.replace(topk_k=k), selected, scores, count, MODE_TOPK)
    desc_base, desc_len = merge_ranges(base, count, kept)
    covered = [t for b, n in zip(desc_base.tolist(), desc_len.tolist()) for t in range(b, b + n)]
    wanted = [t for c in np.flatnonzero(kept) for t in range(base[c], base[c] + count[c])]
    assert covered == wanted  # ascending, every kept token once
    ends = desc_base[:-1] + desc_len[:-1]
    assert np.all(ends < desc_base[1:])  # nothing left unmerged
    assert np.all(desc_len > 0)


def test_random_problems_are_valid_and_deterministic():
    first = [retrieve(TINY, **random_problem(TINY, np.random.default_rng(5))) for _ in range(2)]
    assert descriptors(first[0]) == descriptors(first[1])


# Validation ------------------------------------------------------------------------------------

def valid_arrays():
    problem = make_problem([1, 2], [2, 3])
    del problem["mode"]
    return problem


@pytest.mark.parametrize("key, value, message", [
    ("scores", np.array([1, 256]), r"scores must be from 0 to 255"),
    ("count", np.array([2, 256]), r"count must be from 0 to 255"),
    ("base", np.array([0, 1024]), r"base must be from 0 to 1023"),
    ("base", np.array([0, 1]), r"cluster-contiguous layout .* cluster 0 ends at 2"),
    ("base", np.array([0, 1022]), r"base \+ count must be at most 2\*\*kv_token_bits = 1024"),
    ("scores", np.array([1, 2, 3]), r"scores must have the shape of selected"),
    ("mode", np.array(2), r"mode must be 0 \(dynamic\) or 1 \(top-k\)"),
    ("selected", np.ones(65, bool), r"selected must be a 1-D array of 1 to 64 clusters"),
    ("selected", np.ones(0, bool), r"selected must be a 1-D array of 1 to 64 clusters"),
    ("extra", np.array(1), r"unknown key"),
])
def test_invalid_inputs_raise(key, value, message):
    arrays = valid_arrays()
    arrays[key] = value
    with pytest.raises(ValueError, match=message):
        run_arrays(TINY, arrays)


def test_missing_key_raises():
    arrays = valid_arrays()
    del arrays["count"]
    with pytest.raises(ValueError, match=r"missing key 'count'"):
        run_arrays(TINY, arrays)


# Workload trace and file interface --------------------------------------------------------------

def test_workload_trace_through_the_file_interface(tmp_path):
    trace = buffer_trace(TINY, seed=0)
    outputs = {}
    for mode in (MODE_DYNAMIC, MODE_TOPK):
        path = tmp_path / f"in{mode}.npz"
        np.savez(path, **trace, mode=np.uint8(mode))
        out = tmp_path / f"out{mode}.npz"
        assert run_main(["buffer", "--config", "tiny", "--input", str(path),
                         "--output", str(out)]) == 0
        with np.load(out) as result:
            outputs[mode] = {key: result[key] for key in result.files}
        expected = retrieve(TINY, **trace, mode=mode)
        assert outputs[mode]["desc_base"].tolist() == expected["desc_base"].tolist()
        assert outputs[mode]["desc_len"].tolist() == expected["desc_len"].tolist()
        assert int(outputs[mode]["cycles"]) == expected["cycles"]
    # the workload selects more than topk_k = 4 clusters, so top-k fetches fewer tokens.
    assert trace["selected"].sum() > TINY.topk_k
    assert outputs[MODE_TOPK]["desc_len"].sum() < outputs[MODE_DYNAMIC]["desc_len"].sum()


def test_cli_reports_invalid_input(tmp_path, capsys):
    path = tmp_path / "bad.npz"
    arrays = valid_arrays()
    arrays["scores"] = np.array([1, 999])
    np.savez(path, **arrays)
    assert run_main(["buffer", "--config", "tiny", "--input", str(path),
                     "--output", str(tmp_path / "out.npz")]) == 2
    assert "scores must be from 0 to 255" in capsys.readouterr().err
