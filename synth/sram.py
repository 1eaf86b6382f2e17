"""How each memory of a block is built in silicon: SRAM macros, or a register file of flip-flops.

:func:`plan_memory` decides per memory (a Yosys ``$mem_v2`` cell, :class:`synth.area_lib.Memory`):

- **SRAM macros** when every read port is clocked (a macro's output is registered inside it: a
  memory read asynchronously cannot be a synchronous SRAM) and the memory has exactly one write
  port (a ROM has no macro: the macros hold no initial contents). Every port of a PDK macro
  reads and writes, so a memory with one read and one write port needs a two-port (2P) macro, a
  single-ported one could use a 1P macro; a memory with R > 1 read ports gets R copies (each
  written by the write port, read by one read port). Among the macros with enough ports, the
  one whose tiling (``ceil(depth / words)`` x ``ceil(width / bits)`` x copies) has the
  smallest area is taken: depth tiles are selected by the high address bits (write enables
  decoded, read data multiplexed by the registered high bits), width tiles side by side.
- **logic** for a ROM: its constants become gates (``memory_map``), counted in the standard
  cells;
- **a register file of flip-flops** otherwise, or when the register file is smaller than the
  best macro tiling (a memory too small for any macro: IHP's smallest 2P macro, 64x22, is
  39,384 um^2). Its area and timing come from :mod:`synth.regfile`.

:func:`techmap_verilog` writes the Yosys ``techmap`` file that replaces every ``$mem_v2`` cell
by its plan: instances of the macro cells (pins from :class:`synth.pdk.Macro`: ``A`` the write
port, ``B`` the read port, built-in self-test inputs tied low, ``DLY`` tied high, ``MEN`` and
``REN``/``WEN`` active high, ``BM`` the per-bit write enables where the macro has a bit
mask, all ones when one enable covers the word),
or one instance of the register-file cell. The netlist is for area and timing, not simulation.
"""

import math
import re
from dataclasses import dataclass, field

__all__ = ["MemoryPlan", "plan_memory", "register_file_name", "techmap_verilog"]


@dataclass
class MemoryPlan:
    """The silicon of one memory.

    Members
    -------
    memory : synth.area_lib.Memory
    kind : str
        ``macro``, ``register_file`` or ``logic`` (a ROM mapped to gates).
    reason : str
        Why (one sentence, printed in the report).
    macro : synth.pdk.Macro or None
    depth_tiles, width_tiles, copies : int
        The macro tiling (1, 1, 1 for a register file).
    area_um2 : float
        Macros' area (tiles x macro area) or the register file's area.
    register_file : str or None
        Cell name of the register file (:func:`register_file_name`).
    """

    memory: object
    kind: str
    reason: str
    macro: object = None
    depth_tiles: int = 1
    width_tiles: int = 1
    copies: int = 1
    area_um2: float = 0.0
    register_file: str = None
    alternatives: dict = field(default_factory=dict)

    @property
    def macro_count(self):
        """Macro instances (0 for a register file)."""
        return self.depth_tiles * self.width_tiles * self.copies if self.kind == "macro" else 0

    def to_dict(self):
        """JSON form (an item of the report's ``area.memories``)."""
        memory = self.memory
        return {"name": memory.name, "width": memory.width, "depth": memory.depth,
                "read_ports": memory.read_ports, "write_ports": memory.write_ports,
                "sync_read": memory.sync_read, "bits": memory.bits, "kind": self.kind,
                "macro": self.macro.name if self.macro else None,
                "macro_count": self.macro_count,
                "tiling": ({"depth": self.depth_tiles, "width": self.width_tiles,
                            "copies": self.copies} if self.kind == "macro" else None),
                "register_file": self.register_file, "area_um2": round(self.area_um2, 1),
                "reason": self.reason, "alternatives": self.alternatives}


def register_file_name(memory):
    """Cell name of the register file of ``memory``'s shape (depth, width, ports)."""
    return (f"vrex_rf_{memory.depth}x{memory.width}_{memory.read_ports}r"
            f"{memory.write_ports}w")


