"""The sorter-based top-k baseline against its twin: outputs with stalls, cycles without."""

import random

import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.sim import Simulator

from hw.topk_sorter import TopKSorter
from model.twins import topk_sorter as twin
from model.config import PRESETS
from tests.amaranth_streams import get_all, put_all

TINY = PRESETS["tiny"]


def ref_topk(config, rows):
    """Expected output entries of ``rows``, as (cluster, score, valid, last) tuples."""
    entries = []
    for row in rows:
        clusters, scores, valid = twin.topk_row(config, row)
        for index in range(config.topk_k):
            entries.append((int(clusters[index]), int(scores[index]), int(valid[index]),
                            int(index == config.topk_k - 1)))
    return entries


def rtl_topk(config, rows, stall=0.0, seed=0):
    """Run ``rows`` through the RTL; returns the output entries and the input handshake cycles."""
    dut = TopKSorter(config)
    lanes = config.wtu_lanes
    beats = []
    for row in rows:
        count = len(row) // lanes
        for beat in range(count):
            beats.append({"scores": [int(value) for value in row[beat * lanes:(beat + 1) * lanes]],
                          "last": int(beat == count - 1)})
    received, accepted = [], []

    async def producer(ctx):
        await put_all(ctx, dut.i, beats, random.Random(seed), stall)

    async def consumer(ctx):
        received.extend(await get_all(ctx, dut.o, len(rows) * config.topk_k,
                                      random.Random(seed + 1), stall))

    async def monitor(ctx):
        cycle = 0
        async for _, _, valid, ready, last in ctx.tick().sample(dut.i.valid, dut.i.ready,
                                                                 dut.i.payload.last):
            if valid and ready:
                accepted.append((cycle, last))
            cycle += 1

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(producer)
    sim.add_testbench(consumer)
    sim.add_process(monitor)
    sim.run()
    entries = [(int(p.cluster), int(p.score), int(p.valid), int(p.last)) for p in received]
    return entries, accepted


def random_rows(config, count, rng, max_beats=None):
    """Rows of random lengths (whole beats) with many ties (scores from a small range)."""
    max_beats = max_beats or config.max_clusters // config.wtu_lanes
    rows = []
    for _ in range(count):
        beats = int(rng.integers(1, max_beats + 1))
        high = int(rng.choice([3, config.max_score]))
        rows.append(rng.integers(0, high + 1, size=beats * config.wtu_lanes))
    return rows


@pytest.mark.parametrize("config", [TINY, TINY.replace(topk_k=3, wtu_lanes=8),
                                    TINY.replace(topk_k=12, wtu_lanes=2)],
                         ids=["tiny", "k3-lanes8", "k12-lanes2"])
def test_matches_twin_with_stalls(config):
    rng = np.random.default_rng(7)
    rows = random_rows(config, 6, rng)
    rows.append(np.full(config.wtu_lanes, config.max_score))  # one beat, all tied
    entries, _ = rtl_topk(config, rows, stall=0.3, seed=3)
    assert entries == ref_topk(config, rows)


def test_cycles_per_row_match_twin():
    config = TINY
    rng = np.random.default_rng(11)
    rows = random_rows(config, 4, rng)
    entries, accepted = rtl_topk(config, rows)
    assert entries == ref_topk(config, rows)
    firsts = [accepted[0][0]] + [accepted[index + 1][0] for index, (_, last)
                                 in enumerate(accepted[:-1]) if last]
    periods = np.diff(firsts).tolist()
    assert periods == [twin.cycles_per_row(config, len(row)) for row in rows[:-1]]


def test_twin_worked_example():
    # Worked by hand: lanes 4, k 4, scores [5, 9, 5, 1, 9, 0, 0, 2] -> 9 (cluster 1),
    # 9 (cluster 4, tie after the lower index), 5 (cluster 0), 5 (cluster 2).
    clusters, scores, valid = twin.topk_row(TINY, [5, 9, 5, 1, 9, 0, 0, 2])
    assert clusters.tolist() == [1, 4, 0, 2]
    assert scores.tolist() == [9, 9, 5, 5]
    assert valid.tolist() == [1, 1, 1, 1]
    # Worked by hand: 2 beats of 4 lanes, k 4 -> B + 1 + k = 2 + 1 + 4 = 7 cycles.
    assert twin.cycles_per_row(TINY, 8) == 7


def test_twin_pads_short_rows():
    config = TINY.replace(topk_k=6)
    clusters, scores, valid = twin.topk_row(config, [0, 3, 3, 1])
    assert clusters.tolist() == [1, 2, 3, 0, 0, 0]
    assert scores.tolist() == [3, 3, 1, 0, 0, 0]
    assert valid.tolist() == [1, 1, 1, 1, 0, 0]


def test_twin_rejects_bad_rows():
    with pytest.raises(ValueError, match="multiple of wtu_lanes"):
        twin.topk_row(TINY, [1, 2, 3])
    with pytest.raises(ValueError, match="scores must be from 0 to 255"):
        twin.topk_row(TINY, [1, 2, 3, 256])
    with pytest.raises(ValueError, match="clusters must be from 1 to 64"):
        twin.cycles_per_row(TINY, 65)


def test_constructor_checks():
    with pytest.raises(TypeError, match="config must be a DREConfig"):
        TopKSorter({"wtu_lanes": 4})
    with pytest.raises(ValueError, match="wtu_lanes must be at most max_clusters"):
        TopKSorter(TINY.replace(hash_mem_entries=2, hcu_lanes=2, max_clusters=2, topk_k=2,
                                hcu_tokens_in_flight=2))


def test_converts_to_verilog():
    text = verilog.convert(TopKSorter(TINY), name="topk_sorter")
    assert "module topk_sorter" in text
    assert "i__payload" in text and "o__payload" in text
