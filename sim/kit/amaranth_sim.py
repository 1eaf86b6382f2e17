"""The stream verification kit on Amaranth's simulator (the fast tests in ``tests/test_hw_*.py``).

:class:`AmaranthBench` wraps a component in a ``sync`` clock domain with a reset the test can
pulse, gives each of its stream ports a :class:`~sim.kit.core.StreamDriver` or
:class:`~sim.kit.core.StreamMonitor` with seeded stalls, and runs until the test's completion
predicate holds (then drains, see :func:`sim.kit.core.control`), within a cycle limit.
:func:`check_block` is the usual test: problems through the RTL, decoded and compared with the
twin by the block's codec. :func:`simulate` runs one testbench that drives a part cycle by
cycle (the sub-component tests), with a cycle limit. :func:`built_for` gives a component the
build platform of an FPGA board in the simulator, which elaborates without one;
:func:`poisoning` makes a board's platform give the memory words its block RAMs leave
undefined inverted.
"""

import functools

from amaranth.hdl import ClockDomain, Fragment, Module
from amaranth.lib import data
from amaranth.sim import Simulator

from hw.registry import block as registered_block
from sim.kit.core import (DRAIN_CYCLES, DeadlockError, StallPattern, StreamDriver,
                          StreamMonitor, control, describe_streams)
from sim.kit.scoreboard import compare, expected_run
from sim.payloads import pack, unpack

__all__ = ["AmaranthAdapter", "AmaranthBench", "built_for", "check_block", "PERIOD", "poisoning",
           "simulate"]


def built_for(component_class, platform):
    """A subclass of ``component_class`` that elaborates itself and its parts as a build for
    ``platform`` does (``platform.build`` passes itself to every ``elaborate``), so that the
    simulator, which elaborates without a platform, runs the FPGA form of the component.

    Parameters
    ----------
    component_class : type
        A ``wiring.Component`` class; the subclass takes the same constructor arguments.
    platform : amaranth.build.Platform
        E.g. ``amaranth_boards.ulx3s.ULX3S_85F_Platform()``.
    """
    class BuiltFor(component_class):
        def elaborate(self, _platform):
            return Fragment.get(super().elaborate(platform), platform)

    name = f"{component_class.__name__}For{type(platform).__name__}"
    BuiltFor.__name__ = BuiltFor.__qualname__ = name
    return BuiltFor


def poisoning(platform_class):
    """An instance of a subclass of ``platform_class`` that asks the components built for it to
    give the words their memories leave undefined inverted
    (:func:`hw.component.poisons_undefined_reads`): with :func:`built_for`, a test whose outputs
    still equal the twin's shows that none of them depends on such a word."""
    poisoned = type(f"Poisoning{platform_class.__name__}", (platform_class,),
                    {"poison_undefined_reads": True})
    return poisoned()


def _value(signal):
    return signal.as_value() if isinstance(signal, data.View) else signal


class AmaranthAdapter:
    """The kit's simulator operations on one Amaranth testbench context."""

    def __init__(self, ctx, domain):
        self._ctx = ctx
        self.reset_signal = domain.rst

    @property
    def ctx(self):
        """The Amaranth testbench context (for scenario steps the kit does not cover)."""
        return self._ctx

    def set(self, signal, value):
        """Drive ``signal`` (a signal or a ``lib.data`` view) with an integer."""
        self._ctx.set(_value(signal), value)

    def get(self, signal):
        """The current value of ``signal`` as an integer."""
        return self._ctx.get(_value(signal))

    async def edge(self, *signals):
        """Wait for the next rising edge; return the values ``signals`` had just before it."""
        sampled = await self._ctx.tick().sample(*[_value(signal) for signal in signals])
        return sampled[2:]


