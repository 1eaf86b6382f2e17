"""Bit-exact numpy twin of the WiCSum threshold unit (WTU): the clusters that carry a row's mass.

One *problem* is one (layer, KV head, frame): ``N`` clusters (1 to ``max_clusters``) with token
counts ``n_j`` and ``R`` query rows (1 to ``max_rows``) of unsigned integer scores ``s_ij``. For
each row the WTU selects every cluster whose score is at least a *cutoff*; the rows' selections
are OR-ed into the problem's selection. Everything below is what the RTL (``hw/wtu/``) computes,
bit for bit and cycle for cycle.

Widths and arithmetic (all exact, nothing saturates)
----------------------------------------------------
* score ``s``: ``score_bits`` (S) unsigned; count ``n``: ``count_bits`` unsigned.
* mass ``s * n``: ``S + count_bits`` bits; the row's weighted sum ``W = sum_j s_j * n_j`` and every
  bucket mass fit ``weight_bits`` (``S + count_bits + cluster_id_bits``), so no sum can overflow.
* threshold ``T``: :func:`model.reference.resv.wicsum_threshold`, the one place of the rounding rule
  (``(W * code + 2**(ratio_bits - 1)) >> ratio_bits``, round half up, ``code`` =
  ``wicsum_ratio_code``; the product takes ``threshold_bits``). ``0 <= T <= W`` because
  ``code <= 2**ratio_bits``.

Exact WiCSum (the reference, :func:`model.reference.resv.exact_wicsum`)
-------------------------------------------------------------
``v*`` is the largest score present in the row such that the mass of the clusters scoring at
least ``v*`` reaches ``T``; the selection is every cluster with ``s >= v*``. ``T = 0`` selects
nothing, and a score of 0 is never selected (for ``T > 0``, ``v* > 0`` anyway).

Buckets (integer rule: by score bits, from the top)
---------------------------------------------------
With ``b = bucket_bits`` and ``P = full_refine_depth``, pass ``p`` (0 to ``P``) resolves the
score bits from ``shift_p = max(0, S - (p + 1) * b)`` up: ``shift = [S-b, S-2b, ..., 0]``. Pass 0
puts every cluster in bucket ``s >> shift_0`` (``2**(S - shift_0)`` buckets). Pass ``p >= 1``
only looks at the members of the bucket that crossed the threshold in pass ``p - 1`` (those with
``s >> shift_(p-1) == prefix``) and splits them into ``2**(shift_(p-1) - shift_p)`` sub-buckets
``(s >> shift_p) & (2**(shift_(p-1) - shift_p) - 1)``. Boundaries are fixed by the score bits
(not by the row's min/max) so that pass 0 can be built while the row streams in.

Crossing bucket, early exit, refinement
---------------------------------------
``mass_above`` is the mass of every cluster above the current bucket range (0 at pass 0). The
crossing bucket of a pass is the **highest non-empty** bucket ``c`` whose suffix mass reaches the
rest of the threshold: ``mass_above + sum_{k >= c} mass_k >= T``. Buckets ``k > c`` are selected
outright (``mass_above`` grows by their mass); the buckets below ``c`` are never looked at again.
``prefix`` becomes ``(prefix << bits_p) | c``. The unit refines ``c`` (runs pass ``p + 1``) only
when all three hold: ``p < wtu_refine_depth``, ``shift_p > 0`` (the bucket spans more than one
value) and ``c`` holds at least 2 clusters (with one member, refining cannot change the result).
After the last pass ``P_row``, ``cutoff = max(1, prefix << shift_(P_row))`` and the row selects
``s >= cutoff``. ``T = 0`` is decided by the first decision without a bucket: ``cutoff =
2**S`` (``score_bits + 1`` wide), nothing selected, 0 buckets visited. With
``wtu_refine_depth = full_refine_depth`` this is exact WiCSum; with less it is a superset of it,
still closed under "higher score" (the crossing bucket always contains ``v*``).
``buckets_visited`` adds, per pass, the buckets from the top one down to ``c`` inclusive.
Tie-breaks: clusters of equal score always share a bucket, so they are selected together; the
order of clusters never matters, and the crossing bucket of a pass is unique.

Microarchitecture and cycle model (what ``cycles`` counts)
----------------------------------------------------------
Cluster ``j`` lives in lane ``j % wtu_lanes`` at address ``j // wtu_lanes``. Per lane, the WTU
keeps a linked list per bucket of the lane's clusters (head, tail, next pointer: the bucket
sorter), so a refinement pass touches only the members of the crossing bucket.

* counts of a problem: ``ceil(N / lanes)`` beats, once per problem (not in ``cycles``).
* per row, ``cycles`` =
  ``ceil(N / lanes)`` load beats (``lanes`` scores per beat: ``W``, min, max, the pass-0 bucket
  masses and lists are all built while the row streams in, no extra pass)
  ``+ D`` per pass (the decision, :func:`decide_cycles`: ``D = (4 + L_p) + max(L_s + 1,
  max(L_t, 1) + 1) + 3``: first ``4 + L_p`` cycles for the last clusters to pass the lanes'
  pipeline registers and reach stable bucket masses and ``W``: the memories' words (1), the
  product ``s x n`` (``1 + L_p``: partial products of the score with the count's 4-bit
  slices, then their adder tree, ``L_p = ceil(log2(ceil(count_bits / 4)))``), the masses'
  carry-save sums (2: the lanes' products compressed in groups of 8 into carry-save pairs,
  registered, then the pairs added to the saved pair); ``L_s = ceil(log2(wtu_buckets))`` the
  levels of the suffix masses of
  the buckets, each level's adders cut into a low and a high half with a registered carry (a
  skewed pipeline: the last level's high halves one cycle after its low halves, hence
  ``L_s + 1``), and ``L_t = ceil(log2(popcount(wicsum_ratio_code) + 1))`` the levels of the
  threshold ``W x code + 2**(ratio_bits - 1)``, a tree with one adder level per cycle, from
  the masses and ``W`` resolved from their carry-save form; then one cycle for ``threshold -
  mass_above``, one for the comparisons of every bucket, one to register the crossing
  bucket, one to take it; and first of all :data:`LANE_DELAY` cycles, in which the row's last
  beat reaches the lanes. ``D = 16`` for ``edge`` and ``server`` (16 buckets, 16-bit counts,
  ``L_p = 2``; code 77 has 4 bits set), ``D = 14`` for ``tiny`` (8-bit counts, ``L_p = 1``; 4
  buckets: ``2 + 5 + max(3, 4) + 3``); ``D = 15`` for 8-bit counts and 16 buckets)
  ``+`` per refinement pass, ``max over lanes`` of the crossing bucket's members in that lane
  (each lane walks its own list, one cluster per cycle, with its own multiplier; an adder tree per
  bucket sums the lanes), plus :data:`LANE_DELAY` + :data:`ANSWER_DELAY` (the walk's start
  reaches the lanes, their "done" comes back).
  Cycles stalled by the input or output streams are not counted.
* after the decision, ``ceil(N / lanes)`` emission beats per row (the row's bitmask, OR-ed into the
  aggregate), issued one per cycle and offered :data:`EMIT_LATENCY` cycles after their issue
  (the lanes compare, the bits come back into a queue); the next row's load follows the last
  issue. After the last row, the aggregate stream: :data:`AGGREGATE_WAIT_CYCLES` (the last
  row-mask beat reaches the lanes, its bits come back and are counted), then the chunks are
  read from the lanes one per cycle, the first there :data:`AGGREGATE_READ_LATENCY` cycles
  later; per chunk of ``lanes`` clusters up to the last selected one, 1 cycle plus 1 per
  selected cluster, or 1 cycle for the single "empty" beat (straight after the wait) when no
  row selected anything (:func:`aggregate_cycles`). These are reported separately
  (``emit_cycles``, ``aggregate_cycles``).

Reference: full scan-and-sort on the same lanes (:func:`scan_sort_cycles`)
--------------------------------------------------------------------------
``ceil(N / lanes) * (1 + ceil(log2 N))`` (load, then a merge sort moving ``lanes`` elements per
cycle through ``ceil(log2 N)`` merge levels) ``+ ceil(k / lanes)`` (scan of the sorted row with
early exit, ``k`` = clusters selected by exact WiCSum) ``+ 1`` (decide).
"""

