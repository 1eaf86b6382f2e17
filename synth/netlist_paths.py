"""The longest register-to-register paths of an ECP5 netlist, ranked before place and route.

nextpnr itemises a critical path only after routing; a design that does not route (the edge
WTU, the DRE top, the sorter baseline) gets an fmax estimate after placement and no path. This
module reads the netlist Yosys writes for nextpnr (``pnr_ecp5/top.json`` under the flow's work
folder) and ranks its paths with a first-order delay model: each cell's intrinsic delay and a
flat routing estimate per net, from the figures nextpnr reports for routed paths of this
project on the ULX3S-85F (speed grade 6). It names which registers and memories the long paths
join, for a designer deciding where a register goes; its nanoseconds rank paths, they are not
a timing report (nextpnr's estimate after placement is the figure to quote).

Run ``python -m synth.netlist_paths build/reports/work/edge/wtu/pnr_ecp5/top.json``.
"""

import argparse
import collections
import json
import re
import sys
from pathlib import Path

__all__ = ["DELAYS", "ROUTING_NS", "IN_SLICE_NS", "rank_paths", "main"]

#: Nanoseconds from a cell's inputs (or clock) to its output, ECP5 speed grade 6, as nextpnr
#: reports them in routed critical paths of this project: a flip-flop's clock-to-output 0.52, a
#: LUT4 0.24, a PFUMX or L6MUX21 0.26 (``.OFX``); a DP16KD block RAM's clock-to-output 5.83 (a
#: 1024 x 16 memory read into a register, no output register, routed alone); a carry cell 0.5
#: through its inputs and 0.06 along the chain (``CIN``). A MULT18X18D is taken as registered.
DELAYS = {"TRELLIS_FF": 0.52, "LUT4": 0.24, "PFUMX": 0.26, "L6MUX21": 0.26, "DP16KD": 5.83,
          "CCU2C": 0.5, "CCU2C.CIN": 0.06, "MULT18X18D": 0.52, "TRELLIS_DPR16X4": 0.5}

#: Cells whose outputs start a path (clocked outputs) and whose inputs end one.
CLOCKED = ("TRELLIS_FF", "DP16KD", "MULT18X18D")

#: Routing estimate per net, ns (the routed HCU's critical path: 0.46 to 1.48 per net, 0.87 on
#: average).
ROUTING_NS = 0.9

#: Routing from a LUT4 or PFUMX into the PFUMX or L6MUX21 beside it (the slice's own wires).
IN_SLICE_NS = 0.1

_CLOCK_PORTS = {"CLK", "CLKA", "CLKB", "WCK"}


def _load(path, top):
    path = Path(path)
    try:
        netlist = json.loads(path.read_text())
    except OSError as error:
        raise ValueError(f"{path}: cannot be read ({error.strerror})") from None
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not a JSON netlist ({error})") from None
    modules = netlist.get("modules") if isinstance(netlist, dict) else None
    if not isinstance(modules, dict):
        raise ValueError(f"{path}: no 'modules' key: not a Yosys JSON netlist")
    if top not in modules:
        raise ValueError(f"{path}: no module {top!r} under 'modules' "
                         f"(modules with cells: {sorted(n for n, m in modules.items() if m.get('cells'))[:5]})")
    return modules[top]


def _net_names(module):
    """Bit -> the most readable name of its net (a named net before a generated ``$`` one)."""
    names = {}
    for name, net in module.get("netnames", {}).items():
        for bit in net["bits"]:
            if isinstance(bit, int):
                old = names.get(bit)
                if old is None or (old.startswith("$"), len(old)) > (name.startswith("$"),
                                                                     len(name)):
                    names[bit] = name
    return names


def _arc(cell_type, in_port, source_type):
    """(routing, intrinsic) delay of an input-to-output arc of a combinational cell."""
    if cell_type == "CCU2C" and in_port == "CIN":
        return 0.0, DELAYS["CCU2C.CIN"]
    if cell_type in ("PFUMX", "L6MUX21") and source_type in ("LUT4", "PFUMX"):
        return IN_SLICE_NS, DELAYS[cell_type]
    return ROUTING_NS, DELAYS.get(cell_type, DELAYS["LUT4"])


