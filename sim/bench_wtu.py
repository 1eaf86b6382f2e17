"""``make bench`` section of the WTU: cycles per row against a scan-and-sort, selection quality.

Figures (all from the bit-exact twin, :mod:`model.twins.wtu`, whose cycle counts the RTL equals):

* WTU cycles per row on the ``edge`` preset over rows of the streaming workload (``default``
  workload, several (layer, KV head) streams, scored by the ReSV float model), against the
  reference full scan-and-sort on the same lanes (:func:`model.twins.wtu.scan_sort_cycles`); both with
  and without the ``ceil(N / lanes)`` emission beats that every design needs to OR the rows.
* The same on synthetic full-memory rows (``max_clusters`` = 4096 clusters: logits drawn
  Gaussian with the workload's spread, quantized by :func:`model.reference.resv.quantize_scores`, counts
  resampled from the workload's), where the load no longer dominates the comparison.
* How often refinement was needed (rows with more than one pass), the clusters it walked (as a
  fraction of the row: the paper's "16% of a row is processed"), and per refinement depth the
  token ratio and attention-mass recall of the selection against exact WiCSum
  (:func:`model.reference.resv.wicsum_select`).
* One RTL run (cocotb + Icarus) of a workload problem on ``edge`` (its first
  :data:`QUICK_RTL_ROWS` rows in a quick run): simulation time per row, and whether its outputs
  equal the twin's.
"""

import json
import time
from pathlib import Path

import numpy as np

from model.config import PRESETS
from model.reference.resv import quantize_scores, wicsum_select
from model.stimulus.traces import wtu_trace
from model.twins.wtu import scan_sort_cycles, wtu_problem

__all__ = ["run"]

#: Goal of the issue: WTU cycles per row at most this fraction of the scan-and-sort's.
GOAL_RATIO = 0.25
#: Query rows of the RTL run in a quick run (a smoke run; a full run simulates the whole problem).
QUICK_RTL_ROWS = 8


def _workload_problems(config, quick):
    streams = [(0, 0), (3, 5)] if quick else [(layer, head) for layer in range(4)
                                               for head in (0, 5)]
    return [wtu_trace(config, seed=0, layer=layer, kv_head=head, workload="default")
            for layer, head in streams]


def _synthetic_problems(config, workload, quick, seed=0):
    """Full-memory rows: Gaussian logits with the workload's spread, counts resampled."""
    rng = np.random.default_rng(seed)
    counts_pool = np.concatenate([problem["counts"] for problem in workload])
    head_dim = 128
    problems = []
    for _ in range(1 if quick else 3):
        clusters = config.max_clusters
        logits = rng.normal(0.0, 2.0 * np.sqrt(head_dim), size=(16, clusters))
        problems.append({"scores": quantize_scores(logits, config.score_bits, head_dim),
                         "counts": rng.choice(counts_pool, size=clusters)})
    return problems


def _figures(config, problems):
    """Per-row cycles, refinement and quality of ``problems`` for ``config``."""
    lanes = config.wtu_lanes
    rows = {"wtu": [], "sort": [], "emit": [], "refined": [], "walked": [], "tokens": [],
            "exact_tokens": [], "recall": [], "clusters": []}
    for problem in problems:
        scores, counts = problem["scores"], problem["counts"]
        clusters = scores.shape[1]
        result = wtu_problem(config, scores, counts)
        exact = wicsum_select(scores, counts, config)
        mass = scores.astype(np.float64) * counts.astype(np.float64)
        total_tokens = float(counts.sum())
        for row in range(len(scores)):
            selected, reference = result["row_selected"][row], exact[row]
            rows["wtu"].append(int(result["cycles"][row]))
            rows["sort"].append(scan_sort_cycles(clusters, int(reference.sum()), lanes))
            rows["emit"].append(int(result["emit_cycles"][row]))
            rows["refined"].append(int(result["passes"][row]) > 1)
            rows["walked"].append(int(result["touched"][row]) / clusters)
            rows["tokens"].append(float(counts[selected].sum()) / total_tokens)
            rows["exact_tokens"].append(float(counts[reference].sum()) / total_tokens)
            exact_mass = float(mass[row][reference].sum())
            rows["recall"].append(float(mass[row][selected & reference].sum()) / exact_mass
                                  if exact_mass else 1.0)
            rows["clusters"].append(clusters)
    wtu, sort, emit = (np.array(rows[key], dtype=np.float64) for key in ("wtu", "sort", "emit"))
    return {
        "rows": len(wtu),
        "clusters_mean": float(np.mean(rows["clusters"])),
        "wtu_cycles_per_row": float(wtu.mean()),
        "scan_sort_cycles_per_row": float(sort.mean()),
        "ratio": float(wtu.sum() / sort.sum()),
        "ratio_with_emission": float((wtu + emit).sum() / (sort + emit).sum()),
        "refined_rows": float(np.mean(rows["refined"])),
        "walked_fraction": float(np.mean(rows["walked"])),
        "token_ratio": float(np.mean(rows["tokens"])),
        "exact_token_ratio": float(np.mean(rows["exact_tokens"])),
        "mass_recall": float(np.mean(rows["recall"])),
    }


