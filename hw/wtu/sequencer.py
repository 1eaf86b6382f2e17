"""The WTU's sequencer: the state machine that runs one problem, row by row."""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib.wiring import In, Out

from hw.component import ConfiguredComponent, builds_for_fpga
from hw.wtu.layouts import WTULayouts
from hw.wtu.pipeline import (aggregate_queue_depth, broadcast_stages, decide_cycles,
                             gather_stages, queue_depth)

__all__ = ["Sequencer", "STATES", "chunk_after", "aggregate_wait_cycles"]


def aggregate_wait_cycles(config):
    """Cycles of the ``AGG_WAIT`` state: the last row-mask beat reaches the lanes
    (:func:`hw.wtu.pipeline.broadcast_stages`), its bits come back
    (:func:`hw.wtu.pipeline.gather_stages`) and the aggregate emitter counts them (two
    cycles: :class:`hw.wtu.AggregateEmitter`), so that ``any_selected`` and ``final_chunk``
    are settled when the state ends."""
    return broadcast_stages(config) + gather_stages(config) + 2


def _credits(m, issue, returned, depth, name):
    """A credit counter of ``depth`` credits, one taken by ``issue`` and one given back by
    ``returned``; returns two registers: whether a credit is left, and whether all are back
    (each in the cycle after the counter's move)."""
    credits = Signal(range(depth + 1), init=depth, name=f"{name}_credits")
    next_credits = Signal.like(credits, name=f"{name}_next_credits")
    left = Signal(init=1, name=f"{name}_credit")
    full = Signal(init=1, name=f"{name}_drained")
    m.d.comb += next_credits.eq(credits - issue + returned)
    m.d.sync += [credits.eq(next_credits), left.eq(next_credits != 0),
                 full.eq(next_credits == depth)]
    return left, full


def chunk_after(chunk, zero, step, first=0):
    """The value of a chunk register after the clock edge: ``first`` (0) when ``zero``,
    ``chunk + 1`` when ``step``, else ``chunk`` (the rule of :attr:`Sequencer.chunk` and of its
    lane copies; ``first`` 1 keeps a register one chunk ahead of them)."""
    return Mux(zero, first, Mux(step, chunk + 1, chunk))[:len(chunk)]


#: The sequencer's states, in the order a problem visits them.
STATES = ("IDLE", "COUNTS", "LOAD", "DECIDE", "WALK", "STATS", "EMIT", "AGG_WAIT", "AGG_FETCH",
          "AGG_SEND", "AGG_EMPTY")


def _one_hot_states(m, names):
    """One flip-flop per state, the first one set at reset (one-hot), and ``goto``.

    ``goto(source, target)``, called under the conditions of a transition (inside the
    ``with m.If(state[source])`` block), moves from ``source`` to ``target`` at the clock
    edge. Each state's flip-flop is then the OR of the transitions into it and of itself less
    the transitions out of it: a decoder of a binary state register (``m.FSM``'s, four bits
    behind each state's test and each flip-flop's enable) is not in front of the strobes or
    of the next state.

    Returns
    -------
    (dict of str -> Signal, callable)
        Each state's flip-flop, and ``goto``.
    """
    state = {name: Signal(init=index == 0, name=f"in_{name.lower()}")
             for index, name in enumerate(names)}
    enter = {name: Signal(name=f"enter_{name.lower()}") for name in names}
    leave = {name: Signal(name=f"leave_{name.lower()}") for name in names}
    for name in names:
        m.d.sync += state[name].eq(enter[name] | (state[name] & ~leave[name]))

    def goto(source, target):
        m.d.comb += [leave[source].eq(1), enter[target].eq(1)]
    return state, goto


