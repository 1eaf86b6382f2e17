"""WiCSum threshold unit (WTU): per query row, the clusters carrying the attention mass, no sort.

The unit is the RTL of :mod:`model.twins.wtu` (the bit-exact twin, whose docstring fixes the arithmetic,
the bucket rule, the early exit and the cycle model); this module explains how the hardware gets
there and defines the payload layouts of its streams (:class:`WTULayouts`).

Why this microarchitecture
--------------------------
A full scan-and-sort of a row costs ``ceil(N / lanes)`` beats to load and ``ceil(log2 N)`` more
such passes to sort. The WTU instead does all its full-row work *while the row streams in*:

* Banked lanes: cluster ``j`` lives in lane ``j % lanes`` at address ``j // lanes``; each lane has
  its own score, count, next-pointer, max-score and aggregate-bit memories, one multiplier and one
  port per memory, so ``lanes`` clusters are handled per cycle without multi-port RAMs.
* Preprocessing on the fly: each load beat adds ``lanes`` products ``s x n`` to the weighted sum
  (``weight_bits`` wide, cannot overflow), updates min and max, and adds every product to the mass
  of its pass-0 bucket (the score's top ``bucket_bits`` bits) through one adder tree per bucket.
* Bucket sorter: each lane also appends the cluster's address to a per-lane linked list of its
  bucket (head, tail and non-empty flag per lane and bucket, one next-pointer write per lane per
  cycle). No extra pass over the row is needed before the first decision.
* Decide in one cycle: the suffix masses of all buckets are compared with the rest of the
  threshold and the highest non-empty bucket that reaches it is the crossing bucket (early exit:
  everything below it is dropped, everything above it is selected).
* Refinement touches only the crossing bucket: each lane walks its own list of that bucket, one
  cluster per cycle, splitting it into sub-buckets (new masses, new lists, by relinking the same
  next pointers) for the next decision. A pass costs ``max over lanes`` of the lane's members of
  the bucket, usually a few cycles, instead of a row scan.

So a row costs its load beats plus a handful of cycles; the row's bitmask is then emitted (and
OR-ed into the aggregate bit memory, with the per-cluster max score tracked during the loads) in
``ceil(N / lanes)`` beats, and after the problem's last row the aggregate is streamed as cluster
ids.

Streams (payload layouts in :class:`WTULayouts`)
------------------------------------------------
``problem`` (in)
    One beat per problem: ``clusters_minus_one``, ``rows_minus_one`` (every encoding is valid).
``counts`` (in)
    ``ceil(N / lanes)`` beats of ``lanes`` token counts packed in ``count`` (lane ``l`` in bits
    ``l * count_bits`` up; lane ``l`` of beat ``b`` is cluster ``b * lanes + l``; lanes past
    ``N`` are ignored).
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
and :meth:`WiCSumThresholdUnit.load_beats` emission beats, so without stalls one row takes
``cycles + 1 + ceil(N / lanes)`` cycles; a problem adds ``ceil(N / lanes)`` count beats, one
header cycle and the aggregate stream (:func:`model.twins.wtu.aggregate_cycles`).

Choices and limits
------------------
Bucket boundaries follow the score bits rather than the row's min and max, so that pass 0 can be
built during the load, before min and max are known (they are reported in ``stats``). Rows
whose scores all share their top bits cost one extra walk per shared level. The lane memories
are read asynchronously (``domain="comb"``), which keeps the walk at one cluster per cycle per
lane; in an ASIC flow they map to register files or latch arrays, not to synchronous SRAM
macros. Rows are processed one after another: the next row's load waits for the emission of the
previous one (double-buffering the score memory would hide it, at twice the score storage).
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, enum, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from model.config import DREConfig

__all__ = ["WTULayouts", "WiCSumThresholdUnit"]


def _bits_for(highest):
    """Width of an unsigned value from 0 to ``highest``."""
    return max(1, int(highest).bit_length())


class WTULayouts:
    """The payload layouts of the WTU's streams for one configuration (defined once, here).

    Parameters
    ----------
    config : DREConfig

    Members
    -------
    problem, counts, scores, stats, row_mask, selected : data.StructLayout
        See the module docstring.
    """

    def __init__(self, config):
        if not isinstance(config, DREConfig):
            raise TypeError(f"config must be a DREConfig, not {config!r}")
        lanes = config.wtu_lanes
        chunks = -(-config.max_clusters // lanes)
        refinements = config.wtu_refine_depth
        self.chunks = chunks
        self.chunk_bits = _bits_for(chunks - 1)
        # Widest row: see WiCSumThresholdUnit.max_row_cycles.
        self.cycles_bits = _bits_for(chunks + (refinements + 1) + refinements * chunks)
        self.problem = data.StructLayout({
            "clusters_minus_one": unsigned(config.cluster_id_bits),
            "rows_minus_one": unsigned(config.row_bits)})
        # Lane l of a beat sits in bits [l * width, (l + 1) * width) of the packed field.
        self.counts = data.StructLayout({"count": unsigned(lanes * config.count_bits)})
        self.scores = data.StructLayout({"score": unsigned(lanes * config.score_bits)})
        self.stats = data.StructLayout({
            "row": unsigned(config.row_bits),
            "cutoff": unsigned(config.score_bits + 1),
            "weighted_sum": unsigned(config.weight_bits),
            "threshold": unsigned(config.weight_bits),
            "min_score": unsigned(config.score_bits),
            "max_score": unsigned(config.score_bits),
            "passes": unsigned(_bits_for(refinements + 1)),
            "buckets_visited": unsigned(_bits_for(config.wtu_buckets * (refinements + 1))),
            "touched": unsigned(_bits_for(config.max_clusters * refinements)),
            "cycles": unsigned(self.cycles_bits)})
        self.row_mask = data.StructLayout({
            "row": unsigned(config.row_bits),
            "chunk": unsigned(self.chunk_bits),
            "mask": unsigned(lanes),
            "last": unsigned(1)})
        self.selected = data.StructLayout({
            "cluster": unsigned(config.cluster_id_bits),
            "score": unsigned(config.score_bits),
            "last": unsigned(1),
            "empty": unsigned(1)})


class _State(enum.Enum, shape=4):
    """States of the WTU's sequencer (see :meth:`WiCSumThresholdUnit.elaborate`)."""
    IDLE = 0       # wait for a problem header
    COUNTS = 1     # load the counts
    LOAD = 2       # load a row: W, min, max, pass-0 masses and lists
    DECIDE = 3     # find the crossing bucket, refine or finish
    WALK = 4       # walk the crossing bucket's lists into sub-buckets
    STATS = 5      # emit the row's statistics
    EMIT = 6       # emit the row's bitmask, OR it into the aggregate
    AGG_FETCH = 7  # read a chunk of the aggregate
    AGG_SEND = 8   # emit its selected clusters
    AGG_EMPTY = 9  # emit the single beat of an empty aggregate


