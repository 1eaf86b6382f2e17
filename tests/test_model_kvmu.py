"""The KVMU twin (:mod:`model.twins.kvmu`) against hand-worked streams and the plain rule.

The plain rule: the fetch of a frame is exactly the offloaded members of its selected clusters,
``{t < past - recent_window : cluster(t) selected}``, computed here with a set comprehension; with
the recent window it is exactly what the float ReSV model (:class:`model.reference.resv.ResvHead`)
retrieves on the workload.
"""

import numpy as np
import pytest

from model.config import PRESETS, DREConfig
from model.npzio import load_arrays, save_arrays
from model.stimulus.kvmu_streams import random_stream, workload_stream
from model.twins.kvmu import (INPUTS, OUTPUTS, check_stream, fetched_tokens, layout_from_moves,
                              run_arrays, run_stream)

TINY = PRESETS["tiny"]


def stream(new_tokens, cluster, new, selected, restart=None):
    """Stream arrays from per-frame lists of selected ids."""
    offsets = np.concatenate([[0], np.cumsum([len(ids) for ids in selected])])
    arrays = {"new_tokens": np.array(new_tokens), "cluster": np.array(cluster),
              "new": np.array(new, dtype=bool), "selected_offsets": offsets,
              "selected_ids": np.array([c for ids in selected for c in ids], dtype=np.uint64)}
    if restart is not None:
        arrays["restart"] = np.array(restart, dtype=bool)
    return arrays


def per_frame(result, key, offsets_key):
    offsets = result[offsets_key].astype(int)
    return [result[key][offsets[f]:offsets[f + 1]].tolist() for f in range(len(offsets) - 1)]


def test_hand_worked_pages_links_and_moves():
    # W = 2, P = 2, 16 store slots (8 pages). Frames (cluster of each new token):
    # f0: t0 c0 (new), t1 c1 (new), selected -    f1: t2 c0, t3 c0, selected {0}
    # f2: t4 c1, t5 c0, selected {0, 1}           f3: t6 c2 (new), selected {0}
    config = TINY.replace(recent_window=2, kvmu_page_tokens=2, kv_token_bits=4,
                          max_frame_tokens=4)
    result = run_stream(config, stream([2, 2, 2, 1], [0, 1, 0, 0, 1, 0, 2],
                                       [1, 1, 0, 0, 0, 0, 1], [[], [0], [0, 1], [0]]))
    # f0, f1: past - W = 0 and 2 - 2 = 0: nothing leaves. f2: past 4, tokens [0, 2) leave:
    #   t0 -> c0 has no page: page 0 (head = tail = 0), slot 0: src 0 mod 2 = 0, dst 0.
    #   t1 -> c1: page 1, slot 0: src 1, dst 2; src continues (0 + 1) but dst does not (0 + 1).
    # f3: past 6, tokens [2, 4) leave:
    #   t2 -> c0 tail page 0 holds 1: slot 1, dst 1, src 2 mod 2 = 0.
    #   t3 -> c0 tail full (2 = P): page 2 linked after page 0, dst 4, src 1: new move.
    assert result["departing"] == [0, 0, 2, 2]
    assert per_frame(result, "move_dst", "move_offsets") == [[], [], [0, 2], [1, 4]]
    assert per_frame(result, "move_src", "move_offsets") == [[], [], [0, 1], [0, 1]]
    assert per_frame(result, "move_len", "move_offsets") == [[], [], [1, 1], [1, 1]]
    # counts: f0 c0 1, c1 1; f1 c0 3; f2 c0 4, c1 2; f3 c2 1
    assert per_frame(result, "counts", "count_offsets") == [[1, 1], [3, 1], [4, 2], [4, 2, 1]]
    # f1: c0 has nothing offloaded. f2: c0 page 0 (fill 1) -> (0, 1); c1 page 1 -> (2, 1).
    # f3: c0 pages 0 (full) and 2 (fill 1) -> (0, 2), (4, 1).
    assert per_frame(result, "desc_base", "desc_offsets") == [[], [], [0, 2], [0, 4]]
    assert per_frame(result, "desc_len", "desc_offsets") == [[], [], [1, 1], [2, 1]]
    # addresses 0, 2, 1, 4 hold tokens 0, 1, 2, 3: f2 fetches t0 (c0), t1 (c1); f3 the offloaded
    # members of c0: t0, t2, t3.
    assert per_frame(result, "fetch_token", "fetch_offsets") == [[], [], [0, 1], [0, 2, 3]]
    # cycles = 1 + [d > 0] + 4 d + 1 + 3 n + (N + 1) + sum(3 + pages + max(0, pages - 1)) + 2
    # per frame:
    # f0 (d 0, n 2, N 2, one beat of 0 pages): 1 + 0 + 0 + 1 + 6 + 3 + 3 + 2 = 16
    # f1 (d 0, n 2, N 2, one beat of 0 pages): 1 + 0 + 0 + 1 + 6 + 3 + 3 + 2 = 16
    # f2 (d 2, n 2, N 2, two beats of 1 page): 1 + 1 + 8 + 1 + 6 + 3 + 4 + 4 + 2 = 30
    # f3 (d 2, n 1, N 3, one beat of 2 pages, 1 link): 1 + 1 + 8 + 1 + 3 + 4 + 6 + 2 = 26
    assert result["cycles"].tolist() == [16, 16, 30, 26]
    assert not result["store_full"].any()