def _first_rows(problem, rows):
    """``problem`` with its first ``rows`` query rows only (all of them when ``rows`` is None);
    the rows of a problem are independent, its aggregate is over the rows kept."""
    return {**problem, "scores": problem["scores"][:rows]}


def _rtl_run(config, problem, out_dir):
    from sim.run import run_rtl

    workdir = Path(out_dir) / "wtu_rtl"
    start = time.perf_counter()
    result = run_rtl("wtu", config, dict(problem), workdir)
    seconds = time.perf_counter() - start
    # The cocotb test's own wall time: simulation only, without conversion and compilation.
    simulation = float(result["sim_seconds"])
    twin = wtu_problem(config, problem["scores"], problem["counts"])
    agrees = all(np.array_equal(result[key], twin[key]) for key in twin)
    rows = len(problem["scores"])
    return {"rows": rows, "clusters": int(problem["scores"].shape[1]), "seconds": seconds,
            "simulation_seconds": simulation, "simulation_seconds_per_row": simulation / rows,
            "equal_to_twin": bool(agrees)}


def _print_table(figures):
    header = (f"{'WTU (edge)':42s} {'rows':>5s} {'N':>6s} {'WTU cyc':>8s} {'sort cyc':>9s} "
              f"{'ratio':>6s} {'+emit':>6s} {'refined':>8s} {'walked':>7s} {'tokens':>7s} "
              f"{'exact':>7s} {'recall':>7s}")
    print(header)
    print("-" * len(header))
    for name, row in figures.items():
        print(f"{name:42s} {row['rows']:5d} {row['clusters_mean']:6.0f} "
              f"{row['wtu_cycles_per_row']:8.1f} {row['scan_sort_cycles_per_row']:9.1f} "
              f"{row['ratio']:6.3f} {row['ratio_with_emission']:6.3f} "
              f"{row['refined_rows']:8.1%} {row['walked_fraction']:7.1%} "
              f"{row['token_ratio']:7.1%} {row['exact_token_ratio']:7.1%} "
              f"{row['mass_recall']:7.3f}")


def run(out_dir, quick=False):
    """Measure the WTU figures, print a table, write ``OUT/wtu.json`` and return the figures.

    Parameters
    ----------
    out_dir : pathlib.Path or str
        Output folder (the RTL run builds under it).
    quick : bool
        Fewer workload streams and synthetic rows (smoke run).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    config = PRESETS["edge"]
    workload = _workload_problems(config, quick)
    synthetic = _synthetic_problems(config, workload, quick)
    figures = {}
    for depth in range(config.full_refine_depth + 1):
        variant = config.replace(wtu_refine_depth=depth)
        label = "exact" if depth == config.full_refine_depth else "coarse"
        figures[f"workload rows, refine depth {depth} ({label})"] = _figures(variant, workload)
    figures["synthetic 4096-cluster rows (edge)"] = _figures(config, synthetic)
    _print_table(figures)
    edge = figures[f"workload rows, refine depth {config.full_refine_depth} (exact)"]
    rtl = _rtl_run(config, _first_rows(workload[0], QUICK_RTL_ROWS if quick else None), out_dir)
    print(f"RTL (Icarus) on edge: {rtl['rows']} rows of {rtl['clusters']} clusters in "
          f"{rtl['seconds']:.1f} s with conversion and compilation, "
          f"{rtl['simulation_seconds_per_row'] * 1e3:.1f} ms per row of simulation; "
          f"equal to the twin: {rtl['equal_to_twin']}")
    print(f"goal: WTU <= {GOAL_RATIO}x scan-and-sort cycles on edge workload rows: "
          f"{edge['ratio']:.3f}x ({'met' if edge['ratio'] <= GOAL_RATIO else 'NOT met'})")
    result = {"config": "edge", "goal_ratio": GOAL_RATIO, "figures": figures, "rtl": rtl,
              "goal_met": edge["ratio"] <= GOAL_RATIO}
    (out_dir / "wtu.json").write_text(json.dumps(result, indent=2))
    return result
