"""``make synth``: area and FPGA reports of every registered block for one configuration.

Usage::

    python -m synth.flow --config PRESET_OR_JSON [--liberty PATH] --out build/reports
        [--blocks NAME ...] [--no-fpga] [--no-pnr] [--pnr-family ecp5|ice40]
        [--families ecp5 ice40] [--sweep] [--jobs N] [--no-cache] [--pnr-timeout S]
        [--pnr-seeds 1,2,3] [--pnr-target-mhz MHZ] [--pnr-router router1|router2|none]
        [--pnr-timing-ripup]
        [--pdk-root DIR] [--pdk-corner CORNER] [--clock-ns NS]

Every block of :data:`hw.registry.BLOCKS` (the DRE's and the baselines) is elaborated with
``build_component(name, config)`` and written as RTLIL, then measured by independent tool runs:

- ``asic``: generic gates, NAND2 gate equivalents and (with ``--liberty``) standard-cell area,
  memories costed by bits (:mod:`synth.asic`, :mod:`synth.area_lib`);
- ``fpga``: ECP5 and iCE40 resources (:mod:`synth.fpga`);
- ``fmax``: place and route on an amaranth-boards platform with registered I/O (ECP5 ULX3S-85F
  by default), for every block; with ``--pnr-seeds`` the same netlist once per nextpnr seed,
  every seed's fmax reported with their median and minimum (:func:`synth.fpga.run_fmax`); the
  clock constrained to ``--pnr-target-mhz`` (default 100 MHz, the goal), which nextpnr's
  timing-driven placement and routing aim at, routed by ``--pnr-router`` (``none``: placed
  only, the fmax the placer's estimate), with ``--pnr-timing-ripup`` the router's arcs that
  miss the constraint ripped up and routed again (:data:`synth.fpga.TIMING_RIPUP`);
- ``pdk`` (with ``--pdk-root``, default ``$PDK_ROOT``): memories as SRAM macros or register
  files, logic in the PDK's standard cells, static timing with OpenSTA (:mod:`synth.silicon`).

A block that cannot be imported or elaborated, or a tool run that fails, becomes an error entry
of the report; the other blocks and steps go on. The registry is read at run time, so a new
block joins the flow by its registry line alone. The results are written by
:func:`synth.report.write_reports` (JSON schema in :mod:`synth.report`) and the one-screen
summary is printed at the end. The FPGA steps (``ecp5``, ``ice40``, ``fmax``) measure the block
as an FPGA build elaborates it, for the family's board platform (``NAME_FAMILY.il``): a block
may build differently there (the WTU's adders become carry chains,
:func:`hw.wtu.fast_adders.carry_chains`). Tools run in ``OUT/work/CONFIG/BLOCK/`` with relative paths
(YoWASP tools do not see the host's ``/tmp``), up to ``--jobs`` at a time, longest first. A
step whose inputs did not change since the last run (same RTLIL, flow sources and liberty file)
is taken from ``OUT/work/CONFIG/BLOCK/STEP.result.json`` unless ``--no-cache`` is given; so is
a place and route that failed or stopped at ``--pnr-timeout`` (its error is reported again).
"""

import argparse
import concurrent.futures
import contextlib
import datetime
import hashlib
import json
import os
import re
import sys
import time
import traceback
from pathlib import Path

import numpy as np

from hw import registry
from model.twins import topk_sorter as sorter_twin
from model.config import PRESETS, load_config
from synth import area_lib, silicon
from synth.asic import run_asic
from synth.fpga import (ABC9_DELAY_SHARES, DEFAULT_ROUTER, DEFAULT_TARGET_MHZ, FAMILIES,
                        PLACER_TIMING_WEIGHT, PLACER_TIMING_WEIGHTS, ROUTERS, board_platform,
                        check_router, check_seeds, check_target, check_timing_ripup, run_fmax,
                        run_fpga_synth)
from synth.pdk import DEFAULT_CORNER, find_pdk
from synth.report import SCHEMA, print_summary, write_reports
from synth.tools import ToolError, progress, stop_all

__all__ = ["main", "run_flow", "elaborate", "sweep_points", "wtu_cycles"]

#: Relative cost of the steps, to start the longest first (measured on the edge preset).
_STEP_WEIGHT = {"fmax": 3.0, "ecp5": 1.2, "ice40": 1.0, "asic": 1.5, "pdk": 2.0}

#: The sorter baseline and the block it is compared with.
SORTER, WTU = "topk_sorter", "wtu"