def test_hand_worked_merging_runs():
    # W = 4, P = 4, one cluster. f0, f1: 4 tokens each; f2: 1 token; f3: 1 token.
    # f2 (past 8): tokens 0..3 leave to page 0 slots 0..3, window slots 0..3: one move (0, 0, 4).
    # f3 (past 9): token 4 leaves (slot 4 mod 4 = 0) to a new page 1 (address 4): move (0, 4, 1);
    #   the fetch walks pages 0 (full) and 1 (fill 1): (0, 4) and (4, 1) merge into (0, 5).
    config = TINY.replace(recent_window=4, kvmu_page_tokens=4)
    result = run_stream(config, stream([4, 4, 1, 1], [0] * 10, [1] + [0] * 9,
                                       [[0], [0], [0], [0]]))
    assert per_frame(result, "move_len", "move_offsets") == [[], [], [4], [1]]
    assert per_frame(result, "move_dst", "move_offsets") == [[], [], [0], [4]]
    assert per_frame(result, "desc_len", "desc_offsets") == [[], [], [4], [5]]
    assert per_frame(result, "fetch_token", "fetch_offsets") == [[], [], [0, 1, 2, 3],
                                                                  [0, 1, 2, 3, 4]]
    assert result["pages_per_beat"] == [[0], [0], [1], [2]]


def test_store_full_is_flagged_and_nothing_else_changes():
    # 16 slots in pages of 8 (2 pages), W = 1: clusters 0, 1, 2 each need a page when they
    # first leave; cluster 2 (token 2) finds none: no move, flagged until the restart.
    config = TINY.replace(kv_token_bits=4, kvmu_page_tokens=8, recent_window=1)
    result = run_stream(config, stream([1] * 6, [0, 1, 2, 0, 0, 0], [1, 1, 1, 0, 0, 0],
                                       [[]] * 5 + [[0, 1, 2]]))
    # frame f (past = f) offloads token f - W - 1 + 1 = f - 1 (f >= 2): f2 t0 (c0: page 0),
    # f3 t1 (c1: page 1, address 8), f4 t2 (c2: no page left: dropped, dst 0), f5 t3 (c0: page
    # 0 slot 1)
    assert per_frame(result, "move_dst", "move_offsets") == [[], [], [0], [8], [0], [1]]
    assert per_frame(result, "move_dropped", "move_offsets") == [[], [], [False], [False],
                                                                  [True], [False]]
    assert result["store_full"].tolist() == [False] * 4 + [True, True]
    assert per_frame(result, "fetch_token", "fetch_offsets")[-1] == [0, 1, 3]  # t2 was lost


def test_restart_empties_the_context():
    # Frames 0-1 fill the context; frame 2 restarts: it must equal the same frame run alone.
    config = TINY.replace(recent_window=1)
    result = run_stream(config, stream([2, 2, 2], [0, 0, 0, 1, 0, 0], [1, 0, 0, 1, 1, 0],
                                       [[0], [0, 1], [0]], restart=[0, 0, 1]))
    alone = run_stream(config, stream([2], [0, 0], [1, 0], [[0]]))
    for key, offsets in (("counts", "count_offsets"), ("move_len", "move_offsets"),
                         ("desc_len", "desc_offsets"), ("fetch_token", "fetch_offsets")):
        assert per_frame(result, key, offsets)[2] == per_frame(alone, key, offsets)[0], key
    assert result["cycles"][2] == alone["cycles"][0]


