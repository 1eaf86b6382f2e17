"""The DRE frame twin (:mod:`model.twins.dre`): composition of the block twins, ReSV end to end,
command rejection, flags, and the file interface on a KV dump (``python -m sim.run dre``)."""

import dataclasses

import numpy as np
import pytest

from model.config import PRESETS
from model.npzio import load_arrays
from model.reference.resv import ResvHead, make_hyperplanes
from model.stimulus.kvdump import KVDump, save_kv_dump
from model.stimulus.lxe import OUTPUTS
from model.stimulus.traces import dre_trace
from model.twins import dre as dre_twin
from model.twins import hcu as hcu_twin
from model.twins import kvmu as kvmu_twin
from model.twins import wtu as wtu_twin
from model.twins.dre import Command, DRETwin, run_dump
from sim.run import main
from tests.resv_check import check_against_float_resv, problem_index, problem_part

TINY = PRESETS["tiny"]
FRAMES = 16


@pytest.fixture(scope="module")
def tiny_dump():
    return KVDump(dre_trace(FRAMES, seed=2), "tiny dump")


@pytest.fixture(scope="module")
def tiny_run(tiny_dump):
    return run_dump(TINY, tiny_dump)


def test_problems_in_frame_layer_head_order(tiny_dump, tiny_run):
    order = list(zip(tiny_run["problem_frame"], tiny_run["problem_layer"],
                     tiny_run["problem_head"]))
    assert order == sorted(order)
    assert len(order) == FRAMES * tiny_dump.layers * tiny_dump.kv_heads
    for spec in OUTPUTS:
        assert spec.name in tiny_run, spec.name


def test_fetched_tokens_and_the_window_are_what_float_resv_retrieves(tiny_dump, tiny_run):
    """Item 5: same hashes, same clusters, same quantised scores, same retrieved set."""
    check_against_float_resv(TINY, tiny_dump, tiny_run, range(FRAMES),
                             range(tiny_dump.layers), range(tiny_dump.kv_heads))


def test_each_phase_is_its_block_twins_own_run(tiny_dump, tiny_run):
    """The composition against the block twins run on their own, for stream (1, 1)."""
    layer, head = 1, 1
    problems = [problem_index(tiny_run, frame, layer, head) for frame in range(FRAMES)]
    hashes = tiny_run["token_hash"][layer, head, :tiny_dump.frame_starts[FRAMES]]
    clusters = tiny_run["token_cluster"][layer, head, :tiny_dump.frame_starts[FRAMES]]
    # HCU: same assignments as one stream; the first frame (empty table) takes the cycles the
    # HCU twin gives that frame's tokens on their own.
    whole = hcu_twin.hash_cluster(TINY, hashes)
    np.testing.assert_array_equal(whole["cluster"], clusters)
    first = hcu_twin.hash_cluster(TINY, hashes[:tiny_dump.frame_starts[1]])
    # Its cycles add up to d(last token), counted from the first acceptance in cycle 0; the
    # phase counts both ends: d + 1.
    assert tiny_run["cycles_hcu"][problems[0]] == first["cycles"].sum() + 1
    # KVMU: moves, counts, descriptors and cycles of the KVMU twin on the same stream.
    selected = [np.flatnonzero(problem_part(tiny_run, "selected", "cluster_offsets", p))
                for p in problems]
    offsets = np.concatenate([[0], np.cumsum([len(ids) for ids in selected])])
    kvmu = kvmu_twin.run_stream(TINY, {
        "new_tokens": np.diff(tiny_dump.frame_starts[:FRAMES + 1]).astype(np.uint64),
        "cluster": clusters.astype(np.uint64), "new": whole["new"],
        "selected_offsets": offsets.astype(np.uint64),
        "selected_ids": np.concatenate(selected).astype(np.uint64)})
    np.testing.assert_array_equal(kvmu["cycles"], tiny_run["cycles_kvmu"][problems])
    for index, problem in enumerate(problems):
        for key in ("desc_base", "desc_len", "fetch_token"):
            offsets_key = "fetch_offsets" if key == "fetch_token" else "desc_offsets"
            np.testing.assert_array_equal(problem_part(kvmu, key, offsets_key, index),
                                          problem_part(tiny_run, key, offsets_key, problem))
        np.testing.assert_array_equal(problem_part(kvmu, "move_dst", "move_offsets", index),
                                      problem_part(tiny_run, "move_dst", "move_offsets", problem))
        # WTU: rows, emission and aggregate of the WTU twin on the problem's scores and counts.
        counts = problem_part(tiny_run, "cluster_count", "cluster_offsets", problem)
        scores = problem_part(tiny_run, "score", "score_offsets", problem)
        scores = scores.reshape(-1, counts.size)
        wtu = wtu_twin.wtu_problem(TINY, scores, counts)
        # The KVMU waits for the first selected beat (the packer, then the WTU's rows, stats,
        # emissions and aggregate fetches), then for each later beat at most its gap.
        first, gaps = wtu_twin.selected_schedule(wtu, TINY.wtu_lanes)
        wait = tiny_run["cycles_wtu"][problem] - dre_twin.PACKER_CYCLES - first
        assert 0 <= wait <= sum(gaps)
        assert tiny_run["cycles"][problem] == (
            dre_twin.COMMAND_CYCLES + tiny_run["cycles_hcu"][problem] + dre_twin.HANDOFF_CYCLES
            + tiny_run["cycles_kvmu"][problem] + tiny_run["cycles_wtu"][problem]
            + dre_twin.STATUS_CYCLES)