def _cache_key(step, rtlil_path, liberty, pnr_family, extra=""):
    """Digest of everything a step's result depends on: step, RTLIL, the step's flow module
    (and area table), the liberty file, ``extra`` (the ``pdk`` step's inputs)."""
    digest = hashlib.sha256(f"{step}|{pnr_family}|{extra}|".encode())
    digest.update(Path(rtlil_path).read_bytes())
    here = Path(__file__).parent
    sources = ([here / "asic.py", here / "area_lib.py", here / "nand2_areas.json"]
               if step == "asic" else silicon.SOURCES if step == "pdk" else [here / "fpga.py"])
    for source in sources:
        digest.update(source.read_bytes())
    if liberty is not None and step == "asic":
        digest.update(Path(liberty).read_bytes())
    return digest.hexdigest()


@contextlib.contextmanager
def _stopping_tools(pool):
    """On an interrupt (Ctrl-C), drop the queued steps and stop the running tools."""
    try:
        yield
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        stop_all()
        raise


def _cached(step, block_dir, rtlil_path, liberty, pnr_family, use_cache, label, compute,
            extra="", keep_failure=False):
    """``compute()``, or its stored result when the step's inputs are unchanged (:func:`_cache_key`).

    With ``keep_failure`` a :class:`ToolError` of ``compute()`` (a tool that stopped at its
    timeout or failed) is stored too, and raised again, without running the tools, while the
    inputs stay the same (``use_cache`` False runs them again).
    """
    key = _cache_key(step, rtlil_path, liberty, pnr_family, extra)
    cache = Path(block_dir) / f"{step}.result.json"
    if use_cache and cache.is_file():
        stored = json.loads(cache.read_text())
        if stored.get("key") == key:
            if "error" in stored:
                progress(f"  cached {label}: failed in the last run with the same inputs")
                raise ToolError(f"{stored['error']} (in the last run with the same inputs; "
                                "--no-cache runs it again)")
            progress(f"  cached {label} (same RTLIL, scripts and liberty as the last run)")
            return {**stored["result"], "cached": True}
    progress(f"  start {label}")
    try:
        result = compute()
    except ToolError as error:
        if keep_failure:
            cache.write_text(json.dumps({"key": key, "error": str(error)}))
        raise
    cache.write_text(json.dumps({"key": key, "result": result}))
    return result


def _config_name(config_argument):
    name = str(config_argument)
    return name if name in PRESETS else Path(name).stem


def elaborate(name, config, workdir, family=None):
    """Write block ``name`` for ``config`` as ``WORKDIR/NAME.il``; returns (file name, port bits).

    With ``family`` (an FPGA family of :data:`synth.fpga.PLATFORMS`) the block is elaborated
    for that family's board platform and written as ``WORKDIR/NAME_FAMILY.il``.

    Raises whatever importing, constructing or converting the block raises.
    """
    from amaranth.back import rtlil
    from amaranth.hdl import Value
    from amaranth.lib import wiring

    component = registry.build_component(name, config)
    if not isinstance(component, wiring.Component):
        raise TypeError(f"{name} must be a wiring.Component, not {type(component).__name__}")
    port_bits = sum(len(Value.cast(value))
                    for _, _, value in component.signature.flatten(component))
    platform = board_platform(family) if family is not None else None
    text = rtlil.convert(component, name=name, platform=platform)
    file_name = f"{name}.il" if family is None else f"{name}_{family}.il"
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / file_name).write_text(text)
    return file_name, port_bits


def _error_text(error):
    text = f"{type(error).__name__}: {error}"
    return re.sub(r"\s+", " ", text)[:400]


class _Block:
    """The report entry of one block, filled by the steps as they finish."""

    def __init__(self, name, kind):
        self.name = name
        self.kind = kind
        self.entry = {"name": name, "kind": kind,
                      "class": registry.block(name).component,
                      "status": "ok", "errors": [], "port_bits": None, "asic": None,
                      "fpga": {}, "fmax": None, "pdk": None, "timing": None, "area": None}

    def fail(self, step, error):
        self.entry["status"] = "error"
        self.entry["errors"].append({"step": step, "message": _error_text(error)})


