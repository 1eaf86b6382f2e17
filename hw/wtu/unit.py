"""WiCSum threshold unit (WTU): per query row, the clusters carrying the attention mass, no sort.

The unit is the RTL of :mod:`model.twins.wtu` (the bit-exact twin, whose docstring fixes the
arithmetic, the bucket rule, the early exit and the cycle model); this module explains how the
hardware gets there. The payload layouts of its streams are :class:`hw.wtu.WTULayouts`.

Why this microarchitecture
--------------------------
A full scan-and-sort of a row costs ``ceil(N / lanes)`` beats to load and ``ceil(log2 N)`` more
such passes to sort. The WTU instead does all its full-row work *while the row streams in*:

* Banked lanes: cluster ``j`` lives in lane ``j % lanes`` at address ``j // lanes``; each lane has
  its own score, count, next-pointer, max-score and aggregate-bit memories, one multiplier and
  one read and one write port per memory, so ``lanes`` clusters are handled per cycle without multi-port RAMs.
* Preprocessing on the fly: each load beat adds ``lanes`` products ``s x n`` to the weighted sum
  (``weight_bits`` wide, cannot overflow), updates min and max, and adds every product to the mass
  of its pass-0 bucket (the score's top ``bucket_bits`` bits) through one adder tree per bucket.
* Bucket sorter: each lane also appends the cluster's address to a per-lane linked list of its
  bucket (head, tail and non-empty flag per lane and bucket, one next-pointer write per lane per
  cycle). No extra pass over the row is needed before the first decision.
* Lanes pipelined (:func:`hw.wtu.pipeline.lane_stages` registers, 6 for the presets): a
  lane's words (score, count) are registered, then its product ``s x n`` is built from partial
  products in a registered tree (:func:`hw.wtu.pipeline.registered_product`) while its bucket
  (decoded one-hot for the masses) and address follow in registers; the masses and ``W`` add
  a beat in carry-save form over two cycles (the lanes' products compressed in groups of 8,
  registered, then added to the saved pair: :func:`hw.wtu.pipeline.registered_accumulation`)
  and resolve it a cycle later; each ``DECIDE`` state begins with
  the cycles that drain them.
* Decide in a short pipeline (:class:`Decision`; with the drain :attr:`decide_cycles` cycles,
  16 for edge and server): the suffix masses of all buckets (a registered Kogge-Stone tree,
  one adder level per cycle, each adder in two halves with a registered carry) are compared with the rest of the threshold (itself a registered
  adder tree over ``W``) and the highest non-empty bucket that reaches it is the crossing
  bucket, registered before it is taken (early exit: everything below it is dropped,
  everything above it is selected). Wide sums and comparisons are prefix adders
  (:mod:`hw.wtu.fast_adders`).
* Addresses: every lane keeps its own copy of the chunk register, so each lane's memories
  are addressed by a register of the lane (a register driving the address pins of all
  lanes' macros measured 2.56 ns of clock-to-output alone).
* Lanes decoupled from the sequencer (:mod:`hw.wtu.lane_links`): every strobe, decision
  field and beat reaches a lane :func:`hw.wtu.pipeline.broadcast_stages` cycles after the
  sequencer gives it (a shared register, then one of the lane's own), and what the lanes
  return (walk done, row-mask bits, aggregate words) comes back
  :func:`hw.wtu.pipeline.gather_stages` cycles later, so no path runs from the sequencer's
  state through a wire across the die into a lane's memory address, or back. The row-mask
  beats and the aggregate stream's chunks are issued ahead against credits and come back
  into small queues (:func:`hw.wtu.pipeline.queue_depth` entries) in front of the output
  streams, so an output's ``ready`` moves nothing in the lanes in its own cycle.
* Refinement touches only the crossing bucket: each lane walks its own list of that bucket, one
  cluster per cycle, splitting it into sub-buckets (new masses, new lists, by relinking the same
  next pointers) for the next decision. A pass costs ``max over lanes`` of the lane's members of
  the bucket, usually a few cycles, instead of a row scan.

The parts (each a component of :mod:`hw.wtu`): per lane a :class:`Lane` (its datapath, with a
:class:`LaneMemories` and a :class:`BucketLists`); :class:`RowStatistics` (``W``, min, max,
threshold), :class:`BucketMasses` (the adder trees), :class:`Decision` (crossing bucket, cutoff,
refinement), :class:`AggregateEmitter` and the :class:`Sequencer` (``m.FSM``) that runs them.

So a row costs its load beats plus a handful of cycles; the row's bitmask is then emitted (and
OR-ed into the aggregate bit memory, with the per-cluster max score tracked during the loads) in
``ceil(N / lanes)`` beats, and after the problem's last row the aggregate is streamed as cluster
ids.

Streams (payload layouts in :class:`WTULayouts`)
------------------------------------------------
``problem`` (in)
    One beat per problem: ``clusters_minus_one``, ``rows_minus_one`` (every encoding is valid).
``counts`` (in)
    ``ceil(N / lanes)`` beats of ``lanes`` token counts in ``count`` (an ``ArrayLayout``: lane
    ``l`` in bits ``l * count_bits`` up of the packed payload; lane ``l`` of beat ``b`` is
    cluster ``b * lanes + l``; lanes past ``N`` are ignored).
``scores`` (in)
    Per row, ``ceil(N / lanes)`` beats of ``lanes`` scores packed the same way in ``score``,
    rows in order.
``stats`` (out)
    One beat per row once it is decided: ``row``, ``cutoff`` (the row selects scores >= cutoff;
    ``2**score_bits``, selecting nothing, when the threshold is 0),
    ``weighted_sum``, ``threshold``, ``min_score``, ``max_score``, ``passes``,
    ``buckets_visited``, ``touched``, ``cycles``.
``row_mask`` (out)
    Per row, after its ``stats`` beat: ``ceil(N / lanes)`` beats of the row's selection bitmask
    (``row``, ``chunk``, ``mask`` bit ``l`` = cluster ``chunk * lanes + l``, ``last``).
``selected`` (out)
    After the last row: the aggregate (OR over the rows) as one beat per selected cluster, in
    increasing id order: ``cluster``, ``score`` (the cluster's max score over all rows of the
    problem), ``last`` on the final one, ``empty`` 0. When no row selected anything (every row's
    threshold was 0), a single beat with ``empty`` 1 and ``last`` 1 instead.

Latency and throughput
----------------------
Cycles stalled on a stream are not counted in ``stats.cycles``; without stalls the ``stats``
beat is valid exactly ``cycles`` cycles after the row's first ``scores`` transfer
(:attr:`WiCSumThresholdUnit.stats_latency` is 0 extra cycles), at most
:meth:`WiCSumThresholdUnit.max_row_cycles`. A row then occupies the unit for 1 ``stats`` cycle
and :meth:`WiCSumThresholdUnit.load_beats` cycles issuing its emission beats, each offered on
``row_mask`` :attr:`WiCSumThresholdUnit.emit_latency` cycles after its issue, so without
stalls one row takes ``cycles + 1 + ceil(N / lanes)`` cycles (the next row's load overlaps
the last beats' latency); a problem adds ``ceil(N / lanes)`` count beats, one header cycle
and the aggregate stream (:func:`model.twins.wtu.aggregate_cycles`).

Choices and limits
------------------
Bucket boundaries follow the score bits rather than the row's min and max, so that pass 0 can be
built during the load, before min and max are known (they are reported in ``stats``). Rows
whose scores all share their top bits cost one extra walk per shared level. The lane memories
are read synchronously (SRAM macros, block RAM) and *ahead* (:mod:`hw.wtu.read_ahead`): each is
addressed with the value its address register takes at the clock edge (the sequencer's
``next_chunk``, the walk's ``next_walk_address``), so a word is there in the cycle its address
is, and the walk still steps one cluster per cycle per lane. Rows are processed one after
another: the next row's load waits for the issue of the previous one's emission
(double-buffering the score memory would hide it, at twice the score storage), and its
``stats`` beat for that emission to have left the ``row_mask`` queue.

Elaborated for an FPGA build platform (:func:`hw.wtu.fast_adders.carry_chains`), every adder and
comparison is the plain operator (the logic cells' carry chains) and a lane's product one
multiplication (a multiplier block) registered, then delayed to the same latency, its last
register copied once per group of four buckets for the masses
(:data:`hw.wtu.pipeline.PRODUCT_COPIES`: no register drives the sums of all the buckets); and
since a block RAM gives its word late in the cycle (an ECP5 DP16KD 5.83 ns after the clock), no
word goes through logic into a read address or a comparison in its own cycle: the walk reads two
ahead (:class:`BucketLists`) and the emission compares a registered score word, read a chunk
ahead (:meth:`hw.wtu.lane.Lane._emission_score`). The same integers in the same cycles; without
a platform (silicon flow, simulators, Verilog) the prefix networks and partial products
described above.
"""

