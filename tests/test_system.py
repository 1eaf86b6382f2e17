"""The V-Rex system model: rooflines, KV memory accounting, layouts, the DRE's cycles and clock,
monotonicity in cache size, the parameter file's validation and the CLI's outputs."""

import json

import numpy as np
import pytest

from model.config import PRESETS
from model.main import WorkloadSource
from model.stimulus.kvdump import save_kv_dump
from model.stimulus.workload import WORKLOADS
from model.system import __main__ as cli
from model.reference.resv import hash_keys, make_hyperplanes
from model.reference.resv import ResvHead
from model.stimulus.kvdump import KVDump
from model.stimulus.traces import dre_trace
from model.system.dre import StreamCycles, frame_cycles
from model.twins.dre import run_dump
from model.system.layout import cluster_layout_bytes, granule_bytes, token_order_bytes
from model.system.params import DEFAULT_SYSTEMS_FILE, load_systems
from model.system.perf import METHODS, frame, resident_tokens
from model.system.report import paper_scale
from model.system.retrieval import measure

TINY_SIZES = (40, 80, 120)


@pytest.fixture(scope="module")
def systems():
    return load_systems()


@pytest.fixture(scope="module")
def tiny_profile():
    # tiny workload: 2 layers x 2 KV heads, 4 tokens per frame, 8 query rows (tiny max_rows)
    source = WorkloadSource(WORKLOADS["tiny"].replace(frames=34), "workload tiny")
    return measure(source, PRESETS["tiny"], TINY_SIZES, layers=2, kv_heads=2,
                   frames_per_size=2, dre_heads=2, seed=3)


def test_peak_flops_are_table_one(systems):
    # Paper Table I: 6.656 TFLOPS per core = (64 x 64 x 2 + 64 x 2) x 0.8 GHz; V-Rex8 53.3 TFLOPS
    # = 8 x 6.656e12 = 53.248e12; V-Rex48 319.5 TFLOPS = 48 x 6.656e12 = 319.488e12.
    assert systems.systems["vrex8"].peak_flops == pytest.approx(53.248e12)
    assert systems.systems["vrex48"].peak_flops == pytest.approx(319.488e12)
    one_core = systems.systems["vrex8"].replace(cores=1)
    assert one_core.peak_flops == pytest.approx(6.656e12)
    # DPE alone: 8 x 64 x 64 x 2 x 0.8e9 = 52.4288e12
    assert systems.systems["vrex8"].dpe_flops == pytest.approx(52.4288e12)


def test_kv_and_weight_accounting(systems):
    model = systems.model
    # ../shared/PAPER.md: 32 layers x 8 KV heads x 128 x 2 (K, V) x 2 B = 128 KiB per token;
    # 40K tokens = 5.24 GB.
    assert model.kv_bytes_per_token == 131072
    assert 40000 * model.kv_bytes_per_token == 5_242_880_000
    # Llama-3-8B layer: QKV 4096 x (4096 + 2 x 1024) + O 4096^2 + FFN 3 x 4096 x 14336
    # = 25,165,824 + 16,777,216 + 176,160,768 = 218,103,808 weights.
    assert model.layer_linear_weights == 218_103_808
    # x 32 layers = 6,979,321,856; SigLIP-L 24 x (4 x 1024^2 + 2 x 1024 x 4096) = 301,989,888;
    # projector 1024 x 4096 + 4096^2 = 20,971,520; LM head 128256 x 4096 = 525,336,576;
    # total 7,827,619,840 weights x 2 B = 15,655,239,680 B.
    assert model.weight_bytes == 15_655_239_680


def test_resident_tokens_capped_by_dram(systems):
    model, dre = systems.model, PRESETS["edge"]
    vrex8 = systems.systems["vrex8"]
    # 32 GB holds the weights, 2 GB reserve and 4 x 8192 x 128 KiB = 4.29 GB: no cap.
    assert resident_tokens(model, vrex8, dre, "vrex", 4, 40000) == 8192
    # other methods keep only the DRE's recent window; never more than the cache
    assert resident_tokens(model, vrex8, dre, "offload", 1, 40000) == dre.recent_window
    assert resident_tokens(model, vrex8, dre, "vrex", 1, 1000) == 1000
    # 20 GB: free = 20e9 - 15,655,239,680 - 2e9 = 2,344,760,320 B; / (4 x 131072) = 4472.2
    small = vrex8.replace(dram_capacity_gb=20)
    assert resident_tokens(model, small, dre, "vrex", 4, 40000) == 4472
    with pytest.raises(ValueError, match="dram_capacity_gb .* must hold"):
        resident_tokens(model, vrex8.replace(dram_capacity_gb=16), dre, "vrex", 1, 40000)


