"""DRE figures of ``make bench``: cycles per problem and per frame, from the frame twin.

The frame twin (:mod:`model.twins.dre`) runs on the ``edge`` preset over the streaming workload
of the full VideoLLM-online shape (``videollm``: 32 layers x 8 KV heads, 11 tokens per frame,
3637 frames = 40007 tokens), the model playing the LXE (:mod:`model.stimulus.lxe`). Running all
256 (layer, KV head) streams to 40K tokens takes too long for a benchmark, so it **samples**:
:data:`STREAMS` (one KV head in each of eight layers spread over the 32) are run from frame 0,
untimed between the measured frames, and timed at :data:`SAMPLE_FRAMES` consecutive frames at
each cache size of :data:`CACHES` (the frame whose past cache first reaches the size; for 40K,
past the end of the stream, its last frames: 39974 past tokens). A frame's DRE time assumes
every one of its 32 x 8 problems takes the sampled mean. Measured (one run, 176 s on the shared
machine, the cycle model of the RTL top, a WTU decision in 16 cycles): 1696, 3805, 6649, 11959,
19590 cycles per problem at 1K to 40K tokens; at 40K, 6.27 ms per frame with one DRE (2.47 % of
254 ms, against the paper's 0.5 %: 1.27 ms) and 0.78 ms with 8 (0.31 %).

Figures per cache size:

* cycles per problem (mean, min, max over the samples) and its phases (HCU, KVMU, WTU);
* cycles per frame with one DRE (all 256 problems one after another) and with 8 DREs (one per
  core of V-Rex8: ``ceil(256 / 8) = 32`` problems each), and the time at the paper's 800 MHz;
  against the paper's frame latencies (121, 123, 198, 200, 254 ms) and its claim that KV
  prediction takes 0.5 % of the frame time;
* fetch descriptors per selected cluster with offloaded tokens, tokens and bytes fetched per
  problem (K and V of one (layer, KV head): ``2 x head_dim x 2`` bytes a token in BF16);
* reorder traffic (0 by construction of the KVMU's layout: every token is written once);
* context bytes per problem: the state a context port would save and restore
  (:func:`model.twins.dre.context_bytes`, twice per problem when one DRE serves every context);
  and what the blocks' context ports move, their live part only, after the sampled frames
  (:func:`model.twins.dre.context_traffic`: words and bytes of the image, cycles of the HCU's
  and the KVMU's save and restore).
"""

import json
import math
import time

import numpy as np

from model.config import PRESETS
from model.reference.resv import make_hyperplanes
from model.stimulus.lxe import LXEFrame, LXEHead
from model.stimulus.workload import WORKLOADS, StreamingWorkload
from model.twins.dre import (Command, DRETwin, context_bytes, context_state_bits,
                             context_traffic)

__all__ = ["CACHES", "STREAMS", "SAMPLE_FRAMES", "PAPER_MS", "CLOCK_MHZ", "run"]

#: Cache sizes (tokens before the frame) and the paper's edge frame latency at each (ms).
CACHES = (1000, 5000, 10000, 20000, 40000)
PAPER_MS = (121, 123, 198, 200, 254)
#: The paper's KV prediction share of the frame time after V-Rex (0.5 %).
PAPER_SHARE = 0.005
CLOCK_MHZ = 800
#: (layer, KV head) streams sampled.
STREAMS = [(0, 0), (4, 1), (9, 2), (13, 3), (18, 4), (22, 5), (27, 6), (31, 7)]
#: Consecutive frames timed at each cache size.
SAMPLE_FRAMES = 3
CORES = 8


def _sample_stream(config, workload, layer, head, timed_frames, traffic=None):
    """Run one stream to its last timed frame; the :class:`ProblemResult` of each timed frame
    (and, into ``traffic``, the :func:`context_traffic` after it)."""
    tpf = workload.tokens_per_frame
    last = max(timed_frames)
    keys = workload.keys(layer, head, last + 1)
    lxe_head = LXEHead(config, keys, make_hyperplanes(config.hash_bits, keys.shape[1], 0,
                                                      layer, head))
    dre, results = DRETwin(config), {}
    for frame in range(last + 1):
        timed = frame in timed_frames
        lxe = LXEFrame(lxe_head, frame * tpf, workload.queries(layer, head, frame)
                       if timed else None)
        command = Command(layer, head, frame, tpf, lxe.rows, restart=frame == 0)
        result = dre.problem(command, lxe_head.hashes(frame * tpf, (frame + 1) * tpf), lxe,
                             timed=timed)
        if timed:
            results[frame] = result
            if traffic is not None:
                traffic[frame] = context_traffic(dre)
    return results


def _context_figures(traffic):
    """Means of the sampled :func:`context_traffic` entries."""
    return {key: float(np.mean([entry[key] for entry in traffic])) for key in traffic[0]}


