"""The WTU's bucket histogram: per bucket, the mass ``sum s x n`` and the count of its clusters."""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data
from amaranth.lib.wiring import In, Out

from hw.component import ConfiguredComponent
from hw.wtu.fast_adders import carry_chains, carry_save, fast_add
from hw.wtu.layouts import tree

__all__ = ["BucketMasses", "MASS_LATENCY"]

#: Cycles from the lanes' inputs to the masses counting them (carry-save, then resolved).
MASS_LATENCY = 2


class BucketMasses(ConfiguredComponent):
    """Bucket masses and member counts, ``wtu_lanes`` clusters added per cycle.

    Each cycle with ``accumulate``, every lane adds its ``product`` to the mass of the bucket
    its ``hits`` word names (none when it is 0) and one to its member count. A mass is kept in carry-save form
    (:func:`hw.wtu.fast_adders.carry_save`: a 16-lane sum per cycle without a carry chain) and
    resolved a cycle later; ``mass`` and ``members`` show the inputs :attr:`latency` cycles
    after they were given. Sums cannot overflow: a mass fits ``weight_bits``, a count
    ``cluster_id_bits + 1``.

    Parameters
    ----------
    config : DREConfig
        Uses ``wtu_lanes``, ``wtu_buckets``, ``score_bits``, ``count_bits``, ``max_clusters``.

    Members
    -------
    accumulate : In(1)
    hits : In(ArrayLayout(wtu_buckets, wtu_lanes))
    product : In(ArrayLayout(score_bits + count_bits, wtu_lanes))
        Each lane's cluster this cycle: its bucket as a one-hot word (bit ``k`` set: the
        cluster is taken and falls in bucket ``k``; 0: not taken), its mass ``s x n``.
    clear : In(1)
        Set every mass and count to 0 (wins over ``accumulate``; seen :attr:`latency` cycles
        later like the sums).
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
            "hits": In(data.ArrayLayout(buckets, lanes)),
            "product": In(data.ArrayLayout(config.score_bits + config.count_bits, lanes)),
            "clear": In(1),
            "mass": Out(data.ArrayLayout(config.weight_bits, buckets)),
            "members": Out(data.ArrayLayout(config.cluster_id_bits + 1, buckets)),
        }

    @property
    def latency(self):
        """Cycles from a cycle's inputs to ``mass`` and ``members`` counting them: 2 for the
        masses (the carry-save register, then the resolved sum), and ``members`` delayed to
        match."""
        return MASS_LATENCY

    def elaborate(self, platform):
        # Pipeline, one comment per cycle (cycle 0: the inputs):
        #   cycle 0: per bucket, the masked products and the carry-save pair (sum, carry) are
        #            compressed to a new pair (full adders, no carry chain), registered;
        #            members add their hits (a narrow sum), registered;
        #   cycle 1: the pair is resolved by a prefix adder into ``mass``, registered; the
        #            member counts are registered once more, to stay aligned.
        config = self._config
        lanes, weight_bits = config.wtu_lanes, config.weight_bits
        m = Module()
        for k in range(config.wtu_buckets):
            hits = [self.hits[l][k] for l in range(lanes)]
            saved_sum = Signal(weight_bits, name=f"mass{k}_sum")
            saved_carry = Signal(weight_bits, name=f"mass{k}_carry")
            members = Signal.like(self.members[k], name=f"members{k}_0")
            new_sum, new_carry = carry_save(
                m,                 [Mux(hits[l], self.product[l], 0) for l in range(lanes)]
                + [saved_sum, saved_carry], weight_bits, f"mass{k}_csa")
            with m.If(self.clear):
                m.d.sync += [saved_sum.eq(0), saved_carry.eq(0), members.eq(0)]
            with m.Elif(self.accumulate):
                m.d.sync += [saved_sum.eq(new_sum), saved_carry.eq(new_carry),
                             members.eq(members + tree(hits, lambda a, b: a + b))]
            m.d.sync += [self.mass[k].eq(fast_add(m, saved_sum, saved_carry, f"mass{k}_add",
                                                      weight_bits, chain=carry_chains(platform))),
                         self.members[k].eq(members)]
        return m
