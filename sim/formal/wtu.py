"""Formal harness of the WiCSum threshold unit (:class:`hw.wtu.WiCSumThresholdUnit`).

Properties (group: what is asserted)
------------------------------------
contract
    ``stats``, ``row_mask`` and ``selected`` keep ``valid`` and their payloads while stalled;
    ``problem``, ``counts`` and ``scores`` are assumed to do the same.
conservation
    One problem at a time (a header is taken only once the previous problem's last ``selected``
    beat left); exactly ``ceil(N / lanes)`` count beats, then per row exactly that many score
    beats (the next row's may come while the row's ``row_mask`` beats are still leaving, never
    before its ``stats``); a row's ``stats`` only after all its score beats and after the row
    before's last mask beat, rows in order; its ``row_mask`` beats after its ``stats``, chunks
    in order, ``last`` on the final one; ``selected`` only after every row's mask; no problem
    completes that was not started.
response
    With every output always ready and every input always offered, the unit never goes longer
    without an output transfer than the header, the counts and one row of the longest kind take
    (``1 + ceil(N / lanes) + max_row_cycles(N)``, the unit's declared row bound).
invariants
    Per row: a cluster is selected exactly when it exists and its score is at least the row's
    ``stats.cutoff``; so the selection is closed under "higher score"; and the selected clusters'
    weighted sum reaches ``stats.threshold``. The aggregate: cluster ids strictly ascending, each
    selected by some row, none skipped, ``last`` on the highest, each with its maximum score over
    all the rows (selecting it or not); the single ``empty`` beat exactly when no row selected anything.
"""

from amaranth.hdl import Cat, Signal

from model.config import PRESETS
from sim.formal.properties import (FormalHarness, counter, drive_input, drive_output,
                                   waiting_cycles)

__all__ = ["VARIANTS", "JOBS", "QUICK", "WTUHarness", "harness"]

_TINY = PRESETS["tiny"]
_SMALL = dict(hash_bits=4, hamming_threshold=2, hcu_lanes=2, hcu_tokens_in_flight=2,
              hcu_bits_per_cycle=2, topk_k=2, max_rows=2, count_bits=2)
#: Configurations proved: the preset ``tiny``, and small ones whose problems complete within
#: the depths below, together covering every parameter path: two lanes and one, full
#: refinement, partial refinement (a superset of the exact rule) and none, two rows OR-ed.
VARIANTS = {
    "tiny": _TINY,
    "exact": _TINY.replace(**_SMALL, hash_mem_entries=4, max_clusters=4, wtu_lanes=2,
                           wtu_buckets=2, score_bits=2, wtu_refine_depth=1),
    "partial": _TINY.replace(**_SMALL, hash_mem_entries=4, max_clusters=4, wtu_lanes=2,
                             wtu_buckets=2, score_bits=3, wtu_refine_depth=1),
    "one_lane": _TINY.replace(**_SMALL, hash_mem_entries=2, max_clusters=2, wtu_lanes=1,
                              wtu_buckets=2, score_bits=3, wtu_refine_depth=0),
}
_ALL = (("contract", "bmc", 20), ("conservation", "bmc", 48), ("response", "bmc", 40),
        ("invariants", "bmc", 48), ("cover", "cover", 48))
#: (kind, mode, depth) of the jobs of each variant. A ``tiny`` problem (up to 64 clusters in 16
#: beats per row, 8 rows) does not complete within a depth a solver reaches: ``tiny`` gets the
#: contract and conservation checks of its first beats only. The small variants reach every
#: cover by step 46 (a completed two-row problem among them: the lanes act two cycles after
#: the sequencer and answer two cycles later, so each decision, walk, emission and the
#: aggregate stream take some cycles more than the covers' 30 steps before); the response
#: bound (37 cycles on ``exact`` and ``partial``, 18 on ``one_lane``) needs depth 40; the
#: conservation (the streams' order, with the next row's scores taken while a row's mask beats
#: leave) and the invariants (per-cluster compares of every row and the aggregate) are checked
#: to depth 48, where the aggregate of a completed two-row problem is in reach.
JOBS = {
    "tiny": (("contract", "bmc", 8), ("conservation", "bmc", 8)),
    "exact": _ALL,
    "partial": _ALL,
    "one_lane": _ALL,
}
#: The jobs ``make test`` runs (the others run in ``make formal``).
QUICK = (("exact", "response"),)

