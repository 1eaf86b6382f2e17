"""A small first-in first-out queue of flip-flops, with the ports of ``amaranth.lib.fifo``.

``lib.fifo.SyncFIFO`` keeps its entries in a ``lib.memory.Memory``; the silicon flow turns a
memory too small for an SRAM macro into a register-file block (:mod:`synth`), whose write
enable is one pin: the WTU's 6 x 272-bit aggregate queue measured 7.60 ns in SG13G2 typical
from the queue's level to that pin, 5.55 ns of it one buffer driving the pin's load. Here the
entries are plain registers in the block's own logic, so the flow buffers the enable's fanout
like any other net. The timing is ``SyncFIFO``'s: a word written in cycle ``t`` can be read
from cycle ``t + 1`` on (first word falls through); a read and a write may share a cycle.

The oldest word is a register of its own (the *head*), refilled in the cycle it is read from
the rest of the queue (a ring of ``depth - 1`` registers) or, when that is empty, from the word
being written. So ``r_data`` is a flip-flop's output, not a multiplexer over the entries behind
the read index: on the ECP5 the WTU's aggregate queue's read index through that multiplexer
into the emitter's payload was a placed path of 12.3 to 12.9 ns.
"""

from amaranth.hdl import Array, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["RegisterFIFO"]


class RegisterFIFO(wiring.Component):
    """A queue of ``depth`` words of ``width`` bits in flip-flops.

    Parameters
    ----------
    width : int
        Bits of a word, at least 1.
    depth : int
        Words the queue holds, at least 1.

    Members
    -------
    w_data : In(width)
    w_en : In(1)
        Write ``w_data`` (taken only while ``w_rdy``).
    w_rdy : Out(1)
        The queue has room.
    r_data : Out(width)
        The oldest word, valid while ``r_rdy``.
    r_en : In(1)
        Drop the oldest word (only while ``r_rdy``).
    r_rdy : Out(1)
        The queue holds a word.
    level : Out(range(depth + 1))
        Words held.

    Raises
    ------
    TypeError
        If ``width`` or ``depth`` is not an int.
    ValueError
        If ``width`` or ``depth`` is below 1.
    """

    def __init__(self, *, width, depth):
        for name, value in (("width", width), ("depth", depth)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be an int, not {value!r}")
            if value < 1:
                raise ValueError(f"{name} must be at least 1, not {value!r}")
        self._width, self._depth = width, depth
        super().__init__({
            "w_data": In(width), "w_en": In(1), "w_rdy": Out(1),
            "r_data": Out(width), "r_en": In(1), "r_rdy": Out(1),
            "level": Out(range(depth + 1)),
        })

    @property
    def depth(self):
        """Words the queue holds."""
        return self._depth

    def elaborate(self, platform):
        body_depth = self._depth - 1
        m = Module()
        head = Signal(self._width)
        head_valid = Signal()
        write = Signal()
        read = Signal()
        m.d.comb += [
            self.w_rdy.eq(self.level != self._depth), self.r_rdy.eq(head_valid),
            write.eq(self.w_en & self.w_rdy), read.eq(self.r_en & self.r_rdy),
            self.r_data.eq(head),
        ]
        m.d.sync += self.level.eq(self.level + write - read)
        # The head is refilled when it is read or empty: from the body first (order kept),
        # else from the word being written, else it becomes empty.
        refill = Signal()
        m.d.comb += refill.eq(read | ~head_valid)
        if body_depth == 0:
            with m.If(refill):
                m.d.sync += [head.eq(self.w_data), head_valid.eq(write)]
            return m
        entries = Array(Signal(self._width, name=f"entry{index}") for index in range(body_depth))
        write_at = Signal(range(body_depth))
        read_at = Signal(range(body_depth))
        body_level = Signal(range(body_depth + 1))
        body_empty = Signal()
        m.d.comb += body_empty.eq(body_level == 0)
        into_body = Signal()
        out_of_body = Signal()
        m.d.comb += [into_body.eq(write & ~(refill & body_empty)),
                     out_of_body.eq(refill & ~body_empty)]
        with m.If(refill):
            m.d.sync += [head.eq(Mux(body_empty, self.w_data, entries[read_at])),
                         head_valid.eq(~body_empty | write)]
        with m.If(into_body):
            m.d.sync += [entries[write_at].eq(self.w_data),
                         write_at.eq(_after(write_at, body_depth))]
        with m.If(out_of_body):
            m.d.sync += read_at.eq(_after(read_at, body_depth))
        m.d.sync += body_level.eq(body_level + into_body - out_of_body)
        return m


def _after(index, depth):
    """The index after ``index`` in a ring of ``depth``."""
    if depth == 1:
        return index
    return Mux(index == depth - 1, 0, index + 1)