def _macro_tilings(memory, macros):
    """``(area, macro, depth_tiles, width_tiles, copies)`` for every macro with enough ports."""
    ports_needed = memory.read_ports + memory.write_ports
    copies = 1
    if ports_needed > 2:  # one write port and several read ports: a copy per read port
        copies, ports_needed = memory.read_ports, 2
    tilings = []
    for macro in macros:
        if macro.ports < ports_needed:
            continue
        depth_tiles = math.ceil(memory.depth / macro.words)
        width_tiles = math.ceil(memory.width / macro.bits)
        count = depth_tiles * width_tiles * copies
        tilings.append((count * macro.area_um2, count, macro.name, macro, depth_tiles,
                        width_tiles, copies))
    return sorted(tilings, key=lambda item: item[:3])


def plan_memory(memory, macros, register_file_um2):
    """The :class:`MemoryPlan` of ``memory``.

    Parameters
    ----------
    memory : synth.area_lib.Memory
    macros : sequence of synth.pdk.Macro
        The PDK's SRAM macros (may be empty).
    register_file_um2 : callable
        ``register_file_um2(memory, limit)`` -> area of the memory as a register file, or any
        lower bound of it that is at least ``limit`` (the best macro tiling's area); called
        only when a macro tiling exists, to keep the cheaper.
    """
    name = register_file_name(memory)
    if memory.write_ports == 0:
        return MemoryPlan(memory, "logic",
                          reason="a ROM (no write port): the SRAM macros hold no initial "
                                 "contents, so its constants become logic gates (in the "
                                 "standard-cell area)")
    if not memory.sync_read:
        return MemoryPlan(memory, "register_file", register_file=name,
                          reason="read asynchronously: an SRAM macro's output is registered, "
                                 "so this memory is a register file of flip-flops")
    if memory.write_ports > 1:
        return MemoryPlan(memory, "register_file", register_file=name,
                          reason=f"{memory.write_ports} write ports: a macro copy per read port "
                                 "takes only one")
    tilings = _macro_tilings(memory, macros)
    if not tilings:
        return MemoryPlan(memory, "register_file", register_file=name,
                          reason="no SRAM macro of the PDK has the ports it needs")
    area, count, _, macro, depth_tiles, width_tiles, copies = tilings[0]
    register_file = register_file_um2(memory, area)
    if register_file < area:
        return MemoryPlan(memory, "register_file", register_file=name,
                          reason=f"too small for a macro: as flip-flops {register_file:,.0f} um^2;"
                                 f" the smallest macro tiling ({count} x {macro.name}) "
                                 f"{area:,.0f} um^2",
                          alternatives={"macro_um2": round(area, 1)})
    ports = "one read and one write port" if macro.ports == 2 else "one port"
    return MemoryPlan(memory, "macro", macro=macro, depth_tiles=depth_tiles,
                      width_tiles=width_tiles, copies=copies, area_um2=area,
                      reason=f"clocked reads, {ports}: {count} x {macro.name} "
                             f"({depth_tiles} deep x {width_tiles} wide x {copies} copies), "
                             f"the smallest tiling",
                      alternatives={"register_file_um2_at_least": round(register_file, 1)})


# -- the techmap file ---------------------------------------------------------------------------

