"""The longest register-to-register paths of an ECP5 netlist, ranked before place and route.

nextpnr itemises a critical path only after routing; a design that does not route (the edge
WTU, the DRE top, the sorter baseline) gets an fmax estimate after placement and no path. This
module reads the netlist Yosys writes for nextpnr (``pnr_ecp5/top.json`` under the flow's work
folder) and ranks its paths with a first-order delay model: each cell's intrinsic delay and a
flat routing estimate per net, from the figures nextpnr reports for routed paths of this
project on the ULX3S-85F (speed grade 6). It names which registers and memories the long paths
join, for a designer deciding where a register goes; its nanoseconds rank paths, they are not
a timing report (nextpnr's estimate after placement is the figure to quote).

With the netlist nextpnr writes after its placement (``--placement``; the flow's
placement-only runs keep it as ``top_placed.json``), each net's routing is nextpnr's own
estimate before routing for the distance between the two placed cells
(:func:`placed_net_ns`) instead of the flat figure: the ranking then names the path that
bounds nextpnr's estimate after placement, with the wires the placement gave it.

Run ``python -m synth.netlist_paths build/reports/work/edge/wtu/pnr_ecp5/top.json``.
"""

import argparse
import collections
import json
import re
import sys
from pathlib import Path

__all__ = ["DELAYS", "ROUTING_NS", "IN_SLICE_NS", "PLACED_TILE_NS", "placed_net_ns",
           "placed_locations", "rank_paths", "main"]

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

#: nextpnr's ECP5 estimate of a net before routing (``Arch::predictDelay`` of nextpnr 0.11,
#: speed grade 6: 80 ps), ns per unit of :func:`placed_net_ns`'s distance.
PLACED_TILE_NS = 0.08

_CLOCK_PORTS = {"CLK", "CLKA", "CLKB", "WCK"}

#: The tile of a placed cell in nextpnr's ``NEXTPNR_BEL`` attribute (``X28/Y9/SLICEB.K0``).
_BEL_TILE = re.compile(r"^X(\d+)/Y(\d+)/")

#: The cells of a slice, whose nets within one tile nextpnr counts as direct connections.
_SLICE_CELLS = {"LUT4", "PFUMX", "L6MUX21", "TRELLIS_FF"}

#: What nextpnr's packer appends to the name of a cell it splits (a CCU2C into two slices).
_PACKED_SUFFIX = re.compile(r"\$CCU2_COMB\d+$")


def placed_net_ns(source, sink, local=False):
    """nextpnr's estimate of a net from tile ``source`` to tile ``sink`` before routing:
    :data:`PLACED_TILE_NS` x (6 + 2 min(dx, 5) + 2 min(dy, 5) + max(dx - 5, 0) + max(dy - 5, 0))
    for the distances in tiles (its ECP5 ``predictDelay``: the first five tiles of each
    direction count double, as the short wires they take are slower per tile); 0 for a
    ``local`` net (a LUT into a LUT or a flip-flop, or a flip-flop into a LUT) within one tile,
    which nextpnr counts as the slices' direct connections."""
    if local and source == sink:
        return 0.0
    dx, dy = abs(source[0] - sink[0]), abs(source[1] - sink[1])
    return PLACED_TILE_NS * (6 + 2 * (min(dx, 5) + min(dy, 5))
                             + max(dx - 5, 0) + max(dy - 5, 0))


def placed_locations(path, top="top"):
    """Cell name -> ``(x, y)`` tile, from the netlist nextpnr writes after placement
    (``--write``): its cells keep the names Yosys gave them, a carry cell split in two slices
    is named after the first (the names of the PFUMX and L6MUX21 cells, packed into the
    slice of their LUTs, are gone: :func:`rank_paths` places them with their inputs).

    Raises
    ------
    ValueError
        If the file cannot be read, is not a JSON netlist, or no cell of it is placed.
    """
    locations = {}
    for name, cell in _load(path, top).get("cells", {}).items():
        match = _BEL_TILE.match(str(cell.get("attributes", {}).get("NEXTPNR_BEL", "")))
        if match:
            locations.setdefault(_PACKED_SUFFIX.sub("", name),
                                 (int(match.group(1)), int(match.group(2))))
    if not locations:
        raise ValueError(f"{path}: no cell has a NEXTPNR_BEL attribute: not a netlist nextpnr "
                         "wrote after placement")
    return locations


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


def _arc(cell_type, in_port, source_type, routing=ROUTING_NS):
    """(routing, intrinsic) delay of an input-to-output arc of a combinational cell; ``routing``
    is the net's (flat, or from the placement)."""
    if cell_type == "CCU2C" and in_port == "CIN":
        return 0.0, DELAYS["CCU2C.CIN"]
    if cell_type in ("PFUMX", "L6MUX21") and source_type in ("LUT4", "PFUMX"):
        return IN_SLICE_NS, DELAYS[cell_type]
    return routing, DELAYS.get(cell_type, DELAYS["LUT4"])


