"""The register stages between the WTU's central parts and its lanes, both ways.

Sixteen lanes with five memories each are spread over the die (an ECP5-85F: 80 block RAMs); a
decision taken in one place (the sequencer's state, the decision's crossing bucket) that must
reach every lane's memory address in the same cycle crosses the die through logic on both
sides, and so does a lane's word that the sequencer waits for. Measured on the ECP5 before
these stages: 22.08 ns from the sequencer's state to lane 12's count-memory address.

So the lanes run :func:`hw.wtu.pipeline.broadcast_stages` cycles behind the sequencer: every
input of a lane passes a shared register and then a register of the lane's own
(:func:`broadcast`), and a lane's memories are addressed from its own registers only. What a
lane returns passes a register of the lane's own and then a shared one
(:func:`hw.wtu.pipeline.gather_stages`, :func:`gather`). The wire across the die then runs from
a register to a register.

Copies of one value in several lanes are registers with the same input, which synthesis merges
into one (Yosys ``opt_merge``), so a lane's copy (:func:`lane_copy`) loads each bit only when
it differs from the bit it holds: the same value in every cycle, but each copy's enable comes
from its own output, and no two copies have the same inputs.
"""

from amaranth.hdl import Cat, Signal

from hw.wtu.pipeline import delayed

__all__ = ["lane_copy", "broadcast", "gather"]


def lane_copy(m, value, name):
    """A register of ``value`` of one lane, never merged with another lane's copy.

    Each bit is loaded when it differs from the bit held (a clock enable from the register's
    own output): the register holds ``value`` of the cycle before, as a plain register would.
    """
    copy = Signal.like(value, name=name)
    for bit in range(len(copy)):
        with m.If(copy[bit] != value[bit]):
            m.d.sync += copy[bit].eq(value[bit])
    return copy


def broadcast(m, value, lanes, stages, name):
    """``value`` as each of ``lanes`` lanes takes it, ``stages`` cycles later.

    ``stages - 1`` shared registers, then one :func:`lane_copy` per lane (``stages`` 0: the
    value itself for every lane).

    Returns
    -------
    list of Value
        Lane ``l``'s copy at index ``l``.
    """
    if stages == 0:
        return [value] * lanes
    shared = delayed(m, value, stages - 1, f"{name}_shared")
    return [lane_copy(m, shared, f"{name}_lane{l}") for l in range(lanes)]


def gather(m, values, stages, name):
    """The lanes' ``values`` (one per lane, index ``l`` from lane ``l``), ``stages`` cycles
    later, concatenated (lane 0 lowest): a register per lane, then ``stages - 1`` shared
    ones."""
    if stages == 0:
        return Cat(values)
    first = [delayed(m, value, 1, f"{name}_lane{l}") for l, value in enumerate(values)]
    return delayed(m, Cat(first), stages - 1, f"{name}_shared")
