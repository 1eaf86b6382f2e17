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
    its ``hits`` word names (none when it is 0) and one to its member count. A mass is kept in
    carry-save form (:func:`hw.wtu.fast_adders.carry_save`: a 16-lane sum per cycle without a
    carry chain) and resolved a cycle later; ``mass`` and ``members`` show the inputs
    :attr:`latency` cycles after they were given. Sums cannot overflow: a mass fits
    ``weight_bits``, a count ``cluster_id_bits + 1``.

    With ``lead`` > 0 the lanes' ``hits`` and ``product`` come ``lead`` cycles before the
    ``accumulate`` and ``clear`` they go with, and those cycles add them: each one registers,
    per bucket, the sums of pairs of the previous level's terms (lanes, then pairs of lanes,
    ...; a term left alone is registered as it is), so the carry-save sum takes
    ``ceil(wtu_lanes / 2**lead)`` terms per bucket instead of ``wtu_lanes``. On an FPGA a lane's
    product is ready that early (a multiplier block, then registers to the lanes' latency) and
    each level is one carry chain between registers: the lanes reach the buckets through
    registered pair sums, not through one wide compression per bucket.

    Parameters
    ----------
    config : DREConfig
        Uses ``wtu_lanes``, ``wtu_buckets``, ``score_bits``, ``count_bits``, ``max_clusters``.
    lead : int
        Cycles ``hits`` and ``product`` come before ``accumulate`` and ``clear`` (0 or more;
        default 0).

    Members
    -------
    accumulate : In(1)
    hits : In(ArrayLayout(wtu_buckets, wtu_lanes))
    product : In(ArrayLayout(score_bits + count_bits, wtu_lanes))
        Each lane's cluster (``lead`` cycles before its ``accumulate``): its bucket as a
        one-hot word (bit ``k`` set: the cluster is taken and falls in bucket ``k``; 0: not
        taken), its mass ``s x n``.
    clear : In(1)
        Set every mass and count to 0 (wins over ``accumulate``; seen :attr:`latency` cycles
        later like the sums).
    mass : Out(ArrayLayout(weight_bits, wtu_buckets))
    members : Out(ArrayLayout(cluster_id_bits + 1, wtu_buckets))

    Raises
    ------
    TypeError
        If ``config`` is not a :class:`DREConfig`, or ``lead`` not an int.
    ValueError
        If ``lead`` is negative.
    """

    def __init__(self, config, lead=0):
        if not isinstance(lead, int) or isinstance(lead, bool):
            raise TypeError(f"lead must be an int, not {lead!r}")
        if lead < 0:
            raise ValueError(f"lead must be 0 or more, not {lead!r}")
        self._lead = lead
        super().__init__(config)

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
    def lead(self):
        """Cycles the lanes' ``hits`` and ``product`` come before their ``accumulate``."""
        return self._lead

    @property
    def latency(self):
        """Cycles from a cycle's ``accumulate`` (and the lanes' inputs :attr:`lead` cycles
        before it) to ``mass`` and ``members`` counting them: 2 for the masses (the carry-save
        register, then the resolved sum), and ``members`` delayed to match."""
        return MASS_LATENCY

    def elaborate(self, platform):
        # Pipeline, one comment per cycle (cycle 0: accumulate and clear):
        #   cycles -lead to -1: per bucket, pairs of the terms (a lane's masked product and
        #            hit, then their pair sums) added and registered, one level a cycle;
        #   cycle 0: per bucket, the terms and the carry-save pair (sum, carry) are compressed
        #            to a new pair (full adders, no carry chain), registered; members add their
        #            terms' hits (a narrow sum), registered;
        #   cycle 1: the pair is resolved by a prefix adder into ``mass``, registered; the
        #            member counts are registered once more, to stay aligned.
        config = self._config
        lanes, weight_bits = config.wtu_lanes, config.weight_bits
        chain = carry_chains(platform)
        m = Module()
        for k in range(config.wtu_buckets):
            # A term: (mass, hits) of a group of lanes, for bucket k.
            terms = [(Mux(self.hits[l][k], self.product[l], 0), self.hits[l][k])
                     for l in range(lanes)]
            for level in range(self._lead):
                terms = [self._registered_pair(m, terms[i:i + 2], f"mass{k}_l{level}_{i // 2}",
                                               chain)
                         for i in range(0, len(terms), 2)]
            saved_sum = Signal(weight_bits, name=f"mass{k}_sum")
            saved_carry = Signal(weight_bits, name=f"mass{k}_carry")
            members = Signal.like(self.members[k], name=f"members{k}_0")
            new_sum, new_carry = carry_save(m, [mass for mass, _ in terms]
                                            + [saved_sum, saved_carry], weight_bits,
                                            f"mass{k}_csa")
            with m.If(self.clear):
                m.d.sync += [saved_sum.eq(0), saved_carry.eq(0), members.eq(0)]
            with m.Elif(self.accumulate):
                m.d.sync += [saved_sum.eq(new_sum), saved_carry.eq(new_carry),
                             members.eq(members + tree([hits for _, hits in terms],
                                                       lambda a, b: a + b))]
            m.d.sync += [self.mass[k].eq(fast_add(m, saved_sum, saved_carry, f"mass{k}_add",
                                                      weight_bits, chain=chain)),
                         self.members[k].eq(members)]
        return m

    @staticmethod
    def _registered_pair(m, pair, name, chain):
        """The sum of one or two terms ``(mass, hits)``, registered (one carry chain on an
        FPGA, a prefix adder otherwise)."""
        if len(pair) == 1:
            (mass, hits), = pair
            mass_sum, hits_sum = mass, hits
        else:
            (mass_a, hits_a), (mass_b, hits_b) = pair
            mass_bits = max(len(mass_a), len(mass_b)) + 1
            mass_sum = fast_add(m, mass_a, mass_b, f"{name}_add", mass_bits, chain=chain)
            hits_sum = hits_a + hits_b
        registered_mass = Signal(len(mass_sum), name=f"{name}_mass")
        registered_hits = Signal(len(hits_sum), name=f"{name}_hits")
        m.d.sync += [registered_mass.eq(mass_sum), registered_hits.eq(hits_sum)]
        return registered_mass, registered_hits
