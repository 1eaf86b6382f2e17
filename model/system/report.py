"""Results of the system model: the JSON document, the text table, the comparison with the
paper and the plots.

``system.json`` (schema)
------------------------
``cache_tokens``
    list of int, the cache sizes (past tokens per stream).
``methods``, ``systems``
    the methods (:data:`model.system.perf.METHODS`) and systems reported.
``results[system][method][batch]``
    ``batch`` is a string ("1", "4", ...); each value below is a list aligned with
    ``cache_tokens``: ``frame_ms`` (latency of a step that processes one frame of each of the
    batch's streams), ``fps`` (frames per second over all streams, ``batch * 1000 /
    frame_ms``), ``kv_prediction_share`` (KV prediction busy time, LXE prediction phases plus
    DRE cycles / clock, over ``frame_ms``), ``fetched_bytes`` (bytes read from the offload
    store per step), ``frame_mj`` (energy per frame of one stream: step energy / batch),
    ``frames_per_joule``, ``dre_cycles`` and ``dre_ms`` (the DRE's cycles for the step and their
    time at the clock), ``lxe_prediction_share_of_compute`` (LXE prediction phases over all LXE
    phases), ``link_bytes``, ``dram_bytes``, ``resident_tokens``, ``parts_ms`` (a dict of lists:
    ``vision``, ``linear``, ``attention``, ``prediction``, ``fetch``, ``lm_head``, adding up to
    ``frame_ms``) and ``energy_mj`` (a dict of lists per energy part, per frame of one stream).
``results_paper_ratios``
    the same with the fetched tokens scaled to the paper's retrieval ratios (ReSV 32.7%, ReKV
    58.4%, InfiniGen 50.8%; store reads capped at every offloaded token).
``comparison``
    rows ``{figure, paper, model, ratio, within_25pct, note}`` (ratio = model / paper).
``needed``
    what would make a missed figure match: ReSV's retrieval ratio per cache size for V-Rex8,
    and the factor on the LXE's prediction work for Fig. 16's first step.
``retrieval``
    per cache size: measured ratios, ReSV recall, clusters, the DRE block twins' cycles.
``sampling``, ``parameters`` (every value with its source), ``dre_config``, ``clock_mhz``,
``runtime_s``.
"""

import json
import os
import tempfile
from pathlib import Path

import numpy as np

from model.system.perf import METHODS, frame
from model.system.retrieval import PAPER_RATIOS

__all__ = ["PAPER", "evaluate", "compare", "format_table", "format_comparison", "write_json",
           "plot"]

#: The paper's figures the model is compared with (../shared/PAPER.md and issue 12).
PAPER = {
    "vrex8_frame_ms": {1000: 121, 5000: 123, 10000: 198, 20000: 200, 40000: 254},
    "vrex48_frame_ms_range": (20, 48),
    "kv_prediction_share": 0.005,
    "lxe_prediction_share_of_compute": 0.23,
    "fig16_40k": {"resv_lxe": 2.8, "resv_dre": 6.0, "vrex": 8.1},
}


def _series(model, system, dre_config, profile, method, batch, ratio_scale=None,
            lxe_prediction_scale=1.0):
    """One method and batch at every cache size; ``ratio_scale`` maps a size to its factors."""
    runs = [frame(model, system, dre_config, profile, method, batch, size,
                  (ratio_scale or {}).get(size), lxe_prediction_scale)
            for size in profile.cache_tokens]
    ms = [1e3 * r.step_s for r in runs]
    return {
        "frame_ms": ms,
        "fps": [batch * 1e3 / value for value in ms],
        "kv_prediction_share": [r.prediction_s / r.step_s for r in runs],
        "fetched_bytes": [r.store_bytes for r in runs],
        "frame_mj": [1e3 * r.energy_total_j / batch for r in runs],
        "frames_per_joule": [batch / r.energy_total_j for r in runs],
        "dre_cycles": [r.dre_cycles for r in runs],
        "dre_ms": [1e3 * r.dre_s for r in runs],
        "lxe_prediction_share_of_compute": [
            (r.prediction_s - r.dre_s) / r.lxe_compute_s for r in runs],
        "link_bytes": [r.link_bytes for r in runs],
        "dram_bytes": [r.dram_bytes for r in runs],
        "resident_tokens": [r.resident_tokens for r in runs],
        "parts_ms": {part: [1e3 * r.parts_s[part] for r in runs] for part in runs[0].parts_s},
        "energy_mj": {part: [1e3 * r.energy_j[part] / batch for r in runs]
                      for part in runs[0].energy_j},
    }