def _tree(values, combine):
    """Reduce ``values`` pairwise (a balanced tree of ``combine``)."""
    values = list(values)
    while len(values) > 1:
        values = [combine(values[i], values[i + 1]) if i + 1 < len(values) else values[i]
                  for i in range(0, len(values), 2)]
    return values[0]


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
    #: Cycles of one decision (suffix masses, threshold compare, crossing bucket).
    decide_cycles = 1

    def __init__(self, config):
        if not isinstance(config, DREConfig):
            raise TypeError(f"config must be a DREConfig, not {config!r}")
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

        The load, one decide cycle per pass, and refinement walks of at most the load's beats
        (all of a lane's clusters in the crossing bucket) for each of ``wtu_refine_depth``
        passes.
        """
        beats = self.load_beats(clusters)
        depth = self._config.wtu_refine_depth
        return beats + self.decide_cycles * (depth + 1) + depth * beats

    def elaborate(self, platform):
        # Design rationale in the module docstring. One sequencer runs the problem: IDLE (header),
        # COUNTS, then per row LOAD -> DECIDE (-> WALK -> DECIDE)* -> STATS -> EMIT, then AGG_*.
        config = self._config
        lanes = config.wtu_lanes
        lane_bits = lanes.bit_length() - 1
        buckets = config.wtu_buckets
        depth = config.wtu_refine_depth
        shifts = config.wtu_bucket_shifts[:depth + 1]
        pass_bits = config.wtu_pass_bits[:depth + 1]
        chunks = self._layouts.chunks
        addr_bits = self._layouts.chunk_bits
        weight_bits = config.weight_bits
        ratio_bits = config.wicsum_ratio_bits

        m = Module()

        # Problem registers.
        clusters_m1 = Signal(config.cluster_id_bits)
        rows_m1 = Signal(config.row_bits)
        last_chunk = clusters_m1 >> lane_bits
        chunk = Signal(addr_bits)
        row = Signal(config.row_bits)
        aggregate_last = Signal(config.cluster_id_bits)
        aggregate_any = Signal()

        # Row registers.
        weighted_sum = Signal(weight_bits)
        min_score = Signal(config.score_bits)
        max_score = Signal(config.score_bits)
        mass_above = Signal(weight_bits)
        base = Signal(config.score_bits + 1)   # lower bound of the crossing range; the cutoff
        pass_index = Signal(range(depth + 1))
        visited = Signal(self._layouts.stats["buckets_visited"].shape)
        touched = Signal(self._layouts.stats["touched"].shape)
        cycles = Signal(self._layouts.cycles_bits)
        bucket_mass = [Signal(weight_bits, name=f"bucket_mass{k}") for k in range(buckets)]
        bucket_members = [Signal(config.cluster_id_bits + 1, name=f"bucket_members{k}")
                          for k in range(buckets)]

        # model.reference.resv.wicsum_threshold: round half up. (Expressions, not named signals, where
        # Amaranth would otherwise leave an unused alias wire in the Verilog.)
        threshold = ((weighted_sum * config.wicsum_ratio_code + (1 << (ratio_bits - 1)))
                     >> ratio_bits)[:weight_bits]

        # Per-lane storage and bucket lists.
        def lane_memory(name, lane, width):
            mem = memory.Memory(shape=unsigned(width), depth=chunks, init=[])
            m.submodules[f"{name}{lane}"] = mem
            return mem.read_port(domain="comb"), mem.write_port()

        score_rd, score_wr, count_rd, count_wr = [], [], [], []
        max_rd, max_wr, next_rd, next_wr, agg_rd, agg_wr = [], [], [], [], [], []
        for lane in range(lanes):
            for rd, wr, name, width in ((score_rd, score_wr, "score", config.score_bits),
                                        (count_rd, count_wr, "count", config.count_bits),
                                        (max_rd, max_wr, "max_score", config.score_bits),
                                        (next_rd, next_wr, "next", addr_bits),
                                        (agg_rd, agg_wr, "aggregate", 1)):
                read_port, write_port = lane_memory(name, lane, width)
                rd.append(read_port)
                wr.append(write_port)
        head = [[Signal(addr_bits, name=f"head{l}_{k}") for k in range(buckets)]
                for l in range(lanes)]
        tail = [[Signal(addr_bits, name=f"tail{l}_{k}") for k in range(buckets)]
                for l in range(lanes)]
        nonempty = [[Signal(name=f"nonempty{l}_{k}") for k in range(buckets)]
                    for l in range(lanes)]
        walk_cur = [Signal(addr_bits, name=f"walk_cur{l}") for l in range(lanes)]
        walk_end = [Signal(addr_bits, name=f"walk_end{l}") for l in range(lanes)]
        walk_active = [Signal(name=f"walk_active{l}") for l in range(lanes)]

        # Per-lane datapath: address, lane validity, bucket, product.
        walking = Signal()
        loading = Signal()        # a scores beat is transferred this cycle
        lane_valid = [Signal(name=f"lane_valid{l}") for l in range(lanes)]
        active = [Signal(name=f"active{l}") for l in range(lanes)]
        addr = [Signal(addr_bits, name=f"addr{l}") for l in range(lanes)]
        score = [Signal(config.score_bits, name=f"score{l}") for l in range(lanes)]
        bucket = [Signal(range(buckets), name=f"bucket{l}") for l in range(lanes)]
        product = [Signal(config.score_bits + config.count_bits, name=f"product{l}")
                   for l in range(lanes)]
        for l in range(lanes):
            m.d.comb += [
                lane_valid[l].eq(Cat(Const(l, lane_bits), chunk) <= clusters_m1),
                addr[l].eq(Mux(walking, walk_cur[l], chunk)),
                score_rd[l].addr.eq(addr[l]),
                count_rd[l].addr.eq(addr[l]),
                next_rd[l].addr.eq(addr[l]),
                max_rd[l].addr.eq(chunk),
                agg_rd[l].addr.eq(chunk),
                score[l].eq(Mux(walking, score_rd[l].data,
                                 self.scores.payload.score.word_select(l, config.score_bits))),
                product[l].eq(score[l] * count_rd[l].data),
                active[l].eq(Mux(walking, walk_active[l], loading & lane_valid[l])),
            ]
            for p in range(depth + 1):
                with (m.If if p == 0 else m.Elif)(pass_index == p):
                    m.d.comb += bucket[l].eq((score[l] >> shifts[p]) & ((1 << pass_bits[p]) - 1))
            # Append the cluster to its bucket's list (LOAD: pass 0; WALK: the sub-bucket).
            m.d.comb += [next_wr[l].addr.eq(0), next_wr[l].data.eq(addr[l])]
            for k in range(buckets):
                with m.If(active[l] & (bucket[l] == k)):
                    with m.If(nonempty[l][k]):
                        m.d.comb += [next_wr[l].addr.eq(tail[l][k]), next_wr[l].en.eq(1)]
                    with m.Else():
                        m.d.sync += head[l][k].eq(addr[l])
                    m.d.sync += [tail[l][k].eq(addr[l]), nonempty[l][k].eq(1)]

        # Bucket masses and members: one adder tree per bucket over the lanes.
        for k in range(buckets):
            hits = [active[l] & (bucket[l] == k) for l in range(lanes)]
            mass_in = _tree([Mux(hits[l], product[l], 0) for l in range(lanes)],
                            lambda a, b: a + b)
            members_in = _tree([hits[l] for l in range(lanes)], lambda a, b: a + b)
            with m.If(loading | walking):
                m.d.sync += [bucket_mass[k].eq(bucket_mass[k] + mass_in),
                             bucket_members[k].eq(bucket_members[k] + members_in)]

        # Decision: suffix masses, crossing bucket, refinement choice.
        suffix = [bucket_mass[-1]]
        for k in reversed(range(buckets - 1)):
            suffix.insert(0, (bucket_mass[k] + suffix[0])[:weight_bits])
        remaining = (threshold - mass_above)[:weight_bits]
        crossing = Signal(range(buckets))
        mass_over = Signal(weight_bits)    # mass of the buckets above the crossing one
        crossing_members = Signal.like(bucket_members[0])
        for k in range(buckets):
            with m.If((bucket_members[k] != 0) & (suffix[k] >= remaining)):
                m.d.comb += [crossing.eq(k), crossing_members.eq(bucket_members[k]),
                             mass_over.eq(suffix[k + 1] if k + 1 < buckets else 0)]
        pass_buckets = Signal(range(buckets + 1))
        pass_shift = Signal(range(config.score_bits + 1))
        may_refine = Signal()
        for p in range(depth + 1):     # an if/elif chain, as the sequencer below
            with (m.If if p == 0 else m.Elif)(pass_index == p):
                m.d.comb += [pass_buckets.eq(1 << pass_bits[p]), pass_shift.eq(shifts[p]),
                             may_refine.eq((p < depth) and shifts[p] > 0)]
        refine = Signal()
        m.d.comb += refine.eq(may_refine & (crossing_members >= 2))

        # Walk progress: every active lane moves to its next member or stops at the tail.
        walk_done = Signal()
        m.d.comb += walk_done.eq(_tree(
            [~walk_active[l] | (walk_cur[l] == walk_end[l]) for l in range(lanes)],
            lambda a, b: a & b))

        # Emission of the row mask and of the aggregate.
        row_select = Cat(lane_valid[l] & (score_rd[l].data >= base) for l in range(lanes))
        highest_selected = Signal(range(lanes))  # lane of the highest selected bit
        for l in range(lanes):
            with m.If(row_select[l]):
                m.d.comb += highest_selected.eq(l)
        pending = Signal(lanes)
        first_pending = Signal(range(lanes))
        for l in reversed(range(lanes)):
            with m.If(pending[l]):
                m.d.comb += first_pending.eq(l)
        aggregate_id = Cat(first_pending, chunk)[:config.cluster_id_bits]

        def start_row():
            clear = [weighted_sum.eq(0), min_score.eq(config.max_score), max_score.eq(0),
                     mass_above.eq(0), base.eq(0), pass_index.eq(0), visited.eq(0),
                     touched.eq(0), cycles.eq(0), chunk.eq(0)]
            clear += [signal.eq(0) for signal in bucket_mass + bucket_members]
            clear += [flag.eq(0) for flags in nonempty for flag in flags]
            return clear

        stats = self.stats.payload
        m.d.comb += [
            stats.row.eq(row), stats.cutoff.eq(base), stats.weighted_sum.eq(weighted_sum),
            stats.threshold.eq(threshold), stats.min_score.eq(min_score),
            stats.max_score.eq(max_score), stats.passes.eq(pass_index + 1),
            stats.buckets_visited.eq(visited), stats.touched.eq(touched), stats.cycles.eq(cycles),
            self.row_mask.payload.row.eq(row), self.row_mask.payload.chunk.eq(chunk),
            self.row_mask.payload.mask.eq(row_select),
            self.row_mask.payload.last.eq(chunk == last_chunk),
            self.selected.payload.cluster.eq(aggregate_id),
            self.selected.payload.score.eq(Cat(max_rd[l].data for l in range(lanes))
                                           .word_select(first_pending, config.score_bits)),
            self.selected.payload.last.eq((aggregate_id == aggregate_last) | ~aggregate_any),
            self.selected.payload.empty.eq(~aggregate_any),
        ]
        for l in range(lanes):
            m.d.comb += [score_wr[l].addr.eq(chunk), score_wr[l].data.eq(score[l]),
                         count_wr[l].addr.eq(chunk),
                         count_wr[l].data.eq(
                             self.counts.payload.count.word_select(l, config.count_bits)),
                         max_wr[l].addr.eq(chunk),
                         max_wr[l].data.eq(Mux((row == 0) | (score[l] > max_rd[l].data),
                                               score[l], max_rd[l].data)),
                         agg_wr[l].addr.eq(chunk),
                         agg_wr[l].data.eq(row_select[l] | (agg_rd[l].data & (row != 0)))]

        state = Signal(_State)
        # The sequencer as an if/elif chain on the state (not m.FSM/m.Switch, whose per-signal
        # case statements Verilator reports as incomplete).
        with m.If(state == _State.IDLE):
            m.d.comb += self.problem.ready.eq(1)
            with m.If(self.problem.valid):
                m.d.sync += [clusters_m1.eq(self.problem.payload.clusters_minus_one),
                             rows_m1.eq(self.problem.payload.rows_minus_one),
                             chunk.eq(0), row.eq(0), aggregate_last.eq(0),
                             aggregate_any.eq(0)]
                m.d.sync += state.eq(_State.COUNTS)
        with m.Elif(state == _State.COUNTS):
            m.d.comb += self.counts.ready.eq(1)
            with m.If(self.counts.valid):
                m.d.comb += [count_wr[l].en.eq(1) for l in range(lanes)]
                m.d.sync += chunk.eq(chunk + 1)
                with m.If(chunk == last_chunk):
                    m.d.sync += start_row()
                    m.d.sync += state.eq(_State.LOAD)
        with m.Elif(state == _State.LOAD):
            m.d.comb += [self.scores.ready.eq(1), loading.eq(self.scores.valid)]
            with m.If(self.scores.valid):
                m.d.comb += [score_wr[l].en.eq(1) for l in range(lanes)]
                m.d.comb += [max_wr[l].en.eq(1) for l in range(lanes)]
                valid_products = [Mux(lane_valid[l], product[l], 0) for l in range(lanes)]
                valid_min = [Mux(lane_valid[l], score[l], config.max_score)
                             for l in range(lanes)]
                valid_max = [Mux(lane_valid[l], score[l], 0) for l in range(lanes)]
                beat_min = _tree(valid_min, lambda a, b: Mux(a < b, a, b))
                beat_max = _tree(valid_max, lambda a, b: Mux(a > b, a, b))
                m.d.sync += [
                    weighted_sum.eq(weighted_sum + _tree(valid_products, lambda a, b: a + b)),
                    min_score.eq(Mux(beat_min < min_score, beat_min, min_score)),
                    max_score.eq(Mux(beat_max > max_score, beat_max, max_score)),
                    cycles.eq(cycles + 1), chunk.eq(chunk + 1)]
                with m.If(chunk == last_chunk):
                    m.d.sync += state.eq(_State.DECIDE)
        with m.Elif(state == _State.DECIDE):
            m.d.sync += [cycles.eq(cycles + 1), visited.eq(visited + pass_buckets - crossing),
                         mass_above.eq(mass_above + mass_over),
                         base.eq(base | (crossing << pass_shift))]
            with m.If(threshold == 0):
                # Nothing to reach: nothing selected, no bucket looked at.
                m.d.sync += [base.eq(1 << config.score_bits), visited.eq(0)]
                m.d.sync += state.eq(_State.STATS)
            with m.Elif(refine):
                m.d.sync += [touched.eq(touched + crossing_members),
                             pass_index.eq(pass_index + 1)]
                m.d.sync += [signal.eq(0) for signal in bucket_mass + bucket_members]
                m.d.sync += [flag.eq(0) for flags in nonempty for flag in flags]
                for l in range(lanes):
                    for k in range(buckets):
                        with m.If(crossing == k):
                            m.d.sync += [walk_cur[l].eq(head[l][k]), walk_end[l].eq(tail[l][k]),
                                         walk_active[l].eq(nonempty[l][k])]
                m.d.sync += state.eq(_State.WALK)
            with m.Else():
                with m.If((base | (crossing << pass_shift)) == 0):
                    m.d.sync += base.eq(1)   # a score of 0 is never selected
                m.d.sync += state.eq(_State.STATS)
        with m.Elif(state == _State.WALK):
            m.d.comb += walking.eq(1)
            m.d.sync += cycles.eq(cycles + 1)
            for l in range(lanes):
                with m.If(walk_cur[l] == walk_end[l]):
                    m.d.sync += walk_active[l].eq(0)
                with m.Else():
                    m.d.sync += walk_cur[l].eq(next_rd[l].data)
            with m.If(walk_done):
                m.d.sync += state.eq(_State.DECIDE)
        with m.Elif(state == _State.STATS):
            m.d.comb += self.stats.valid.eq(1)
            with m.If(self.stats.ready):
                m.d.sync += chunk.eq(0)
                m.d.sync += state.eq(_State.EMIT)
        with m.Elif(state == _State.EMIT):
            m.d.comb += self.row_mask.valid.eq(1)
            with m.If(self.row_mask.ready):
                m.d.comb += [agg_wr[l].en.eq(1) for l in range(lanes)]
                m.d.sync += chunk.eq(chunk + 1)
                candidate = Cat(highest_selected, chunk)
                with m.If(row_select != 0):
                    m.d.sync += aggregate_any.eq(1)
                    with m.If(candidate > aggregate_last):
                        m.d.sync += aggregate_last.eq(candidate)
                with m.If(chunk == last_chunk):
                    with m.If(row == rows_m1):
                        m.d.sync += chunk.eq(0)
                        with m.If(aggregate_any | (row_select != 0)):
                            m.d.sync += state.eq(_State.AGG_FETCH)
                        with m.Else():
                            m.d.sync += state.eq(_State.AGG_EMPTY)
                    with m.Else():
                        m.d.sync += [row.eq(row + 1), *start_row()]
                        m.d.sync += state.eq(_State.LOAD)
        with m.Elif(state == _State.AGG_FETCH):
            m.d.sync += pending.eq(Cat(agg_rd[l].data for l in range(lanes)))
            with m.If(Cat(agg_rd[l].data for l in range(lanes)) == 0):
                m.d.sync += chunk.eq(chunk + 1)
            with m.Else():
                m.d.sync += state.eq(_State.AGG_SEND)
        with m.Elif(state == _State.AGG_EMPTY):
            m.d.comb += self.selected.valid.eq(1)
            with m.If(self.selected.ready):
                m.d.sync += state.eq(_State.IDLE)
        with m.Elif(state == _State.AGG_SEND):
            m.d.comb += self.selected.valid.eq(1)
            with m.If(self.selected.ready):
                m.d.sync += pending.eq(pending & ~(Const(1, lanes) << first_pending))
                with m.If(aggregate_id == aggregate_last):
                    m.d.sync += state.eq(_State.IDLE)
                with m.Elif((pending & ~(Const(1, lanes) << first_pending)) == 0):
                    m.d.sync += chunk.eq(chunk + 1)
                    m.d.sync += state.eq(_State.AGG_FETCH)
        with m.Else():
            m.d.sync += state.eq(_State.IDLE)   # unused encodings recover to IDLE
        return m
