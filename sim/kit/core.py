"""The simulator-independent part of the stream verification kit.

One sampling convention everywhere: a beat is transferred at a rising edge of the clock at which
``valid`` and ``ready`` are both high and reset is low; the payload is the value it had just
before that edge. A driver offers its beats in order and, once it raised ``valid``, holds the beat
until it is taken (the ``lib.stream`` rule); a monitor takes every beat its port offers, dropping
``ready`` at random. Both keep a :class:`Transcript` of ``(cycle, beat)`` per stream.

The driver and monitor coroutines here are written once, against a small *adapter* with three
operations (``set(signal, value)``, ``await edge(*signals)`` returning the values the signals had
just before the next rising edge, and ``reset_signal``): :mod:`sim.kit.amaranth_sim` adapts it
to Amaranth's simulator, :mod:`sim.kit.cocotb_sim` to cocotb on the generated Verilog.

The controller (:func:`control`) runs until the test's completion predicate holds, then keeps
the clock running for :data:`DRAIN_CYCLES` idle cycles with every output ready and fails on any
beat that arrives then (:class:`ExtraBeatError`). Monitors check each output's stream contract
as they go (:class:`ProtocolError`). It fails with :class:`DeadlockError`, naming
the streams that stopped moving, when the run exceeds its cycle limit (:func:`cycle_limit`:
derived from the twin's exact cycle count).
"""

import collections
import math
import random

__all__ = ["DRAIN_CYCLES", "LIMIT_FACTOR", "LIMIT_SLACK", "DeadlockError", "ExtraBeatError",
           "ProtocolError", "describe_streams", "wait_until",
           "StallPattern", "StreamDriver", "StreamMonitor", "cycle_limit", "control"]

#: Idle cycles after the last expected beat in which any further beat is an error.
DRAIN_CYCLES = 32
#: Margin of the cycle limit over the twin's stall-free count: twice it ...
LIMIT_FACTOR = 2
#: ... plus this many cycles (reset, pipeline fill, drain of a short run).
LIMIT_SLACK = 200


class DeadlockError(AssertionError):
    """A simulation ran past its cycle limit; the message names the streams that stalled."""


class ExtraBeatError(AssertionError):
    """A beat arrived on an output after the last expected one."""


class ProtocolError(AssertionError):
    """An output broke the stream contract: ``valid`` or the payload changed while stalled."""


def cycle_limit(twin_cycles, *stall_probabilities):
    """The cycle limit of a simulation whose twin takes ``twin_cycles`` without stalls.

    ``(LIMIT_FACTOR * twin_cycles + LIMIT_SLACK)`` divided by ``1 - p`` for each stall probability
    ``p`` of the run's streams that can hold it up (an input idling, an output not ready): random
    stalls of probability ``p`` stretch a run by ``1 / (1 - p)`` on average, and the factor of two
    covers the variation of a seeded run. A deadlocked design therefore fails after a small
    multiple of the time a correct one takes, never hangs.

    Raises
    ------
    ValueError
        If ``twin_cycles`` is negative or a probability is outside [0, 1).
    """
    if twin_cycles < 0:
        raise ValueError(f"twin_cycles must be at least 0, not {twin_cycles!r}")
    limit = LIMIT_FACTOR * float(twin_cycles) + LIMIT_SLACK
    for probability in stall_probabilities:
        StallPattern.check(probability)
        limit /= 1.0 - probability
    return math.ceil(limit)


class StallPattern:
    """Seeded random idle cycles of one stream end: ``idle()`` is true with probability ``p``.

    Parameters
    ----------
    probability : float
        From 0 (never idle) to below 1.
    seed : int or str
        Seed of the pattern; two ends with the same seed and probability stall alike.
    """

    def __init__(self, probability=0.0, seed=0):
        self.check(probability)
        self._probability = float(probability)
        self._rng = random.Random(seed)

    @staticmethod
    def check(probability):
        """Raise ValueError unless ``probability`` is from 0 to below 1."""
        if not isinstance(probability, (int, float)) or not 0.0 <= probability < 1.0:
            raise ValueError(f"stall probability must be from 0 to below 1, not {probability!r}")

    @property
    def probability(self):
        """The probability of an idle cycle."""
        return self._probability

    def idle(self):
        """Whether this cycle is idle (draws from the seeded generator only when it may be)."""
        return self._probability > 0 and self._rng.random() < self._probability


class _StreamEnd:
    """What drivers and monitors share: a port, its payload codec, a transcript, stalls."""

    def __init__(self, name, port, layout, stalls, pack, unpack):
        self.name = name
        self.port = port
        self.layout = layout
        self.stalls = stalls
        self._pack = pack
        self._unpack = unpack
        self.transfers = []          # (cycle, beat)
        self.cycle = 0               # rising edges seen
        self.last_move = 0           # cycle of the last transfer (or of the start)

    @property
    def beats(self):
        """The transferred beats, in order."""
        return [beat for _, beat in self.transfers]

    def clear(self):
        """Forget the transcript (after a reset the test starts a new one)."""
        self.transfers.clear()
        self.last_move = self.cycle


