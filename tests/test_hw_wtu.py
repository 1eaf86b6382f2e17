# amaranth: UnusedElaboratable=no
"""Amaranth-simulator tests of the WTU (``hw/wtu/``) against its twin (``model/twins/wtu.py``).

Every case runs through the stream kit (:func:`sim.kit.amaranth_sim.check_block`) with seeded
random valid/ready stalls on all six streams (unless it checks timing) and compares the decoded
transactions (per-row statistics and cycles, row bitmasks, aggregate ids and scores; unstalled,
the timing of every stream) with :func:`model.twins.wtu.wtu_problem`.
"""

import numpy as np
import pytest
from amaranth_boards.ulx3s import ULX3S_85F_Platform

from hw.wtu import WiCSumThresholdUnit, WTULayouts
from model.config import PRESETS
from model.stimulus.traces import wtu_trace
from sim.kit.amaranth_sim import built_for, check_block, poisoning
from sim.run import run_block

TINY = PRESETS["tiny"]
FULL = TINY.full_refine_depth


def check(config, problems, *, stall=0.3, seed=0, component=None):
    """RTL == twin on ``problems`` (lists of (scores, counts)); returns the decoded arrays."""
    return check_block("wtu", config, [{"scores": scores, "counts": counts}
                                       for scores, counts in problems],
                       stall=stall, seed=seed, component=component)


def random_problem(config, rng, rows=None, clusters=None):
    clusters = clusters or int(rng.integers(1, config.max_clusters + 1))
    rows = rows or int(rng.integers(1, config.max_rows + 1))
    scores = rng.integers(0, config.max_score + 1, size=(rows, clusters))
    counts = rng.integers(0, config.max_count + 1, size=clusters)
    return scores, counts


def test_directed_cases():
    """All equal, single non-zero, zero total weight, counts at their maximum, edge crossing."""
    n = 13
    equal = np.full((1, n), 77)
    single = np.zeros((1, n), dtype=np.int64)
    single[0, 5] = 200
    counts = np.arange(1, n + 1)
    # Worked by hand: scores 192 and 64 with counts 1 give W = 256; at ratio 0.75 (code 192 of
    # 256) T = 192 is reached exactly by the bucket [192, 255] of pass 0 (top 2 bits = 3).
    edge = np.array([[192, 64]])
    problems = [(equal, counts), (single, counts), (equal, np.zeros(n, dtype=np.int64)),
                (np.full((2, n), TINY.max_score), np.full(n, TINY.max_count)),
                (np.array([[0] * n]), counts)]
    check(TINY, problems, seed=3)
    check(TINY.replace(wicsum_ratio_code=192), [(edge, np.array([1, 1]))], seed=4)


@pytest.mark.parametrize("code", [0, 1 << TINY.wicsum_ratio_bits])
def test_ratio_zero_and_one(code):
    rng = np.random.default_rng(code)
    check(TINY.replace(wicsum_ratio_code=code),
          [random_problem(TINY, rng, rows=3) for _ in range(2)], seed=code)


def test_random_problems_back_to_back():
    rng = np.random.default_rng(11)
    config = TINY.replace(wtu_refine_depth=FULL)
    check(config, [random_problem(config, rng) for _ in range(3)], seed=11)


@pytest.mark.parametrize("stream", ["problem", "counts", "scores", "stats", "row_mask",
                                    "selected"])
def test_stalls_on_one_stream(stream):
    rng = np.random.default_rng(13)
    check(TINY, [random_problem(TINY, rng, rows=2, clusters=21) for _ in range(2)],
          stall={stream: 0.6}, seed=13)


def test_workload_rows():
    """Rows of the streaming workload, scored by the float model, under stalls."""
    trace = wtu_trace(TINY, seed=2, layer=1, kv_head=0)
    check(TINY, [(trace["scores"], trace["counts"])], seed=2)


def test_wide_scores_and_counts():
    """24-bit scores and counts (48-bit masses, 54-bit sums), refined to single values."""
    config = TINY.replace(score_bits=24, count_bits=24, wtu_buckets=16, wtu_refine_depth=5)
    rng = np.random.default_rng(24)
    scores, counts = random_problem(config, rng, rows=2, clusters=30)
    scores[1, :10] = scores[1, 0]           # ties deep below the top bits
    check(config, [(scores, counts)], seed=24)


@pytest.mark.parametrize("lanes, buckets, depth", [(1, 2, 0), (2, 4, 1), (8, 16, 1),
                                                   (4, 8, 2)])
