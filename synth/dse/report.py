"""Outputs of a design-space exploration: ``points.json``, ``points.md`` and the Pareto PNGs.

``points.json`` (schema ``vrex-dre-dse/1``)
-------------------------------------------
``schema``, ``created`` (UTC ISO time), ``grid`` (file, base, axes, samples, seed, inputs),
``code_version`` (:func:`synth.dse.point.code_version`), ``scheduler`` (``local`` or the
address), ``workers``, ``runs`` (``[{workers, seconds, points}]``: the wall time of each run of
the uncached points), ``objectives`` (the metric on each axis of each front), ``points``: one
record per point of the grid, in grid order:

    ``index``, ``params`` (the grid's values), ``config`` (every ``DREConfig`` parameter, or
    null for an invalid point), ``status`` (``ok`` | ``invalid`` | ``error``), ``errors`` (step ->
    message: ``config`` for an invalid point, ``synth``, ``timing``, ``quality``, ``task``),
    ``metrics`` (:mod:`synth.dse.point`: ``area_ge``, ``area_ge_memory``, ``area_um2``,
    ``critical_path_ns``, ``clock_mhz``, ``dre_cycles_N``, ``dre_us_N``, ``frame_ms_N`` per
    cache size N, ``recall``, ``output_error``, ``tokens_retrieved``), ``seconds`` (per step),
    ``cached`` (true when the record came from the cache), ``key`` (its cache key), ``paper``
    (true for the paper's configuration, the ``edge`` preset), ``pareto`` (front name -> bool).

``pareto``: front name -> list of the indices of its Pareto-optimal points.
"""

import datetime
import json
import os
import tempfile
from pathlib import Path

from model.config import PRESETS
from synth.dse.pareto import FRONTS, pareto_front

__all__ = ["SCHEMA", "objective_metrics", "finish", "write_json", "write_markdown",
           "plot_fronts", "PAPER_PRESET"]

SCHEMA = "vrex-dre-dse/1"

#: The paper's DRE core (../shared/PAPER.md section 3), marked on the plots.
PAPER_PRESET = "edge"

_LABELS = {"area_um2": "area (um^2, PDK)", "area_ge": "area (NAND2 equivalents)",
           "tokens_retrieved": "tokens retrieved (share of the past)",
           "recall": "recall (attention mass on the retrieved tokens)"}


def objective_metrics(points, cache_tokens):
    """Front name -> the metric names of its axes for these points.

    ``area`` is ``area_um2`` when every synthesised point has it (a PDK run), else ``area_ge``;
    ``dre_us`` is the DRE's time per frame at the largest cache size.
    """
    synthesised = [p for p in points if p.get("metrics", {}).get("area_ge") is not None]
    with_um2 = synthesised and all(p["metrics"].get("area_um2") is not None for p in synthesised)
    names = {"area": "area_um2" if with_um2 else "area_ge",
             "dre_us": f"dre_us_{max(cache_tokens)}"}
    return {front: [names.get(metric, metric) for metric, _ in objectives]
            for front, objectives in FRONTS.items()}


def finish(document):
    """Mark the paper's configuration and the Pareto points of ``document`` (in place)."""
    paper = PRESETS[PAPER_PRESET].to_dict()
    metrics = objective_metrics(document["points"], document["grid"]["inputs"]["cache_tokens"])
    document["objectives"] = metrics
    document["pareto"] = {}
    ok = [p for p in document["points"] if p["status"] == "ok"]
    for front, objectives in FRONTS.items():
        named = [(metric, sense) for metric, (_, sense) in zip(metrics[front], objectives)]
        chosen = {ok[i]["index"] for i in pareto_front([p["metrics"] for p in ok], named)}
        document["pareto"][front] = sorted(chosen)
        for point in document["points"]:
            point.setdefault("pareto", {})[front] = point["index"] in chosen
    for point in document["points"]:
        point["paper"] = point.get("config") == paper
    return document