def wtu_cycles(config):
    """Cycles per row of the WTU (from its twin) and of the sorter baseline (from its twin).

    Two workloads: the project's trace of one frame (``model.stimulus.traces.wtu_trace``, the ``default``
    workload when the configuration has room for its query rows, else ``tiny``), and a full row
    of ``max_clusters`` clusters with seeded softmax-like scores. Returns a dict, or raises
    ImportError when the WTU twin is not there.
    """
    from model.twins import wtu as wtu_twin
    from model.stimulus.traces import wtu_trace

    cases = []
    for workload in ("default", "tiny"):
        try:
            trace = wtu_trace(config, workload=workload)
        except ValueError:
            continue
        cases.append(("trace", f"trace of the {workload} workload (last frame)",
                      trace["scores"], trace["counts"]))
        break
    rng = np.random.default_rng(2026)
    rows, clusters = min(8, config.max_rows), config.max_clusters
    logits = rng.normal(0.0, 2.0, size=(rows, clusters))
    scores = np.floor(config.max_score * np.exp(logits - logits.max(axis=1, keepdims=True)) + 0.5)
    counts = rng.integers(1, min(64, config.max_count) + 1, size=clusters)
    cases.append(("full row", f"N = max_clusters, {rows} rows of seeded softmax-like scores",
                  scores.astype(np.uint64), counts.astype(np.uint64)))
    results = []
    for label, description, scores, counts in cases:
        result = wtu_twin.wtu_problem(config, scores, counts)
        clusters = scores.shape[1]
        selected = result["row_selected"].sum(axis=1)
        wtu_decide = float(np.mean(result["cycles"]))
        # A row occupies the unit for its cycles and its emission beats' issue; each beat is
        # offered EMIT_LATENCY cycles after its issue, while the next row loads.
        wtu_total = float(np.mean(result["cycles"] + result["emit_cycles"])
                          - wtu_twin.EMIT_LATENCY)
        sorter = sorter_twin.cycles_per_row(config, clusters)
        scan_sort = float(np.mean([wtu_twin.scan_sort_cycles(clusters, int(count), config.wtu_lanes)
                                   for count in selected]))
        results.append({"workload": label, "description": description, "clusters": int(clusters), "rows": int(scores.shape[0]),
                        "wtu_decide_cycles": round(wtu_decide, 2),
                        "wtu_cycles": round(wtu_total, 2),
                        "sorter_cycles": sorter,
                        "scan_sort_cycles": round(scan_sort, 2),
                        "ratio_wtu_to_sorter": round(wtu_total / sorter, 3)})
    return results


def _area_ratios(blocks):
    wtu, sorter = blocks.get(WTU), blocks.get(SORTER)
    if wtu is None or sorter is None or wtu["asic"] is None or sorter["asic"] is None:
        return None
    ratios = {
        "ge": wtu["asic"]["ge"] / sorter["asic"]["ge"],
        "ge_logic": wtu["asic"]["ge_logic"] / sorter["asic"]["ge_logic"],
    }
    if wtu["asic"]["liberty"] and sorter["asic"]["liberty"]:
        ratios["um2"] = wtu["asic"]["liberty"]["total_um2"] / sorter["asic"]["liberty"]["total_um2"]
    for family in FAMILIES:
        first, second = wtu["fpga"].get(family), sorter["fpga"].get(family)
        if first and second and second["resources"]["luts"]:
            ratios[f"luts_{family}"] = first["resources"]["luts"] / second["resources"]["luts"]
    if wtu["fmax"] and sorter["fmax"] and wtu["fmax"]["fmax_mhz"] and sorter["fmax"]["fmax_mhz"]:
        ratios["fmax"] = wtu["fmax"]["fmax_mhz"] / sorter["fmax"]["fmax_mhz"]
    return {key: round(value, 3) for key, value in ratios.items()}


def _baseline_section(config, blocks):
    section = {"sorter": SORTER, "compared": WTU,
               "sorter_design": (f"{config.wtu_lanes}-lane bitonic sorting network + "
                                 f"{config.topk_k}-entry bitonic merge buffer, N = "
                                 f"{config.max_clusters}, key = {config.score_bits}-bit score + "
                                 f"{config.cluster_id_bits}-bit cluster index"),
               "area_ratio": _area_ratios(blocks), "cycles": None, "note": None}
    try:
        section["cycles"] = wtu_cycles(config)
    except ImportError as error:
        section["note"] = (f"WTU twin not available ({_error_text(error)}): sorter cycles only, "
                           f"{sorter_twin.cycles_per_row(config, config.max_clusters)} per row of "
                           f"{config.max_clusters} clusters")
    except Exception as error:  # the report goes on without the cycle ratio
        section["note"] = f"WTU cycle model failed: {_error_text(error)}"
    return section


