# amaranth: UnusedElaboratable=no
"""Amaranth-simulator tests of the DRE top :class:`hw.dre.DynamicRetrievalEngine` against its
frame twin (:mod:`model.twins.dre`).

Sessions of commands (workload frames of one or more (layer, KV head) streams, run straight or
frame-major through the one DRE with saves and restores of their contexts, or hand-made
commands) go through the stream kit (:func:`sim.kit.amaranth_sim.check_block`: seeded random
valid/ready stalls on every port at once, cycle limit, drain check) and the codec
:class:`sim.payloads.DRECodec`: assignments, moves, counts, selections, fetch descriptors and
fetched tokens, flags always; the cycles per problem (and the status beat's phase and stall
counters) when nothing stalls.
"""

import dataclasses

import numpy as np
import pytest

from hw import dre as dre_rtl
from hw.context_port import SavePipeline, context_word_layout
from hw.count_packer import CountPacker
from hw.dre import (STALL_PORTS, DynamicRetrievalEngine, assignment_layout, command_layout,
                    hash_layout, status_layout)
from hw.kvmu import KVManagementUnit, count_layout, move_layout, select_layout
from hw.retrieval_buffer import descriptor_layout
from hw.wtu import WTULayouts
from model.config import PRESETS
from model.stimulus.dre_sessions import (SeededLXE, command_session, concatenate,
                                         restore_session, saved_image, workload_session)
from model.twins import dre as dre_twin
from model.twins import kvmu as kvmu_twin
from model.twins import wtu as wtu_twin
from model.twins.context import RESTORE_EXTRA_CYCLES, SAVE_EXTRA_CYCLES
from model.twins.dre import MODE_RESTART, MODE_RESTORE, MODE_SAVE, Command
from sim.kit.amaranth_sim import AmaranthBench, check_block
from sim.kit.core import wait_until
from sim.kit.scoreboard import expected_run
from sim.payloads import DRECodec
from tests.context_images import hcu_malformed, kvmu_malformed

TINY = PRESETS["tiny"]


def check(config, sessions, **options):
    """RTL == twin on ``sessions`` (outputs always; cycles and counters when nothing stalls)."""
    return check_block("dre", config, sessions, **options)


def test_constructor_rejects_non_config():
    with pytest.raises(TypeError, match="config must be a DREConfig, not 'tiny'"):
        DynamicRetrievalEngine("tiny")


def test_constructor_names_the_wtu_limit():
    with pytest.raises(ValueError, match=r"wtu_lanes must be at most max_clusters // 2"):
        DynamicRetrievalEngine(TINY.replace(wtu_lanes=64))


def test_ports_and_their_layouts():
    dut = DynamicRetrievalEngine(TINY)
    shapes = {"cmd": command_layout(TINY), "hashes": hash_layout(TINY),
              "assignments": assignment_layout(TINY), "scores": WTULayouts(TINY).scores,
              "moves": move_layout(TINY), "counts": count_layout(TINY),
              "selected": select_layout(TINY), "fetch": descriptor_layout(TINY),
              "status": status_layout(TINY), "context_in": context_word_layout(),
              "context_out": context_word_layout()}
    for name, shape in shapes.items():
        assert getattr(dut, name).payload.shape() == shape, name
    # tiny: layer 5 + head 3 + frame 16 + new_tokens 0..16 (5) + rows 0..8 (4) + mode 2 bits
    assert command_layout(TINY).size == 35
    # 4 cycle counters of 32 bits, one per stalled port (9), context_words (32), 5 flags
    assert len(STALL_PORTS) == 9
    assert status_layout(TINY).size == 32 * (4 + 9 + 1) + 5