_HEADER = """// Generated by synth/sram.py: each $mem_v2 becomes SRAM macros or a register file.
(* techmap_celltype = "$mem_v2" *)
module vrex_mem_map (RD_CLK, RD_EN, RD_ARST, RD_SRST, RD_ADDR, RD_DATA,
                     WR_CLK, WR_EN, WR_ADDR, WR_DATA);
  parameter MEMID = "";
  parameter SIZE = 0;
  parameter OFFSET = 0;
  parameter ABITS = 0;
  parameter WIDTH = 0;
  parameter INIT = 0;
  parameter RD_PORTS = 0;
  parameter RD_CLK_ENABLE = 0;
  parameter RD_CLK_POLARITY = 0;
  parameter RD_TRANSPARENCY_MASK = 0;
  parameter RD_COLLISION_X_MASK = 0;
  parameter RD_WIDE_CONTINUATION = 0;
  parameter RD_CE_OVER_SRST = 0;
  parameter RD_ARST_VALUE = 0;
  parameter RD_SRST_VALUE = 0;
  parameter RD_INIT_VALUE = 0;
  parameter WR_PORTS = 0;
  parameter WR_CLK_ENABLE = 0;
  parameter WR_CLK_POLARITY = 0;
  parameter WR_PRIORITY_MASK = 0;
  parameter WR_WIDE_CONTINUATION = 0;
  input [RD_PORTS-1:0] RD_CLK, RD_EN, RD_ARST, RD_SRST;
  input [RD_PORTS*ABITS-1:0] RD_ADDR;
  output [RD_PORTS*WIDTH-1:0] RD_DATA;
  input [WR_PORTS-1:0] WR_CLK;
  input [WR_PORTS*WIDTH-1:0] WR_EN, WR_DATA;
  input [WR_PORTS*ABITS-1:0] WR_ADDR;
  genvar r, d, w;
  generate
"""

_FOOTER = """    else begin : unmapped
      wire _TECHMAP_FAIL_ = 1;
    end
  endgenerate
endmodule
"""


def _macro_pins(macro, port, connections):
    """``.PORT_PIN(expr)`` connections of one macro port; self-test inputs tied low."""
    items = []
    for pin in sorted(macro.pins):
        if pin in connections:
            value = connections[pin]
        elif pin.startswith("BIST_"):
            value = "1'b0" if pin in ("BIST_EN", "BIST_WEN", "BIST_REN", "BIST_MEN", "BIST_CLK") \
                else "{%d{1'b0}}" % (macro.address_bits if pin == "BIST_ADDR" else macro.bits)
        elif pin == "DLY":
            value = "1'b1"
        elif pin == "DOUT":
            value = ""
        else:
            raise ValueError(f"{macro.path}: pin {port}_{pin} has no connection rule")
        items.append(f".{port}_{pin}({value})")
    return items


def _macro_branch(plan):
    """The generate branch of one macro plan (Verilog)."""
    macro, depth_tiles, width_tiles = plan.macro, plan.depth_tiles, plan.width_tiles
    address = macro.address_bits
    select_bits = max(1, (depth_tiles - 1).bit_length())
    row = width_tiles * macro.bits
    # A whole-word write enable drives WEN and MEN only (bit mask all ones): one net into a
    # few macro pins instead of every bit of the mask, which ABC cannot buffer (macro pins are
    # outside the logic it maps).
    write = {"CLK": "WR_CLK[0]", "ADDR": "wa", "DIN": "wdata[w*MB +: MB]",
             "WEN": "wen", "MEN": "wen", "REN": "1'b0",
             "BM": "{MB{1'b1}}" if plan.memory.word_write else "wmask[w*MB +: MB]"}
    read = {"CLK": "RD_CLK[r]", "ADDR": "ra", "DIN": "{MB{1'b0}}", "WEN": "1'b0",
            "MEN": "ren", "REN": "ren", "BM": "{MB{1'b0}}",
            "DOUT": "dout[(d*WT + w)*MB +: MB]"}
    if macro.ports == 1:  # single-ported memory (one read or one write port) on port A
        raise ValueError(f"{plan.memory.name}: single-port macro plans are not generated")
    enable = "WR_EN[0]" if plan.memory.word_write else "(|WR_EN[WIDTH-1:0])"
    pins_a = ", ".join(_macro_pins(macro, "A", write))
    pins_b = ", ".join(_macro_pins(macro, "B", read))
    return f"""      // {plan.memory.name}: {plan.reason}
      localparam MA = {address}, MB = {macro.bits}, DT = {depth_tiles}, WT = {width_tiles};
      localparam SW = {select_bits};
      wire [WT*MB-1:0] wdata = WR_DATA[WIDTH-1:0];
      wire [WT*MB-1:0] wmask = WR_EN[WIDTH-1:0];
      wire [MA-1:0] wa = WR_ADDR[ABITS-1:0];
      wire [SW-1:0] wsel = WR_ADDR[ABITS-1:0] >> MA;
      for (r = 0; r < RD_PORTS; r = r + 1) begin : copy
        wire [MA-1:0] ra = RD_ADDR[r*ABITS +: ABITS];
        wire [SW-1:0] rsel_next = RD_ADDR[r*ABITS +: ABITS] >> MA;
        reg [SW-1:0] rsel;
        always @(posedge RD_CLK[r]) if (RD_EN[r]) rsel <= rsel_next;
        wire [DT*WT*MB-1:0] dout;
        for (d = 0; d < DT; d = d + 1) begin : deep
          wire wen = {enable} && (DT == 1 || wsel == d);
          wire ren = RD_EN[r] && (DT == 1 || rsel_next == d);
          for (w = 0; w < WT; w = w + 1) begin : wide
            {macro.name} macro ({pins_a}, {pins_b});
          end
        end
        wire [{row - 1}:0] rows [0:DT-1];
        for (d = 0; d < DT; d = d + 1) begin : pick
          assign rows[d] = dout[d*WT*MB +: WT*MB];
        end
        assign RD_DATA[r*WIDTH +: WIDTH] = rows[DT == 1 ? 0 : rsel];
      end
"""