def _estimate_14nm(entry):
    node = area_lib.area_table()["node_14nm"]
    if entry.get("asic") is None:
        return None
    mm2 = entry["asic"]["ge"] * node["nand2_um2"] / 1e6
    logic_mm2 = entry["asic"]["ge_logic"] * node["nand2_um2"] / 1e6
    estimate = {"mm2": round(mm2, 5), "logic_mm2": round(logic_mm2, 5),
                "memory_mm2": round(mm2 - logic_mm2, 5),
                "core_percent": round(100.0 * mm2 / node["paper"]["core_mm2"], 3),
                "paper_percent": node["paper"]["share_percent"].get(entry["name"]),
                "paper_counterpart": node["paper"]["counterpart"].get(entry["name"])}
    if estimate["paper_percent"] is not None:
        estimate["paper_mm2"] = round(estimate["paper_percent"] / 100 * node["paper"]["core_mm2"], 5)
    if entry.get("kind") == "top":
        estimate["memory_by_unit"] = _memory_by_unit(entry["asic"]["memories"], node)
    return estimate


def _memory_by_unit(memories, node):
    """A top's memory bits per unit (the memory name's first part) beside the paper's.

    Returns a list of ``{unit, bits, mm2, paper_bits, paper_mm2}`` (``paper_*`` null for a
    unit the paper does not list), the paper's units first, then the top's others.
    """
    mm2_per_bit = area_lib.memory_ge_per_bit() * node["nand2_um2"] / 1e6
    paper_bits = {unit: bits for unit, bits in node["paper"]["onchip_memory_bits"].items()
                  if unit != "total"}
    bits = dict.fromkeys(paper_bits, 0)
    for memory in memories:
        unit = memory["name"].split(".", 1)[0]
        bits[unit] = bits.get(unit, 0) + memory["bits"]
    return [{"unit": unit, "bits": count, "mm2": round(count * mm2_per_bit, 5),
             "paper_bits": paper_bits.get(unit),
             "paper_mm2": (round(paper_bits[unit] * mm2_per_bit, 5) if unit in paper_bits
                           else None)}
            for unit, count in bits.items()]


def _totals(entries):
    members = [entry for entry in entries if entry["kind"] == "block"]
    measured = [entry for entry in members if entry["asic"] is not None]
    totals = {"blocks": [entry["name"] for entry in measured],
              "missing": [entry["name"] for entry in members if entry["asic"] is None],
              "ge": 0.0, "ge_logic": 0.0, "ge_memory": 0.0, "memory_bits": 0, "cells": 0,
              "flip_flops": 0, "liberty": None, "fpga": {}, "estimate_14nm": None}
    for entry in measured:
        asic = entry["asic"]
        totals["ge"] += asic["ge"]
        totals["ge_logic"] += asic["ge_logic"]
        totals["ge_memory"] += asic["ge_memory"]
        totals["memory_bits"] += asic["memory_bits"]
        totals["cells"] += asic["generic"]["cells"]
        totals["flip_flops"] += asic["generic"]["flip_flops"]
    for key in ("ge", "ge_logic", "ge_memory"):
        totals[key] = round(totals[key], 1)
    with_liberty = [entry["asic"]["liberty"] for entry in measured if entry["asic"]["liberty"]]
    if with_liberty and len(with_liberty) == len(measured):
        totals["liberty"] = {key: round(sum(item[key] for item in with_liberty), 1)
                             for key in ("logic_um2", "memory_um2", "total_um2")}
    for family in FAMILIES:
        found = [entry["fpga"][family]["resources"] for entry in measured if family in entry["fpga"]]
        if found and len(found) == len(measured):
            totals["fpga"][family] = {key: sum(item[key] for item in found) for key in found[0]}
    if measured:
        totals["estimate_14nm"] = _estimate_14nm({"name": "total", **totals,
                                                  "asic": {"ge": totals["ge"],
                                                           "ge_logic": totals["ge_logic"]}})
    return totals


def sweep_points(config):
    """The small sweep of ``--sweep``: WTU lanes and HCU bits per cycle around ``config``.

    Returns a list of ``(parameter, value, configuration)``; values that the configuration
    rules reject are left out.
    """
    points = []
    for lanes in (4, 8, 16, 32):
        try:
            points.append(("wtu_lanes", lanes, config.replace(wtu_lanes=lanes)))
        except ValueError:
            pass
    for bits in (1, 2, 4, 8):
        if config.hash_bits % bits == 0:
            points.append(("hcu_bits_per_cycle", bits, config.replace(hcu_bits_per_cycle=bits)))
    return points