def test_hcu_schedule_of_a_batch_after_a_table_of_clusters():
    """``opened`` = clusters opened before the batch; 0 is the schedule from a reset."""
    rng = np.random.default_rng(5)
    hashes = rng.integers(0, 1 << TINY.hash_bits, 12)
    twin = hcu_twin.HashClusterTwin(TINY)
    steps = [twin.step(int(value)) for value in hashes]
    args = ([s.first_id for s in steps], [s.beats for s in steps], [s.new for s in steps])
    np.testing.assert_array_equal(hcu_twin.schedule(TINY, *args, opened=0),
                                  hcu_twin.schedule(TINY, *args))
    # A later batch: the schedule checks that each token ran every compare of its table
    # before its decision (AssertionError otherwise), so it passes with the right ``opened``
    # and fails when the table's clusters are left out.
    before = twin.opened
    later = [twin.step(int(value)) for value in rng.integers(0, 1 << TINY.hash_bits, 4)]
    args = ([s.first_id for s in later], [s.beats for s in later], [s.new for s in later])
    decided = hcu_twin.schedule(TINY, *args, opened=before)
    assert np.all(np.diff(decided) > 0)
    with pytest.raises(AssertionError, match="compare"):
        hcu_twin.schedule(TINY, *args, opened=0)


class _FixedLXE:
    """An LXE returning fixed scores: ``score`` for every cluster of every row."""

    def __init__(self, rows, score=1):
        self.rows, self.score, self.assigned = rows, score, []

    def assignments(self, cluster):
        self.assigned.append(np.asarray(cluster))

    def score_rows(self, clusters):
        return np.full((self.rows, clusters), self.score, np.uint64)


def _command(**fields):
    base = dict(layer=0, kv_head=0, frame=0, new_tokens=2, rows=1, restart=True)
    return Command(**{**base, **fields})


@pytest.mark.parametrize("fields, reason", [
    (dict(layer=32), "layer must be from 0 to 31"),
    (dict(kv_head=8), "kv_head must be from 0 to 7"),
    (dict(frame=1 << 16), "frame must be from 0 to 65535"),
    (dict(new_tokens=0), "new_tokens must be from 1 to 16"),
    (dict(new_tokens=17), "new_tokens must be from 1 to 16"),
    (dict(rows=9), "rows must be from 0 to 8"),
    (dict(mode=4), "mode must be 0 (continue), 1 (restart), 2 (restore) or 3 (save), not 4"),
    (dict(mode=2, rows=9), "rows must be from 0 to 8"),       # a restore's, before its image
])
def test_out_of_range_command_is_rejected_and_changes_nothing(fields, reason):
    assert any(reason in text for text in dre_twin.command_errors(TINY, _command(**fields)))
    dre = DRETwin(TINY)
    first = dre.problem(_command(), [1, 2], _FixedLXE(1))
    lxe = _FixedLXE(1)
    rejected = dre.problem(_command(**{"restart": False, **fields}), [3, 3], lxe)  # hashes unused
    assert rejected.rejected and lxe.assigned == []
    assert rejected.cycles == dre_twin.COMMAND_CYCLES + dre_twin.STATUS_CYCLES
    assert not first.rejected and dre.clusters == first.counts.size


