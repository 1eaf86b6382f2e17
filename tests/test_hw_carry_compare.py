"""The form an FPGA build maps onto its carry chain: the comparison equals Python's ``<``."""

import itertools
import random

import pytest
from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator

from hw.carry_compare import carry_less_than


def _check(a_bits, b_bits, pairs):
    m = Module()
    a, b, less = Signal(a_bits), Signal(b_bits), Signal()
    m.d.comb += less.eq(carry_less_than(m, a, b, "less"))
    seen = []

    async def testbench(ctx):
        for x, y in pairs:
            ctx.set(a, x)
            ctx.set(b, y)
            assert ctx.get(less) == (x < y), (x, y)
            seen.append((x, y))

    simulator = Simulator(m)
    simulator.add_testbench(testbench)
    simulator.run()
    assert len(seen) == len(pairs)


@pytest.mark.parametrize("a_bits, b_bits", [(1, 1), (3, 3), (4, 2), (2, 4)])
def test_every_pair_of_small_operands(a_bits, b_bits):
    _check(a_bits, b_bits, list(itertools.product(range(1 << a_bits), range(1 << b_bits))))


@pytest.mark.parametrize("a_bits, b_bits", [(44, 44), (28, 28), (17, 16)])
def test_random_wide_operands_and_their_edges(a_bits, b_bits):
    rng = random.Random(a_bits * 64 + b_bits)
    top = min((1 << a_bits) - 1, (1 << b_bits) - 1)
    pairs = [(0, 0), (top, top), (top, 0), (0, top), (top - 1, top), (top, top - 1)]
    for _ in range(300):
        x = rng.randrange(1 << a_bits)
        pairs.append((x, rng.choice([x & ((1 << b_bits) - 1), rng.randrange(1 << b_bits)])))
    _check(a_bits, b_bits, pairs)
