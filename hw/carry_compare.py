"""Unsigned comparisons written as subtractions, so that an FPGA build maps them onto its carry chain.

Yosys maps a ``$sub`` (``a - b``) straight onto the ECP5's carry cells (``CCU2C``, two bits a
cell). A ``$lt``, ``$gt`` or ``$ge`` may take another way: in the WTU's decision on the
ECP5-85F the sixteen 44-bit comparisons against one operand came out as trees of LUTs and wide
multiplexers, 18 cells deep (13.46 ns, the WTU's longest path after placement). Where it is
used, the comparison is the borrow of a subtraction: the integers are the same, only the
mapping differs.

It is used by the sorter baseline's FPGA build (its compare-and-swap network and its fold):
23,407 LUT4 instead of 29,754 for the edge sorter (Yosys with ``abc9``). It is not used by the
WTU, measured in both places it could go: the decision alone routes at 114.89 MHz instead of
104.92 (``python -m synth.part_fmax Decision``), but in the whole WTU the LUT mapper, whose
depth target follows the deepest path of the netlist, then mapped the rest of the unit for a
smaller depth and larger: 45,911 LUT4 and 10,012 wide multiplexers instead of 43,796 and 6,323,
and a lower placement estimate (61.33 and 67.94 MHz against 71.41 at the same seed). The
silicon flow does not use these (its comparisons have their own structure:
:mod:`hw.wtu.fast_adders`).
"""

from amaranth.hdl import Signal, Value

__all__ = ["carry_less_than"]


def carry_less_than(m, a, b, name):
    """``a < b`` of unsigned ``a`` and ``b``: the borrow out of ``a - b`` (a comb signal
    ``name_difference`` of ``max(len(a), len(b)) + 1`` bits in ``m``), one bit."""
    a, b = Value.cast(a).as_unsigned(), Value.cast(b).as_unsigned()
    difference = Signal(max(len(a), len(b)) + 1, name=f"{name}_difference")
    m.d.comb += difference.eq(a - b)
    return difference[-1]
