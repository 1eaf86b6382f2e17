"""Bit-exact numpy twin of the retrieval buffer: selected clusters in, KV fetch descriptors out.

The retrieval buffer sits after the WiCSum threshold unit. It receives the selected clusters of
one (layer, KV head, frame) problem, decides which of them are fetched, and turns the kept
clusters into fetch descriptors ``(base, length)`` of the cluster-contiguous KV layout, in
ascending address order, adjacent ranges merged. This module is the scoreboard of the RTL
(:class:`hw.retrieval_buffer.RetrievalBuffer`): outputs and cycle counts are equal.

Contract
--------
Inputs (one problem)
    ``selected`` (bool), ``scores`` (``score_bits``), ``base`` (``kv_token_bits``) and
    ``count`` (``count_bits``) per cluster, and a mode: ``MODE_DYNAMIC`` (0) or ``MODE_TOPK`` (1).
    The layout must be cluster-contiguous in cluster order: cluster ``c`` holds the tokens
    ``base[c] .. base[c] + count[c] - 1``, ``base[c] + count[c] <= base[c + 1]`` and
    ``base[c] + count[c] <= 2**kv_token_bits`` (ranges are disjoint, ascending, addressable).
Candidates
    Clusters with ``selected = 1`` and ``count >= 1`` (an empty cluster holds no tokens).
Rank
    Score descending, ties to the lower cluster index (a stable sort).
Top-k mode
    The first ``topk_k`` candidates by rank (all of them when there are fewer); the token
    budget does not apply.
Dynamic mode, ``token_budget = 0``
    Every candidate.
Dynamic mode, ``token_budget > 0`` (prefix rule)
    The longest prefix of the candidates by rank whose running token total stays within the
    budget and which holds at most ``topk_k`` clusters (the capacity of the hardware buffer).
    The first cluster that would exceed the budget is dropped, and so is every cluster ranked
    after it, even a smaller one that would still fit.
Descriptors
    The kept clusters' ranges in ascending base order (which is cluster order); a range whose
    base equals the end ``base + length`` of the previous descriptor is merged into it. The
    length is ``kv_token_bits + 1`` bits wide, enough for the whole address space
    (``2**kv_token_bits``), so a merged length is exact: never saturated, wrapped or split. A
    problem with nothing kept has no descriptor (on the stream: one beat of length 0).
Cycle model
    The problem reaches the hardware as ``beats = max(1, selected clusters)`` input beats (one
    idle beat with ``selected = 0`` for an empty selection). With an always-valid source and
    an always-ready sink, counting from the cycle of the first input transfer to the cycle of
    the last output transfer, both included:
    ``cycles = beats + 2`` (:data:`FLUSH_CYCLES`) in dynamic mode without a budget (clusters
    stream through the merger), ``cycles = beats + 1 + kept + max(1, kept) + 1 + 2`` in top-k
    mode and in budgeted dynamic mode: collect (each beat is inserted :data:`INSERT_CYCLES` = 1
    cycle after its transfer, its compares with the entries registered with it), then sort the
    kept clusters by base in :data:`SORT_ROUNDS_PER_ENTRY` = 1 round per kept cluster (an
    odd-even transposition sort, one round per cycle), then hand one kept cluster per cycle to
    the merger in base order (at least one cycle: with nothing kept, a beat without a range),
    :data:`DRAIN_CYCLES` = 1 cycle after it is chosen (the head entry's registered copy),
    then the merger's 2. The input takes one beat per
    cycle in every mode (:data:`BEATS_PER_CYCLE`). Problems may follow each other back to
    back: a problem's count does not depend on its neighbours (a problem after a buffered one
    starts once the drain has handed its last cluster to the merger). Stalls change the
    timing, never the descriptors.
Streams
    The beats of the block's streams are the codec's (:class:`sim.payloads.BufferCodec`).
"""

import numpy as np

from model.npzio import ArraySpec, check_arrays

