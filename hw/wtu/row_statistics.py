"""The WTU's row preprocessing: weighted sum, min and max while the row streams in; threshold."""

from amaranth.hdl import Const, Module, Mux, Signal
from amaranth.lib import data
from amaranth.lib.wiring import In, Out

from hw.component import ConfiguredComponent
from hw.wtu.bucket_masses import MASS_LATENCY
from hw.wtu.fast_adders import carry_chains, fast_add, fast_geq
from hw.wtu.pipeline import (registered_accumulation, registered_split_tree, registered_tree,
                             threshold_in_halves, threshold_latency, threshold_terms,
                             tree_levels)

__all__ = ["RowStatistics"]


class RowStatistics(ConfiguredComponent):
    """Per load beat, adds the valid lanes' ``s x n`` to ``W`` and updates min and max.

    ``weighted_sum`` counts a beat :attr:`latency` cycles after it (carry-save, then resolved),
    ``min_score`` and ``max_score`` :attr:`extremes_latency` cycles after it (a registered
    comparison tree over the lanes); a ``clear`` reaches each with the same delay.

    ``threshold`` is :func:`model.reference.resv.wicsum_threshold` of ``weighted_sum``:
    ``(W * wicsum_ratio_code + 2**(wicsum_ratio_bits - 1)) >> wicsum_ratio_bits`` (round half up),
    a registered adder tree over the shifted copies of ``W`` (the code's set bits) and the
    rounding constant, its adders cut into halves with a registered carry where that costs the
    decision no cycle (:func:`hw.wtu.pipeline.threshold_in_halves`): it follows
    ``weighted_sum`` :attr:`threshold_latency` cycles later when ``weighted_sum`` stays
    unchanged in them (as it does from the end of a row's load).

    Parameters
    ----------
    config : DREConfig
        Uses ``wtu_lanes``, ``score_bits``, ``count_bits``, ``max_clusters``,
        ``wicsum_ratio_bits`` and ``wicsum_ratio_code``.

    Members
    -------
    clear : In(1)
        Start a row: ``W = 0``, min at the largest score, max at 0.
    load : In(1)
        A load beat: fold the lanes whose ``valid`` bit is set into the statistics.
    valid : In(wtu_lanes)
    score : In(ArrayLayout(score_bits, wtu_lanes))
    product : In(ArrayLayout(score_bits + count_bits, wtu_lanes))
    weighted_sum, threshold : Out(weight_bits)
    min_score, max_score : Out(score_bits)

    Raises
    ------
    TypeError
        If ``config`` is not a :class:`DREConfig`.
    """

    def _members(self, config):
        lanes, score_bits = config.wtu_lanes, config.score_bits
        return {
            "clear": In(1),
            "load": In(1),
            "valid": In(lanes),
            "score": In(data.ArrayLayout(score_bits, lanes)),
            "product": In(data.ArrayLayout(score_bits + config.count_bits, lanes)),
            "weighted_sum": Out(config.weight_bits),
            "threshold": Out(config.weight_bits),
            "min_score": Out(score_bits),
            "max_score": Out(score_bits),
        }

    @property
    def threshold_latency(self):
        """Cycles from a ``weighted_sum`` to its ``threshold`` (:func:`hw.wtu.pipeline.threshold_latency`)."""
        return threshold_latency(self._config)

    @property
    def latency(self):
        """Cycles from a beat to ``weighted_sum`` counting it (carry-save over two cycles, then
        resolved, as the bucket masses: :data:`hw.wtu.bucket_masses.MASS_LATENCY`)."""
        return MASS_LATENCY

    @property
    def extremes_latency(self):
        """Cycles from a beat to ``min_score`` and ``max_score`` counting it: a registered
        comparison tree over the lanes, then the running extremes."""
        return tree_levels(self._config.wtu_lanes) + 1

    def elaborate(self, platform):
        # Pipelines, one comment per cycle (cycle 0: a beat's inputs):
        #   W:        cycle 0 the products compressed in groups into carry-save pairs,
        #             registered; cycle 1 the pairs added to the saved pair; cycle 2 the
        #             pair resolved (prefix adder) into ``weighted_sum``
        #             (hw.wtu.pipeline.registered_accumulation);
        #             then the threshold, a registered tree (``threshold_latency`` cycles);
        #   extremes: cycles 0 to L - 1 the beat's min and max, a comparison tree registered
        #             at each level (L = ceil(log2 wtu_lanes)); cycle L the running extremes.
        config = self._config
        lanes, ratio_bits, weight_bits = config.wtu_lanes, config.wicsum_ratio_bits, \
            config.weight_bits
        chain = carry_chains(platform)
        m = Module()
        width = weight_bits + ratio_bits + 1
        terms = [self.weighted_sum << shift for shift in threshold_terms(config)]
        terms.append(Const(1 << (ratio_bits - 1), width))
        if threshold_in_halves(config):
            scaled = registered_split_tree(m, terms, width, "threshold_sum", chain=chain)
        else:
            scaled = registered_tree(m, terms,
                                     lambda a, b, name: fast_add(m, a, b, name, width,
                                                                 chain=chain),
                                     width, "threshold_sum")
        m.d.comb += self.threshold.eq(scaled >> ratio_bits)

        valid = [self.valid[l] for l in range(lanes)]
        m.d.comb += self.weighted_sum.eq(registered_accumulation(
            m, [Mux(valid[l], self.product[l], 0) for l in range(lanes)], self.clear,
            self.load, weight_bits, "weighted_sum_acc", chain=chain))
        beat_min = registered_tree(
            m, [Mux(valid[l], self.score[l], config.max_score) for l in range(lanes)],
            lambda a, b, name: Mux(fast_geq(m, a, b, name, chain=chain), b, a), config.score_bits,
            "beat_min")
        beat_max = registered_tree(
            m, [Mux(valid[l], self.score[l], 0) for l in range(lanes)],
            lambda a, b, name: Mux(fast_geq(m, a, b, name, chain=chain), a, b), config.score_bits,
            "beat_max")
        # The beat's clear and load, delayed to the cycle its extremes leave the tree.
        clear_l, load_l = self.clear, self.load
        for level in range(tree_levels(lanes)):
            clear_next, load_next = Signal(name=f"clear_l{level}"), Signal(name=f"load_l{level}")
            m.d.sync += [clear_next.eq(clear_l), load_next.eq(load_l)]
            clear_l, load_l = clear_next, load_next
        with m.If(clear_l):
            m.d.sync += [self.min_score.eq(config.max_score), self.max_score.eq(0)]
        with m.Elif(load_l):
            m.d.sync += [
                self.min_score.eq(Mux(fast_geq(m, beat_min, self.min_score, "min_geq",
                                               chain=chain), self.min_score, beat_min)),
                self.max_score.eq(Mux(fast_geq(m, self.max_score, beat_max, "max_geq",
                                               chain=chain), self.max_score, beat_max))]
        return m
