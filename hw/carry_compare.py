"""Unsigned comparisons written as subtractions, so that an FPGA build maps them onto its carry chain.

Yosys maps a ``$sub`` (``a - b``) straight onto the ECP5's carry cells (``CCU2C``, two bits a
cell, nothing in front of them). A ``$lt``, ``$gt`` or ``$ge`` takes another way: it becomes a
lookahead carry unit (``cmp2lcu``) whose generate and propagate terms are LUTs in front of the
chain, and ABC may then rebuild the whole comparison as a tree of LUTs and wide multiplexers.
In the WTU on the ECP5-85F the decision's sixteen 44-bit comparisons became such trees, 18
cells deep (13.46 ns, the unit's longest path after placement); written as the borrow of a
subtraction they are carry chains, and the decision alone routes at 114.89 MHz instead of
104.92 (``python -m synth.part_fmax Decision``). The integers are the same; only the mapping
differs. The silicon flow does not use these (its comparisons have their own structure:
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
