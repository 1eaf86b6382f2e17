# amaranth: UnusedElaboratable=no
"""The count packer (:mod:`hw.count_packer`) against a Python reference of its rule: counts in
order, ``wtu_lanes`` per beat, zero lanes after the problem's last count; seeded random problems
and stalls on both sides; every simulation under a cycle limit."""

import random

import pytest

from hw.count_packer import CountPacker
from model.config import PRESETS
from sim.kit.amaranth_sim import simulate

TINY = PRESETS["tiny"]


def _expected_beats(problems, lanes):
    """Reference: each problem's counts cut into beats of ``lanes``, the last one zero-padded."""
    beats = []
    for counts in problems:
        for start in range(0, len(counts), lanes):
            chunk = counts[start:start + lanes]
            beats.append(chunk + [0] * (lanes - len(chunk)))
    return beats


def _run(problems, in_stall, out_stall, seed):
    dut = CountPacker(TINY)
    lanes = TINY.wtu_lanes
    counts = [(count, int(index == len(problem) - 1))
              for problem in problems for index, count in enumerate(problem)]
    rng = random.Random(seed)
    received, in_cycles, out_cycles = [], [], []

    async def testbench(ctx):
        sent, cycle = 0, 0
        while len(received) < len(_expected_beats(problems, lanes)):
            offer = sent < len(counts) and rng.random() >= in_stall
            ctx.set(dut.i.valid, offer)
            if offer:
                ctx.set(dut.i.payload.count, counts[sent][0])
                ctx.set(dut.i.payload.last, counts[sent][1])
            ctx.set(dut.o.ready, rng.random() >= out_stall)
            _, _, i_valid, i_ready, o_valid, o_ready, payload = await ctx.tick().sample(
                dut.i.valid, dut.i.ready, dut.o.valid, dut.o.ready, dut.o.payload.count)
            if i_valid and i_ready:
                in_cycles.append(cycle)
                sent += 1
            if o_valid and o_ready:
                received.append([int(payload[lane]) for lane in range(lanes)])
                out_cycles.append(cycle)
            cycle += 1
        for _ in range(8):   # nothing more arrives
            ctx.set(dut.o.ready, 1)
            ctx.set(dut.i.valid, 0)
            _, _, o_valid = await ctx.tick().sample(dut.o.valid)
            assert not o_valid, "an extra beat"

    limit = int((2 * len(counts) + 50) / ((1 - in_stall) * (1 - out_stall)))
    simulate(dut, testbench, limit)
    return received, in_cycles, out_cycles


@pytest.mark.parametrize("in_stall, out_stall", [(0.0, 0.0), (0.4, 0.0), (0.0, 0.5), (0.3, 0.4)])
def test_counts_are_packed_in_order(in_stall, out_stall):
    rng = random.Random(7)
    problems = [[rng.randrange(TINY.max_count + 1) for _ in range(rng.randint(1, 13))]
                for _ in range(12)]
    received, _, _ = _run(problems, in_stall, out_stall, seed=11)
    assert received == _expected_beats(problems, TINY.wtu_lanes)


def test_unstalled_timing_is_the_declared_latency():
    # 4 lanes: problems of 6 and 4 counts give beats completed by counts 3, 5, 9 (0-based).
    problems = [[1, 2, 3, 4, 5, 6], [7, 8, 9, 10]]
    received, in_cycles, out_cycles = _run(problems, 0.0, 0.0, seed=0)
    assert received == [[1, 2, 3, 4], [5, 6, 0, 0], [7, 8, 9, 10]]
    assert in_cycles == list(range(10))          # no count is ever stalled
    completing = [in_cycles[3], in_cycles[5], in_cycles[9]]
    assert out_cycles == [cycle + CountPacker.latency for cycle in completing]


def test_config_must_be_a_dre_config():
    with pytest.raises(TypeError, match="config must be a DREConfig"):
        CountPacker("tiny")
