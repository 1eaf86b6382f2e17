"""Comparisons and the highest set bit as subtractions, which an FPGA build maps onto its carry chain.

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

:func:`carry_highest_one` finds the highest set bit of a word through a negation, which Yosys
maps onto the carry cells too. The WTU's decision uses it in its FPGA form for the highest
bucket reached (:mod:`hw.wtu.decision`): routed on the ECP5-85F that path was the WTU's
critical one, its comparisons' carry chains then five or six LUTs of priority (11.01 ns at a
delay target of 0.45 of the period); with the negation it is a LUT, an eight-cell chain and a
LUT (10.81 ns), and the WTU routes at 92.55 MHz instead of 90.81 (one seed each).
"""

from amaranth.hdl import Cat, Signal, Value

__all__ = ["carry_less_than", "carry_highest_one"]


def carry_less_than(m, a, b, name):
    """``a < b`` of unsigned ``a`` and ``b``: the borrow out of ``a - b`` (a comb signal
    ``name_difference`` of ``max(len(a), len(b)) + 1`` bits in ``m``), one bit."""
    a, b = Value.cast(a).as_unsigned(), Value.cast(b).as_unsigned()
    difference = Signal(max(len(a), len(b)) + 1, name=f"{name}_difference")
    m.d.comb += difference.eq(a - b)
    return difference[-1]


def carry_highest_one(m, value, name):
    """The highest set bit of ``value``, one-hot (0 when ``value`` is 0), through a carry chain.

    With ``r`` the bits of ``value`` in reverse order, ``r & -r`` keeps the lowest set bit of
    ``r`` (the two's complement ``-r``, modulo ``2**len(value)``, flips every bit above it and
    none below), so reversed again it is the highest of ``value``. The negation is a comb
    signal ``name_negated`` in ``m``: Yosys maps it onto the ECP5's carry cells, a chain of
    ``len(value) / 2`` cells, where the plain priority (``value[k] & ~value[k + 1:].any()``) is a
    tree of LUTs that ABC, mapping for a delay target, makes deeper to save area."""
    value = Value.cast(value).as_unsigned()
    reversed_value = Cat(value[::-1])
    negated = Signal(len(value), name=f"{name}_negated")
    m.d.comb += negated.eq(-reversed_value)     # modulo 2**len(value): two's complement
    return Cat((reversed_value & negated)[::-1])