def _register_file_branch(plan):
    memory = plan.memory
    address = max(1, (memory.depth - 1).bit_length())
    reads = " , ".join(f"RD_ADDR[{port}*ABITS +: {address}]"
                       for port in reversed(range(memory.read_ports)))
    writes = " , ".join(f"WR_ADDR[{port}*ABITS +: {address}]"
                        for port in reversed(range(memory.write_ports)))
    text = f"""      // {memory.name}: {plan.reason}
      wire [RD_PORTS*WIDTH-1:0] rdata;
      {plan.register_file} regfile (.CLK(WR_CLK[0]), .RADDR({{{reads}}}), .RDATA(rdata),
        .WADDR({{{writes}}}), .WDATA(WR_DATA), .WEN(WR_EN));
"""
    if not memory.sync_read:
        return text + "      assign RD_DATA = rdata;\n"
    # Clocked reads: the read data is registered after the register file.
    return text + """      for (r = 0; r < RD_PORTS; r = r + 1) begin : sync
        reg [WIDTH-1:0] q;
        always @(posedge RD_CLK[r]) if (RD_EN[r]) q <= rdata[r*WIDTH +: WIDTH];
        assign RD_DATA[r*WIDTH +: WIDTH] = q;
      end
"""


def techmap_verilog(plans):
    """The techmap file (Verilog text) replacing each planned ``$mem_v2`` by its silicon.

    Raises
    ------
    ValueError
        If a plan's memory has no ``MEMID`` (a dump without it cannot be mapped).
    """
    branches = []
    for index, plan in enumerate(plan for plan in plans if plan.kind != "logic"):
        memid = plan.memory.memid
        if memid is None:
            raise ValueError(f"memory {plan.memory.name} has no MEMID in the Yosys dump")
        if not re.fullmatch(r'(?:[^"\\]|\\.)*', memid):
            raise ValueError(f"memory {plan.memory.name}: unusable MEMID {memid!r}")
        body = _macro_branch(plan) if plan.kind == "macro" else _register_file_branch(plan)
        keyword = "if" if index == 0 else "else if"
        branches.append(f'    {keyword} (MEMID == "{memid}") begin : mem{index}\n{body}'
                        f"    end\n")
    if not branches:
        return _HEADER + "    if (0) begin : none\n    end\n" + _FOOTER
    return _HEADER + "".join(branches) + _FOOTER