def test_the_mode_field_and_the_restart_flag_agree():
    assert Command(0, 0, 0, 1, 0, restart=True).mode == dre_twin.MODE_RESTART
    assert Command(0, 0, 0, 1, 0).mode == dre_twin.MODE_CONTINUE
    assert Command(0, 0, 0, 1, 0, restart=True, mode=3).restart is False     # mode wins
    assert Command(0, 0, 0, 1, 0, mode=1).restart is True


def test_continuation_without_a_context_is_rejected():
    assert DRETwin(TINY).problem(_command(restart=False), [1, 2], _FixedLXE(1)).rejected


def test_continuation_of_another_stream_or_an_old_frame_is_rejected():
    dre = DRETwin(TINY)
    dre.problem(_command(frame=3), [1, 2], _FixedLXE(1))
    for fields in (dict(kv_head=1), dict(layer=1), dict(frame=3), dict(frame=2)):
        assert dre.problem(_command(restart=False, **fields), [1, 2], _FixedLXE(1)).rejected
    assert not dre.problem(_command(restart=False, frame=4), [1, 2], _FixedLXE(1)).rejected


def test_a_rejected_command_leaves_the_stream_as_it_was():
    hashes = np.random.default_rng(1).integers(0, 1 << TINY.hash_bits, (6, 3))
    runs = []
    for reject in (False, True):
        dre, results = DRETwin(TINY), []
        for frame, frame_hashes in enumerate(hashes):
            if reject and frame == 3:
                dre.problem(_command(restart=False, frame=frame, rows=99), frame_hashes,
                            _FixedLXE(1))
            command = _command(restart=frame == 0, frame=frame, new_tokens=3, rows=2)
            results.append(dre.problem(command, frame_hashes, _FixedLXE(2)))
        runs.append(results)
    for plain, with_reject in zip(*runs):
        assert plain.cycles == with_reject.cycles
        np.testing.assert_array_equal(plain.cluster, with_reject.cluster)
        assert plain.descriptors == with_reject.descriptors


def test_restart_empties_the_context():
    hashes = np.random.default_rng(2).integers(0, 1 << TINY.hash_bits, (4, 3))
    dre = DRETwin(TINY)
    for frame, frame_hashes in enumerate(hashes):
        dre.problem(_command(restart=frame == 0, frame=frame, new_tokens=3), frame_hashes,
                    _FixedLXE(1))
    again = dre.problem(_command(new_tokens=3, kv_head=5), hashes[0], _FixedLXE(1))
    fresh = DRETwin(TINY).problem(_command(new_tokens=3), hashes[0], _FixedLXE(1))
    assert again.cycles == fresh.cycles and again.counts.tolist() == fresh.counts.tolist()


def test_cluster_id_overflow_is_flagged_and_no_token_is_lost():
    config = dataclasses.replace(TINY, max_clusters=16, hash_mem_entries=16)
    # 16 hashes that are pairwise at least 4 bits apart (one hex digit each: x * 0x1111),
    # so every one opens a cluster; the 17th distinct one finds no id.
    hashes = [value * 0x1111 for value in range(16)] + [0x0F0F, 0xF0F0]
    dre, total = DRETwin(config), 0
    results = []
    for frame in range(0, len(hashes), 6):
        chunk = hashes[frame:frame + 6]
        results.append(dre.problem(_command(frame=frame, restart=frame == 0,
                                            new_tokens=len(chunk)), chunk, _FixedLXE(1)))
        total += len(chunk)
    last = results[-1]
    assert last.hcu_overflow and last.overflow.sum() == 2
    assert last.cluster[last.overflow].tolist() == [0, 0]     # the HCU twin's "flag" rule
    assert not any(result.hcu_overflow for result in results[:-1])
    assert int(last.counts.sum()) == total                    # every token counted


def test_store_full_is_flagged_and_sticky():
    # 16 store slots in pages of 4, a window of 1: the fifth page finds no room.
    config = dataclasses.replace(TINY, kv_token_bits=4, recent_window=1, kvmu_page_tokens=4)
    dre, flags = DRETwin(config), []
    for frame in range(8):
        # a new cluster per frame (hashes 4 bits apart): one page per offloaded token
        result = dre.problem(_command(frame=frame, restart=frame == 0, new_tokens=1),
                             [frame * 0x1111], _FixedLXE(1))
        flags.append(result.store_full)
        dropped = [move for move in result.moves if move[3]]
        assert all(move[1] == 0 for move in dropped)
    # tokens 0..3 take pages 0..3 (offloaded in frames 2..5); token 4 (frame 6) finds none
    assert flags == [False] * 6 + [True] * 2


