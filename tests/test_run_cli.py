"""``python -m sim.run``: the model engine end to end, and the errors a user sees on bad input."""

import numpy as np
import pytest

from model.config import PRESETS
from model.npzio import load_arrays
from model.stimulus.traces import buffer_trace, hcu_trace, kvmu_trace, wtu_trace
from hw.registry import block as registered_block
from hw.registry import blocks
from sim.run import main, run_block

TRACES = {"hcu": hcu_trace, "wtu": wtu_trace, "buffer": buffer_trace, "kvmu": kvmu_trace}


@pytest.mark.parametrize("block", [entry.name for entry in blocks(file_interface=True)])
def test_model_engine_writes_the_documented_keys(tmp_path, block, capsys):
    config = PRESETS["tiny"]
    trace = TRACES[block](config, seed=3)
    source, target = tmp_path / "in.npz", tmp_path / "out.npz"
    np.savez(source, **trace)
    assert main([block, "--config", "tiny", "--input", str(source), "--output", str(target)]) == 0
    assert f"{block} (model)" in capsys.readouterr().out
    twin = registered_block(block).twin_module()
    written = load_arrays(target, twin.OUTPUTS)
    expected = run_block(block, config, load_arrays(source, twin.INPUTS))
    assert set(written) == set(expected)
    for key, value in expected.items():
        np.testing.assert_array_equal(written[key], value, err_msg=key)


def test_bad_config_is_reported_with_exit_status_2(tmp_path, capsys):
    source = tmp_path / "in.npz"
    np.savez(source, hashes=np.arange(4, dtype=np.uint32))
    status = main(["hcu", "--config", "nope", "--input", str(source), "--output",
                   str(tmp_path / "out.npz")])
    assert status == 2
    assert "error: config must be a preset (tiny, edge, server) or a JSON file, not 'nope'" \
        in capsys.readouterr().err


def test_malformed_input_names_the_file_and_key(tmp_path, capsys):
    source = tmp_path / "trace.npz"
    np.savez(source, hashes=np.zeros((2, 2), np.uint32))
    status = main(["hcu", "--config", "tiny", "--input", str(source), "--output",
                   str(tmp_path / "out.npz")])
    assert status == 2
    err = capsys.readouterr().err
    assert "trace.npz: key 'hashes' must have 1 dimension(s), not shape (2, 2)" in err
    assert not (tmp_path / "out.npz").exists()


def test_out_of_range_values_are_rejected_not_wrapped(tmp_path, capsys):
    source = tmp_path / "wide.npz"
    np.savez(source, hashes=np.array([1 << 16], np.uint32))  # tiny hashes have 16 bits
    status = main(["hcu", "--config", "tiny", "--input", str(source), "--output",
                   str(tmp_path / "out.npz")])
    assert status == 2
    assert "hashes" in capsys.readouterr().err


def test_unknown_block_and_engine_are_rejected():
    with pytest.raises(ValueError, match=r"block must be one of hcu, wtu, buffer, kvmu, dre, "
                                         r"topk_sorter, not 'ghost'"):
        run_block("ghost", PRESETS["tiny"], {})
    with pytest.raises(ValueError, match=r"engine must be 'model' or 'rtl', not 'gpu'"):
        run_block("hcu", PRESETS["tiny"], {"hashes": np.arange(2, dtype=np.uint64)}, engine="gpu")


def test_help_lists_the_keys_of_each_block(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["wtu", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    twin = registered_block("wtu").twin_module()
    for spec in twin.INPUTS + twin.OUTPUTS:
        assert spec.name in out
