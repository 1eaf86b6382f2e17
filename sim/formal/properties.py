"""Building blocks of the formal harnesses: free inputs, the stream contract, counters, bounds.

A harness (one module per block in :mod:`sim.formal`) wraps the unmodified component, drives
every input from free values (``AnySeq``: the solver picks them in every cycle), and states
properties in four groups, one group per SymbiYosys job so that each gets its own result, depth
and time:

``contract``
    The ``lib.stream`` rule on every output: once ``valid`` is high it stays high with the same
    payload until ``ready``. Inputs are *assumed* to keep the same rule (:func:`drive_input`).
``conservation``
    Counters of transfers: no output without the inputs that cause it, no input dropped or
    accepted beyond the block's capacity.
``response``
    With every output always ready (and, where a block needs it, every input always offered),
    the work in progress completes within the latency the block declares.
``invariants``
    Block-specific facts about the payloads (cluster ids within the table, selection closed
    under "higher score", descriptors ascending and disjoint, ...).

A fifth kind of job, ``cover``, asserts nothing and asks the solver for a trace reaching each
``Cover`` statement: the antecedent of every property (a stall that ends in a transfer, a full
unit, an overflow, a completed problem, ...) is reachable, so no proof passes vacuously.

The clock domain of a harness has no reset: every register starts from its initial value, which
is the state after reset. Amaranth 0.5 has no ``Past``; the previous values a property needs are
kept in registers of the harness (:class:`Previous`).
"""

from amaranth.asserts import AnyConst, AnySeq
from amaranth.hdl import Assert, Assume, ClockDomain, Cover, Elaboratable, Module, Mux, Signal

__all__ = ["GROUPS", "JOB_KINDS", "PropertySet", "Previous", "FormalHarness", "drive_input",
           "drive_output", "counter", "waiting_cycles", "free_constant", "ProblemQueue"]

#: Property groups, one SymbiYosys job each (see the module docstring).
GROUPS = ("contract", "conservation", "response", "invariants")
#: Every kind of job: the property groups, then the reachability job.
JOB_KINDS = GROUPS + ("cover",)


class PropertySet:
    """The group of properties one job asserts (the others are left out), or ``cover``.

    Parameters
    ----------
    kind : str
        One of :data:`JOB_KINDS`.

    Raises
    ------
    ValueError
        If ``kind`` is not one of :data:`JOB_KINDS`.
    """

    def __init__(self, kind):
        if kind not in JOB_KINDS:
            raise ValueError(f"kind must be one of {', '.join(JOB_KINDS)}, not {kind!r}")
        self._kind = kind

    @property
    def kind(self):
        """The group asserted by this job, or ``cover``."""
        return self._kind

    @property
    def responding(self):
        """Whether this job proves bounded response: outputs are then always ready."""
        return self._kind == "response"

    def check(self, m, group, condition, *, src_loc_at=0):
        """Assert ``condition`` in every cycle when this job proves ``group``."""
        if group not in GROUPS:
            raise ValueError(f"group must be one of {', '.join(GROUPS)}, not {group!r}")
        if group == self._kind:
            m.d.comb += Assert(condition, src_loc_at=1 + src_loc_at)

    def checker(self, m, group):
        """``check`` bound to ``m`` and ``group``: a one-argument function (whose callers'
        lines name the assertions in SymbiYosys's reports)."""
        def check(condition):
            self.check(m, group, condition, src_loc_at=1)
        return check

    def assume(self, m, condition):
        """Assume ``condition`` in every cycle, in every job (an input assumption)."""
        m.d.comb += Assume(condition, src_loc_at=1)

    def cover(self, m, condition):
        """Ask for a trace reaching ``condition`` when this is the ``cover`` job."""
        if self._kind == "cover":
            m.d.comb += Cover(condition, src_loc_at=1)


class Previous:
    """Registers holding the values of a stream's ``valid``, ``ready`` and payload one cycle ago.

    Members
    -------
    valid, ready : Signal
        The previous cycle's ``valid`` and ``ready`` (0 in the first cycle).
    payload : Signal
        The previous cycle's payload bits.
    held : Value
        The previous cycle offered a beat that was not taken: it must still be offered now.
    """

    def __init__(self, m, port, name):
        payload = port.payload.as_value()
        self.valid = Signal(name=f"{name}_prev_valid")
        self.ready = Signal(name=f"{name}_prev_ready")
        self.payload = Signal(len(payload), name=f"{name}_prev_payload")
        m.d.sync += [self.valid.eq(port.valid), self.ready.eq(port.ready),
                     self.payload.eq(payload)]
        self.held = self.valid & ~self.ready

    def kept(self, port):
        """The stream rule: if a beat was held back, it is still offered unchanged."""
        return ~self.held | (port.valid & (port.payload.as_value() == self.payload))


class FormalHarness(Elaboratable):
    """Base of the block harnesses: the clock domain, the property set, the ports to convert.

    The harness's clock domain ``sync`` has no reset (see the module docstring); its clock is
    the one port of the converted design, so that every register steps once per solver step
    (an undriven clock would leave the registers constant and every property vacuous).
    Subclasses implement :meth:`harness`.

    Parameters
    ----------
    config : DREConfig
        The configuration of the block under proof.
    kind : str
        A job kind of :data:`JOB_KINDS`.
    """

    def __init__(self, config, kind):
        self._config = config
        self._props = PropertySet(kind)
        self._domain = ClockDomain("sync", reset_less=True)

    @property
    def ports(self):
        """The ports of the converted harness: its clock only."""
        return [self._domain.clk]

    def elaborate(self, platform):
        m = Module()
        m.domains.sync = self._domain
        self.harness(m, self._config, self._props)
        return m

    def harness(self, m, config, props):
        """Add the component, its free inputs and the properties of ``props`` to ``m``."""
        raise NotImplementedError


