"""The silicon flow: SRAM macros, register files, standard cells and OpenSTA timing.

Most tests use the project's own small PDK (``tests/data/demo_pdk``: four gates and a
flip-flop with 2x2 timing tables, one 16x16 two-port SRAM macro; values stated in the files).
The tests marked ``pdk`` use the real IHP SG13G2 files under ``PDK_ROOT`` (CI sets
``PDK_ROOT=../shared/pdk``); without ``PDK_ROOT`` they are deselected (``tests/conftest.py``),
never skipped as passes.
"""

import json
import os
import re
from pathlib import Path

import pytest
from amaranth import Module, unsigned
from amaranth.back import rtlil
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from hw import registry
from synth import flow, regfile, sram, sta
from synth import report as report_module
from synth.area_lib import Memory, liberty_cells, parse_memories
from synth.pdk import Macro, find_pdk, parse_macro
from synth.silicon import run_silicon

REPO = Path(__file__).resolve().parent.parent
DEMO_PDK = Path(__file__).parent / "data" / "demo_pdk"
DEMO_MACRO = "RM_DEMO_2P_16x16_demo"
# tests/data/demo_pdk: the flip-flop's clock-to-Q is 0.10 ns at the smallest load and its
# setup at least 0.04 ns, so no register-to-register path is shorter than 0.14 ns; the macro's
# clock to DOUT is 0.5 ns; its area 300 um^2; the flip-flop 4.5 um^2.
DEMO_MIN_REG_TO_REG_NS = 0.14
DEMO_MACRO_ACCESS_NS = 0.5
DEMO_MACRO_UM2 = 300.0
DEMO_FLIP_FLOP_UM2 = 4.5

TIMING_KEYS = {"critical_path_ns", "fmax_mhz", "startpoint", "endpoint", "logic_levels"}
AREA_KEYS = {"logic_um2", "macro_um2", "total_um2", "macros"}


def _pdk_root():
    root = Path(os.environ["PDK_ROOT"])
    return root if root.is_absolute() else REPO / root


