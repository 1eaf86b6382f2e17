"""The WTU's row preprocessing: weighted sum, min and max while the row streams in; threshold."""

from amaranth.hdl import Const, Module, Mux
from amaranth.lib import data
from amaranth.lib.wiring import In, Out

from hw.component import ConfiguredComponent
from hw.wtu.layouts import tree
from hw.wtu.pipeline import registered_tree, threshold_latency, threshold_terms

__all__ = ["RowStatistics"]


class RowStatistics(ConfiguredComponent):
    """Per load beat, adds the valid lanes' ``s x n`` to ``W`` and updates min and max.

    ``threshold`` is :func:`model.reference.resv.wicsum_threshold` of ``weighted_sum``:
    ``(W * wicsum_ratio_code + 2**(wicsum_ratio_bits - 1)) >> wicsum_ratio_bits`` (round half up),
    a registered adder tree over the shifted copies of ``W`` (the code's set bits) and the
    rounding constant: it follows ``weighted_sum`` :attr:`threshold_latency` cycles later.

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

    def elaborate(self, platform):
        config = self._config
        lanes, ratio_bits = config.wtu_lanes, config.wicsum_ratio_bits
        m = Module()
        width = config.weight_bits + ratio_bits + 1
        terms = [self.weighted_sum << shift for shift in threshold_terms(config)]
        scaled = registered_tree(m, terms + [Const(1 << (ratio_bits - 1), width)],
                                 lambda a, b: (a + b)[:width], width, "threshold_sum")
        m.d.comb += self.threshold.eq(scaled >> ratio_bits)
        with m.If(self.clear):
            m.d.sync += [self.weighted_sum.eq(0), self.min_score.eq(config.max_score),
                         self.max_score.eq(0)]
        with m.Elif(self.load):
            valid = [self.valid[l] for l in range(lanes)]
            products = [Mux(valid[l], self.product[l], 0) for l in range(lanes)]
            lows = [Mux(valid[l], self.score[l], config.max_score) for l in range(lanes)]
            highs = [Mux(valid[l], self.score[l], 0) for l in range(lanes)]
            beat_min = tree(lows, lambda a, b: Mux(a < b, a, b))
            beat_max = tree(highs, lambda a, b: Mux(a > b, a, b))
            m.d.sync += [
                self.weighted_sum.eq(self.weighted_sum + tree(products, lambda a, b: a + b)),
                self.min_score.eq(Mux(beat_min < self.min_score, beat_min, self.min_score)),
                self.max_score.eq(Mux(beat_max > self.max_score, beat_max, self.max_score))]
        return m