def _run_sweep(config, out, jobs, use_cache):
    tasks = []
    for parameter, value, point in sweep_points(config):
        names = [WTU, SORTER] if parameter == "wtu_lanes" else ["hcu"]
        for name in names:
            workdir = out / "work" / "sweep" / f"{parameter}_{value}" / name
            try:
                rtlil_name, _ = elaborate(name, point, workdir)
            except Exception as error:
                progress(f"  sweep {parameter}={value} {name}: error {_error_text(error)}")
                continue
            tasks.append((parameter, value, name, workdir, rtlil_name))
    results = []

    def measure(task):
        parameter, value, name, workdir, rtlil_name = task
        label = f"sweep {parameter}={value} {name}"
        asic = _cached("asic", workdir, workdir / rtlil_name, None, None, use_cache, label,
                       lambda: run_asic(workdir, name, rtlil_name, label))
        return {"parameter": parameter, "value": value, "block": name, "ge": asic["ge"],
                "ge_logic": asic["ge_logic"], "ge_memory": asic["ge_memory"]}

    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool, _stopping_tools(pool):
        futures = {pool.submit(measure, task): task for task in tasks}
        for future in concurrent.futures.as_completed(futures):
            parameter, value, name, _, _ = futures[future]
            try:
                results.append(future.result())
                progress(f"  sweep {parameter}={value} {name}: {results[-1]['ge']:.0f} GE")
            except Exception as error:
                progress(f"  sweep {parameter}={value} {name}: error {_error_text(error)}")
    return sorted(results, key=lambda item: (item["parameter"], item["block"], item["value"]))


