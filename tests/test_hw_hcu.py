# amaranth: UnusedElaboratable=no
"""Amaranth-simulator tests of the HCU component (hw/hcu.py) against its twin (model/hcu.py)."""

import random

import numpy as np
import pytest
from amaranth.sim import Simulator

from hw.hcu import HashClusterUnit, SimilarityLane, assignment_layout, token_layout
from model.config import PRESETS
from model.twins.hcu import codewords, directed_streams, hash_cluster, synthetic_hashes
from tests.amaranth_streams import get_all, put_all
from tests.hcu_configs import small_config

TINY = PRESETS["tiny"]
FIELDS = ("cluster", "new", "distance", "overflow")


def rtl_hcu(config, hashes, *, in_stall=0.0, out_stall=0.0, seed=0):
    """Run ``hashes`` through the component cycle by cycle.

    Returns the assignments (dicts) and, per token, the cycles from the previous output
    transfer (the first token: from its input transfer) to its own output transfer.
    """
    dut = HashClusterUnit(config)
    rng = random.Random(seed)
    received, accepted, delivered = [], [], []

    async def testbench(ctx):
        cycle = sent = 0
        while len(received) < len(hashes):
            valid = sent < len(hashes) and rng.random() >= in_stall
            ready = rng.random() >= out_stall
            ctx.set(dut.i.valid, valid)
            if valid:
                ctx.set(dut.i.payload, {"hash": int(hashes[sent]), "last": sent % 3 == 2})
            ctx.set(dut.o.ready, ready)
            if valid and ctx.get(dut.i.ready):
                accepted.append(cycle)
                sent += 1
            if ready and ctx.get(dut.o.valid):
                payload = ctx.get(dut.o.payload)
                received.append({field: int(getattr(payload, field))
                                 for field in FIELDS + ("last",)})
                delivered.append(cycle)
            await ctx.tick()
            cycle += 1

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    return received, np.diff(np.array(accepted[:1] + delivered))


def assert_matches_twin(config, hashes, received, cycles, *, exact_cycles=True):
    expected = hash_cluster(config, hashes, on_overflow="flag")
    assert len(received) == len(hashes)
    for index, payload in enumerate(received):
        want = {field: int(expected[field][index]) for field in FIELDS}
        assert {field: payload[field] for field in FIELDS} == want, f"token {index}"
        assert payload["last"] == int(index % 3 == 2), f"token {index}: last flag"
    if exact_cycles:
        assert cycles.tolist() == expected["cycles"].astype(np.int64).tolist()
    return expected


@pytest.mark.parametrize("name", sorted(directed_streams(TINY)))
def test_directed_streams(name):
    hashes = directed_streams(TINY)[name]
    received, cycles = rtl_hcu(TINY, hashes)
    assert_matches_twin(TINY, hashes, received, cycles)


@pytest.mark.parametrize("lanes, bits, entries, in_flight, width",
                         [(1, 2, 16, 1, 1), (3, 4, 32, 3, 2), (16, 16, 16, 4, 4),
                          (4, 1, 16, 8, 1), (5, 1, 32, 4, 4), (8, 2, 16, 2, 8)])
def test_random_hashes_match_twin(lanes, bits, entries, in_flight, width):
    config = small_config(hcu_lanes=lanes, hcu_bits_per_cycle=bits, hash_mem_entries=entries,
                          hcu_tokens_in_flight=in_flight, hcu_dispatch_width=width)
    hashes = synthetic_hashes(config, 3 * entries, np.random.default_rng(lanes * 100 + bits),
                              centres=2 * entries)
    received, cycles = rtl_hcu(config, hashes)
    expected = assert_matches_twin(config, hashes, received, cycles)
    assert expected["new"].sum() > entries  # the table wrapped: eviction was exercised


