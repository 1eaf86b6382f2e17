"""One WTU lane: its memories, its bucket lists and its datapath, behind one port list."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data
from amaranth.lib.wiring import In, Out

from hw.component import ConfiguredComponent, check_config
from hw.wtu.bucket_lists import BucketLists
from hw.wtu.decision import pass_bucket
from hw.wtu.fast_adders import carry_chains, fast_geq
from hw.wtu.lane_memories import LaneMemories
from hw.wtu.layouts import WTULayouts
from hw.wtu.pipeline import (buckets_per_copy, delayed, product_copies, product_latency,
                             registered_product)
from hw.wtu.sequencer import chunk_after

__all__ = ["Lane"]


class Lane(ConfiguredComponent):
    """Lane ``index`` of the WTU: cluster ``chunk * wtu_lanes + index`` lives at address
    ``chunk`` of its :class:`LaneMemories` and in its :class:`BucketLists`.

    Everything the lane needs comes in through its ports (the sequencer's strobes and chunk
    moves, the decision's pass, crossing bucket and cutoff, the lane's field of the input
    streams' beats), and everything it gives the shared parts goes out through them, so the
    lane is one piece of logic beside its memories (:mod:`hw.wtu.unit` explains the
    microarchitecture, :mod:`model.twins.wtu` the cycle model). The lane's pipeline, one
    line per cycle:

    * cycle 0: a load beat or a walk step: the cluster's address (the lane's copy of the chunk
      register, or the walk's), score (the beat's, or the score memory's word) and count (the
      count memory's word), taken (``active``) or not;
    * cycles 1 to ``P`` (``P`` = :func:`hw.wtu.pipeline.product_latency`): the product ``s x
      n`` (partial products, then their registered adder tree; one multiplier block on an
      FPGA) and, in cycle 1, the cluster's bucket in the pass (one-hot for the masses, 0 when
      not taken); the other fields follow in registers;
    * cycle ``P + 1``: the outputs ``hits``, ``product`` (and its copies for the masses),
      ``valid`` and ``score`` and the bucket lists' append.

    Parameters
    ----------
    config : DREConfig
        Uses ``score_bits``, ``count_bits``, ``max_clusters``, ``wtu_lanes``, ``wtu_buckets``
        and ``wtu_refine_depth``.
    index : int
        The lane's number, 0 to ``wtu_lanes - 1``.

    Members
    -------
    chunk_zero, chunk_step : In(1)
        How the sequencer's chunk register moves at the clock edge (:class:`Sequencer`); the
        lane keeps a copy of it that follows them, which addresses its memories.
    clusters_minus_one : In(cluster_id_bits)
        The problem's clusters minus one (which of the lane's addresses hold a cluster).
    load, walking, start_walk, write_counts, emit : In(1)
        The sequencer's strobes: a scores beat, a walk cycle, a walk's start, a counts beat, a
        row-mask beat.
    first_row : In(1)
        The row loaded or emitted is row 0 of the problem.
    clear : In(1)
        Empty the bucket lists (a cycle after a row's or a walk's start).
    beat_score : In(score_bits)
    beat_count : In(count_bits)
        The lane's field of the ``scores`` and ``counts`` beats.
    pass_index : In(range(wtu_refine_depth + 1))
    start_select : In(wtu_buckets)
    cutoff : In(score_bits + 1)
        From the decision: the pass, the crossing bucket one-hot a cycle ahead of a walk's
        start (:attr:`Decision.crossing_select`), the row's cutoff.
    stats_taken, emitting : In(1)
        The ``stats`` beat is transferred; the row's emission is under way (an FPGA build's
        emission reads the scores a chunk ahead, :meth:`_emission_score`).
    hits : Out(wtu_buckets)
    product : Out(score_bits + count_bits)
    valid : Out(1)
    score : Out(score_bits)
        The lane's cluster in cycle ``P + 1``: its bucket one-hot (0 when not taken), its
        mass ``s x n``, whether it exists (a load beat's lane within the problem), its score.
    product_copies : Out(ArrayLayout(score_bits + count_bits, C))
        ``product`` for the bucket masses, once per group of ``wtu_buckets / C`` buckets (``C``
        = :func:`hw.wtu.pipeline.product_copies`): copy ``g`` equals ``product`` whenever
        ``hits`` has a bit in group ``g``, and holds an earlier product otherwise (an FPGA
        build: registers of their own, each placed near its buckets; without a platform,
        ``product`` itself).
    walk_done : Out(1)
        The lane's walk ends in this cycle (:attr:`BucketLists.walk_done`).
    select : Out(1)
        The row selects the lane's cluster of the chunk emitted (the row-mask bit).
    max_score : Out(score_bits)
    aggregate : Out(1)
        The cluster's max score and aggregate bit at the lane's chunk (read ahead).

    Raises
    ------
    TypeError
        If ``config`` is not a :class:`DREConfig`.
    ValueError
        If ``index`` is not from 0 to ``wtu_lanes - 1``.
    """

    def __init__(self, config, index):
        check_config(config)
        lanes = config.wtu_lanes
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < lanes:
            raise ValueError(f"index must be an int from 0 to {lanes - 1} (wtu_lanes - 1), "
                             f"not {index!r}")
        self._index = index
        super().__init__(config)

    @property
    def index(self):
        """The lane's number."""
        return self._index

    def _members(self, config):
        ports = {name: In(1) for name in ("chunk_zero", "chunk_step", "load", "walking",
                                          "start_walk", "write_counts", "emit", "first_row",
                                          "clear", "stats_taken", "emitting")}
        ports.update({
            "clusters_minus_one": In(config.cluster_id_bits),
            "beat_score": In(config.score_bits),
            "beat_count": In(config.count_bits),
            "pass_index": In(range(config.wtu_refine_depth + 1)),
            "start_select": In(config.wtu_buckets),
            "cutoff": In(config.score_bits + 1),
            "hits": Out(config.wtu_buckets),
            "product": Out(config.score_bits + config.count_bits),
            "product_copies": Out(data.ArrayLayout(config.score_bits + config.count_bits,
                                                   product_copies(config))),
            "valid": Out(1),
            "score": Out(config.score_bits),
            "walk_done": Out(1),
            "select": Out(1),
            "max_score": Out(config.score_bits),
            "aggregate": Out(1),
        })
        return ports

    def elaborate(self, platform):
        config = self._config
        index, lanes = self._index, config.wtu_lanes
        chain = carry_chains(platform)   # an FPGA: carry chains and multiplier blocks
        chunk_bits = WTULayouts(config).chunk_bits
        m = Module()
        m.submodules.memories = memories = LaneMemories(config)
        m.submodules.lists = lists = BucketLists(config)
        product_stages = product_latency(config)
        product_bits = config.score_bits + config.count_bits
        # The lane's copy of the sequencer's chunk register (same rule, same value): its
        # memories' read and write addresses come from it, never from a register shared by
        # every lane (a net to the address pins of all lanes' macros is too slow).
        chunk, next_chunk = Signal(chunk_bits), Signal(chunk_bits)
        m.d.comb += next_chunk.eq(chunk_after(chunk, self.chunk_zero, self.chunk_step))
        m.d.sync += chunk.eq(next_chunk)
        next_address = Signal(chunk_bits)
        emission_score = self._emission_score(m, memories, next_chunk, next_address,
                                              fpga=chain)
        exists = Signal()       # cluster chunk * lanes + index exists
        active = Signal()       # the lane's cluster counts this cycle
        address = Signal(chunk_bits)
        score = Signal(config.score_bits)
        # Cycle 1 registers: the lane's words.
        valid_1, active_1 = Signal(name="valid_1"), Signal(name="active_1")
        address_1 = Signal(chunk_bits, name="address_1")
        score_1 = Signal(config.score_bits, name="score_1")
        count_1 = Signal(config.count_bits, name="count_1")
        bucket = Signal(range(config.wtu_buckets))
        pass_bucket(m, config, score_1, self.pass_index, bucket)
        m.d.sync += [valid_1.eq(exists), active_1.eq(active), address_1.eq(address),
                     score_1.eq(score), count_1.eq(memories.stored_count)]
        # Cycles 1 to P: the product; the other fields as the masses, lists and statistics
        # take them in cycle P + 1.
        # The bucket decoded in cycle 1 (one-hot, 0 when not taken) for the masses; a cycle
        # before the product shows, it enables the copies of the product whose group of
        # buckets it names.
        hits = Signal(config.wtu_buckets)
        m.d.comb += hits.eq(Mux(active_1, 1 << bucket, 0))
        hits_before = delayed(m, hits, product_stages - 1, "hits")
        copies, group = product_copies(config), buckets_per_copy(config)
        product, copied = registered_product(
            m, score_1, count_1, product_bits, "product", chain=chain,
            copy_enables=[hits_before[g * group:(g + 1) * group].any() for g in range(copies)])
        active_in = delayed(m, active_1, product_stages, "active")
        address_in = delayed(m, address_1, product_stages, "address")
        bucket_in = delayed(m, bucket, product_stages, "bucket")
        m.d.comb += [self.product_copies[g].eq(copied[g]) for g in range(copies)]
        m.d.comb += [
            self.hits.eq(delayed(m, hits_before, 1, "hits_last")),
            self.product.eq(product),
            self.valid.eq(delayed(m, valid_1, product_stages, "valid")),
            self.score.eq(delayed(m, score_1, product_stages, "score")),
            exists.eq(Cat(Const(index, lanes.bit_length() - 1), chunk)
                      <= self.clusters_minus_one),
            address.eq(Mux(self.walking, lists.walk_address, chunk)),
            # The lane reads ahead at its walk's next address while its own walk goes on
            # (not until every lane's walk is done, which only the sequencer knows): a lane
            # whose walk has ended reads at its chunk, a word nobody takes (its ``active`` is
            # 0, and after the walk a decision follows).
            next_address.eq(Mux(self.start_walk | (self.walking & ~lists.walk_done),
                                lists.next_walk_address, next_chunk)),
            score.eq(Mux(self.walking, memories.stored_score, self.beat_score)),
            active.eq(Mux(self.walking, lists.walk_active, self.load & exists)),
            self.select.eq(exists & fast_geq(m, emission_score, self.cutoff, "select",
                                             chain=chain)),
            self.walk_done.eq(lists.walk_done),
            self.max_score.eq(memories.max_score),
            self.aggregate.eq(memories.aggregate),
            memories.next_address.eq(next_address),
            memories.next_chunk.eq(next_chunk), memories.chunk.eq(chunk),
            memories.write_counts.eq(self.write_counts),
            memories.count.eq(self.beat_count),
            # Only load beats write the scores (and max scores): the beat's score, not the
            # walk's multiplexer, so the score memory's word is not on that path.
            memories.write_scores.eq(self.load),
            memories.score.eq(self.beat_score),
            memories.first_row.eq(self.first_row),
            memories.write_aggregate.eq(self.emit),
            memories.select.eq(self.select),
            lists.append.eq(active_in), lists.bucket.eq(bucket_in),
            lists.address.eq(address_in),
            lists.clear.eq(self.clear),
            lists.start.eq(self.start_walk),
            lists.start_select.eq(self.start_select), lists.step.eq(self.walking),
        ]
        return m

    def _emission_score(self, m, memories, next_chunk, next_address, fpga):
        """The score word a row-mask beat compares with the cutoff, and the score memory's read
        address (``memories.next_score_address``).

        Without an FPGA the word read ahead at the lane's chunk, addressed with the count
        memory (``next_address``). An FPGA's block RAM gives its word late in the cycle (an
        ECP5 DP16KD 5.83 ns after the clock), too late for the comparison and the row mask's
        consumers behind it, so there the word is registered first: during the emission the
        score memory is read a chunk ahead, at a lane register that follows the chunk one
        ahead (``lead``), and each transfer of ``stats`` or of a row-mask beat takes the word
        into ``emission_score``, the score of the chunk the next beat offers. The sequencer
        holds the chunk at 0 from the decision on (an FPGA build), so the word of chunk 0 is
        at the memory's output when ``stats`` is taken: no cycle changes.
        """
        if not fpga:
            m.d.comb += memories.next_score_address.eq(next_address)
            return memories.stored_score
        lead = Signal.like(next_chunk, name="lead", init=1)
        next_lead = Signal.like(lead, name="next_lead")
        m.d.comb += next_lead.eq(chunk_after(lead, self.chunk_zero, self.chunk_step, first=1))
        m.d.sync += lead.eq(next_lead)
        m.d.comb += memories.next_score_address.eq(
            Mux(self.stats_taken | self.emitting, next_lead, next_address))
        emission_score = Signal.like(memories.stored_score, name="emission_score")
        with m.If(self.stats_taken | self.emit):
            m.d.sync += emission_score.eq(memories.stored_score)
        return emission_score
