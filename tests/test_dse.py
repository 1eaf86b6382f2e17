"""Design-space exploration (synth/dse): grid files, Pareto extraction, a tiny grid on Dask."""

import json

import numpy as np
import pytest

from model.config import PRESETS
from model.main import WorkloadSource, run_job
from model.stimulus.workload import WORKLOADS
from model.system.retrieval import measure
from synth.dse.grid import INPUT_DEFAULTS, load_grid
from synth.dse.pareto import dominates, pareto_front
from synth.dse.run import explore


def _write(tmp_path, name, data):
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


# Grid files ---------------------------------------------------------------------------------

def test_grid_cross_product_in_file_order(tmp_path):
    path = _write(tmp_path, "g.json", {"base": "tiny", "grid": {"hcu_lanes": [1, 2],
                                                                 "wtu_buckets": [4, 8, 16]}})
    grid = load_grid(path)
    assert grid.product_size == 6
    assert [p.params for p in grid.points][:4] == [
        {"hcu_lanes": 1, "wtu_buckets": 4}, {"hcu_lanes": 1, "wtu_buckets": 8},
        {"hcu_lanes": 1, "wtu_buckets": 16}, {"hcu_lanes": 2, "wtu_buckets": 4}]
    assert grid.points[3].config == PRESETS["tiny"].replace(hcu_lanes=2, wtu_buckets=4)
    assert grid.inputs == INPUT_DEFAULTS


def test_grid_toml_ratio_and_base_file(tmp_path):
    _write(tmp_path, "base.json", {"hcu_lanes": 4})
    path = _write(tmp_path, "g.toml", 'base = "base.json"\n[grid]\nwicsum_ratio = [0.5]\n'
                                       '[inputs]\ncache_tokens = [100, 200]\n')
    grid = load_grid(path)
    # edge (wicsum_ratio_bits 8) with hcu_lanes 4; 0.5 * 2**8 = 128
    assert grid.points[0].config == PRESETS["edge"].replace(hcu_lanes=4, wicsum_ratio_code=128)
    assert grid.inputs["cache_tokens"] == [100, 200]


def test_grid_samples_are_a_seeded_subset(tmp_path):
    data = {"base": "tiny", "grid": {"hcu_lanes": [1, 2, 4], "wtu_buckets": [4, 8]},
            "samples": 3, "seed": 5}
    first = load_grid(_write(tmp_path, "a.json", data))
    again = load_grid(_write(tmp_path, "b.json", data))
    other = load_grid(_write(tmp_path, "c.json", {**data, "seed": 6}))
    indices = [p.index for p in first.points]
    assert len(indices) == 3 and indices == sorted(set(indices))
    assert set(indices) <= set(range(6))
    assert indices == [p.index for p in again.points]
    assert [p.index for p in other.points] != indices or len(indices) == 6


def test_invalid_point_keeps_dreconfig_message(tmp_path):
    grid = load_grid(_write(tmp_path, "g.json", {"base": "tiny",
                                                  "grid": {"hcu_bits_per_cycle": [4, 3]}}))
    with pytest.raises(ValueError) as expected:
        PRESETS["tiny"].replace(hcu_bits_per_cycle=3)
    assert grid.points[0].config is not None and grid.points[0].error is None
    assert grid.points[1].config is None
    assert grid.points[1].error == str(expected.value)


@pytest.mark.parametrize("data, message", [
    ("{not json", r"g\.json: cannot read the grid file"),
    ([1, 2], r"g\.json: a grid file must hold an object"),
    ({"grid": {"hcu_lanes": [1]}}, r"g\.json: key 'base' is missing"),
    ({"base": "nope", "grid": {"hcu_lanes": [1]}}, r"g\.json: key 'base': config must be"),
    ({"base": "tiny"}, r"g\.json: key 'grid' is missing"),
    ({"base": "tiny", "grid": {"lanes": [1]}}, r"g\.json: key 'grid\.lanes' is not a DREConfig"),
    ({"base": "tiny", "grid": {"hcu_lanes": 2}}, r"g\.json: key 'grid\.hcu_lanes' must be a "
                                                 r"non-empty list"),
    ({"base": "tiny", "grid": {"hcu_lanes": [1, 1]}}, r"key 'grid\.hcu_lanes' lists a value"),
    ({"base": "tiny", "grid": {"hcu_lanes": [1]}, "samples": 0}, r"key 'samples' must be a "
                                                                  r"positive integer"),
    ({"base": "tiny", "grid": {"hcu_lanes": [1]}, "extra": 1}, r"key 'extra' is unknown"),
    ({"base": "tiny", "grid": {"hcu_lanes": [1]}, "inputs": {"cache_tokens": [5, 2]}},
     r"key 'inputs\.cache_tokens' must be a list of increasing"),
    ({"base": "tiny", "grid": {"hcu_lanes": [1]}, "inputs": {"quality_workload": "x"}},
     r"key 'inputs\.quality_workload' must be one of"),
    ({"base": "tiny", "grid": {"hcu_lanes": [1]}, "inputs": {"speed": 1}},
     r"key 'inputs\.speed' is unknown"),
])
def test_malformed_grid_names_file_and_key(tmp_path, data, message):
    with pytest.raises(ValueError, match=message):
        load_grid(_write(tmp_path, "g.json", data))


