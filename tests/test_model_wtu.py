"""Tests of the WTU twin (``model/twins/wtu.py``): exactness, coarse supersets, worked cases, errors."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from model.config import PRESETS
from model.reference.resv import exact_wicsum
from model.twins.wtu import (INPUTS, OUTPUTS, aggregate_cycles, decide_cycles, run_arrays,
                             scan_sort_cycles, selected_schedule, wtu_problem, wtu_row)

TINY = PRESETS["tiny"]


@st.composite
def problems(draw, full=True):
    """A small configuration (score bits, buckets, lanes, ratio, depth) and one problem for it."""
    score_bits = draw(st.integers(2, 10))
    config = TINY.replace(score_bits=score_bits, wtu_buckets=draw(st.sampled_from([2, 4, 8, 16])),
                          wtu_lanes=draw(st.sampled_from([1, 2, 4, 8])), wtu_refine_depth=0,
                          wicsum_ratio_code=draw(st.integers(0, 1 << TINY.wicsum_ratio_bits)))
    depth = config.full_refine_depth if full else draw(st.integers(0, config.full_refine_depth))
    config = config.replace(wtu_refine_depth=depth)
    clusters = draw(st.integers(1, 40))
    rows = draw(st.integers(1, 3))
    # Few distinct values make ties and bucket-edge crossings frequent.
    top = draw(st.sampled_from([1, 3, config.max_score]))
    scores = np.array(draw(st.lists(st.integers(0, top), min_size=rows * clusters,
                                    max_size=rows * clusters))).reshape(rows, clusters)
    counts = np.array(draw(st.lists(st.integers(0, config.max_count), min_size=clusters,
                                    max_size=clusters)))
    return config, scores, counts


@settings(max_examples=80, deadline=None)
@given(problems(full=True))
def test_full_refinement_is_exact_wicsum(problem):
    config, scores, counts = problem
    result = wtu_problem(config, scores, counts)
    for row in range(len(scores)):
        np.testing.assert_array_equal(result["row_selected"][row],
                                      exact_wicsum(scores[row], counts, config))
    np.testing.assert_array_equal(result["selected"], result["row_selected"].any(axis=0))


@settings(max_examples=80, deadline=None)
@given(problems(full=False))
def test_coarse_selection_is_a_closed_superset(problem):
    config, scores, counts = problem
    result = wtu_problem(config, scores, counts)
    for row in range(len(scores)):
        selected = result["row_selected"][row]
        exact = exact_wicsum(scores[row], counts, config)
        assert not (exact & ~selected).any(), "coarse selection misses an exact one"
        # Closed under "higher score": exactly the clusters at or above the cutoff.
        np.testing.assert_array_equal(selected, scores[row] >= result["cutoff"][row])
        assert result["passes"][row] <= config.wtu_refine_depth + 1


def test_threshold_reached_exactly_at_a_bucket_edge():
    # Worked by hand (tiny: 8-bit scores, 4 buckets, so pass 0 buckets by the top 2 bits, 4
    # lanes): scores 192 and 64, counts 1, ratio code 192: W = 256, T = (256*192 + 128) >> 8 =
    # 192, reached exactly by bucket 3 = [192, 255], which holds one cluster: no refinement.
    # Cycles: 1 load beat + one decision of 2 + 5 + max(2 + 1, 2 + 1) + 3 = 13 cycles (2 to
    # reach the lanes; 5 lane stages: 8-bit counts, 2 slices of 4 bits, L_p = 1; 4 buckets: 2
    # suffix levels and the high halves' cycle; code 192 has 2 bits set: 3 threshold
    # operands, 2 levels).
    config = TINY.replace(wicsum_ratio_code=192)
    row = wtu_row(np.array([192, 64]), np.array([1, 1]), config)
    assert row["row_selected"].tolist() == [True, False]
    assert (row["threshold"], row["cutoff"], row["passes"], row["buckets_visited"],
            row["cycles"]) == (192, 192, 1, 1, 1 + 13)


def test_all_scores_equal_refine_to_the_value():
    # Worked by hand: five clusters of score 100 (0b01100100), counts 1, ratio code 77: W = 500,
    # T = (500*77 + 128) >> 8 = 150. Every pass has one non-empty bucket holding all five, so the
    # unit refines to depth 3: buckets 1, 2, 1, 0 of 4 (visited 3 + 2 + 3 + 4 = 12); cutoff 100.
    # Cycles: 2 load beats, 4 decisions of 14 cycles (code 77 has 4 bits set: 5 threshold
    # operands, 3 levels; 2 to reach the lanes + 5 lane stages + max(2 + 1, 3 + 1) + 3 = 14), 3
    # walks of 2 (lane 0 holds clusters 0 and 4) and 2 + 2 each (the walk's start reaches the
    # lanes, their "done" comes back) = 2 + 56 + 18 = 76.
    row = wtu_row(np.full(5, 100), np.ones(5, dtype=np.int64), TINY)
    assert row["row_selected"].all()
    assert (row["threshold"], row["cutoff"], row["passes"], row["buckets_visited"],
            row["touched"], row["cycles"]) == (150, 100, 4, 12, 15, 76)


@pytest.mark.parametrize("scores, counts, code, decide", [
    ([0, 0, 0], [5, 5, 5], 77, 14),     # zero total weight
    ([9, 200, 3], [0, 0, 0], 77, 14),   # zero total weight through the counts
    ([9, 200, 3], [1, 2, 3], 0, 13),    # ratio 0: the threshold is the constant 128 >> 8
])
def test_zero_threshold_selects_nothing(scores, counts, code, decide):
    # Worked by hand: T = (W * code + 128) >> 8 = 0 in each case, and T = 0 selects nothing
    # (model.reference.resv rule); cutoff 2**8, one load beat and one decision (2 cycles to
    # reach the lanes, 5 lane stages; code 77: 2 + 5 + max(2 + 1, 3 + 1) + 3 = 14 cycles; code
    # 0, no threshold levels: 2 + 5 + max(2 + 1, 1 + 1) + 3 = 13; 2 + 1: the suffix levels and
    # the high halves' cycle).
    row = wtu_row(np.array(scores), np.array(counts), TINY.replace(wicsum_ratio_code=code))
    assert not row["row_selected"].any()
    assert (row["threshold"], row["cutoff"], row["cycles"], row["buckets_visited"]) == \
        (0, 256, 1 + decide, 0)


@pytest.mark.parametrize("buckets, code, count_bits, cycles", [
    # 2 (to the lanes) + (4 + L_p) lane stages + max(suffix levels + 1, max(threshold levels,
    # 1) + 1) + 3, with L_p = ceil(log2(ceil(count_bits / 4))) (16 bits: 4 slices, L_p = 2, 6
    # lane stages: the words, 3 for the product, 2 for the masses' carry-save sums) and the
    # suffix tree's last high halves one cycle after its low halves (the + 1)
    (16, 77, 16, 16),   # edge: 4 suffix levels; 5 threshold operands, 3 levels: 2 + 6 + max(5, 4) + 3
    (4, 192, 16, 14),   # 2 suffix levels; 3 operands, 2 levels: 2 + 6 + max(3, 3) + 3
    (4, 256, 16, 14),   # 2 operands, 1 level: 2 + 6 + max(3, 2) + 3
    (128, 77, 16, 19),  # 7 suffix levels: 2 + 6 + max(8, 4) + 3
    (16, 77, 8, 15),    # 8-bit counts: 2 slices, L_p = 1, 5 lane stages: 2 + 5 + max(5, 4) + 3
    (16, 77, 4, 14),    # 4-bit counts: 1 slice, L_p = 0, 4 lane stages: 2 + 4 + max(5, 4) + 3
])
def test_decide_cycles_worked_by_hand(buckets, code, count_bits, cycles):
    config = PRESETS["edge"].replace(wtu_buckets=buckets, wicsum_ratio_code=code,
                                     wtu_refine_depth=1, count_bits=count_bits)
    assert decide_cycles(config) == cycles


def test_ratio_one_selects_every_cluster_with_mass():
    config = TINY.replace(wicsum_ratio_code=1 << TINY.wicsum_ratio_bits,
                          wtu_refine_depth=TINY.full_refine_depth)
    scores = np.array([[7, 0, 255, 1, 30]])
    counts = np.array([1, 9, 0, 1, 2])
    result = wtu_problem(config, scores, counts)
    # Worked by hand: T = W, so v* is the lowest score with non-zero mass (1); score 255 has no
    # mass but scores higher, so it is selected; score 0 never is.
    assert result["row_selected"][0].tolist() == [True, False, True, True, True]


def test_single_nonzero_score_and_counts_at_maximum():
    config = TINY.replace(wtu_refine_depth=TINY.full_refine_depth)
    scores = np.zeros((2, 9), dtype=np.int64)
    scores[0, 4] = 1
    scores[1] = config.max_score
    result = wtu_problem(config, scores, np.full(9, config.max_count))
    assert result["row_selected"][0].tolist() == [False] * 4 + [True] + [False] * 4
    assert result["row_selected"][1].all()
    assert result["weighted_sum"][1] == 9 * config.max_score * config.max_count


def test_widest_configuration_sums_exactly():
    # 32-bit scores and counts: masses of 64 bits and sums past 2**64 stay exact (Python ints).
    config = TINY.replace(score_bits=32, count_bits=32, wtu_buckets=16, wtu_refine_depth=7)
    scores = np.array([[config.max_score] * 4 + [1, 2]], dtype=np.uint64)
    counts = np.array([config.max_count] * 6, dtype=np.uint64)
    result = wtu_problem(config, scores, counts)
    assert int(result["weighted_sum"][0]) == (4 * config.max_score + 3) * config.max_count
    np.testing.assert_array_equal(result["row_selected"][0], exact_wicsum(scores[0], counts,
                                                                          config))
    with pytest.raises(ValueError, match="weighted_sum reaches .* past the 64 bits"):
        run_arrays(config, {"scores": scores, "counts": counts})


def test_cycle_helpers():
    # Worked by hand: 4096 clusters on 16 lanes: 256 beats x (1 load + 12 merge levels) + a scan
    # of 100 selected (7 cycles) + 1 decide = 3336.
    assert scan_sort_cycles(4096, 100, 16) == 3336
    # Chunks of 4: selected ids 1, 2 and 9. From the last row-mask beat's issue: 6 wait cycles
    # (2 to the lanes, 2 back, 2 to count the beat), chunk 0's words 5 cycles after its read
    # (2 + 2 + the queue's write), chunks 0, 1, 2 fetched (3) + 3 sends = 17, less the 5
    # cycles from that beat's issue to its transfer: 12. Nothing selected: the wait and the
    # empty beat, 7 - 5 = 2.
    selected = np.zeros(12, dtype=bool)
    selected[[1, 2, 9]] = True
    assert aggregate_cycles(selected, 4) == 12
    assert aggregate_cycles(np.zeros(12, dtype=bool), 4) == 2


def test_file_interface_keys():
    rng = np.random.default_rng(0)
    arrays = {"scores": rng.integers(0, 256, size=(3, 10)), "counts": rng.integers(0, 256, 10)}
    result = run_arrays(TINY, arrays)
    assert sorted(result) == sorted(spec.name for spec in OUTPUTS)
    assert [spec.name for spec in INPUTS] == ["scores", "counts"]
    np.testing.assert_array_equal(
        result["selected_score"], np.where(result["selected"], arrays["scores"].max(axis=0), 0))


@pytest.mark.parametrize("scores, counts, message", [
    (np.zeros((2, 65)), np.zeros(65), r"scores must have from 1 to 64 clusters \(max_clusters\)"),
    (np.zeros((9, 4)), np.zeros(4), r"scores must have from 1 to 8 rows \(max_rows\)"),
    (np.full((1, 4), 256), np.zeros(4), r"scores must hold integers from 0 to 255"),
    (np.zeros((1, 4)), np.full(4, -1), r"counts must hold integers from 0 to 255"),
    (np.zeros((1, 4)), np.zeros(3), r"counts must have one value per cluster \(4\)"),
    (np.zeros(4), np.zeros(4), r"scores must be 2-D"),
])
def test_invalid_problems_raise(scores, counts, message):
    with pytest.raises(ValueError, match=message):
        wtu_problem(TINY, scores.astype(np.int64), counts.astype(np.int64))


def test_run_arrays_rejects_unknown_keys():
    with pytest.raises(ValueError, match="unknown key"):
        run_arrays(TINY, {"scores": np.zeros((1, 2)), "counts": np.zeros(2), "hashes": 1})


def test_selected_schedule_by_hand():
    # Two rows of 10 and 12 cycles, 2 emission beats each issued one per cycle (each offered 5
    # cycles after its issue: emit_cycles 7), one stats cycle each: 28 cycles to the last
    # beat's issue; then 6 wait cycles and chunk 0 at the queue's head 5 cycles after its read;
    # with 4 lanes, clusters 1, 2 (chunk 0) and 9 (chunk 2): chunk 0 fetched (1 cycle), its
    # first beat offered in the next: 28 + 6 + 5 + 2 = 41; cluster 2 in the same chunk 1 cycle
    # after cluster 1's transfer; cluster 9 after fetching chunks 1 and 2: 1 + 2.
    selected = np.zeros(12, bool)
    selected[[1, 2, 9]] = True
    result = {"cycles": np.array([10, 12]), "emit_cycles": np.array([7, 7]),
              "selected": selected}
    assert selected_schedule(result, 4) == (41, [1, 3])
    # Nothing selected: the empty beat in the cycle after the wait: 28 + 6 + 1.
    assert selected_schedule({**result, "selected": np.zeros(12, bool)}, 4) == (35, [])
