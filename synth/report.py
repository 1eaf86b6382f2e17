"""Reports of a synthesis run: JSON (one schema), Markdown tables, PNG plots, one-screen summary.

``python -m synth.report --out build/reports`` prints the summary of the last run again and
redraws the plots from ``report.json``.

JSON schema ``vrex-dre-synth-report/1`` (``build/reports/report.json``)
----------------------------------------------------------------------
Top level:

``schema``, ``created`` (UTC ISO time), ``command``, ``seconds`` (wall time of the run)
``config_name``, ``config`` (every :class:`DREConfig` parameter), ``derived`` (derived widths)
``liberty``: ``null``, or ``{path, nand2_cell, nand2_um2, memory_um2_per_bit}``
``area_model``: ``gates`` (Yosys cell type -> GE), ``gates_source``, ``memory`` (bit-cell area,
    array efficiency, ``ge_per_bit``, sources), ``node_14nm`` (NAND2 area, paper figures)
``fpga_flow``: ``families`` (family -> Yosys command), ``pnr_family``, ``pnr_target_mhz`` (the
    place and route's clock constraint), ``pnr_router`` (nextpnr's router), ``pnr_timing_ripup``
    (the router's timing-driven rip-up; absent in reports written before it)
``blocks``: list, one per registered block or baseline, in registry order (each step result,
``asic``, ``fpga[family]`` and ``fmax``, carries ``cached: true`` when it was reused from the
last run because its inputs were unchanged):

    ``name``, ``kind`` (``block`` | ``top`` | ``baseline``; ``top``: the DRE top, which holds
    the blocks and is not added to their total), ``class`` (``module:Class``),
    ``status`` (``ok`` | ``error``), ``errors`` (list of ``{step, message}``; steps
    ``elaborate``, ``asic``, ``ecp5``, ``ice40``, ``fmax``), ``port_bits``,
    ``asic``: ``null`` or ``{generic: {cells, cells_by_type, flip_flops}, memories: [{name,
    width, depth, read_ports, write_ports, sync_read, bits}], memory_bits, ge_logic, ge_memory, ge
    (= ge_logic + ge_memory), liberty: null or {cells, logic_um2, sequential_um2, memory_um2,
    total_um2 (= logic + memory)}, seconds}``,
    ``fpga``: ``{family: {resources: {luts, ffs, carry, dsp, bram, lutram, widemux, other},
    cells_by_type, lut_mapper, seconds}}`` for the families that ran,
    ``fmax``: ``null`` or ``{platform, device, fmax_mhz, clock, target_mhz, router,
    lut_mapper, utilisation, seconds, routed, timing_ripup, placer_weight}``
    (``placer_weight``: the placer's timing weight, :data:`synth.fpga.PLACER_TIMING_WEIGHTS`;
    ``timing_ripup``: the router ran with nextpnr's timing-driven rip-up,
    ``--pnr-timing-ripup``, :data:`synth.fpga.TIMING_RIPUP`; both absent in reports written
    before them; ``routed`` false, router ``none``: placed only,
    ``fmax_mhz`` the placer's estimate, and ``placed_path: {ns, start, end, logic_levels}``
    the path that bounds it, :func:`synth.fpga.placed_path`; absent in reports written before
    them); with ``--pnr-seeds`` also ``seeds`` (``[{seed, fmax_mhz, seconds, log}]``, one
    per seed in the order given, ``error`` added and ``fmax_mhz`` ``null`` for a run that
    failed), ``seeds_routed``, ``fmax_median_mhz`` and ``fmax_min_mhz`` (over the routed
    seeds); ``fmax_mhz`` is then the median and ``seconds`` the sum of the runs,
    ``estimate_14nm``: ``null`` or ``{mm2, logic_mm2, memory_mm2, core_percent, paper_percent,
    paper_counterpart, paper_mm2}``; a ``top`` adds ``memory_by_unit: [{unit, bits, mm2,
    paper_bits, paper_mm2}]`` (its memories grouped by their name's first part beside the
    paper's on-chip memory of that unit, ``null`` where the paper lists none)

``totals`` (the DRE: ``kind == "block"`` entries with an ASIC result; the top and the baselines
excluded):
    ``blocks``, ``missing``, ``ge``, ``ge_logic``, ``ge_memory``, ``memory_bits``, ``cells``,
    ``flip_flops``, ``liberty`` (``{logic_um2, memory_um2, total_um2}`` or ``null``), ``fpga``
    (family -> summed resources), ``estimate_14nm``; every sum equals the sum of the blocks'.
``baseline``: ``null`` or ``{sorter, compared, sorter_design, area_ratio: {ge, ge_logic, um2,
    luts_ecp5, luts_ice40, fmax} (compared / sorter), cycles: null or [{workload, description,
    clusters, rows,
    wtu_decide_cycles, wtu_cycles, sorter_cycles, scan_sort_cycles, ratio_wtu_to_sorter}],
    note}``
``sweep``: ``null`` or a list of ``{parameter, value, block, ge, ge_logic, ge_memory}``.

Silicon (``make synth PDK_ROOT=DIR``, :mod:`synth.silicon`):

``pdk``: ``{used: false, clock_ns, note}`` (what a run without a PDK cannot report), or
    ``{used: true, clock_ns, clock_note, root, corner, stdcell, macros: [{name, words, bits,
    ports, area_um2, file}]}``.
each block's ``timing``: ``{source ("OpenSTA" | "generic gate levels" | null),
    critical_path_ns, fmax_mhz, startpoint, endpoint, logic_levels}``; with a PDK also
    ``path_class``, ``period_ns``, ``meets_period``, ``slack_ns``... of the worst class,
    ``stages`` (``[{pin, cell, incr_ns, time_ns}]`` of the critical path) and ``classes``
    (``reg_to_reg``, ``in_to_reg``, ``reg_to_out``, ``in_to_out``: each ``null`` or
    ``{critical_path_ns, slack_ns, arrival_ns, startpoint, endpoint, logic_levels}``); without
    a PDK ``critical_path_ns`` and ``fmax_mhz`` are ``null``, ``logic_levels`` the generic gate
    levels (``asic.generic.logic_levels``) and ``note`` says why.
each block's ``area``: ``{logic_um2 (standard cells + register files), macro_um2, total_um2
    (= logic + macro), macros: [{memory, macro, count, area_um2}]}``; with a PDK also
    ``stdcell_um2``, ``register_file_um2``, ``mapped_um2`` (Yosys's total, = total_um2),
    ``sequential_um2`` and ``memories`` (``[{name, width, depth, read_ports, write_ports,
    sync_read, bits, kind ("macro" | "register_file" | "logic"), macro, macro_count, tiling,
    register_file, area_um2, reason, alternatives ({macro_um2} or {register_file_um2_at_least},
    the option not taken)}]``); without one the figures are ``null`` and ``note``
    says why.
each block's ``pdk``: ``null`` or ``{register_files: [{name, depth, width, read_ports,
    write_ports, area_um2, cells, read_ns, clock_to_out_ns, setup_ns, seconds}], cells,
    cells_by_type, seconds}``.
``totals.silicon``: ``null`` or ``{logic_um2, macro_um2, total_um2}`` summed over the blocks.
"""