def rank_paths(path, top="top", count=20, placement=None):
    """The longest paths of the netlist, one per (start, end) pair of signal names.

    Parameters
    ----------
    path : str or pathlib.Path
        A Yosys JSON netlist mapped to ECP5 cells (``synth_ecp5``; ``write_json``).
    top : str
        The module to rank.
    count : int
        How many paths to return (the longest first).
    placement : str or pathlib.Path, optional
        The netlist nextpnr wrote after placing this one (:func:`placed_locations`): each
        net's routing is then :func:`placed_net_ns` between its two cells (a cell found in
        neither netlist keeps the flat :data:`ROUTING_NS`).

    Returns
    -------
    list of dict
        ``ns`` (estimated arrival at the endpoint), ``start`` and ``end`` (net names),
        ``end_cell`` (type and port), ``stages``: ``(arrival_ns, cell_type, net)`` from the
        start.

    Raises
    ------
    ValueError
        If a file cannot be read, is not a Yosys JSON netlist, or has no module ``top``.
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
    locations = {} if placement is None else placed_locations(placement, top)

    def location(cell_name):
        # A cell the packer merged into another's slice (PFUMX, L6MUX21) sits with the
        # cell driving its first input.
        while (cell_name not in locations and cell_name in cells
               and cells[cell_name]["type"] in ("PFUMX", "L6MUX21")):
            inputs = [b for port, bits in sorted(cells[cell_name]["connections"].items())
                      if cells[cell_name]["port_directions"].get(port) == "input"
                      for b in bits if isinstance(b, int) and b in driver]
            if not inputs:
                return None
            cell_name = driver[inputs[0]][0]
        return locations.get(cell_name)

    def routing(bit, sink_cell):
        if not locations:
            return ROUTING_NS
        source, sink = location(driver[bit][0]) if bit in driver else None, location(sink_cell)
        if source is None or sink is None:
            return ROUTING_NS
        types = {cells[driver[bit][0]]["type"], cells[sink_cell]["type"]}
        return placed_net_ns(source, sink, local=types <= _SLICE_CELLS)

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
                net_ns, intrinsic = _arc(cell["type"], port, source, routing(b, driver[bit][0]))
                best = max(best, (arrival[b][0] + net_ns + intrinsic, b),
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
                    endpoints.append((arrival[bit][0] + routing(bit, cell_name), cell["type"],
                                      port, bit))
    endpoints.sort(key=lambda item: -item[0])
    ranked, seen = [], set()
    for ns, cell_type, port, bit in endpoints:
        path_bits = _path_bits(arrival, bit)
        stages = [(round(arrival[b][0], 3), cells[driver[b][0]]["type"] if b in driver else "input",
                   names.get(b, f"bit {b}")) for b in path_bits]
        start, end = stages[0][2], names.get(bit, f"bit {bit}")
        key = (_signal_class(start), _signal_class(end))
        if key in seen:
            continue
        seen.add(key)
        entry = {"ns": round(ns, 3), "start": start, "end": end,
                 "end_cell": f"{cell_type}.{port}", "stages": stages}
        if locations:
            entry["tiles"] = [location(driver[b][0]) if b in driver else None for b in path_bits]
        ranked.append(entry)
        if len(ranked) == count:
            break
    return ranked


def _path_bits(arrival, bit):
    """The bits of the longest path into ``bit``, from its start."""
    bits = []
    while bit is not None:
        bits.append(bit)
        bit = arrival[bit][1]
    return bits[::-1]


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
    parser.add_argument("--placement", metavar="PLACED_JSON",
                        help="the netlist nextpnr wrote after placing this one (--write; the "
                             "flow's placement-only runs: top_placed.json): each net's routing "
                             "from the distance between its placed cells")
    args = parser.parse_args(argv)
    try:
        ranked = rank_paths(args.netlist, args.top, args.count, args.placement)
    except ValueError as error:
        parser.exit(2, f"error: {error}\n")
    counts = collections.Counter(stage[1] for item in ranked[:1] for stage in item["stages"])
    routing = (f"routing from the placement {args.placement}" if args.placement
               else f"{ROUTING_NS} ns of routing per net")
    print(f"{len(ranked)} longest paths of {args.netlist} (estimated ns, {routing}; levels: "
          f"cells on the path; the first path's cells: {dict(counts)})")
    for item in ranked:
        print(f"{item['ns']:7.2f} ns {len(item['stages']):3d} levels  {item['start']}  ->  "
              f"{item['end']} ({item['end_cell']})")
        if args.stages:
            tiles = item.get("tiles", [None] * len(item["stages"]))
            for (ns, cell_type, net), tile in zip(item["stages"], tiles):
                where = "" if tile is None else f"X{tile[0]}/Y{tile[1]}"
                print(f"        {ns:7.2f} {cell_type:16s} {where:9s} {net}")


if __name__ == "__main__":
    sys.exit(main())