def test_the_twins_constants_are_the_tops_and_its_blocks():
    assert dre_twin.COMMAND_CYCLES == DynamicRetrievalEngine.command_cycles
    assert dre_twin.HANDOFF_CYCLES == DynamicRetrievalEngine.handoff_cycles
    assert dre_twin.EMPTY_SELECT_CYCLES == DynamicRetrievalEngine.empty_select_cycles
    assert dre_twin.STATUS_CYCLES == DynamicRetrievalEngine.status_cycles
    assert dre_twin.PACKER_CYCLES == CountPacker.latency
    assert kvmu_twin.SELECT_CYCLES == KVManagementUnit.cycles_per_select
    assert dre_twin.CONTEXT_START_CYCLES == DynamicRetrievalEngine.context_start_cycles
    assert RESTORE_EXTRA_CYCLES == DynamicRetrievalEngine.restore_extra_cycles
    assert dre_twin.RESTORE_DECIDE_CYCLES == DynamicRetrievalEngine.restore_decide_cycles
    assert (dre_twin.CONTEXT_MAGIC, dre_twin.CONTEXT_HEADER_WORDS) == (
        dre_rtl.CONTEXT_MAGIC, dre_rtl.CONTEXT_HEADER_WORDS)
    assert (dre_twin.MODE_RESTORE, dre_twin.MODE_SAVE) == (dre_rtl.MODE_RESTORE,
                                                           dre_rtl.MODE_SAVE)
    # A save's header words cover the blocks' save latency (their first word is ready when
    # the header is out: the save's cycle model has no gap).
    assert SAVE_EXTRA_CYCLES - 1 == SavePipeline.latency <= dre_twin.CONTEXT_HEADER_WORDS
    for name in ("tiny", "edge", "server"):
        assert dre_twin.largest_images(PRESETS[name]) == dre_rtl.largest_images(PRESETS[name])

def test_workload_frames_of_two_streams_equal_the_twin_with_their_cycles():
    session = workload_session(TINY, 10, [(0, 0), (1, 1)])
    decoded, = check(TINY, [session])
    # Something of every phase happened: offloads, selections with and without waits for
    # the WTU beyond its first beat, fetches.
    assert decoded["moves"].size and decoded["selected"].any() and decoded["fetch_token"].size
    assert not decoded["rejected"].any() and not decoded["stall"].any()
    assert (decoded["cycles"] == 2 + decoded["cycles_hcu"] + decoded["cycles_kvmu"]
            + decoded["cycles_wtu"]).all()


def test_random_stalls_on_every_port_at_once_change_no_output():
    session = workload_session(TINY, 6, [(0, 1), (1, 0)], seed=4)
    decoded, = check(TINY, [session], stall=0.35, seed=7)
    stalls = dict(zip(STALL_PORTS, decoded["stall"].sum(axis=0)))
    # every port with traffic stalled (no context moves in this session)
    assert all(stalls[port] > 0 for port in STALL_PORTS if not port.startswith("context")), \
        stalls


def test_reset_in_mid_problem_then_a_restart_behaves_as_on_a_fresh_dre():
    """Reset while the HCU's assignments of a problem come out; afterwards a continue is
    rejected (no context on chip) and a restarted stream is exact, cycles included."""
    first = workload_session(TINY, 4, [(0, 0)])
    after = concatenate(command_session(TINY, [Command(1, 1, 9, 3, 2)], [[1, 2, 3]]),
                        workload_session(TINY, 4, [(1, 1)], seed=5))
    async def scenario(sim, bench):
        bench.send(DRECodec().input_beats(TINY, [first]))
        assignments = bench.monitors["assignments"]
        await wait_until(sim, lambda: len(assignments.transfers) >= 6, 5000, "6 assignments")
        await bench.reset(sim)

    decoded, = check_block("dre", TINY, [after], scenario=scenario)
    assert decoded["rejected"].tolist() == [True, False, False, False, False]


def test_cluster_id_overflow_is_flagged_and_every_token_still_assigned_and_counted():
    config = TINY.replace(max_clusters=16, hash_mem_entries=16)
    # 16 hashes pairwise at least 4 bits apart (one hex digit each: x * 0x1111) open every id;
    # the 17th and 18th distinct ones find none.
    hashes = [value * 0x1111 for value in range(16)] + [0x0F0F, 0xF0F0]
    chunks = [hashes[start:start + 6] for start in range(0, len(hashes), 6)]
    commands = [Command(0, 0, frame, len(chunk), 2, restart=frame == 0)
                for frame, chunk in enumerate(chunks)]
    decoded, = check(config, [command_session(config, commands, chunks)])
    assert decoded["hcu_overflow"].tolist() == [False, False, True]
    assert decoded["overflow"].sum() == 2
    assert decoded["cluster"][decoded["overflow"]].tolist() == [0, 0]
    last = decoded["counts"][int(decoded["counts_offsets"][2]):]
    assert last.sum() == len(hashes)                            # every token counted