from amaranth.hdl import Module, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.component import check_config
from hw.register_fifo import RegisterFIFO
from hw.wtu.aggregate import AggregateEmitter
from hw.wtu.bucket_masses import BucketMasses
from hw.wtu.decision import Decision
from hw.wtu.lane import Lane
from hw.wtu.lane_links import broadcast, gather
from hw.wtu.layouts import WTULayouts
from hw.wtu.pipeline import (aggregate_queue_depth, broadcast_stages, decide_cycles, delayed,
                             gather_stages, product_latency, queue_depth)
from hw.wtu.row_statistics import RowStatistics
from hw.wtu.sequencer import Sequencer, aggregate_wait_cycles

__all__ = ["WiCSumThresholdUnit"]


class WiCSumThresholdUnit(wiring.Component):
    """The WTU: bucketed WiCSum selection with early exit and range refinement, per row, OR-ed.

    Parameters
    ----------
    config : DREConfig
        Uses ``score_bits``, ``count_bits``, ``max_clusters``, ``max_rows``, ``wtu_lanes``,
        ``wtu_buckets``, ``wtu_refine_depth``, ``wicsum_ratio_bits``, ``wicsum_ratio_code``.

    Members
    -------
    problem, counts, scores : In(stream.Signature(...))
        Inputs (layouts in :attr:`layouts`).
    stats, row_mask, selected : Out(stream.Signature(...))
        Outputs.

    Raises
    ------
    TypeError
        If ``config`` is not a :class:`DREConfig`.
    ValueError
        If ``wtu_lanes`` exceeds ``max_clusters // 2`` (each lane bank needs two addresses).
    """

    #: Extra cycles between the decision and the ``stats`` beat (none).
    stats_latency = 0

    def __init__(self, config):
        check_config(config)
        if config.wtu_lanes > config.max_clusters // 2:
            raise ValueError(f"wtu_lanes must be at most max_clusters // 2 "
                             f"({config.max_clusters // 2}), not {config.wtu_lanes!r}")
        self._config = config
        self._layouts = WTULayouts(config)
        super().__init__({
            "problem": In(stream.Signature(self._layouts.problem)),
            "counts": In(stream.Signature(self._layouts.counts)),
            "scores": In(stream.Signature(self._layouts.scores)),
            "stats": Out(stream.Signature(self._layouts.stats)),
            "row_mask": Out(stream.Signature(self._layouts.row_mask)),
            "selected": Out(stream.Signature(self._layouts.selected)),
        })

    @property
    def config(self):
        """The :class:`DREConfig` the unit was built for."""
        return self._config

    @property
    def decide_cycles(self):
        """Cycles of one decision: the registered suffix masses, threshold and comparisons, then
        the crossing bucket (:func:`hw.wtu.pipeline.decide_cycles`)."""
        return decide_cycles(self._config)

    @property
    def emit_latency(self):
        """Cycles from a row-mask beat's issue to its offer on ``row_mask``: through the lanes
        and back (:func:`hw.wtu.pipeline.broadcast_stages` +
        :func:`hw.wtu.pipeline.gather_stages`) and the queue's write."""
        return broadcast_stages(self._config) + gather_stages(self._config) + 1

    @property
    def aggregate_latency(self):
        """Cycles from the last row-mask beat's issue to the aggregate stream's first chunk at
        the head of its queue: the wait for that beat's bits to come back and be counted
        (:func:`hw.wtu.sequencer.aggregate_wait_cycles`), then a chunk's read through the lanes
        and back and the queue's write."""
        return aggregate_wait_cycles(self._config) + self.emit_latency

    @property
    def layouts(self):
        """The :class:`WTULayouts` of the streams."""
        return self._layouts

    def load_beats(self, clusters):
        """Beats of one row (or of the counts) of ``clusters`` clusters: ``ceil(clusters / lanes)``.

        Also the beats of a row's ``row_mask`` emission.
        """
        return -(-clusters // self._config.wtu_lanes)

    def max_row_cycles(self, clusters):
        """Most ``stats.cycles`` a row of ``clusters`` clusters can take.

        The load, one decision (:attr:`decide_cycles`) per pass, and refinement walks of at most
        the load's beats (all of a lane's clusters in the crossing bucket) and the walk's round
        trip to the lanes (:func:`hw.wtu.pipeline.broadcast_stages` +
        :func:`hw.wtu.pipeline.gather_stages`) for each of ``wtu_refine_depth`` passes.
        """
        beats = self.load_beats(clusters)
        config = self._config
        depth = config.wtu_refine_depth
        round_trip = broadcast_stages(config) + gather_stages(config)
        return beats + self.decide_cycles * (depth + 1) + depth * (beats + round_trip)

    def elaborate(self, platform):
        # Design rationale in the module docstring. The Sequencer's strobes drive every part;
        # each lane's datapath (address, score, product, bucket) is a Lane, B cycles behind
        # (hw.wtu.lane_links), its answers G cycles back.
        config = self._config
        lanes = config.wtu_lanes
        behind, back = broadcast_stages(config), gather_stages(config)
        m = Module()
        m.submodules.sequencer = sequencer = Sequencer(config)
        m.submodules.statistics = statistics = RowStatistics(config)
        m.submodules.masses = masses = BucketMasses(config)
        m.submodules.decision = decision = Decision(config)
        m.submodules.aggregate = aggregate = AggregateEmitter(config)
        depth = queue_depth(config)
        layouts = self._layouts
        m.submodules.row_mask_queue = row_mask_queue = RegisterFIFO(
            width=layouts.row_mask.size, depth=depth)
        aggregate_word = data.StructLayout({
            "aggregate": unsigned(lanes),
            "max_score": data.ArrayLayout(config.score_bits, lanes)})
        m.submodules.aggregate_queue = aggregate_queue = RegisterFIFO(
            width=aggregate_word.size, depth=aggregate_queue_depth(config))
        lane_parts = [Lane(config, l) for l in range(lanes)]
        self._connect_sequencer(m, sequencer, decision, aggregate, lane_parts,
                                row_mask_queue, aggregate_queue)

        # The lanes' pipeline (:class:`Lane`) takes a cluster in cycle B (a load beat or a
        # walk step the sequencer strobed in cycle 0) and gives it to the masses, lists and
        # statistics in cycle B + P + 1 (P = product_latency); the masses and W count it in
        # cycle B + P + 1 + MASS_LATENCY. Nothing else waits for them: the DECIDE state
        # begins with broadcast_stages + lane_stages drain cycles.
        product_stages = product_latency(config)
        walking, load = sequencer.walking, sequencer.load
        accumulate_in = delayed(m, load | walking, behind + 1 + product_stages, "accumulate")
        load_in = delayed(m, load, behind + 1 + product_stages, "load")
        # The masses' and the lists' clear, a cycle after the row's start or the walk's (a
        # register, not the state machine's strobe): the first cluster of the row or of the
        # walk reaches them 2 + P cycles after it.
        clear_buckets = Signal()
        m.d.sync += clear_buckets.eq(sequencer.start_row | sequencer.start_walk)
        stats_taken = sequencer.stats_valid & self.stats.ready
        shared = {
            "chunk_zero": sequencer.chunk_zero, "chunk_step": sequencer.chunk_step,
            "clusters_minus_one": sequencer.clusters_minus_one, "load": load,
            "walking": walking, "start_walk": sequencer.start_walk,
            "write_counts": sequencer.write_counts, "emit": sequencer.emit,
            "first_row": sequencer.row == 0, "clear": clear_buckets,
            "pass_index": decision.pass_index, "start_select": decision.crossing_select,
            "cutoff": decision.cutoff, "stats_taken": stats_taken,
            "emitting": sequencer.emitting,
        }
        copies = {name: broadcast(m, value, lanes, behind, name)
                  for name, value in shared.items()}
        for l, lane in enumerate(lane_parts):
            m.submodules[f"lane{l}"] = lane
            m.d.comb += [getattr(lane, name).eq(copies[name][l]) for name in shared]
            m.d.comb += [
                lane.beat_score.eq(delayed(m, self.scores.payload.score[l], behind,
                                           f"beat_score_lane{l}")),
                lane.beat_count.eq(delayed(m, self.counts.payload.count[l], behind,
                                           f"beat_count_lane{l}")),
                masses.hits[l].eq(lane.hits), masses.product[l].eq(lane.product_copies),
                statistics.valid[l].eq(lane.valid), statistics.score[l].eq(lane.score),
                statistics.product[l].eq(lane.product),
            ]

        # The row-mask beats: the lanes' bits gathered, with the beat's row, chunk and last
        # delayed as long, into the queue in front of the row_mask stream.
        row_select = gather(m, [lane.select for lane in lane_parts], back, "row_select")
        issued = {name: delayed(m, value, behind + back, f"emitted_{name}")
                  for name, value in (("emit", sequencer.emit), ("row", sequencer.row),
                                      ("chunk", sequencer.chunk),
                                      ("last", sequencer.last_chunk))}
        mask_beat = Signal(layouts.row_mask)
        m.d.comb += [
            mask_beat.row.eq(issued["row"]), mask_beat.chunk.eq(issued["chunk"]),
            mask_beat.mask.eq(row_select), mask_beat.last.eq(issued["last"]),
            row_mask_queue.w_en.eq(issued["emit"]), row_mask_queue.w_data.eq(mask_beat),
            self.row_mask.valid.eq(row_mask_queue.r_rdy),
            self.row_mask.payload.eq(row_mask_queue.r_data),
            row_mask_queue.r_en.eq(self.row_mask.ready),
        ]
        # The aggregate stream's words: each chunk read from the lanes, gathered into the
        # aggregate queue; the emitter takes its head (and the head is dropped) when the
        # stream reaches that chunk.
        read_in = delayed(m, sequencer.read, behind + back, "read")
        word_in = Signal(aggregate_word)
        m.d.comb += [
            word_in.aggregate.eq(gather(m, [lane.aggregate for lane in lane_parts], back,
                                        "aggregate")),
            word_in.max_score.eq(gather(m, [lane.max_score for lane in lane_parts], back,
                                        "max_score")),
            aggregate_queue.w_en.eq(read_in), aggregate_queue.w_data.eq(word_in),
            aggregate_queue.r_en.eq(sequencer.fetch),
        ]
        head = data.View(aggregate_word, aggregate_queue.r_data)

        m.d.comb += [
            statistics.clear.eq(delayed(m, sequencer.start_row, behind, "statistics_clear")),
            statistics.load.eq(load_in),
            masses.accumulate.eq(accumulate_in),
            masses.clear.eq(delayed(m, clear_buckets, behind, "masses_clear")),
            decision.mass.eq(masses.mass), decision.members.eq(masses.members),
            decision.threshold.eq(statistics.threshold),
            decision.clear.eq(sequencer.start_row), decision.step.eq(sequencer.decide),
            aggregate.clear.eq(sequencer.start_problem),
            aggregate.emit_chunk.eq(issued["chunk"]),
            aggregate.row_select.eq(row_select), aggregate.emit.eq(issued["emit"]),
            aggregate.aggregate.eq(head.aggregate), aggregate.max_score.eq(head.max_score),
            aggregate.fetch.eq(sequencer.fetch), aggregate.send.eq(sequencer.send),
            aggregate.advance.eq(sequencer.advance),
        ]
        stats, selected = self.stats.payload, self.selected.payload
        m.d.comb += [
            stats.row.eq(sequencer.row), stats.cutoff.eq(decision.cutoff),
            stats.weighted_sum.eq(statistics.weighted_sum),
            stats.threshold.eq(statistics.threshold),
            stats.min_score.eq(statistics.min_score), stats.max_score.eq(statistics.max_score),
            stats.passes.eq(decision.pass_index + 1), stats.buckets_visited.eq(decision.visited),
            stats.touched.eq(decision.touched), stats.cycles.eq(sequencer.cycles),
            selected.cluster.eq(aggregate.cluster), selected.score.eq(aggregate.score),
            selected.last.eq(aggregate.last), selected.empty.eq(aggregate.empty),
        ]
        return m

    def _connect_sequencer(self, m, sequencer, decision, aggregate, lanes, row_mask_queue,
                           aggregate_queue):
        """The sequencer's inputs, and the streams' handshakes it drives."""
        walk_done = gather(m, [lane.walk_done for lane in lanes], gather_stages(self._config),
                           "walk_done")
        m.d.comb += [
            sequencer.problem_valid.eq(self.problem.valid),
            sequencer.problem_clusters_minus_one.eq(self.problem.payload.clusters_minus_one),
            sequencer.problem_rows_minus_one.eq(self.problem.payload.rows_minus_one),
            self.problem.ready.eq(sequencer.problem_ready),
            sequencer.counts_valid.eq(self.counts.valid),
            self.counts.ready.eq(sequencer.counts_ready),
            sequencer.scores_valid.eq(self.scores.valid),
            self.scores.ready.eq(sequencer.scores_ready),
            self.stats.valid.eq(sequencer.stats_valid), sequencer.stats_ready.eq(self.stats.ready),
            sequencer.row_mask_taken.eq(row_mask_queue.r_rdy & row_mask_queue.r_en),
            self.selected.valid.eq(sequencer.selected_valid),
            sequencer.selected_ready.eq(self.selected.ready),
            sequencer.refine.eq(decision.refine),
            sequencer.walk_done.eq(walk_done.all()),
            sequencer.any_selected.eq(aggregate.any_selected),
            sequencer.chunk_empty.eq(aggregate.chunk_empty),
            sequencer.final.eq(aggregate.final), sequencer.chunk_done.eq(aggregate.chunk_done),
            sequencer.final_chunk.eq(aggregate.final_chunk),
            sequencer.aggregate_ready.eq(aggregate_queue.r_rdy),
        ]