def free_constant(m, width, name):
    """A value the solver chooses once for the whole trace (``AnyConst``), as a named signal."""
    value = Signal(width, name=name)
    m.d.comb += value.eq(AnyConst(width))
    return value


def drive_input(m, port, props, name, *, always_valid=False):
    """Drive input stream ``port`` from free values and assume its producer keeps the contract.

    Parameters
    ----------
    m : Module
    port : stream interface
        The component's input (``valid``/``payload`` driven here, ``ready`` read).
    props : PropertySet
    name : str
        Prefix of the harness's signals.
    always_valid : bool
        Also assume a beat is offered in every cycle (bounded-response jobs of blocks whose
        latency counts only cycles in which an input could have been taken).

    Returns
    -------
    Signal
        High in the cycles where a beat is transferred.
    """
    payload = port.payload.as_value()
    m.d.comb += [port.valid.eq(AnySeq(1)), payload.eq(AnySeq(len(payload)))]
    previous = Previous(m, port, name)
    m.d.comb += Assume(previous.kept(port))
    if always_valid:
        m.d.comb += Assume(port.valid)
    transfer = Signal(name=f"{name}_transfer")
    m.d.comb += transfer.eq(port.valid & port.ready)
    props.cover(m, previous.held & transfer)        # the unit back-pressured, then took the beat
    return transfer


def drive_output(m, port, props, name):
    """Drive output stream ``port``'s ``ready`` freely and check the stream contract on it.

    ``ready`` is free in every job but ``response``, where it is assumed high in every cycle.

    Returns
    -------
    Signal
        High in the cycles where a beat is transferred.
    """
    m.d.comb += port.ready.eq(AnySeq(1))
    if props.responding:
        m.d.comb += Assume(port.ready)
    previous = Previous(m, port, name)
    props.check(m, "contract", previous.kept(port))
    transfer = Signal(name=f"{name}_transfer")
    m.d.comb += transfer.eq(port.valid & port.ready)
    props.cover(m, previous.held & transfer)        # a held beat that was then taken
    return transfer


def counter(m, event, width, name):
    """A register counting the cycles in which ``event`` is high (``width`` bits, no wrap within
    the depths the jobs use: each job's depth is far below ``2**width``)."""
    count = Signal(width, name=name)
    with m.If(event):
        m.d.sync += count.eq(count + 1)
    return count


def waiting_cycles(m, *, pending, progress, width, name):
    """Cycles in a row during which work was ``pending`` and no ``progress`` was made.

    The register is cleared in a cycle with ``progress`` or without ``pending`` work, counts up
    (saturating) otherwise; a bounded-response property asserts it stays within the block's
    declared latency.
    """
    count = Signal(width, name=name)
    with m.If(progress | ~pending):
        m.d.sync += count.eq(0)
    with m.Elif(count != (1 << width) - 1):
        m.d.sync += count.eq(count + 1)
    return count


class ProblemQueue:
    """Per-problem facts of a harness, in problem order, for a block that starts a problem
    before an output stream has finished the previous one.

    A value is pushed when a problem starts (on an input) and popped when the output stream
    that the value concerns finishes that problem; :attr:`head` is the value of the oldest
    problem the output has not finished. A push and a pop may happen in the same cycle.

    Parameters
    ----------
    m : Module
    push : Value
        High in the cycles where a problem starts.
    value : Value
        Its fact, taken when ``push`` is high.
    pop : Value
        High in the cycles where the output finishes its oldest problem.
    depth : int
        Problems the queue holds; the harness asserts elsewhere that the block never has more
        inside (a push into a full queue is dropped and :attr:`overflow` rises).
    name : str

    Members
    -------
    head : Signal
        The oldest problem's value (the just-pushed one when the queue was empty).
    count : Signal
        Problems in the queue.
    overflow : Signal
        Sticky: a push found the queue full.
    """

    def __init__(self, m, push, value, pop, *, depth, name):
        width = len(value)
        entries = [Signal(width, name=f"{name}_entry{index}") for index in range(depth)]
        self.count = Signal(range(depth + 1), name=f"{name}_count")
        self.overflow = Signal(name=f"{name}_overflow")
        self.head = Signal(width, name=f"{name}_head")
        m.d.comb += self.head.eq(Mux(self.count == 0, value, entries[0]))
        popped = pop & (self.count != 0)       # a stored value leaves
        through = push & pop & (self.count == 0)  # the pushed value is consumed at once
        stored = push & ~through
        remaining = Signal(range(depth + 1), name=f"{name}_remaining")
        m.d.comb += remaining.eq(self.count - popped)
        for index in range(depth):
            # After a pop, entry k takes entry k + 1; the pushed value lands at the end.
            shifted = entries[index + 1] if index + 1 < depth else entries[index]
            with m.If(stored & (remaining == index)):
                m.d.sync += entries[index].eq(value)
            with m.Elif(popped):
                m.d.sync += entries[index].eq(shifted)
        with m.If(stored & (remaining == depth)):
            m.d.sync += self.overflow.eq(1)
        m.d.sync += self.count.eq(remaining + (stored & (remaining != depth)))