def test_store_full_is_flagged_sticky_and_the_dropped_tokens_are_named():
    # 16 store slots in pages of 4, a window of 1: the fifth page finds no room.
    config = TINY.replace(kv_token_bits=4, recent_window=1, kvmu_page_tokens=4)
    commands = [Command(0, 0, frame, 1, 1, restart=frame == 0) for frame in range(8)]
    decoded, = check(config, [command_session(config, commands, [[f * 0x1111] for f in range(8)])])
    assert decoded["store_full"].tolist() == [False] * 6 + [True] * 2
    moves = decoded["moves"].reshape(-1, 4)              # src, dst, length, dropped
    assert moves[moves[:, 3] == 1].tolist() == [[0, 0, 1, 1], [0, 0, 1, 1]]  # dropped, dst 0


def test_out_of_range_commands_are_rejected_and_change_nothing():
    hashes = np.random.default_rng(1).integers(0, 1 << TINY.hash_bits, (3, 4))
    good = [Command(2, 3, frame, 4, 3, restart=frame == 0) for frame in range(3)]
    bad = [dataclasses.replace(good[1], **fields)
           for fields in (dict(new_tokens=0), dict(new_tokens=17), dict(rows=9),
                          dict(mode=MODE_RESTORE, rows=9),          # checked before the image
                          # a restart out of range resets nothing (the HCU keeps its table)
                          dict(mode=MODE_RESTART, new_tokens=0), dict(mode=MODE_RESTART, rows=9),
                          dict(mode=MODE_SAVE, kv_head=2),          # a stream not on chip
                          dict(mode=MODE_SAVE, layer=1))]
    commands = good[:1] + bad + good[1:]
    frame_hashes = [hashes[0]] + [hashes[1]] * len(bad) + list(hashes[1:])
    lxes = [SeededLXE(TINY, c.rows, 0 if c is good[0] else (1 if c is good[1] else 2))
            for c in commands]
    with_bad = dre_twin.record_commands(TINY, commands, frame_hashes, lxes)
    decoded, = check(TINY, [with_bad])
    assert decoded["rejected"].tolist() == [False] + [True] * len(bad) + [False, False]
    assert (decoded["cycles"][1:1 + len(bad)] == 2).all()
    plain = dre_twin.record_commands(TINY, good, list(hashes),
                                     [SeededLXE(TINY, c.rows, i) for i, c in enumerate(good)])
    alone, = check(TINY, [plain])
    for key in ("cycles", "counts", "selected", "descriptors", "cluster"):
        accepted = ~decoded["rejected"] if key == "cycles" else slice(None)
        assert np.asarray(decoded[key])[accepted].tolist() == alone[key].tolist(), key


def test_a_continue_for_a_stream_not_on_chip_is_rejected():
    hashes = [[1, 2], [3, 4], [5, 6], [7, 8], [9, 10]]
    commands = [Command(0, 0, 0, 2, 1),                     # fresh DRE: nothing on chip
                Command(0, 0, 0, 2, 1, restart=True),       # stream (0, 0) on chip, frame 0
                Command(0, 1, 1, 2, 1),                     # another KV head
                Command(1, 0, 1, 2, 1),                     # another layer
                Command(0, 0, 0, 2, 1),                     # not after the last frame
                Command(0, 0, 1, 2, 0)]                     # the stream, next frame: taken
    decoded, = check(TINY, [command_session(TINY, commands, hashes + [[11, 12]])])
    assert decoded["rejected"].tolist() == [True, False, True, True, True, False]
    assert decoded["selected"][int(decoded["selected_offsets"][1]):].sum() == 0   # rows = 0


def test_a_frame_without_rows_leaves_the_wtu_to_the_next_frame():
    """A command with ``rows = 0`` gives the WTU no problem (the selection is the empty beat);
    the frames after it, with rows, run as the twin's do (outputs and cycles)."""
    hashes = [[1, 2], [3, 4], [5, 6], [7, 8]]
    commands = [Command(0, 0, 0, 2, 1, restart=True),
                Command(0, 0, 1, 2, 0),
                Command(0, 0, 2, 2, 2),
                Command(0, 0, 3, 2, 0)]
    decoded, = check(TINY, [command_session(TINY, commands, hashes)])
    assert not decoded["rejected"].any()
    offsets = [int(offset) for offset in decoded["selected_offsets"]]
    assert decoded["selected"][offsets[1]:offsets[2]].sum() == 0      # rows = 0: none
    assert decoded["selected"][offsets[2]:offsets[3]].sum() > 0       # rows again: some


