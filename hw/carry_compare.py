"""Comparisons as subtractions, which an FPGA build maps onto its carry chain.

Yosys maps a ``$sub`` (``a - b``) straight onto the ECP5's carry cells (``CCU2C``, two bits a
cell). A ``$lt``, ``$gt`` or ``$ge`` may take another way: in the WTU's decision on the
ECP5-85F the sixteen 44-bit comparisons against one operand came out as trees of LUTs and wide
multiplexers, 18 cells deep (13.46 ns, the WTU's longest path after placement). Where it is
used, the comparison is the borrow of a subtraction: the integers are the same, only the
mapping differs.

It is used by the sorter baseline's FPGA build (its compare-and-swap network and its fold):
23,407 LUT4 instead of 29,754 for the edge sorter (Yosys with ``abc9``), and by the WTU's
``fast_geq`` in its FPGA form (:mod:`hw.wtu.fast_adders`). In the WTU it pays only with the
LUT mapper's delay target (``synth.fpga.ABC9_DELAY_SHARES``): the decision alone routes at
114.89 MHz instead of 104.92 (``python -m synth.part_fmax Decision``), but without a target
the mapper, whose depth target then follows the deepest path of the netlist, mapped the rest of
the unit for the smaller depth and larger (45,911 LUT4 and 10,012 wide multiplexers instead of
43,796 and 6,323; 61.33 and 67.94 MHz against 71.41 estimated at one seed); with the target the
whole WTU maps into 41,373 LUT4 instead of 42,293 and places at 82.66 MHz instead of 79.00 (one
seed). The silicon flow does not use these (its comparisons have their own structure:
:mod:`hw.wtu.fast_adders`).

The WTU's decision once took the highest bucket reached through a negation here (the highest
set bit on the carry cells); the edge of its comparisons does without (:mod:`hw.wtu.decision`).
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