#: Width of the harness's counters: no wrap within 63 steps, deeper than every job.
_COUNT_BITS = 6


class WTUHarness(FormalHarness):
    """The WTU with free inputs and one group of properties (see the module docstring)."""

    def harness(self, m, config, props):
        from hw.registry import build_component

        m.submodules.dut = dut = build_component("wtu", config)
        responding = props.responding
        header_taken = drive_input(m, dut.problem, props, "problem", always_valid=responding)
        counts_taken = drive_input(m, dut.counts, props, "counts", always_valid=responding)
        scores_taken = drive_input(m, dut.scores, props, "scores", always_valid=responding)
        stats_given = drive_output(m, dut.stats, props, "stats")
        mask_given = drive_output(m, dut.row_mask, props, "row_mask")
        selected_given = drive_output(m, dut.selected, props, "selected")

        lanes, clusters = config.wtu_lanes, config.max_clusters
        lane_bits = lanes.bit_length() - 1
        score_bits, count_bits = config.score_bits, config.count_bits
        stats, mask, chosen = dut.stats.payload, dut.row_mask.payload, dut.selected.payload

        # The problem as the harness saw it.
        clusters_m1 = Signal(config.cluster_id_bits)
        rows_m1 = Signal(config.row_bits)
        with m.If(header_taken):
            m.d.sync += [clusters_m1.eq(dut.problem.payload.clusters_minus_one),
                         rows_m1.eq(dut.problem.payload.rows_minus_one)]
        beats = (clusters_m1 >> lane_bits) + 1
        finished = selected_given & chosen.last
        started = counter(m, header_taken, _COUNT_BITS, "problems_in")
        completed = counter(m, finished, _COUNT_BITS, "problems_out")
        busy = started != completed

        count_beats = Signal(_COUNT_BITS)
        score_beats = Signal(_COUNT_BITS)       # of the row being loaded
        mask_beats = Signal(_COUNT_BITS)
        rows_done = Signal(config.row_bits + 1)
        rows_stated = Signal(config.row_bits + 1)
        stats_seen = Signal()
        row_end = mask_given & mask.last
        with m.If(header_taken):
            m.d.sync += [count_beats.eq(0), score_beats.eq(0), rows_done.eq(0),
                         rows_stated.eq(0)]
        with m.If(counts_taken):
            m.d.sync += count_beats.eq(count_beats + 1)
        with m.If(scores_taken):
            m.d.sync += score_beats.eq(score_beats + 1)
        with m.If(stats_given):
            m.d.sync += [stats_seen.eq(1), mask_beats.eq(0), score_beats.eq(0),
                         rows_stated.eq(rows_stated + 1)]
        with m.If(mask_given):
            m.d.sync += mask_beats.eq(mask_beats + 1)
        with m.If(row_end):
            m.d.sync += [stats_seen.eq(0), rows_done.eq(rows_done + 1)]

        check = props.checker(m, "conservation")
        check(~header_taken | ~busy)
        check(~finished | busy)
        check(~counts_taken | (busy & (count_beats < beats)))
        check(~scores_taken | (busy & (count_beats == beats) & (score_beats < beats)
                               & (rows_stated <= rows_m1)))
        check(~stats_given | (busy & (score_beats == beats) & ~stats_seen
                              & (stats.row == rows_done)))
        check(~mask_given | (stats_seen & (mask.row == rows_done) & (mask.chunk == mask_beats)
                             & (mask.last == (mask_beats == beats - 1))))
        check(~selected_given | (busy & (rows_done == rows_m1 + 1)))

        # Bounded response: the longest stretch without an output transfer.
        gap = waiting_cycles(m, pending=busy | header_taken,
                             progress=stats_given | mask_given | selected_given,
                             width=_COUNT_BITS, name="gap")
        bound = 1 + dut.load_beats(clusters) + dut.max_row_cycles(clusters)
        props.check(m, "response", gap <= bound)

        # Invariants: the row's scores and counts as taken, its mask as emitted; the scores of
        # the row being emitted kept from its stats beat on (the next row's may come in).
        score_of = [Signal(score_bits, name=f"score{j}") for j in range(clusters)]
        row_score = [Signal(score_bits, name=f"row_score{j}") for j in range(clusters)]
        with m.If(stats_given):
            m.d.sync += [kept.eq(taken) for kept, taken in zip(row_score, score_of)]
        count_of = [Signal(count_bits, name=f"count{j}") for j in range(clusters)]
        for j in range(clusters):
            beat, lane = divmod(j, lanes)
            with m.If(scores_taken & (score_beats == beat)):
                m.d.sync += score_of[j].eq(
                    dut.scores.payload.score[lane])
            with m.If(counts_taken & (count_beats == beat)):
                m.d.sync += count_of[j].eq(
                    dut.counts.payload.count[lane])
        cutoff = Signal.like(stats.cutoff)
        threshold = Signal.like(stats.threshold)
        with m.If(stats_given):
            m.d.sync += [cutoff.eq(stats.cutoff), threshold.eq(stats.threshold)]
        row_bits = Signal(clusters)
        with m.If(mask_given):
            m.d.sync += row_bits.eq(row_bits | (mask.mask << (mask.chunk * lanes)))
        with m.If(stats_given):
            m.d.sync += row_bits.eq(0)
        row_mask = Signal(clusters)
        m.d.comb += row_mask.eq(row_bits | (mask.mask << (mask.chunk * lanes)))
        exists = [j <= clusters_m1 for j in range(clusters)]
        invariant = props.checker(m, "invariants")
        for j in range(clusters):
            invariant(~row_end | (row_mask[j] == (exists[j] & (row_score[j] >= cutoff))))
            for k in range(clusters):
                invariant(~row_end | ~(row_mask[j] & exists[k] & (row_score[k] >= row_score[j]))
                          | row_mask[k])
        mass = sum(row_mask[j].replicate(score_bits + count_bits) & (row_score[j] * count_of[j])
                   for j in range(clusters))
        invariant(~row_end | (mass >= threshold))

        # The aggregate: OR of the rows' masks, maximum score per cluster.
        union = Signal(clusters)
        best = [Signal(score_bits, name=f"best{j}") for j in range(clusters)]
        with m.If(row_end):
            m.d.sync += union.eq(union | row_mask)
            for j in range(clusters):
                with m.If((rows_done == 0) | (row_score[j] > best[j])):
                    m.d.sync += best[j].eq(row_score[j])
        with m.If(header_taken):
            m.d.sync += union.eq(0)
        previous = Signal(config.cluster_id_bits)
        first = Signal(init=1)
        with m.If(selected_given):
            m.d.sync += [previous.eq(chosen.cluster), first.eq(chosen.last)]
        highest = Signal(config.cluster_id_bits)
        for j in range(clusters):
            with m.If(union[j]):
                m.d.comb += highest.eq(j)
        offered = dut.selected.valid & ~chosen.empty
        invariant(~(dut.selected.valid & chosen.empty) | ((union == 0) & chosen.last))
        invariant(~offered | (union.bit_select(chosen.cluster, 1) & (first | (chosen.cluster
                                                                              > previous))))
        invariant(~offered | (chosen.last == (chosen.cluster == highest)))
        for j in range(clusters):
            invariant(~(offered & union[j] & (j < chosen.cluster)) | (~first & (j <= previous)))
            invariant(~(offered & (chosen.cluster == j)) | (chosen.score == best[j]))

        props.cover(m, finished & ~chosen.empty & (rows_m1 == 1) & (union != (1 << clusters) - 1))
        props.cover(m, finished & chosen.empty)
        props.cover(m, row_end & (row_mask != 0) & ~row_mask.all() & (clusters_m1 == clusters - 1))
        if config.wtu_refine_depth:     # a refinement pass (none without refinement)
            props.cover(m, stats_given & (stats.passes > 1))
        props.cover(m, gap == bound - 1)
        if lanes > 1:       # a row whose last beat is partly filled (clusters not a multiple)
            props.cover(m, row_end & (clusters_m1[:lane_bits] != lanes - 1))
        props.cover(m, header_taken & (completed == 1))


def harness(config, kind):
    """The harness of the WTU for ``config`` proving job kind ``kind``."""
    return WTUHarness(config, kind)