def test_granules_read_once():
    # 256-B units, 4 KiB granules: 16 tokens a granule; tokens 0, 1, 2 share granule 0, token 17
    # is in granule 1: 2 granules x 4096 B x 2 (K and V) = 16384 B.
    assert granule_bytes([0, 1, 2, 17], 256, 4096) == 16384
    # 64-B granules divide the unit: exactly 4 x 256 x 2 = 2048 B
    assert granule_bytes([0, 1, 2, 17], 256, 64) == 2048
    with pytest.raises(ValueError, match="store_granule_bytes"):
        granule_bytes([0], 256, 96)
    fetched = np.zeros(40, bool)
    fetched[[0, 1, 2, 17, 35]] = True
    # only the 20 oldest tokens are offloaded: tokens 0, 1, 2, 17 (token 35 is in DRAM)
    assert token_order_bytes(fetched, 20, 256, 4096) == (4, 16384)


def test_cluster_layout_packs_selected_clusters():
    config = PRESETS["tiny"]
    # clusters 0 and 1 interleaved in arrival order; cluster 1 alone is selected
    token_cluster = np.array([0, 1] * 16)
    selected = np.array([False, True])
    scores = np.array([3, 9], np.uint64)
    # arrival order: its 16 tokens touch both 4 KiB granules (tokens 1..31)
    assert token_order_bytes(token_cluster == 1, 32, 256, 4096) == (16, 16384)
    # cluster-contiguous: cluster 0 holds addresses 0..15, cluster 1 16..31: one granule,
    # one descriptor
    assert cluster_layout_bytes(config, token_cluster, selected, scores, 32, 256, 4096) == \
        (16, 8192, 1)


def test_frame_cycles_spread_problems_over_cores():
    # 8 KV heads x batch 4 = 32 problems on 8 DREs: 4 rounds of each layer's problem
    assert frame_cycles([100, 200], kv_heads=8, batch=4, cores=8) == 4 * 300
    # 48 DREs take the 64 problems of batch 8 in 2 rounds
    assert frame_cycles([100], kv_heads=8, batch=8, cores=48) == 2 * 100
    with pytest.raises(ValueError, match="cores must be a positive integer"):
        frame_cycles([1], kv_heads=8, batch=1, cores=0)


def test_problem_cycles_are_the_frame_twins(tiny_profile):
    timed = [s for s in tiny_profile.samples if s.dre is not None]
    assert {s.cache_tokens for s in timed} == set(TINY_SIZES)
    for sample in timed:
        dre = sample.dre
        assert dre["total"] == dre["hcu"] + dre["kvmu"] + dre["wtu"] + dre["top"]
        assert dre["hcu"] > 0 and dre["wtu"] > 0


def test_stream_cycles_equal_the_frame_twin_on_a_dump():
    # The system model's timing of a stream's frame is the frame twin's run on the same frames
    # (the DRE's file interface on a KV dump of the workload).
    config = PRESETS["tiny"]
    dump = KVDump(dre_trace(10, seed=3, layers=1, kv_heads=1), "dump")
    expected = run_dump(config, dump, seed=3)
    planes = make_hyperplanes(config.hash_bits, dump.head_dim, 3, 0, 0)
    hashes = hash_keys(dump.keys(0, 0), planes)
    head = ResvHead(config, dump.head_dim, planes, dump.tokens)
    stream = StreamCycles(config, 0, 0)
    for frame in range(10):
        begin, end = dump.frame_starts[frame], dump.frame_starts[frame + 1]
        step = head.step(dump.keys(0, 0)[begin:end], dump.queries(0, 0, frame))
        timed = stream.frame(hashes[begin:end], step if frame % 3 == 2 else None)
        if timed is not None:
            assert timed["total"] == expected["cycles"][frame]
            assert timed["hcu"] == expected["cycles_hcu"][frame]