import numpy as np

from model.npzio import ArraySpec, check_arrays
from model.reference.resv import wicsum_threshold

__all__ = ["INPUTS", "OUTPUTS", "STATS_CYCLES", "LANE_DELAY", "ANSWER_DELAY", "EMIT_LATENCY",
           "AGGREGATE_WAIT_CYCLES", "AGGREGATE_READ_LATENCY", "wtu_row", "wtu_problem", "scan_sort_cycles",
           "aggregate_cycles", "selected_schedule", "decide_cycles", "run_arrays",
           "check_problem"]

INPUTS = [
    ArraySpec("scores", "u", 2, "per-row cluster scores, rows x clusters, below 2**score_bits"),
    ArraySpec("counts", "u", 1, "token count per cluster, below 2**count_bits"),
]

OUTPUTS = [
    ArraySpec("row_selected", "b", 2, "per-row selected clusters, rows x clusters"),
    ArraySpec("selected", "b", 1, "OR of row_selected over the rows"),
    ArraySpec("selected_score", "u", 1,
              "max score over the rows of each selected cluster (0 if not selected)"),
    ArraySpec("cycles", "u", 1, "per-row cycles: load + decide passes + refinement walks"),
    ArraySpec("buckets_visited", "u", 1, "per-row buckets from the top down to the crossing one"),
    ArraySpec("passes", "u", 1, "per-row bucket passes (1 + refinements)"),
    ArraySpec("touched", "u", 1, "per-row clusters walked by refinement passes"),
    ArraySpec("cutoff", "u", 1,
              "per-row cutoff: the row selects scores >= cutoff (2**score_bits: none)"),
    ArraySpec("weighted_sum", "u", 1, "per-row W = sum of score x count"),
    ArraySpec("threshold", "u", 1, "per-row threshold (model.reference.resv.wicsum_threshold)"),
    ArraySpec("min_score", "u", 1, "per-row minimum score"),
    ArraySpec("max_score", "u", 1, "per-row maximum score"),
    ArraySpec("emit_cycles", "u", 1, "per-row cycles from the stats beat to the row bitmask's "
              "last beat: its beats and EMIT_LATENCY"),
    ArraySpec("aggregate_cycles", "u", 1, "cycles of the aggregate stream (one value)"),
    ArraySpec("count_cycles", "u", 1, "beats loading the counts (one value)"),
]


