"""cocotb regressions of the DRE top's generated Verilog (Icarus), against its frame twin.

Each case builds the Verilog for its own configuration in its own build folder and runs the
cocotb module :mod:`sim.tb_dre`: workload frames unstalled (outputs and cycles) and with random
stalls on every stream at once (outputs), the faults, streams interleaved through the one DRE
with saves and restores (unstalled, then stalled), restores of contexts never saved (tiny);
the agreement test runs ``python -m sim.run dre`` with both engines on a tiny KV dump slice, the RTL engine being a
co-simulation in which the model plays the LXE, per stream and with ``--contexts switch``.
"""

import numpy as np
import pytest

from model.config import PRESETS
from model.stimulus.kvdump import KVDump, save_kv_dump
from model.stimulus.traces import dre_trace
from model.twins.dre import OUTPUTS
from sim.runner import run_cocotb
from tests.engines import run_engine
from tests.resv_check import check_against_float_resv


@pytest.mark.cocotb
def test_tiny_workload_stalls_and_faults():
    run_cocotb("dre", PRESETS["tiny"], "sim.tb_dre", tag="tiny",
               testcase="workload_sessions,faults,context_switch,never_saved", seed=0,
               env={"DRE_SEED": 0, "DRE_STALL": 0.3, "DRE_FRAMES": 5, "DRE_STREAMS": "0:0,1:1"})


@pytest.mark.cocotb
def test_tiny_small_store_fills():
    """16 store slots in pages of 4 (4 pages), a window of 1: the store fills (flagged, sticky)."""
    config = PRESETS["tiny"].replace(kv_token_bits=4, recent_window=1, kvmu_page_tokens=4)
    run_cocotb("dre", config, "sim.tb_dre", tag="small_store", testcase="store_full", seed=2,
               env={"DRE_SEED": 2, "DRE_STALL": 0.3})


@pytest.mark.cocotb
def test_edge_workload_frames():
    """Edge: 3 frames of 2 KV heads of one layer of the default workload (64 query rows; the
    33 tokens stay in the recent window of 64, so nothing is fetched)."""
    run_cocotb("dre", PRESETS["edge"], "sim.tb_dre", tag="edge", testcase="workload_sessions",
               seed=1, env={"DRE_SEED": 1, "DRE_STALL": 0.2, "DRE_FRAMES": 3,
                            "DRE_STREAMS": "0:0,0:1", "DRE_WORKLOAD": "default",
                            "DRE_FETCHES": 0})


@pytest.mark.cocotb
def test_rtl_engine_agrees_with_the_model_engine_on_a_dump_slice(tmp_path):
    path = tmp_path / "dump.npz"
    save_kv_dump(path, **dre_trace(8, seed=3, layers=2, kv_heads=2))
    slices = ["--frames", "2:8", "--layers", "1:2", "--heads", "0:2"]
    model = run_engine("dre", "model", "tiny", path, tmp_path, slices)
    rtl = run_engine("dre", "rtl", "tiny", path, tmp_path, slices)
    assert set(rtl) == set(model) == {spec.name for spec in OUTPUTS if not spec.optional}
    for key in model:
        assert rtl[key].tolist() == model[key].tolist(), key
    assert model["fetch_token"].size > 0 and model["move_len"].sum() > 0
    # item 5 on the RTL's own outputs: fetched + window = float ReSV's retrieved set
    check_against_float_resv(PRESETS["tiny"], KVDump(dict(np.load(path)), "dump"), rtl,
                             range(2, 8), range(1, 2), range(0, 2))
    assert np.all(model["problem_frame"] >= 2)
    # One DRE serving both streams, saving and restoring them: the same outputs, and the
    # context words and cycles of the two engines agree.
    switch = slices + ["--contexts", "switch"]
    model_switch = run_engine("dre", "model", "tiny", path, tmp_path, switch)
    rtl_switch = run_engine("dre", "rtl", "tiny", path, tmp_path, switch)
    assert set(rtl_switch) == set(model_switch) == {spec.name for spec in OUTPUTS}
    for key in model_switch:
        assert rtl_switch[key].tolist() == model_switch[key].tolist(), key
        if key in model:
            assert model_switch[key].tolist() == model[key].tolist(), key
    assert model_switch["context_in_words"].all() and model_switch["cycles_context"].all()
