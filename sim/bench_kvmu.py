"""KVMU figures of ``make bench``: the costs of the paged cluster layout on the streaming workload.

Every figure comes from the cycle-exact twin (:mod:`model.twins.kvmu`, whose outputs and cycles
equal the RTL's) on the ``edge`` preset, fed by the ReSV float model's cluster assignments and
WiCSum selections (:func:`model.stimulus.kvmu_streams.workload_stream`) for a few (layer, KV
head) streams of the ``default`` workload; one RTL run (cocotb + Icarus) on a slice of the first
stream confirms the outputs and cycles and gives the simulation time.

Figures, per stream and over all of them:

* descriptors per selected cluster (over selected clusters with offloaded tokens), pages walked
  per such cluster, tokens per descriptor;
* offload traffic: tokens and bytes moved per frame (K and V of one (layer, KV head):
  ``2 x head_dim x 2`` bytes a token in BF16), and reorder traffic: bytes moved beyond one move
  per token that left the window (0 by construction of the layout; measured from the move
  descriptors, with the store slots written more than once);
* bytes fetched per frame;
* allocated-but-unused slots at the end of the stream (all clusters' tail pages), as slots and
  as a share of the allocated ones;
* on-chip state of one context in bits (:func:`hw.kvmu.context_state_bits`);
* cycles per frame (mean, max) of the KVMU;
* a sweep of the page size (``kvmu_page_tokens``): descriptors per selected cluster against
  unused slots, the trade-off the page size sets.
"""

import json
import time
from pathlib import Path

import numpy as np

from hw.kvmu import context_state_bits
from model.config import PRESETS
from model.stimulus.kvmu_streams import workload_stream
from model.stimulus.workload import WORKLOADS
from model.twins.kvmu import OUTPUTS, run_stream

__all__ = ["WORKLOAD", "FRAMES", "STREAMS", "PAGE_SWEEP", "run"]

WORKLOAD = "default"
#: Frames per stream (the whole default workload: 480 frames, 5280 tokens).
FRAMES = 480
#: (layer, KV head) streams measured.
STREAMS = [(0, 0), (1, 3), (2, 7), (3, 4)]
#: Page sizes of the sweep.
PAGE_SWEEP = (1, 4, 16, 64)
#: Frames of the RTL confirmation run.
RTL_FRAMES = 60


def _per_frame(result, key, offsets_key):
    offsets = result[offsets_key].astype(int)
    return [result[key][offsets[f]:offsets[f + 1]] for f in range(len(offsets) - 1)]


def _costs(config, arrays, result, token_bytes):
    """The figures of one stream's twin run."""
    frames = len(arrays["new_tokens"])
    walked = [pages for beats in result["pages_per_beat"] for pages in beats if pages > 0]
    descriptors = int(result["desc_len"].size)
    moved = int(result["move_len"][~result["move_dropped"]].sum())
    addresses = [address for dst, length, lost in
                 zip(result["move_dst"], result["move_len"], result["move_dropped"]) if not lost
                 for address in range(int(dst), int(dst) + int(length))]
    # every token that leaves the window is moved once; any further move would be a reorder
    moves_beyond_first = int(result["move_len"].sum()) - sum(result["departing"])
    context = result["context"]
    allocated = context.next_page * config.kvmu_page_tokens
    offloaded = max(0, context.past_prev - config.recent_window)
    fetched = int(result["desc_len"].sum())
    return {
        "frames": frames, "tokens": int(arrays["new_tokens"].sum()),
        "clusters": context.clusters,
        "selected_offloaded_clusters": len(walked), "descriptors": descriptors,
        "descriptors_per_selected_cluster": descriptors / max(1, len(walked)),
        "pages_per_selected_cluster": float(np.mean(walked)) if walked else 0.0,
        "tokens_per_descriptor": fetched / max(1, descriptors),
        "offload_tokens_per_frame": moved / frames,
        "offload_bytes_per_frame": moved * token_bytes / frames,
        "reorder_bytes_per_frame": moves_beyond_first * token_bytes / frames,
        "slots_written_twice": len(addresses) - len(set(addresses)),
        "fetch_bytes_per_frame": fetched * token_bytes / frames,
        "allocated_slots": allocated, "offloaded_tokens": offloaded,
        "unused_slots": allocated - offloaded,
        "unused_share": (allocated - offloaded) / max(1, allocated),
        "store_full": bool(result["store_full"].any()),
        "cycles_per_frame_mean": float(result["cycles"].mean()),
        "cycles_per_frame_max": int(result["cycles"].max()),
    }


def _summary(rows):
    """Totals over streams: ratios of sums, not means of ratios."""
    total = {key: sum(row[key] for row in rows) for key in
             ("frames", "selected_offloaded_clusters", "descriptors", "allocated_slots",
              "offloaded_tokens", "unused_slots", "clusters")}
    fetched = sum(row["tokens_per_descriptor"] * row["descriptors"] for row in rows)
    frames = total["frames"]
    return {
        "descriptors_per_selected_cluster":
            total["descriptors"] / max(1, total["selected_offloaded_clusters"]),
        "tokens_per_descriptor": fetched / max(1, total["descriptors"]),
        "offload_bytes_per_frame":
            sum(row["offload_bytes_per_frame"] * row["frames"] for row in rows) / frames,
        "reorder_bytes_per_frame":
            sum(row["reorder_bytes_per_frame"] * row["frames"] for row in rows) / frames,
        "fetch_bytes_per_frame":
            sum(row["fetch_bytes_per_frame"] * row["frames"] for row in rows) / frames,
        "unused_slots_per_cluster": total["unused_slots"] / max(1, total["clusters"]),
        "unused_share": total["unused_slots"] / max(1, total["allocated_slots"]),
        "cycles_per_frame_mean":
            sum(row["cycles_per_frame_mean"] * row["frames"] for row in rows) / frames,
    }


