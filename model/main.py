"""The main job: ReSV and the baselines on a streaming workload or a KV dump.

``python -m model.main --out build/resv [--workload default] [--kv-dump FILE] [--config edge]``

For every (layer, KV head) the stream is replayed frame by frame through the ReSV float model
(:class:`model.reference.resv.ResvHead`): every frame's keys are hashed and clustered; on the evaluated
frames (``--eval-frames`` of them, evenly spread over the stream) the frame's queries are scored,
WiCSum-selected and OR-ed, and ReSV's retrieved set and every baseline's
(:mod:`model.evaluation.baselines`, same token budget as ReSV for the same layer, head and frame) are
measured against full-cache attention (:mod:`model.evaluation.metrics`).

Outputs in ``--out``: ``results.json`` (per-method means, per-layer ReSV retrieval, clustering
statistics, HC table overhead, configuration, runtime) and ``retrieval.png`` (tokens retrieved vs
attention recall per method; ReSV's retrieval per layer). A table goes to stdout and a progress
line per layer to stderr.
"""

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import ThreadpoolController

from model.evaluation.baselines import BASELINES, RetrievalProblem
from model.config import load_config
from model.stimulus.kvdump import load_kv_dump
from model.evaluation.kvmem import hc_entry_bytes, hc_table_overhead
from model.evaluation.metrics import FrameAttention, summarize
from model.evaluation.trace_study import format_study, run_study, write_study
from model.reference.resv import ResvHead, cluster_summary, make_hyperplanes
from model.stimulus.workload import WORKLOADS, StreamingWorkload

__all__ = ["WorkloadSource", "run_job", "format_table", "write_outputs", "main", "METHODS"]

#: Methods of the report, ReSV first.
METHODS = ("resv",) + tuple(BASELINES)


class WorkloadSource:
    """The synthetic workload behind the same interface as :class:`model.stimulus.kvdump.KVDump`."""

    def __init__(self, wcfg, name="workload"):
        self._stream = StreamingWorkload(wcfg)
        self.source = name
        self.wcfg = wcfg
        self.layers, self.kv_heads, self.head_dim = wcfg.layers, wcfg.kv_heads, wcfg.head_dim
        self.frames, self.tokens, self.query_rows = wcfg.frames, wcfg.tokens, wcfg.query_rows
        self.query_frames = np.arange(wcfg.frames, dtype=np.int64)
        self.frame_of_token = self._stream.frame_of_token()
        self.frame_starts = np.arange(wcfg.frames + 1, dtype=np.int64) * wcfg.tokens_per_frame

    def keys(self, layer, kv_head):
        return self._stream.keys(layer, kv_head, self.frames)

    def values(self, layer, kv_head):
        return self._stream.values(layer, kv_head, self.frames)

    def queries(self, layer, kv_head, frame):
        return self._stream.queries(layer, kv_head, frame)


def evaluation_frames(source, count):
    """``count`` frames with queries, evenly spread from the second query frame to the last."""
    candidates = source.query_frames[source.query_frames > 0]
    if candidates.size == 0:
        raise ValueError(f"{source.source}: no frame after frame 0 has queries to evaluate")
    picks = np.unique(np.round(np.linspace(0, candidates.size - 1, max(1, count))).astype(int))
    return candidates[picks]


def _head_job(source, config, layer, kv_head, eval_frames, seed):
    """Replay one (layer, KV head); returns (records per method, ReSV frame stats, head stats)."""
    keys, values = source.keys(layer, kv_head), source.values(layer, kv_head)
    planes = make_hyperplanes(config.hash_bits, source.head_dim, seed, layer, kv_head)
    head = ResvHead(config, source.head_dim, planes, source.tokens)
    starts = source.frame_starts
    evaluate = set(int(frame) for frame in eval_frames)
    records = {method: [] for method in METHODS}
    frame_stats = []
    for frame in range(source.frames):
        begin, end = int(starts[frame]), int(starts[frame + 1])
        if frame not in evaluate:
            head.add_keys(keys[begin:end])
            continue
        queries = source.queries(layer, kv_head, frame)
        step = head.step(keys[begin:end], queries)
        attention = FrameAttention(queries, keys[:begin], values[:begin], keys[begin:end],
                                   values[begin:end])
        problem = RetrievalProblem(keys[:begin], queries, source.frame_of_token[:begin],
                                   int(step.retrieved.sum()), config.recent_window,
                                   attention.probabilities[:, :begin])
        where = {"layer": layer, "kv_head": kv_head, "frame": frame}
        records["resv"].append({**where, **attention.evaluate(step.retrieved,
                                                              config.recent_window)})
        for name, method in BASELINES.items():
            records[name].append({**where, **attention.evaluate(method(problem),
                                                                config.recent_window)})
        frame_stats.append({**records["resv"][-1], "clusters": head.clusters,
                            "tokens_per_cluster": head.tokens / head.clusters,
                            "selected_clusters": int(step.selected.sum()),
                            "row_selected_clusters": float(step.row_selected.sum(axis=1).mean())})
    sizes = cluster_summary(head.counts)
    sizes.update({"layer": layer, "kv_head": kv_head, "tokens": head.tokens,
                  "hc_table_overhead": hc_table_overhead(head.clusters, head.tokens, config,
                                                         source.head_dim)})
    return records, frame_stats, sizes