import argparse
import json
import sys
from pathlib import Path

from synth import silicon_report
from synth.fpga import PLACEMENT_ONLY

__all__ = ["SCHEMA", "write_reports", "markdown", "summary_lines", "print_summary", "plot",
           "load_report", "main"]

SCHEMA = "vrex-dre-synth-report/1"


def load_report(out):
    """The report dict of ``OUT/report.json``.

    Raises
    ------
    ValueError
        If there is no report or its schema is not :data:`SCHEMA`.
    """
    path = Path(out) / "report.json"
    if not path.is_file():
        raise ValueError(f"no report at {path}: run `make synth` first")
    report = json.loads(path.read_text())
    if report.get("schema") != SCHEMA:
        raise ValueError(f"{path}: schema must be {SCHEMA!r}, not {report.get('schema')!r}")
    return report


def _number(value, digits=0):
    if value is None:
        return "-"
    if isinstance(value, float) and digits:
        return f"{value:,.{digits}f}"
    return f"{value:,.0f}"


def _fpga_cell(entry, family, key):
    found = entry["fpga"].get(family)
    return _number(found["resources"][key]) if found else "-"


def _table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return lines


def _area_rows(report):
    rows = []
    for entry in report["blocks"] + [{"name": "**DRE total**", "total": True}]:
        if entry.get("total"):
            totals = report["totals"]
            liberty = totals["liberty"]
            rows.append(["**DRE total**", "", _number(totals["cells"]), _number(totals["flip_flops"]),
                         _number(totals["memory_bits"]), _number(totals["ge_logic"]),
                         _number(totals["ge_memory"]), _number(totals["ge"]),
                         _number(liberty["total_um2"]) if liberty else "-"])
            continue
        asic = entry["asic"]
        if asic is None:
            rows.append([entry["name"], entry["kind"], "error", "", "", "", "", "", ""])
            continue
        liberty = asic["liberty"]
        rows.append([entry["name"], entry["kind"], _number(asic["generic"]["cells"]),
                     _number(asic["generic"]["flip_flops"]), _number(asic["memory_bits"]),
                     _number(asic["ge_logic"]), _number(asic["ge_memory"]), _number(asic["ge"]),
                     _number(liberty["total_um2"]) if liberty else "-"])
    return rows


