"""The WTU's prefix adders and carry-save compressor equal Python's integer arithmetic."""

import random

import pytest
from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator

from hw.wtu.fast_adders import carry_save, fast_add, fast_geq, fast_sub

CASES = 400


def _run(module, testbench):
    simulator = Simulator(module)
    simulator.add_testbench(testbench)
    simulator.run()


@pytest.mark.parametrize("a_bits, b_bits", [(13, 9), (9, 13), (1, 1), (44, 44), (17, 16)])
def test_add_sub_geq_match_integers(a_bits, b_bits):
    m = Module()
    a, b = Signal(a_bits), Signal(b_bits)
    width = max(a_bits, b_bits)
    total, difference, at_least = Signal(width), Signal(width), Signal()
    m.d.comb += [total.eq(fast_add(m, a, b, "add")), difference.eq(fast_sub(m, a, b, "sub")),
                 at_least.eq(fast_geq(m, a, b, "geq"))]
    rng = random.Random(a_bits * 100 + b_bits)

    async def testbench(ctx):
        for case in range(CASES):
            x, y = rng.randrange(1 << a_bits), rng.randrange(1 << b_bits)
            if case % 10 == 0:               # equal operands: the edge of >=
                y = x & ((1 << b_bits) - 1)
            ctx.set(a, x)
            ctx.set(b, y)
            assert ctx.get(total) == (x + y) % (1 << width), (x, y)
            assert ctx.get(difference) == (x - y) % (1 << width), (x, y)
            assert ctx.get(at_least) == (x >= y), (x, y)

    _run(m, testbench)


def test_add_truncates_to_the_given_width():
    m = Module()
    a, b, total = Signal(8), Signal(8), Signal(6)
    m.d.comb += total.eq(fast_add(m, a, b, "add", 6))
    rng = random.Random(6)

    async def testbench(ctx):
        for _ in range(CASES):
            x, y = rng.randrange(256), rng.randrange(256)
            ctx.set(a, x)
            ctx.set(b, y)
            assert ctx.get(total) == (x + y) % 64

    _run(m, testbench)


@pytest.mark.parametrize("count", [0, 1, 2, 3, 4, 17, 18])
def test_carry_save_pair_sums_to_the_total(count):
    m = Module()
    values = [Signal(20, name=f"value{i}") for i in range(count)]
    first, second = Signal(24), Signal(24)
    pair = carry_save(m, values, 24, "csa")
    m.d.comb += [first.eq(pair[0]), second.eq(pair[1])]
    rng = random.Random(count)

    async def testbench(ctx):
        for _ in range(CASES // 4):
            numbers = [rng.randrange(1 << 20) for _ in values]
            for value, number in zip(values, numbers):
                ctx.set(value, number)
            assert (ctx.get(first) + ctx.get(second)) % (1 << 24) == sum(numbers) % (1 << 24)

    _run(m, testbench)