def rank_paths(path, top="top", count=20):
    """The longest paths of the netlist, one per (start, end) pair of signal names.

    Parameters
    ----------
    path : str or pathlib.Path
        A Yosys JSON netlist mapped to ECP5 cells (``synth_ecp5``; ``write_json``).
    top : str
        The module to rank.
    count : int
        How many paths to return (the longest first).

    Returns
    -------
    list of dict
        ``ns`` (estimated arrival at the endpoint), ``start`` and ``end`` (net names),
        ``end_cell`` (type and port), ``stages``: ``(arrival_ns, cell_type, net)`` from the
        start.

    Raises
    ------
    ValueError
        If the file cannot be read, is not a Yosys JSON netlist, or has no module ``top``.
    """
    if not isinstance(count, int) or count < 1:
        raise ValueError(f"count must be a positive integer, not {count!r}")
    module = _load(path, top)
    cells = module.get("cells", {})
    names = _net_names(module)
    driver = {}
    for cell_name, cell in cells.items():
        for port, bits in cell["connections"].items():
            if cell.get("port_directions", {}).get(port) == "output":
                for bit in bits:
                    if isinstance(bit, int):
                        driver[bit] = (cell_name, port)
    arrival = {}   # bit -> (ns, predecessor bit)

    def arrive(root):
        # Depth-first without recursion: a netlist of 10^5 cells nests deeper than Python's
        # call stack allows.
        stack = [root]
        while stack:
            bit = stack[-1]
            if bit in arrival:
                stack.pop()
                continue
            cell_name = driver.get(bit, (None,))[0]
            cell = cells.get(cell_name)
            if cell is None or cell["type"] in CLOCKED:
                arrival[bit] = (DELAYS.get(cell["type"], 0.0) if cell else 0.0, None)
                stack.pop()
                continue
            inputs = [(port, b) for port, bits in cell["connections"].items()
                      if cell["port_directions"].get(port) == "input"
                      for b in bits if isinstance(b, int)]
            pending = [b for _, b in inputs if b not in arrival and b not in stack]
            if pending:
                stack.extend(pending)
                continue
            best = (0.0, None)
            for port, b in inputs:
                if b not in arrival:    # a combinational loop: ignore the back edge
                    continue
                source = cells[driver[b][0]]["type"] if b in driver else None
                routing, intrinsic = _arc(cell["type"], port, source)
                best = max(best, (arrival[b][0] + routing + intrinsic, b),
                           key=lambda item: item[0])
            arrival[bit] = best
            stack.pop()

    endpoints = []
    for cell_name, cell in cells.items():
        if cell["type"] not in CLOCKED:
            continue
        for port, bits in cell["connections"].items():
            if cell["port_directions"].get(port) != "input" or port in _CLOCK_PORTS:
                continue
            for bit in bits:
                if isinstance(bit, int) and bit in driver:
                    arrive(bit)
                    endpoints.append((arrival[bit][0] + ROUTING_NS, cell["type"], port, bit))
    endpoints.sort(key=lambda item: -item[0])
    ranked, seen = [], set()
    for ns, cell_type, port, bit in endpoints:
        stages, b = [], bit
        while b is not None:
            stages.append((round(arrival[b][0], 3),
                           cells[driver[b][0]]["type"] if b in driver else "input",
                           names.get(b, f"bit {b}")))
            b = arrival[b][1]
        stages.reverse()
        start, end = stages[0][2], names.get(bit, f"bit {bit}")
        key = (_signal_class(start), _signal_class(end))
        if key in seen:
            continue
        seen.add(key)
        ranked.append({"ns": round(ns, 3), "start": start, "end": end,
                       "end_cell": f"{cell_type}.{port}", "stages": stages})
        if len(ranked) == count:
            break
    return ranked


#: Where the name of a net that Yosys or nextpnr derived from a cell's ports begins
#: (``memories2.score$47.0.0_DOB13_TRELLIS_FF_Q_DI``: the memory ``memories2.score``).
_GENERATED_SUFFIX = re.compile(r"\$|\[|_(?:TRELLIS|LUT4|PFUMX|L6MUX21|CCU2C|DO[AB]?\d|AD[AB]\d)")


def _signal_class(name):
    """The signal a net belongs to, with numbered copies merged (``lists3.next.0.0_DOB7`` ->
    ``lists#.next.#.#``)."""
    return re.sub(r"\d+", "#", _GENERATED_SUFFIX.split(name)[0])


def main(argv=None):
    """Command line: print the ranked paths of a netlist."""
    parser = argparse.ArgumentParser(
        prog="python -m synth.netlist_paths",
        description="Rank the longest register-to-register paths of a Yosys ECP5 netlist "
                    "(first-order delays; for designs nextpnr cannot route).")
    parser.add_argument("netlist", help="Yosys JSON netlist (e.g. build/reports/work/edge/"
                                        "wtu/pnr_ecp5/top.json)")
    parser.add_argument("--top", default="top", help="module name (default: top)")
    parser.add_argument("--count", type=int, default=10, help="paths to print (default: 10)")
    parser.add_argument("--stages", action="store_true", help="print every stage of each path")
    args = parser.parse_args(argv)
    try:
        ranked = rank_paths(args.netlist, args.top, args.count)
    except ValueError as error:
        parser.exit(2, f"error: {error}\n")
    counts = collections.Counter(stage[1] for item in ranked[:1] for stage in item["stages"])
    print(f"{len(ranked)} longest paths of {args.netlist} (estimated ns; levels: cells on the "
          f"path; the first path's cells: {dict(counts)})")
    for item in ranked:
        print(f"{item['ns']:7.2f} ns {len(item['stages']):3d} levels  {item['start']}  ->  "
              f"{item['end']} ({item['end_cell']})")
        if args.stages:
            for ns, cell_type, net in item["stages"]:
                print(f"        {ns:7.2f} {cell_type:16s} {net}")


if __name__ == "__main__":
    sys.exit(main())