def test_the_block_boundaries_the_cycle_model_rests_on():
    """Seen at the top's ports without stalls: the WTU's first selected beat comes
    ``PACKER_CYCLES + first`` cycles after the KVMU's last count (``first`` from
    :func:`model.twins.wtu.selected_schedule`: the WTU starts its first row in the cycle after
    its last counts beat), and when no later beat keeps the KVMU waiting, the status's
    ``wtu_cycles`` are exactly those cycles: the KVMU is ready for its first selected beat in
    the cycle of its last count's transfer."""
    session = workload_session(TINY, 8, [(1, 0)], seed=6)
    codec = DRECodec()
    bench = AmaranthBench(DynamicRetrievalEngine(TINY), codec.inputs, codec.outputs)
    bench.send(codec.input_beats(TINY, [session]))
    _, limit = expected_run(codec, TINY, [session])
    transcript = bench.run(lambda: codec.complete(TINY, [session], bench.received()), limit)
    counts_end = [cycle for cycle, beat in transcript["counts"] if beat["last"]]
    starts = [0] + [index + 1 for index, (_, beat) in enumerate(transcript["selected"])
                    if beat["last"]][:-1]
    selected_start = [transcript["selected"][index][0] for index in starts]
    statuses = [beat for _, beat in transcript["status"]]
    checked = 0
    for problem, result in enumerate(dre_twin.run_session(TINY, session)):
        wtu = wtu_twin.wtu_problem(TINY, result.scores, result.counts)
        first, _ = wtu_twin.selected_schedule(wtu, TINY.wtu_lanes)
        delay = selected_start[problem] - counts_end[problem]
        assert delay == dre_twin.PACKER_CYCLES + first, problem
        if result.phase_cycles["wtu"] == delay:
            assert statuses[problem]["wtu_cycles"] == delay, problem
            checked += 1
    assert checked >= 4


# The context port: one DRE serving several streams, frame-major, and restores that fail.

def _problems(commands, decoded):
    """Per problem (accepted command that is not a save): its (layer, KV head, frame) and its
    decoded outputs, from one session's decoded arrays."""
    problems, index = {}, 0
    accepted = [c for c, rejected in zip(commands, decoded["rejected"])
                if not rejected and c.mode != MODE_SAVE]
    for command in accepted:
        part = {}
        for key in ("cluster", "new", "counts", "selected", "fetch_token"):
            offsets = decoded[f"{key}_offsets"]
            part[key] = decoded[key][int(offsets[index]):int(offsets[index + 1])].tolist()
        for key, offsets in (("moves", "move_offsets"), ("descriptors", "desc_offsets")):
            part[key] = decoded[key][int(decoded[offsets][index]):
                                     int(decoded[offsets][index + 1])].tolist()
        problems[command.layer, command.kv_head, command.frame] = part
        index += 1
    return problems


def test_streams_interleaved_through_one_dre_equal_each_stream_run_straight():
    """Three streams frame-major through one top, each problem restored from the stream's last
    save (the RTL's saved images equal the twin's, which the session restores), give every
    problem's outputs of the streams run straight; the cycles, status counters and images
    equal the twin's, and a restored problem takes its straight cycles plus its restore's."""
    streams = [(0, 0), (1, 1), (0, 1)]
    switched = workload_session(TINY, 5, streams, switch=True)
    straight = workload_session(TINY, 5, streams)
    switched_decoded, = check(TINY, [switched])
    straight_decoded, = check(TINY, [straight])
    commands = dre_twin.session_commands(switched)
    assert _problems(commands, switched_decoded) == _problems(
        dre_twin.session_commands(straight), straight_decoded)
    modes = np.array([c.mode for c in commands])
    assert (modes == MODE_SAVE).sum() == 12 and (modes == MODE_RESTORE).sum() == 12
    assert not switched_decoded["context_invalid"].any()
    assert not switched_decoded["context_refused"].any()
    assert switched_decoded["fetch_token"].size and switched_decoded["saved"].size
    # the words moved: each save's image, and each restore's (the image of the save before)
    saved = np.diff(switched_decoded["saved_offsets"]).tolist()
    assert switched_decoded["context_words"][modes == MODE_SAVE].tolist() == saved
    assert switched_decoded["context_words"][modes == MODE_RESTORE].tolist() == saved
    straight_cycles = {(c.layer, c.kv_head, c.frame): r.cycles for c, r in
                       zip(dre_twin.session_commands(straight),
                           dre_twin.run_session(TINY, straight))}
    for command, result in zip(commands, dre_twin.run_session(TINY, switched)):
        if command.mode == MODE_RESTORE:
            assert result.cycles == (straight_cycles[command.layer, command.kv_head,
                                                     command.frame]
                                     + result.phase_cycles["context"])


