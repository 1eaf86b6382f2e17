"""Fuzzing of every file and configuration input with Hypothesis.

Inputs: the ``.npz`` files of ``python -m sim.run`` for every block with a file interface, KV
dumps (:mod:`model.stimulus.kvdump`) and JSON configurations (:func:`model.config.load_config`).
Each is corrupted in one way (a wrong dtype, shape or number of dimensions, NaN or infinity,
huge or negative values, object arrays, a missing or unknown key, truncated or non-zip bytes;
for JSON wrong types, unknown keys, huge or negative numbers, broken text). The rule checked:
either the input is still valid and is processed, or the run stops with a **one-line** error
naming the file (and the key, when one key was corrupted), never a traceback, never a silent
truncation or wrap, and nothing is written to the output path.
"""

import io
import json
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hw.registry import blocks
from model.config import PRESETS, load_config
from model.stimulus.traces import kvmu_trace
from model.stimulus.kvdump import FLOAT_LIMIT, load_kv_dump
from sim.run import main as run_main

TINY = PRESETS["tiny"]
FUZZ = settings(max_examples=60, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


def valid_inputs(name):
    """A small valid input of block ``name`` for the ``tiny`` preset (fixed seed 0)."""
    rng = np.random.default_rng(0)
    if name == "hcu":
        return {"hashes": rng.integers(0, 1 << TINY.hash_bits, 8, dtype=np.uint64)}
    if name == "wtu":
        return {"scores": rng.integers(0, 1 << TINY.score_bits, (2, 5), dtype=np.uint64),
                "counts": rng.integers(1, 1 << TINY.count_bits, 5, dtype=np.uint64)}
    if name == "buffer":
        count = rng.integers(1, 9, 5, dtype=np.uint64)
        return {"selected": np.array([1, 0, 1, 1, 0], dtype=bool),
                "scores": rng.integers(0, 1 << TINY.score_bits, 5, dtype=np.uint64),
                "base": np.concatenate([[0], np.cumsum(count)[:-1]]).astype(np.uint64),
                "count": count}
    if name == "kvmu":
        return kvmu_trace(TINY, frames=3)
    raise AssertionError(f"no valid input for block {name!r}")


FILE_BLOCKS = [entry.name for entry in blocks(file_interface=True)]

#: Replacement values of one key: each is a corruption of a different kind.
CORRUPTIONS = {
    "float": lambda a: a.astype(np.float64) + 0.5,
    "nan": lambda a: np.full(a.shape, np.nan),
    "inf": lambda a: np.full(a.shape, np.inf),
    "negative": lambda a: a.astype(np.int64) - 5,
    "huge": lambda a: np.full(a.shape, np.iinfo(np.uint64).max, dtype=np.uint64),
    "above_int64": lambda a: np.full(a.shape, 1 << 63, dtype=np.uint64),
    "wide": lambda a: np.full(a.shape, 1 << 40, dtype=np.int64),
    "two": lambda a: np.full(a.shape, 2, dtype=np.int64),
    "complex": lambda a: a.astype(np.complex128),
    "text": lambda a: a.astype(str),
    "object": lambda a: np.array([object()] * max(1, a.size), dtype=object),
    "scalar": lambda a: np.array(3, dtype=np.uint64),
    "extra_dim": lambda a: a[np.newaxis],
    "empty": lambda a: a[..., :0],
    "longer": lambda a: np.concatenate([a, a], axis=-1),
    "structured": lambda a: np.zeros(a.shape, dtype=[("x", np.uint8)]),
}


#: Corruptions that may surface as an inconsistency with another key (the message then names
#: that key, e.g. "counts must have one value per cluster (10), not 5").
SHAPE_CORRUPTIONS = {"longer", "empty", "extra_dim", "scalar"}


def check_outcome(status, captured, output, *names, any_of=()):
    """The rule of the module docstring, for a ``sim.run`` call that returned ``status``: the
    error names every one of ``names`` and, if given, one of ``any_of``."""
    if status == 0:
        assert output.exists()
        with np.load(output, allow_pickle=False) as archive:
            assert archive.files
        return
    assert status == 2, status
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    assert "Traceback" not in captured.err
    for name in names:
        assert name in lines[0], (name, lines[0])
    assert not any_of or any(name in lines[0] for name in any_of), (any_of, lines[0])
    assert not output.exists()
    assert not list(output.parent.glob(f"*{output.name}*"))


def run_file(tmp_path, name, path, config="tiny"):
    output = tmp_path / "out" / "result.npz"
    status = run_main([name, "--config", config, "--input", str(path),
                       "--output", str(output)])
    return status, output


def fresh(tmp_path, label):
    folder = tmp_path / label
    if folder.exists():
        for item in sorted(folder.rglob("*"), reverse=True):
            item.unlink() if item.is_file() else item.rmdir()
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.mark.parametrize("name", FILE_BLOCKS)
@FUZZ
@given(data=st.data())
def test_corrupted_key_of_a_block_file(name, data, tmp_path, capsys):
    arrays = valid_inputs(name)
    key = data.draw(st.sampled_from(sorted(arrays)), label="key")
    corruption = data.draw(st.sampled_from(sorted(CORRUPTIONS)), label="corruption")
    arrays[key] = CORRUPTIONS[corruption](arrays[key])
    folder = fresh(tmp_path, "case")
    path = folder / "input.npz"
    np.savez(path, **arrays)
    capsys.readouterr()
    status, output = run_file(folder, name, path)
    if corruption in SHAPE_CORRUPTIONS:
        check_outcome(status, capsys.readouterr(), output, str(path), any_of=sorted(arrays))
    else:
        check_outcome(status, capsys.readouterr(), output, str(path), key)


@pytest.mark.parametrize("name", FILE_BLOCKS)
@FUZZ
@given(data=st.data())
def test_missing_unknown_keys_and_broken_bytes(name, data, tmp_path, capsys):
    arrays = valid_inputs(name)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    valid_bytes = buffer.getvalue()
    case = data.draw(st.sampled_from(["missing", "unknown", "truncated", "garbage", "npy",
                                      "zip_of_text", "empty"]), label="case")
    folder = fresh(tmp_path, "case")
    path = folder / "input.npz"
    names = [str(path)]
    if case == "missing":
        key = data.draw(st.sampled_from(sorted(arrays)))
        np.savez(path, **{k: v for k, v in arrays.items() if k != key})
        names.append(key)
    elif case == "unknown":
        key = data.draw(st.from_regex(r"[a-z]{1,8}", fullmatch=True).filter(
            lambda k: k not in arrays))
        np.savez(path, **arrays, **{key: np.zeros(3, dtype=np.uint64)})
        names.append(key)
    elif case == "truncated":
        cut = data.draw(st.integers(0, len(valid_bytes) - 1))
        path.write_bytes(valid_bytes[:cut])
    elif case == "garbage":
        path.write_bytes(data.draw(st.binary(max_size=200)))
    elif case == "npy":
        np.save(folder / "single.npy", arrays[sorted(arrays)[0]])
        (folder / "single.npy").rename(path)
    elif case == "zip_of_text":
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr(f"{sorted(arrays)[0]}.npy", data.draw(st.binary(max_size=100)))
    else:
        path.write_bytes(b"")
    capsys.readouterr()
    status, output = run_file(folder, name, path)
    captured = capsys.readouterr()
    if case == "truncated" and status == 0:
        return  # a cut inside the zip's trailing padding can leave a whole archive
    assert status == 2
    check_outcome(status, captured, output, *names)


CONFIG_VALUES = st.one_of(
    st.integers(-(1 << 70), 1 << 70), st.floats(allow_nan=True), st.booleans(), st.none(),
    st.text(max_size=5), st.lists(st.integers(0, 4), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))


@FUZZ
@given(data=st.data())
def test_json_configuration(data, tmp_path):
    known = sorted(PRESETS["edge"].to_dict())
    folder = fresh(tmp_path, "case")
    path = folder / "config.json"
    case = data.draw(st.sampled_from(["value", "unknown", "text", "not_object"]), label="case")
    key = None
    if case == "value":
        key = data.draw(st.sampled_from(known), label="key")
        path.write_text(json.dumps({key: data.draw(CONFIG_VALUES, label="value")}))
    elif case == "unknown":
        key = data.draw(st.from_regex(r"[a-z_]{1,12}", fullmatch=True).filter(
            lambda k: k not in known), label="key")
        path.write_text(json.dumps({key: 1}))
    elif case == "text":
        path.write_bytes(data.draw(st.binary(max_size=60), label="bytes"))
    else:
        path.write_text(json.dumps(data.draw(st.one_of(st.lists(st.integers(), max_size=3),
                                                        st.integers(), st.text(max_size=4)))))
    try:
        config = load_config(path)
    except (ValueError, TypeError) as error:
        message = str(error)
        assert "\n" not in message and str(path) in message, message
        if key is not None:
            assert key in message, message
        return
    assert case == "value" and getattr(config, key) == json.loads(path.read_text())[key]


def test_deeply_nested_json_configuration_is_an_error(tmp_path):
    path = tmp_path / "deep.json"
    path.write_text("[" * 100000 + "]" * 100000)
    with pytest.raises(ValueError, match=r"deep\.json: cannot read a JSON configuration"):
        load_config(path)


@pytest.mark.parametrize("name", FILE_BLOCKS)
def test_run_with_a_broken_configuration_file_writes_nothing(name, tmp_path, capsys):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"hash_bits": "wide"}))
    inputs = tmp_path / "input.npz"
    np.savez(inputs, **valid_inputs(name))
    status, output = run_file(tmp_path, name, inputs, config=str(config))
    check_outcome(status, capsys.readouterr(), output, str(config), "hash_bits")
    assert status == 2