def _mass_dtype(config):
    # Exact products and sums: uint64 while they fit, Python ints beyond.
    return np.uint64 if config.weight_bits <= 63 else object


def _masses(scores, counts, config):
    dtype = _mass_dtype(config)
    return scores.astype(dtype) * counts.astype(dtype)


def _lanes_cycles(count, lanes):
    return -(-count // lanes)


def _levels(count):
    # Levels of a balanced binary adder tree over ``count`` operands.
    return max(0, (count - 1).bit_length())


#: Cycles from the sequencer's strobe to the lanes acting on it (a shared register, then one per
#: lane).
LANE_DELAY = 2

#: Cycles from a lane's answer (its walk done, its row-mask bit, its aggregate word) to the part
#: that takes it (a register per lane, then a shared one).
ANSWER_DELAY = 2

#: Cycles from a row-mask beat's issue to its offer on the ``row_mask`` stream: the lanes, the
#: answer, the queue's write.
EMIT_LATENCY = LANE_DELAY + ANSWER_DELAY + 1


def decide_cycles(config):
    """Cycles of one decision (module doc): ``LANE_DELAY + (4 + L_p) + max(L_s + 1, max(L_t, 1)
    + 1) + 3``."""
    product_levels = _levels(-(-config.count_bits // 4))
    suffix_levels = _levels(config.wtu_buckets) + 1   # the last level's high halves
    threshold_levels = _levels(bin(config.wicsum_ratio_code).count("1") + 1)
    return (LANE_DELAY + 4 + product_levels + max(suffix_levels, max(threshold_levels, 1) + 1)
            + 3)


def wtu_row(scores, counts, config):
    """Run the WTU on one row; returns a dict of the row's results (see :data:`OUTPUTS`).

    Parameters
    ----------
    scores, counts : numpy arrays of unsigned integers, one per cluster
        Already validated against the configuration.
    config : DREConfig
    """
    scores = np.asarray(scores, dtype=np.uint64)
    clusters = len(scores)
    lanes = config.wtu_lanes
    mass = _masses(scores, np.asarray(counts, dtype=np.uint64), config)
    weighted_sum = int(mass.sum())
    threshold = wicsum_threshold(weighted_sum, config)
    lane_of = np.arange(clusters) % lanes
    shifts = config.wtu_bucket_shifts
    pass_bits = config.wtu_pass_bits
    member = np.ones(clusters, dtype=bool)
    mass_above = prefix = visited = touched = 0
    decide = decide_cycles(config)
    cycles = _lanes_cycles(clusters, lanes) + decide
    p = 0
    if threshold == 0:
        return _row_result(scores, 1 << config.score_bits, cycles, 0, 1, 0, weighted_sum,
                           threshold)
    while True:
        bits = pass_bits[p]
        sub = ((scores >> np.uint64(shifts[p])) & np.uint64((1 << bits) - 1)).astype(np.int64)
        bucket_mass = np.zeros(1 << bits, dtype=object)
        np.add.at(bucket_mass, sub[member], mass[member].astype(object))
        bucket_members = np.bincount(sub[member], minlength=1 << bits)
        suffix = np.cumsum(bucket_mass[::-1])[::-1]
        crossing = int(np.flatnonzero((bucket_members > 0)
                                      & (mass_above + suffix >= threshold))[-1])
        if crossing + 1 < (1 << bits):
            mass_above += int(suffix[crossing + 1])
        prefix = (prefix << bits) | crossing
        visited += (1 << bits) - crossing
        if p < config.wtu_refine_depth and shifts[p] > 0 and bucket_members[crossing] >= 2:
            member &= sub == crossing
            cycles += (int(np.bincount(lane_of[member], minlength=lanes).max()) + LANE_DELAY
                       + ANSWER_DELAY + decide)
            touched += int(bucket_members[crossing])
            p += 1
            continue
        break
    return _row_result(scores, max(1, prefix << shifts[p]), cycles, visited, p + 1, touched,
                       weighted_sum, threshold)


def _row_result(scores, cutoff, cycles, visited, passes, touched, weighted_sum, threshold):
    return {"row_selected": scores >= cutoff, "cycles": cycles,
            "buckets_visited": visited, "passes": passes, "touched": touched, "cutoff": cutoff,
            "weighted_sum": weighted_sum, "threshold": threshold,
            "min_score": int(scores.min()), "max_score": int(scores.max())}


#: Cycles between the last row-mask beat's issue and the aggregate stream's first read from the
#: lanes: the beat reaches the lanes, its bits come back, the aggregate emitter counts them (2).
AGGREGATE_WAIT_CYCLES = LANE_DELAY + ANSWER_DELAY + 2

#: Cycles from a chunk's read from the lanes to its words at the head of the aggregate queue.
AGGREGATE_READ_LATENCY = LANE_DELAY + ANSWER_DELAY + 1


def aggregate_cycles(selected, lanes):
    """Cycles from the last row-mask beat's transfer to the last ``selected`` beat's (no stall):
    the wait (:data:`AGGREGATE_WAIT_CYCLES`) and the first read's latency
    (:data:`AGGREGATE_READ_LATENCY`) counted from the last row-mask beat's issue, less its
    :data:`EMIT_LATENCY`; then per chunk up to the last selected one, 1 + its selections.

    An empty aggregate takes the wait and 1 cycle (its single "empty" beat) from the issue.
    """
    if not selected.any():
        return AGGREGATE_WAIT_CYCLES + 1 - EMIT_LATENCY
    last = int(np.flatnonzero(selected)[-1])
    return (AGGREGATE_WAIT_CYCLES + AGGREGATE_READ_LATENCY - EMIT_LATENCY + last // lanes + 1
            + int(np.count_nonzero(selected)))


#: Cycles of a row's ``stats`` beat, between its decision and its emission.
STATS_CYCLES = 1


def selected_schedule(result, lanes):
    """When the ``selected`` beats of a problem are offered (every output ready, every
    ``scores`` beat offered when the unit is ready for it).

    Parameters
    ----------
    result : dict
        :func:`wtu_problem`'s result for the problem.
    lanes : int
        ``wtu_lanes``.

    Returns
    -------
    first : int
        Cycles from the transfer of the problem's last ``counts`` beat to the cycle the first
        ``selected`` beat is valid: per row its ``cycles`` (its first load beat comes in the
        cycle after the last counts beat, or after the previous row's last emission beat's
        issue), :data:`STATS_CYCLES` and its emission beats' issue (``emit_cycles`` less
        :data:`EMIT_LATENCY`); then :data:`AGGREGATE_WAIT_CYCLES`, the first read
        (:data:`AGGREGATE_READ_LATENCY`), one fetch cycle per chunk up to the first selected
        cluster's and one to offer it (the single empty beat: offered in the cycle after the
        wait).
    gaps : list of int
        Per later beat, cycles from the previous beat's transfer to the cycle it is valid: 1
        in the same chunk, else 1 plus the chunks from the previous one's (one fetch cycle
        each). Stalls of ``selected`` delay the beats, never shorten these.
    """
    rows = (int(np.sum(result["cycles"])) + int(np.sum(result["emit_cycles"]))
            + (STATS_CYCLES - EMIT_LATENCY) * len(result["cycles"]))
    chunks = np.flatnonzero(result["selected"]) // lanes
    if chunks.size == 0:
        return rows + AGGREGATE_WAIT_CYCLES + 1, []
    first = rows + AGGREGATE_WAIT_CYCLES + AGGREGATE_READ_LATENCY + int(chunks[0]) + 2
    return first, [1 + int(b - a) for a, b in zip(chunks, chunks[1:])]


def scan_sort_cycles(clusters, selected_count, lanes):
    """Cycles of the reference full scan-and-sort of one row on ``lanes`` lanes (module doc)."""
    beats = _lanes_cycles(clusters, lanes)
    levels = max(0, (clusters - 1).bit_length())
    return beats * (1 + levels) + _lanes_cycles(selected_count, lanes) + 1


def check_problem(config, scores, counts):
    """Validate one problem's arrays against ``config``; returns them as ``uint64`` arrays.

    Raises
    ------
    ValueError
        Naming the key and the allowed range: wrong shapes, too many rows or clusters, scores
        or counts out of range.
    """
    scores = np.asarray(scores)
    counts = np.asarray(counts)
    if scores.ndim != 2 or counts.ndim != 1:
        raise ValueError(f"scores must be 2-D (rows x clusters) and counts 1-D, not shapes "
                         f"{scores.shape} and {counts.shape}")
    rows, clusters = scores.shape
    if not 1 <= clusters <= config.max_clusters:
        raise ValueError(f"scores must have from 1 to {config.max_clusters} clusters "
                         f"(max_clusters), not {clusters}")
    if not 1 <= rows <= config.max_rows:
        raise ValueError(f"scores must have from 1 to {config.max_rows} rows (max_rows), "
                         f"not {rows}")
    if len(counts) != clusters:
        raise ValueError(f"counts must have one value per cluster ({clusters}), not {len(counts)}")
    for name, array, highest in (("scores", scores, config.max_score),
                                 ("counts", counts, config.max_count)):
        if array.dtype.kind not in "iu" or array.min() < 0 or array.max() > highest:
            raise ValueError(f"{name} must hold integers from 0 to {highest}, found "
                             f"{array.min()} to {array.max()} ({array.dtype})")
    return scores.astype(np.uint64), counts.astype(np.uint64)


def wtu_problem(config, scores, counts):
    """Run the WTU on one problem (rows x clusters scores, per-cluster counts).

    Returns
    -------
    dict of numpy arrays
        The keys of :data:`OUTPUTS`.

    Raises
    ------
    ValueError
        See :func:`check_problem`.
    """
    scores, counts = check_problem(config, scores, counts)
    rows = [wtu_row(row, counts, config) for row in scores]
    result = {"row_selected": np.array([row["row_selected"] for row in rows])}
    for key in ("cycles", "buckets_visited", "passes", "touched", "cutoff", "weighted_sum",
                "threshold", "min_score", "max_score"):
        values = [row[key] for row in rows]
        # Sums past 64 bits (weight_bits > 64) stay exact as Python ints.
        wide = max(values) >> 64
        result[key] = np.array(values, dtype=object if wide else np.uint64)
    selected = result["row_selected"].any(axis=0)
    clusters = scores.shape[1]
    beats = _lanes_cycles(clusters, config.wtu_lanes)
    result.update(
        selected=selected,
        selected_score=np.where(selected, scores.max(axis=0), 0).astype(np.uint64),
        emit_cycles=np.full(len(rows), beats + EMIT_LATENCY, dtype=np.uint64),
        aggregate_cycles=np.array([aggregate_cycles(selected, config.wtu_lanes)], dtype=np.uint64),
        count_cycles=np.array([beats], dtype=np.uint64))
    return result


def run_arrays(config, arrays):
    """File interface (``python -m sim.run wtu``): ``scores``, ``counts`` in, :data:`OUTPUTS` out.

    Raises
    ------
    ValueError
        If the inputs do not fit ``config``, or a row's weighted sum does not fit 64 bits (only
        possible when ``weight_bits`` exceeds 64).
    """
    arrays = check_arrays("wtu input", INPUTS, arrays)
    result = wtu_problem(config, arrays["scores"], arrays["counts"])
    for key in ("weighted_sum", "threshold"):
        if result[key].dtype == object:
            raise ValueError(f"{key} reaches {max(result[key])}, past the 64 bits of the file "
                             f"interface (weight_bits is {config.weight_bits}); use "
                             f"model.twins.wtu.wtu_problem for exact values")
    return result