def _rtl_confirm(config, arrays, frames, out_dir):
    """One RTL run of the first ``frames`` frames; whether it equals the twin, and its time."""
    from sim.run import run_rtl

    tokens = int(arrays["new_tokens"][:frames].sum())
    offsets = arrays["selected_offsets"][:frames + 1]
    part = {"new_tokens": arrays["new_tokens"][:frames], "cluster": arrays["cluster"][:tokens],
            "new": arrays["new"][:tokens], "selected_offsets": offsets,
            "selected_ids": arrays["selected_ids"][:int(offsets[-1])]}
    twin = run_stream(config, part)
    start = time.perf_counter()
    rtl = run_rtl("kvmu", config, part, out_dir / "kvmu_rtl")
    wall = time.perf_counter() - start
    equal = all(np.asarray(rtl[spec.name]).tolist() == np.asarray(twin[spec.name]).tolist()
                for spec in OUTPUTS)
    return {"frames": frames, "equal_to_twin": equal, "wall_seconds": round(wall, 2),
            "sim_seconds": float(rtl["sim_seconds"]),
            "cycles": int(np.asarray(rtl["cycles"]).sum())}


def run(out_dir, quick=False):
    """Measure the KVMU figures; prints tables and returns a JSON-able dict.

    Parameters
    ----------
    out_dir : path-like
        Folder of ``kvmu.json`` and the RTL run's build.
    quick : bool
        One stream of 120 frames and a 20-frame RTL run (a smoke run).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    config = PRESETS["edge"]
    head_dim = WORKLOADS[WORKLOAD].head_dim
    token_bytes = 2 * head_dim * 2          # K and V, BF16, one (layer, KV head)
    frames = 120 if quick else FRAMES
    streams = STREAMS[:1] if quick else STREAMS
    inputs = [(layer, head, workload_stream(config, frames, workload=WORKLOAD, layer=layer,
                                            kv_head=head)[0]) for layer, head in streams]
    rows = [{"layer": layer, "kv_head": head,
             **_costs(config, arrays, run_stream(config, arrays), token_bytes)}
            for layer, head, arrays in inputs]
    summary = _summary(rows)
    sweep = []
    for page_tokens in PAGE_SWEEP:
        variant = config.replace(kvmu_page_tokens=page_tokens)
        variant_rows = [_costs(variant, arrays, run_stream(variant, arrays), token_bytes)
                        for _, _, arrays in inputs]
        sweep.append({"kvmu_page_tokens": page_tokens,
                      "state_bits": sum(context_state_bits(variant).values()),
                      **{key: value for key, value in _summary(variant_rows).items()
                         if key in ("descriptors_per_selected_cluster", "unused_slots_per_cluster",
                                    "unused_share", "tokens_per_descriptor")}})
    state = context_state_bits(config)
    rtl = _rtl_confirm(config, inputs[0][2], 20 if quick else RTL_FRAMES, out_dir)

    print(f"KVMU on the edge preset (pages of {config.kvmu_page_tokens} tokens, window "
          f"{config.recent_window}, {2 ** config.kv_token_bits} store slots), workload "
          f"{WORKLOAD!r}, {frames} frames per (layer, KV head), {token_bytes} B per token (K+V)")
    columns = [("layer", "{}"), ("kv_head", "{}"), ("clusters", "{}"),
               ("descriptors_per_selected_cluster", "{:.2f}"), ("tokens_per_descriptor", "{:.1f}"),
               ("offload_bytes_per_frame", "{:.0f}"), ("reorder_bytes_per_frame", "{:.0f}"),
               ("fetch_bytes_per_frame", "{:.0f}"), ("unused_slots", "{}"),
               ("unused_share", "{:.3f}"), ("cycles_per_frame_mean", "{:.1f}")]
    print("  ".join(name for name, _ in columns))
    for row in rows:
        print("  ".join(fmt.format(row[name]) for name, fmt in columns))
    print("all streams: " + ", ".join(f"{key} {value:.3f}" for key, value in summary.items()))
    print(f"on-chip state of one context: {sum(state.values())} bits "
          f"({sum(state.values()) / 8192:.2f} KiB): "
          + ", ".join(f"{key} {value}" for key, value in state.items()))
    print("page size sweep: " + "; ".join(
        f"P={row['kvmu_page_tokens']}: {row['descriptors_per_selected_cluster']:.2f} desc/cluster, "
        f"{row['unused_slots_per_cluster']:.1f} unused slots/cluster, "
        f"{row['state_bits'] / 8192:.1f} KiB state" for row in sweep))
    print(f"RTL ({rtl['frames']} frames of stream {streams[0]}): equal to the twin "
          f"{rtl['equal_to_twin']}, {rtl['cycles']} cycles, {rtl['sim_seconds']:.1f} s simulated "
          f"({rtl['wall_seconds']:.1f} s with the build)")
    result = {"config": "edge", "workload": WORKLOAD, "frames": frames,
              "token_bytes": token_bytes, "streams": rows, "summary": summary,
              "state_bits": state, "state_bits_total": sum(state.values()),
              "page_sweep": sweep, "rtl": rtl}
    (out_dir / "kvmu.json").write_text(json.dumps(result, indent=2))
    return result
