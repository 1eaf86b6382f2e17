"""The WTU's bucket histogram: per bucket, the mass ``sum s x n`` and the count of its clusters."""

from amaranth.hdl import Module, Mux
from amaranth.lib import data
from amaranth.lib.wiring import In, Out

from hw.component import ConfiguredComponent
from hw.wtu.layouts import tree

__all__ = ["BucketMasses"]


class BucketMasses(ConfiguredComponent):
    """Bucket masses and member counts, ``wtu_lanes`` clusters added per cycle.

    Each cycle with ``accumulate``, every lane whose ``active`` bit is set adds its ``product``
    to the mass of its ``bucket`` and one to its member count, through one adder tree per bucket
    over the lanes. Sums cannot overflow: a mass fits ``weight_bits``, a count
    ``cluster_id_bits + 1``.

    Parameters
    ----------
    config : DREConfig
        Uses ``wtu_lanes``, ``wtu_buckets``, ``score_bits``, ``count_bits``, ``max_clusters``.

    Members
    -------
    accumulate : In(1)
    active : In(wtu_lanes)
    bucket : In(ArrayLayout(range(wtu_buckets), wtu_lanes))
    product : In(ArrayLayout(score_bits + count_bits, wtu_lanes))
        Each lane's cluster this cycle: taken or not, its bucket, its mass ``s x n``.
    clear : In(1)
        Set every mass and count to 0 (wins over ``accumulate``).
    mass : Out(ArrayLayout(weight_bits, wtu_buckets))
    members : Out(ArrayLayout(cluster_id_bits + 1, wtu_buckets))

    Raises
    ------
    TypeError
        If ``config`` is not a :class:`DREConfig`.
    """

    def _members(self, config):
        lanes, buckets = config.wtu_lanes, config.wtu_buckets
        return {
            "accumulate": In(1),
            "active": In(lanes),
            "bucket": In(data.ArrayLayout(range(buckets), lanes)),
            "product": In(data.ArrayLayout(config.score_bits + config.count_bits, lanes)),
            "clear": In(1),
            "mass": Out(data.ArrayLayout(config.weight_bits, buckets)),
            "members": Out(data.ArrayLayout(config.cluster_id_bits + 1, buckets)),
        }

    def elaborate(self, platform):
        lanes = self._config.wtu_lanes
        m = Module()
        for k in range(self._config.wtu_buckets):
            hits = [self.active[l] & (self.bucket[l] == k) for l in range(lanes)]
            mass_in = tree([Mux(hits[l], self.product[l], 0) for l in range(lanes)],
                           lambda a, b: a + b)
            members_in = tree(hits, lambda a, b: a + b)
            with m.If(self.clear):
                m.d.sync += [self.mass[k].eq(0), self.members[k].eq(0)]
            with m.Elif(self.accumulate):
                m.d.sync += [self.mass[k].eq(self.mass[k] + mass_in),
                             self.members[k].eq(self.members[k] + members_in)]
        return m
