"""KV dump loader (model/stimulus/kvdump.py): a valid round trip and clear errors for malformed files."""

import numpy as np
import pytest

from model.stimulus.kvdump import load_kv_dump, save_kv_dump
from model.npzio import save_arrays

LAYERS, HEADS, FRAMES, TOKENS_PER_FRAME, ROWS, DIM = 2, 2, 5, 3, 4, 8


def dump_arrays(seed=0):
    rng = np.random.default_rng(seed)
    tokens = FRAMES * TOKENS_PER_FRAME
    return {"keys": rng.standard_normal((LAYERS, HEADS, tokens, DIM)),
            "values": rng.standard_normal((LAYERS, HEADS, tokens, DIM)),
            "frame_of_token": np.arange(tokens) // TOKENS_PER_FRAME,
            "queries": rng.standard_normal((LAYERS, HEADS, FRAMES, ROWS, DIM))}


def test_round_trip(tmp_path):
    arrays = dump_arrays()
    path = tmp_path / "session.npz"
    save_kv_dump(path, **arrays)
    dump = load_kv_dump(path)
    assert (dump.layers, dump.kv_heads, dump.tokens, dump.head_dim, dump.frames,
            dump.query_rows) == (LAYERS, HEADS, FRAMES * TOKENS_PER_FRAME, DIM, FRAMES, ROWS)
    assert np.array_equal(dump.keys(1, 0), arrays["keys"][1, 0])
    assert np.array_equal(dump.queries(0, 1, 3), arrays["queries"][0, 1, 3])
    assert dump.frame_starts.tolist() == [0, 3, 6, 9, 12, 15]


def test_query_frames_subset(tmp_path):
    arrays = dump_arrays()
    arrays["queries"] = arrays["queries"][:, :, [1, 4]]
    path = tmp_path / "subset.npz"
    save_kv_dump(path, query_frames=np.array([1, 4]), **arrays)
    dump = load_kv_dump(path)
    assert dump.queries(0, 0, 2) is None
    assert np.array_equal(dump.queries(0, 0, 4), arrays["queries"][0, 0, 1])


def broken(change):
    arrays = dump_arrays()
    change(arrays)
    return arrays


@pytest.mark.parametrize("change,match", [
    (lambda a: a.pop("values"), r"missing key 'values'"),
    (lambda a: a.update(keys=a["keys"][0]), r"key 'keys' must have 4 dimension\(s\)"),
    (lambda a: a.update(values=a["values"][:, :, :-1]), r"key 'values' must have the shape"),
    (lambda a: a.update(frame_of_token=a["frame_of_token"] + 1),
     r"key 'frame_of_token' must start at 0 and grow by 0 or 1"),
    (lambda a: a.update(frame_of_token=a["frame_of_token"][:-1]),
     r"key 'frame_of_token' must have shape \(15,\)"),
    (lambda a: a.update(queries=a["queries"][:, :, :, :, :-1]),
     r"key 'queries' must have shape \(2, 2, query_frames, rows, 8\)"),
    (lambda a: a.update(queries=a["queries"][:, :, :-1]),
     r"key 'queries' holds 4 frames but the dump has 5"),
    (lambda a: a.update(query_frames=np.array([0, 2, 2, 3, 4])),
     r"key 'query_frames' must list 5 strictly increasing frames"),
    (lambda a: a.update(keys=np.full(a["keys"].shape, np.nan)), r"key 'keys' holds NaN"),
    (lambda a: a.update(extra=np.zeros(1)), r"unknown key\(s\) extra"),
])
def test_malformed_dumps_name_the_file_and_the_problem(tmp_path, change, match):
    path = tmp_path / "bad.npz"
    save_arrays(path, broken(change))
    with pytest.raises(ValueError, match=rf"bad\.npz: .*{match}"):
        load_kv_dump(path)


def test_missing_and_non_npz_files(tmp_path):
    with pytest.raises(ValueError, match="nothing.npz: no such file"):
        load_kv_dump(tmp_path / "nothing.npz")
    text = tmp_path / "text.npz"
    text.write_text("not a zip")
    with pytest.raises(ValueError, match="text.npz: not a readable .npz file"):
        load_kv_dump(text)
