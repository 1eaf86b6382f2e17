"""The WTU's prefix adders and carry-save compressor equal Python's integer arithmetic."""

import random

import pytest
from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator

from hw.wtu.fast_adders import carry_save, fast_add, fast_add_carry, fast_geq, fast_sub
from hw.wtu.pipeline import registered_suffix_sums, suffix_tree_latency

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


@pytest.mark.parametrize("width", [1, 7, 22])
def test_add_with_carry_in_and_out(width):
    m = Module()
    a, b, carry_in = Signal(width), Signal(width), Signal()
    total, carry_out = Signal(width), Signal()
    low_sum, low_carry = fast_add_carry(m, a, b, carry_in, "add", width)
    m.d.comb += [total.eq(low_sum), carry_out.eq(low_carry)]
    rng = random.Random(width)

    async def testbench(ctx):
        for case in range(CASES):
            x, y, c = rng.randrange(1 << width), rng.randrange(1 << width), rng.getrandbits(1)
            if case % 10 == 0:               # all ones plus a carry: the longest carry
                x, y = (1 << width) - 1, 0
            ctx.set(a, x)
            ctx.set(b, y)
            ctx.set(carry_in, c)
            assert ctx.get(total) == (x + y + c) % (1 << width), (x, y, c)
            assert ctx.get(carry_out) == (x + y + c >= 1 << width), (x, y, c)

    _run(m, testbench)


@pytest.mark.parametrize("count, width", [(2, 9), (4, 12), (16, 44)])
def test_suffix_sums_after_their_latency(count, width):
    # Skewed halves: the sums of stable values are exact suffix_tree_latency cycles after them
    # (tree_levels + 1: the last level's high halves a cycle after its low halves).
    m = Module()
    value_bits = width - count.bit_length()    # so that every sum fits ``width``
    values = [Signal(value_bits, name=f"value{j}") for j in range(count)]
    sums = registered_suffix_sums(m, values, width, "suffix")
    latency = suffix_tree_latency(count)
    assert latency == (count - 1).bit_length() + 1
    rng = random.Random(count)

    async def testbench(ctx):
        for case in range(CASES // 20):
            words = [rng.randrange(1 << value_bits) for _ in values]
            if case % 4 == 0:                # carries out of every low half
                words = [(1 << value_bits) - 1] * count
            for value, word in zip(values, words):
                ctx.set(value, word)
            await ctx.tick().repeat(latency)
            assert [ctx.get(total) for total in sums] == \
                [sum(words[j:]) for j in range(count)], words

    simulator = Simulator(m)
    simulator.add_clock(1e-6)
    simulator.add_testbench(testbench)
    simulator.run()


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
