# amaranth: UnusedElaboratable=no
"""Amaranth-simulator tests of :class:`hw.retrieval_buffer.RetrievalBuffer` against its numpy twin.

``rtl_retrieve`` streams problems through the component (seeded random valid/ready stalls) and
returns each problem's output beats and its cycle count (first input transfer to last output
transfer, measured by a monitor process); ``ref_retrieve`` is the twin. Tests compare the two
transaction streams and cycle counts, never hand-counted cycles.
"""

import random

import numpy as np
import pytest
from amaranth.hdl import ClockDomain, Module
from amaranth.sim import Simulator

from hw.retrieval_buffer import (DescriptorMerger, RetrievalBuffer, cluster_layout,
                                 descriptor_layout)
from model.config import PRESETS
from model.twins.retrieval_buffer import (BEATS_PER_CYCLE, FLUSH_CYCLES, MODE_DYNAMIC, MODE_TOPK,
                                    input_beats, make_problem, output_beats, random_problem,
                                    retrieve)
from model.stimulus.traces import buffer_trace
from tests.amaranth_streams import stream_get, stream_put

TINY = PRESETS["tiny"]


def ref_retrieve(config, problem):
    """The twin's output beats and cycles of one problem."""
    result = retrieve(config, **problem)
    return output_beats(result["desc_base"], result["desc_len"]), result["cycles"]


def rtl_retrieve(config, problems, seed=0, stall=0.0, reset_after=None):
    """Run ``problems`` back to back through the RTL.

    Parameters
    ----------
    reset_after : int, optional
        Pulse reset after this many input beats of the first problem, then send every problem.

    Returns
    -------
    list of (list of dict, int)
        Per problem: the output beats (``base``, ``length``, ``last``) and the cycles from its
        first input transfer to its last output transfer.
    """
    dut = RetrievalBuffer(config)
    top = Module()
    top.domains.sync = domain = ClockDomain()
    top.submodules.dut = dut
    rng = random.Random(seed)
    beats = [input_beats(**problem) for problem in problems]
    outputs = []
    transfers = {"in": [], "out": []}

    async def monitor(ctx):
        cycle = 0
        async for _, reset, iv, ir, il, ov, orr, ol in ctx.tick().sample(
                dut.i.valid, dut.i.ready, dut.i.payload.last, dut.o.valid, dut.o.ready,
                dut.o.payload.last):
            if reset:
                transfers["in"].clear()
                transfers["out"].clear()
            else:
                if iv and ir:
                    transfers["in"].append(cycle)
                if ov and orr:
                    transfers["out"].append((cycle, ol))
            cycle += 1

    async def source(ctx):
        if reset_after is not None:
            for payload in beats[0][:reset_after]:
                await stream_put(ctx, dut.i, payload)
            ctx.set(dut.i.valid, 1)  # a beat is on offer when reset hits
            ctx.set(dut.i.payload, beats[0][min(reset_after, len(beats[0]) - 1)])
            ctx.set(domain.rst, 1)
            await ctx.tick()
            ctx.set(domain.rst, 0)
            ctx.set(dut.i.valid, 0)
            await ctx.tick()
            transfers["start"] = True
        for problem_beats in beats:
            for payload in problem_beats:
                while rng.random() < stall:
                    await ctx.tick()
                await stream_put(ctx, dut.i, payload)

    async def sink(ctx):
        if reset_after is not None:
            ctx.set(dut.o.ready, 1)
            while "start" not in transfers:
                await ctx.tick()
            ctx.set(dut.o.ready, 0)
        for _ in problems:
            problem = []
            while not problem or not problem[-1]["last"]:
                while rng.random() < stall:
                    await ctx.tick()
                payload = await stream_get(ctx, dut.o)
                problem.append({"base": payload.base, "length": payload.length,
                                "last": payload.last})
            outputs.append(problem)

    sim = Simulator(top)
    sim.add_clock(1e-6)
    sim.add_process(monitor)
    sim.add_testbench(source)
    sim.add_testbench(sink)
    sim.run()
    starts = np.cumsum([0] + [len(problem_beats) for problem_beats in beats[:-1]])
    firsts = [transfers["in"][start] for start in starts]
    lasts = [cycle for cycle, last in transfers["out"] if last]
    return [(out, last - first + 1) for out, first, last in zip(outputs, firsts, lasts)]


