"""cocotb regressions of the KV management unit's generated Verilog (Icarus), against the twin.

Each case builds the Verilog for its own configuration in its own build folder and runs the
cocotb module :mod:`sim.tb_kvmu` (random streams unstalled and stalled, reset mid-stream, two
streams switched through the context port); the
agreement tests run ``python -m sim.run kvmu`` with both engines on workload streams.
"""

import numpy as np
import pytest

from model.config import PRESETS
from model.stimulus.kvmu_streams import workload_stream
from model.twins.kvmu import OUTPUTS
from sim.run import run_block
from sim.runner import run_cocotb
from tests.engines import run_engine

TINY = PRESETS["tiny"]

# (tag, configuration, stall probability, seed). Each run checks outputs and cycles without
# stalls, then outputs with the stalls.
CASES = [
    ("tiny", TINY, 0.3, 0),
    ("page1_window0", TINY.replace(kvmu_page_tokens=1, recent_window=0), 0.4, 1),
    # 8 pages of 4 tokens: the store fills and store_full is flagged
    ("small_store", TINY.replace(kv_token_bits=5, count_bits=2), 0.2, 2),
]


@pytest.mark.cocotb
@pytest.mark.parametrize("tag, config, stall, seed", CASES, ids=[case[0] for case in CASES])
def test_random_streams_reset_and_context_switch(tag, config, stall, seed):
    run_cocotb("kvmu", config, "sim.tb_kvmu", tag=tag,
               testcase="random_streams,reset_mid_stream,context_switch", seed=seed,
               env={"KVMU_SEED": seed, "KVMU_STALL": stall, "KVMU_STREAMS": 3,
                    "KVMU_FRAMES": 10})


@pytest.mark.cocotb
@pytest.mark.parametrize("config_name, workload, frames", [
    ("tiny", "tiny", 40),       # the whole tiny workload: 160 tokens, window 8
    ("edge", "default", 24),    # 264 tokens of one (layer, KV head), window 64
])
def test_rtl_engine_agrees_with_model_on_workload(config_name, workload, frames, tmp_path):
    config = PRESETS[config_name]
    arrays, _ = workload_stream(config, frames, workload=workload, layer=1, kv_head=1)
    path = tmp_path / "stream.npz"
    np.savez(path, **arrays)
    model = run_engine("kvmu", "model", config_name, path, tmp_path)
    rtl = run_engine("kvmu", "rtl", config_name, path, tmp_path)
    assert set(rtl) == set(model) == {spec.name for spec in OUTPUTS}
    for key in model:
        assert rtl[key].tolist() == model[key].tolist(), key
    assert model["fetch_token"].size > 0 and model["move_len"].sum() > 0


def test_rtl_engine_rejects_invalid_input_before_simulating(tmp_path):
    arrays = {"new_tokens": np.array([2]), "cluster": np.array([0, 5]),
              "new": np.array([1, 0]), "selected_offsets": np.array([0, 0]),
              "selected_ids": np.array([], dtype=np.uint64)}  # cluster 5 was never opened
    with pytest.raises(ValueError, match=r"cluster of token 1 must be an opened cluster"):
        run_block("kvmu", TINY, arrays, "rtl", tmp_path)
    assert not (tmp_path / "kvmu").exists()  # no build was started