__all__ = ["MODE_DYNAMIC", "MODE_TOPK", "BEATS_PER_CYCLE", "FLUSH_CYCLES", "DRAIN_CYCLES",
           "INSERT_CYCLES", "SORT_ROUNDS_PER_ENTRY",
           "INPUTS", "OUTPUTS",
           "validate_problem", "rank_order", "kept_clusters", "merge_ranges", "buffered",
           "problem_cycles", "retrieve",
           "run_arrays"]

#: Dynamic mode: every selected cluster (within the token budget, when there is one).
MODE_DYNAMIC = 0
#: Fixed top-k mode: the ``topk_k`` highest-scoring selected clusters.
MODE_TOPK = 1
#: Input beats the buffer accepts per cycle while it collects (throughput).
BEATS_PER_CYCLE = 1
#: Cycles after the last input beat (pass-through) or the last drained cluster (buffered
#: modes) until the last descriptor is transferred: the merger's flush cycle and the output
#: register.
FLUSH_CYCLES = 2
#: Cycles from choosing a kept cluster in the buffered modes to handing it to the merger: the
#: buffer's head entry is registered on its way.
DRAIN_CYCLES = 1
#: Cycles from a buffered beat's transfer to its insertion into the sorted buffer (the beat and
#: its compares with the entries registered).
INSERT_CYCLES = 1
#: Rounds (cycles) of the sort by base after the last insertion, per kept cluster: an odd-even
#: transposition sort of ``n`` entries takes ``n`` rounds.
SORT_ROUNDS_PER_ENTRY = 1

INPUTS = [
    ArraySpec("selected", "b", 1,
              "per cluster: selected by the threshold unit (all ones for baselines)"),
    ArraySpec("scores", "u", 1, "per cluster: score, 0 to 2**score_bits - 1"),
    ArraySpec("base", "u", 1,
              "per cluster: first token address in the cluster-contiguous KV layout"),
    ArraySpec("count", "u", 1, "per cluster: tokens of the cluster, 0 to 2**count_bits - 1"),
    ArraySpec("mode", "u", 0, "0 = dynamic (default), 1 = fixed top-k", optional=True),
]

OUTPUTS = [
    ArraySpec("desc_base", "u", 1, "fetch descriptors: first token address, ascending"),
    ArraySpec("desc_len", "u", 1, "fetch descriptors: tokens, adjacent ranges merged"),
    ArraySpec("cycles", "u", 0, "cycles from the first input to the last output transfer"),
]


def validate_problem(config, selected, scores, base, count, mode=MODE_DYNAMIC):
    """Check one problem against ``config`` and the layout contract; return numpy arrays.

    Returns
    -------
    tuple
        ``(selected, scores, base, count, mode)`` as ``bool`` / ``int64`` arrays and an int.

    Raises
    ------
    ValueError
        Naming the key and its allowed range.
    """
    selected = np.asarray(selected).astype(bool)
    scores, base, count = (np.asarray(array).astype(np.int64) for array in (scores, base, count))
    clusters = selected.shape[0] if selected.ndim == 1 else -1
    if not 1 <= clusters <= config.max_clusters:
        raise ValueError(f"selected must be a 1-D array of 1 to {config.max_clusters} clusters, "
                         f"not shape {selected.shape}")
    for name, array in (("scores", scores), ("base", base), ("count", count)):
        if array.shape != selected.shape:
            raise ValueError(f"{name} must have the shape of selected {selected.shape}, "
                             f"not {array.shape}")
    address_space = 1 << config.kv_token_bits
    for name, array, highest in (("scores", scores, config.max_score),
                                 ("base", base, address_space - 1),
                                 ("count", count, config.max_count)):
        if array.min() < 0 or array.max() > highest:
            raise ValueError(f"{name} must be from 0 to {highest}, found {array.min()} to "
                             f"{array.max()}")
    ends = base + count
    if ends.max() > address_space:
        raise ValueError(f"base + count must be at most 2**kv_token_bits = {address_space}, "
                         f"found {ends.max()}")
    overlapping = np.flatnonzero(ends[:-1] > base[1:])
    if overlapping.size:
        c = int(overlapping[0])
        raise ValueError(f"base must be a cluster-contiguous layout in cluster order "
                         f"(base[c] + count[c] <= base[c + 1]); cluster {c} ends at "
                         f"{int(ends[c])} after base[{c + 1}] = {int(base[c + 1])}")
    mode = int(mode)
    if mode not in (MODE_DYNAMIC, MODE_TOPK):
        raise ValueError(f"mode must be 0 (dynamic) or 1 (top-k), not {mode!r}")
    return selected, scores, base, count, mode