def _budget_lines(entry, paper):
    """Where a top's 14 nm estimate exceeds the paper's: memory per unit, then logic."""
    estimate = entry["estimate_14nm"]
    units = estimate["memory_by_unit"]
    core = paper["core_mm2"]
    rows = [[unit["unit"], _number(unit["bits"]),
             "-" if unit["paper_bits"] is None else _number(unit["paper_bits"]),
             f"{unit['mm2']:.5f}", "-" if unit["paper_mm2"] is None else f"{unit['paper_mm2']:.5f}",
             f"{100 * unit['mm2'] / core:.2f}%"] for unit in units]
    paper_memory = sum(unit["paper_mm2"] or 0.0 for unit in units)
    paper_total = estimate.get("paper_mm2")
    paper_logic = None if paper_total is None else paper_total - paper_memory
    rows.append(["logic (every unit)", "-", "-", f"{estimate['logic_mm2']:.5f}",
                 "-" if paper_logic is None else f"{paper_logic:.5f} (by difference)",
                 f"{100 * estimate['logic_mm2'] / core:.2f}%"])
    rows.append(["total", _number(sum(unit["bits"] for unit in units)),
                 _number(sum(unit["paper_bits"] or 0 for unit in units)), f"{estimate['mm2']:.5f}",
                 "-" if paper_total is None else f"{paper_total:.5f}",
                 f"{estimate['core_percent']:.2f}%"])
    return [f"### `{entry['name']}` against the paper's budget", "",
            f"Memory per unit (the memory name's first part) at the same bit-cell model; the "
            f"paper's on-chip memory: {paper['onchip_memory_source']}. The paper's logic is its "
            f"area minus that memory.", ""] + _table(
        ["unit", "memory bits", "paper bits", "mm^2 (14 nm estimate)", "paper mm^2",
         "of the core"], rows) + [""]


