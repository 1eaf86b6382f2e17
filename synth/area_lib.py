"""The project's own area model: NAND2 gate equivalents, memory bits, and the 14 nm scaling.

Gate counts from Yosys are only comparable between designs once weighted by cell size. The
weights live in ``synth/nand2_areas.json`` (areas relative to a 2-input NAND, with the library
they come from), together with the memory model (SRAM bits at a bit-cell area and array
efficiency, never flip-flops) and the constants of the first-order 14 nm estimate that lets a
report stand beside the paper's Table III. Keeping them in a data file means a reader can check
every number's source in one place.
"""

import functools
import gzip
import json
import re
from pathlib import Path

__all__ = ["area_table", "gate_equivalents", "memory_ge_per_bit", "liberty_cells",
           "liberty_nand2_area", "parse_memories", "Memory"]

_TABLE_PATH = Path(__file__).with_name("nand2_areas.json")


@functools.lru_cache(maxsize=1)
def area_table():
    """The parsed ``nand2_areas.json`` (gate weights, memory model, 14 nm constants)."""
    return json.loads(_TABLE_PATH.read_text())


def gate_equivalents(cells_by_type):
    """NAND2 gate equivalents of a generic-gate netlist.

    Parameters
    ----------
    cells_by_type : dict
        Yosys cell type -> count (from ``stat -json``), memories excluded.

    Returns
    -------
    ge : float
        Total gate equivalents.
    unknown : list of str
        Cell types the table does not weigh (counted as 0 GE); a correct flow leaves none.
    """
    gates = area_table()["gates"]
    total = 0.0
    unknown = []
    for cell_type, count in cells_by_type.items():
        if cell_type in gates:
            total += gates[cell_type]["ge"] * count
        else:
            unknown.append(cell_type)
    return total, sorted(unknown)


def memory_ge_per_bit():
    """GE of one memory bit: bit-cell area / array efficiency / NAND2 area, all at 14 nm."""
    table = area_table()
    memory = table["memory"]
    return memory["bitcell_um2_14nm"] / memory["array_efficiency"] / table["node_14nm"]["nand2_um2"]


def _read_liberty(path):
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", errors="replace") as handle:
        return handle.read()


def liberty_cells(path):
    """``(name, area or None, output functions, flip-flop?)`` of every cell of a liberty file."""
    text = _read_liberty(path)
    matches = list(re.finditer(r"\bcell\s*\(\s*\"?([\w$.]+)\"?\s*\)\s*\{", text))
    for match, following in zip(matches, matches[1:] + [None]):
        body = text[match.end():following.start() if following else len(text)]
        area = re.search(r"\barea\s*:\s*([0-9.eE+-]+)", body)
        functions = re.findall(r"\bfunction\s*:\s*\"([^\"]+)\"", body)
        flip_flop = re.search(r"\bff\s*\(", body) is not None
        yield match.group(1), float(area.group(1)) if area else None, functions, flip_flop


def liberty_nand2_area(path):
    """Area of the smallest 2-input NAND cell of a liberty file (its GE unit), and its name.

    A NAND2 is a cell with inputs ``A``/``B`` (any two pins) and one output whose ``function`` is
    the negated AND of the two inputs.

    Raises
    ------
    ValueError
        If the file has no 2-input NAND cell with an area.
    """
    best = None
    for name, value, functions, _ in liberty_cells(path):
        if value is not None and len(functions) == 1 and _is_nand2(functions[0]):
            if best is None or value < best[0]:
                best = (value, name)
    if best is None:
        raise ValueError(f"liberty file {path} has no 2-input NAND cell with an area")
    return best


def _is_nand2(function):
    expression = function.replace(" ", "")
    pins = re.findall(r"[A-Za-z_]\w*", expression)
    if len(set(pins)) != 2:
        return False
    first, second = sorted(set(pins))
    forms = {f"!({a}&{b})" for a, b in ((first, second), (second, first))}
    forms |= {f"!({a}*{b})" for a, b in ((first, second), (second, first))}
    forms |= {f"({a}*{b})'" for a, b in ((first, second), (second, first))}
    forms |= {f"({a}&{b})'" for a, b in ((first, second), (second, first))}
    forms |= {f"!{a}+!{b}" for a, b in ((first, second), (second, first))}
    forms |= {f"!{a}|!{b}" for a, b in ((first, second), (second, first))}
    return expression in forms


class Memory:
    """One memory of a block: its name, width, depth and ports (from a Yosys ``$mem_v2`` cell).

    ``sync_read`` is true when every read port is clocked (``RD_CLK_ENABLE`` all ones): such a
    memory maps to SRAM macros and FPGA block RAM; one with asynchronous reads becomes a
    register file or latch array on a chip and LUT RAM on an FPGA, so the SRAM-bit model is an
    optimistic estimate for it.
    """

    def __init__(self, name, width, depth, read_ports, write_ports, sync_read, memid=None,
                 abits=None, word_write=False):
        self.name = name
        self.width = width
        self.depth = depth
        self.read_ports = read_ports
        self.write_ports = write_ports
        self.sync_read = sync_read
        #: Yosys memory id (``MEMID``) and address width (``ABITS``), for the macro mapping.
        self.memid = memid
        self.abits = abits
        #: True when one write enable covers the whole word (every ``WR_EN`` bit the same net).
        self.word_write = word_write

    @property
    def bits(self):
        """Width x depth."""
        return self.width * self.depth

    def to_dict(self):
        """JSON form, as in the report's ``memories`` lists."""
        return {"name": self.name, "width": self.width, "depth": self.depth,
                "read_ports": self.read_ports, "write_ports": self.write_ports,
                "sync_read": self.sync_read, "bits": self.bits}


def parse_memories(dump_text):
    """The memories of a Yosys ``dump t:$mem_v2`` text."""
    memories = []
    for chunk in re.split(r"\n\s*cell \$mem_v2 ", "\n" + dump_text)[1:]:
        name = chunk.split("\n", 1)[0].strip()
        parameters = dict(re.findall(r"parameter \\(\w+) (\S+)", chunk))

        def number(key):
            value = parameters.get(key, "0")
            if "'" in value:  # sized constant, e.g. 32'00000000000000000000000000010000
                return int(value.split("'")[1], 2)
            return int(value)

        clock_enable = parameters.get("RD_CLK_ENABLE", "")
        sync_read = "'" in clock_enable and set(clock_enable.split("'")[1]) == {"1"}
        memid = re.search(r'parameter \\MEMID "((?:[^"\\]|\\.)*)"', chunk)
        memories.append(Memory(name.lstrip("\\"), number("WIDTH"), number("SIZE"),
                               number("RD_PORTS"), number("WR_PORTS"), sync_read,
                               memid=memid.group(1) if memid else None,
                               abits=number("ABITS") if "ABITS" in parameters else None,
                               word_write=_word_write(chunk, number("WIDTH"),
                                                      number("WR_PORTS"))))
    return memories


def _word_write(chunk, width, write_ports):
    """True when the one write port's ``WR_EN`` is one net repeated over the word (or 1 bit)."""
    if write_ports != 1:
        return False
    if width == 1:
        return True
    enables = re.search(r"connect \\WR_EN \{([^}]*)\}", chunk)
    if enables is None:
        return False
    bits = re.findall(r"\\\S+(?: \[\d+\])?|\d+'[01xz]+", enables.group(1))
    return len(bits) == width and len(set(bits)) == 1