def valid_kv_dump():
    rng = np.random.default_rng(0)
    keys = rng.standard_normal((1, 1, 6, 4))
    return {"keys": keys, "values": rng.standard_normal(keys.shape),
            "frame_of_token": np.array([0, 0, 0, 1, 1, 1]),
            "queries": rng.standard_normal((1, 1, 2, 2, 4))}


@FUZZ
@given(data=st.data())
def test_corrupted_kv_dump(data, tmp_path):
    arrays = valid_kv_dump()
    key = data.draw(st.sampled_from(sorted(arrays) + ["query_frames"]), label="key")
    corruption = data.draw(st.sampled_from(sorted(CORRUPTIONS) + ["float_huge"]),
                           label="corruption")
    base = arrays.get(key, np.array([0, 1]))
    if corruption == "float_huge":
        arrays[key] = np.full(base.shape, 1e300)
    else:
        arrays[key] = CORRUPTIONS[corruption](base)
    folder = fresh(tmp_path, "case")
    path = folder / "dump.npz"
    np.savez(path, **arrays)
    try:
        dump = load_kv_dump(path)
    except ValueError as error:
        message = str(error)
        assert "\n" not in message and str(path) in message and key in message, message
        return
    # Still a valid dump: every array it serves is finite and as written.
    for name in ("keys", "values", "queries"):
        assert np.all(np.isfinite(dump._arrays[name]))
        assert np.all(np.abs(dump._arrays[name]) <= FLOAT_LIMIT)
    assert np.array_equal(dump.frame_of_token, np.asarray(arrays["frame_of_token"]))


def test_kv_dump_of_broken_bytes(tmp_path):
    path = tmp_path / "dump.npz"
    path.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ValueError, match=r"dump\.npz: not a readable \.npz file"):
        load_kv_dump(path)