def test_dre_time_is_cycles_times_clock_period(systems, tiny_profile):
    model, dre = systems.model, PRESETS["tiny"]
    for clock in (800.0, 400.0):
        system = systems.systems["vrex8"].replace(clock_mhz=clock)
        for batch in (1, 4):
            result = frame(model, system, dre, tiny_profile, "vrex", batch, TINY_SIZES[-1])
            cycles = np.mean([s.dre["total"] for s in tiny_profile.at(TINY_SIZES[-1])
                              if s.dre])
            expected = frame_cycles([cycles] * model.llm_layers, model.kv_heads, batch,
                                    system.cores)
            assert result.dre_cycles == pytest.approx(expected)
            assert result.dre_s == pytest.approx(expected / (clock * 1e6))
    # methods without the DRE spend no DRE cycles
    assert frame(model, systems.systems["vrex8"], dre, tiny_profile, "resv_lxe", 1,
                 TINY_SIZES[-1]).dre_cycles == 0


def test_latency_grows_with_cache_size(systems, tiny_profile):
    model, dre = systems.model, PRESETS["tiny"]
    system = systems.systems["vrex8"].replace(kv_resident_tokens=16)
    scale = paper_scale(tiny_profile)
    for method in METHODS:
        times = [frame(model, system, dre, tiny_profile, method, 1, size, scale[size]).step_s
                 for size in TINY_SIZES]
        assert times == sorted(times), method
    offload = [frame(model, system, dre, tiny_profile, "offload", 1, size).step_s
               for size in TINY_SIZES]
    assert offload[0] < offload[1] < offload[2]


def test_parts_add_up_and_energy_is_positive(systems, tiny_profile):
    result = frame(systems.model, systems.systems["vrex48"], PRESETS["tiny"], tiny_profile,
                   "vrex", 8, TINY_SIZES[1])
    assert sum(result.parts_s.values()) == pytest.approx(result.step_s)
    assert all(value >= 0 for value in result.energy_j.values())
    assert result.energy_j["hcu"] > 0 and result.energy_j["kvmu"] > 0


def _edited(tmp_path, change):
    data = json.loads(DEFAULT_SYSTEMS_FILE.read_text())
    change(data)
    path = tmp_path / "systems.json"
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize("change, error, message", [
    (lambda d: d["systems"]["vrex8"].pop("cores"), ValueError,
     r"systems\.vrex8: missing key\(s\) cores"),
    (lambda d: d["model"].update(extra={"value": 1, "source": "x"}), ValueError,
     r"model: unknown key\(s\) extra"),
    (lambda d: d["systems"]["vrex8"]["cores"].update(value=0), ValueError,
     "cores must be from 1 to 4096, not 0"),
    (lambda d: d["systems"]["vrex8"]["cores"].update(value=2.5), TypeError,
     "cores must be an integer, not 2.5"),
    (lambda d: d["systems"]["vrex48"]["dram_efficiency"].update(value=1.5), ValueError,
     "dram_efficiency must be from 0.01 to 1.0"),
    (lambda d: d["systems"]["vrex8"]["store"].update(value="tape"), ValueError,
     "store must be one of ssd, cpu_memory"),
    (lambda d: d["systems"]["vrex8"]["clock_mhz"].update(source=""), ValueError,
     "key 'clock_mhz' must be an object .* non-empty source"),
    (lambda d: d["model"]["kv_heads"].update(value=7), ValueError, "kv_heads must divide heads"),
    (lambda d: d["batches"].update(vrex8=[0]), ValueError,
     r"batches\.vrex8 must be a non-empty list of positive integers"),
    (lambda d: d["batches"].pop("vrex48"), ValueError, "batches must list the batch sizes"),
])
def test_parameter_file_is_validated(tmp_path, change, error, message):
    path = _edited(tmp_path, change)
    with pytest.raises(error, match=message) as caught:
        load_systems(path)
    assert str(path) in str(caught.value)


def test_parameter_file_every_value_has_a_source(systems):
    for sources in [systems.sources["model"]] + list(systems.sources["systems"].values()):
        assert all(text.strip() for text in sources.values())
    assert systems.batches == {"vrex8": (1, 4), "vrex48": (1, 8)}


