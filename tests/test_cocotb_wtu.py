"""cocotb regressions of the WTU's generated Verilog (Icarus) against the twin, and the RTL engine.

Each case builds the Verilog for one configuration into its own folder and runs cocotb tests of
``sim/tb_wtu.py``: directed cases, seeded random problems, a reset in the middle of a row,
rows of the streaming workload, all under random valid/ready stalls, and a parameter sweep over
lanes, buckets and refinement depth. The last test checks that ``python -m sim.run wtu`` gives
the same arrays with ``--engine rtl`` as with ``--engine model`` on a workload trace.
"""

import numpy as np
import pytest

from model.config import PRESETS
from model.npzio import save_arrays
from model.stimulus.traces import wtu_trace
from model.twins.wtu import OUTPUTS
from sim.run import main as run_main
from sim.runner import run_cocotb, selected_simulator

TINY = PRESETS["tiny"]

pytestmark = pytest.mark.cocotb


def test_tiny_directed_random_reset_workload(tmp_path):
    trace = wtu_trace(TINY, seed=0)
    save_arrays(tmp_path / "trace.npz", trace)
    run_cocotb("wtu", TINY, "sim.tb_wtu", tag="tiny_regression",
               testcase="directed,random_rows,reset_mid_row,workload_rows",
               env={"WTU_SEED": 3, "WTU_TRACE": tmp_path / "trace.npz"})


@pytest.mark.parametrize("lanes, buckets, depth", [(2, 8, 1), (8, 2, 3)])
def test_parameter_sweep(lanes, buckets, depth):
    config = TINY.replace(wtu_lanes=lanes, wtu_buckets=buckets, wtu_refine_depth=0)
    config = config.replace(wtu_refine_depth=min(depth, config.full_refine_depth))
    run_cocotb("wtu", config, "sim.tb_wtu", tag=f"sweep_{lanes}_{buckets}_{depth}",
               testcase="random_rows", env={"WTU_SEED": lanes + buckets})


def test_rtl_engine_agrees_with_model(tmp_path):
    """``sim.run wtu --engine rtl`` writes the model engine's arrays, cycle counts included."""
    trace = wtu_trace(TINY, seed=1, layer=1, kv_head=1)
    save_arrays(tmp_path / "in.npz", trace)
    outputs = {}
    for engine in ("model", "rtl"):
        status = run_main(["wtu", "--config", "tiny", "--input", str(tmp_path / "in.npz"),
                           "--output", str(tmp_path / f"{engine}.npz"), "--engine", engine,
                           "--workdir", str(tmp_path / "rtl"),
                           "--simulator", selected_simulator()])
        assert status == 0
        with np.load(tmp_path / f"{engine}.npz") as archive:
            outputs[engine] = {key: archive[key] for key in archive.files}
    assert sorted(outputs["rtl"]) == sorted(spec.name for spec in OUTPUTS)
    for spec in OUTPUTS:
        np.testing.assert_array_equal(outputs["rtl"][spec.name], outputs["model"][spec.name],
                                      err_msg=spec.name)
