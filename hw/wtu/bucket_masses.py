"""The WTU's bucket histogram: per bucket, the mass ``sum s x n`` and the count of its clusters."""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data
from amaranth.lib.wiring import In, Out

from hw.component import ConfiguredComponent
from hw.wtu.fast_adders import carry_chains
from hw.wtu.layouts import tree
from hw.wtu.pipeline import (ACCUMULATE_LATENCY, buckets_per_copy, delayed, product_copies,
                             registered_accumulation)

__all__ = ["BucketMasses", "MASS_LATENCY"]

#: Cycles from the lanes' inputs to the masses counting them (carry-save over two cycles,
#: then resolved: :func:`hw.wtu.pipeline.registered_accumulation`).
MASS_LATENCY = ACCUMULATE_LATENCY


class BucketMasses(ConfiguredComponent):
    """Bucket masses and member counts, ``wtu_lanes`` clusters added per cycle.

    Each cycle with ``accumulate``, every lane adds its ``product`` to the mass of the bucket
    its ``hits`` word names (none when it is 0) and one to its member count. A mass is kept in
    carry-save form (:func:`hw.wtu.pipeline.registered_accumulation`: the lanes' products
    compressed in groups, registered, then added to the saved pair, without a carry chain) and
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
    product : In(ArrayLayout(ArrayLayout(score_bits + count_bits, C), wtu_lanes))
        Each lane's cluster this cycle: its bucket as a one-hot word (bit ``k`` set: the
        cluster is taken and falls in bucket ``k``; 0: not taken), its mass ``s x n`` once per
        group of ``wtu_buckets / C`` buckets (``C`` = :func:`hw.wtu.pipeline.product_copies`;
        :attr:`hw.wtu.Lane.product_copies`): bucket ``k`` takes copy ``k // (wtu_buckets /
        C)``, which must be the mass when the hits word has a bit in its group and may be
        anything otherwise.
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
            "product": In(data.ArrayLayout(
                data.ArrayLayout(config.score_bits + config.count_bits, product_copies(config)),
                lanes)),
            "clear": In(1),
            "mass": Out(data.ArrayLayout(config.weight_bits, buckets)),
            "members": Out(data.ArrayLayout(config.cluster_id_bits + 1, buckets)),
        }

    @property
    def latency(self):
        """Cycles from a cycle's inputs to ``mass`` and ``members`` counting them: 3 for the
        masses (the groups' carry-save pairs, the saved pair, the resolved sum), and for
        ``members`` (the hit bits registered, counted, added)."""
        return MASS_LATENCY

    def elaborate(self, platform):
        # Pipeline, one comment per cycle (cycle 0: the inputs):
        #   cycle 0: per bucket, the masked products compressed in groups into carry-save
        #            pairs, registered (hw.wtu.pipeline.registered_accumulation); the bucket's
        #            hit bits registered as they arrive (no logic after the wire from the
        #            lanes: on the ECP5 the lanes' hits into a 16-bit count in this cycle
        #            were the critical path once the products had their copies);
        #   cycle 1: the pairs added to the saved pair; the hit bits counted (a narrow sum),
        #            registered;
        #   cycle 2: the saved pair resolved into ``mass``; the count added to the members,
        #            which are the output.
        config = self._config
        lanes = config.wtu_lanes
        group = buckets_per_copy(config)
        chain = carry_chains(platform)
        m = Module()
        clear_members = delayed(m, self.clear, 2, "members_clear")
        add_members = delayed(m, self.accumulate, 2, "members_add")
        for k in range(config.wtu_buckets):
            hits = [self.hits[l][k] for l in range(lanes)]
            mass = registered_accumulation(
                m, [Mux(hits[l], self.product[l][k // group], 0) for l in range(lanes)],
                self.clear, self.accumulate, config.weight_bits, f"mass{k}", chain=chain)
            arrived = Signal(lanes, name=f"hits{k}_arrived")
            beat_hits = Signal(range(lanes + 1), name=f"hits{k}")
            members = Signal.like(self.members[k], name=f"members{k}_0")
            m.d.sync += [arrived.eq(Cat(*hits)),
                         beat_hits.eq(tree(list(arrived), lambda a, b: a + b))]
            with m.If(clear_members):
                m.d.sync += members.eq(0)
            with m.Elif(add_members):
                m.d.sync += members.eq(members + beat_hits)
            m.d.comb += [self.members[k].eq(members), self.mass[k].eq(mass)]
        return m
