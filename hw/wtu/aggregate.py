"""The WTU's aggregate emitter: the OR of the rows' selections, sent as selected cluster ids."""

from amaranth.hdl import Cat, Const, Module, Signal
from amaranth.lib import data
from amaranth.lib.wiring import In, Out

from hw.component import ConfiguredComponent
from hw.wtu.fast_adders import carry_chains, fast_geq
from hw.wtu.layouts import WTULayouts

__all__ = ["AggregateEmitter"]


class AggregateEmitter(ConfiguredComponent):
    """Tracks the aggregate while the row masks are emitted, then lists its clusters.

    During the emission (``emit``, one chunk of ``wtu_lanes`` clusters per beat) it records,
    one cycle after each beat (from registered copies of the beat: the selection bits come from
    the score memories' words, and nothing else follows them in their cycle), whether any row
    selected a cluster and per chunk whether any of its clusters was selected, and two cycles
    after it the highest cluster id selected (``final`` and ``last`` count a beat from the
    third cycle after it, when the unit's aggregate stream can start at the earliest); a
    ``clear`` wins over the beats of the two cycles before. After the last row,
    ``fetch`` loads the aggregate bits of the stream's chunk (read from the lanes' memories,
    :attr:`chunk`: 0 after ``clear``, one up at each ``advance``) as *pending* and each ``send``
    retires the lowest pending one; the ``selected`` payload fields describe that cluster (its
    id, its max score over the rows, ``last`` on the highest id), or the single ``empty`` beat
    when no row selected anything.

    The payload's lane (the lowest pending cluster) is a register written with the pending bits,
    so the payload is not behind a priority chain in its own cycle (a placed path of 13.76 ns
    on the ECP5, from ``pending`` through the chain and the max-score multiplexer). So are the
    pending bits less the lowest one, so that ``chunk_done`` and ``final`` are reductions of
    registers (``pending`` through a decrement into ``chunk_done`` and the sequencer's read
    credits was a placed path of 12.7 ns).

    Whether a chunk holds a selected cluster (``chunk_empty``) comes from a register, not from
    the fetched words: the per-chunk bits are a shift register whose head is the chunk the
    aggregate stream is at (chunk 0 when the stream starts; ``advance`` moves it one chunk up).
    The stream's skip over an empty chunk then starts at a flip-flop, not at the memories'
    clock-to-output (5.83 ns of a 10 ns cycle for an ECP5 block RAM).

    Parameters
    ----------
    config : DREConfig
        Uses ``wtu_lanes``, ``max_clusters`` and ``score_bits``.

    Members
    -------
    clear : In(1)
        A new problem: nothing selected yet.
    emit_chunk : In(chunk_bits)
        The chunk of the row-mask beat.
    row_select : In(wtu_lanes)
        The row's selection bits of ``emit_chunk`` (the row-mask payload).
    emit : In(1)
        A row-mask beat is transferred: fold ``row_select`` in.
    aggregate : In(wtu_lanes)
        The aggregate bits of ``chunk``.
    max_score : In(ArrayLayout(score_bits, wtu_lanes))
        The max scores of ``chunk``.
    fetch : In(1)
        Load ``aggregate`` as pending, and ``max_score`` (the payload's scores until the next
        ``fetch``).
    send : In(1)
        A ``selected`` beat is transferred: retire its cluster.
    advance : In(1)
        The aggregate stream moves to the next chunk: :attr:`chunk` one up, the per-chunk bits
        shift down by one (never during the emission; the next ``clear`` resets them).
    chunk : Out(chunk_bits)
        The aggregate stream's chunk (a register).
    final_chunk : Out(chunk_bits)
        The chunk of the highest selected cluster (counting a beat from the third cycle after
        it).
    cluster, score, last, empty : Out
        The ``selected`` payload fields of the lowest pending cluster.
    any_selected : Out(1)
        Some row selected a cluster, counting the beat of the previous cycle.
    chunk_empty : Out(1)
        No row selected a cluster of the chunk at the head of the per-chunk bits: chunk
        ``a`` after ``a`` advances since the emission (complete a cycle after the last beat).
    final : Out(1)
        The lowest pending cluster is the highest selected one (0 when nothing is pending;
        ``last`` too then, unless no row selected anything).
    chunk_done : Out(1)
        No pending cluster is left after the lowest one.

    Raises
    ------
    TypeError
        If ``config`` is not a :class:`DREConfig`.
    """

    def _members(self, config):
        lanes = config.wtu_lanes
        return {
            "clear": In(1),
            "emit_chunk": In(WTULayouts(config).chunk_bits),
            "row_select": In(lanes),
            "emit": In(1),
            "aggregate": In(lanes),
            "max_score": In(data.ArrayLayout(config.score_bits, lanes)),
            "fetch": In(1),
            "send": In(1),
            "advance": In(1),
            "chunk": Out(WTULayouts(config).chunk_bits),
            "final_chunk": Out(WTULayouts(config).chunk_bits),
            "cluster": Out(config.cluster_id_bits),
            "score": Out(config.score_bits),
            "last": Out(1),
            "empty": Out(1),
            "any_selected": Out(1),
            "chunk_empty": Out(1),
            "final": Out(1),
            "chunk_done": Out(1),
        }

    def elaborate(self, platform):
        config = self._config
        lanes, chunks = config.wtu_lanes, WTULayouts(config).chunks
        m = Module()
        aggregate_last = Signal(config.cluster_id_bits)
        aggregate_any = Signal()
        pending = Signal(lanes)
        # A row-mask beat is folded in in the cycle after the beat, from registered copies of
        # its selection and chunk: ``aggregate_any``, ``aggregate_last`` (its highest selected
        # cluster), ``selected_chunks`` (bit ``c``: chunk ``c`` holds a selected cluster).
        selected_chunks = Signal(chunks)
        beat = Signal()                     # a row-mask beat in the cycle before
        emitted = Signal()                  # ... and it selected a cluster
        emitted_any = Signal()              # whether it did, registered with the beat
        emitted_select = Signal(lanes)
        emitted_chunk = Signal.like(self.emit_chunk)
        m.d.sync += [beat.eq(self.emit), emitted_select.eq(self.row_select),
                     emitted_any.eq(self.row_select != 0), emitted_chunk.eq(self.emit_chunk)]
        m.d.comb += emitted.eq(beat & emitted_any)
        highest_selected = Signal(range(lanes))  # lane of the highest selected bit
        for l in range(lanes):
            with m.If(emitted_select[l]):
                m.d.comb += highest_selected.eq(l)
        # The beat's highest selected cluster, registered: ``aggregate_last`` takes it in the
        # cycle after (two after the beat), from registers of its own, not behind the
        # selection bits' priority chain.
        candidate = Signal.like(aggregate_last)
        candidate_valid = Signal()
        m.d.sync += [candidate.eq(Cat(highest_selected, emitted_chunk)),
                     candidate_valid.eq(emitted)]
        # The lowest pending lane, a register written with ``pending`` (the priority chain
        # over the bits ``pending`` takes, not behind ``pending``): it selects the payload.
        first_pending = Signal(range(lanes))
        # ``rest``: ``pending`` less its lowest bit (``x & (x - 1)`` drops it), a register
        # written with ``pending``, so that the handshake's conditions (``chunk_done``,
        # ``final``) are reductions of registers, with no carry chain behind them.
        rest = Signal(lanes)
        # The chunk's max scores, taken with its aggregate bits (the queue's head is dropped
        # when they are taken, so the queue's pop follows registers, not the ``selected``
        # handshake).
        held_scores = Signal.like(self.max_score)
        lowest = Signal(lanes)
        lane_bits = max(0, (lanes - 1).bit_length())
        last_lane = Signal(lanes)    # aggregate_last's lane, one-hot
        m.d.comb += [
            lowest.eq(pending & ~rest),
            last_lane.eq(Const(1, lanes) << aggregate_last[:lane_bits]),
            self.cluster.eq(Cat(first_pending, self.chunk)[:config.cluster_id_bits]),
            self.score.eq(held_scores[first_pending]),
            self.last.eq(self.final | ~aggregate_any),
            self.empty.eq(~aggregate_any),
            self.any_selected.eq(aggregate_any | emitted),
            self.chunk_empty.eq(~selected_chunks[0]),
            self.final.eq((self.chunk == aggregate_last[lane_bits:]) & (lowest & last_lane).any()),
            self.chunk_done.eq(rest == 0),
            self.final_chunk.eq(aggregate_last[lane_bits:]),
        ]
        with m.If(self.advance):
            m.d.sync += [selected_chunks.eq(selected_chunks >> 1), self.chunk.eq(self.chunk + 1)]
        with m.If(emitted):
            m.d.sync += [aggregate_any.eq(1),
                         selected_chunks.eq(selected_chunks
                                            | (Const(1, chunks) << emitted_chunk)[:chunks])]
        with m.If(candidate_valid & ~fast_geq(m, aggregate_last, candidate, "last_geq",
                                              chain=carry_chains(platform))):
            m.d.sync += aggregate_last.eq(candidate)
        with m.If(self.clear):
            m.d.sync += [aggregate_last.eq(0), aggregate_any.eq(0), selected_chunks.eq(0),
                         candidate_valid.eq(0), self.chunk.eq(0)]
        with m.If(self.fetch):
            m.d.sync += [pending.eq(self.aggregate), held_scores.eq(self.max_score),
                         rest.eq(_without_lowest(self.aggregate)),
                         first_pending.eq(_lowest_set(m, self.aggregate, "fetched_first"))]
        with m.If(self.send):
            m.d.sync += [pending.eq(rest), rest.eq(_without_lowest(rest)),
                         first_pending.eq(_lowest_set(m, rest, "remaining_first"))]
        return m


def _without_lowest(bits):
    """``bits`` with its lowest set bit cleared (``x & (x - 1)``; 0 stays 0)."""
    return bits & (bits - 1)[:len(bits)]


def _lowest_set(m, bits, name):
    """The index of the lowest set bit of ``bits`` (0 when none is), a priority chain."""
    index = Signal(range(len(bits)), name=name)
    for bit in reversed(range(len(bits))):
        with m.If(bits[bit]):
            m.d.comb += index.eq(bit)
    return index