class StreamDriver(_StreamEnd):
    """Offers queued beats on an input stream, idling at random between beats."""

    def __init__(self, *args):
        super().__init__(*args)
        self.pending = collections.deque()
        self.offering = False

    def send(self, beats):
        """Queue ``beats`` (payload values: dicts, lists or ints by the layout)."""
        self.pending.extend(beats)

    def clear(self):
        """Drop the queued beats and the transcript."""
        super().clear()
        self.pending.clear()

    @property
    def done(self):
        """Every queued beat has been transferred."""
        return not self.pending

    async def run(self, sim):
        """The driver process (runs for the whole simulation).

        Like a source that shares the block's reset, it offers nothing in the cycle after an
        edge at which reset was high, so a test can drop or replace the queued beats while
        reset is held without a stale beat slipping in after it.
        """
        port = self.port
        in_reset = False
        while True:
            offer = (bool(self.pending) and not in_reset
                     and (self.offering or not self.stalls.idle()))
            sim.set(port.valid, int(offer))
            current = self.pending[0] if offer else None
            if offer:
                sim.set(port.payload, self._pack(self.layout, current))
            reset, ready = await sim.edge(sim.reset_signal, port.ready)
            self.cycle += 1
            in_reset = bool(reset)
            self.offering = offer and not in_reset
            if offer and ready and not reset:
                self.transfers.append((self.cycle - 1, current))
                if self.pending and self.pending[0] is current:
                    self.pending.popleft()
                self.offering = False
                self.last_move = self.cycle

    def describe(self):
        """One line on this stream's progress, for a deadlock report."""
        state = ("offering a beat without ready" if self.offering else "idle")
        return (f"input stream {self.name!r}: {len(self.transfers)} beats sent, "
                f"{len(self.pending)} left, {state}, last transfer "
                f"{self.cycle - self.last_move} cycles ago")


class StreamMonitor(_StreamEnd):
    """Takes every beat of an output stream, dropping ``ready`` at random.

    It also checks the stream contract of the output (``amaranth.lib.stream``): once ``valid``
    is high at an edge without ``ready``, it must still be high at the next edge with the same
    payload (:class:`ProtocolError` otherwise).
    """

    def __init__(self, *args):
        super().__init__(*args)
        self.always_ready = False
        self.valid_seen = False

    async def run(self, sim):
        """The monitor process (runs for the whole simulation)."""
        port = self.port
        held = None          # payload offered without ready at the last edge
        while True:
            ready = self.always_ready or not self.stalls.idle()
            sim.set(port.ready, int(ready))
            reset, valid, payload = await sim.edge(sim.reset_signal, port.valid, port.payload)
            self.cycle += 1
            self.valid_seen = bool(valid)
            if reset:
                held = None
                continue
            if held is not None and (not valid or payload != held):
                raise ProtocolError(
                    f"output stream {self.name!r}: at cycle {self.cycle - 1} "
                    + ("valid dropped" if not valid else "the payload changed")
                    + " before the stalled beat was taken")
            if valid and payload is None:
                raise ProtocolError(f"output stream {self.name!r}: payload has unknown (X/Z) "
                                    f"bits while valid at cycle {self.cycle - 1}")
            held = payload if valid and not ready else None
            if ready and valid:
                self.transfers.append((self.cycle - 1, self._unpack(self.layout, payload)))
                self.last_move = self.cycle

    def describe(self):
        """One line on this stream's progress, for a deadlock report."""
        return (f"output stream {self.name!r}: {len(self.transfers)} beats received, valid "
                f"{'high' if self.valid_seen else 'low'} at the last edge, last transfer "
                f"{self.cycle - self.last_move} cycles ago")


def describe_streams(drivers, monitors):
    """The progress of every stream end, one line each (for deadlock reports)."""
    return "\n  ".join(end.describe() for end in [*drivers.values(), *monitors.values()])


async def wait_until(sim, predicate, limit, what):
    """Let clock cycles pass until ``predicate()``; a :class:`DeadlockError` after ``limit``.

    Every wait of a test scenario goes through this, so no loop of a test can hang.
    """
    for _ in range(limit):
        if predicate():
            return
        await sim.edge()
    if not predicate():
        raise DeadlockError(f"waited {limit} cycles for {what}")


async def control(sim, drivers, monitors, complete, limit, drain=DRAIN_CYCLES):
    """Run until ``complete()`` and the drivers are done, then drain; raise on a deadlock.

    Parameters
    ----------
    sim : adapter
        The simulator adapter (``edge``).
    drivers, monitors : dict of name -> StreamDriver / StreamMonitor
    complete : callable
        ``complete()`` is true once every expected output beat has arrived.
    limit : int
        Cycles the run may take (see :func:`cycle_limit`).
    drain : int
        Idle cycles after completion in which no output may deliver a beat.

    Returns
    -------
    int
        Cycles until completion.

    Raises
    ------
    DeadlockError
        If the run is not complete within ``limit`` cycles.
    ExtraBeatError
        If an output delivers a beat during the drain.
    """
    cycles = 0
    while not (complete() and all(driver.done for driver in drivers.values())):
        if cycles >= limit:
            raise DeadlockError(f"no completion within the cycle limit of {limit} cycles:\n  "
                                + describe_streams(drivers, monitors))
        await sim.edge()
        cycles += 1
    counts = {name: len(monitor.transfers) for name, monitor in monitors.items()}
    for monitor in monitors.values():
        monitor.always_ready = True
    for _ in range(drain):
        await sim.edge()
    extra = {name: monitor.beats[counts[name]:] for name, monitor in monitors.items()
             if len(monitor.transfers) > counts[name]}
    for monitor in monitors.values():
        monitor.always_ready = False
    if extra:
        raise ExtraBeatError(f"beats after the last expected one: {extra}")
    return cycles
