"""The stream verification kit under cocotb, on a block's generated Verilog (``sim/tb_*.py``).

:class:`TB` is the testbench of one registered block, in the style of verilog-axis: it starts
the clock, gives every stream port of the block (by its codec) a driver or a monitor with
seeded stalls, resets, and runs problems against the twin (:meth:`TB.check`) within a cycle
limit, draining after the last expected beat. Amaranth flattens a stream port ``i`` into
``i__valid``, ``i__ready`` and ``i__payload``; payloads are packed by the same layouts the
hardware uses (taken from the component built for the run's configuration).

:func:`file_run` is the ``file_run`` test of every testbench: the RTL engine of ``python -m
sim.run`` (stimulus and response ``.npz`` named by ``DRE_STIMULUS`` / ``DRE_RESPONSE``).
"""

import os
import types

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge

from hw.registry import block as registered_block
from model.npzio import load_arrays, save_arrays
from sim.kit.core import (DRAIN_CYCLES, StallPattern, StreamDriver, StreamMonitor, control,
                           wait_until)
from sim.kit.scoreboard import compare, expected_run
from sim.payloads import pack, unpack
from sim.runner import RESPONSE_ENV, STIMULUS_ENV, cocotb_config, cocotb_path

__all__ = ["CLOCK_NS", "CocotbAdapter", "TB", "file_run", "knob"]

#: Clock period of every testbench, in ns (simulation time only; the timing reports give the
#: real clock).
CLOCK_NS = 10


def knob(name, default):
    """A testbench setting from environment variable ``name`` (set by the pytest wrapper),
    converted like ``default``."""
    return type(default)(os.environ.get(name, default))


def _integer(value):
    """An integer of a cocotb value, or None when it has unknown (X/Z) bits."""
    try:
        return int(value)
    except ValueError:
        return None


class CocotbAdapter:
    """The kit's simulator operations on the generated Verilog of ``dut``."""

    def __init__(self, dut):
        self._clock = dut.clk
        self.reset_signal = dut.rst

    def set(self, handle, value):
        """Drive ``handle`` with an integer."""
        handle.value = value

    def get(self, handle):
        """The current value of ``handle`` (None with unknown bits)."""
        return _integer(handle.value)

    async def edge(self, *handles):
        """Wait for the next rising edge; return the values ``handles`` had just before it."""
        await RisingEdge(self._clock)
        # Right after the edge, signals still read the values the flip-flops sampled.
        return [_integer(handle.value) for handle in handles]


class TB:
    """Clock, reset, drivers, monitors and twin scoreboard of one block under cocotb.

    Parameters
    ----------
    dut : cocotb handle
        The top level (the block's generated Verilog).
    block : str
        Its name in :mod:`hw.registry`.
    stall : float
        Stall probability of every stream (change it with :meth:`set_stall`).
    seed : int
        Seed of the stall patterns.
    """

    def __init__(self, dut, block, *, stall=0.0, seed=0):
        self.dut = dut
        self.config = cocotb_config()
        entry = registered_block(block)
        self.codec = entry.make_codec()
        self.component = entry.build(self.config)
        self.adapter = CocotbAdapter(dut)
        self.seed = seed
        self.drivers = {name: self._end(StreamDriver, name) for name in self.codec.inputs}
        self.monitors = {name: self._end(StreamMonitor, name) for name in self.codec.outputs}
        self.set_stall(stall)
        dut.rst.value = 0
        cocotb.start_soon(Clock(dut.clk, CLOCK_NS, unit="ns").start())
        for end in self.ends:
            cocotb.start_soon(end.run(self.adapter))

    def _end(self, kind, name):
        port = types.SimpleNamespace(**{part: getattr(self.dut, f"{name}__{part}")
                                        for part in ("valid", "ready", "payload")})
        layout = getattr(self.component, name).payload.shape()
        return kind(name, port, layout, StallPattern(), pack, unpack)

    @property
    def ends(self):
        """Every driver and monitor."""
        return [*self.drivers.values(), *self.monitors.values()]

    def set_stall(self, probability):
        """Give every stream a fresh seeded stall pattern: ``probability`` for all, or per
        stream name (a dict; streams it omits never stall)."""
        for end in self.ends:
            chance = (probability.get(end.name, 0.0) if isinstance(probability, dict)
                      else probability)
            end.stalls = StallPattern(chance, f"{self.seed}:{end.name}")

    def clear(self):
        """Forget every transcript and queued beat."""
        for end in self.ends:
            end.clear()

    async def reset(self, cycles=3):
        """Hold reset for ``cycles`` rising edges, then start new transcripts."""
        self.dut.rst.value = 1
        for _ in range(cycles):
            await RisingEdge(self.dut.clk)
        self.dut.rst.value = 0
        self.clear()

    async def cycles(self, count):
        """Let ``count`` clock cycles pass."""
        for _ in range(count):
            await RisingEdge(self.dut.clk)

    async def wait_until(self, predicate, limit, what):
        """Let cycles pass until ``predicate()``; a DeadlockError naming ``what`` after ``limit``."""
        await wait_until(self.adapter, predicate, limit, what)

    def send(self, problems):
        """Queue the input beats of ``problems``."""
        for stream, beats in self.codec.input_beats(self.config, problems).items():
            self.drivers[stream].send(beats)

    async def run(self, problems, *, drain=DRAIN_CYCLES):
        """Send ``problems``, wait for all their outputs; returns the twin's expected arrays."""
        self.clear()
        self.send(problems)
        stalls = [end.stalls.probability for end in self.ends]
        expected, limit = expected_run(self.codec, self.config, problems, *stalls)
        received = lambda: {name: monitor.beats for name, monitor in self.monitors.items()}
        await control(self.adapter, self.drivers, self.monitors,
                      lambda: self.codec.complete(self.config, problems, received()), limit, drain)
        return expected

    @property
    def transcript(self):
        """Stream name -> ``(cycle, beat)`` transfers since the last :meth:`clear`."""
        return {end.name: end.transfers for end in self.ends}

    async def check(self, problems):
        """Run ``problems`` and assert the decoded outputs equal the twin's (timing unstalled).

        Returns the decoded arrays per problem.
        """
        expected = await self.run(problems)
        timed = not any(end.stalls.probability for end in self.ends)
        return compare(self.codec, self.config, problems, self.transcript, expected, timed=timed)


async def file_run(dut, block):
    """The RTL engine's test: the stimulus file's arrays as one problem, no stalls, decoded out.

    The twin gives only the cycle limit; the response holds what the RTL produced."""
    tb = TB(dut, block)
    await tb.reset()
    twin = registered_block(block).twin_module()
    problem = load_arrays(cocotb_path(STIMULUS_ENV), twin.INPUTS)
    await tb.run([problem])
    (result,) = tb.codec.decode(tb.config, [problem], tb.transcript)
    save_arrays(cocotb_path(RESPONSE_ENV), {key: np.asarray(value) for key, value in result.items()})