def run_job(source, config, eval_count=24, seed=0, progress=None):
    """Run ReSV and the baselines on every (layer, KV head) of ``source``.

    Parameters
    ----------
    source : WorkloadSource or model.stimulus.kvdump.KVDump
    config : model.config.DREConfig
    eval_count : int
        Frames to evaluate per (layer, KV head).
    seed : int
        Seed of the hyperplanes.
    progress : callable or None
        Called with a text line after each layer.

    Returns
    -------
    dict (JSON-ready)
    """
    if source.query_rows > config.max_rows:
        raise ValueError(f"{source.source}: {source.query_rows} query rows per frame exceed "
                         f"max_rows ({config.max_rows}) of the configuration")
    started = time.perf_counter()
    eval_frames = evaluation_frames(source, eval_count)
    records = {method: [] for method in METHODS}
    frame_stats, head_stats = [], []
    for layer in range(source.layers):
        for kv_head in range(source.kv_heads):
            try:
                head_records, head_frames, sizes = _head_job(source, config, layer, kv_head,
                                                             eval_frames, seed)
            except ValueError as error:
                raise ValueError(f"{source.source}, layer {layer}, KV head {kv_head}: {error}; "
                                 f"use a configuration with more max_clusters") from None
            for method in METHODS:
                records[method] += head_records[method]
            frame_stats += head_frames
            head_stats.append(sizes)
        if progress:
            done = np.mean([r["ratio"] for r in records["resv"] if r["layer"] == layer])
            progress(f"layer {layer + 1}/{source.layers}: ReSV retrieves {100 * done:.1f}% "
                     f"of the past tokens ({time.perf_counter() - started:.1f} s)")
    per_layer = [float(np.mean([r["ratio"] for r in records["resv"] if r["layer"] == layer]))
                 for layer in range(source.layers)]
    total_tokens = sum(stats["tokens"] for stats in head_stats)
    total_clusters = sum(stats["clusters"] for stats in head_stats)
    clustering = {
        "clusters_per_head_mean": float(np.mean([s["clusters"] for s in head_stats])),
        "tokens_per_cluster_mean": total_tokens / total_clusters,
        "tokens_per_cluster_max": int(max(s["tokens_per_cluster_max"] for s in head_stats)),
        "selected_clusters_mean": float(np.mean([s["selected_clusters"] for s in frame_stats])),
        "row_selected_clusters_mean": float(np.mean([s["row_selected_clusters"]
                                                     for s in frame_stats])),
        "clusters_at_evaluation_mean": float(np.mean([s["clusters"] for s in frame_stats])),
        "hc_entry_bytes": hc_entry_bytes(config, source.head_dim),
        "hc_entry_format": f"hash {config.hash_bits} b + count {config.count_bits} b + base "
                           f"address {config.kv_token_bits} b (rounded up to bytes) + "
                           f"representative key {source.head_dim} x BF16",
        "hc_table_overhead": float(total_clusters * hc_entry_bytes(config, source.head_dim) /
                                   (total_tokens * source.head_dim * 4)),
    }
    return {
        "source": source.source,
        "shape": {"layers": source.layers, "kv_heads": source.kv_heads,
                  "head_dim": source.head_dim, "frames": source.frames, "tokens": source.tokens,
                  "query_rows": source.query_rows},
        "workload": dataclasses.asdict(source.wcfg) if hasattr(source, "wcfg") else None,
        "config": config.to_dict(),
        "seed": seed,
        "evaluated_frames": [int(frame) for frame in eval_frames],
        "budgets": "rekv, quest, topk_oracle and streamingllm get ReSV's number of retrieved "
                   "past tokens for the same (layer, KV head, frame), rounded up to whole "
                   "frames/pages; infinigen sets its own; every sparse method keeps the "
                   f"{config.recent_window}-token recent window",
        "methods": {method: summarize([{k: v for k, v in r.items()
                                         if k not in ("layer", "kv_head", "frame")}
                                        for r in records[method]]) for method in METHODS},
        "resv_per_layer_ratio": per_layer,
        "clustering": clustering,
        "heads": head_stats,
        "resv_frames": frame_stats,
        "runtime_s": time.perf_counter() - started,
    }


