"""The WTU's sequencer: the state machine that runs one problem, row by row."""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib.wiring import In, Out

from hw.component import ConfiguredComponent, builds_for_fpga
from hw.wtu.layouts import WTULayouts
from hw.wtu.pipeline import decide_cycles

__all__ = ["Sequencer", "chunk_after"]


def chunk_after(chunk, zero, step, first=0):
    """The value of a chunk register after the clock edge: ``first`` (0) when ``zero``,
    ``chunk + 1`` when ``step``, else ``chunk`` (the rule of :attr:`Sequencer.chunk` and of its
    lane copies; ``first`` 1 keeps a register one chunk ahead of them)."""
    return Mux(zero, first, Mux(step, chunk + 1, chunk))[:len(chunk)]


class Sequencer(ConfiguredComponent):
    """The control of the WTU: which stream moves and which part acts in each cycle.

    States (``m.FSM``): ``IDLE`` (take a problem header) -> ``COUNTS`` (one beat per chunk)
    -> per row ``LOAD`` (one beat per chunk) -> ``DECIDE`` (:func:`hw.wtu.pipeline.decide_cycles`
    cycles, the decision's pipeline; ``decide`` strobes its last) (-> ``WALK`` -> ``DECIDE``)* ->
    ``STATS`` -> ``EMIT`` (one beat per chunk) -> after the last row ``AGG_WAIT`` (one cycle:
    the last beat's aggregate bits are written) -> ``AGG_FETCH`` / ``AGG_SEND`` per chunk up to
    the highest selected cluster, or ``AGG_EMPTY`` -> ``IDLE``. ``chunk`` counts
    the beats of the counts, of a row's load and of its emission, and the chunks of the
    aggregate; ``cycles`` counts the row's load beats, decide and walk cycles (``stats.cycles``).
    An FPGA build also holds ``chunk`` at 0 in ``DECIDE`` and ``STATS`` (its lanes read the
    first scores of the emission there, :mod:`hw.wtu.unit`).
    Stream ``valid``/``ready`` outputs depend on the state only; the strobes are the transfers.

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
    counts_valid, scores_valid, stats_ready, row_mask_ready, selected_ready : In(1)
    refine, walk_done : In(1)
        From the decision and the lanes' walks.
    any_selected, chunk_empty, final, chunk_done : In(1)
        From the aggregate emitter (``chunk_empty``: no aggregate bit in the fetched chunk).
    problem_ready, counts_ready, scores_ready : Out(1)
    stats_valid, row_mask_valid, selected_valid : Out(1)
    clusters_minus_one : Out(cluster_id_bits)
        The problem's ``clusters_minus_one``, held.
    chunk : Out(chunk_bits)
    next_chunk : Out(chunk_bits)
        The value ``chunk`` takes at the clock edge (memories are read ahead at it).
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
    emit, fetch, send : Out(1)
        Strobes: header taken, counts beat, a row begins (clear its state), scores beat, last
        decide cycle (the decision is taken), the decision refines, walk cycle, row-mask beat,
        aggregate chunk fetched, selected beat.

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
        for name in ("counts_valid", "scores_valid", "stats_ready", "row_mask_ready",
                     "selected_ready", "refine", "walk_done", "any_selected", "chunk_empty",
                     "final", "chunk_done"):
            ports[name] = In(1)
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
                     "row_mask_valid", "selected_valid", "start_problem", "write_counts",
                     "start_row", "load", "decide", "start_walk", "walking", "emit", "fetch",
                     "send"):
            ports[name] = Out(1)
        return ports

    def elaborate(self, platform):
        lane_bits = self._config.wtu_lanes.bit_length() - 1
        m = Module()
        rows_minus_one = Signal.like(self.problem_rows_minus_one)
        decide_last = decide_cycles(self._config) - 1
        decide_count = Signal(range(decide_last + 1))   # cycles of the DECIDE state so far
        # The DECIDE state's last cycle, known a cycle ahead (a register): the strobes it
        # drives (``decide``, ``start_walk``) reach every lane's bucket lists without a
        # counter comparison in front of their fanout.
        decide_at_last = Signal()
        chunk, row, cycles = self.chunk, self.row, self.cycles
        # ``chunk`` is a register whose next value is a signal of its own (``next_chunk``),
        # so that the memories can be read ahead at it; the states only drive its two strobes.
        zero, step = self.chunk_zero, self.chunk_step
        # ``last_chunk`` is a register too, set from the values ``chunk`` and
        # ``clusters_minus_one`` take at the clock edge: the state machine's transitions and
        # the strobes that reach every lane (``start_row``: the clears) start from registers.
        next_clusters_minus_one = Signal.like(self.clusters_minus_one)
        m.d.comb += [next_clusters_minus_one.eq(self.clusters_minus_one),
                     self.next_chunk.eq(chunk_after(chunk, zero, step))]
        m.d.sync += [chunk.eq(self.next_chunk),
                     self.clusters_minus_one.eq(next_clusters_minus_one),
                     self.last_chunk.eq(self.next_chunk == (next_clusters_minus_one >> lane_bits))]
        with m.If(self.start_row):
            m.d.sync += cycles.eq(0)
            m.d.comb += zero.eq(1)

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += [self.problem_ready.eq(1), self.start_problem.eq(self.problem_valid)]
                with m.If(self.problem_valid):
                    m.d.comb += next_clusters_minus_one.eq(self.problem_clusters_minus_one)
                    m.d.sync += [rows_minus_one.eq(self.problem_rows_minus_one), row.eq(0)]
                    m.d.comb += zero.eq(1)
                    m.next = "COUNTS"
            with m.State("COUNTS"):
                m.d.comb += [self.counts_ready.eq(1), self.write_counts.eq(self.counts_valid)]
                with m.If(self.counts_valid):
                    with m.If(self.last_chunk):
                        m.d.comb += self.start_row.eq(1)
                        m.next = "LOAD"
                    with m.Else():
                        m.d.comb += step.eq(1)
            with m.State("LOAD"):
                m.d.comb += [self.scores_ready.eq(1), self.load.eq(self.scores_valid)]
                with m.If(self.scores_valid):
                    m.d.sync += cycles.eq(cycles + 1)
                    m.d.comb += step.eq(1)
                    with m.If(self.last_chunk):
                        m.next = "DECIDE"
            with m.State("DECIDE"):
                if builds_for_fpga(platform):
                    m.d.comb += zero.eq(1)
                m.d.sync += [cycles.eq(cycles + 1), decide_count.eq(decide_count + 1),
                             decide_at_last.eq(decide_count == decide_last - 1)]
                with m.If(decide_at_last):
                    m.d.comb += [self.decide.eq(1), self.start_walk.eq(self.refine)]
                    m.d.sync += [decide_count.eq(0), decide_at_last.eq(0)]
                    with m.If(self.refine):
                        m.next = "WALK"
                    with m.Else():
                        m.next = "STATS"
            with m.State("WALK"):
                m.d.comb += self.walking.eq(1)
                m.d.sync += cycles.eq(cycles + 1)
                with m.If(self.walk_done):
                    m.next = "DECIDE"
            with m.State("STATS"):
                m.d.comb += self.stats_valid.eq(1)
                if builds_for_fpga(platform):
                    m.d.comb += zero.eq(1)
                with m.If(self.stats_ready):
                    m.d.comb += zero.eq(1)
                    m.next = "EMIT"
            with m.State("EMIT"):
                m.d.comb += [self.row_mask_valid.eq(1), self.emit.eq(self.row_mask_ready)]
                with m.If(self.row_mask_ready):
                    with m.If(~self.last_chunk):
                        m.d.comb += step.eq(1)
                    with m.Elif(row == rows_minus_one):
                        m.d.comb += zero.eq(1)
                        m.next = "AGG_WAIT"
                    with m.Else():
                        m.d.comb += self.start_row.eq(1)
                        m.d.sync += row.eq(row + 1)
                        m.next = "LOAD"
            with m.State("AGG_WAIT"):
                # The last row-mask beat's aggregate bits are written at the end of this cycle
                # (hw.wtu.LaneMemories), so chunk 0 is read ahead with them.
                with m.If(self.any_selected):
                    m.next = "AGG_FETCH"
                with m.Else():
                    m.next = "AGG_EMPTY"
            with m.State("AGG_FETCH"):
                m.d.comb += self.fetch.eq(1)
                with m.If(self.chunk_empty):
                    m.d.comb += step.eq(1)
                with m.Else():
                    m.next = "AGG_SEND"
            with m.State("AGG_SEND"):
                m.d.comb += [self.selected_valid.eq(1), self.send.eq(self.selected_ready)]
                with m.If(self.selected_ready):
                    with m.If(self.final):
                        m.next = "IDLE"
                    with m.Elif(self.chunk_done):
                        m.d.comb += step.eq(1)
                        m.next = "AGG_FETCH"
            with m.State("AGG_EMPTY"):
                m.d.comb += self.selected_valid.eq(1)
                with m.If(self.selected_ready):
                    m.next = "IDLE"
        return m
