"""Adders and comparators written as parallel-prefix (Kogge-Stone) carry networks.

Why the WTU writes its wide adders out: the silicon flow maps logic with a delay target of one
clock period and then recovers area wherever its own delay model says a path still fits. A
plain ``a + b`` of the ``weight_bits`` (44 on ``edge``) sums of the WTU leaves the mapper free
to rebuild the carry as a ripple chain, which its model accepts and which the static timing
measures at 8.13 ns in SG13G2 typical for a registered 44-bit ``a + b``. The same sum with the
carries of :func:`prefix_carries` keeps ``ceil(log2 width)`` prefix levels in the netlist and
measures 5.31 ns (both figures: a register, the adder, a register, mapped and timed by the
project's flow). The results are the same integers as ``+``, ``-`` and ``>=``; only the
structure of the logic differs. Sums of many values per cycle (a bucket's mass over the lanes)
are kept in carry-save form (:func:`carry_save`: full adders without carry propagation, a few
gate levels per three values) and resolved by one prefix adder a cycle later.

On an FPGA the opposite holds: its logic cells have a dedicated carry chain, which ``+``
reaches and a prefix network written out in gates does not. On the ECP5 (ULX3S-85F, nextpnr,
a registered 44-bit sum alone) the prefix adder takes 541 LUT cells and five LUT levels
(7.09 ns, 5.35 ns of it routing), ``a + b`` 22 carry cells. Every function here therefore takes
``chain``: when true (:func:`carry_chains` of the platform a component is elaborated for) it
returns the plain operator on the same operands (``>=`` as the borrow of a subtraction,
:mod:`hw.carry_compare`), the same integers; the silicon flow, the
simulators and the generated Verilog elaborate without a platform and keep the prefix
networks.
"""

from amaranth.hdl import Cat, Const, Signal, Value

from hw.carry_compare import carry_less_than
from hw.component import builds_for_fpga

__all__ = ["carry_chains", "prefix_carries", "fast_add", "fast_add_carry", "fast_sub", "fast_geq",
           "carry_save"]


def carry_chains(platform):
    """Whether ``elaborate`` builds for a toolchain whose adders are carry chains.

    True for an Amaranth build platform (an FPGA flow: ``platform.build`` passes itself to
    every ``elaborate``); False for ``None`` (RTLIL or Verilog without a platform: the silicon
    flow, the simulators, the generated Verilog of the cocotb tests).
    """
    return builds_for_fpga(platform)


def _level(m, values, name):
    """Each value of ``values`` as a signal of its own (comb): a level of a network is then
    shared by reference instead of repeated in every expression that uses it."""
    signals = []
    for index, value in enumerate(values):
        value = Value.cast(value)
        signal = Signal(len(value), name=f"{name}_{index}")
        m.d.comb += signal.eq(value)
        signals.append(signal)
    return signals


def prefix_carries(m, generate, propagate, carry_in, name):
    """Carries out of every bit: ``c_i = g_i | p_i & c_(i-1)``, ``c_(-1) = carry_in``.

    Parameters
    ----------
    m : Module
        Where the levels of the network go (comb signals ``name_g<level>``, ``name_p<level>``).
    generate, propagate : Value
        Per bit, from the least significant (words of the same width).
    carry_in : 1-bit value or int
    name : str

    Returns
    -------
    Value
        The carry out of each bit (a word), computed by a Kogge-Stone prefix network of
        ``ceil(log2 width)`` levels: at distance ``d``, ``g_i |= p_i & g_(i-d)`` and ``p_i &=
        p_(i-d)`` for every bit at once.
    """
    width = len(generate)
    group_g = generate | Cat(propagate[0] & carry_in, Const(0, width - 1))
    group_p = propagate
    distance, level = 1, 0
    while distance < width:
        group_g, group_p = _level(m, [group_g | (group_p & (group_g << distance)[:width]),
                                      group_p & (group_p << distance)[:width]],
                                  f"{name}_l{level}")
        distance, level = distance * 2, level + 1
    return group_g