def rank_order(scores, candidates):
    """Indices of the candidate clusters by rank: score descending, ties to the lower index."""
    indices = np.flatnonzero(candidates)
    return indices[np.argsort(-np.asarray(scores)[indices], kind="stable")]


def kept_clusters(config, selected, scores, count, mode=MODE_DYNAMIC):
    """Boolean mask of the clusters the buffer keeps (see the module contract).

    Parameters
    ----------
    config : DREConfig
        Supplies ``topk_k`` and ``token_budget``.
    selected, scores, count : array_like
        Per cluster.
    mode : int
        :data:`MODE_DYNAMIC` or :data:`MODE_TOPK`.
    """
    count = np.asarray(count).astype(np.int64)
    candidates = np.asarray(selected).astype(bool) & (count > 0)
    order = rank_order(scores, candidates)
    if mode == MODE_TOPK:
        order = order[:config.topk_k]
    elif config.token_budget > 0:
        within = np.cumsum(count[order]) <= config.token_budget
        prefix = order.size if within.all() else int(np.argmin(within))
        order = order[:min(prefix, config.topk_k)]
    kept = np.zeros(candidates.shape, dtype=bool)
    kept[order] = True
    return kept


def merge_ranges(base, count, kept):
    """Descriptors ``(desc_base, desc_len)`` of the kept ranges, ascending, adjacent merged."""
    desc_base, desc_len = [], []
    for c in np.flatnonzero(kept):
        start, length = int(base[c]), int(count[c])
        if desc_base and desc_base[-1] + desc_len[-1] == start:
            desc_len[-1] += length
        else:
            desc_base.append(start)
            desc_len.append(length)
    return np.array(desc_base, dtype=np.uint64), np.array(desc_len, dtype=np.uint64)


def buffered(config, mode):
    """Whether ``mode`` collects the candidates in the sorted buffer before draining them."""
    return mode == MODE_TOPK or config.token_budget > 0


def problem_cycles(config, selected, kept, mode=MODE_DYNAMIC):
    """Cycles of one problem (the module's cycle model)."""
    beats = max(1, int(np.count_nonzero(selected)))
    if not buffered(config, mode):
        return beats + FLUSH_CYCLES
    kept = int(np.count_nonzero(kept))
    return (beats + INSERT_CYCLES + SORT_ROUNDS_PER_ENTRY * kept + max(1, kept) + DRAIN_CYCLES
            + FLUSH_CYCLES)


def retrieve(config, selected, scores, base, count, mode=MODE_DYNAMIC):
    """Run the retrieval buffer on one problem.

    Returns
    -------
    dict
        ``desc_base``, ``desc_len`` (``uint64`` arrays), ``cycles`` (int), ``kept`` (mask).

    Raises
    ------
    ValueError
        If an input is outside its range or the layout breaks the contract.
    """
    selected, scores, base, count, mode = validate_problem(config, selected, scores, base,
                                                           count, mode)
    kept = kept_clusters(config, selected, scores, count, mode)
    desc_base, desc_len = merge_ranges(base, count, kept)
    return {"desc_base": desc_base, "desc_len": desc_len, "kept": kept,
            "cycles": problem_cycles(config, selected, kept, mode)}


def run_arrays(config, arrays):
    """File interface (``python -m sim.run buffer``): validated arrays in, output arrays out."""
    arrays = check_arrays("buffer input", INPUTS, arrays)
    result = retrieve(config, arrays["selected"], arrays["scores"], arrays["base"],
                      arrays["count"], arrays.get("mode", MODE_DYNAMIC))
    return {"desc_base": result["desc_base"], "desc_len": result["desc_len"],
            "cycles": np.uint64(result["cycles"])}