def markdown(report):
    """The Markdown report (tables of area, FPGA, 14 nm estimate, baseline, sweep, errors)."""
    config = report["config_name"]
    lines = [f"# Synthesis report: configuration `{config}`", "",
             f"Created {report['created']} by `{report['command']}` in {report['seconds']} s.", ""]
    liberty = report["liberty"]
    lines += ["## Area per block", ""]
    lines += _table(["block", "kind", "generic cells", "FFs", "memory bits", "GE logic",
                     "GE memory", "GE total", "um^2 (liberty)"], _area_rows(report))
    model = report["area_model"]
    lines += ["", f"GE: NAND2 = 1; gate weights from {model['gates_source']}",
              "", f"Memories: {model['memory']['description']} "
              f"{model['memory']['ge_per_bit']} GE per bit = {model['memory']['bitcell_um2_14nm']} "
              f"um^2 ({model['memory']['bitcell_source']}) / {model['memory']['array_efficiency']} "
              f"({model['memory']['array_efficiency_source']}) / "
              f"{model['node_14nm']['nand2_um2']} um^2 (NAND2 at 14 nm).", ""]
    if liberty:
        lines += [f"Liberty: `{liberty['path']}`; NAND2 = `{liberty['nand2_cell']}` "
                  f"({liberty['nand2_um2']} um^2); memories at {liberty['memory_um2_per_bit']} "
                  f"um^2 per bit (GE per bit x this NAND2).", ""]
        lines += _table(["block", "cells", "logic um^2", "of which sequential", "memory um^2",
                         "total um^2"],
                        [[entry["name"], _number(entry["asic"]["liberty"]["cells"]),
                          _number(entry["asic"]["liberty"]["logic_um2"]),
                          _number(entry["asic"]["liberty"]["sequential_um2"]),
                          _number(entry["asic"]["liberty"]["memory_um2"]),
                          _number(entry["asic"]["liberty"]["total_um2"])]
                         for entry in report["blocks"]
                         if entry["asic"] and entry["asic"]["liberty"]])
        lines.append("")
    memories = [(entry["name"], memory) for entry in report["blocks"] if entry["asic"]
                for memory in entry["asic"]["memories"]]
    if memories:
        lines += ["### Memories", ""]
        lines += _table(["block", "memory", "width", "depth", "read ports", "write ports",
                         "read", "bits"],
                        [[name, memory["name"], memory["width"], memory["depth"],
                          memory["read_ports"], memory["write_ports"],
                          "clocked" if memory.get("sync_read") else "asynchronous",
                          _number(memory["bits"])]
                         for name, memory in memories])
        lines += ["", "Memories with asynchronous reads map to LUT RAM on FPGAs and to register "
                  "files or latch arrays on a chip: for them the SRAM-bit model is optimistic.", ""]
        lines.append("")
    lines += ["## FPGA resources", ""]
    families = list(report["fpga_flow"]["families"])
    header = ["block"]
    for family in families:
        header += [f"{family} {key}" for key in ("LUT", "FF", "carry", "DSP", "BRAM")]
    rows = []
    for entry in report["blocks"]:
        row = [entry["name"]]
        for family in families:
            row += [_fpga_cell(entry, family, key) for key in ("luts", "ffs", "carry", "dsp", "bram")]
        rows.append(row)
    lines += _table(header, rows)
    lines += ["", "Yosys commands: " + ", ".join(f"{family}: `{command}`" for family, command
                                                 in report["fpga_flow"]["families"].items()), ""]
    seeded = any(entry["fmax"] and entry["fmax"].get("seeds")
                 for entry in report["blocks"])
    fmax_rows = [[entry["name"], entry["fmax"]["platform"], entry["fmax"]["device"],
                  _number(entry["fmax"]["fmax_mhz"], 1), entry["fmax"]["target_mhz"],
                  _router_cell(entry["fmax"]),
                  # ... and abc9 as their LUT mapper (the fallback was added later).
                  entry["fmax"].get("lut_mapper", "abc9"),
                  ", ".join(entry["fmax"]["utilisation"])]
                 + ([_seed_cell(entry["fmax"])] if seeded else [])
                 for entry in report["blocks"] if entry["fmax"]]
    if fmax_rows:
        lines += ["### fmax (nextpnr, registered I/O harness)", ""]
        lines += _table(["block", "platform", "device", "fmax MHz", "target MHz", "router",
                         "LUT mapper", "utilisation"] + (["seeds: MHz (median, minimum)"] if seeded else []),
                        fmax_rows)
        lines.append("")
        placed = [(entry["name"], entry["fmax"]["placed_path"]) for entry in report["blocks"]
                  if entry["fmax"] and entry["fmax"].get("placed_path")]
        for name, path in placed:
            lines.append(f"- {name}, placed critical path (estimated from the cells' tiles, "
                         f"`python -m synth.netlist_paths --placement`): {path['ns']:.2f} ns, "
                         f"{path['logic_levels']} levels, `{path['start']}` -> `{path['end']}`")
        if placed:
            lines.append("")
    lines += ["## First-order 14 nm estimate (beside the paper's Table III)", "",
              f"**Estimate**, not a layout: GE x {model['node_14nm']['nand2_um2']} um^2 "
              f"({model['node_14nm']['nand2_source']}). Paper: {model['node_14nm']['paper']['source']}.",
              ""]
    estimate_rows = []
    for entry in report["blocks"] + [{"name": "DRE total",
                                      "estimate_14nm": report["totals"]["estimate_14nm"]}]:
        estimate = entry.get("estimate_14nm")
        if not estimate:
            continue
        paper = estimate.get("paper_percent")
        if entry["name"] == "DRE total":
            paper = model["node_14nm"]["paper"]["share_percent"]["total"]
        estimate_rows.append([entry["name"], f"{estimate['logic_mm2']:.5f}",
                              f"{estimate['memory_mm2']:.5f}", f"{estimate['mm2']:.5f}",
                              f"{estimate['core_percent']:.2f}%",
                              f"{paper:.2f}% ({estimate.get('paper_counterpart') or 'DRE'})"
                              if paper is not None else "-"])
    lines += _table(["block", "logic mm^2", "memory mm^2", "total mm^2", "of a 1.89 mm^2 core",
                     "paper"], estimate_rows)
    lines.append("")
    for entry in report["blocks"]:
        if (entry.get("estimate_14nm") or {}).get("memory_by_unit"):
            lines += _budget_lines(entry, model["node_14nm"]["paper"])
    baseline = report["baseline"]
    if baseline:
        lines += ["## Against the sorter baseline", "", f"Baseline `{baseline['sorter']}`: "
                  f"{baseline['sorter_design']}.", ""]
        if baseline["area_ratio"]:
            lines += _table(["ratio (WTU / sorter)", "value"],
                            [[key, f"{value:.3f}"] for key, value in baseline["area_ratio"].items()])
            lines.append("")
        if baseline["cycles"]:
            lines += _table(["workload", "clusters", "rows", "WTU decide cycles",
                             "WTU cycles (with row emission)", "sorter cycles",
                             "scan-and-sort model", "WTU / sorter"],
                            [[f"{case['workload']}: {case['description']}", case["clusters"], case["rows"],
                              case["wtu_decide_cycles"], case["wtu_cycles"], case["sorter_cycles"],
                              case["scan_sort_cycles"], case["ratio_wtu_to_sorter"]]
                             for case in baseline["cycles"]])
            lines += ["", "Cycles per row from the twins (`model.twins.wtu.wtu_problem`, "
                      "`model.twins.topk_sorter.cycles_per_row`), no stalls.", ""]
        if baseline["note"]:
            lines += [baseline["note"], ""]
    if report["sweep"]:
        lines += ["## Sweep (generic GE)", ""]
        lines += _table(["parameter", "value", "block", "GE logic", "GE memory", "GE"],
                        [[item["parameter"], item["value"], item["block"],
                          _number(item["ge_logic"]), _number(item["ge_memory"]), _number(item["ge"])]
                         for item in report["sweep"]])
        lines.append("")
    lines += silicon_report.markdown_lines(report)
    errors = [(entry["name"], error) for entry in report["blocks"] for error in entry["errors"]]
    if errors:
        lines += ["## Errors", ""]
        lines += [f"- `{name}` ({error['step']}): {error['message']}" for name, error in errors]
        lines.append("")
    return "\n".join(lines)