def run_flow(config_argument, out, liberty=None, blocks=None, fpga=True, pnr=True,
             pnr_family="ecp5", families=None, sweep=False, jobs=2, use_cache=True,
             pnr_timeout=600, pdk_root=None, clock_ns=silicon.DEFAULT_CLOCK_NS,
             pdk_corner=DEFAULT_CORNER, pnr_seeds=None, pnr_target_mhz=DEFAULT_TARGET_MHZ,
             pnr_router=DEFAULT_ROUTER, pnr_timing_ripup=False):
    """Run the flow and write the reports; returns the report dict (schema in :mod:`synth.report`).

    Parameters
    ----------
    config_argument : str
        A preset name or a JSON configuration file.
    out : pathlib.Path
        Report folder (``build/reports``).
    liberty : pathlib.Path, optional
        Liberty file for um^2.
    blocks : list of str, optional
        Subset of the registered names (default: every block and baseline).
    fpga, pnr : bool
        Run the FPGA resource counts, and place and route for fmax.
    pnr_family : str
        ``ecp5`` (ULX3S-85F) or ``ice40`` (iCEBreaker).
    families : list of str, optional
        FPGA families of the resource counts (default: all of :data:`synth.fpga.FAMILIES`).
    sweep : bool
        Also run the small lanes / bits-per-cycle sweep (generic GE only).
    jobs : int
        Tool runs at a time.
    pnr_timeout : float
        Seconds allowed to one block's place and route (a block that takes longer gets an
        error entry for ``fmax``, the other results stand); with ``pnr_seeds``, to each seed's.
    pnr_seeds : sequence of int, optional
        nextpnr seeds: each block's netlist placed and routed once per seed; its ``fmax`` gets
        every seed's figure, their median (its ``fmax_mhz``) and minimum
        (:func:`synth.fpga.seed_statistics`). Default: one run with nextpnr's own seed.
    pnr_target_mhz : float
        The clock constraint of the place and route, in MHz (:func:`synth.fpga.board_platform`;
        default :data:`synth.fpga.DEFAULT_TARGET_MHZ`).
    pnr_router : str
        nextpnr's router, one of :data:`synth.fpga.ROUTERS` (default
        :data:`synth.fpga.DEFAULT_ROUTER`).
    pnr_timing_ripup : bool
        The router rips up the arcs that miss ``pnr_target_mhz`` and routes them again
        (nextpnr's :data:`synth.fpga.TIMING_RIPUP`; default off).
    use_cache : bool
        Reuse a step's result from the last run when its inputs are unchanged (the block's
        RTLIL, the flow's scripts and area table, the liberty file); see :func:`_cache_key`.
        A place and route that failed or stopped at ``pnr_timeout`` is reused as that error
        while its inputs and ``pnr_timeout`` stay the same.
    pdk_root : pathlib.Path, optional
        ``PDK_ROOT`` of IHP SG13G2 (:func:`synth.pdk.find_pdk`): SRAM macros, standard-cell
        area and OpenSTA timing per block (the ``pdk`` step). Without it the report gives the
        generic gate levels and says what it could not measure.
    clock_ns : float
        Clock period of the timing constraint and of ABC's delay target (``pdk`` step).
    pdk_corner : str
        The liberty corner of the PDK (default the typical corner).

    Raises
    ------
    ValueError
        If the configuration, a block name, the liberty file or the family is invalid.
    """
    started = time.monotonic()
    config = load_config(config_argument)
    config_name = _config_name(config_argument)
    known = registry.BLOCKS
    names = list(known) if not blocks else list(blocks)
    for name in names:
        if name not in known:
            raise ValueError(f"block must be one of {', '.join(known)}, not {name!r}")
    if pnr_family not in FAMILIES:
        raise ValueError(f"pnr_family must be one of {', '.join(FAMILIES)}, not {pnr_family!r}")
    families = list(FAMILIES) if families is None else list(families)
    if not set(families) <= set(FAMILIES):
        raise ValueError(f"families must be a subset of {', '.join(FAMILIES)}, not {families!r}")
    if not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be a positive integer, not {jobs!r}")
    pnr_seeds = check_seeds(pnr_seeds)
    pnr_target_mhz = check_target(pnr_target_mhz)
    pnr_router = check_router(pnr_router)
    pnr_timing_ripup = check_timing_ripup(pnr_timing_ripup, pnr_router)
    pdk = silicon.check_arguments(pdk_root, clock_ns, lambda root: find_pdk(root, pdk_corner))
    out = Path(out)
    liberty_info = None
    if liberty is not None:
        liberty = Path(liberty)
        if not liberty.is_file():
            raise ValueError(f"liberty must be a readable liberty file, not {str(liberty)!r}")
        nand2_um2, nand2_cell = area_lib.liberty_nand2_area(liberty)
        liberty_info = {"path": str(liberty), "nand2_cell": nand2_cell, "nand2_um2": nand2_um2,
                        "memory_um2_per_bit": round(area_lib.memory_ge_per_bit() * nand2_um2, 4)}
    out.mkdir(parents=True, exist_ok=True)
    progress(f"synth: {len(names)} blocks, config {config_name}, "
             f"liberty {liberty if liberty else 'none'}, fpga {'on' if fpga else 'off'}, "
             f"fmax {pnr_family + f' at {pnr_target_mhz:g} MHz, {pnr_router}' if (fpga and pnr) else 'off'}"
             f"{' with timing rip-up' if (fpga and pnr and pnr_timing_ripup) else ''}"
             f"{' seeds ' + ','.join(map(str, pnr_seeds)) if (fpga and pnr and pnr_seeds) else ''}, "
             f"pdk {pdk.root if pdk else 'none'}, jobs {jobs}")

    entries = {}
    tasks = []
    for index, name in enumerate(names, 1):
        entry_info = registry.block(name)
        kind = "baseline" if entry_info.baseline else ("top" if entry_info.top else "block")
        block = entries[name] = _Block(name, kind)
        workdir = out / "work" / config_name / name
        step_start = time.monotonic()
        try:
            rtlil_name, port_bits = elaborate(name, config, workdir)
            fpga_names = {family: elaborate(name, config, workdir, family)[0]
                          for family in (set(families) | ({pnr_family} if pnr else set())
                                         if fpga else ())}
        except Exception as error:
            block.fail("elaborate", error)
            progress(f"[{index}/{len(names)}] {name}: cannot elaborate: {_error_text(error)}")
            continue
        block.entry["port_bits"] = port_bits
        progress(f"[{index}/{len(names)}] {name}: elaborated in {time.monotonic() - step_start:.1f} s")
        tasks.append(("asic", name, workdir, rtlil_name))
        if fpga:
            tasks += [(family, name, workdir, fpga_names[family]) for family in families]
            if pnr:
                tasks.append(("fmax", name, workdir / f"pnr_{pnr_family}",
                              fpga_names[pnr_family]))
        if pdk is not None:
            tasks.append(("pdk", name, workdir, rtlil_name))

    def run_task(task):
        step, name, workdir, rtlil_name = task
        label = f"{name} {step}"
        block_dir = out / "work" / config_name / name
        delay_share = ABC9_DELAY_SHARES.get(name)   # the LUT mapping's delay target
        placer_weight = PLACER_TIMING_WEIGHTS.get(name, PLACER_TIMING_WEIGHT)
        extra = (silicon.inputs_digest(pdk, clock_ns) if step == "pdk"
                 else f"seeds {pnr_seeds} target {pnr_target_mhz} {pnr_router} "
                      f"ripup {pnr_timing_ripup} timeout {pnr_timeout} delay {delay_share} "
                      f"weight {placer_weight}"
                 if step == "fmax"
                 else "" if step == "asic" or delay_share is None
                 else f"delay {delay_share} of {pnr_target_mhz}")
        # A place and route that stopped at its timeout or failed is not run again with the
        # same inputs (and timeout): it would spend the same minutes to fail again.
        return _cached(step, block_dir, block_dir / rtlil_name, liberty, pnr_family, use_cache,
                       label, lambda: measure(step, name, workdir, rtlil_name, label,
                                              delay_share, placer_weight),
                       extra=extra, keep_failure=step == "fmax")

    def measure(step, name, workdir, rtlil_name, label, delay_share, placer_weight):
        if step == "asic":
            return run_asic(workdir, name, rtlil_name, label, liberty,
                            liberty_info["nand2_um2"] if liberty_info else None)
        if step == "pdk":
            return silicon.run_silicon(workdir, name, rtlil_name, label, pdk, clock_ns, use_cache)
        if step == "fmax":
            component = registry.build_component(name, config)
            return run_fmax(component, pnr_family, workdir, label, timeout=pnr_timeout,
                            seeds=pnr_seeds, target_mhz=pnr_target_mhz, router=pnr_router,
                            delay_share=delay_share, timing_ripup=pnr_timing_ripup,
                            placer_weight=placer_weight)
        return run_fpga_synth(workdir, name, rtlil_name, step, label, delay_share=delay_share,
                              target_mhz=pnr_target_mhz)

    # Longest first (estimated from the size of the block's RTLIL), so that the big blocks'
    # slow steps do not start last and leave a core idle.
    rtlil_bytes = {name: (out / "work" / config_name / name / f"{name}.il").stat().st_size
                   for _, name, _, _ in tasks}
    tasks.sort(key=lambda task: -rtlil_bytes[task[1]] * _STEP_WEIGHT[task[0]])
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool, _stopping_tools(pool):
        futures = {pool.submit(run_task, task): task for task in tasks}
        for future in concurrent.futures.as_completed(futures):
            step, name, _, _ = futures[future]
            block = entries[name]
            try:
                result = future.result()
            except (ToolError, ValueError, OSError, KeyError) as error:
                block.fail(step, error)
                progress(f"  done  {name} {step}: ERROR {_error_text(error)}")
                continue
            except Exception as error:  # keep the other blocks going; the report says why
                block.fail(step, error)
                progress(f"  done  {name} {step}: ERROR {_error_text(error)}")
                traceback.print_exc()
                continue
            if step == "asic":
                block.entry["asic"] = result
                message = f"{result['ge']:.0f} GE ({result['memory_bits']} memory bits)"
                if result["liberty"]:
                    message += f", {result['liberty']['total_um2']:.0f} um^2"
            elif step == "pdk":
                block.entry["pdk"] = result
                message = silicon.progress_message(result)
            elif step == "fmax":
                block.entry["fmax"] = result
                message = f"fmax {result['fmax_mhz']} MHz on {result['platform']}"
                if result.get("seeds"):
                    message += (" (median of seeds "
                                + ", ".join(f"{run['seed']}: {run['fmax_mhz']}"
                                            for run in result["seeds"])
                                + f"; minimum {result['fmax_min_mhz']})")
            else:
                block.entry["fpga"][step] = result
                message = f"{result['resources']['luts']} LUTs, {result['resources']['ffs']} FFs"
            if not result.get("cached"):
                progress(f"  done  {name} {step} in {result['seconds']:.0f} s: {message}")

    blocks_out = [entries[name].entry for name in names]
    for entry in blocks_out:
        entry["estimate_14nm"] = _estimate_14nm(entry)
        entry.update(silicon.timing_and_area(entry))
    by_name = {entry["name"]: entry for entry in blocks_out}
    report = {
        "schema": SCHEMA,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": "python -m synth.flow " + " ".join(sys.argv[1:]),
        "config_name": config_name,
        "config": config.to_dict(),
        "derived": config.derived(),
        "liberty": liberty_info,
        "pdk": silicon.pdk_section(pdk, clock_ns),
        "area_model": _area_model(),
        "fpga_flow": {"families": {family: FAMILIES[family] for family in families} if fpga else {},
                      "pnr_family": pnr_family if fpga and pnr else None,
                      "pnr_target_mhz": pnr_target_mhz if fpga and pnr else None,
                      "pnr_router": pnr_router if fpga and pnr else None,
                      "pnr_timing_ripup": pnr_timing_ripup if fpga and pnr else None},
        "blocks": blocks_out,
        "totals": {**_totals(blocks_out), "silicon": silicon.totals(blocks_out)},
        "baseline": _baseline_section(config, by_name) if SORTER in by_name else None,
        "sweep": _run_sweep(config, out, jobs, use_cache) if sweep else None,
        "seconds": None,
    }
    report["seconds"] = round(time.monotonic() - started, 1)
    write_reports(report, out)
    print_summary(report)
    return report


