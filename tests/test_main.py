"""The main job (model/main.py), its summary (model/summary.py) and the bench's pieces."""

import json

import numpy as np
import pytest

from model import main as main_job
from model import summary
from model.bench import prepare_head, time_frame
from model.config import PRESETS
from model.stimulus.kvdump import save_kv_dump
from model.stimulus.workload import WORKLOADS, StreamingWorkload

TINY_ARGS = ["--workload", "tiny", "--config", "tiny", "--eval-frames", "4"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("resv")
    assert main_job.main(["--out", str(out)] + TINY_ARGS) == 0
    return out


def test_main_job_writes_json_and_png(tiny_run):
    results = json.loads((tiny_run / "results.json").read_text())
    png = (tiny_run / "retrieval.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert list(results["methods"]) == list(main_job.METHODS)
    resv = results["methods"]["resv"]
    full = results["methods"]["full"]
    wcfg = WORKLOADS["tiny"]
    # 4 evaluated frames per (layer, KV head)
    assert resv["count"] == 4 * wcfg.layers * wcfg.kv_heads
    assert full["ratio"] == 1.0 and full["recall"] == pytest.approx(1.0)
    assert 0.0 < resv["ratio"] <= 1.0 and 0.0 < resv["recall"] <= 1.0 + 1e-12
    assert len(results["resv_per_layer_ratio"]) == wcfg.layers
    assert results["clustering"]["tokens_per_cluster_mean"] >= 1.0


def test_main_job_table(tmp_path, capsys):
    assert main_job.main(["--out", str(tmp_path)] + TINY_ARGS) == 0
    captured = capsys.readouterr()
    assert "method" in captured.out and "resv" in captured.out and "quest" in captured.out
    assert "layer 2/2" in captured.err


def test_main_job_on_a_kv_dump(tmp_path):
    wcfg = WORKLOADS["tiny"].replace(frames=12)
    stream = StreamingWorkload(wcfg)
    keys = np.array([[stream.keys(l, h, 12) for h in range(2)] for l in range(2)])
    values = np.array([[stream.values(l, h, 12) for h in range(2)] for l in range(2)])
    query_frames = np.array([5, 11])
    queries = np.array([[[stream.queries(l, h, f) for f in query_frames] for h in range(2)]
                        for l in range(2)])
    path = tmp_path / "dump.npz"
    save_kv_dump(path, keys, values, stream.frame_of_token(), queries, query_frames)
    out = tmp_path / "out"
    assert main_job.main(["--out", str(out), "--kv-dump", str(path), "--config", "tiny"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["evaluated_frames"] == [5, 11]
    assert results["shape"]["tokens"] == 12 * wcfg.tokens_per_frame


def test_main_job_errors(tmp_path, capsys):
    # the default workload has 44 query rows; the tiny configuration holds 8
    assert main_job.main(["--out", str(tmp_path), "--config", "tiny"]) == 2
    assert "44 query rows per frame exceed max_rows (8)" in capsys.readouterr().err
    assert main_job.main(["--out", str(tmp_path), "--kv-dump", str(tmp_path / "x.npz")]) == 2
    assert "x.npz: no such file" in capsys.readouterr().err


def test_summary(tiny_run, tmp_path, capsys):
    build = tmp_path / "build"
    (build / "resv").mkdir(parents=True)
    for name in ("results.json", "retrieval.png"):
        (build / "resv" / name).write_bytes((tiny_run / name).read_bytes())
    assert summary.main(["--build", str(build)]) == 0
    out = capsys.readouterr().out
    assert "Verilog: none" in out and "ReSV retrieves" in out
    # The layout `python -m hw.verilog` writes: build/verilog/PRESET/BLOCK.v.
    (build / "verilog" / "edge").mkdir(parents=True)
    (build / "verilog" / "edge" / "hcu.v").write_text("module hcu; endmodule\n")
    assert summary.main(["--build", str(build)]) == 0
    assert "edge/hcu.v" in capsys.readouterr().out
    assert summary.main(["--build", str(tmp_path / "empty")]) == 0
    assert "ReSV results: none" in capsys.readouterr().out


def test_bench_step_rolls_back_exactly():
    config = PRESETS["tiny"].replace(max_rows=64)
    head, keys, queries = prepare_head(config, WORKLOADS["tiny"], cache_tokens=120)
    before = (head.tokens, head.clusters, head.counts.copy(), head.representatives().copy())
    _, _, first = time_frame(head, keys, queries, 3)
    assert (head.tokens, head.clusters) == before[:2]
    assert np.array_equal(head.counts, before[2])
    assert np.array_equal(head.representatives(), before[3])
    again = head.step(keys, queries)
    assert np.array_equal(again.retrieved, first.retrieved)