def test_context_bytes_of_the_edge_preset():
    edge = PRESETS["edge"]
    bits = dre_twin.context_state_bits(edge)
    # HCU table: 1024 entries x 32 bits; its counter 12 + 1 bits; layer 5 + head 3 + frame 16
    assert bits["hcu_table"] == 32768 and bits["hcu_opened"] == 13 and bits["stream"] == 24
    assert dre_twin.context_bytes(edge) == -(-sum(bits.values()) // 8)


def test_file_interface_slices_and_errors(tmp_path, tiny_dump, tiny_run, capsys):
    source, target = tmp_path / "dump.npz", tmp_path / "out.npz"
    arrays = dre_trace(FRAMES, seed=2)
    save_kv_dump(source, **arrays)
    assert main(["dre", "--config", "tiny", "--input", str(source), "--output", str(target),
                 "--frames", "10:16", "--layers", "1", "--heads", "0:2"]) == 0
    written = load_arrays(target, OUTPUTS)
    keep = (tiny_run["problem_frame"] >= 10) & (tiny_run["problem_layer"] == 1)
    for key in ("problem_frame", "problem_head", "cycles", "cycles_hcu"):
        np.testing.assert_array_equal(written[key], tiny_run[key][keep], err_msg=key)
    fetched = [problem_part(tiny_run, "fetch_token", "fetch_offsets", p)
               for p in np.flatnonzero(keep)]
    np.testing.assert_array_equal(written["fetch_token"], np.concatenate(fetched))
    assert (written["token_cluster"][0] == -1).all()          # layer 0 not run
    for argv, message in (
            (["--frames", "5:2"], "frames must select from 0 to 16 (A < B), not '5:2'"),
            (["--heads", "x"], "heads must be A:B or A with integers, not 'x'"),
            (["--layers", "2"], "layers must select from 0 to 2 (A < B), not '2'")):
        assert main(["dre", "--config", "tiny", "--input", str(source), "--output",
                     str(tmp_path / "bad.npz")] + argv) == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "bad.npz").exists()


def test_a_frame_larger_than_the_configuration_names_the_dump(tmp_path, capsys):
    source = tmp_path / "dump.npz"
    save_kv_dump(source, **dre_trace(3, seed=2))
    config = tmp_path / "small.json"
    config.write_text('{"max_frame_tokens": 2, "max_rows": 8}')
    assert main(["dre", "--config", str(config), "--input", str(source), "--output",
                 str(tmp_path / "out.npz")]) == 2
    assert "dump.npz: frame 0 has 4 tokens, more than max_frame_tokens = 2" \
        in capsys.readouterr().err


def test_frames_without_queries_cluster_and_offload_without_fetching():
    """A dump with queries for a few frames only (``query_frames``): the other frames are
    problems with 0 rows; at the query frames the fetch is still ReSV's."""
    arrays = dre_trace(12, seed=2, layers=1, kv_heads=1)
    query_frames = np.array([5, 11])
    arrays["queries"] = arrays["queries"][:, :, query_frames]
    dump = KVDump({**arrays, "query_frames": query_frames}, "sparse dump")
    out = run_dump(TINY, dump)
    np.testing.assert_array_equal(out["rows"], [8 if f in (5, 11) else 0 for f in range(12)])
    planes = make_hyperplanes(TINY.hash_bits, dump.head_dim, 0, 0, 0)
    resv = ResvHead(TINY, dump.head_dim, planes, dump.tokens)
    for frame in range(12):
        start, stop = dump.frame_starts[frame], dump.frame_starts[frame + 1]
        fetched = problem_part(out, "fetch_token", "fetch_offsets", frame)
        if frame not in query_frames:
            resv.add_keys(dump.keys(0, 0)[start:stop])
            # no rows: the top hands the KVMU an empty selection after its last count
            assert fetched.size == 0
            assert out["cycles_wtu"][frame] == dre_twin.EMPTY_SELECT_CYCLES
            continue
        step = resv.step(dump.keys(0, 0)[start:stop], dump.queries(0, 0, frame))
        retrieved = np.zeros(start, bool)
        retrieved[fetched.astype(int)] = True
        retrieved[max(0, start - TINY.recent_window):] = True
        np.testing.assert_array_equal(retrieved, step.retrieved)