def plain_fetch(config, arrays):
    """Per frame, {t < past - W : cluster(t) selected}, computed plainly."""
    cluster = np.asarray(arrays["cluster"]).astype(int).tolist()
    offsets = np.asarray(arrays["selected_offsets"]).astype(int)
    past, sets = 0, []
    for frame, new_tokens in enumerate(np.asarray(arrays["new_tokens"]).astype(int)):
        selected = set(np.asarray(arrays["selected_ids"])[offsets[frame]:offsets[frame + 1]]
                       .astype(int).tolist())
        sets.append([t for t in range(past - config.recent_window) if cluster[t] in selected])
        past += new_tokens
    return sets


@pytest.mark.parametrize("seed, changes", [
    (0, {}), (1, {"kvmu_page_tokens": 1}), (2, {"recent_window": 0}),
    (3, {"kvmu_page_tokens": 16, "recent_window": 3}), (4, {"count_bits": 2}),
])
def test_random_streams_fetch_exactly_the_offloaded_selected_members(seed, changes):
    config = TINY.replace(**changes)
    rng = np.random.default_rng(seed)
    for _ in range(5):
        arrays = random_stream(config, rng, frames=int(rng.integers(1, 25)))
        result = run_stream(config, arrays)
        assert not result["store_full"].any()
        assert per_frame(result, "fetch_token", "fetch_offsets") == plain_fetch(config, arrays)
        # counts: members so far, saturated at max_count
        tokens = np.cumsum(arrays["new_tokens"].astype(int))
        for frame, counts in enumerate(per_frame(result, "counts", "count_offsets")):
            members = np.bincount(arrays["cluster"][:tokens[frame]].astype(int))
            assert counts == np.minimum(members, config.max_count).tolist()
        # every offloaded member has a slot in its cluster's pages, and at most P - 1 slots
        # of a cluster's pages are unused (its tail page)
        context = result["context"]
        last_past = tokens[-1] - int(arrays["new_tokens"][-1])   # past when the last frame began
        offloaded = np.bincount(arrays["cluster"][:max(0, last_past - config.recent_window)]
                                .astype(int), minlength=context.clusters)
        for c in range(context.clusters):
            unused = len(context.pages_of(c)) * config.kvmu_page_tokens - offloaded[c]
            assert 0 <= unused <= config.kvmu_page_tokens - 1


@pytest.mark.parametrize("config_name, workload, frames, layer, kv_head", [
    ("tiny", "tiny", 40, 0, 0), ("tiny", "tiny", 40, 1, 1), ("edge", "default", 60, 2, 5),
])
def test_workload_fetch_plus_window_is_what_resv_retrieves(config_name, workload, frames, layer,
                                                           kv_head):
    config = PRESETS[config_name]
    arrays, retrieved = workload_stream(config, frames, workload=workload, layer=layer,
                                        kv_head=kv_head)
    result = run_stream(config, arrays)
    fetched = per_frame(result, "fetch_token", "fetch_offsets")
    past = 0
    for frame, new_tokens in enumerate(arrays["new_tokens"].astype(int)):
        window = range(max(0, past - config.recent_window), past)
        assert sorted(fetched[frame] + list(window)) == retrieved[frame].tolist(), frame
        past += new_tokens
    assert sum(len(tokens) for tokens in fetched) > 0


def test_file_interface_round_trip(tmp_path):
    rng = np.random.default_rng(9)
    arrays = random_stream(TINY, rng, frames=12)
    save_arrays(tmp_path / "in.npz", arrays)
    out = run_arrays(TINY, load_arrays(tmp_path / "in.npz", INPUTS))
    assert set(out) == {spec.name for spec in OUTPUTS}
    save_arrays(tmp_path / "out.npz", out)
    back = load_arrays(tmp_path / "out.npz", OUTPUTS)
    assert all(back[key].tolist() == out[key].tolist() for key in out)