def paper_scale(profile):
    """Per mask, paper ratio / measured ratio at each cache size (dict of size -> dict)."""
    scale = {}
    for size in profile.cache_tokens:
        here = profile.at(size)
        scale[size] = {mask: PAPER_RATIOS[mask] / max(1e-9, np.mean([s.ratio(mask)
                                                                     for s in here]))
                       for mask in PAPER_RATIOS}
    return scale


def evaluate(systems_file, dre_config, profile, systems=None, ratio_scale=None):
    """``results[system][method][batch]`` (module docstring) for every system and batch.

    ``ratio_scale`` maps a cache size to the per-mask factors of :func:`model.system.perf.frame`
    (see :func:`paper_scale`).
    """
    results = {}
    for name in systems or systems_file.systems:
        system = systems_file.systems[name]
        results[name] = {method: {str(batch): _series(systems_file.model, system, dre_config,
                                                      profile, method, batch, ratio_scale)
                                  for batch in systems_file.batches[name]}
                         for method in METHODS}
    return results


def _bisect(function, target, low, high, steps=60):
    """``x`` in [low, high] with ``function(x)`` = target for an increasing function, or None."""
    if not function(low) <= target <= function(high):
        return None
    for _ in range(steps):
        middle = (low + high) / 2
        low, high = (middle, high) if function(middle) < target else (low, middle)
    return (low + high) / 2


def _row(figure, paper, model, note=""):
    ratio = model / paper if paper else None
    return {"figure": figure, "paper": paper, "model": model, "ratio": ratio,
            "within_25pct": None if ratio is None else bool(0.75 <= ratio <= 1.25), "note": note}


def compare(results, paper_results, systems_file, dre_config, profile):
    """The comparison rows and the ``needed`` assumptions (module docstring)."""
    sizes = profile.cache_tokens
    rows, needed = [], {}
    index = {size: i for i, size in enumerate(sizes)}
    if "vrex8" in results:
        for label, table in (("measured ratios", results), ("paper ratios", paper_results)):
            for size, paper in PAPER["vrex8_frame_ms"].items():
                if size in index:
                    rows.append(_row(f"V-Rex8 batch 1 ms/frame at {size} tokens ({label})",
                                     paper, table["vrex8"]["vrex"]["1"]["frame_ms"][index[size]]))
        ours = results["vrex8"]["vrex"]["1"]
        for size in sizes:
            rows.append(_row(f"V-Rex8 KV prediction share at {size} tokens",
                             PAPER["kv_prediction_share"], ours["kv_prediction_share"][index[size]],
                             "DRE cycles / clock + LXE scoring, over the frame time"))
        lxe = results["vrex8"]["resv_lxe"]["1"]["lxe_prediction_share_of_compute"]
        rows.append(_row("ReSV on the LXE: KV prediction share of the computation (40K)",
                         PAPER["lxe_prediction_share_of_compute"], lxe[-1]))
        last = sizes[-1]
        for label, table in (("measured ratios", results), ("paper ratios", paper_results)):
            base = table["vrex8"]["offload"]["1"]["frame_ms"][-1]
            for method, paper in PAPER["fig16_40k"].items():
                rows.append(_row(f"Fig. 16 at {last} tokens: offload / {method} ({label})",
                                 paper, base / table["vrex8"][method]["1"]["frame_ms"][-1]))
        needed["vrex8_resv_ratio"] = _needed_ratio(systems_file, dre_config, profile)
        needed["fig16_lxe_prediction_scale"] = _needed_lxe_scale(systems_file, dre_config,
                                                                 profile)
    needed["dram_efficiency"] = _needed_dram_efficiency(systems_file, dre_config, profile)
    if "vrex48" in results:
        ms = results["vrex48"]["vrex"]["1"]["frame_ms"]
        low, high = PAPER["vrex48_frame_ms_range"]
        rows.append(_row(f"V-Rex48 batch 1 ms/frame at {sizes[0]} tokens", low, ms[0]))
        rows.append(_row(f"V-Rex48 batch 1 ms/frame at {sizes[-1]} tokens", high, ms[-1]))
        ms = paper_results["vrex48"]["vrex"]["1"]["frame_ms"]
        rows.append(_row(f"V-Rex48 batch 1 ms/frame at {sizes[-1]} tokens (paper ratios)",
                         high, ms[-1]))
    summary = profile.summary()
    for mask, paper in PAPER_RATIOS.items():
        measured = float(np.mean([row["ratio"][mask] for row in summary]))
        rows.append(_row(f"retrieval ratio {mask} (mean over cache sizes)", paper, measured,
                         "ReKV is run at the paper's ratio" if mask == "rekv" else
                         "measured on " + profile.source))
    return rows, needed