class _MemoryBlock(wiring.Component):
    """A memory with one write port and one clocked read port, for the mapping tests."""

    def __init__(self, depth, width, sync_read=True):
        self._depth, self._width, self._sync = depth, width, sync_read
        address = (depth - 1).bit_length()
        super().__init__({"waddr": In(address), "wdata": In(width), "we": In(1),
                          "raddr": In(address), "rdata": Out(width)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.store = store = memory.Memory(shape=unsigned(self._width),
                                                   depth=self._depth, init=[])
        write = store.write_port()
        read = store.read_port(domain="sync" if self._sync else "comb")
        m.d.comb += [write.addr.eq(self.waddr), write.data.eq(self.wdata), write.en.eq(self.we),
                     read.addr.eq(self.raddr), self.rdata.eq(read.data)]
        return m


def _write_block(tmp_path, component, name="membank"):
    workdir = tmp_path / name
    workdir.mkdir(parents=True)
    (workdir / f"{name}.il").write_text(rtlil.convert(component, name=name))
    return workdir


# -- the whole flow on the tiny preset, demo PDK -------------------------------------------------

def test_tiny_flow_with_the_demo_pdk(tmp_path):
    """One run (every block, no FPGA) checked in parts, then one cached re-run."""
    out = tmp_path / "reports"
    result = flow.run_flow("tiny", out, fpga=False, pdk_root=DEMO_PDK, pdk_corner="demo",
                           jobs=2)
    _check_schema(result)
    _check_timing_is_consistent(result)
    _check_areas_add_up(result)
    _check_hcu_tables_are_macros(result)
    _check_wtu_memories_are_read_synchronously(result)
    _check_reports(result, out)
    again = flow.run_flow("tiny", out, blocks=["hcu"], fpga=False, pdk_root=DEMO_PDK,
                          pdk_corner="demo")
    entry, = again["blocks"]
    first = {item["name"]: item for item in result["blocks"]}["hcu"]
    assert entry["pdk"].pop("cached") is True
    assert entry["timing"] == first["timing"] and entry["area"] == first["area"]


def _check_schema(result):
    assert result["pdk"]["used"] is True and result["pdk"]["corner"] == "demo"
    assert [macro["name"] for macro in result["pdk"]["macros"]] == [DEMO_MACRO]
    assert [entry["name"] for entry in result["blocks"]] == list(registry.BLOCKS)
    for entry in result["blocks"]:
        assert entry["status"] == "ok", entry["errors"]
        assert TIMING_KEYS <= set(entry["timing"]) and AREA_KEYS <= set(entry["area"])
        assert entry["timing"]["source"] == "OpenSTA"
        assert set(entry["timing"]["classes"]) == set(sta.PATH_CLASSES)


def _check_timing_is_consistent(result):
    for entry in result["blocks"]:
        timing = entry["timing"]
        timed = {name: path for name, path in timing["classes"].items() if path}
        worst = max(timed.values(), key=lambda path: path["critical_path_ns"])
        assert timing["critical_path_ns"] == worst["critical_path_ns"]
        assert timing["path_class"] in timed
        assert timing["fmax_mhz"] == pytest.approx(1000 / timing["critical_path_ns"], abs=0.01)
        assert timing["meets_period"] == (timing["critical_path_ns"] <= timing["period_ns"])
        for path in timed.values():
            assert path["critical_path_ns"] == pytest.approx(6.0 - path["slack_ns"], abs=1e-3)
            assert path["startpoint"] and path["endpoint"] and path["logic_levels"] >= 0
        assert timed["reg_to_reg"]["critical_path_ns"] >= DEMO_MIN_REG_TO_REG_NS
        # The stages of the critical path add up to its arrival time.
        stages = timing["stages"]
        assert sum(stage["incr_ns"] for stage in stages) == pytest.approx(
            worst["arrival_ns"], abs=1e-3 * len(stages) + 1e-3)
        assert timing["logic_levels"] <= len(stages)


def _check_areas_add_up(result):
    for entry in result["blocks"]:
        area = entry["area"]
        assert area["total_um2"] == pytest.approx(area["logic_um2"] + area["macro_um2"], abs=0.2)
        assert area["logic_um2"] == pytest.approx(area["stdcell_um2"] + area["register_file_um2"],
                                                  abs=0.2)
        assert area["mapped_um2"] == pytest.approx(area["total_um2"], rel=1e-3)
        assert area["macro_um2"] == pytest.approx(sum(item["area_um2"] for item in area["macros"]))
        for item in area["macros"]:
            assert item["area_um2"] == pytest.approx(item["count"] * DEMO_MACRO_UM2)
        assert [memory["name"] for memory in area["memories"]] == [
            memory["name"] for memory in entry["asic"]["memories"]]
    totals = result["totals"]["silicon"]
    blocks = [entry for entry in result["blocks"] if entry["kind"] == "block"]
    for key in ("logic_um2", "macro_um2", "total_um2"):
        assert totals[key] == pytest.approx(sum(entry["area"][key] for entry in blocks), abs=0.5)


def _check_hcu_tables_are_macros(result):
    hcu = {entry["name"]: entry for entry in result["blocks"]}["hcu"]["area"]
    # tiny: 16 cluster hashes of 16 bits in hcu_dispatch_width = 2 banks -> two 8 x 16 tables,
    # clocked reads, one read and one write port: one 16x16 two-port macro each (8 <= 16 words,
    # 16 <= 16 bits), 300 um^2, cheaper than 128 flip-flops (>= 128 x 4.5 = 576 um^2).
    assert [(memory["depth"], memory["width"], memory["kind"], memory["macro"],
             memory["macro_count"]) for memory in hcu["memories"]] == [
        (8, 16, "macro", DEMO_MACRO, 1), (8, 16, "macro", DEMO_MACRO, 1)]
    assert hcu["macro_um2"] == 2 * DEMO_MACRO_UM2


def _check_wtu_memories_are_read_synchronously(result):
    # The WTU reads its lane memories ahead (hw/wtu/read_ahead.py): each is a macro, or a
    # register file only because it is too small for one, never for an asynchronous read.
    entry = {entry["name"]: entry for entry in result["blocks"]}["wtu"]
    memories = entry["area"]["memories"]
    assert memories and all(memory["sync_read"] for memory in memories)
    assert all(memory["kind"] == "macro" or memory["reason"].startswith("too small for a macro")
               for memory in memories)
    assert entry["area"]["macro_um2"] == pytest.approx(
        sum(memory["area_um2"] for memory in memories if memory["kind"] == "macro"))
    for item in entry["pdk"]["register_files"]:
        # At least one flip-flop per bit; the read mux and decoders come on top.
        assert item["area_um2"] >= item["depth"] * item["width"] * DEMO_FLIP_FLOP_UM2
        assert item["read_ns"] > 0 and item["clock_to_out_ns"] > 0 and item["setup_ns"] > 0


def _check_reports(result, out):
    assert json.loads((out / "report.json").read_text()) == json.loads(json.dumps(result))
    markdown = (out / "report.md").read_text()
    assert "## Silicon: static timing and area in the PDK" in markdown
    assert "### Register files" in markdown and DEMO_MACRO in markdown
    assert (out / "silicon.png").stat().st_size > 1000
    printed = "\n".join(report_module.summary_lines(report_module.load_report(out)))
    assert "silicon (demo, clock 6.0 ns, OpenSTA)" in printed


def test_run_without_pdk_says_what_it_cannot_report(tmp_path):
    result = flow.run_flow("tiny", tmp_path, blocks=["buffer"], fpga=False)
    entry, = result["blocks"]
    assert result["pdk"]["used"] is False and "PDK_ROOT unset" in result["pdk"]["note"]
    assert entry["timing"]["source"] == "generic gate levels"
    assert entry["timing"]["critical_path_ns"] is None and entry["timing"]["fmax_mhz"] is None
    assert entry["timing"]["logic_levels"] == entry["asic"]["generic"]["logic_levels"] > 0
    assert entry["area"]["total_um2"] is None and "no standard-cell" in entry["area"]["note"]
    assert result["totals"]["silicon"] is None
    assert "PDK_ROOT unset" in (tmp_path / "report.md").read_text()


# -- memories: the macro plan and its netlist ---------------------------------------------------

def _macro(words, bits, ports, area, name=None):
    return Macro(name=name or f"M{ports}P_{words}x{bits}", path=Path(f"{words}x{bits}.lib"),
                 words=words, bits=bits, ports=ports, area_um2=area,
                 pins=frozenset({"CLK", "ADDR", "DIN", "DOUT", "WEN", "REN", "MEN"}))


def _memory(depth, width, read_ports=1, write_ports=1, sync_read=True):
    return Memory("m", width, depth, read_ports, write_ports, sync_read, memid="\\\\m", abits=8)


def _never(memory, limit):
    raise AssertionError("the register-file area is not needed here")


def test_plan_takes_the_cheapest_tiling_with_enough_ports():
    macros = [_macro(16, 16, 2, 300.0), _macro(64, 32, 2, 1000.0), _macro(256, 8, 1, 50.0)]
    huge = lambda memory, limit: 1e9  # noqa: E731 (register files far larger than any macro)
    # 40 x 20, one read + one write port: needs 2 ports, so the 1P macro is out.
    # 16x16: ceil(40/16) = 3 deep x ceil(20/16) = 2 wide = 6 x 300 = 1800 um^2;
    # 64x32: 1 x 1 = 1000 um^2 -> the 64x32 macro.
    plan = sram.plan_memory(_memory(40, 20), macros, huge)
    assert (plan.kind, plan.macro.name, plan.macro_count, plan.area_um2) == (
        "macro", "M2P_64x32", 1, 1000.0)
    # Without the 64x32: 3 x 2 tiles of 16x16.
    plan = sram.plan_memory(_memory(40, 20), macros[:1], huge)
    assert (plan.depth_tiles, plan.width_tiles, plan.copies, plan.area_um2) == (3, 2, 1, 1800.0)
    # Two read ports and one write port: a copy per read port, 2 x 6 tiles.
    plan = sram.plan_memory(_memory(40, 20, read_ports=2), macros[:1], huge)
    assert (plan.copies, plan.macro_count, plan.area_um2) == (2, 12, 3600.0)


def test_plan_makes_register_files_and_says_why():
    macros = [_macro(16, 16, 2, 300.0)]
    plan = sram.plan_memory(_memory(8, 16, sync_read=False), macros, _never)
    assert plan.kind == "register_file" and "read asynchronously" in plan.reason
    assert plan.register_file == "vrex_rf_8x16_1r1w"
    plan = sram.plan_memory(_memory(8, 16, write_ports=0, sync_read=False), macros, _never)
    assert plan.kind == "logic" and plan.reason.startswith("a ROM")
    assert "ROM" not in sram.techmap_verilog([plan])  # left to memory_map: gates
    plan = sram.plan_memory(_memory(8, 16, write_ports=2), macros, _never)
    assert "2 write ports" in plan.reason
    plan = sram.plan_memory(_memory(8, 16), [_macro(16, 16, 1, 10.0)], _never)
    assert "no SRAM macro of the PDK has the ports" in plan.reason
    # A register file of 250 um^2 against a 300 um^2 macro: too small for a macro.
    plan = sram.plan_memory(_memory(8, 16), macros, lambda memory, limit: 250.0)
    assert plan.kind == "register_file" and plan.reason.startswith("too small for a macro")
    assert plan.alternatives == {"macro_um2": 300.0}


def test_macro_tiling_netlist_and_access_time(tmp_path):
    """A 40 x 20 clocked memory on the demo macro: 3 x 2 instances, timed from the macros."""
    workdir = _write_block(tmp_path, _MemoryBlock(40, 20))
    pdk = find_pdk(DEMO_PDK, corner="demo")
    result = run_silicon(workdir, "membank", "membank.il", "membank", pdk)
    macros = result["area"]["macros"]
    assert [(item["macro"], item["count"]) for item in macros] == [(DEMO_MACRO, 6)]
    assert result["area"]["macro_um2"] == 6 * DEMO_MACRO_UM2
    netlist = (workdir / "pdk" / "netlist.v").read_text()
    assert len(re.findall(rf"^\s*{DEMO_MACRO}\s", netlist, flags=re.M)) == 6
    # The read data leaves through the depth multiplexer: the output path starts at a macro
    # and takes at least its clock-to-DOUT.
    path = result["timing"]["classes"]["reg_to_out"]
    assert "macro" in path["startpoint"] and path["critical_path_ns"] >= DEMO_MACRO_ACCESS_NS
    assert path["stages"][1]["cell"] == DEMO_MACRO


def test_whole_word_write_enables_are_recognised():
    dump = """
  cell $mem_v2 \\word
    parameter \\MEMID "\\\\word"
    parameter \\WIDTH 3
    parameter \\SIZE 8
    parameter \\ABITS 3
    parameter \\RD_PORTS 1
    parameter \\WR_PORTS 1
    parameter \\RD_CLK_ENABLE 1'1
    connect \\WR_EN { \\en \\en \\en }
  end
  cell $mem_v2 \\bytes
    parameter \\MEMID "\\\\bytes"
    parameter \\WIDTH 3
    parameter \\SIZE 8
    parameter \\ABITS 3
    parameter \\RD_PORTS 1
    parameter \\WR_PORTS 1
    parameter \\RD_CLK_ENABLE 1'1
    connect \\WR_EN { \\en [1] \\en [1] \\en [0] }
  end
"""
    word, partial = parse_memories(dump)
    assert (word.word_write, word.memid, word.abits) == (True, "\\\\word", 3)
    assert partial.word_write is False
    macros = [_macro(16, 16, 2, 300.0)]
    huge = lambda memory, limit: 1e9  # noqa: E731
    word_map = sram.techmap_verilog([sram.plan_memory(word, macros, huge)])
    partial_map = sram.techmap_verilog([sram.plan_memory(partial, macros, huge)])
    assert "wire wen = WR_EN[0]" in word_map and "(|WR_EN[WIDTH-1:0])" in partial_map


def test_techmap_rejects_memories_without_memid():
    plan = sram.plan_memory(Memory("x", 8, 8, 1, 1, False), [], _never)
    with pytest.raises(ValueError, match="memory x has no MEMID"):
        sram.techmap_verilog([plan])


# -- register files, OpenSTA parsing, PDK discovery ---------------------------------------------

def test_register_file_model_is_a_liberty_cell(tmp_path):
    item = {"name": "vrex_rf_4x2_1r1w", "depth": 4, "width": 2, "read_ports": 1,
            "write_ports": 1, "area_um2": 55.5, "cells": 20, "read_ns": 0.3,
            "clock_to_out_ns": 0.2, "setup_ns": 0.1}
    path = tmp_path / "rf.lib"
    path.write_text(regfile.liberty_model([item]))
    assert [(name, area) for name, area, _, _ in liberty_cells(path)] == [
        ("vrex_rf_4x2_1r1w", 55.5)]
    text = path.read_text()
    assert 'values ("0.3000")' in text and 'related_pin : "RADDR"' in text
    assert "bit_width : 2" in text  # RADDR is 2 bits (4 words), RDATA 2 bits


SAMPLE_PATH = """Startpoint: _4395_ (rising edge-triggered flip-flop clocked by clk)
Endpoint: _4384_ (rising edge-triggered flip-flop clocked by clk)
Path Group: clk
Path Type: max

    Delay      Time   Description
-------------------------------------------------------------
   0.0000    0.0000   clock clk (rise edge)
   0.0000    0.0000   clock network delay (ideal)
   0.0000    0.0000 ^ _4395_/CLK (demo_dff_1)
   0.1204    0.1204 v _4395_/Q (demo_dff_1)
   0.0436    0.1640 ^ _3499_/Y (demo_inv_1)
   0.0455    0.2095 v _3500_/Y (demo_nor2_1)
   0.0000    0.2095 v _4384_/D (demo_dff_1)
             0.2095   data arrival time

   6.0000    6.0000   clock clk (rise edge)
   0.0000    6.0000   clock network delay (ideal)
   0.0000    6.0000   clock reconvergence pessimism
             6.0000 ^ _4384_/CLK (demo_dff_1)
  -0.0421    5.9579   library setup time
             5.9579   data required time
-------------------------------------------------------------
             5.9579   data required time
            -0.2095   data arrival time
-------------------------------------------------------------
             5.7484   slack (MET)
"""


def test_parse_path_of_an_opensta_report():
    # The shape of OpenSTA 2.0's report_checks output (trimmed from a demo-PDK run): launch
    # _4395_, two gates (_3499_, _3500_), capture _4384_; 6.0 - 5.7484 = 0.2516 ns.
    path = sta.parse_path(SAMPLE_PATH, 6.0)
    assert path["critical_path_ns"] == pytest.approx(0.2516)
    assert (path["startpoint"], path["endpoint"], path["logic_levels"]) == ("_4395_", "_4384_", 2)
    assert path["arrival_ns"] == pytest.approx(0.2095)
    assert [stage["cell"] for stage in path["stages"]] == ["demo_dff_1", "demo_dff_1",
                                                           "demo_inv_1", "demo_nor2_1",
                                                           "demo_dff_1"]
    assert sta.parse_path("No paths found.\n", 6.0) is None
    classes = {"reg_to_reg": path, "in_to_reg": None, "reg_to_out": None, "in_to_out": None}
    netlist = "  demo_dff_1 _4395_ (\n    .CLK(clk),\n    .D(x),\n    .Q(head[0])\n  );\n"
    sta.name_registers(classes, netlist)
    assert path["startpoint"] == "head[0] (_4395_)" and path["endpoint"] == "_4384_"
    summary = sta.summarise(classes)
    assert (summary["path_class"], summary["fmax_mhz"]) == ("reg_to_reg", round(1000 / 0.2516, 2))
    with pytest.raises(ValueError, match="lacks the path classes"):
        sta.parse_report("=== class reg_to_reg\nNo paths found.\n=== end\n", 6.0)


def test_find_pdk_and_its_errors(tmp_path):
    pdk = find_pdk(DEMO_PDK, corner="demo")
    assert pdk.stdcell.name == "sg13g2_stdcell_demo.lib"
    macro, = pdk.macros
    assert (macro.name, macro.words, macro.bits, macro.ports, macro.area_um2) == (
        DEMO_MACRO, 16, 16, 2, 300.0)
    with pytest.raises(ValueError, match="PDK_ROOT must be a folder"):
        find_pdk(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="has no standard-cell liberty for corner 'typ_1p20V_25C'"):
        find_pdk(tmp_path)
    with pytest.raises(ValueError, match="corner must be a liberty corner name"):
        find_pdk(DEMO_PDK, corner="../x")
    broken = tmp_path / "RM_broken.lib"
    broken.write_text("library (x) { cell (RM_broken) { area : 5; pin (A_CLK) { } } }")
    with pytest.raises(ValueError, match=r"RM_broken\.lib: missing 'memory.address_width'"):
        parse_macro(broken)


def test_flow_rejects_bad_silicon_arguments(tmp_path):
    with pytest.raises(ValueError, match=r"clock_ns must be in \(0, 1000\] ns"):
        flow.run_flow("tiny", tmp_path, clock_ns=0)
    with pytest.raises(TypeError, match="clock_ns must be a number of nanoseconds"):
        flow.run_flow("tiny", tmp_path, clock_ns="6")
    with pytest.raises(ValueError, match="PDK_ROOT must be a folder"):
        flow.run_flow("tiny", tmp_path, pdk_root=tmp_path / "nowhere")
    assert flow.main(["--config", "tiny", "--pdk-root", str(tmp_path / "nowhere"),
                      "--out", str(tmp_path)]) == 2


# -- the real PDK (PDK_ROOT) --------------------------------------------------------------------

@pytest.mark.pdk
def test_real_pdk_on_tiny_blocks(tmp_path):
    """IHP SG13G2 typical corner: the tiny HCU and buffer timed, the HCU tables as flip-flops."""
    result = flow.run_flow("tiny", tmp_path, blocks=["hcu", "buffer"], fpga=False,
                           pdk_root=_pdk_root(), jobs=2)
    assert result["pdk"]["corner"] == "typ_1p20V_25C"
    assert {"RM_IHPSG13_2P_64x22_c2", "RM_IHPSG13_1P_8192x32_c4"} <= {
        macro["name"] for macro in result["pdk"]["macros"]}
    for entry in result["blocks"]:
        assert entry["status"] == "ok", entry["errors"]
        assert entry["timing"]["source"] == "OpenSTA" and entry["timing"]["fmax_mhz"] > 0
    hcu = result["blocks"][0]["area"]
    # Two 8 x 16 tables: 128 flip-flops are far smaller than IHP's smallest two-port macro
    # (RM_IHPSG13_2P_64x22_c2, 39,383.9 um^2 in its liberty).
    for memory in hcu["memories"]:
        assert memory["kind"] == "register_file" and "too small for a macro" in memory["reason"]
        assert "RM_IHPSG13_2P_64x22_c2" in memory["reason"]


@pytest.mark.pdk
def test_real_pdk_macro_access_time(tmp_path):
    """A 64 x 22 clocked memory becomes IHP's 2P 64x22 macro; its output path starts there."""
    workdir = _write_block(tmp_path, _MemoryBlock(64, 22))
    result = run_silicon(workdir, "membank", "membank.il", "membank", find_pdk(_pdk_root()))
    assert [(item["macro"], item["count"]) for item in result["area"]["macros"]] == [
        ("RM_IHPSG13_2P_64x22_c2", 1)]
    assert result["area"]["macro_um2"] == pytest.approx(39383.9, abs=0.1)
    path = result["timing"]["classes"]["reg_to_out"]
    assert path["stages"][1]["cell"] == "RM_IHPSG13_2P_64x22_c2"
    assert path["stages"][1]["incr_ns"] > 0.5  # a macro access, not a flip-flop's 0.1-0.3 ns