def _figures(config, results, frame_ms, head_dim):
    cycles = np.array([r.cycles for r in results])
    problems = 32 * 8
    per_frame_1 = float(cycles.mean()) * problems
    per_frame_8 = float(cycles.mean()) * math.ceil(problems / CORES)
    selected = [int(np.count_nonzero(r.selected)) for r in results]
    descriptors = sum(len(r.descriptors) for r in results)
    fetched = [int(r.fetch_token.size) for r in results]
    # selected clusters with offloaded tokens (the KVMU walked at least one page)
    with_pages = sum(1 for r in results for pages in r.pages_per_beat if pages)
    ms_1 = per_frame_1 / (CLOCK_MHZ * 1e3)
    ms_8 = per_frame_8 / (CLOCK_MHZ * 1e3)
    return {
        "samples": len(results),
        "cycles_per_problem": {"mean": float(cycles.mean()), "min": int(cycles.min()),
                               "max": int(cycles.max())},
        "phase_cycles_mean": {phase: float(np.mean([r.phase_cycles[phase] for r in results]))
                              for phase in ("hcu", "kvmu", "wtu")},
        "clusters_mean": float(np.mean([r.counts.size for r in results])),
        "selected_clusters_mean": float(np.mean(selected)),
        "cycles_per_frame_1_dre": per_frame_1,
        "cycles_per_frame_8_dre": per_frame_8,
        "ms_per_frame_1_dre": ms_1,
        "ms_per_frame_8_dre": ms_8,
        "paper_frame_ms": frame_ms,
        "share_of_paper_frame_1_dre": ms_1 / frame_ms,
        "share_of_paper_frame_8_dre": ms_8 / frame_ms,
        "paper_kv_prediction_ms": PAPER_SHARE * frame_ms,
        "descriptors_per_selected_cluster": descriptors / with_pages if with_pages else 0.0,
        "fetched_tokens_per_problem": float(np.mean(fetched)),
        "fetched_bytes_per_problem": float(np.mean(fetched)) * 2 * head_dim * 2,
        "fetched_bytes_per_frame": float(np.mean(fetched)) * 2 * head_dim * 2 * problems,
        "reorder_bytes": 0,
        "selected_with_offloaded_mean": with_pages / len(results),
    }


def run(out_dir, quick=False):
    """Run the section; prints its table and returns its figures (JSON-able)."""
    config = PRESETS["edge"]
    streams = STREAMS[:2] if quick else STREAMS
    caches = CACHES[:3] if quick else CACHES
    wcfg = WORKLOADS["videollm"]
    tpf = wcfg.tokens_per_frame
    timed = {cache: list(range(min(-(-cache // tpf), wcfg.frames - SAMPLE_FRAMES),
                               min(-(-cache // tpf), wcfg.frames - SAMPLE_FRAMES) + SAMPLE_FRAMES))
             for cache in caches}
    workload = StreamingWorkload(wcfg.replace(frames=max(max(f) for f in timed.values()) + 1))
    start = time.perf_counter()
    samples = {cache: [] for cache in caches}
    contexts = {cache: [] for cache in caches}
    for layer, head in streams:
        traffic = {}
        results = _sample_stream(config, workload, layer, head,
                                 {f for frames in timed.values() for f in frames}, traffic)
        for cache, frames in timed.items():
            samples[cache] += [results[f] for f in frames]
            contexts[cache] += [traffic[f] for f in frames]
        print(f"  stream ({layer}, {head}) done at {time.perf_counter() - start:.1f} s",
              flush=True)
    figures = {}
    print(f"{'cache':>6} {'cyc/problem':>11} {'hcu':>6} {'kvmu':>5} {'wtu':>6} "
          f"{'ms 1 DRE':>9} {'ms 8 DRE':>9} {'paper ms':>8} {'0.5% ms':>7} {'desc/sel':>8} "
          f"{'KB fetched/frame':>16}")
    for cache, frame_ms in zip(caches, PAPER_MS):
        entry = _figures(config, samples[cache], frame_ms, wcfg.head_dim)
        entry["frames_timed"] = timed[cache]
        figures[str(cache)] = entry
        phases = entry["phase_cycles_mean"]
        print(f"{cache:>6} {entry['cycles_per_problem']['mean']:>11.0f} {phases['hcu']:>6.0f} "
              f"{phases['kvmu']:>5.0f} {phases['wtu']:>6.0f} {entry['ms_per_frame_1_dre']:>9.3f} "
              f"{entry['ms_per_frame_8_dre']:>9.3f} {frame_ms:>8} "
              f"{entry['paper_kv_prediction_ms']:>7.2f} "
              f"{entry['descriptors_per_selected_cluster']:>8.2f} "
              f"{entry['fetched_bytes_per_frame'] / 1024:>16.0f}")
    for cache in caches:
        figures[str(cache)]["context_port"] = moved = _context_figures(contexts[cache])
        print(f"context port at {cache:>5}: {moved['words']:.0f} words = {moved['bytes']:.0f} B "
              f"per save and per restore (HCU {moved['hcu_words']:.0f}, KVMU "
              f"{moved['kvmu_words']:.0f}); save {moved['hcu_save_cycles']:.0f} / "
              f"{moved['kvmu_save_cycles']:.0f}, restore {moved['hcu_restore_cycles']:.0f} / "
              f"{moved['kvmu_restore_cycles']:.0f} cycles (HCU / KVMU); the top: save "
              f"{moved['save_cycles']:.0f} cycles, restore +{moved['restore_cycles']:.0f} cycles "
              f"per problem")
    state = context_state_bits(config)
    print(f"context: {context_bytes(config)} B per save or restore ({state})")
    result = {"preset": "edge", "workload": "videollm", "clock_mhz": CLOCK_MHZ,
              "streams": streams, "sample_frames": SAMPLE_FRAMES, "caches": figures,
              "context_state_bits": state, "context_bytes": context_bytes(config),
              "context_bytes_per_problem_one_dre": 2 * context_bytes(config),
              "seconds": round(time.perf_counter() - start, 1)}
    (out_dir / "dre.json").write_text(json.dumps(result, indent=2))
    return result
