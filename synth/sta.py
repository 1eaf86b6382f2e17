"""Static timing with OpenSTA (binary ``sta``, Debian package ``opensta``), and its report parsed.

:func:`run_sta` times a netlist mapped to the standard cells (macros and register files as
cells) against one clock of ``period_ns``, ideal (no clock tree). The block's ports are timed as
if registered outside the block at no cost: inputs arrive at the clock edge (input delay 0 on a
virtual clock ``inputs``), outputs are captured at the next edge (output delay 0 on a virtual
clock ``outputs``); the three clocks have the same period and edge, so a path between two of
them is one cycle. The clock pairs split the paths into four **path classes**:

=================  =============  =======================================================
class              clocks         paths
=================  =============  =======================================================
``reg_to_reg``     clk -> clk     flip-flop or macro to flip-flop or macro (inside)
``in_to_reg``      inputs -> clk  input port to flip-flop or macro
``reg_to_out``     clk -> outputs flip-flop or macro to output port
``in_to_out``      inputs ->      combinational through the block
                   outputs
=================  =============  =======================================================

For each class :func:`parse_path` reads the worst path (``report_checks -path_delay max``): its
slack, start and end points, and its stages (each cell output on the way, with its incremental
delay). The **critical path** of a class is ``period - slack``, the shortest clock period at
which it meets setup (it includes the launching flip-flop's clock-to-output or the macro's
access time, and the capturing setup time); its ``logic_levels`` are the cells between the
launching and the capturing element. The block's critical path is the worst class, its fmax
``1000 / critical_path_ns`` MHz.
"""

import re
import shutil
import time
from pathlib import Path

from synth.tools import ToolError, run_script

__all__ = ["PATH_CLASSES", "sta_binary", "sta_script", "parse_path", "parse_report", "run_sta",
           "summarise", "name_registers"]

#: Path class -> (launching clock, capturing clock).
PATH_CLASSES = {"reg_to_reg": ("clk", "clk"), "in_to_reg": ("inputs", "clk"),
                "reg_to_out": ("clk", "outputs"), "in_to_out": ("inputs", "outputs")}

_INSTALL = ("OpenSTA (binary `sta`) is needed for static timing: install it with "
            "`sudo apt-get install opensta`")


def sta_binary():
    """The path of OpenSTA's ``sta``.

    Raises
    ------
    ToolError
        If it is not installed (the message says how to install it).
    """
    found = shutil.which("sta")
    if found is None:
        raise ToolError(_INSTALL)
    return found


def sta_script(liberties, netlist, top, period_ns, clock_port="clk", report="sta_report.txt"):
    """The OpenSTA Tcl script: read, link, constrain, report each path class into ``report``."""
    lines = [f"read_liberty {path}" for path in liberties]
    lines += [f"read_verilog {netlist}", f"link_design {top}",
              f"create_clock -name clk -period {period_ns} [get_ports {clock_port}]",
              f"create_clock -name inputs -period {period_ns}",
              f"create_clock -name outputs -period {period_ns}",
              f"set data_inputs [delete_from_list [all_inputs] [get_ports {clock_port}]]",
              "if {[llength $data_inputs] > 0} { set_input_delay 0 -clock inputs $data_inputs }",
              "set_output_delay 0 -clock outputs [all_outputs]",
              f"set out [open {report} w]"]
    for name, (start, end) in PATH_CLASSES.items():
        lines += [f'puts $out "=== class {name}"', "sta::redirect_string_begin",
                  f"report_checks -path_delay max -from [get_clocks {start}] "
                  f"-to [get_clocks {end}] -format full -digits 4",
                  "puts $out [sta::redirect_string_end]"]
    lines += ['puts $out "=== end"', "close $out", "exit"]
    return "\n".join(lines) + "\n"


_STAGE = re.compile(r"^\s*(-?\d+\.\d+)\s+(-?\d+\.\d+)\s+([\^v])\s+(\S+)\s+\(([^)]+)\)\s*$")