def test_random_stalls_lose_nothing():
    hashes = synthetic_hashes(TINY, 30, np.random.default_rng(7))
    for in_stall, out_stall in ((0.5, 0.0), (0.0, 0.5), (0.4, 0.4)):
        received, cycles = rtl_hcu(TINY, hashes, in_stall=in_stall, out_stall=out_stall, seed=3)
        assert_matches_twin(TINY, hashes, received, cycles, exact_cycles=False)


def test_shared_stream_helpers_with_stalls():
    """The same stream through the shared put_all/get_all helpers (independent testbenches)."""
    dut = HashClusterUnit(TINY)
    hashes = synthetic_hashes(TINY, 30, np.random.default_rng(8))
    received = []

    async def producer(ctx):
        await put_all(ctx, dut.i, [{"hash": int(value), "last": 0} for value in hashes],
                      random.Random(1), 0.3)

    async def consumer(ctx):
        for payload in await get_all(ctx, dut.o, len(hashes), random.Random(2), 0.3):
            received.append({field: int(getattr(payload, field)) for field in FIELDS})

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(producer)
    sim.add_testbench(consumer)
    sim.run()
    expected = hash_cluster(TINY, hashes)
    assert [row["cluster"] for row in received] == expected["cluster"].tolist()
    assert [row["distance"] for row in received] == expected["distance"].tolist()


def test_overflow_is_flagged_and_sticky():
    config = small_config(max_clusters=16)
    words = codewords(config, 19, np.random.default_rng(4), window=16)
    hashes = words + words[13:16]
    dut = HashClusterUnit(config)
    received, status = [], []

    async def testbench(ctx):
        ctx.set(dut.o.ready, 1)
        status.append(ctx.get(dut.overflow))
        for value in hashes:
            ctx.set(dut.i.payload, {"hash": value, "last": 0})
            ctx.set(dut.i.valid, 1)
            await ctx.tick().until(dut.i.ready)
            ctx.set(dut.i.valid, 0)
            _, payload = await ctx.tick().sample(dut.o.valid, dut.o.payload).until(dut.o.valid)
            received.append(int(payload.overflow))
        await ctx.tick()
        status.append(ctx.get(dut.overflow))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    expected = hash_cluster(config, hashes, on_overflow="flag")
    assert received == expected["overflow"].astype(int).tolist()
    assert sum(received) == 3  # clusters 16, 17, 18 would not fit 4-bit cluster ids
    assert status == [0, 1]


def test_properties_and_signature():
    dut = HashClusterUnit(PRESETS["edge"])
    assert dut.tokens_in_flight == 4 and dut.min_token_cycles == 1
    assert dut.max_token_cycles == 1025 * 32 + 1  # (1024 entries + 1) x 32 beats, + decide
    assert dut.peak_throughput == 1.0
    assert hash_cluster(PRESETS["edge"], [5])["cycles"].tolist() == [dut.min_latency]
    assert dut.i.payload.shape() == token_layout(PRESETS["edge"])
    assert dut.o.payload.shape() == assignment_layout(PRESETS["edge"])
    assert assignment_layout(PRESETS["edge"]).size == 12 + 1 + 6 + 1 + 1


def test_twin_cycles_stay_within_component_bounds():
    config = small_config(hcu_lanes=4, hcu_bits_per_cycle=1, hamming_threshold=16)
    dut = HashClusterUnit(config)
    hashes = synthetic_hashes(config, 40, np.random.default_rng(5), flips=3)
    cycles = hash_cluster(config, hashes)["cycles"].astype(np.int64)
    assert cycles.min() >= dut.min_token_cycles
    assert cycles.max() <= dut.max_token_cycles
    assert cycles.sum() >= len(hashes) / dut.peak_throughput


def test_constructor_errors():
    with pytest.raises(TypeError, match=r"config must be a DREConfig, not 'edge'"):
        HashClusterUnit("edge")
    with pytest.raises(TypeError, match=r"config must be a DREConfig, not None"):
        SimilarityLane(None)
