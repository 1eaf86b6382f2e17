"""The WTU's prefix adders and carry-save compressor equal Python's integer arithmetic.

Each adder is checked in both forms: the prefix network (``chain=False``, the silicon flow) and
the plain operator an FPGA build uses (``chain=True``, :func:`hw.wtu.fast_adders.carry_chains`).
"""

import random

import pytest
from amaranth.hdl import Module, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from amaranth_boards.ulx3s import ULX3S_85F_Platform

from hw.wtu.fast_adders import carry_chains, carry_save, fast_add, fast_add_carry, fast_geq, fast_sub
from hw.wtu.pipeline import (product_latency, registered_product, registered_suffix_sums,
                             suffix_tree_latency)
from model.config import PRESETS
from tests.yosys_cells import synthesized_cells

CASES = 400


def _run(module, testbench):
    simulator = Simulator(module)
    simulator.add_testbench(testbench)
    simulator.run()


class _ProductCopies(wiring.Component):
    """A 16 x 16-bit product in the FPGA form with four copies, for Yosys."""

    a: In(16)
    b: In(16)
    enables: In(4)
    product: Out(32)
    copies: Out(data.ArrayLayout(32, 4))

    def elaborate(self, platform):
        m = Module()
        product, copies = registered_product(m, self.a, self.b, 32, "product", chain=True,
                                             copy_enables=list(self.enables))
        m.d.comb += [self.product.eq(product)] + [self.copies[i].eq(copies[i])
                                                  for i in range(4)]
        return m


def test_product_copies_are_not_merged_by_synthesis(tmp_path):
    """The claim of :func:`hw.wtu.pipeline.registered_product`: Yosys (``synth_ecp5`` up to
    its LUT mapping, ``opt_merge`` included) keeps the four copies apart from each other and
    from the product's own last register: 32 bits x (the four copies and the product's three
    registers: the multiplier's, the delay after it, the last)
    = 224 flip-flops beside one multiplier block. Copies without their enables are merged
    into the last register (96)."""
    cells = synthesized_cells(tmp_path, _ProductCopies(), "copies",
                              "synth_ecp5 -top copies -run :map_luts")
    assert cells.get("MULT18X18D") == 1, cells
    assert cells.get("TRELLIS_FF") == 32 * (4 + 3), cells


def test_carry_chains_for_a_build_platform_only():
    assert carry_chains(ULX3S_85F_Platform())
    assert not carry_chains(None)


@pytest.mark.parametrize("chain", [False, True])
@pytest.mark.parametrize("a_bits, b_bits", [(13, 9), (9, 13), (1, 1), (44, 44), (17, 16)])
def test_add_sub_geq_match_integers(a_bits, b_bits, chain):
    m = Module()
    a, b = Signal(a_bits), Signal(b_bits)
    width = max(a_bits, b_bits)
    total, difference, at_least = Signal(width), Signal(width), Signal()
    m.d.comb += [total.eq(fast_add(m, a, b, "add", chain=chain)),
                 difference.eq(fast_sub(m, a, b, "sub", chain=chain)),
                 at_least.eq(fast_geq(m, a, b, "geq", chain=chain))]
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


@pytest.mark.parametrize("chain", [False, True])
def test_add_truncates_to_the_given_width(chain):
    m = Module()
    a, b, total = Signal(8), Signal(8), Signal(6)
    m.d.comb += total.eq(fast_add(m, a, b, "add", 6, chain=chain))
    rng = random.Random(6)

    async def testbench(ctx):
        for _ in range(CASES):
            x, y = rng.randrange(256), rng.randrange(256)
            ctx.set(a, x)
            ctx.set(b, y)
            assert ctx.get(total) == (x + y) % 64

    _run(m, testbench)


@pytest.mark.parametrize("chain", [False, True])
@pytest.mark.parametrize("width", [1, 7, 22])
def test_add_with_carry_in_and_out(width, chain):
    m = Module()
    a, b, carry_in = Signal(width), Signal(width), Signal()
    total, carry_out = Signal(width), Signal()
    low_sum, low_carry = fast_add_carry(m, a, b, carry_in, "add", width, chain=chain)
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


@pytest.mark.parametrize("chain", [False, True])
@pytest.mark.parametrize("count, width", [(2, 9), (4, 12), (16, 44)])
def test_suffix_sums_after_their_latency(count, width, chain):
    # Skewed halves: the sums of stable values are exact suffix_tree_latency cycles after them
    # (tree_levels + 1: the last level's high halves a cycle after its low halves).
    m = Module()
    value_bits = width - count.bit_length()    # so that every sum fits ``width``
    values = [Signal(value_bits, name=f"value{j}") for j in range(count)]
    sums = registered_suffix_sums(m, values, width, "suffix", chain=chain)
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


@pytest.mark.parametrize("chain", [False, True])
@pytest.mark.parametrize("count_bits", [4, 8, 16])
def test_registered_product_after_its_latency(count_bits, chain):
    # Both forms (partial products and their tree; one multiplication then registers) give
    # a x b exactly product_latency cycles after the operands, one product per cycle, and
    # each copy equals it whenever its enable was set in the cycle before (random enables).
    config = PRESETS["edge"].replace(count_bits=count_bits)
    m = Module()
    a, b = Signal(16), Signal(count_bits)
    enables = Signal(3)
    product, copies = registered_product(m, a, b, 16 + count_bits, "product", chain=chain,
                                         copy_enables=list(enables))
    latency = product_latency(config)
    rng = random.Random(count_bits)
    operands = [(rng.randrange(1 << 16), rng.randrange(1 << count_bits))
                for _ in range(CASES // 10)] + [((1 << 16) - 1, (1 << count_bits) - 1)]
    given = [rng.getrandbits(3) for _ in range(len(operands) + latency)]
    assert len(copies) == 3

    async def testbench(ctx):
        checked = 0
        for cycle in range(len(operands) + latency):
            if cycle < len(operands):
                ctx.set(a, operands[cycle][0])
                ctx.set(b, operands[cycle][1])
            ctx.set(enables, given[cycle])
            if cycle >= latency:
                x, y = operands[cycle - latency]
                assert ctx.get(product) == x * y, (x, y)
                for index, copy in enumerate(copies):
                    if given[cycle - 1] >> index & 1:
                        assert ctx.get(copy) == x * y, (index, x, y)
                        checked += 1
            await ctx.tick()
        assert checked > len(operands)

    simulator = Simulator(m)
    simulator.add_clock(1e-6)
    simulator.add_testbench(testbench)
    simulator.run()
