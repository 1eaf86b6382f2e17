"""The HCU's argmin tree: the best match of the oldest token over all lanes."""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data
from amaranth.lib.wiring import In, Out

from hw.component import ConfiguredComponent
from hw.hcu.arith import better

__all__ = ["ArgminTree"]


class ArgminTree(ConfiguredComponent):
    """The smallest ``(distance, cluster)`` pair of ``hcu_lanes`` candidates (combinational).

    Pairs are compared in a balanced tree, candidate ``2i`` against ``2i + 1`` at the first
    level; a pair is ordered by distance, then by cluster id, so ties go to the lowest cluster id
    whatever lane holds it (two equal pairs: the lower-numbered candidate).

    Parameters
    ----------
    config : DREConfig
        Uses ``hcu_lanes``, ``hash_bits`` and ``max_clusters``.

    Members
    -------
    distance : In(ArrayLayout(range(hash_bits + 1), hcu_lanes))
    cluster : In(ArrayLayout(cluster_id_bits, hcu_lanes))
        The candidates (each lane's best match of the oldest token).
    best_distance : Out(range(hash_bits + 1))
    best_cluster : Out(cluster_id_bits)
        The smallest candidate.

    Raises
    ------
    TypeError
        If ``config`` is not a :class:`DREConfig`.
    """

    def _members(self, config):
        distance = range(config.hash_bits + 1)
        return {
            "distance": In(data.ArrayLayout(distance, config.hcu_lanes)),
            "cluster": In(data.ArrayLayout(config.cluster_id_bits, config.hcu_lanes)),
            "best_distance": Out(distance),
            "best_cluster": Out(config.cluster_id_bits),
        }

    def elaborate(self, platform):
        config = self._config
        m = Module()
        candidates = [(self.distance[index], self.cluster[index])
                      for index in range(config.hcu_lanes)]
        while len(candidates) > 1:
            paired = []
            for left, right in zip(candidates[0::2], candidates[1::2]):
                take_right = better(right[0], right[1], left[0], left[1])
                distance = Signal(range(config.hash_bits + 1))
                cluster = Signal(config.cluster_id_bits)
                m.d.comb += [distance.eq(Mux(take_right, right[0], left[0])),
                             cluster.eq(Mux(take_right, right[1], left[1]))]
                paired.append((distance, cluster))
            if len(candidates) % 2:
                paired.append(candidates[-1])
            candidates = paired
        m.d.comb += [self.best_distance.eq(candidates[0][0]),
                     self.best_cluster.eq(candidates[0][1])]
        return m