def _needed_ratio(systems_file, dre_config, profile):
    """Per cache size: ReSV's retrieval ratio for which V-Rex8 batch 1 meets the paper."""
    system, model = systems_file.systems["vrex8"], systems_file.model
    answer = {}
    for size, paper in PAPER["vrex8_frame_ms"].items():
        if size not in profile.cache_tokens:
            continue
        measured = float(np.mean([s.ratio("resv") for s in profile.at(size)]))

        def latency(ratio):
            scale = {"resv": ratio / max(measured, 1e-9)}
            return 1e3 * frame(model, system, dre_config, profile, "vrex", 1, size,
                               scale).step_s
        ratio = _bisect(latency, paper, 0.0, 1.0, steps=20)
        answer[str(size)] = {"measured": measured, "needed": ratio,
                             "note": None if ratio is not None else
                             "not reachable by the retrieval ratio alone (0 to 100%)"}
    return answer


def _needed_lxe_scale(systems_file, dre_config, profile):
    """Factor on the LXE's KV prediction work for which offload / resv_lxe is the paper's 2.8
    at the largest cache size (measured ratios)."""
    system, model = systems_file.systems["vrex8"], systems_file.model
    size = profile.cache_tokens[-1]
    base = frame(model, system, dre_config, profile, "offload", 1, size).step_s

    def slowdown(factor):
        return frame(model, system, dre_config, profile, "resv_lxe", 1, size, None,
                     factor).step_s / base
    factor = _bisect(slowdown, 1 / PAPER["fig16_40k"]["resv_lxe"], 1.0, 1e7, steps=60)
    return {"cache_tokens": size, "factor": factor,
            "note": "measured retrieval ratios" if factor is not None else
            "not reachable: without any prediction work ReSV on the LXE is already slower"}


def _needed_dram_efficiency(systems_file, dre_config, profile):
    """DRAM efficiency for which V-Rex (batch 1) meets the paper at the smallest cache size."""
    size = profile.cache_tokens[0]
    targets = {"vrex8": PAPER["vrex8_frame_ms"].get(size),
               "vrex48": PAPER["vrex48_frame_ms_range"][0]}
    answer = {}
    for name, target in targets.items():
        if name not in systems_file.systems or target is None:
            continue
        system = systems_file.systems[name]

        def slower(efficiency):      # increasing as the efficiency falls
            changed = system.replace(dram_efficiency=1.0 - efficiency)
            return 1e3 * frame(systems_file.model, changed, dre_config, profile, "vrex", 1,
                               size).step_s
        lowered = _bisect(slower, target, 0.0, 0.99, steps=20)
        answer[name] = {"cache_tokens": size, "model": system.dram_efficiency,
                        "needed": None if lowered is None else 1.0 - lowered}
    return answer


def format_table(results, cache_tokens):
    """Cache size x method per system and batch: ms/frame, FPS, prediction %, MB, mJ."""
    lines = []
    for name, methods in results.items():
        for batch in next(iter(methods.values())):
            lines.append(f"\n{name}, batch {batch}")
            lines.append(f"{'tokens':>7} {'method':<10}{'ms/frame':>10}{'FPS':>8}"
                         f"{'KV pred %':>10}{'MB fetched':>12}{'mJ/frame':>10}")
            for i, size in enumerate(cache_tokens):
                for method, series in methods.items():
                    row = series[batch]
                    share = 100 * row["kv_prediction_share"][i]
                    megabytes = row["fetched_bytes"][i] / 1e6
                    lines.append(f"{size:>7} {method:<10}{row['frame_ms'][i]:>10.1f}"
                                 f"{row['fps'][i]:>8.2f}{share:>10.2f}{megabytes:>12.1f}"
                                 f"{row['frame_mj'][i]:>10.0f}")
    return "\n".join(lines)