def _placement_estimate(fmax):
    """Whether ``fmax`` is the placer's estimate (router ``none``: placed, not routed)."""
    return fmax.get("router") == PLACEMENT_ONLY


def _router_cell(fmax):
    """The router column: a placement-only run's fmax is the placer's estimate; reports
    written before the router option was added used router1; a router that ran with the
    timing-driven rip-up says so."""
    if _placement_estimate(fmax):
        return f"{PLACEMENT_ONLY} (estimated after placement)"
    return fmax.get("router", "router1") + (", timing rip-up" if fmax.get("timing_ripup") else "")


def _seed_cell(fmax):
    """A seed sweep in one cell: ``seed: MHz`` per run, then the median and the minimum."""
    if not fmax.get("seeds"):
        return "-"
    runs = ", ".join(f"{run['seed']}: {_number(run['fmax_mhz'], 1)}" for run in fmax["seeds"])
    return (f"{runs} (median {_number(fmax['fmax_median_mhz'], 1)}, "
            f"minimum {_number(fmax['fmax_min_mhz'], 1)})")


def summary_lines(report):
    """The one-screen summary (about 25 lines)."""
    lines = [f"== synth: config {report['config_name']}, {report['seconds']} s "
             f"(reports in report.json / report.md / *.png) =="]
    liberty = report["liberty"]
    families = list(report["fpga_flow"]["families"])
    header = f"{'block':<12}{'GE logic':>10}{'GE mem':>10}{'GE':>10}{'um^2':>12}"
    header += "".join(f"{family + ' LUT':>11}" for family in families) + f"{'fmax':>7}"
    lines.append(header)

    def row(name, ge_logic, ge_memory, ge, um2, luts, fmax):
        text = f"{name:<12}{_number(ge_logic):>10}{_number(ge_memory):>10}{_number(ge):>10}"
        text += f"{_number(um2):>12}" + "".join(f"{luts.get(family, '-'):>11}" for family in families)
        return text + f"{fmax:>7}"

    for entry in report["blocks"]:
        asic = entry["asic"]
        if asic is None:
            message = entry["errors"][0]["message"] if entry["errors"] else "not measured"
            lines.append(f"{entry['name']:<12}ERROR {message[:100]}")
            continue
        luts = {family: _fpga_cell(entry, family, "luts") for family in families}
        fmax = "-"
        if entry["fmax"]:
            fmax = _number(entry["fmax"]["fmax_mhz"], 1)
            fmax = f"~{fmax}" if _placement_estimate(entry["fmax"]) else fmax
        lines.append(row(entry["name"] + ("*" if entry["kind"] == "baseline" else ""),
                         asic["ge_logic"], asic["ge_memory"], asic["ge"],
                         asic["liberty"]["total_um2"] if asic["liberty"] else None, luts, fmax))
        for error in entry["errors"]:
            lines.append(f"{'':<12}error in {error['step']}: {error['message'][:90]}")
    totals = report["totals"]
    luts = {family: _number(totals["fpga"][family]["luts"]) for family in totals["fpga"]}
    lines.append(row("DRE total", totals["ge_logic"], totals["ge_memory"], totals["ge"],
                     totals["liberty"]["total_um2"] if totals["liberty"] else None, luts, ""))
    lines.append("(* baseline, not in the total; GE: NAND2 = 1, memories as SRAM bits "
                 f"at {report['area_model']['memory']['ge_per_bit']} GE/bit)")
    if any(entry["fmax"] and _placement_estimate(entry["fmax"]) for entry in report["blocks"]):
        lines.append("(~ fmax estimated after placement, not routed: --pnr-router none)")
    if liberty:
        lines.append(f"um^2 with {Path(liberty['path']).name} (NAND2 {liberty['nand2_cell']} = "
                     f"{liberty['nand2_um2']} um^2)")
    estimate = totals["estimate_14nm"]
    if estimate:
        paper = report["area_model"]["node_14nm"]["paper"]
        parts = [f"{entry['name']} {entry['estimate_14nm']['core_percent']:.2f}%"
                 f" (paper {entry['estimate_14nm']['paper_percent']}%)"
                 for entry in report["blocks"] if entry["kind"] == "block" and entry["estimate_14nm"]]
        lines.append(f"14 nm ESTIMATE: DRE {estimate['mm2']:.4f} mm^2 = {estimate['core_percent']:.2f}% "
                     f"of the {paper['core_mm2']} mm^2 core (paper {paper['share_percent']['total']}%)")
        lines.append("  " + ", ".join(parts))
    baseline = report["baseline"]
    if baseline:
        ratio = baseline["area_ratio"] or {}
        text = ", ".join(f"{key} {value:.2f}" for key, value in ratio.items())
        lines.append(f"WTU / sorter baseline area: {text or 'n/a'}")
        for case in baseline["cycles"] or []:
            lines.append(f"  cycles per row, {case['workload']} ({case['clusters']} clusters): WTU {case['wtu_cycles']} vs "
                         f"sorter {case['sorter_cycles']} (x{case['ratio_wtu_to_sorter']})")
        if baseline["note"]:
            lines.append("  " + baseline["note"])
    lines += silicon_report.summary_lines(report)
    if report["sweep"] is None:
        lines.append(f"(lanes / bits-per-cycle sweep and its plot: python -m synth.flow --config "
                     f"{report['config_name']} --sweep --no-fpga)")
    return lines


