"""Speed of the ReSV model at a 40K-token cache, and the main job's retrieval table.

:func:`run` (used by ``make bench``) measures the model's time for **one frame over all 32 layers x
8 KV heads** of the VideoLLM-online shape with a 40K-token cache (goal: under 1 s on 2 cores), the
median of several runs. What is timed is the per-frame step of :meth:`model.reference.resv.ResvHead.step`
for each of the 256 (layer, KV head) pairs: hash the new frame's 11 keys, cluster them
incrementally against the 1024-entry hash table, score the frame's 44 query rows against every
cluster representative, quantize, WiCSum-select per row, OR-aggregate, and map the selected
clusters to token indices.

Set-up (not timed): the 40K-token cluster state of **one** (layer, KV head) is built from the
workload (layer 0, KV head 0, all frames but the last) and reused for all 256 pairs (with the same
last frame's keys and queries); after each pair's step the state is rolled back exactly
(:meth:`model.reference.resv.ResvHead.undo_last`), so every pair sees the same 40K-token cache.

Then the main job (:mod:`model.main`) runs on the default workload (the tiny one when ``quick``)
and its table is printed.
"""

import os
import sys
import time
from pathlib import Path

import numpy as np

from model.config import PRESETS
from model.main import WorkloadSource, format_table, one_blas_thread, run_job, write_outputs
from model.reference.resv import ResvHead, make_hyperplanes, quantize_scores, wicsum_select
from model.stimulus.workload import WORKLOADS, StreamingWorkload

__all__ = ["prepare_head", "time_frame", "run", "CACHE_TOKENS"]

#: Cache size of the speed measurement (the largest of the V-Rex paper's sweep).
CACHE_TOKENS = 40_000


def prepare_head(config, wcfg, cache_tokens=CACHE_TOKENS):
    """Cluster state of one (layer, KV head) holding ``cache_tokens`` tokens, and the next frame.

    Returns
    -------
    (ResvHead, keys, queries)
        The state after all whole frames that fit ``cache_tokens``, then the next frame's keys
        and query rows.
    """
    frames = cache_tokens // wcfg.tokens_per_frame
    stream = StreamingWorkload(wcfg.replace(frames=frames + 1))
    planes = make_hyperplanes(config.hash_bits, wcfg.head_dim, wcfg.seed, 0, 0)
    head = ResvHead(config, wcfg.head_dim, planes, (frames + 1) * wcfg.tokens_per_frame)
    head.add_keys(stream.keys(0, 0, frames))
    return head, stream.keys(0, 0, range(frames, frames + 1)), stream.queries(0, 0, frames)


def time_frame(head, keys, queries, pairs):
    """Wall-clock and CPU seconds of ``pairs`` per-frame steps (each rolled back), and the last
    step."""
    started, cpu = time.perf_counter(), time.process_time()
    for _ in range(pairs):
        step = head.step(keys, queries)
        np.flatnonzero(step.retrieved)
        head.undo_last()
    return time.perf_counter() - started, time.process_time() - cpu, step


def _stage_times(head, step, queries, config, repeats=20):
    """Mean seconds of the score product, quantization and WiCSum of one step (for the table)."""
    reps = head.representatives()
    times = {}
    started = time.perf_counter()
    for _ in range(repeats):
        logits = queries @ reps.T
    times["score q.k"] = (time.perf_counter() - started) / repeats
    started = time.perf_counter()
    for _ in range(repeats):
        scores = quantize_scores(logits, config.score_bits, reps.shape[1])
    times["quantize"] = (time.perf_counter() - started) / repeats
    started = time.perf_counter()
    for _ in range(repeats):
        wicsum_select(scores, step.counts, config)
    times["wicsum"] = (time.perf_counter() - started) / repeats
    return times


@one_blas_thread
def run(out_dir, quick=False):
    """Measure the model's per-frame time at a 40K cache and run the main job.

    Parameters
    ----------
    out_dir : str or pathlib.Path
        The main job's ``results.json`` and ``retrieval.png`` go to ``out_dir/resv``.
    quick : bool
        Fewer repetitions and the tiny workload for the main job.

    Returns
    -------
    dict (JSON-ready)
    """
    config = PRESETS["edge"]
    wcfg = WORKLOADS["videollm"]
    pairs = wcfg.layers * wcfg.kv_heads
    started = time.perf_counter()
    head, keys, queries = prepare_head(config, wcfg)
    setup = time.perf_counter() - started
    runs = 2 if quick else 5
    times, cpu_times = [], []
    for _ in range(runs):
        seconds, cpu_seconds, step = time_frame(head, keys, queries, pairs)
        times.append(seconds)
        cpu_times.append(cpu_seconds)
    frame_seconds = float(np.median(times))
    stages = _stage_times(head, step, queries, config)
    speed = {
        "cache_tokens": head.tokens, "clusters": head.clusters,
        "tokens_per_cluster": head.tokens / head.clusters, "pairs": pairs,
        "query_rows": int(queries.shape[0]), "runs": runs,
        "frame_seconds_median": frame_seconds, "frame_seconds_all": times,
        "frame_cpu_seconds_median": float(np.median(cpu_times)),
        "per_head_ms": 1e3 * frame_seconds / pairs, "setup_seconds": setup,
        "selected_clusters": int(step.selected.sum()),
        "retrieved_tokens": int(step.retrieved.sum()),
        "stage_ms_per_head": {name: 1e3 * value for name, value in stages.items()},
        "goal_seconds": 1.0, "meets_goal": frame_seconds < 1.0,
        "load_average_1min": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        "note": "one (layer, KV head) cluster state built from the workload and reused for all "
                "256 pairs, rolled back after each step",
    }
    print(f"ReSV model, one frame at a {head.tokens}-token cache, {pairs} (layer, KV head) pairs "
          f"of the videollm shape ({head.clusters} clusters, {queries.shape[0]} query rows):")
    print(f"  median {frame_seconds:.3f} s per frame over {runs} runs "
          f"({speed['per_head_ms']:.2f} ms per head; goal < 1 s: "
          f"{'met' if speed['meets_goal'] else 'NOT met'}); CPU time "
          f"{speed['frame_cpu_seconds_median']:.3f} s; set-up {setup:.1f} s; machine load "
          f"{speed['load_average_1min']})")
    print("  per head: " + ", ".join(f"{name} {value:.3f} ms"
                                     for name, value in speed["stage_ms_per_head"].items()))
    print(f"  ({speed['note']})")
    workload = "tiny" if quick else "default"
    source = WorkloadSource(WORKLOADS[workload], f"workload {workload}")
    job_config = config if source.query_rows <= config.max_rows else PRESETS["tiny"]
    results = run_job(source, job_config, 8 if quick else 24,
                      progress=lambda line: print(line, file=sys.stderr, flush=True))
    write_outputs(results, Path(out_dir) / "resv")
    print(f"\nretrieval on {source.source} ({results['runtime_s']:.1f} s):")
    print(format_table(results))
    return {"speed": speed, "retrieval": {"source": results["source"],
                                          "methods": results["methods"],
                                          "clustering": results["clustering"],
                                          "runtime_s": results["runtime_s"]}}


if __name__ == "__main__":
    run(sys.argv[1] if len(sys.argv) > 1 else "build/bench")
