# amaranth: UnusedElaboratable=no
"""The stream verification kit itself: it must fail on deadlocks, extra beats and broken streams.

A one-register stream stage (``Stage``) is the device under test, built correct or with one
injected defect; the kit must pass the correct one and name the fault of each defective one.
"""

import pytest
from amaranth.hdl import Module, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from sim.kit.amaranth_sim import AmaranthBench
from sim.kit.core import (DeadlockError, ExtraBeatError, ProtocolError, StallPattern,
                          cycle_limit)
from sim.payloads import pack, unpack

LAYOUT = data.StructLayout({"value": unsigned(8), "last": unsigned(1)})


class Stage(wiring.Component):
    """A registered stream stage; ``defect`` injects one protocol or data bug."""

    i: In(stream.Signature(LAYOUT))
    o: Out(stream.Signature(LAYOUT))

    def __init__(self, defect=None):
        self.defect = defect
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        repeated = Signal()
        if self.defect == "ready_ignores_backpressure":
            m.d.comb += self.i.ready.eq(1)
        else:
            m.d.comb += self.i.ready.eq(~self.o.valid | self.o.ready)
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += self.o.valid.eq(0)
            if self.defect == "extra_beat":  # the last beat goes out twice
                with m.If(self.o.payload.last & ~repeated):
                    m.d.sync += [self.o.valid.eq(1), repeated.eq(1)]
        if self.defect == "payload_changes_while_stalled":
            with m.If(self.o.valid & ~self.o.ready):
                m.d.sync += self.o.payload.value.eq(self.o.payload.value + 1)
        if self.defect == "valid_drops_while_stalled":
            with m.If(self.o.valid & ~self.o.ready):
                m.d.sync += self.o.valid.eq(0)
        with m.If(self.i.valid & self.i.ready):
            if self.defect != "deadlock":
                m.d.sync += self.o.valid.eq(1)
            m.d.sync += self.o.payload.eq(self.i.payload)
        return m


BEATS = [{"value": value, "last": int(value == 9)} for value in range(10)]


def run_stage(defect=None, stall=0.5):
    bench = AmaranthBench(Stage(defect), ["i"], ["o"], stall=stall, seed=1)
    bench.drivers["i"].send(BEATS)
    bench.run(lambda: len(bench.monitors["o"].transfers) >= len(BEATS),
              cycle_limit(len(BEATS), stall, stall))
    return bench.monitors["o"].beats


def test_correct_stage_passes_with_stalls():
    assert run_stage() == BEATS


def test_deadlock_fails_fast_naming_the_streams():
    with pytest.raises(DeadlockError) as error:
        run_stage("deadlock")
    assert "output stream 'o': 0 beats received" in str(error.value)
    assert "input stream 'i'" in str(error.value)


def test_extra_beat_after_the_last_fails():
    with pytest.raises(ExtraBeatError, match="beats after the last expected one"):
        run_stage("extra_beat", stall=0.0)


@pytest.mark.parametrize("defect, message", [
    ("payload_changes_while_stalled", "the payload changed"),
    ("valid_drops_while_stalled", "valid dropped"),
])
def test_broken_stream_contract_fails(defect, message):
    with pytest.raises(ProtocolError, match=message):
        run_stage(defect)


def test_ready_that_ignores_backpressure_is_caught():
    # A new beat overwrites the stalled one: the monitor sees the payload change.
    with pytest.raises(ProtocolError, match="the payload changed"):
        run_stage("ready_ignores_backpressure")


def test_cycle_limit_and_stall_arguments_are_checked():
    # (2 * 100 + 200) / (1 - 0.5) = 800 cycles
    assert cycle_limit(100, 0.5) == 800
    with pytest.raises(ValueError, match="stall probability must be from 0 to below 1, not 1.0"):
        StallPattern(1.0)
    with pytest.raises(ValueError, match="twin_cycles must be at least 0, not -1"):
        cycle_limit(-1)


def test_pack_round_trips_nested_layouts_and_refuses_wide_values():
    layout = data.StructLayout({"a": unsigned(3), "b": data.ArrayLayout(unsigned(4), 3)})
    value = {"a": 5, "b": [1, 15, 7]}
    # a in bits 0-2, b[0] in 3-6, b[1] in 7-10, b[2] in 11-14
    assert pack(layout, value) == 5 | (1 << 3) | (15 << 7) | (7 << 11)
    assert unpack(layout, pack(layout, value)) == value
    with pytest.raises(ValueError, match="payload value must be from 0 to 15, not 16"):
        pack(layout, {"a": 0, "b": [16, 0, 0]})
