"""HCU figures of ``make bench``: the edge preset over the streaming workload, from the twin.

Every figure comes from the cycle-exact twin (:mod:`model.twins.hcu`), whose per-token cycle count
equals the RTL's; one RTL run (:func:`sim.run.run_rtl`, the generated Verilog) on a slice
of the same stream confirms the count token by token and gives the simulation time per 1000
tokens on each installed simulator (Icarus, Verilator; :mod:`sim.simspeed`).

Figures, for a few (layer, KV head) streams of ``FRAMES`` frames:

* cycles per token and per frame;
* lane utilisation, useful compare-cycles / (``hcu_lanes`` x cycles) (goal >= 0.9);
* hash bits compared with early exit over those compared without it (goal <= 0.5).

The same figures for the whole workload (the table fills as the stream goes on), for a table
kept full (a synthetic stream of mostly new clusters, the regime of a long cache) and for sweeps
of lanes x bits per cycle and of tokens in flight show where the goals hold: the dispatcher
starts at most ``hcu_dispatch_width`` compares per cycle, so lanes wait for work when compares
are shorter than ``hcu_lanes / hcu_dispatch_width`` cycles (wide ``hcu_bits_per_cycle``,
far-apart hashes), and fewer tokens in flight leave lanes idle while a
token's last compare runs to the end (see :mod:`hw.hcu`).
"""

import json
from pathlib import Path

import numpy as np

from model.config import PRESETS
from model.twins.hcu import hash_cluster, summarize
from model.stimulus.hashes import synthetic_hashes
from model.stimulus.traces import hcu_trace
from model.stimulus.workload import WORKLOADS

__all__ = ["WORKLOAD", "FRAMES", "STREAMS", "run"]

#: Workload and length of the benchmark streams; the whole workload is measured too (model only).
WORKLOAD = "default"
FRAMES = 100
#: (layer, KV head) streams measured.
STREAMS = [(0, 0), (1, 3), (2, 7)]


def _figures(config, result, tokens_per_frame):
    summary = summarize(config, result)
    summary["cycles_per_frame"] = summary["cycles_per_token"] * tokens_per_frame
    return summary


def _workload_rows(config, frames, streams, tokens_per_frame):
    rows = []
    for layer, kv_head in streams:
        hashes = hcu_trace(config, frames=frames, layer=layer, kv_head=kv_head,
                           workload=WORKLOAD)["hashes"]
        row = _figures(config, hash_cluster(config, hashes), tokens_per_frame)
        rows.append({"layer": layer, "kv_head": kv_head, **row})
    return rows


def _full_table(config, tokens):
    # Far more centres than table entries: the table fills and stays full (eviction regime).
    rng = np.random.default_rng(0)
    hashes = synthetic_hashes(config, tokens, rng, centres=2 * tokens)
    result = hash_cluster(config, hashes)
    warm = {key: value[config.hash_mem_entries:] for key, value in result.items()}
    return summarize(config, warm)


def _sweep(config, hashes, tokens_per_frame, points):
    """Figures of ``hashes`` for each point, a dict of parameter changes (keys without ``hcu_``)."""
    rows = []
    for point in points:
        variant = config.replace(**{f"hcu_{name}": value for name, value in point.items()})
        rows.append({**point, **_figures(variant, hash_cluster(variant, hashes), tokens_per_frame)})
    return rows


def _other_cluster_distances(config, hashes, result):
    """Hamming distances from each token to the table clusters it does not join.

    These compares are the ones early exit can cut short: one that differs in few more bits than
    the threshold reaches it late in the hash.
    """
    leaders = np.asarray(hashes, np.uint64)[result["new"]]
    distances = []
    opened = 0
    for token, value in enumerate(np.asarray(hashes, np.uint64)):
        ids = np.arange(max(0, opened - config.hash_mem_entries), opened)
        ids = ids[ids != int(result["cluster"][token])] if not result["new"][token] else ids
        distances.append(np.bitwise_count(leaders[ids] ^ value))
        opened += bool(result["new"][token])
    return np.concatenate(distances) if distances else np.zeros(0, np.uint8)