def format_table(results):
    """The results as a text table (method, tokens retrieved %, recall, output error)."""
    lines = [f"{'method':<14}{'retrieved %':>12}{'recall':>10}{'output err':>12}"
             f"{'MB fetched':>12}"]
    for method, row in results["methods"].items():
        lines.append(f"{method:<14}{100 * row['ratio']:>12.1f}{row['recall']:>10.4f}"
                     f"{row['output_error']:>12.4f}{row['bytes_fetched'] / 1e6:>12.3f}")
    c = results["clustering"]
    lines += [
        "",
        f"clustering: {c['tokens_per_cluster_mean']:.1f} tokens per cluster on average "
        f"(max {c['tokens_per_cluster_max']}), {c['clusters_per_head_mean']:.0f} clusters per "
        f"(layer, KV head) at the end of the stream",
        f"ReSV selects {c['selected_clusters_mean']:.1f} of {c['clusters_at_evaluation_mean']:.0f} "
        f"clusters per (layer, KV head, frame) (OR of rows; {c['row_selected_clusters_mean']:.1f} "
        f"per row)",
        f"HC table overhead: {100 * c['hc_table_overhead']:.2f}% of the KV cache "
        f"({c['hc_entry_bytes']} B per cluster: {c['hc_entry_format']})",
        "ReSV retrieval per layer: " + ", ".join(f"{100 * r:.1f}%"
                                                 for r in results["resv_per_layer_ratio"]),
        f"budgets: {results['budgets']}",
    ]
    return "\n".join(lines)


def plot(results, path):
    """Tokens retrieved vs recall per method, and ReSV's retrieval per layer, to a PNG."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for method, row in results["methods"].items():
        left.scatter(100 * row["ratio"], row["recall"], s=60 if method == "resv" else 30,
                     marker="*" if method == "resv" else "o", label=method)
    left.set_xlabel("past tokens retrieved (%)")
    left.set_ylabel("attention-mass recall")
    left.set_title("retrieval vs recall (mean over layers, heads, frames)")
    left.grid(alpha=0.3)
    left.legend(fontsize=8)
    per_layer = results["resv_per_layer_ratio"]
    right.bar(range(len(per_layer)), [100 * r for r in per_layer])
    right.set_xticks(range(len(per_layer)))
    right.set_xlabel("layer")
    right.set_ylabel("past tokens retrieved by ReSV (%)")
    right.set_title("ReSV retrieval per layer")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def write_outputs(results, out_dir):
    """Write ``results.json`` and ``retrieval.png`` into ``out_dir`` (created)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(json.dumps(results, indent=2))
    plot(results, out_dir / "retrieval.png")
    return out_dir / "results.json", out_dir / "retrieval.png"


#: Many small matrix products: one BLAS thread is faster than threads fighting for the cores.
#: Applied around the entry points only (nothing is changed at import).
one_blas_thread = ThreadpoolController().wrap(limits=1, user_api="blas")


@one_blas_thread
def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m model.main",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="build/resv", help="output folder (default build/resv)")
    parser.add_argument("--workload", default="default", choices=sorted(WORKLOADS),
                        help="synthetic workload preset (default: default)")
    parser.add_argument("--kv-dump", help="run on a KV dump .npz instead (see model/stimulus/kvdump.py)")
    parser.add_argument("--config", default="edge", help="DRE preset or JSON file (default edge)")
    parser.add_argument("--eval-frames", type=int, default=24,
                        help="frames evaluated per (layer, KV head) (default 24)")
    parser.add_argument("--seed", type=int, default=0, help="seed of workload and hyperplanes")
    parser.add_argument("--no-study", action="store_true",
                        help="with --kv-dump: skip the trace study (study.json, study.png)")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
        if args.eval_frames < 1:
            raise ValueError(f"--eval-frames must be a positive integer, not {args.eval_frames}")
        if args.kv_dump:
            source = load_kv_dump(args.kv_dump)
        else:
            source = WorkloadSource(WORKLOADS[args.workload].replace(seed=args.seed),
                                    f"workload {args.workload}")
        shape = (f"{source.layers} layers x {source.kv_heads} KV heads, {source.frames} frames, "
                 f"{source.tokens} tokens")
        print(f"ReSV and baselines on {source.source} ({shape}), config {args.config}",
              file=sys.stderr)
        results = run_job(source, config, args.eval_frames, args.seed,
                          progress=lambda line: print(line, file=sys.stderr, flush=True))
        study = None
        if args.kv_dump and not args.no_study:   # the study of a real trace (trace_study.py)
            study = run_study(source, config, results, results["evaluated_frames"], args.seed,
                              progress=lambda line: print(line, file=sys.stderr, flush=True))
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    json_path, png_path = write_outputs(results, args.out)
    print(format_table(results))
    print(f"\nwrote {json_path} and {png_path} ({results['runtime_s']:.1f} s)")
    if study is not None:
        sidecar = Path(args.kv_dump).with_suffix(".json")
        info = json.loads(sidecar.read_text()) if sidecar.is_file() else None
        study_paths = write_study(study, args.out)
        print("\n" + format_study(study, info))
        print(f"\nwrote {study_paths[0]} and {study_paths[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