def format_comparison(rows, needed):
    """The comparison with the paper as text."""
    lines = [f"{'figure':<66}{'paper':>9}{'model':>10}{'ratio':>7}  within 25%"]
    for row in rows:
        lines.append(f"{row['figure']:<66}{row['paper']:>9.4g}{row['model']:>10.4g}"
                     f"{row['ratio']:>7.2f}  {'yes' if row['within_25pct'] else 'no'}")
    ratios = needed.get("vrex8_resv_ratio", {})
    if ratios:
        lines.append("\nReSV retrieval ratio V-Rex8 would need to meet the paper's latency:")
        for size, item in ratios.items():
            text = (f"{100 * item['needed']:.1f}%" if item["needed"] is not None
                    else item["note"])
            lines.append(f"  {size:>6} tokens: measured {100 * item['measured']:.1f}%, "
                         f"needed {text}")
    scale = needed.get("fig16_lxe_prediction_scale")
    if scale:
        text = (f"needs {scale['factor']:.3g}x the model's LXE prediction work"
                if scale["factor"] is not None else scale["note"])
        lines.append(f"Fig. 16 (offload / ReSV on the LXE = 2.8 at {scale['cache_tokens']} "
                     f"tokens, {scale['note']}): {text}")
    for name, item in needed.get("dram_efficiency", {}).items():
        text = (f"{item['needed']:.2f}" if item["needed"] is not None
                else "not reachable by the DRAM efficiency alone")
        lines.append(f"{name} batch 1 at {item['cache_tokens']} tokens meets the paper with a "
                     f"DRAM efficiency of {text} (model: {item['model']})")
    return "\n".join(lines)


def write_json(document, path):
    """Write ``document`` as JSON atomically (temporary file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(handle, "w") as stream:
            json.dump(document, stream, indent=1)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
    return path


def _save(figure, path):
    handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".png")
    os.close(handle)
    try:
        figure.savefig(temporary, dpi=110)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def plot(results, cache_tokens, out_dir):
    """Write ``latency_breakdown.png``, ``fps.png`` and ``energy.png`` into ``out_dir``."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    names = list(results)
    labels = [f"{size // 1000}K" if size >= 1000 else str(size) for size in cache_tokens]
    x = np.arange(len(cache_tokens))
    paths = []
    figure, axes = plt.subplots(1, len(names), figsize=(5.5 * len(names), 4.2), squeeze=False)
    for axis, name in zip(axes[0], names):
        parts = results[name]["vrex"]["1"]["parts_ms"]
        bottom = np.zeros(len(cache_tokens))
        for part, values in parts.items():
            axis.bar(x, values, bottom=bottom, label=part)
            bottom += np.array(values)
        axis.set_xticks(x, labels)
        axis.set_xlabel("cached tokens per stream")
        axis.set_ylabel("ms per frame")
        axis.set_title(f"{name} V-Rex, batch 1: latency breakdown")
        axis.legend(fontsize=8)
    figure.tight_layout()
    paths.append(out_dir / "latency_breakdown.png")
    _save(figure, paths[-1])
    plt.close(figure)
    for key, ylabel, filename in (("fps", "frames per second (all streams)", "fps.png"),
                                  ("frame_mj", "mJ per frame", "energy.png")):
        figure, axes = plt.subplots(1, len(names), figsize=(5.5 * len(names), 4.2),
                                    squeeze=False)
        for axis, name in zip(axes[0], names):
            for method, series in results[name].items():
                axis.plot(x, series["1"][key], marker="o", label=method)
            axis.set_xticks(x, labels)
            axis.set_yscale("log")
            axis.set_xlabel("cached tokens per stream")
            axis.set_ylabel(ylabel)
            axis.set_title(f"{name}, batch 1")
            axis.grid(alpha=0.3)
            axis.legend(fontsize=8)
        figure.tight_layout()
        paths.append(out_dir / filename)
        _save(figure, paths[-1])
        plt.close(figure)
    return paths
