# amaranth: UnusedElaboratable=no
"""Amaranth-simulator tests of :class:`hw.retrieval_buffer.RetrievalBuffer` against its numpy twin.

Problems go through the stream kit (:func:`sim.kit.amaranth_sim.check_block`, seeded random
valid/ready stalls, cycle limit, drain check): the descriptors always, and each problem's cycles
(first input transfer to last output transfer) when nothing stalls, must equal
:func:`model.twins.retrieval_buffer.retrieve`'s.
"""

import numpy as np
import pytest

from hw.retrieval_buffer import (DescriptorMerger, RetrievalBuffer, cluster_layout,
                                 descriptor_layout)
from model.config import PRESETS
from model.stimulus.buffer_problems import make_problem, random_problem
from model.stimulus.traces import buffer_trace
from model.twins.retrieval_buffer import MODE_DYNAMIC, MODE_TOPK
from sim.kit.amaranth_sim import check_block
from sim.kit.core import wait_until
from sim.payloads import BufferCodec

TINY = PRESETS["tiny"]


def check(config, problems, *, stall=0.0, seed=0):
    """Assert RTL == twin on ``problems`` (descriptors always; cycles when nothing stalls)."""
    return check_block("buffer", config, problems, stall=stall, seed=seed)


@pytest.mark.parametrize("component", [RetrievalBuffer, DescriptorMerger])
def test_constructor_rejects_non_config(component):
    with pytest.raises(TypeError, match="config must be a DREConfig, not {'topk_k': 4}"):
        component({"topk_k": 4})


def test_properties():
    dut = RetrievalBuffer(TINY)
    assert dut.config is TINY
    assert dut.capacity == TINY.topk_k
    assert dut.i.payload.shape() == cluster_layout(TINY)
    assert dut.o.payload.shape() == descriptor_layout(TINY)
    # base (kv_token_bits) + length (kv_token_bits + 1) + last
    assert descriptor_layout(TINY).size == 2 * TINY.kv_token_bits + 2


def test_declared_throughput_and_flush_latency_hold_in_simulation():
    # Dynamic mode without a budget streams clusters through: beats / beats_per_cycle cycles of
    # input, then flush_latency cycles to the last descriptor.
    dut = RetrievalBuffer(TINY)
    rng = np.random.default_rng(21)
    problems = [random_problem(TINY, rng, clusters=n, mode=MODE_DYNAMIC) for n in (1, 7, 20)]
    for problem in problems:
        problem["selected"][:] = True
    results = check_block("buffer", TINY, problems, component=dut)
    assert [int(result["cycles"]) for result in results] == [
        len(problem["selected"]) // dut.beats_per_cycle + dut.flush_latency
        for problem in problems]


def test_declared_drain_latency_holds_in_simulation():
    # Top-k mode with k >= clusters keeps every selected cluster: beats of input, the last
    # inserted insert_latency cycles later, sort_rounds_per_entry rounds per kept entry, one
    # drained entry per cycle, drain_latency cycles to the merger, flush_latency to the last
    # descriptor.
    config = TINY.replace(topk_k=20)
    dut = RetrievalBuffer(config)
    rng = np.random.default_rng(22)
    problems = [make_problem(rng.integers(0, 4, n), rng.integers(1, 4, n), mode=MODE_TOPK,
                             gaps=rng.integers(0, 2, n)) for n in (1, 7, 20)]
    results = check_block("buffer", config, problems, component=dut)
    assert [int(result["cycles"]) for result in results] == [
        (2 + dut.sort_rounds_per_entry) * len(problem["selected"]) + dut.insert_latency
        + dut.drain_latency + dut.flush_latency
        for problem in problems]


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
    first = BufferCodec().input_beats(TINY, problems[:1])["i"]

    async def partial_problem_then_reset(sim, bench):
        bench.drivers["i"].send(first[:reset_after + 1])
        await wait_until(sim, lambda: len(bench.drivers["i"].transfers) >= reset_after, 1000,
                         f"{reset_after} input beats")
        await bench.reset(sim)

    check_block("buffer", TINY, problems, scenario=partial_problem_then_reset)


def test_workload_frames():
    # Selections of the streaming workload (tiny preset) at frames 1, 2 and the last that fits,
    # both modes, k = 2 and a budget of 32 tokens on the dynamic mode.
    config = TINY.replace(topk_k=2, token_budget=32)
    traces = [buffer_trace(config, seed=0, frame=frame) for frame in (1, 2, None)]
    problems = [{**trace, "mode": mode} for trace in traces for mode in (MODE_DYNAMIC, MODE_TOPK)]
    assert max(trace["selected"].sum() for trace in traces) > config.topk_k  # top-k drops some
    check(config, problems)
    check(config, problems, seed=5, stall=0.3)
