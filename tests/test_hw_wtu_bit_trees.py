"""The WTU's balanced bit trees equal Python's integer bit tricks, exhaustively on small widths.

References: the lowest set bit of ``v`` is ``(v & -v).bit_length() - 1``, the highest
``v.bit_length() - 1`` (both 0 for ``v == 0``, the value the priority chains they replace give),
"at most one bit set" is ``v & (v - 1) == 0``, the lowest set bit cleared is ``v & (v - 1)``
and the highest set bit alone is ``1 << (v.bit_length() - 1)`` (0 for ``v == 0``); selecting by
it picks the value of that index (here ``3 * i + 1``), 0 when no bit is set.
"""

import pytest
from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator

from hw.wtu.bit_trees import (at_most_one_set, clear_lowest_set, highest_one_hot, highest_set,
                              lowest_set, one_hot_select)


@pytest.mark.parametrize("width", [1, 2, 3, 4, 5, 8, 9])
def test_bit_trees_equal_the_integer_reference(width):
    bits = Signal(width)
    index_bits = max(1, (width - 1).bit_length())
    low, high = Signal(index_bits), Signal(index_bits)
    one_or_none, cleared, top = Signal(), Signal(width), Signal(width)
    picked = Signal(8)
    m = Module()
    m.d.comb += [low.eq(lowest_set(bits)), high.eq(highest_set(bits)),
                 one_or_none.eq(at_most_one_set(bits)), cleared.eq(clear_lowest_set(bits)),
                 top.eq(highest_one_hot(bits)),
                 picked.eq(one_hot_select(top, [3 * i + 1 for i in range(width)]))]
    checked = []

    async def testbench(ctx):
        for value in range(1 << width):
            ctx.set(bits, value)
            assert ctx.get(low) == ((value & -value).bit_length() - 1 if value else 0), value
            assert ctx.get(high) == (value.bit_length() - 1 if value else 0), value
            assert ctx.get(one_or_none) == (value & (value - 1) == 0), value
            assert ctx.get(cleared) == value & (value - 1), value
            assert ctx.get(top) == (1 << (value.bit_length() - 1) if value else 0), value
            assert ctx.get(picked) == (3 * (value.bit_length() - 1) + 1 if value else 0), value
            checked.append(value)

    simulator = Simulator(m)
    simulator.add_testbench(testbench)
    simulator.run()
    assert len(checked) == 1 << width
