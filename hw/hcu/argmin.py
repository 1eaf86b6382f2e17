"""The HCU's argmin tree: the best match of one token slot over all lanes, pipelined."""

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import data
from amaranth.lib.wiring import In, Out

from hw.component import ConfiguredComponent
from hw.hcu.arith import select

__all__ = ["ArgminTree"]


class ArgminTree(ConfiguredComponent):
    """The smallest ``(distance, cluster)`` pair of ``hcu_lanes`` candidates, two cycles later.

    A pair is ordered by distance, then by cluster id (one unsigned compare of the key
    ``distance * 2**cluster_id_bits + cluster``), so ties go to the lowest cluster id whatever
    lane holds it (two equal pairs: the lower-numbered candidate). The reduction is a pipeline
    of two registered stages (:attr:`latency`), each a *tournament* of groups: the first
    reduces groups of ``2**ceil(levels / 2)`` consecutive candidates (``levels`` =
    ``ceil(log2(hcu_lanes))``), the second the group winners; within a group every pair is
    compared at once and the winner, the candidate that beats every other, is selected (one
    compare and one selection deep, not one per level of a binary tree). ``best_*`` in cycle
    ``y + 2`` is the minimum of the candidates of cycle ``y``; ``best_found`` comes from the
    candidates' own "below the threshold" bits, OR-ed beside the tournaments.

    Parameters
    ----------
    config : DREConfig
        Uses ``hcu_lanes``, ``hamming_threshold`` and ``max_clusters``.

    Members
    -------
    distance : In(ArrayLayout(range(hamming_threshold + 1), hcu_lanes))
    cluster : In(ArrayLayout(cluster_id_bits, hcu_lanes))
        The candidates (each lane's best match of one token slot; a lane's best distance is
        at most ``hamming_threshold``, the value of "no match", so the keys are that narrow).
    best_distance : Out(range(hamming_threshold + 1))
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
        distance = range(config.hamming_threshold + 1)
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
        threshold = config.hamming_threshold
        candidates = [Cat(self.cluster[index], self.distance[index])
                      for index in range(config.hcu_lanes)]
        below = [self.distance[index] < threshold for index in range(config.hcu_lanes)]
        levels = (config.hcu_lanes - 1).bit_length()
        group = 1 << ((levels + 1) // 2)
        # Cycle y: the groups' winners and their "a match below the threshold" bits, registered.
        winners, found = [], []
        for first in range(0, config.hcu_lanes, group):
            name = f"stage1_group{first // group}"
            key = Signal.like(candidates[0], name=f"{name}_key")
            match = Signal(name=f"{name}_found")
            m.d.sync += [key.eq(_tournament(m, candidates[first:first + group], name)),
                         match.eq(Cat(below[first:first + group]).any())]
            winners.append(key)
            found.append(match)
        # Cycle y + 1: the winner of the winners, registered.
        best = _tournament(m, winners, "stage2")
        m.d.sync += [self.best_cluster.eq(best[:config.cluster_id_bits]),
                     self.best_distance.eq(best[config.cluster_id_bits:]),
                     self.best_found.eq(Cat(found).any())]
        return m


def _tournament(m, keys, name):
    """The smallest of ``keys`` (ties to the lowest index): every pair compared at once, the key
    that beats all others selected by an AND-OR."""
    if len(keys) == 1:
        return keys[0]
    # ``first_wins[i, j]`` (i < j): key i is before key j (not larger; ties to the lower index).
    first_wins = {}
    for low in range(len(keys)):
        for high in range(low + 1, len(keys)):
            wins = Signal(name=f"{name}_{low}_before_{high}")
            m.d.comb += wins.eq(keys[low] <= keys[high])
            first_wins[low, high] = wins
    choices = []
    for index, key in enumerate(keys):
        beats_all = Cat(*(first_wins[index, other] for other in range(index + 1, len(keys))),
                        *(~first_wins[other, index] for other in range(index))).all()
        choices.append((beats_all, key))
    best = Signal.like(keys[0], name=f"{name}_best")
    m.d.comb += best.eq(select(choices))
    return best
