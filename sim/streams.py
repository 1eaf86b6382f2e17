"""cocotb drivers and monitors for Amaranth ``lib.stream`` ports of the generated Verilog.

Amaranth flattens a stream port ``i`` of a component into ``i__valid``, ``i__ready`` and
``i__payload`` (the payload's ``StructLayout`` packed into one vector, first member in the lowest
bits). :func:`pack` and :func:`unpack` convert between dicts of field values and that vector by
the same layout object the hardware uses, so a layout is defined once (``hw/layouts.py``).

Both ends take a seeded :class:`random.Random` and a stall probability: the source drops
``valid`` and the sink drops ``ready`` at random, which is how every stream is tested under
back-pressure.
"""

import random

from amaranth.lib import data
from cocotb.triggers import RisingEdge

__all__ = ["pack", "unpack", "StreamSource", "StreamSink", "reset_dut"]


def _fields(layout):
    if isinstance(layout, data.StructLayout):
        return [(name, field.offset, field.width) for name, field in layout]
    return None


def pack(layout, value):
    """The integer of payload ``value`` (a dict of field -> int, or an int) laid out by ``layout``."""
    fields = _fields(layout)
    if fields is None:
        return int(value)
    word = 0
    for name, offset, width in fields:
        field_value = int(value[name])
        if not 0 <= field_value < (1 << width):
            raise ValueError(f"payload field {name!r} must be from 0 to {(1 << width) - 1}, "
                             f"not {field_value}")
        word |= field_value << offset
    return word


def unpack(layout, word):
    """The payload of integer ``word`` as a dict of field -> int (or an int for a plain shape)."""
    fields = _fields(layout)
    word = int(word)
    if fields is None:
        return word
    return {name: (word >> offset) & ((1 << width) - 1) for name, offset, width in fields}


async def reset_dut(dut, cycles=3):
    """Hold ``dut.rst`` high for ``cycles`` rising edges of ``dut.clk``."""
    dut.rst.value = 1
    for _ in range(cycles):
        await RisingEdge(dut.clk)
    dut.rst.value = 0


class _StreamEnd:
    """The handles of stream port ``prefix`` of ``dut``, a payload layout and a stall source."""

    def __init__(self, dut, prefix, layout, rng, stall):
        if not 0.0 <= stall < 1.0:
            raise ValueError(f"stall must be a probability from 0 to below 1, not {stall!r}")
        self._clk = dut.clk
        self._valid = getattr(dut, f"{prefix}__valid")
        self._ready = getattr(dut, f"{prefix}__ready")
        self._payload = getattr(dut, f"{prefix}__payload")
        self._layout = layout
        self._rng = rng
        self._stall = stall


class StreamSource(_StreamEnd):
    """Drives the stream port ``prefix`` of ``dut`` with payloads, stalling ``valid`` at random.

    Parameters
    ----------
    dut : cocotb handle
        The top level.
    prefix : str
        Port name of the stream (``i`` for ``i__valid``/``i__ready``/``i__payload``).
    layout : amaranth shape or layout
        The payload layout.
    rng : random.Random, optional
        Source of the stalls.
    stall : float
        Probability of an idle cycle before each transfer, from 0 to below 1.
    """

    def __init__(self, dut, prefix, layout, rng=None, stall=0.0):
        super().__init__(dut, prefix, layout, rng or random.Random(0), stall)
        self._valid.value = 0

    async def send(self, payloads):
        """Transfer every payload of ``payloads`` in order."""
        for payload in payloads:
            while self._rng.random() < self._stall:
                self._valid.value = 0
                await RisingEdge(self._clk)
            self._valid.value = 1
            self._payload.value = pack(self._layout, payload)
            while True:
                await RisingEdge(self._clk)
                if self._ready.value:
                    break
        self._valid.value = 0


class StreamSink(_StreamEnd):
    """Receives from the stream port ``prefix`` of ``dut``, stalling ``ready`` at random.

    Parameters are those of :class:`StreamSource`; ``stall`` is the probability that ``ready``
    is low in a cycle.
    """

    def __init__(self, dut, prefix, layout, rng=None, stall=0.0):
        super().__init__(dut, prefix, layout, rng or random.Random(1), stall)
        self._ready.value = 0

    async def receive(self, count=None, until=None):
        """Collect ``count`` payloads, or payloads until ``until(payload)`` is true for one.

        Returns the list of payloads (dicts for struct layouts), in order.
        """
        received = []
        while count is None or len(received) < count:
            ready = self._rng.random() >= self._stall
            self._ready.value = int(ready)
            await RisingEdge(self._clk)
            # Right after the edge, signals still read their values from before it: the
            # transfer happened on this edge when both were high.
            if ready and self._valid.value:
                payload = unpack(self._layout, self._payload.value)
                received.append(payload)
                if until is not None and until(payload):
                    break
        self._ready.value = 0
        return received