def test_interleaved_streams_under_random_stalls_on_every_port_with_the_context_ports():
    session = workload_session(TINY, 4, [(0, 1), (1, 0)], seed=4, switch=True)
    decoded, = check(TINY, [session], stall=0.35, seed=11)
    stalls = dict(zip(STALL_PORTS, decoded["stall"].sum(axis=0)))
    assert all(count > 0 for count in stalls.values()), stalls   # every port stalled


def test_a_context_never_saved_is_flagged_and_the_problem_runs_as_a_restart():
    """Each image is taken up to its ``last`` (``context_words`` = its words), flagged
    ``context_invalid``, and the problem's outputs are those of a restart at that frame; the
    saved image itself then restores the stream (not flagged)."""
    image = saved_image(TINY)
    earlier = saved_image(TINY, frames=2)
    garbage = np.random.default_rng(5).integers(0, 1 << 32, 9).tolist()
    never_saved = {
        "garbage": garbage,
        "one word": garbage[:1],
        "header cut short": image[:3],
        "wrong magic": [image[0] ^ (1 << 16)] + image[1:],
        "another layer": [image[0] ^ 1] + image[1:],
        "another KV head": [image[0] ^ (1 << dre_twin.LAYER_BITS)] + image[1:],
        "bits 8-15 set": [image[0] | (1 << 8)] + image[1:],
        "a frame not before": [image[0], 3] + image[2:],
        "no HCU words": image[:2] + [0] + image[3:],
        "HCU words above the largest": image[:2] + [10 ** 6] + image[3:],
        "KVMU words above the largest": image[:3] + [10 ** 6] + image[4:],
        "image one word short": image[:-1],
        "image one word long": image + [0],
        # a valid HCU image of 2 frames with the KVMU's of 3: both accepted, they disagree
        "the blocks disagree": image[:2] + [earlier[2], image[3]]
        + earlier[4:4 + earlier[2]] + image[4 + image[2]:],
    }
    assert earlier[4] != image[4]              # the clusters opened differ
    session = restore_session(TINY, list(never_saved.values()) + [image])
    decoded, = check(TINY, [session])
    count = len(never_saved)
    assert decoded["context_invalid"][-count - 1:].tolist() == [True] * count + [False]
    assert not decoded["context_refused"].any()
    assert decoded["context_words"][-count - 1:].tolist() == [
        len(words) for words in never_saved.values()] + [len(image)]
    # a restart at that frame with the same hashes and score rows
    fresh = dre_twin.record_commands(
        TINY, [Command(0, 0, 3, 5, 3, restart=True)],
        [dre_twin.session_part(session, "hashes", len(session["mode"]) - 1)],
        [SeededLXE(TINY, 3, 21 + 3)])        # restore_session: seed + frames
    fresh_decoded, = check(TINY, [fresh])
    for key in ("cluster", "counts", "selected", "fetch_token"):
        offsets = decoded[f"{key}_offsets"]
        for number in range(count):
            problem = 3 + number                  # 3 frames before; the save is no problem
            part = decoded[key][int(offsets[problem]):int(offsets[problem + 1])]
            assert part.tolist() == fresh_decoded[key].tolist(), (key, number)


def test_a_valid_header_with_a_malformed_block_image_is_refused_and_flagged():
    image = saved_image(TINY, frames=4)
    hcu_image = image[4:4 + image[2]]
    kvmu_image = image[4 + image[2]:]
    broken_hcu = hcu_malformed(TINY, hcu_image)["hash above hash_bits"]
    broken_kvmu = kvmu_malformed(TINY, kvmu_image)["window token of no cluster"]
    session = restore_session(TINY, [image[:4] + broken_hcu + kvmu_image,
                               image[:4] + hcu_image + broken_kvmu, image], frames=4)
    decoded, = check(TINY, [session])
    assert decoded["context_refused"][-3:].tolist() == [True, True, False]
    assert not decoded["context_invalid"].any()