class Sequencer(ConfiguredComponent):
    """The control of the WTU: which stream moves and which part acts in each cycle.

    States (:data:`STATES`, one flip-flop each: one-hot): ``IDLE`` (take a problem header)
    -> ``COUNTS`` (one beat per chunk) -> per row ``LOAD`` (one beat per chunk) -> ``DECIDE``
    (:func:`hw.wtu.pipeline.decide_cycles` cycles, the decision's pipeline; ``decide`` strobes
    its last) (-> ``WALK`` -> ``DECIDE``)* -> ``STATS`` -> ``EMIT`` (one beat per chunk) ->
    after the last row ``AGG_WAIT`` (:func:`aggregate_wait_cycles`) -> ``AGG_FETCH`` /
    ``AGG_SEND`` per chunk up to the highest selected cluster, or ``AGG_EMPTY`` -> ``IDLE``.
    ``chunk`` counts the beats of the counts, of a row's load and of its emission, and the
    chunks the aggregate stream reads from the lanes; ``cycles`` counts the row's load beats,
    decide and walk cycles (``stats.cycles``). An FPGA build also holds ``chunk`` at 0 in
    ``DECIDE`` and ``STATS`` (its lanes read the first scores of the emission there,
    :mod:`hw.wtu.unit`).

    The lanes act on the sequencer's strobes :func:`hw.wtu.pipeline.broadcast_stages` cycles
    later and their answers come back :func:`hw.wtu.pipeline.gather_stages` cycles after that
    (:mod:`hw.wtu.lane_links`), so the sequencer never waits on a lane in the cycle it acts:

    * a walk's ``walk_done`` is taken only from the ``WALK`` state's cycle ``B + G + 1`` on (the
      one that answers the walk's first step), so a walk takes ``B + G`` cycles more;
    * a row's emission is issued ahead, one beat per cycle while a *credit* is left: the row-mask
      bits come back into a queue of :func:`hw.wtu.pipeline.queue_depth` entries in front of
      the ``row_mask`` stream, and each beat that stream transfers (``row_mask_taken``) gives
      its credit back. The next row's load follows the last beat's issue; its ``stats`` beat
      is offered only once every credit is back (the row before has left the queue: the
      output streams stay in row order, and without stalls the queue is empty long before);
    * ``AGG_WAIT`` also ends only once every row-mask credit is back (the last row has left
      the ``row_mask`` queue; without stalls that is the wait's last cycle);
    * the aggregate stream's chunks are read from the lanes the same way (``read``, chunk 0 up
      to ``final_chunk``) into a queue of their own; ``AGG_FETCH`` takes its head when it is
      there (``aggregate_ready``: the emitter takes the head's words and the head is dropped),
      and each chunk taken gives its credit back a cycle later (the queue holds
      :func:`hw.wtu.pipeline.aggregate_queue_depth` entries, one more for that cycle).

    Stream ``valid``/``ready`` outputs depend on the state only; the strobes are the transfers.
    Every strobe that reaches the lanes depends on the state and on registers only (the
    credits are registers), never on an output stream's ``ready``.

    Parameters
    ----------
    config : DREConfig
        Uses ``wtu_lanes``, ``max_clusters``, ``max_rows`` and ``wtu_refine_depth``.

    Members
    -------
    problem_valid : In(1)
    problem_clusters_minus_one : In(cluster_id_bits)
    problem_rows_minus_one : In(row_bits)
        The ``problem`` stream.
    counts_valid, scores_valid, stats_ready, selected_ready : In(1)
    row_mask_taken : In(1)
        A beat left the ``row_mask`` queue (its credit comes back).
    refine, walk_done : In(1)
        From the decision and the lanes' walks (gathered).
    any_selected, chunk_empty, final, chunk_done : In(1)
        From the aggregate emitter (``chunk_empty``: no aggregate bit in the chunk at the head
        of the aggregate stream).
    final_chunk : In(chunk_bits)
        The chunk of the highest selected cluster (from the emitter, settled once ``AGG_WAIT``
        ends).
    aggregate_ready : In(1)
        The aggregate queue holds the words of the stream's chunk.
    problem_ready, counts_ready, scores_ready : Out(1)
    stats_valid, selected_valid : Out(1)
    emitting : Out(1)
        The ``EMIT`` state (an FPGA build's lanes read the scores a chunk ahead in it).
    clusters_minus_one : Out(cluster_id_bits)
        The problem's ``clusters_minus_one``, held.
    chunk : Out(chunk_bits)
    next_chunk : Out(chunk_bits)
        The value ``chunk`` takes at the clock edge.
    chunk_zero, chunk_step : Out(1)
        How ``chunk`` moves at the clock edge: to 0 (``chunk_zero``, which wins), to ``chunk +
        1`` (``chunk_step``), else unchanged. The lanes keep copies of ``chunk`` that follow
        them (each lane's memories are addressed by its own copy, so that no register drives
        the address pins of every lane).
    last_chunk : Out(1)
        ``chunk`` is the last one of a row (a register).
    row : Out(row_bits)
    cycles : Out(cycles_bits)
    start_problem, write_counts, start_row, load, decide, start_walk, walking : Out(1)
    emit, read, fetch, send, advance : Out(1)
        Strobes: header taken, counts beat, a row begins (clear its state), scores beat, last
        decide cycle (the decision is taken), the decision refines, walk cycle, row-mask beat
        issued, aggregate chunk read from the lanes, the aggregate queue's head taken (and
        dropped), selected beat, the aggregate stream leaves its chunk.

    Raises
    ------
    TypeError
        If ``config`` is not a :class:`DREConfig`.
    """

    def _members(self, config):
        layouts = WTULayouts(config)
        ports = {
            "problem_valid": In(1),
            "problem_clusters_minus_one": In(config.cluster_id_bits),
            "problem_rows_minus_one": In(config.row_bits),
        }
        for name in ("counts_valid", "scores_valid", "stats_ready", "row_mask_taken",
                     "selected_ready", "refine", "walk_done", "any_selected", "chunk_empty",
                     "final", "chunk_done", "aggregate_ready"):
            ports[name] = In(1)
        ports["final_chunk"] = In(layouts.chunk_bits)
        ports.update({
            "clusters_minus_one": Out(config.cluster_id_bits),
            "chunk": Out(layouts.chunk_bits),
            "next_chunk": Out(layouts.chunk_bits),
            "chunk_zero": Out(1),
            "chunk_step": Out(1),
            "last_chunk": Out(1, init=1),   # chunk 0 of clusters_minus_one 0 (reset)
            "row": Out(config.row_bits),
            "cycles": Out(layouts.cycles_bits),
        })
        for name in ("problem_ready", "counts_ready", "scores_ready", "stats_valid",
                     "emitting", "selected_valid", "start_problem", "write_counts",
                     "start_row", "load", "decide", "start_walk", "walking", "emit", "read",
                     "fetch", "send", "advance"):
            ports[name] = Out(1)
        return ports

    def elaborate(self, platform):
        config = self._config
        lane_bits = config.wtu_lanes.bit_length() - 1
        m = Module()
        rows_minus_one = Signal.like(self.problem_rows_minus_one)
        # ``row == rows_minus_one``, a register set with ``row`` (the EMIT state's choice between
        # the next row and the aggregate stream starts from a flip-flop, not a comparison).
        at_last_row = Signal()
        decide_last = decide_cycles(config) - 1
        decide_count = Signal(range(decide_last + 1))   # cycles of the DECIDE state so far
        # The DECIDE state's last cycle, known a cycle ahead (a register): the strobes it
        # drives (``decide``, ``start_walk``) start from registers.
        decide_at_last = Signal()
        # A walk's first B + G cycles: the gathered walk_done still answers the walk before
        # (the lanes start this one B cycles late, their answer takes G more).
        settle = broadcast_stages(config) + gather_stages(config)
        walk_age = Signal(range(settle + 1))
        walk_settled = Signal()
        # The AGG_WAIT state's cycles, its last known a cycle ahead (a register).
        wait_last = aggregate_wait_cycles(config) - 1
        wait_count = Signal(range(wait_last + 1))
        wait_at_last = Signal()
        reading = Signal()      # the aggregate stream's chunks are being read from the lanes
        depth = queue_depth(config)
        emit_credit, emitted = _credits(m, self.emit, self.row_mask_taken, depth, "emit")
        # A chunk's read credit comes back a cycle after the emitter takes its words from the
        # queue's head (``fetch``, which drops the head), from a register.
        fetched = Signal()
        m.d.sync += fetched.eq(self.fetch)
        read_credit, _ = _credits(m, self.read, fetched, aggregate_queue_depth(config), "read")
        chunk, row, cycles = self.chunk, self.row, self.cycles
        # ``chunk`` is a register whose next value is a signal of its own (``next_chunk``);
        # the states only drive its two strobes.
        zero, step = self.chunk_zero, self.chunk_step
        # ``last_chunk`` is a register too, set from the values ``chunk`` and
        # ``clusters_minus_one`` take at the clock edge.
        next_clusters_minus_one = Signal.like(self.clusters_minus_one)
        m.d.comb += [next_clusters_minus_one.eq(self.clusters_minus_one),
                     self.next_chunk.eq(chunk_after(chunk, zero, step))]
        m.d.sync += [chunk.eq(self.next_chunk),
                     self.clusters_minus_one.eq(next_clusters_minus_one),
                     self.last_chunk.eq(self.next_chunk == (next_clusters_minus_one >> lane_bits))]
        with m.If(self.start_row):
            m.d.sync += cycles.eq(0)
            m.d.comb += zero.eq(1)
        # The aggregate stream's reads, beside AGG_FETCH and AGG_SEND: chunk 0 up to the
        # final chunk, one per cycle while a credit is left.
        m.d.comb += self.read.eq(reading & read_credit)
        with m.If(self.read):
            with m.If(chunk == self.final_chunk):
                m.d.sync += reading.eq(0)
            with m.Else():
                m.d.comb += step.eq(1)

        # ``decide_at_last`` is 1 only in the DECIDE state's last cycle: the decision's strobes
        # come from that register alone, not through the state's decoding.
        m.d.comb += [self.decide.eq(decide_at_last),
                     self.start_walk.eq(decide_at_last & self.refine)]

        state, goto = _one_hot_states(m, STATES)
        with m.If(state["IDLE"]):
            m.d.comb += [self.problem_ready.eq(1), self.start_problem.eq(self.problem_valid)]
            with m.If(self.problem_valid):
                m.d.comb += next_clusters_minus_one.eq(self.problem_clusters_minus_one)
                m.d.sync += [rows_minus_one.eq(self.problem_rows_minus_one), row.eq(0),
                             at_last_row.eq(self.problem_rows_minus_one == 0)]
                m.d.comb += zero.eq(1)
                goto("IDLE", "COUNTS")
        with m.If(state["COUNTS"]):
            m.d.comb += [self.counts_ready.eq(1), self.write_counts.eq(self.counts_valid)]
            with m.If(self.counts_valid):
                with m.If(self.last_chunk):
                    m.d.comb += self.start_row.eq(1)
                    goto("COUNTS", "LOAD")
                with m.Else():
                    m.d.comb += step.eq(1)
        with m.If(state["LOAD"]):
            m.d.comb += [self.scores_ready.eq(1), self.load.eq(self.scores_valid)]
            with m.If(self.scores_valid):
                m.d.sync += cycles.eq(cycles + 1)
                m.d.comb += step.eq(1)
                with m.If(self.last_chunk):
                    goto("LOAD", "DECIDE")
        with m.If(state["DECIDE"]):
            if builds_for_fpga(platform):
                m.d.comb += zero.eq(1)
            m.d.sync += [cycles.eq(cycles + 1), decide_count.eq(decide_count + 1),
                         decide_at_last.eq(decide_count == decide_last - 1)]
            with m.If(decide_at_last):
                m.d.sync += [decide_count.eq(0), decide_at_last.eq(0),
                             walk_age.eq(0), walk_settled.eq(settle == 0)]
                with m.If(self.refine):
                    goto("DECIDE", "WALK")
                with m.Else():
                    goto("DECIDE", "STATS")
        with m.If(state["WALK"]):
            m.d.comb += self.walking.eq(1)
            m.d.sync += cycles.eq(cycles + 1)
            if settle:
                m.d.sync += [walk_age.eq(walk_age + 1),
                             walk_settled.eq(walk_settled | (walk_age == settle - 1))]
            with m.If(walk_settled & self.walk_done):
                goto("WALK", "DECIDE")
        with m.If(state["STATS"]):
            # Not before the row before has left the row_mask queue (streams in row order).
            m.d.comb += self.stats_valid.eq(emitted)
            if builds_for_fpga(platform):
                m.d.comb += zero.eq(1)
            with m.If(emitted & self.stats_ready):
                m.d.comb += zero.eq(1)
                goto("STATS", "EMIT")
        with m.If(state["EMIT"]):
            m.d.comb += [self.emitting.eq(1), self.emit.eq(emit_credit)]
            with m.If(emit_credit):
                with m.If(~self.last_chunk):
                    m.d.comb += step.eq(1)
                with m.Elif(at_last_row):
                    m.d.comb += zero.eq(1)
                    m.d.sync += [wait_count.eq(0), wait_at_last.eq(wait_last == 0)]
                    goto("EMIT", "AGG_WAIT")
                with m.Else():
                    m.d.comb += self.start_row.eq(1)
                    m.d.sync += [row.eq(row + 1), at_last_row.eq(row + 1 == rows_minus_one)]
                    goto("EMIT", "LOAD")
        with m.If(state["AGG_WAIT"]):
            # The last row-mask beat's bits reach the aggregate emitter and are counted
            # (aggregate_wait_cycles), and it has left the row_mask queue (without stalls
            # in the same cycle); chunk 0 is then read from the lanes first.
            with m.If(~wait_at_last):
                m.d.sync += [wait_count.eq(wait_count + 1),
                             wait_at_last.eq(wait_count == wait_last - 1)]
            with m.If(wait_at_last & emitted):
                with m.If(self.any_selected):
                    m.d.sync += reading.eq(1)
                    goto("AGG_WAIT", "AGG_FETCH")
                with m.Else():
                    goto("AGG_WAIT", "AGG_EMPTY")
        with m.If(state["AGG_FETCH"]):
            m.d.comb += self.fetch.eq(self.aggregate_ready)
            with m.If(self.aggregate_ready):
                with m.If(self.chunk_empty):
                    m.d.comb += self.advance.eq(1)
                with m.Else():
                    goto("AGG_FETCH", "AGG_SEND")
        with m.If(state["AGG_SEND"]):
            m.d.comb += [self.selected_valid.eq(1), self.send.eq(self.selected_ready)]
            with m.If(self.selected_ready):
                with m.If(self.chunk_done):
                    m.d.comb += self.advance.eq(1)
                with m.If(self.final):
                    goto("AGG_SEND", "IDLE")
                with m.Elif(self.chunk_done):
                    goto("AGG_SEND", "AGG_FETCH")
        with m.If(state["AGG_EMPTY"]):
            m.d.comb += self.selected_valid.eq(1)
            with m.If(self.selected_ready):
                goto("AGG_EMPTY", "IDLE")
        return m
