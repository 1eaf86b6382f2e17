"""Payload layouts of the WTU's streams (:class:`WTULayouts`), and helpers its parts share."""

import operator

from amaranth.hdl import Mux, unsigned
from amaranth.lib import data

from hw.component import check_config
from hw.wtu.pipeline import broadcast_stages, decide_cycles, gather_stages

__all__ = ["WTULayouts", "bits_for", "tree", "one_hot_select"]


def bits_for(highest):
    """Width of an unsigned value from 0 to ``highest``."""
    return max(1, int(highest).bit_length())


def tree(values, combine):
    """Reduce ``values`` pairwise (a balanced tree of ``combine``)."""
    values = list(values)
    while len(values) > 1:
        values = [combine(values[i], values[i + 1]) if i + 1 < len(values) else values[i]
                  for i in range(0, len(values), 2)]
    return values[0]


def one_hot_select(one_hot, values):
    """``values[k]`` for the bit ``k`` set in ``one_hot`` (0 when none is): an AND-OR over the
    values, a balanced tree rather than a chain of one multiplexer per value. ``values`` may be
    shorter than ``one_hot``; the bits beyond it select nothing."""
    return tree([Mux(one_hot[k], value, 0) for k, value in enumerate(values)], operator.or_)


class WTULayouts:
    """The payload layouts of the WTU's streams for one configuration (defined once, here).

    Parameters
    ----------
    config : DREConfig

    Members
    -------
    problem, counts, scores, stats, row_mask, selected : data.StructLayout
        See :mod:`hw.wtu.unit`. ``counts.count`` and ``scores.score`` are
        ``ArrayLayout(unsigned(width), wtu_lanes)``: lane ``l`` of a beat in bits
        ``[l * width, (l + 1) * width)`` of the packed payload.
    chunks : int
        Beats of a full row, ``ceil(max_clusters / wtu_lanes)``.
    chunk_bits, cycles_bits : int
        Widths of a beat index and of ``stats.cycles``.

    Raises
    ------
    TypeError
        If ``config`` is not a :class:`DREConfig`.
    """

    def __init__(self, config):
        check_config(config)
        lanes = config.wtu_lanes
        chunks = -(-config.max_clusters // lanes)
        refinements = config.wtu_refine_depth
        self.chunks = chunks
        self.chunk_bits = bits_for(chunks - 1)
        # Widest row: see WiCSumThresholdUnit.max_row_cycles.
        round_trip = broadcast_stages(config) + gather_stages(config)
        self.cycles_bits = bits_for(chunks + decide_cycles(config) * (refinements + 1)
                                    + refinements * (chunks + round_trip))
        self.problem = data.StructLayout({
            "clusters_minus_one": unsigned(config.cluster_id_bits),
            "rows_minus_one": unsigned(config.row_bits)})
        self.counts = data.StructLayout({
            "count": data.ArrayLayout(unsigned(config.count_bits), lanes)})
        self.scores = data.StructLayout({
            "score": data.ArrayLayout(unsigned(config.score_bits), lanes)})
        self.stats = data.StructLayout({
            "row": unsigned(config.row_bits),
            "cutoff": unsigned(config.score_bits + 1),
            "weighted_sum": unsigned(config.weight_bits),
            "threshold": unsigned(config.weight_bits),
            "min_score": unsigned(config.score_bits),
            "max_score": unsigned(config.score_bits),
            "passes": unsigned(bits_for(refinements + 1)),
            "buckets_visited": unsigned(bits_for(config.wtu_buckets * (refinements + 1))),
            "touched": unsigned(bits_for(config.max_clusters * refinements)),
            "cycles": unsigned(self.cycles_bits)})
        self.row_mask = data.StructLayout({
            "row": unsigned(config.row_bits),
            "chunk": unsigned(self.chunk_bits),
            "mask": unsigned(lanes),
            "last": unsigned(1)})
        self.selected = data.StructLayout({
            "cluster": unsigned(config.cluster_id_bits),
            "score": unsigned(config.score_bits),
            "last": unsigned(1),
            "empty": unsigned(1)})