def test_a_save_and_a_restore_worked_by_hand():
    """Tiny: a restart of 2 tokens that open 2 clusters, saved, then restored at frame 1."""
    dre = DRETwin(TINY)
    dre.problem(_command(), [0x0000, 0xFFFF], _FixedLXE(1))        # 16 bits apart: 2 clusters
    save = dre.problem(Command(0, 0, 0, 0, 0, mode=dre_twin.MODE_SAVE), [], None)
    # HCU image: header O = 2, then 2 hashes of 16 bits, a word each: 3 words. KVMU image: a
    # header of 25 bits (1 word), 2 cluster items of 27 bits (2 words), no page (nothing left
    # the window of 8), 2 window tokens (2 words): 5 words. With the 4 header words: 12.
    image = save.saved_image
    assert image[:4] == [0xD2E1 << 16, 0, 3, 5] and len(image) == 12
    assert image[4:7] == [2, 0x0000, 0xFFFF]
    # save: command 1 + (CONTEXT_START_CYCLES 1 + 12 words) + status 1 = 15
    assert (save.context_words, save.cycles) == (12, 15)
    other = DRETwin(TINY)
    restored = other.problem(_command(frame=1, restart=False, mode=dre_twin.MODE_RESTORE),
                             [0x0001, 0xFFFE], _FixedLXE(1), image=image)
    straight = dre.problem(_command(frame=1, restart=False), [0x0001, 0xFFFE], _FixedLXE(1))
    assert not (restored.context_invalid or restored.context_refused)
    assert restored.cluster.tolist() == straight.cluster.tolist() == [0, 1]
    # restore: 12 positions + RESTORE_EXTRA_CYCLES 2 + RESTORE_DECIDE_CYCLES 1 = 15
    assert restored.phase_cycles["context"] == 15
    assert restored.cycles == straight.cycles + 15


def test_a_restore_of_garbage_runs_as_a_restart_and_a_save_needs_the_stream_on_chip():
    dre = DRETwin(TINY)
    save = Command(0, 0, 0, 0, 0, mode=dre_twin.MODE_SAVE)
    assert dre.problem(save, [], None).rejected                      # nothing on chip
    assert dre_twin.command_errors(TINY, save) == []                 # tokens, rows ignored
    result = dre.problem(_command(frame=5, restart=False, mode=dre_twin.MODE_RESTORE),
                         [0x0000, 0xFFFF], _FixedLXE(1), image=[1, 2, 3])
    assert result.context_invalid and not result.context_refused
    assert result.cluster.tolist() == [0, 1] and result.context_words == 3
    # 3 words + 2 + 1
    assert result.phase_cycles["context"] == 6
    assert dre.problem(Command(0, 1, 0, 0, 0, mode=dre_twin.MODE_SAVE), [], None).rejected
    assert not dre.problem(save, [], None).rejected
    with pytest.raises(ValueError, match="a restore command \\(mode 2\\) needs an image"):
        dre.problem(_command(frame=6, restart=False, mode=dre_twin.MODE_RESTORE), [1, 2],
                    _FixedLXE(1))


def test_run_dump_switching_contexts_through_one_dre_gives_the_per_stream_outputs():
    dump = KVDump(dre_trace(8, seed=3, layers=2, kv_heads=2), "tiny trace")
    straight = run_dump(TINY, dump, frames="2:8")
    switched = run_dump(TINY, dump, frames="2:8", contexts="switch")
    assert set(switched) - set(straight) == {"context_in_words", "context_out_words",
                                             "cycles_context"}
    for key, value in straight.items():
        assert np.array_equal(switched[key], value), key
    # every reported problem (frames 2-7) was restored; the last frame's problems save nothing
    assert switched["context_in_words"].all()
    last = switched["problem_frame"] == 7
    assert not switched["context_out_words"][last].any()
    assert switched["context_out_words"][~last].all()
    # a restore's phase (words + 3) plus a save command (2 + 1 + words), no stalls
    saved = switched["context_out_words"][~last].astype(int)
    restored = switched["context_in_words"][~last].astype(int)
    assert (switched["cycles_context"][~last] == restored + 3 + saved + 3).all()
    with pytest.raises(ValueError, match="contexts must be one of stream, switch, not 'all'"):
        run_dump(TINY, dump, contexts="all")