class AmaranthBench:
    """A component under test with a driver per input stream and a monitor per output stream.

    Parameters
    ----------
    dut : wiring.Component
    inputs, outputs : iterable of str
        Names of its input and output stream ports.
    stall : float or dict
        Stall probability of every stream, or per stream name (default 0).
    seed : int
        Seed of the stall patterns (each stream draws from its own generator).
    """

    def __init__(self, dut, inputs, outputs, *, stall=0.0, seed=0):
        self.dut = dut
        self.top = Module()
        self.top.domains.sync = self.domain = ClockDomain("sync")
        self.top.submodules.dut = dut
        self.drivers = {name: self._end(StreamDriver, name, stall, seed) for name in inputs}
        self.monitors = {name: self._end(StreamMonitor, name, stall, seed) for name in outputs}
        self.cycles = None

    def _end(self, kind, name, stall, seed):
        probability = stall.get(name, 0.0) if isinstance(stall, dict) else stall
        port = getattr(self.dut, name)
        return kind(name, port, port.payload.shape(), StallPattern(probability, f"{seed}:{name}"),
                    pack, unpack)

    @property
    def stall_probabilities(self):
        """The stall probability of every stream end."""
        return [end.stalls.probability for end in [*self.drivers.values(), *self.monitors.values()]]

    @property
    def transcript(self):
        """Stream name -> ``(cycle, beat)`` transfers of the run."""
        return {name: end.transfers for name, end in {**self.drivers, **self.monitors}.items()}

    def received(self):
        """Output stream name -> beats received so far."""
        return {name: monitor.beats for name, monitor in self.monitors.items()}

    def run(self, complete, limit, *, scenario=None, drain=DRAIN_CYCLES, vcd=None):
        """Simulate until ``complete()``, then drain; see :func:`sim.kit.core.control`.

        Parameters
        ----------
        complete : callable
            No arguments; true once every expected output has arrived.
        limit : int
            Cycle limit (``sim.kit.core.cycle_limit``).
        scenario : async callable, optional
            ``scenario(adapter, bench)`` runs first, in the controlling testbench (resets,
            status checks); the drivers and monitors run meanwhile.
        vcd : path-like, optional
            Write a waveform there.
        """
        sim = Simulator(self.top)
        sim.add_clock(PERIOD)
        for end in [*self.drivers.values(), *self.monitors.values()]:
            sim.add_testbench(functools.partial(self._process, end), background=True)

        async def controller(ctx):
            adapter = AmaranthAdapter(ctx, self.domain)
            if scenario is not None:
                await scenario(adapter, self)
            self.cycles = await control(adapter, self.drivers, self.monitors, complete, limit,
                                        drain)

        async def watchdog(ctx):
            # The whole run, scenario included, within twice the limit plus the drain.
            for _ in range(2 * limit + drain):
                await ctx.tick()
            raise DeadlockError(f"the simulation ran past {2 * limit + drain} cycles:\n  "
                                + describe_streams(self.drivers, self.monitors))

        sim.add_testbench(controller)
        sim.add_testbench(watchdog, background=True)
        if vcd is None:
            sim.run()
        else:
            with sim.write_vcd(str(vcd)):
                sim.run()
        return self.transcript

    async def _process(self, end, ctx):
        await end.run(AmaranthAdapter(ctx, self.domain))

    async def reset(self, sim, cycles=1):
        """In a scenario: hold reset for ``cycles`` edges, then drop every queued beat and
        start new transcripts."""
        sim.set(self.domain.rst, 1)
        for _ in range(cycles):
            await sim.edge()
        sim.set(self.domain.rst, 0)
        for end in [*self.drivers.values(), *self.monitors.values()]:
            end.clear()

    def send(self, beats):
        """Queue ``beats`` (stream name -> list of payloads) on the drivers."""
        for stream, stream_beats in beats.items():
            self.drivers[stream].send(stream_beats)


def check_block(name, config, problems, *, stall=0.0, seed=0, component=None, scenario=None):
    """Run ``problems`` through block ``name`` and assert the decoded outputs equal the twin's.

    Timing keys are compared when no stream stalls. ``scenario(adapter, bench)``, if given, runs
    first (for example a partial problem and a reset); the problems are queued when it ends.
    Returns the decoded arrays per problem.
    """
    entry = registered_block(name)
    codec = entry.make_codec()
    dut = component if component is not None else entry.build(config)
    bench = AmaranthBench(dut, codec.inputs, codec.outputs, stall=stall, seed=seed)
    beats = codec.input_beats(config, problems)
    expected, limit = expected_run(codec, config, problems, *bench.stall_probabilities)

    async def prologue(sim, bench):
        if scenario is not None:
            await scenario(sim, bench)
        bench.send(beats)

    transcript = bench.run(lambda: codec.complete(config, problems, bench.received()), limit,
                           scenario=prologue)
    return compare(codec, config, problems, transcript, expected,
                   timed=not any(bench.stall_probabilities))


#: Clock period of the kit's simulations (seconds); a combinational part's testbench waits this
#: long between two cases.
PERIOD = 1e-6


def simulate(dut, testbench, max_cycles, *, clocked=True):
    """Run ``testbench(ctx)`` on ``dut`` for at most ``max_cycles`` periods.

    Parameters
    ----------
    dut : wiring.Component
    testbench : async callable
        Takes the simulator context; returns when its checks are done.
    max_cycles : int
        Cycle limit.
    clocked : bool
        Add a clock to the ``sync`` domain (False for a purely combinational part).

    Raises
    ------
    DeadlockError
        If the testbench has not finished within ``max_cycles`` periods.
    """
    finished = []

    async def bench(ctx):
        await testbench(ctx)
        finished.append(True)

    sim = Simulator(dut)
    if clocked:
        sim.add_clock(PERIOD)
    sim.add_testbench(bench)
    sim.run_until(max_cycles * PERIOD)
    if not finished:
        raise DeadlockError(f"the testbench did not finish within {max_cycles} cycles")