def test_parameter_sweep(lanes, buckets, depth):
    config = TINY.replace(wtu_lanes=lanes, wtu_buckets=buckets, wtu_refine_depth=0,
                          score_bits=6 if buckets == 16 else 8)
    config = config.replace(wtu_refine_depth=min(depth, config.full_refine_depth))
    rng = np.random.default_rng(lanes * 100 + buckets)
    # Skewed scores (many small, few large) make refinement walks of unequal lane lengths.
    scores, counts = random_problem(config, rng, rows=3, clusters=int(rng.integers(20, 64)))
    scores = (scores.astype(np.int64) ** 2 >> config.score_bits)
    check(config, [(scores, counts)], seed=lanes)


def test_timing_unstalled_and_declared_bounds():
    """Unstalled, every stream's timing equals the twin's (the stats beat ``cycles`` after the
    row's first scores beat, the emission, aggregate and counts beats); the component's own
    bounds hold in simulation."""
    config = TINY.replace(wtu_refine_depth=FULL)
    unit = WiCSumThresholdUnit(config)
    rng = np.random.default_rng(5)
    (result,) = check(config, [random_problem(config, rng, rows=2, clusters=37)], stall=0.0,
                      component=unit)
    assert (result["cycles"] <= unit.max_row_cycles(37)).all()
    assert result["emit_cycles"].tolist() == [unit.load_beats(37) + unit.emit_latency] * 2


def test_timing_of_back_to_back_problems_of_different_sizes():
    rng = np.random.default_rng(8)
    check(TINY, [random_problem(TINY, rng, rows=rows, clusters=clusters)
                 for rows, clusters in ((2, 9), (3, 40), (1, 5))], stall=0.0)


#: The unit as an FPGA build elaborates it (carry chains, multiplier blocks:
#: :func:`hw.wtu.fast_adders.carry_chains`; block RAM read two ahead in the walk).
_BuiltForTheECP5 = built_for(WiCSumThresholdUnit, ULX3S_85F_Platform())


#: The same build, with the words it leaves undefined inverted: if any output depended on one,
#: it would differ from the twin's.
_PoisonedForTheECP5 = built_for(WiCSumThresholdUnit, poisoning(ULX3S_85F_Platform))


@pytest.mark.parametrize("build", [_BuiltForTheECP5, _PoisonedForTheECP5],
                         ids=["built", "undefined-words-inverted"])
def test_the_fpga_form_equals_the_twin(build):
    """The arithmetic an FPGA build uses is the same integers in the same cycles: outputs and
    cycles equal the twin's, stalled and unstalled (edge-like 16 buckets and 16-bit counts,
    products through the multiplier form); also with the words its block RAMs leave undefined
    (a read at the address being written, :data:`hw.wtu.read_ahead.NO_RW_CHECK`) inverted."""
    config = TINY.replace(wtu_buckets=16, count_bits=16, wtu_refine_depth=0)
    config = config.replace(wtu_refine_depth=config.full_refine_depth)
    rng = np.random.default_rng(16)
    problems = [random_problem(config, rng, rows=2, clusters=37) for _ in range(2)]
    # A problem of one chunk reads its counts back in the cycle after they were written
    # (the FPGA form's transparent read ports, hw.wtu.read_ahead).
    problems.append(random_problem(config, rng, rows=3, clusters=config.wtu_lanes - 1))
    # Scores sharing their top bits put every cluster in one bucket: each lane walks a list
    # of about ten clusters (the FPGA form's walk two ahead, hw.wtu.BucketLists).
    problems.append((rng.integers(0xF0, 0x100, size=(2, 37)), rng.integers(1, 100, size=37)))
    # A row of scores 0 has the threshold 0 (nothing selected, no bucket looked at), between
    # rows whose threshold is not 0.
    zero_row = rng.integers(0, 0x100, size=(3, 21))
    zero_row[1] = 0
    problems.append((zero_row, rng.integers(1, 100, size=21)))
    check(config, problems, stall=0.0, component=build(config))
    check(config, problems, stall=0.3, seed=16, component=build(config))


def test_constructor_errors():
    with pytest.raises(TypeError, match="config must be a DREConfig"):
        WiCSumThresholdUnit({"wtu_lanes": 4})
    with pytest.raises(TypeError, match="config must be a DREConfig"):
        WTULayouts(None)


def test_rtl_engine_rejects_invalid_inputs_before_simulating(tmp_path):
    with pytest.raises(ValueError, match=r"scores must hold integers from 0 to 255"):
        run_block("wtu", TINY, {"scores": np.full((1, 3), 300), "counts": np.ones(3, np.int64)},
                  "rtl", tmp_path)
    assert not (tmp_path / "wtu").exists()