def test_malformed_toml_and_suffix(tmp_path):
    with pytest.raises(ValueError, match=r"g\.toml: cannot read the grid file"):
        load_grid(_write(tmp_path, "g.toml", "base = \n"))
    with pytest.raises(ValueError, match=r"g\.yaml: a grid file must end in \.json or \.toml"):
        load_grid(_write(tmp_path, "g.yaml", "{}"))
    with pytest.raises(ValueError, match=r"missing\.json: no such grid file"):
        load_grid(tmp_path / "missing.json")


def test_default_grid_loads():
    grid = load_grid("synth/dse/default_grid.toml")
    assert all(point.config is not None for point in grid.points)
    assert grid.inputs["cache_tokens"] == [10000, 40000]


# Pareto extraction on hand-made points ------------------------------------------------------

def test_pareto_min_min():
    points = [{"a": 1, "b": 5}, {"a": 2, "b": 3}, {"a": 3, "b": 4}, {"a": 2, "b": 3},
              {"a": 4, "b": 1}, {"a": None, "b": 0}, {"b": 0}]
    # (3, 4) is dominated by (2, 3); the two (2, 3) tie and do not dominate each other;
    # points without "a" take no part.
    assert pareto_front(points, [("a", "min"), ("b", "min")]) == [0, 1, 3, 4]


def test_pareto_min_max_and_dominance():
    points = [{"t": 0.3, "r": 0.7}, {"t": 0.2, "r": 0.7}, {"t": 0.5, "r": 0.9},
              {"t": 0.5, "r": 0.8}, {"t": 0.1, "r": 0.5}]
    # fewer tokens, more recall: (0.3, 0.7) loses to (0.2, 0.7); (0.5, 0.8) to (0.5, 0.9)
    assert pareto_front(points, [("t", "min"), ("r", "max")]) == [1, 2, 4]
    assert dominates(points[1], points[0], [("t", "min"), ("r", "max")])
    assert not dominates(points[0], points[0], [("t", "min"), ("r", "max")])
    with pytest.raises(ValueError, match="objective 't' must be 'min' or 'max', not 'low'"):
        pareto_front(points, [("t", "low")])


# A tiny grid through a LocalCluster ---------------------------------------------------------

TINY_INPUTS = {"cache_tokens": [40, 120], "timing_workload": "tiny", "quality_workload": "tiny",
               "quality_layers": 1, "quality_kv_heads": 2, "eval_frames": 4,
               "blocks": ["hcu"], "system": "vrex8", "seed": 0}


def test_tiny_grid_on_local_cluster(tmp_path):
    # points: (4, 8) valid; (4, 4) valid but the tiny workload's 8 query rows exceed
    # max_rows 4, so its timing and quality steps fail; (3, *) invalid (3 does not divide 16).
    grid = _write(tmp_path, "g.json", {"base": "tiny", "inputs": TINY_INPUTS,
                                        "grid": {"hcu_bits_per_cycle": [4, 3],
                                                 "max_rows": [8, 4]}})
    out = tmp_path / "dse"
    lines = []
    document = explore(grid, out, workers=2, show_progress=False, log=lines.append)
    points = document["points"]
    assert [p["status"] for p in points] == ["ok", "error", "invalid", "invalid"]
    assert "hcu_bits_per_cycle must divide hash_bits" in points[2]["errors"]["config"]
    assert set(points[1]["errors"]) == {"timing", "quality"}
    assert "max_rows" in points[1]["errors"]["quality"]
    assert points[1]["metrics"]["area_ge"] > 0  # its synthesis ran all the same
    assert document["runs"][0]["workers"] == 2 and document["runs"][0]["points"] == 2
    metrics = points[0]["metrics"]
    assert metrics["area_ge"] > 0 and metrics["critical_path_ns"] is None  # no PDK
    assert metrics["dre_us_40"] > 0 and metrics["frame_ms_120"] > 0
    # the DRE cycles are the system model's, measured here on the same stream
    stream = WorkloadSource(WORKLOADS["tiny"].replace(frames=32, seed=0))  # ceil(120 / 4) + 2
    profile = measure(stream, PRESETS["tiny"], (40, 120), layers=1, kv_heads=1,
                      frames_per_size=1, dre_heads=1, seed=0)
    for size in (40, 120):
        assert metrics[f"dre_cycles_{size}"] == [s.dre for s in profile.at(size)][0]["total"]
    # the quality metrics are the main job's on the same reduced workload, run here
    wcfg = WORKLOADS["tiny"].replace(layers=1, kv_heads=2, seed=0)
    resv = run_job(WorkloadSource(wcfg), PRESETS["tiny"], eval_count=4, seed=0)["methods"]["resv"]
    assert metrics["recall"] == pytest.approx(resv["recall"], abs=1e-6)
    assert metrics["tokens_retrieved"] == pytest.approx(resv["ratio"], abs=1e-6)
    assert document["pareto"]["area_time"] == [0]
    stored = json.loads((out / "points.json").read_text())
    assert stored["points"][0]["metrics"] == metrics
    assert (out / "points.md").read_text().count("\n| ") == 6  # header, separator, 4 points
    for name in ("pareto_area_time.png", "pareto_recall_tokens.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG"
    # a rerun computes nothing new: the valid point comes from the cache, the failed one again
    again = explore(grid, out, workers=1, show_progress=False)
    assert again["points"][0]["cached"] and again["points"][0]["metrics"] == metrics
    assert not again["points"][1]["cached"] and again["runs"][0]["points"] == 1
    assert np.isclose(again["points"][1]["metrics"]["area_ge"], points[1]["metrics"]["area_ge"])
