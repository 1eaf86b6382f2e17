"""Validated .npz I/O: every malformed file is rejected with the file and the key named."""

import numpy as np
import pytest

from model.npzio import ArraySpec, check_arrays, load_arrays, save_arrays

SPECS = [
    ArraySpec("hashes", "u", 1, "token hashes"),
    ArraySpec("scores", "f", 2, "float scores"),
    ArraySpec("mask", "b", 1, "a mask", optional=True),
]


def _write(path, **arrays):
    np.savez(path, **arrays)
    return path


def test_round_trip_converts_dtypes(tmp_path):
    path = tmp_path / "ok.npz"
    save_arrays(path, {"hashes": np.array([1, 2, 3], np.uint32),
                       "scores": np.ones((2, 2), np.float32),
                       "mask": np.array([0, 1], np.int8)})
    arrays = load_arrays(path, SPECS)
    assert arrays["hashes"].dtype == np.uint64 and arrays["hashes"].tolist() == [1, 2, 3]
    assert arrays["scores"].dtype == np.float64
    assert arrays["mask"].tolist() == [False, True]


def test_optional_key_may_be_missing(tmp_path):
    path = _write(tmp_path / "a.npz", hashes=np.arange(3), scores=np.zeros((1, 1)))
    assert set(load_arrays(path, SPECS)) == {"hashes", "scores"}


@pytest.mark.parametrize("arrays, message", [
    ({"scores": np.zeros((1, 1))}, r"bad\.npz: missing key 'hashes' \(token hashes\)"),
    ({"hashes": np.arange(3), "scores": np.zeros((1, 1)), "extra": np.arange(2)},
     r"bad\.npz: unknown key\(s\) extra"),
    ({"hashes": np.zeros((2, 2), np.uint32), "scores": np.zeros((1, 1))},
     r"bad\.npz: key 'hashes' must have 1 dimension\(s\), not shape \(2, 2\)"),
    ({"hashes": np.array([1.5]), "scores": np.zeros((1, 1))},
     r"bad\.npz: key 'hashes' must hold unsigned integers, not dtype float64"),
    ({"hashes": np.array([-1, 2]), "scores": np.zeros((1, 1))},
     r"bad\.npz: key 'hashes' must hold unsigned integers, found -1"),
    ({"hashes": np.arange(2), "scores": np.array([[np.nan]])},
     r"bad\.npz: key 'scores' holds NaN or infinite values"),
    ({"hashes": np.arange(2), "scores": np.array([["a"]])},
     r"bad\.npz: key 'scores' must hold floats, not dtype <U1"),
    ({"hashes": np.arange(2), "scores": np.zeros((1, 1)), "mask": np.array([2])},
     r"bad\.npz: key 'mask' must hold booleans \(0 or 1\)"),
])
def test_malformed_files_raise_clear_errors(tmp_path, arrays, message):
    path = _write(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ValueError, match=message):
        load_arrays(path, SPECS)


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(ValueError, match=r"nothing\.npz: no such file"):
        load_arrays(tmp_path / "nothing.npz", SPECS)
    text = tmp_path / "text.npz"
    text.write_text("not an archive")
    with pytest.raises(ValueError, match=r"text\.npz: not a readable \.npz file"):
        load_arrays(text, SPECS)
    single = tmp_path / "single.npy"
    np.save(single, np.arange(3))
    with pytest.raises(ValueError, match=r"single\.npy: is a single \.npy array, not a \.npz archive"):
        load_arrays(single, SPECS)


def test_check_arrays_names_its_source():
    with pytest.raises(ValueError, match=r"^trace: missing key 'hashes'"):
        check_arrays("trace", SPECS, {"scores": np.zeros((1, 1))})