def _rtl_confirm(config, hashes, out_dir, simulators):
    from sim.run import run_rtl
    from sim.simspeed import simulator_speeds

    def run(simulator, folder):
        return run_rtl("hcu", config, {"hashes": np.asarray(hashes, np.uint64)}, folder,
                       tag="bench", simulator=simulator)

    speeds, rtl = simulator_speeds(run, Path(out_dir) / "hcu_rtl", units=len(hashes), per=1000,
                                   simulators=simulators)
    model = hash_cluster(config, hashes)
    same = all(np.array_equal(rtl[key].astype(np.int64), model[key].astype(np.int64))
               for key in ("cluster", "new", "distance", "cycles"))
    same = same and all(speed["equal_to_first"] for speed in speeds.values())
    first = next(iter(speeds.values()))
    cycles = int(model["cycles"].sum())
    return {"tokens": len(hashes), "cycles": cycles, "cycles_match": bool(same),
            "simulator": next(iter(speeds)), "sim_seconds": first["sim_seconds"],
            "wall_seconds_with_build": first["wall_seconds_with_build"],
            "sim_seconds_per_1000_tokens": first["sim_seconds_per_unit"],
            "sim_cycles_per_second": round(cycles / max(first["sim_seconds"], 1e-9)),
            "simulators": {name: {**speed, "sim_seconds_per_1000_tokens":
                                  speed.pop("sim_seconds_per_unit")}
                           for name, speed in speeds.items()}}


def _plot(config, hashes, out_dir):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    result = hash_cluster(config, hashes)
    tokens = np.arange(len(hashes))
    useful = result["useful_cycles"].astype(float)
    cycles = result["cycles"].astype(float)
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(7, 5), sharex=True)
    top.plot(tokens, cycles, lw=0.8, label="cycles per token")
    top.plot(tokens, np.minimum(result["compared"], config.hash_mem_entries), lw=0.8,
             label="clusters in the table")
    top.set_ylabel("count")
    top.legend(loc="upper left")
    bottom.plot(tokens, useful / (config.hcu_lanes * cycles), lw=0.8, label="lane utilisation")
    compared = np.maximum(result["compared"].astype(float), 1)
    bottom.plot(tokens, useful / (compared * config.hcu_beats_per_hash), lw=0.8,
                label="bits with / without early exit")
    bottom.set_xlabel("token")
    bottom.set_ylim(0, 1.05)
    bottom.legend(loc="lower right")
    figure.suptitle(f"HCU, edge preset, {WORKLOAD} workload, layer 0 head 0")
    figure.tight_layout()
    path = Path(out_dir) / "hcu_stream.png"
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return str(path)


def _print_table(title, rows, columns):
    print(title)
    print("  " + "  ".join(f"{name:>10s}" for name, _ in columns))
    for row in rows:
        print("  " + "  ".join(f"{fmt.format(row[name]):>10s}" for name, fmt in columns))


