"""The HCU's argmin tree: the best match of one token slot over all lanes, pipelined."""

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import data
from amaranth.lib.wiring import In, Out

from hw.component import ConfiguredComponent
from hw.hcu.arith import select

__all__ = ["ArgminTree", "stage_groups"]


class ArgminTree(ConfiguredComponent):
    """The smallest ``(distance, cluster)`` pair of ``hcu_lanes`` candidates, three cycles later.

    A pair is ordered by distance, then by cluster id (one unsigned compare of the key
    ``distance * 2**cluster_id_bits + cluster``), so ties go to the lowest cluster id whatever
    lane holds it (two equal pairs: the lower-numbered candidate). The reduction is a pipeline
    of three registered stages (:attr:`latency`), each a *tournament* of groups: the first
    reduces pairs of consecutive candidates (one compare and a 2-to-1 selection, so the
    candidates, spread over the lanes, each reach one small piece of logic before a register),
    the second and third the rest of the ``levels`` = ``ceil(log2(hcu_lanes))`` levels, the
    second ``ceil((levels - 1) / 2)`` of them (:func:`stage_groups`; edge, 16 lanes: groups of
    2, 4 and 2). Within a group every pair is compared at once and the winner, the candidate
    that beats every other, is selected (one compare and one selection deep, not one per level
    of a binary tree). ``best_*`` in cycle ``y + 3`` is the minimum of the candidates of cycle
    ``y``; ``best_found`` comes from the candidates' own "below the threshold" bits, OR-ed
    beside the tournaments.

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
        The smallest candidate of three cycles before (registers).
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
        return len(stage_groups(self._config.hcu_lanes))

    def elaborate(self, platform):
        config = self._config
        m = Module()
        threshold = config.hamming_threshold
        keys = [Cat(self.cluster[index], self.distance[index])
                for index in range(config.hcu_lanes)]
        found = [self.distance[index] < threshold for index in range(config.hcu_lanes)]
        # Cycle y + s (stage s): the groups' winners and their "a match below the threshold"
        # bits, registered; the last stage's single winner is ``best_*``.
        for stage, group in enumerate(stage_groups(config.hcu_lanes), start=1):
            winners, matches = [], []
            for first in range(0, len(keys), group):
                name = f"stage{stage}_group{first // group}"
                key = Signal.like(keys[0], name=f"{name}_key")
                match = Signal(name=f"{name}_found")
                m.d.sync += [key.eq(_tournament(m, keys[first:first + group], name)),
                             match.eq(Cat(found[first:first + group]).any())]
                winners.append(key)
                matches.append(match)
            keys, found = winners, matches
        (best,), (best_found,) = keys, found
        m.d.comb += [self.best_cluster.eq(best[:config.cluster_id_bits]),
                     self.best_distance.eq(best[config.cluster_id_bits:]),
                     self.best_found.eq(best_found)]
        return m


def stage_groups(candidates):
    """The group size of each of the argmin's three stages for ``candidates`` inputs: pairs
    first (one level of the ``ceil(log2(candidates))``), then the other levels split between
    the second stage (the larger half) and the third; a stage without a level passes its
    input through its registers (group 1)."""
    levels = (candidates - 1).bit_length()
    first = min(levels, 1)
    second = (levels - first + 1) // 2
    return (1 << first, 1 << second, 1 << (levels - first - second))


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