def print_summary(report):
    """Print :func:`summary_lines`."""
    print("\n".join(summary_lines(report)), flush=True)


def plot(report, out):
    """Draw ``area_per_block.png`` and, with a sweep, ``area_sweep.png`` into ``out``."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    paths = []
    measured = [entry for entry in report["blocks"] if entry["asic"]]
    if measured:
        figure, axis = plt.subplots(figsize=(7, 4))
        names = [entry["name"] for entry in measured]
        logic = [entry["asic"]["ge_logic"] / 1e3 for entry in measured]
        memory = [entry["asic"]["ge_memory"] / 1e3 for entry in measured]
        axis.bar(names, logic, label="logic")
        axis.bar(names, memory, bottom=logic, label="memory (SRAM bits model)")
        axis.set_ylabel("kGE (NAND2 equivalents)")
        axis.set_title(f"Area per block, config {report['config_name']}")
        axis.legend()
        figure.tight_layout()
        path = out / "area_per_block.png"
        figure.savefig(path, dpi=120)
        plt.close(figure)
        paths.append(path)
    if report["sweep"]:
        parameters = sorted({item["parameter"] for item in report["sweep"]})
        figure, axes = plt.subplots(1, len(parameters), figsize=(6 * len(parameters), 4),
                                    squeeze=False)
        for axis, parameter in zip(axes[0], parameters):
            items = [item for item in report["sweep"] if item["parameter"] == parameter]
            for block in sorted({item["block"] for item in items}):
                points = sorted((item["value"], item["ge"] / 1e3) for item in items
                                if item["block"] == block)
                axis.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=block)
            axis.set_xscale("log", base=2)
            axis.set_ylim(bottom=0)
            axis.set_xlabel(parameter)
            axis.set_ylabel("kGE")
            axis.legend()
        figure.suptitle(f"Area against lanes / bits per cycle, around {report['config_name']}")
        figure.tight_layout()
        path = out / "area_sweep.png"
        figure.savefig(path, dpi=120)
        plt.close(figure)
        paths.append(path)
    silicon_plot = silicon_report.plot(report, out)
    if silicon_plot is not None:
        paths.append(silicon_plot)
    return paths


def write_reports(report, out):
    """Write ``report.json``, ``report.md`` and the plots into ``out``; returns their paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / "report.json"
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    markdown_path = out / "report.md"
    markdown_path.write_text(markdown(report) + "\n")
    return [json_path, markdown_path, *plot(report, out)]


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m synth.report",
                                     description="print the last synthesis summary, redraw plots")
    parser.add_argument("--out", type=Path, default=Path("build/reports"), help="report folder")
    args = parser.parse_args(argv)
    try:
        report = load_report(args.out)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    plot(report, args.out)
    (Path(args.out) / "report.md").write_text(markdown(report) + "\n")
    print_summary(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