def _width(a, b, width):
    return max(len(Value.cast(a)), len(Value.cast(b))) if width is None else width


def _word(value, width):
    value = Value.cast(value).as_unsigned()
    return value[:width] if len(value) >= width else Cat(value, Const(0, width - len(value)))


def _sum(m, a, b, carry_in, name):
    """``(propagate, carries)`` of ``a + b + carry_in`` (words of one width)."""
    propagate, = _level(m, [a ^ b], f"{name}_x")
    return propagate, prefix_carries(m, a & b, propagate, carry_in, name)


def fast_add(m, a, b, name, width=None, *, chain=False):
    """``(a + b) mod 2**width`` of unsigned ``a``, ``b`` (``width``: the wider operand's);
    ``chain``: the plain ``+`` (module doc)."""
    width = _width(a, b, width)
    if chain:
        return (_word(a, width) + _word(b, width))[:width]
    propagate, carries = _sum(m, _word(a, width), _word(b, width), 0, name)
    return (propagate ^ (carries << 1)[:width])[:width]


def fast_add_carry(m, a, b, carry_in, name, width, *, chain=False):
    """``(a + b + carry_in) mod 2**width`` and its carry out, of unsigned ``a``, ``b``
    (``chain``: the plain ``+``, module doc).

    Returns
    -------
    total : Value
        ``width`` bits.
    carry_out : Value
        1 bit: ``a + b + carry_in >= 2**width``.
    """
    carry_in = Value.cast(carry_in)[:1] if not isinstance(carry_in, int) else Const(carry_in, 1)
    if chain:
        total = Signal(width + 1, name=f"{name}_chain")
        m.d.comb += total.eq(_word(a, width) + _word(b, width) + carry_in)
        return total[:width], total[width]
    propagate, carries = _sum(m, _word(a, width), _word(b, width), carry_in, name)
    return (propagate ^ Cat(carry_in, carries)[:width])[:width], carries[-1]


def fast_sub(m, a, b, name, width=None, *, chain=False):
    """``(a - b) mod 2**width`` of unsigned ``a``, ``b``: ``a + ~b + 1`` (``chain``: the plain
    ``-``, module doc)."""
    width = _width(a, b, width)
    if chain:
        return (_word(a, width) - _word(b, width))[:width]
    propagate, carries = _sum(m, _word(a, width), ~_word(b, width), 1, name)
    return (propagate ^ Cat(Const(1, 1), carries)[:width])[:width]


def fast_geq(m, a, b, name, *, chain=False):
    """``a >= b`` of unsigned ``a``, ``b``: the carry out of ``a + ~b + 1`` (``chain``: no
    borrow out of ``a - b``, :func:`hw.carry_compare.carry_less_than`, which an FPGA build
    maps onto its carry chain, as it does not always map the plain ``>=``)."""
    width = _width(a, b, None)
    if chain:
        return ~carry_less_than(m, _word(a, width), _word(b, width), name)
    return _sum(m, _word(a, width), ~_word(b, width), 1, name)[1][-1]


def carry_save(m, values, width, name):
    """Two values whose sum is ``sum(values) mod 2**width`` (3:2 compressors, no carry chain).

    Each level turns three values into their bitwise sum ``a ^ b ^ c`` and their carries
    ``(a & b | a & c | b & c) << 1``; about ``log1.5(len(values) / 2)`` levels of full adders,
    each level a set of comb signals ``name_l<level>_<index>`` in ``m``.
    """
    values = [Value.cast(value).as_unsigned() for value in values]
    values = [value[:width] if len(value) > width else value for value in values]
    level = 0
    while len(values) > 2:
        reduced = []
        for i in range(0, len(values) - 2, 3):
            a, b, c = values[i:i + 3]
            reduced.append((a ^ b ^ c)[:width])
            reduced.append(Cat(Const(0, 1), (a & b) | (a & c) | (b & c))[:width])
        reduced += values[len(values) - len(values) % 3:]
        values = _level(m, reduced, f"{name}_l{level}")
        level += 1
    while len(values) < 2:
        values.append(Const(0, width))
    return values[0], values[1]