def test_cli_writes_the_documented_json(tmp_path, capsys):
    out = tmp_path / "system"
    argv = ["--out", str(out), "--workload", "tiny", "--config", "tiny", "--cache-tokens",
            "40,80", "--layers", "1", "--kv-heads", "1", "--dre-heads", "1",
            "--clock-mhz", "400"]
    assert cli.main(argv) == 0
    document = json.loads((out / "system.json").read_text())
    assert document["cache_tokens"] == [40, 80]
    assert document["clock_mhz"] == {"vrex8": 400.0, "vrex48": 400.0}
    for system, batches in (("vrex8", ("1", "4")), ("vrex48", ("1", "8"))):
        for method in METHODS:
            for batch in batches:
                series = document["results"][system][method][batch]
                for key in ("frame_ms", "fps", "kv_prediction_share", "fetched_bytes",
                            "frame_mj"):
                    assert len(series[key]) == 2, (system, method, batch, key)
                assert series["fps"][0] == pytest.approx(int(batch) * 1000 / series["frame_ms"][0])
                assert sum(v[0] for v in series["parts_ms"].values()) == \
                    pytest.approx(series["frame_ms"][0])
    dre = document["results"]["vrex8"]["vrex"]["1"]
    assert dre["dre_ms"][1] == pytest.approx(dre["dre_cycles"][1] / 400e6 * 1e3)
    for name in ("latency_breakdown.png", "fps.png", "energy.png"):
        assert (out / name).stat().st_size > 0
    printed = capsys.readouterr().out
    # the table: one row per cache size and method for every system and batch
    for system, batches in (("vrex8", ("1", "4")), ("vrex48", ("1", "8"))):
        for batch in batches:
            block = printed.split(f"\n{system}, batch {batch}\n")[1].split("\n\n")[0]
            rows = [line.split() for line in block.splitlines()[1:]]
            assert [(int(r[0]), r[1]) for r in rows] == [(size, method) for size in (40, 80)
                                                         for method in METHODS]
            ms = document["results"][system]["vrex"][batch]["frame_ms"][1]
            assert float(rows[-1][2]) == pytest.approx(ms, abs=0.05)


def test_cli_rejects_an_unknown_system(tmp_path, capsys):
    argv = ["--out", str(tmp_path), "--workload", "tiny", "--config", "tiny",
            "--cache-tokens", "40", "--system", "vrex9"]
    assert cli.main(argv) == 2
    assert "--system must name systems" in capsys.readouterr().err
    assert not (tmp_path / "system.json").exists()


def test_measure_rejects_sizes_beyond_the_stream():
    source = WorkloadSource(WORKLOADS["tiny"].replace(frames=10), "workload tiny")
    with pytest.raises(ValueError, match="no frame with queries has 1000 past tokens"):
        measure(source, PRESETS["tiny"], (1000,))
    with pytest.raises(ValueError, match="cache_tokens must be increasing"):
        measure(source, PRESETS["tiny"], (20, 10))


def test_cli_measures_a_kv_dump(tmp_path, capsys):
    # A dump cut from the tiny workload: 1 layer, 2 KV heads, 30 frames of 4 tokens, queries of
    # every frame (8 rows each).
    workload = WORKLOADS["tiny"].replace(frames=30)
    stream = WorkloadSource(workload, "tiny")
    keys = np.stack([[stream.keys(0, head) for head in range(2)]])
    values = np.stack([[stream.values(0, head) for head in range(2)]])
    queries = np.stack([[np.stack([stream.queries(0, head, f) for f in range(30)])
                         for head in range(2)]])
    path = tmp_path / "dump.npz"
    save_kv_dump(path, keys, values, stream.frame_of_token, queries)
    out = tmp_path / "system"
    argv = ["--out", str(out), "--kv-dump", str(path), "--config", "tiny", "--cache-tokens",
            "40,80", "--layers", "1", "--kv-heads", "2", "--dre-heads", "1"]
    assert cli.main(argv) == 0
    document = json.loads((out / "system.json").read_text())
    assert document["sampling"].startswith(str(path))
    assert [row["samples"] for row in document["retrieval"]] == [4, 4]
    capsys.readouterr()
    # a cache size beyond the dump is an error naming the file
    argv[argv.index("40,80")] = "40,800"
    assert cli.main(argv) == 2
    assert f"{path}: no frame with queries has 800 past tokens" in capsys.readouterr().err
