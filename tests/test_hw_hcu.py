# amaranth: UnusedElaboratable=no
"""Amaranth-simulator tests of the HCU component (hw/hcu/) against its twin (model/twins/hcu.py).

Every run goes through the stream kit (:func:`sim.kit.amaranth_sim.check_block`): the
assignments and ``last`` flags always, and the cycles between assignments when nothing stalls,
must equal :func:`model.twins.hcu.hash_cluster`'s; nothing may arrive after the last expected
assignment; a run that stops making progress fails at its cycle limit.
"""

import numpy as np
import pytest

from hw.hcu import HashClusterUnit, SimilarityLane, assignment_layout, token_layout
from model.config import PRESETS
from model.stimulus.hashes import codewords, directed_streams, synthetic_hashes
from model.twins.hcu import hash_cluster
from sim.kit.amaranth_sim import AmaranthBench, check_block
from sim.kit.core import cycle_limit, wait_until
from tests.hcu_configs import small_config

TINY = PRESETS["tiny"]


def frames(count, every):
    """``last`` flags of ``count`` tokens in frames of ``every`` tokens."""
    return np.arange(count) % every == every - 1


@pytest.mark.parametrize("name", sorted(directed_streams(TINY)))
def test_directed_streams(name):
    hashes = directed_streams(TINY)[name]
    check_block("hcu", TINY, [{"hashes": hashes, "last": frames(len(hashes), 3)}])


@pytest.mark.parametrize("lanes, bits, entries, in_flight, width",
                         [(1, 2, 16, 1, 1), (3, 4, 32, 3, 2), (16, 16, 16, 4, 4),
                          (4, 1, 16, 8, 1), (5, 1, 32, 4, 4), (8, 2, 16, 2, 8)])
def test_random_hashes_match_twin(lanes, bits, entries, in_flight, width):
    config = small_config(hcu_lanes=lanes, hcu_bits_per_cycle=bits, hash_mem_entries=entries,
                          hcu_tokens_in_flight=in_flight, hcu_dispatch_width=width)
    hashes = synthetic_hashes(config, 3 * entries, np.random.default_rng(lanes * 100 + bits),
                              centres=2 * entries)
    (result,) = check_block("hcu", config, [{"hashes": hashes}])
    assert result["new"].sum() > entries  # the table wrapped: eviction was exercised


@pytest.mark.parametrize("stall", [{"i": 0.5}, {"o": 0.5}, {"i": 0.4, "o": 0.4}],
                         ids=["input", "output", "both"])
def test_random_stalls_lose_nothing(stall):
    hashes = synthetic_hashes(TINY, 30, np.random.default_rng(7))
    check_block("hcu", TINY, [{"hashes": hashes, "last": frames(30, 4)}], stall=stall, seed=3)


def test_overflow_is_flagged_and_sticky():
    config = small_config(max_clusters=16)
    words = codewords(config, 19, np.random.default_rng(4), window=16)
    hashes = words + words[13:16]
    status = []

    async def watch_status(sim, bench):
        status.append(sim.get(bench.dut.overflow))

    dut = HashClusterUnit(config)
    bench = AmaranthBench(dut, ["i"], ["o"])
    bench.drivers["i"].send([{"hash": value, "last": 0} for value in hashes])
    bench.run(lambda: len(bench.monitors["o"].transfers) == len(hashes),
              cycle_limit(int(hash_cluster(config, hashes, on_overflow="flag")["cycles"].sum())),
              scenario=watch_status)
    received = [beat["overflow"] for beat in bench.monitors["o"].beats]
    assert received == hash_cluster(config, hashes, on_overflow="flag")["overflow"].tolist()
    assert sum(received) == 3  # clusters 16, 17, 18 would not fit 4-bit cluster ids
    assert status == [0]


def test_overflow_status_stays_until_reset():
    config = small_config(max_clusters=16)
    hashes = codewords(config, 17, np.random.default_rng(4), window=16)
    seen = []

    async def reset_after_overflow(sim, bench):
        await wait_until(sim, lambda: len(bench.monitors["o"].transfers) == len(hashes), 2000,
                         "every assignment")
        seen.append(sim.get(bench.dut.overflow))
        sim.set(sim.reset_signal, 1)
        await sim.edge()
        sim.set(sim.reset_signal, 0)
        await sim.edge()
        seen.append(sim.get(bench.dut.overflow))

    bench = AmaranthBench(HashClusterUnit(config), ["i"], ["o"])
    bench.drivers["i"].send([{"hash": value, "last": 0} for value in hashes])
    bench.run(lambda: True, 2000, scenario=reset_after_overflow)
    assert seen == [1, 0]


def test_declared_latency_and_bounds_hold_in_simulation():
    """The component's own latency figures against what the simulated RTL does."""
    config = small_config(hcu_lanes=4, hcu_bits_per_cycle=1, hamming_threshold=16)
    dut = HashClusterUnit(config)
    hashes = synthetic_hashes(config, 40, np.random.default_rng(5), flips=3)
    (result,) = check_block("hcu", config, [{"hashes": hashes}], component=dut)
    cycles = result["cycles"].astype(np.int64)
    assert cycles[0] == dut.min_latency  # an empty table: walk nothing, decide
    assert cycles.min() >= dut.min_token_cycles
    assert cycles.max() <= dut.max_token_cycles


def test_signature():
    dut = HashClusterUnit(PRESETS["edge"])
    assert dut.tokens_in_flight == 4
    assert dut.i.payload.shape() == token_layout(PRESETS["edge"])
    assert dut.o.payload.shape() == assignment_layout(PRESETS["edge"])
    # cluster (log2 4096 = 12) + new + distance (0..32: 6 bits) + overflow + last
    assert assignment_layout(PRESETS["edge"]).size == 12 + 1 + 6 + 1 + 1


def test_constructor_errors():
    with pytest.raises(TypeError, match=r"config must be a DREConfig, not 'edge'"):
        HashClusterUnit("edge")
    with pytest.raises(TypeError, match=r"config must be a DREConfig, not None"):
        SimilarityLane(None)