def parse_path(text, period_ns):
    """The worst path of one ``report_checks`` output, or None when it says no paths.

    Returns
    -------
    dict
        ``critical_path_ns`` (period - slack), ``slack_ns``, ``arrival_ns``, ``startpoint``,
        ``endpoint``, ``logic_levels``, ``stages`` (list of ``{pin, cell, incr_ns, time_ns}``).

    Raises
    ------
    ValueError
        If the text is a path report without a slack or a start/end point.
    """
    if "No paths found" in text or "Startpoint" not in text:
        return None
    start = re.search(r"Startpoint:\s*(\S+)", text)
    end = re.search(r"Endpoint:\s*(\S+)", text)
    slack = re.search(r"^\s*(-?\d+\.\d+)\s+slack\s", text, flags=re.M)
    arrival = re.search(r"^\s*(-?\d+\.\d+)\s+data arrival time", text, flags=re.M)
    if not (start and end and slack and arrival):
        raise ValueError("OpenSTA path report without startpoint, endpoint, slack or arrival")
    body = text[:arrival.start()]
    stages = []
    for line in body.splitlines():
        match = _STAGE.match(line)
        if match:
            stages.append({"pin": match.group(4), "cell": match.group(5),
                           "incr_ns": float(match.group(1)), "time_ns": float(match.group(2))})
    startpoint, endpoint = start.group(1), end.group(1)
    # The launching element (first stage) and the capturing one (last stage) are not levels;
    # a port stage (``name (in)``, ``name (out)``) has no ``/`` and is not a cell.
    launch = stages[0]["pin"].rsplit("/", 1)[0] if stages else None
    capture = stages[-1]["pin"].rsplit("/", 1)[0] if stages else None
    levels = len({stage["pin"].rsplit("/", 1)[0] for stage in stages
                  if "/" in stage["pin"]} - {launch, capture})
    slack_ns = float(slack.group(1))
    return {"critical_path_ns": round(period_ns - slack_ns, 4), "slack_ns": slack_ns,
            "arrival_ns": float(arrival.group(1)), "startpoint": startpoint,
            "endpoint": endpoint, "logic_levels": levels, "stages": stages}


def parse_report(text, period_ns):
    """Path class -> :func:`parse_path` result (or None) of a :func:`sta_script` report."""
    sections = re.split(r"^=== class (\w+)\s*$", text.split("=== end")[0], flags=re.M)
    found = dict(zip(sections[1::2], sections[2::2]))
    missing = [name for name in PATH_CLASSES if name not in found]
    if missing:
        raise ValueError(f"OpenSTA report lacks the path classes {', '.join(missing)}")
    return {name: parse_path(found[name], period_ns) for name in PATH_CLASSES}


def name_registers(classes, netlist_text):
    """Add the signal a flip-flop holds to its anonymous start or end point, in place.

    Yosys names mapped flip-flops ``_123_``; the net on their ``Q`` pin keeps the design's
    name. A start or end point that is such an instance becomes ``"head[0] (_123_)"``.
    """
    outputs = dict(re.findall(r"^\s*\w+\s+(\S+)\s*\((?:[^;]*?)\.Q\(([^()]+)\)", netlist_text,
                              flags=re.M | re.S))
    for path in classes.values():
        if path is None:
            continue
        for key in ("startpoint", "endpoint"):
            held = outputs.get(path[key])
            if held is not None:
                path[key] = f"{held.strip()} ({path[key]})"
    return classes


def summarise(classes):
    """The block's ``timing`` entry: the worst class, its fmax, and every class."""
    timed = {name: path for name, path in classes.items() if path is not None}
    if not timed:
        return {"critical_path_ns": None, "fmax_mhz": None, "startpoint": None,
                "endpoint": None, "logic_levels": None, "path_class": None,
                "classes": classes}
    name, worst = max(timed.items(), key=lambda item: item[1]["critical_path_ns"])
    period = worst["critical_path_ns"]
    return {"critical_path_ns": period,
            "fmax_mhz": round(1000.0 / period, 2) if period > 0 else None,
            "startpoint": worst["startpoint"], "endpoint": worst["endpoint"],
            "logic_levels": worst["logic_levels"], "path_class": name, "classes": classes}


def run_sta(workdir, liberties, netlist, top, period_ns, label, clock_port="clk", timeout=1200):
    """Run OpenSTA in ``workdir`` on ``netlist``; returns (path classes, seconds).

    Paths are written relative to ``workdir``. Raises :class:`ToolError` when ``sta`` is
    missing, fails or writes no complete report.
    """
    workdir = Path(workdir)
    script = sta_script([str(path) for path in liberties], netlist, top, period_ns, clock_port)
    (workdir / "sta.tcl").write_text(script)
    report = workdir / "sta_report.txt"
    report.unlink(missing_ok=True)
    log = workdir / "sta.log"
    start = time.monotonic()
    run_script([sta_binary(), "-no_init", "-no_splash", "-exit", "sta.tcl"], workdir, log,
               label, timeout)
    if not report.is_file() or "=== end" not in report.read_text():
        raise ToolError(f"{label}: OpenSTA wrote no complete report "
                        f"(console: {workdir / 'sta.console'})")
    try:
        classes = parse_report(report.read_text(), period_ns)
    except ValueError as error:
        raise ToolError(f"{label}: {error} ({report})") from error
    return classes, time.monotonic() - start
