# amaranth: UnusedElaboratable=no
"""Amaranth-simulator tests of :class:`hw.kvmu.KVManagementUnit` against its numpy twin.

Streams of frames go through the stream kit (:func:`sim.kit.amaranth_sim.check_block`, seeded
random valid/ready stalls, cycle limit, drain check): moves, counts, fetch descriptors and the
decoded fetched tokens always, and each frame's cycles (command transfer to last descriptor
transfer) when nothing stalls, must equal :func:`model.twins.kvmu.run_stream`'s.
"""

import numpy as np
import pytest

from hw.kvmu import (KVManagementUnit, assign_layout, cluster_word_layout, command_layout,
                     count_layout, move_layout, select_layout)
from hw.retrieval_buffer import descriptor_layout
from model.config import PRESETS
from model.stimulus.kvmu_streams import random_stream, workload_stream
from model.twins import kvmu as kvmu_twin
from model.twins.kvmu import run_stream
from sim.kit.amaranth_sim import check_block
from sim.kit.core import wait_until
from sim.payloads import KVMUCodec

TINY = PRESETS["tiny"]


def check(config, streams, *, stall=0.0, seed=0):
    """Assert RTL == twin on ``streams`` (outputs always; cycles when nothing stalls)."""
    return check_block("kvmu", config, streams, stall=stall, seed=seed)


def streams_of(config, seed, count=3, frames=10, **options):
    rng = np.random.default_rng(seed)
    return [random_stream(config, rng, frames, **options) for _ in range(count)]


def test_constructor_rejects_non_config():
    with pytest.raises(TypeError, match="config must be a DREConfig, not {'kvmu_page_tokens': 4}"):
        KVManagementUnit({"kvmu_page_tokens": 4})


def test_properties_and_layouts():
    dut = KVManagementUnit(TINY)
    assert dut.config is TINY
    # tiny: 2**10 slots in pages of 4 -> 256 pages (8-bit page ids); ring 8 + 16 = 24 ids
    assert (dut.pages, dut.ring_depth) == (256, 24)
    assert dut.cmd.payload.shape() == command_layout(TINY)
    assert dut.assign.payload.shape() == assign_layout(TINY)
    assert dut.selected.payload.shape() == select_layout(TINY)
    assert dut.moves.payload.shape() == move_layout(TINY)
    assert dut.counts.payload.shape() == count_layout(TINY)
    assert dut.fetch.payload.shape() == descriptor_layout(TINY)
    # word: head 8 + tail 8 + fill 0..4 (3 bits) + count 8 = 27 bits
    assert cluster_word_layout(TINY).size == 27
    # table 64 x 27, pages 256 x 8, ring 24 x 6 (64 clusters), registers: clusters 7, window
    # tokens 0..24 (5), ring pointers 2 x 5, window slot 0..7 (3), next page 0..256 (9), full 1
    assert dut.state_bits() == {"cluster_table": 64 * 27, "page_next": 256 * 8,
                                "ring": 24 * 6, "registers": 7 + 5 + 10 + 3 + 9 + 1}


def test_declared_step_cycles_hold_in_simulation():
    # Per frame: command 1, cycles_before_offload when tokens leave, cycles_per_offload per
    # leaving token, move flush 1,
    # cycles_per_assign per new token, N + 1 count cycles, per selected beat cycles_per_select plus
    # cycles_per_page per page walked and cycles_per_link per link followed (pages - 1),
    # flush_latency.
    dut = KVManagementUnit(TINY)
    assert (dut.cycles_per_offload, dut.cycles_per_page, dut.cycles_per_link) == (
        kvmu_twin.OFFLOAD_CYCLES, kvmu_twin.PAGE_CYCLES, kvmu_twin.LINK_CYCLES)
    streams = streams_of(TINY, 21, count=2, frames=12)
    results = check_block("kvmu", TINY, streams, component=dut)
    for arrays, result in zip(streams, results):
        twin = run_stream(TINY, arrays)
        clusters = np.diff(twin["count_offsets"].astype(int))
        expected = [1 + dut.cycles_before_offload * (leaving > 0)
                    + dut.cycles_per_offload * leaving + 1
                    + dut.cycles_per_assign * int(new_tokens) + int(n) + 1
                    + sum(dut.cycles_per_select + dut.cycles_per_page * pages
                          + dut.cycles_per_link * max(0, pages - 1) for pages in walked)
                    + dut.flush_latency
                    for leaving, new_tokens, n, walked in zip(
                        twin["departing"], arrays["new_tokens"], clusters,
                        twin["pages_per_beat"])]
        assert result["cycles"].tolist() == expected