def _area_model():
    table = area_lib.area_table()
    return {"gates": {cell: value["ge"] for cell, value in table["gates"].items()},
            "gates_source": table["gates_source"],
            "memory": {**table["memory"], "ge_per_bit": round(area_lib.memory_ge_per_bit(), 4)},
            "node_14nm": table["node_14nm"]}


def _seed_list(text):
    """``--pnr-seeds``: comma-separated positive integers (checked by :func:`check_seeds`)."""
    try:
        seeds = [int(part) for part in text.split(",")]
        check_seeds(seeds)
    except (TypeError, ValueError) as error:
        raise argparse.ArgumentTypeError(
            f"must be distinct positive integers separated by commas, not {text!r}") from error
    return seeds


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m synth.flow", description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="edge", help="preset name or JSON file (default edge)")
    parser.add_argument("--liberty", type=Path, help="liberty file for standard-cell area (um^2)")
    parser.add_argument("--out", type=Path, default=Path("build/reports"), help="report folder")
    parser.add_argument("--blocks", nargs="+", help="only these registered blocks")
    parser.add_argument("--no-fpga", action="store_true", help="skip the FPGA resources and fmax")
    parser.add_argument("--no-pnr", action="store_true", help="skip place and route (fmax)")
    parser.add_argument("--pnr-family", default="ecp5", choices=sorted(FAMILIES),
                        help="board family of the fmax run (ecp5: ULX3S-85F, ice40: iCEBreaker)")
    parser.add_argument("--families", nargs="+", choices=sorted(FAMILIES),
                        help="FPGA families of the resource counts (default: all)")
    parser.add_argument("--sweep", action="store_true", help="also sweep WTU lanes / HCU bits per cycle")
    parser.add_argument("--jobs", type=int, default=2, help="tool runs at a time (default 2)")
    parser.add_argument("--pnr-timeout", type=float, default=600,
                        help="seconds allowed to one block's place and route (default 600)")
    parser.add_argument("--pnr-seeds", type=_seed_list, metavar="S1,S2,...",
                        help="place and route each block once per nextpnr seed (e.g. 1,2,3) and "
                             "report each fmax, the median and the minimum (default: one run)")
    parser.add_argument("--pnr-target-mhz", type=float, default=DEFAULT_TARGET_MHZ, metavar="MHZ",
                        help="clock constraint of the place and route, which nextpnr's "
                             f"timing-driven placement aims at (default {DEFAULT_TARGET_MHZ:g})")
    parser.add_argument("--pnr-router", choices=ROUTERS, default=DEFAULT_ROUTER,
                        help=f"nextpnr's router (default {DEFAULT_ROUTER}; router2 routes the "
                             "large, congested blocks that router1 does not finish; none stops "
                             "after the placement and reports the placer's estimate)")
    parser.add_argument("--pnr-timing-ripup", action="store_true",
                        help="the router rips up the arcs that miss the target and routes them "
                             "again (nextpnr's --tmg-ripup; experimental, off by default)")
    parser.add_argument("--pdk-root", type=Path, default=os.environ.get("PDK_ROOT") or None,
                        help="IHP SG13G2 PDK_ROOT: SRAM macros, standard cells, OpenSTA timing "
                             "(default: $PDK_ROOT)")
    parser.add_argument("--clock-ns", type=float, default=silicon.DEFAULT_CLOCK_NS,
                        help=f"clock period of the timing (default {silicon.DEFAULT_CLOCK_NS})")
    parser.add_argument("--pdk-corner", default=DEFAULT_CORNER,
                        help=f"liberty corner of the PDK (default {DEFAULT_CORNER})")
    parser.add_argument("--no-cache", action="store_true",
                        help="run every tool again even when its inputs are unchanged")
    args = parser.parse_args(argv)
    try:
        report = run_flow(args.config, args.out, liberty=args.liberty, blocks=args.blocks,
                          fpga=not args.no_fpga, pnr=not args.no_pnr, pnr_family=args.pnr_family,
                          families=args.families, use_cache=not args.no_cache,
                          pnr_timeout=args.pnr_timeout, pnr_seeds=args.pnr_seeds,
                          pnr_target_mhz=args.pnr_target_mhz, pnr_router=args.pnr_router,
                          pnr_timing_ripup=args.pnr_timing_ripup,
                          pdk_root=args.pdk_root,
                          clock_ns=args.clock_ns, pdk_corner=args.pdk_corner,
                          sweep=args.sweep, jobs=args.jobs)
    except (ValueError, TypeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    # Blocks that failed are error lines of the report, not a failure of the run.
    return 0 if report["blocks"] else 1


if __name__ == "__main__":
    sys.exit(main())
