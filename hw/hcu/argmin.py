"""The HCU's argmin tree: the best match of one token slot over all lanes, pipelined."""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data
from amaranth.lib.wiring import In, Out

from hw.component import ConfiguredComponent

__all__ = ["ArgminTree"]


class ArgminTree(ConfiguredComponent):
    """The smallest ``(distance, cluster)`` pair of ``hcu_lanes`` candidates, two cycles later.

    Pairs are compared in a balanced tree, candidate ``2i`` against ``2i + 1`` at the first
    level; a pair is ordered by distance, then by cluster id (one unsigned compare of the key
    ``distance * 2**cluster_id_bits + cluster``), so ties go to the lowest cluster id whatever
    lane holds it (two equal pairs: the lower-numbered candidate). The tree is a pipeline of
    two registered stages (:attr:`latency`): the first ``ceil(levels / 2)`` levels, then the
    rest; ``best_*`` in cycle ``y + 2`` is the minimum of the candidates of cycle ``y``.

    Parameters
    ----------
    config : DREConfig
        Uses ``hcu_lanes``, ``hash_bits`` and ``max_clusters``.

    Members
    -------
    distance : In(ArrayLayout(range(hash_bits + 1), hcu_lanes))
    cluster : In(ArrayLayout(cluster_id_bits, hcu_lanes))
        The candidates (each lane's best match of one token slot).
    best_distance : Out(range(hash_bits + 1))
    best_cluster : Out(cluster_id_bits)
        The smallest candidate of two cycles before (registers).
    best_found : Out(1)
        ``best_distance < hamming_threshold``, a register beside them (a match was found).

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
            "best_found": Out(1),
        }

    @property
    def latency(self):
        """Cycles from the candidates to ``best_*``."""
        return 2

    def elaborate(self, platform):
        config = self._config
        m = Module()
        key_bits = len(self.best_distance) + config.cluster_id_bits
        candidates = [Cat(self.cluster[index], self.distance[index])
                      for index in range(config.hcu_lanes)]
        levels = (config.hcu_lanes - 1).bit_length()
        split = (levels + 1) // 2
        for level in range(levels + 1):
            if level == split:
                # Cycle y: the first levels, registered.
                staged = []
                for index, candidate in enumerate(candidates):
                    register = Signal(key_bits, name=f"stage1_key{index}")
                    m.d.sync += register.eq(candidate)
                    staged.append(register)
                candidates = staged
            if level == levels:
                break
            paired = []
            for left, right in zip(candidates[0::2], candidates[1::2]):
                key = Signal(key_bits)
                m.d.comb += key.eq(Mux(right < left, right, left))
                paired.append(key)
            if len(candidates) % 2:
                paired.append(candidates[-1])
            candidates = paired
        # Cycle y + 1: the remaining levels, registered.
        best_distance = candidates[0][config.cluster_id_bits:]
        m.d.sync += [self.best_cluster.eq(candidates[0][:config.cluster_id_bits]),
                     self.best_distance.eq(best_distance),
                     self.best_found.eq(best_distance < config.hamming_threshold)]
        return m