def run(out_dir, quick=False):
    """Measure the HCU figures; prints a table and returns a JSON-able dict.

    Parameters
    ----------
    out_dir : path-like
        Folder of ``hcu.json``, ``hcu_stream.png`` and the RTL run's build.
    quick : bool
        One stream and a shorter RTL slice (a smoke run); still ``FRAMES`` frames.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    config = PRESETS["edge"]
    tokens_per_frame = WORKLOADS[WORKLOAD].tokens_per_frame
    streams = STREAMS[:1] if quick else STREAMS
    rows = _workload_rows(config, FRAMES, streams, tokens_per_frame)
    whole_frames = WORKLOADS[WORKLOAD].frames
    whole = [] if quick else _workload_rows(config, whole_frames, streams, tokens_per_frame)
    first = hcu_trace(config, frames=FRAMES, layer=streams[0][0], kv_head=streams[0][1],
                      workload=WORKLOAD)["hashes"]
    sweep = _sweep(config, first, tokens_per_frame,
                   [{"lanes": lanes, "bits_per_cycle": bits,
                     "dispatch_width": min(lanes, config.hcu_dispatch_width)}
                    for lanes in (1, 4, 16) for bits in (1, 4, 32)])
    in_flight = _sweep(config, first, tokens_per_frame,
                       [{"tokens_in_flight": count} for count in (1, 2, 4, 8)])
    others = _other_cluster_distances(config, first, hash_cluster(config, first))
    other_distance = {"median": float(np.median(others)),
                      "below_2x_threshold": float(np.mean(others < 2 * config.hamming_threshold))}
    full = _full_table(config, 1500 if quick else 3000)
    rtl_frames = 20 if quick else FRAMES
    # Quick: the regression's simulator only (a Verilator build of the edge HCU takes minutes).
    from sim.runner import available_simulators, selected_simulator

    simulators = [selected_simulator()] if quick else available_simulators()
    rtl = _rtl_confirm(config, first[:rtl_frames * tokens_per_frame], out_dir, simulators)
    figure = _plot(config, first, out_dir)

    columns = [("layer", "{}"), ("kv_head", "{}"), ("tokens", "{}"), ("clusters", "{}"),
               ("cycles_per_token", "{:.1f}"), ("cycles_per_frame", "{:.0f}"),
               ("lane_utilisation", "{:.3f}"), ("early_exit_ratio", "{:.3f}")]
    _print_table(f"HCU on the edge preset ({config.hcu_lanes} lanes, "
                 f"{config.hcu_bits_per_cycle} bit/cycle, {config.hcu_tokens_in_flight} tokens "
                 f"in flight, {config.hcu_dispatch_width} compares started per cycle, "
                 f"{config.hash_mem_entries} entries), "
                 f"{WORKLOAD} workload, {FRAMES} frames:", rows, columns)
    if whole:
        _print_table(f"the whole {WORKLOAD} workload ({whole_frames} frames):", whole, columns)
    _print_table("full table (synthetic stream, after the first table fill):", [full],
                 [("tokens", "{}"), ("cycles_per_token", "{:.1f}"),
                  ("lane_utilisation", "{:.3f}"), ("early_exit_ratio", "{:.3f}")])
    _print_table(f"lanes x bits per cycle, layer {streams[0][0]} head {streams[0][1]}:", sweep,
                 [("lanes", "{}"), ("bits_per_cycle", "{}"), ("dispatch_width", "{}"),
                  ("cycles_per_token", "{:.1f}"),
                  ("lane_utilisation", "{:.3f}"), ("early_exit_ratio", "{:.3f}")])
    _print_table(f"tokens in flight, layer {streams[0][0]} head {streams[0][1]}:", in_flight,
                 [("tokens_in_flight", "{}"), ("cycles_per_token", "{:.1f}"),
                  ("lane_utilisation", "{:.3f}"), ("early_exit_ratio", "{:.3f}")])
    print(f"distance from a token to the clusters it does not join (layer {streams[0][0]} head "
          f"{streams[0][1]}): median {other_distance['median']:.0f} bits, "
          f"{100 * other_distance['below_2x_threshold']:.0f}% below twice the threshold "
          f"({config.hamming_threshold}): such compares exit late, which bounds the early-exit "
          f"saving")
    print(f"RTL confirmation: {rtl['tokens']} tokens, {rtl['cycles']} cycles, "
          f"cycle count {'equal to' if rtl['cycles_match'] else 'DIFFERENT FROM'} the twin")
    for name, speed in rtl["simulators"].items():
        print(f"  {name:9s} {speed['sim_seconds_per_1000_tokens']:.2f} s of simulation per 1000 "
              f"tokens ({round(rtl['cycles'] / max(speed['sim_seconds'], 1e-9))} cycles/s), "
              f"{speed['wall_seconds_with_build']:.1f} s with the build "
              f"({speed['build_seconds']:.1f} s of it the simulator's build)")
    result = {"config": "edge", "workload": WORKLOAD, "frames": FRAMES,
              "tokens_per_frame": tokens_per_frame, "streams": rows,
              "whole_workload": {"frames": whole_frames, "streams": whole}, "full_table": full,
              "sweep": sweep, "tokens_in_flight_sweep": in_flight,
              "other_cluster_distance": other_distance, "rtl": rtl, "figure": figure}
    (out_dir / "hcu.json").write_text(json.dumps(result, indent=2))
    return result