def test_layout_decoding():
    address_token = layout_from_moves([4, 0], [2, 1])   # tokens 0, 1 at 4, 5; token 2 at 0
    assert address_token == {4: 0, 5: 1, 0: 2}
    assert fetched_tokens([0, 4], [1, 2], address_token).tolist() == [0, 1, 2]
    # token 1 dropped (no page): tokens 0 and 2 at 4 and 0
    assert layout_from_moves([4, 0, 0], [1, 1, 1], [False, True, False]) == {4: 0, 0: 2}
    with pytest.raises(ValueError, match=r"covers address 6, which holds no offloaded token"):
        fetched_tokens([4], [3], address_token)


@pytest.mark.parametrize("changes, error, message", [
    ({"kvmu_page_tokens": 0}, ValueError, r"kvmu_page_tokens must be from 1 to 1024, not 0"),
    ({"kvmu_page_tokens": 2048}, ValueError, r"kvmu_page_tokens must be from 1 to 1024, not 2048"),
    ({"kvmu_page_tokens": 3}, ValueError, r"kvmu_page_tokens must be a power of two, not 3"),
    ({"kvmu_page_tokens": 4.0}, TypeError, r"kvmu_page_tokens must be an integer, not 4\.0"),
    ({"max_frame_tokens": 0}, ValueError, r"max_frame_tokens must be from 1 to 65536, not 0"),
    ({"max_frame_tokens": 65537}, ValueError,
     r"max_frame_tokens must be from 1 to 65536, not 65537"),
])
def test_config_rules(changes, error, message):
    with pytest.raises(error, match=message):
        TINY.replace(**changes)


def test_config_presets():
    # The task's choice: pages of 4 / 16 / 16 tokens, frames of up to 16 / 64 / 128 tokens.
    assert [(PRESETS[name].kvmu_page_tokens, PRESETS[name].max_frame_tokens)
            for name in ("tiny", "edge", "server")] == [(4, 16), (16, 64), (16, 128)]
    assert DREConfig(kv_token_bits=4, recent_window=8, kvmu_page_tokens=16).kvmu_page_tokens == 16


@pytest.mark.parametrize("change, message", [
    ({"new_tokens": np.array([0, 2])}, r"new_tokens must be from 1 to 16 \(max_frame_tokens\)"),
    ({"new_tokens": np.array([17, 2])}, r"new_tokens must be from 1 to 16"),
    ({"cluster": np.array([0, 0, 0])}, r"cluster must hold one value per new token \(the sum of new_tokens, 4\)"),
    ({"cluster": np.array([0, 0, 2, 1])},
     r"cluster of token 2 is flagged new, so it must be 1 \(the clusters opened so far\), not 2"),
    ({"cluster": np.array([0, 1, 1, 1])},
     r"cluster of token 1 must be an opened cluster, 0 to 0, not 1"),
    ({"selected_ids": np.array([1, 0])},
     r"selected_ids of problem 1 must be strictly ascending cluster ids from 0 to 1"),
    ({"selected_ids": np.array([0, 2])}, r"strictly ascending cluster ids from 0 to 1, not \[0, 2\]"),
    ({"selected_offsets": np.array([0, 1, 1])}, r"selected_offsets must be 3 non-decreasing"),
    ({"restart": np.array([1])}, r"restart must hold one flag per problem \(2\)"),
])
def test_bad_streams_are_rejected(change, message):
    # two frames of 2 tokens: t0 c0 (new), t1 c0, t2 c1 (new), t3 c0; frame 1 selects {0, 1}
    arrays = {"new_tokens": np.array([2, 2]), "cluster": np.array([0, 0, 1, 0]),
              "new": np.array([1, 0, 1, 0]), "selected_offsets": np.array([0, 0, 2]),
              "selected_ids": np.array([0, 1])}
    check_stream(TINY, arrays)
    with pytest.raises(ValueError, match=message):
        check_stream(TINY, {**arrays, **change})


def test_too_many_clusters_are_rejected():
    config = TINY.replace(max_clusters=16, hash_mem_entries=16, wtu_lanes=4, topk_k=4)
    arrays = stream([16, 1], list(range(17)), [1] * 17, [[], []])
    with pytest.raises(ValueError, match=r"new opens cluster 16 at token 16, beyond max_clusters 16"):
        check_stream(config, arrays)
