"""cocotb regressions of the HCU's Verilog under Icarus (sim/tb_hcu.py) and its RTL engine."""

import numpy as np
import pytest

from model.config import PRESETS, DREConfig
from model.npzio import save_arrays
from model.stimulus.traces import hcu_trace
from sim.run import main, run_block
from sim.runner import run_cocotb, selected_simulator

TINY = PRESETS["tiny"]


def sweep_config(lanes, bits):
    # Small table (16 entries) with the edge preset's 32-bit hashes and threshold 7.
    return DREConfig(hash_bits=32, hamming_threshold=7, hcu_lanes=lanes, hcu_bits_per_cycle=bits,
                     hcu_dispatch_width=min(2, lanes), hash_mem_entries=16, max_clusters=32,
                     topk_k=4)


@pytest.mark.cocotb
def test_tiny_directed_random_stalls_workload_reset_overflow():
    run_cocotb("hcu", TINY, "sim.tb_hcu", tag="tiny",
               testcase="directed,random_hashes,stalls,workload,reset_mid_frame,overflow", seed=1)


@pytest.mark.cocotb
@pytest.mark.parametrize("lanes", [1, 4, 16])
@pytest.mark.parametrize("bits", [1, 4, 32])
def test_sweep_lanes_and_bits_per_cycle(lanes, bits):
    run_cocotb("hcu", sweep_config(lanes, bits), "sim.tb_hcu", tag=f"sweep_l{lanes}_b{bits}",
               testcase="random_hashes", env={"HCU_TOKENS": 32, "HCU_SEED": lanes + bits},
               seed=2)


@pytest.mark.cocotb
def test_workload_trace_engines_agree(tmp_path):
    """The workload's hashes: the RTL engine (CLI) writes what the model engine writes."""
    hashes = hcu_trace(TINY, frames=24, workload="tiny")["hashes"]
    save_arrays(tmp_path / "in.npz", {"hashes": hashes})
    outputs = {}
    for engine in ("model", "rtl"):
        path = tmp_path / f"{engine}.npz"
        assert main(["hcu", "--config", "tiny", "--input", str(tmp_path / "in.npz"),
                     "--output", str(path), "--engine", engine,
                     "--workdir", str(tmp_path / "build"),
                     "--simulator", selected_simulator()]) == 0
        with np.load(path) as archive:
            outputs[engine] = {key: archive[key] for key in archive.files}
    assert sorted(outputs["rtl"]) == sorted(outputs["model"])
    for key in outputs["model"]:
        assert outputs["rtl"][key].tolist() == outputs["model"][key].tolist(), key
    assert outputs["model"]["new"].sum() > 1 and not outputs["model"]["new"].all()


def test_rtl_engine_rejects_overflow(tmp_path, monkeypatch):
    """The RTL flags a token beyond max_clusters; the engine raises the model's error for it."""
    import sim.run

    def flagged(name, config, arrays, workdir, simulator=None):  # the RTL on an overflowing stream
        count = len(arrays["hashes"])
        return {"cluster": np.zeros(count, np.uint64), "new": np.zeros(count, np.uint64),
                "distance": np.zeros(count, np.uint64), "cycles": np.ones(count, np.uint64),
                "overflow": np.array([0] * (count - 1) + [1], np.uint64)}

    monkeypatch.setattr(sim.run, "run_rtl", flagged)
    with pytest.raises(ValueError, match=r"more than max_clusters = 64 clusters"):
        run_block("hcu", TINY, {"hashes": np.arange(3, dtype=np.uint64)}, "rtl", tmp_path)
