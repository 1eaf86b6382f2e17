"""The silicon part of the synthesis reports: timing and area per block, memories, plot.

Called by :mod:`synth.report` for ``report.md``, the printed summary and the plots; reads only
the report dict (the ``pdk`` section and each block's ``timing``, ``area`` and ``pdk``).
"""

from pathlib import Path

__all__ = ["markdown_lines", "summary_lines", "plot"]


def _cell(value, digits=2):
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(_cell(cell) for cell in row) + " |" for row in rows]


def markdown_lines(report):
    """The ``## Silicon`` section of ``report.md``."""
    section = report.get("pdk")
    if section is None:
        return []
    lines = ["## Silicon: static timing and area in the PDK", ""]
    if not section["used"]:
        rows = [[entry["name"], entry["timing"]["logic_levels"]] for entry in report["blocks"]
                if entry.get("timing")]
        lines += [f"**{section['note']}.**", ""]
        lines += _table(["block", "gate levels (generic, ltp -noff)"], rows) + [""]
        return lines
    lines += [f"PDK `{section['root']}`, corner `{section['corner']}`; clock {section['clock_ns']} "
              f"ns ({section['clock_note']}). Timing by OpenSTA with ideal clocks; ports as if "
              "registered outside the block (input and output delay 0). Critical path = period "
              "- slack of the worst path (clock-to-output or macro access, logic, setup).", ""]
    rows = []
    for entry in report["blocks"]:
        timing, area = entry.get("timing"), entry.get("area")
        if not timing or timing.get("source") != "OpenSTA":
            rows.append([entry["name"], "error", "", "", "", "", "", "", "", ""])
            continue
        rows.append([entry["name"], timing["critical_path_ns"], timing["fmax_mhz"],
                     "yes" if timing["meets_period"] else "no", timing["path_class"],
                     f"`{timing['startpoint']}`", f"`{timing['endpoint']}`",
                     timing["logic_levels"], area["logic_um2"], area["macro_um2"]])
    lines += _table(["block", "critical path ns", "fmax MHz", f"meets {section['clock_ns']} ns",
                     "class", "startpoint", "endpoint", "logic levels", "logic um^2",
                     "macro um^2"], rows) + [""]
    totals = report["totals"].get("silicon")
    if totals:
        lines += [f"DRE total (blocks, baselines excluded): {totals['logic_um2']:,.0f} um^2 logic"
                  f" + {totals['macro_um2']:,.0f} um^2 macros = {totals['total_um2']:,.0f} um^2.",
                  ""]
    class_rows = [[entry["name"], name, path["critical_path_ns"], path["logic_levels"],
                   f"`{path['startpoint']}`", f"`{path['endpoint']}`"]
                  for entry in report["blocks"] if entry.get("timing", {}).get("classes")
                  for name, path in entry["timing"]["classes"].items() if path]
    lines += ["### Path classes", ""]
    lines += _table(["block", "class", "ns", "levels", "startpoint", "endpoint"], class_rows)
    lines += [""]
    memory_rows = [[entry["name"], memory["name"], f"{memory['depth']}x{memory['width']}",
                    f"{memory['read_ports']}R{memory['write_ports']}W",
                    "clocked" if memory["sync_read"] else "asynchronous", memory["kind"],
                    memory["macro"] or memory["register_file"], memory["macro_count"],
                    memory["area_um2"], memory["reason"]]
                   for entry in report["blocks"] if (entry.get("area") or {}).get("memories")
                   for memory in entry["area"]["memories"]]
    if memory_rows:
        lines += ["### Memories", ""]
        lines += _table(["block", "memory", "depth x width", "ports", "read", "built as",
                         "cell", "macros", "um^2", "why"], memory_rows) + [""]
    register_files = {item["name"]: item for entry in report["blocks"] if entry.get("pdk")
                      for item in entry["pdk"]["register_files"]}
    if register_files:
        lines += ["### Register files (flip-flops, characterised on their own)", ""]
        lines += _table(["cell", "um^2", "cells", "read address to data ns",
                         "clock to data ns", "write setup ns"],
                        [[item["name"], item["area_um2"], item["cells"], item["read_ns"],
                          item["clock_to_out_ns"], item["setup_ns"]]
                         for item in register_files.values()]) + [""]
    return lines


def summary_lines(report):
    """Lines of the printed summary (one per block, or the note of a run without a PDK)."""
    section = report.get("pdk")
    if section is None:
        return []
    if not section["used"]:
        levels = ", ".join(f"{entry['name']} {entry['timing']['logic_levels']}"
                           for entry in report["blocks"] if entry.get("timing"))
        return [f"silicon: {section['note']}", f"  gate levels: {levels}"]
    lines = [f"silicon ({section['corner']}, clock {section['clock_ns']} ns, OpenSTA):",
             f"  {'block':<12}{'critical ns':>10}{'fmax MHz':>11}{'logic um^2':>13}"
             f"{'macro um^2':>13}  class"]
    for entry in report["blocks"]:
        timing, area = entry.get("timing"), entry.get("area")
        if not timing or timing.get("source") != "OpenSTA":
            lines.append(f"  {entry['name']:<12} not measured (see errors)")
            continue
        lines.append(f"  {entry['name']:<12}{timing['critical_path_ns']:>10.2f}"
                     f"{timing['fmax_mhz']:>11.1f}{area['logic_um2']:>13,.0f}"
                     f"{area['macro_um2']:>13,.0f}  {timing['path_class']}")
    return lines


def plot(report, out):
    """``silicon.png``: fmax and area (logic + macros) per block; None without PDK figures."""
    measured = [entry for entry in report["blocks"]
                if entry.get("timing") and entry["timing"].get("source") == "OpenSTA"]
    if not measured:
        return None
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [entry["name"] for entry in measured]
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.bar(names, [entry["timing"]["fmax_mhz"] for entry in measured])
    clock = report["pdk"]["clock_ns"]
    left.axhline(1000.0 / clock, color="red", linestyle="--", label=f"{clock} ns target")
    left.set_ylabel("fmax (MHz, OpenSTA)")
    left.legend()
    logic = [entry["area"]["logic_um2"] / 1e6 for entry in measured]
    macros = [entry["area"]["macro_um2"] / 1e6 for entry in measured]
    right.bar(names, logic, label="logic (standard cells, register files)")
    right.bar(names, macros, bottom=logic, label="SRAM macros")
    right.set_ylabel("area (mm^2)")
    right.legend()
    figure.suptitle(f"Silicon per block, config {report['config_name']}, "
                    f"{report['pdk']['corner']}")
    figure.tight_layout()
    path = Path(out) / "silicon.png"
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
