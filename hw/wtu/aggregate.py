"""The WTU's aggregate emitter: the OR of the rows' selections, sent as selected cluster ids."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data
from amaranth.lib.wiring import In, Out

from hw.component import ConfiguredComponent
from hw.wtu.bit_trees import (at_most_one_set, clear_lowest_set, highest_set, lowest_set,
                              one_hot_select)
from hw.wtu.fast_adders import carry_chains, fast_geq
from hw.wtu.layouts import WTULayouts

__all__ = ["AggregateEmitter"]


class AggregateEmitter(ConfiguredComponent):
    """Tracks the aggregate while the row masks are emitted, then lists its clusters.

    During the emission (``emit``, one chunk of ``wtu_lanes`` clusters per beat) it records
    whether any row selected a cluster and, one cycle after each beat (a register), the highest
    cluster id selected; a ``clear`` wins over a beat of the cycle before. After the last row,
    ``fetch`` loads the aggregate bits of one chunk (read from the lanes' memories) as *pending*
    and each ``send`` retires the lowest pending one; the ``selected`` payload fields describe
    that cluster (its id, its max score over the rows, ``last`` on the highest id), or the single
    ``empty`` beat when no row selected anything.

    Parameters
    ----------
    config : DREConfig
        Uses ``wtu_lanes``, ``max_clusters`` and ``score_bits``.

    Members
    -------
    clear : In(1)
        A new problem: nothing selected yet.
    chunk : In(chunk_bits)
        The chunk emitted, fetched or sent.
    row_select : In(wtu_lanes)
        The row's selection bits of ``chunk`` (the row-mask payload).
    emit : In(1)
        A row-mask beat is transferred: fold ``row_select`` in.
    aggregate : In(wtu_lanes)
        The aggregate bits of ``chunk``.
    max_score : In(ArrayLayout(score_bits, wtu_lanes))
        The max scores of ``chunk``.
    fetch : In(1)
        Load ``aggregate`` as pending.
    send : In(1)
        A ``selected`` beat is transferred: retire its cluster.
    cluster, score, last, empty : Out
        The ``selected`` payload fields of the lowest pending cluster.
    any_selected : Out(1)
        Some row selected a cluster, counting this cycle's ``row_select``.
    final : Out(1)
        The lowest pending cluster is the highest selected one.
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
            "chunk": In(WTULayouts(config).chunk_bits),
            "row_select": In(lanes),
            "emit": In(1),
            "aggregate": In(lanes),
            "max_score": In(data.ArrayLayout(config.score_bits, lanes)),
            "fetch": In(1),
            "send": In(1),
            "cluster": Out(config.cluster_id_bits),
            "score": Out(config.score_bits),
            "last": Out(1),
            "empty": Out(1),
            "any_selected": Out(1),
            "final": Out(1),
            "chunk_done": Out(1),
        }

    def elaborate(self, platform):
        config = self._config
        lanes = config.wtu_lanes
        m = Module()
        aggregate_last = Signal(config.cluster_id_bits)
        aggregate_any = Signal()
        pending = Signal(lanes)
        # A row-mask beat's highest selected cluster is folded into ``aggregate_last`` in the
        # cycle after the beat, from registered copies of its selection and chunk.
        emitted = Signal()
        emitted_select = Signal(lanes)
        emitted_chunk = Signal.like(self.chunk)
        m.d.sync += [emitted.eq(self.emit & (self.row_select != 0)),
                     emitted_select.eq(self.row_select), emitted_chunk.eq(self.chunk)]
        highest_selected = Signal(range(lanes))  # lane of the highest selected bit
        m.d.comb += highest_selected.eq(highest_set(emitted_select))
        first_pending = Signal(range(lanes))
        m.d.comb += first_pending.eq(lowest_set(pending))
        remaining = Signal(lanes)
        m.d.comb += remaining.eq(clear_lowest_set(pending))
        # ``first_pending`` as one-hot (lane 0 when nothing is pending, as the index), for a
        # flat AND-OR selection of its max score instead of a multiplexer behind the index.
        first_pending_one_hot = Signal(lanes)
        m.d.comb += first_pending_one_hot.eq((pending & ~remaining) | (pending == 0))
        # ``chunk_done`` (at most one pending bit) is a register computed from ``pending``'s
        # next value, so the sequencer's step, which fans out to every lane's read-ahead
        # address, starts at a register instead of behind a test of ``pending``.
        pending_next = Signal(lanes)
        m.d.comb += pending_next.eq(Mux(self.send, remaining,
                                        Mux(self.fetch, self.aggregate, pending)))
        chunk_done = Signal(init=1)  # pending resets to 0
        m.d.sync += [pending.eq(pending_next), chunk_done.eq(at_most_one_set(pending_next))]
        # ``aggregate_last``'s next value (a clear wins over the fold of a beat).
        aggregate_last_next = Signal.like(aggregate_last)
        m.d.comb += aggregate_last_next.eq(aggregate_last)
        with m.If(emitted):
            candidate = Cat(highest_selected, emitted_chunk)
            with m.If(~fast_geq(m, aggregate_last, candidate, "last_geq",
                                 chain=carry_chains(platform))):
                m.d.comb += aggregate_last_next.eq(candidate)
        with m.If(self.clear):
            m.d.comb += aggregate_last_next.eq(0)
        m.d.sync += aggregate_last.eq(aggregate_last_next)
        # ``final`` (the lowest pending cluster is ``aggregate_last``) without the priority
        # encoder in front: ``chunk`` is the last one's chunk and ``lowest_is_last``, a register
        # computed from the next values of ``pending`` and ``aggregate_last``: the last one's
        # lane is pending and no lower lane is (or nothing is pending and the last one is lane
        # 0, where ``first_pending`` is 0).
        lane_bits = lanes.bit_length() - 1
        next_lane = aggregate_last_next[:lane_bits]
        lowest_is_last = Signal(init=1)  # pending and aggregate_last reset to 0
        lane_one_hot = Cat(next_lane == l for l in range(lanes))
        below_lane = Cat(next_lane > l for l in range(lanes))
        m.d.sync += lowest_is_last.eq(Mux(pending_next == 0, next_lane == 0,
                                          (pending_next & lane_one_hot).any()
                                          & ~(pending_next & below_lane).any()))
        chunk_is_last = (self.chunk[:config.cluster_id_bits - lane_bits]
                         == aggregate_last[lane_bits:])
        m.d.comb += [
            self.cluster.eq(Cat(first_pending, self.chunk)[:config.cluster_id_bits]),
            self.score.eq(one_hot_select(first_pending_one_hot,
                                         [self.max_score[l] for l in range(lanes)])),
            self.final.eq(chunk_is_last & lowest_is_last),
            self.last.eq(self.final | ~aggregate_any),
            self.empty.eq(~aggregate_any),
            self.any_selected.eq(aggregate_any | (self.row_select != 0)),
            self.chunk_done.eq(chunk_done),
        ]
        with m.If(self.emit & (self.row_select != 0)):
            m.d.sync += aggregate_any.eq(1)
        with m.If(self.clear):
            m.d.sync += aggregate_any.eq(0)
        return m
