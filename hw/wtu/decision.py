"""The WTU's decision: the crossing bucket of a pass, early exit, and the row's cutoff."""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data
from amaranth.lib.wiring import In, Out

from hw.component import ConfiguredComponent
from hw.wtu.fast_adders import carry_chains, fast_add, fast_geq, fast_sub
from hw.wtu.layouts import WTULayouts, one_hot_select
from hw.wtu.pipeline import decision_cycles, registered_suffix_sums

__all__ = ["Decision", "pass_bucket"]


def pass_bucket(m, config, score, pass_index, bucket):
    """Drive ``bucket`` (comb) with the bucket of ``score`` in pass ``pass_index``:
    ``(score >> shift_p) & (2**bits_p - 1)`` (:attr:`DREConfig.wtu_bucket_shifts`,
    :attr:`DREConfig.wtu_pass_bits`), an if/elif chain over the passes."""
    shifts, pass_bits = config.wtu_bucket_shifts, config.wtu_pass_bits
    for p in range(config.wtu_refine_depth + 1):
        with (m.If if p == 0 else m.Elif)(pass_index == p):
            m.d.comb += bucket.eq((score >> shifts[p]) & ((1 << pass_bits[p]) - 1))


class Decision(ConfiguredComponent):
    """One decision per ``step``: the crossing bucket, the buckets selected outright, refinement.

    A pipeline over :attr:`decide_cycles` cycles while ``mass``, ``members`` and the row's
    ``weighted_sum`` (thus ``threshold``, which follows it by
    :func:`hw.wtu.pipeline.threshold_latency` cycles) stay unchanged; ``step`` is given in its
    last cycle. Cycle by cycle from the first cycle of stable inputs (cycle 0):

    * cycles 0 to ``L`` (``L = ceil(log2(wtu_buckets))``): the suffix masses
      ``sum_{k >= c} mass_k`` of every bucket, a Kogge-Stone tree with one level per cycle,
      each adder cut into a low half (cycle ``level``) and a high half (cycle ``level + 1``)
      with a registered carry between them (``suffix_l*``,
      :func:`hw.wtu.pipeline.registered_suffix_sums`);
    * cycle ``max(threshold_latency, 1)``: ``remaining = threshold - mass_above`` registered;
    * cycle ``max(L + 1, max(threshold_latency, 1) + 1)``: per bucket, ``reach_k`` = non-empty and
      suffix mass ``>= remaining``; the highest ``k`` with ``reach_k``, one-hot (0 when there
      is none), registered (the FPGA form finds it at the edge of the comparisons,
      :meth:`_highest_at_the_edge`);
    * the cycle after: the crossing bucket (that ``k``, 0 when there is none), its members and
      the mass of the buckets above it, registered, and ``refine`` (the FPGA form takes
      whether the threshold is 0 from a register, written from cycle ``threshold_latency``);
    * the last cycle (``step``): the pass is recorded (the rules of :mod:`model.twins.wtu`): ``cutoff |= crossing << shift_p``,
      ``visited`` adds the buckets from the top one down to the crossing one; when ``refine``
      (threshold not 0, ``p < wtu_refine_depth``, ``shift_p > 0`` and at least 2 members) the
      next pass begins (``touched`` adds the members walked). The mass of the buckets above the
      crossing one is added to ``mass_above`` in the cycle after (a walk cycle
      always follows a refining step). A threshold of 0 selects nothing (``cutoff =
      2**score_bits``, 0 buckets visited); a final cutoff of 0 becomes 1 (a score of 0 is never
      selected).

    Parameters
    ----------
    config : DREConfig
        Uses ``wtu_buckets``, ``wtu_refine_depth``, ``score_bits``, ``count_bits``,
        ``max_clusters``, ``wicsum_ratio_bits`` and ``wicsum_ratio_code``.

    Members
    -------
    mass : In(ArrayLayout(weight_bits, wtu_buckets))
    members : In(ArrayLayout(cluster_id_bits + 1, wtu_buckets))
        This pass's buckets (:class:`hw.wtu.BucketMasses`): a bucket without members has no
        mass (the FPGA form relies on it).
    threshold : In(weight_bits)
    clear : In(1)
        Start a row (pass 0, nothing above, cutoff 0, counters 0).
    step : In(1)
        Take the decision in this cycle, the last of :attr:`decide_cycles` cycles of stable
        inputs.
    crossing : Out(range(wtu_buckets))
        The crossing bucket (a register, valid in the last cycle).
    crossing_select : Out(wtu_buckets)
        ``crossing`` one-hot a cycle ahead: valid (combinational) in the last two cycles.
    refine : Out(1)
        This decision refines the crossing bucket (a register, valid in the last cycle).
    pass_index : Out(range(wtu_refine_depth + 1))
    cutoff : Out(score_bits + 1)
        The row selects scores >= cutoff (the lower bound of the crossing range until the end).
    visited, touched : Out
        Buckets visited and clusters walked so far (widths of the ``stats`` fields).

    Raises
    ------
    TypeError
        If ``config`` is not a :class:`DREConfig`.
    """

    def _members(self, config):
        stats = WTULayouts(config).stats
        buckets, weight_bits = config.wtu_buckets, config.weight_bits
        return {
            "mass": In(data.ArrayLayout(weight_bits, buckets)),
            "members": In(data.ArrayLayout(config.cluster_id_bits + 1, buckets)),
            "threshold": In(weight_bits),
            "clear": In(1),
            "step": In(1),
            "crossing": Out(range(buckets)),
            "crossing_select": Out(buckets),
            "refine": Out(1),
            "pass_index": Out(range(config.wtu_refine_depth + 1)),
            "cutoff": Out(config.score_bits + 1),
            "visited": Out(stats["buckets_visited"].shape),
            "touched": Out(stats["touched"].shape),
        }

    @property
    def decide_cycles(self):
        """Cycles of one decision, ``step`` in the last (:func:`hw.wtu.pipeline.decision_cycles`)."""
        return decision_cycles(self._config)

    def elaborate(self, platform):
        config = self._config
        buckets, weight_bits = config.wtu_buckets, config.weight_bits
        depth = config.wtu_refine_depth
        shifts, pass_bits = config.wtu_bucket_shifts, config.wtu_pass_bits
        chain = carry_chains(platform)
        m = Module()
        # Cycles 0 to L: the suffix masses, one adder level per cycle in halves (the high
        # halves one cycle after the low ones).
        suffix = registered_suffix_sums(m, [self.mass[k] for k in range(buckets)], weight_bits,
                                        "suffix", chain=chain)
        # Cycle max(threshold_latency, 1) on: the rest of the threshold (mass_above is stable).
        mass_above = Signal(weight_bits)
        remaining = Signal(weight_bits)
        m.d.sync += remaining.eq(fast_sub(m, self.threshold, mass_above, "remaining",
                                                  weight_bits, chain=chain))
        # Cycle max(L + 1, max(threshold_latency, 1) + 1): the comparison of every bucket, and
        # the highest bucket reached, one-hot (0 when none), registered: the cycle after
        # starts from a register, not from the comparisons' priority chain.
        nonempty = [self.members[k] != 0 for k in range(buckets)]
        geq = [fast_geq(m, suffix[k], remaining, f"reach{k}", chain=chain)
               for k in range(buckets)]
        highest = Signal(buckets)
        if chain:
            self._highest_at_the_edge(m, Cat(geq), Cat(nonempty), mass_above, highest)
        else:
            reach = Cat(nonempty[k] & geq[k] for k in range(buckets))
            m.d.sync += highest.eq(Cat(reach[k] & ~reach[k + 1:].any() for k in range(buckets)))
        # The cycle after: the crossing bucket, its members and the mass of the buckets above
        # it, registered, selected by the one-hot with an AND-OR over the buckets (a balanced
        # tree, not a chain of one multiplexer per bucket).
        mass_over = Signal(weight_bits)    # mass of the buckets above the crossing one
        crossing_members = Signal.like(self.members[0])
        # The same one-hot, with bucket 0 when none is reached (as ``crossing`` is then).
        m.d.comb += self.crossing_select.eq(highest | ~highest[1:].any())

        m.d.sync += [
            self.crossing.eq(one_hot_select(highest, range(buckets))),
            crossing_members.eq(one_hot_select(highest,
                                               [self.members[k] for k in range(buckets)])),
            mass_over.eq(one_hot_select(highest, suffix[1:]) if buckets > 1 else 0),
        ]
        # Last cycle: the pass recorded at the step.
        pass_buckets = Signal(range(buckets + 1))
        pass_shift = Signal(range(config.score_bits + 1))
        may_refine = Signal()
        for p in range(depth + 1):
            with (m.If if p == 0 else m.Elif)(self.pass_index == p):
                m.d.comb += [pass_buckets.eq(1 << pass_bits[p]), pass_shift.eq(shifts[p]),
                             may_refine.eq((p < depth) and shifts[p] > 0)]
        # Whether the threshold is 0: on an FPGA registered, so that its test (``weight_bits``
        # wide, 44 on ``edge``) is not on the path into ``refine`` and the step. No cycle
        # changes: the threshold is the row's from cycle ``threshold_latency`` on, the register
        # from the cycle after, and ``refine`` is registered a cycle after ``highest``, at the
        # earliest in cycle ``threshold_latency + 2``.
        if chain:
            threshold_zero = Signal(name="threshold_zero")
            m.d.sync += threshold_zero.eq(self.threshold == 0)
            threshold_nonzero = ~threshold_zero
        else:
            threshold_zero, threshold_nonzero = self.threshold == 0, self.threshold != 0
        # ``refine`` registered with the crossing bucket (from the one-hot and whether each
        # bucket has two members), so that the step's strobes, which reach every lane's walk
        # start, begin at a register.
        m.d.sync += self.refine.eq(threshold_nonzero & may_refine
                                   & one_hot_select(highest, [self.members[k] >= 2
                                                              for k in range(buckets)]))

        # The cycle after a step: mass_above grows by the buckets selected outright.
        add_above = Signal()
        mass_over_stepped = Signal(weight_bits)
        m.d.sync += [add_above.eq(self.step), mass_over_stepped.eq(mass_over)]
        with m.If(add_above):
            m.d.sync += mass_above.eq(fast_add(m, mass_above, mass_over_stepped,
                                                       "mass_above", weight_bits, chain=chain))
        with m.If(self.clear):
            m.d.sync += [mass_above.eq(0), add_above.eq(0), self.cutoff.eq(0),
                         self.pass_index.eq(0), self.visited.eq(0), self.touched.eq(0)]
        with m.Elif(self.step):
            cutoff = self.cutoff | (self.crossing << pass_shift)
            m.d.sync += [self.visited.eq(self.visited + pass_buckets - self.crossing),
                         self.cutoff.eq(cutoff)]
            with m.If(threshold_zero):
                # Nothing to reach: nothing selected, no bucket looked at.
                m.d.sync += [self.cutoff.eq(1 << config.score_bits), self.visited.eq(0)]
            with m.Elif(self.refine):
                m.d.sync += [self.touched.eq(self.touched + crossing_members),
                             self.pass_index.eq(self.pass_index + 1)]
            with m.Elif(cutoff == 0):
                m.d.sync += self.cutoff.eq(1)   # a score of 0 is never selected
        return m

    def _highest_at_the_edge(self, m, geq, nonempty, mass_above, highest):
        """The FPGA form of ``highest`` (registered): the same one-hot as the silicon form's
        priority over ``geq & nonempty``, with one LUT after the comparisons.

        The suffix masses do not grow from a bucket to the one above it, so the buckets whose
        suffix reaches ``remaining`` are 0 to some ``K`` (``geq`` is a thermometer). When
        ``remaining`` is above 0, bucket ``K`` has mass of its own (its suffix reaches
        ``remaining``, the one above does not), hence members: the highest bucket reached is
        ``K``, the edge ``geq[k] & ~geq[k + 1]``. When ``remaining`` is 0 (``threshold`` equal to
        ``mass_above``, registered as ``remaining`` is) every bucket reaches it: the highest
        non-empty one, from the members (stable through the decision), registered.
        """
        buckets = len(geq)
        top_nonempty = Signal(buckets)
        nothing_left = Signal()
        m.d.sync += [
            top_nonempty.eq(Cat(nonempty[k] & ~nonempty[k + 1:].any() for k in range(buckets))),
            nothing_left.eq(self.threshold == mass_above),
        ]
        edge = geq & ~(geq >> 1)
        m.d.sync += highest.eq(Mux(nothing_left, top_nonempty, edge))