def test_directed():
    # the twin's hand-worked streams (tests/test_model_kvmu.py), on their configurations
    def stream(new_tokens, cluster, new, selected):
        offsets = np.concatenate([[0], np.cumsum([len(ids) for ids in selected])])
        return {"new_tokens": np.array(new_tokens), "cluster": np.array(cluster),
                "new": np.array(new, dtype=bool), "selected_offsets": offsets,
                "selected_ids": np.array([c for ids in selected for c in ids], np.uint64)}
    check(TINY.replace(recent_window=2, kvmu_page_tokens=2, kv_token_bits=4, max_frame_tokens=4),
          [stream([2, 2, 2, 1], [0, 1, 0, 0, 1, 0, 2], [1, 1, 0, 0, 0, 0, 1],
                  [[], [0], [0, 1], [0]])])
    check(TINY.replace(recent_window=4, kvmu_page_tokens=4),
          [stream([4, 4, 1, 1], [0] * 10, [1] + [0] * 9, [[0], [0], [0], [0]])])
    check(TINY.replace(kv_token_bits=4, kvmu_page_tokens=8, recent_window=1),
          [stream([1] * 6, [0, 1, 2, 0, 0, 0], [1, 1, 1, 0, 0, 0], [[]] * 5 + [[0, 1, 2]])])


@pytest.mark.parametrize("seed", [0, 1])
def test_random_no_stall_cycles(seed):
    check(TINY, streams_of(TINY, seed), seed=seed)


@pytest.mark.parametrize("stream", ["cmd", "assign", "selected", "moves", "counts", "fetch"])
def test_stalls_on_each_stream(stream):
    check(TINY, streams_of(TINY, 5, count=2), stall={stream: 0.5}, seed=3)


@pytest.mark.parametrize("seed", [2, 3])
def test_random_stalls_everywhere(seed):
    check(TINY, streams_of(TINY, seed), seed=seed, stall=0.4)


@pytest.mark.parametrize("changes", [
    {"kvmu_page_tokens": 1},                           # one token per page
    {"recent_window": 0},                              # every past token offloaded
    {"kvmu_page_tokens": 16, "recent_window": 3},      # window not a power of two
    {"kv_token_bits": 5},                              # 8 pages: the store fills
    {"kv_token_bits": 4, "kvmu_page_tokens": 16},      # one page (P = 2**kv_token_bits)
    {"count_bits": 2},                                 # counts saturate at 3
    {"max_frame_tokens": 1, "recent_window": 1},       # one token a frame
])
def test_parameter_corners(changes):
    config = TINY.replace(**changes)
    results = check(config, streams_of(config, 7, count=2, frames=14), stall=0.3, seed=1)
    if "kv_token_bits" in changes:
        assert any(result["store_full"].any() for result in results)  # the corner was reached


@pytest.mark.parametrize("reset_after", [0, 3, 9, 20])
def test_reset_mid_stream(reset_after):
    # reset with a command on offer, during the offload / assignment of the second and third
    # frames, and during a fetch; the interrupted stream then runs again from its start
    streams = streams_of(TINY, 11, count=2, frames=6)
    beats = KVMUCodec().input_beats(TINY, streams[:1])

    async def partial_stream_then_reset(sim, bench):
        bench.send(beats)
        await wait_until(sim, lambda: len(bench.drivers["assign"].transfers) >= reset_after,
                         5000, f"{reset_after} assignments")
        await bench.reset(sim)

    check_block("kvmu", TINY, streams, scenario=partial_stream_then_reset)


def test_workload_streams():
    # the tiny workload's whole stream of two (layer, KV head), ReSV's assignments and selection
    streams = [workload_stream(TINY, 40, layer=layer, kv_head=head)[0]
               for layer, head in ((0, 0), (1, 1))]
    results = check(TINY, streams)
    assert all(result["fetch_token"].size > 0 for result in results)
    check(TINY, streams, stall=0.3, seed=4)