def check(config, problems, **kwargs):
    """Assert RTL == twin on ``problems`` (beats always; cycles when nothing stalls)."""
    results = rtl_retrieve(config, problems, **kwargs)
    assert len(results) == len(problems)
    for problem, (beats, cycles) in zip(problems, results):
        expected_beats, expected_cycles = ref_retrieve(config, problem)
        assert beats == expected_beats, problem
        if not kwargs.get("stall"):
            assert cycles == expected_cycles, problem


@pytest.mark.parametrize("component", [RetrievalBuffer, DescriptorMerger])
def test_constructor_rejects_non_config(component):
    with pytest.raises(TypeError, match="config must be a DREConfig, not {'topk_k': 4}"):
        component({"topk_k": 4})


def test_properties():
    dut = RetrievalBuffer(TINY)
    assert dut.config is TINY
    assert dut.capacity == TINY.topk_k
    assert (dut.beats_per_cycle, dut.flush_latency) == (BEATS_PER_CYCLE, FLUSH_CYCLES)
    assert dut.i.payload.shape() == cluster_layout(TINY)
    assert dut.o.payload.shape() == descriptor_layout(TINY)
    # base (kv_token_bits) + length (kv_token_bits + 1) + last
    assert descriptor_layout(TINY).size == 2 * TINY.kv_token_bits + 2


@pytest.mark.parametrize("mode", [MODE_DYNAMIC, MODE_TOPK])
def test_directed(mode):
    problems = [
        # ties everywhere, k < clusters; gaps split some descriptors
        make_problem([5, 5, 5, 5, 5, 5], [3, 1, 2, 4, 1, 1], mode=mode, gaps=[0, 0, 2, 0, 1, 0]),
        # empty selection, then one cluster
        make_problem([9, 8], [1, 1], selected=[0, 0], mode=mode),
        make_problem([7], [TINY.max_count], mode=mode),
        # zero-count clusters are not candidates
        make_problem([255, 255, 1, 2], [0, 0, 3, 3], mode=mode),
        # counts at their maximum merge into one long descriptor
        make_problem([1, 2, 3], [TINY.max_count] * 3, mode=mode),
    ]
    check(TINY, problems)


@pytest.mark.parametrize("k", [1, 3, 64])
def test_k_sweep(k):
    config = TINY.replace(topk_k=k)
    rng = np.random.default_rng(k)
    check(config, [random_problem(config, rng, mode=MODE_TOPK) for _ in range(6)])


@pytest.mark.parametrize("budget", [1, 40, 300])
def test_budget(budget):
    config = TINY.replace(token_budget=budget, topk_k=6)
    rng = np.random.default_rng(budget)
    check(config, [random_problem(config, rng) for _ in range(8)])


@pytest.mark.parametrize("seed", [0, 1])
def test_random_no_stall_cycles(seed):
    rng = np.random.default_rng(seed)
    check(TINY, [random_problem(TINY, rng) for _ in range(10)], seed=seed)


@pytest.mark.parametrize("seed", [2, 3])
def test_random_stalls(seed):
    config = TINY.replace(token_budget=200) if seed == 3 else TINY
    rng = np.random.default_rng(seed)
    check(config, [random_problem(config, rng) for _ in range(10)], seed=seed, stall=0.4)


def test_widths():
    config = TINY.replace(kv_token_bits=5, count_bits=3, score_bits=2, wtu_refine_depth=0, topk_k=2)
    rng = np.random.default_rng(7)
    check(config, [random_problem(config, rng) for _ in range(8)], stall=0.3)


@pytest.mark.parametrize("reset_after", [0, 5, 12])
def test_reset_mid_stream(reset_after):
    # reset with the first beat on offer, while collecting, and while draining (all 12 beats in)
    rng = np.random.default_rng(11)
    problems = [random_problem(TINY, rng, clusters=12, mode=MODE_TOPK) for _ in range(3)]
    problems[0]["selected"][:] = True
    check(TINY, problems, reset_after=reset_after)


def test_workload_frames():
    # Selections of the streaming workload (tiny preset) at frames 1, 2 and the last that fits,
    # both modes, k = 2 and a budget of 32 tokens on the dynamic mode.
    config = TINY.replace(topk_k=2, token_budget=32)
    traces = [buffer_trace(config, seed=0, frame=frame) for frame in (1, 2, None)]
    problems = [{**trace, "mode": mode} for trace in traces for mode in (MODE_DYNAMIC, MODE_TOPK)]
    assert max(trace["selected"].sum() for trace in traces) > config.topk_k  # top-k drops some
    check(config, problems, stall=0.0)
    check(config, problems, seed=5, stall=0.3)
