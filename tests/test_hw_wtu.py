# amaranth: UnusedElaboratable=no
"""Amaranth-simulator tests of the WTU (``hw/wtu.py``) against its twin (``model/wtu.py``).

Every case runs the component with seeded random valid/ready stalls on all six streams and
compares the decoded transactions (per-row statistics and cycles, row bitmasks, aggregate ids and
scores) with :func:`model.twins.wtu.wtu_problem`.
"""

import random

import numpy as np
import pytest
from amaranth.sim import Simulator

from hw.wtu import WiCSumThresholdUnit, WTULayouts
from model.config import PRESETS
from model.stimulus.traces import wtu_trace
from model.twins.wtu import wtu_problem
from sim.wtu_rtl import decode_transactions, problem_transactions, STAT_KEYS
from tests.amaranth_streams import get_all, put_all

TINY = PRESETS["tiny"]
FULL = TINY.full_refine_depth


def _fields(view, layout):
    return {name: int(getattr(view, name)) for name, _ in layout}


def rtl_wtu(config, problems, seed=0, stall=0.3, timings=None):
    """Run ``problems`` (list of (scores, counts)) back to back on the component.

    Returns a list of decoded result dicts (see :func:`sim.wtu_rtl.decode_transactions`); when
    ``timings`` is a list, appends per problem the cycle of each ``scores`` and ``stats`` transfer.
    """
    dut = WiCSumThresholdUnit(config)
    layouts = dut.layouts
    rng = random.Random(seed)
    beats = [problem_transactions(config, scores, counts) for scores, counts in problems]
    received = []

    async def source(ctx):
        for (problem, counts, scores), (array, _) in zip(beats, problems):
            await put_all(ctx, dut.problem, problem, rng, stall)
            await put_all(ctx, dut.counts, counts, rng, stall)
            await put_all(ctx, dut.scores, scores, rng, stall)

    async def sink(ctx):
        sink_rng = random.Random(seed + 1)
        for scores, _ in problems:
            rows, clusters = scores.shape
            stats, masks = [], []
            for _ in range(rows):
                stats += await get_all(ctx, dut.stats, 1, sink_rng, stall)
                masks += await get_all(ctx, dut.row_mask, -(-clusters // config.wtu_lanes),
                                       sink_rng, stall)
            selected = []
            while not selected or not selected[-1].last:
                selected += await get_all(ctx, dut.selected, 1, sink_rng, stall)
            received.append(decode_transactions(
                config, rows, clusters, [_fields(beat, layouts.stats) for beat in stats],
                [_fields(beat, layouts.row_mask) for beat in masks],
                [_fields(beat, layouts.selected) for beat in selected]))

    async def timer(ctx):
        streams = {"scores": dut.scores, "stats": dut.stats, "row_mask": dut.row_mask,
                   "selected": dut.selected}
        cycle = 0
        async for _, _, *handshakes in ctx.tick().sample(
                *(signal for port in streams.values() for signal in (port.valid, port.ready))):
            for index, name in enumerate(streams):
                if handshakes[2 * index] and handshakes[2 * index + 1]:
                    timings.append((name, cycle))
            cycle += 1

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(source)
    sim.add_testbench(sink)
    if timings is not None:
        sim.add_testbench(timer, background=True)
    sim.run()
    assert len(received) == len(problems), "the unit did not finish every problem"
    return received


def assert_equal_to_twin(config, problems, **kwargs):
    for (scores, counts), result in zip(problems, rtl_wtu(config, problems, **kwargs)):
        twin = wtu_problem(config, scores, counts)
        for key in (*STAT_KEYS, "row_selected", "selected", "selected_score"):
            np.testing.assert_array_equal(result[key], twin[key], err_msg=key)


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
    assert_equal_to_twin(TINY, problems, seed=3)
    assert_equal_to_twin(TINY.replace(wicsum_ratio_code=192), [(edge, np.array([1, 1]))],
                         seed=4)


@pytest.mark.parametrize("code", [0, 1 << TINY.wicsum_ratio_bits])
def test_ratio_zero_and_one(code):
    rng = np.random.default_rng(code)
    assert_equal_to_twin(TINY.replace(wicsum_ratio_code=code),
                         [random_problem(TINY, rng, rows=3) for _ in range(2)], seed=code)


def test_random_problems_back_to_back():
    rng = np.random.default_rng(11)
    config = TINY.replace(wtu_refine_depth=FULL)
    assert_equal_to_twin(config, [random_problem(config, rng) for _ in range(3)], seed=11)


def test_workload_rows():
    """Rows of the streaming workload, scored by the float model, under stalls."""
    trace = wtu_trace(TINY, seed=2, layer=1, kv_head=0)
    assert_equal_to_twin(TINY, [(trace["scores"], trace["counts"])], seed=2)


def test_wide_scores_and_counts():
    """24-bit scores and counts (48-bit masses, 54-bit sums), refined to single values."""
    config = TINY.replace(score_bits=24, count_bits=24, wtu_buckets=16, wtu_refine_depth=5)
    rng = np.random.default_rng(24)
    scores, counts = random_problem(config, rng, rows=2, clusters=30)
    scores[1, :10] = scores[1, 0]           # ties deep below the top bits
    assert_equal_to_twin(config, [(scores, counts)], seed=24)


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
    assert_equal_to_twin(config, [(scores, counts)], seed=lanes)


def test_cycles_are_the_stats_latency():
    """Without stalls the stats beat comes ``cycles + stats_latency`` after the first score beat."""
    config = TINY.replace(wtu_refine_depth=FULL)
    rng = np.random.default_rng(5)
    scores, counts = random_problem(config, rng, rows=2, clusters=37)
    timings = []
    result, = rtl_wtu(config, [(scores, counts)], stall=0.0, timings=timings)
    beats = -(-37 // config.wtu_lanes)
    score_cycles = [cycle for name, cycle in timings if name == "scores"]
    stats_cycles = [cycle for name, cycle in timings if name == "stats"]
    twin = wtu_problem(config, scores, counts)
    for row in range(2):
        first = score_cycles[row * beats]
        assert stats_cycles[row] - first == \
            int(twin["cycles"][row]) + WiCSumThresholdUnit.stats_latency
    np.testing.assert_array_equal(result["cycles"], twin["cycles"])
    unit = WiCSumThresholdUnit(config)
    assert (twin["cycles"] <= unit.max_row_cycles(37)).all()
    np.testing.assert_array_equal(twin["emit_cycles"], unit.load_beats(37))


def test_constructor_errors():
    with pytest.raises(TypeError, match="config must be a DREConfig"):
        WiCSumThresholdUnit({"wtu_lanes": 4})
    with pytest.raises(TypeError, match="config must be a DREConfig"):
        WTULayouts(None)
    with pytest.raises(ValueError, match=r"wtu_lanes must be at most max_clusters // 2 \(32\)"):
        WiCSumThresholdUnit(TINY.replace(wtu_lanes=64))


def test_rtl_engine_rejects_invalid_inputs_before_simulating(tmp_path):
    from sim.wtu_rtl import run_arrays

    with pytest.raises(ValueError, match=r"scores must hold integers from 0 to 255"):
        run_arrays(TINY, {"scores": np.full((1, 3), 300), "counts": np.ones(3, dtype=np.int64)},
                   tmp_path)
    assert not (tmp_path / "sim").exists()