def write_json(document, path):
    """Write ``document`` to ``path`` through a temporary file (never half-written)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "w") as stream:
            json.dump(document, stream, indent=1, sort_keys=False)
            stream.write("\n")
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def write_markdown(document, path):
    """The points as a Markdown table (Pareto points starred), then the errors."""
    sizes = document["grid"]["inputs"]["cache_tokens"]
    params = list(document["grid"]["axes"])
    columns = (["area_ge", "area_um2", "critical_path_ns"]
               + [f"{kind}_{size}" for size in sizes for kind in ("dre_cycles", "dre_us",
                                                                    "frame_ms")]
               + ["recall", "output_error", "tokens_retrieved"])
    lines = [f"# Design-space exploration of {document['grid']['file']}", "",
             f"Base `{document['grid']['base']}`, {len(document['points'])} points, code "
             f"version `{document['code_version'][:12]}`; scheduler {document['scheduler']}.",
             "Runs: " + ", ".join(f"{run['points']} points on {run['workers']} worker(s) in "
                                  f"{run['seconds']:.1f} s" for run in document["runs"]) + ".",
             "`*` Pareto-optimal in area against DRE time per frame, `+` in recall against "
             "tokens retrieved, `P` the paper's configuration.", "",
             "| # | " + " | ".join(params + columns) + " | status |",
             "|" + " --- |" * (len(params) + len(columns) + 2)]
    for point in document["points"]:
        marks = ("*" if point["pareto"].get("area_time") else "") + \
                ("+" if point["pareto"].get("recall_tokens") else "") + \
                ("P" if point["paper"] else "")
        cells = [f"{point['index']}{marks}"] + [_cell(point["params"].get(p)) for p in params]
        cells += [_cell(point["metrics"].get(c)) for c in columns]
        cells.append(point["status"] + (" (cached)" if point.get("cached") else ""))
        lines.append("| " + " | ".join(cells) + " |")
    errors = [p for p in document["points"] if p["errors"]]
    if errors:
        lines += ["", "## Errors", ""]
        for point in errors:
            for step, message in point["errors"].items():
                lines.append(f"- point {point['index']} {point['params']}: {step}: {message}")
    Path(path).write_text("\n".join(lines) + "\n")
    return path


def plot_fronts(document, out_dir):
    """One PNG per front: every valid point, the front as a line, the paper's point marked."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    for front, (x_name, y_name) in document["objectives"].items():
        points = [p for p in document["points"] if p["status"] == "ok"]
        figure, axes = plt.subplots(figsize=(6, 4.2))
        xs = [p["metrics"][x_name] for p in points]
        ys = [p["metrics"][y_name] for p in points]
        axes.scatter(xs, ys, color="0.6", label="points")
        best = sorted((p for p in points if p["pareto"][front]),
                      key=lambda p: p["metrics"][x_name])
        axes.plot([p["metrics"][x_name] for p in best], [p["metrics"][y_name] for p in best],
                  "o-", color="tab:blue", label="Pareto front")
        for point in best:
            axes.annotate(str(point["index"]), (point["metrics"][x_name],
                                                point["metrics"][y_name]),
                          textcoords="offset points", xytext=(4, 4), fontsize=8)
        paper = [p for p in points if p["paper"]]
        axes.scatter([p["metrics"][x_name] for p in paper], [p["metrics"][y_name] for p in paper],
                     marker="*", s=220, color="tab:red", zorder=3,
                     label="paper's configuration" if paper else None)
        axes.set_xlabel(_LABELS.get(x_name, x_name.replace("dre_us_", "DRE time per frame "
                                                                       "(us) at ") + (
            " cached tokens" if x_name.startswith("dre_us_") else "")))
        axes.set_ylabel(_LABELS.get(y_name, y_name.replace("dre_us_", "DRE time per frame "
                                                                       "(us) at ") + (
            " cached tokens" if y_name.startswith("dre_us_") else "")))
        if not paper:
            axes.set_title("(the paper's configuration is not in this grid)", fontsize=9)
        axes.legend(fontsize=8)
        axes.grid(alpha=0.3)
        figure.tight_layout()
        path = Path(out_dir) / f"pareto_{front}.png"
        figure.savefig(path, dpi=120)
        plt.close(figure)
        written.append(path)
    return written
