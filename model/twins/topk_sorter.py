"""Bit-exact twin of the sorter-based top-k baseline (:class:`hw.topk_sorter.TopKSorter`).

The baseline is what a designer would build without WiCSum: sort every cluster score of a row
and keep the ``k`` best. It exists so that the synthesis reports can state the WTU's area and
cycles per row as ratios against a straightforward design of the same size (``N =
max_clusters`` clusters, ``score_bits``-bit scores plus a cluster index, ``wtu_lanes`` scores per
cycle, ``k = topk_k``).

Contract (the RTL equals this exactly)
--------------------------------------
- **Input** of one row: beats of ``wtu_lanes`` unsigned ``score_bits``-bit scores; lane ``l`` of
  beat ``b`` is cluster ``b * wtu_lanes + l``. A row is 1 to ``max_clusters / wtu_lanes`` beats;
  the beat flagged ``last`` closes it.
- **Order**: a higher score ranks first; equal scores rank the lower cluster index first (the
  order is total, so every correct sorter gives the same answer).
- **Output** of one row: exactly ``k`` entries ``(cluster, score, valid)`` in rank order; when a
  row holds fewer than ``k`` clusters the tail entries are ``(0, 0, 0)``. The ``k``-th entry
  carries ``last``. No rounding or saturation: scores pass through unchanged.
- **Cycle model** (no stalls). With ``L = wtu_lanes``, ``W = 2**ceil(log2(k))`` and
  :data:`LEVELS_PER_REGISTER` ``= 1`` compare-and-swap level between registers: the beat's
  sorting pipeline has ``D = max(1, log2(L) (log2(L) + 1) / 2)`` registers (one per level of
  the bitonic sorting network); the merge ring has ``S = 1 + log2(W)`` stages (the fold and the
  ``log2(W)`` merging levels) and so holds ``S`` partial results; reducing them takes ``R`` cycles (:func:`reduce_cycles`: each
  cycle one of the ``S`` slots comes round, in turn; an occupied slot is set aside when nothing
  is set aside and another slot is occupied, merged with the one set aside otherwise (it stays
  occupied), and is the result when it is the only occupied one; all ``S`` start occupied).
  A row of ``B`` beats takes ``B`` input cycles, then :func:`latency` ``= D + R + 2`` cycles
  from the handshake of its last beat to its first output entry (the ``+ 2``: the output
  register, then the output's skid buffer), then ``k`` output cycles, one entry per cycle;
  the next row's first beat is accepted on the cycle after the last entry leaves. Rows
  therefore follow each other every ``B + D + R + k + 1`` cycles (:func:`cycles_per_row`);
  there is no early exit, every cluster is read. ``edge`` (L 16, k 64): D 10, S 7, R 27,
  latency 39, 358 cycles per row of 4096 clusters (357 before the skid buffer; with two levels
  between registers, until issue 10 item 5: D 5, S 4, R 12, latency 18, 337 cycles).
"""

import numpy as np

__all__ = ["LEVELS_PER_REGISTER", "sort_registers", "ring_stages", "reduce_cycles", "latency",
           "beats_per_row", "cycles_per_row", "topk_row", "topk_rows"]

#: Compare-and-swap levels between two registers of the sorting and merging networks
#: (:data:`hw.topk_sorter.LEVELS_PER_STAGE`).
LEVELS_PER_REGISTER = 1


def _log2(value):
    return (int(value) - 1).bit_length()


def sort_registers(config):
    """Registers ``D`` of the beat's sorting pipeline (see the module contract)."""
    log_lanes = _log2(config.wtu_lanes)
    levels = log_lanes * (log_lanes + 1) // 2
    return max(1, -(-levels // LEVELS_PER_REGISTER))


def ring_stages(config):
    """Stages ``S`` of the merge ring: the fold and ``log2(W)`` merging levels,
    :data:`LEVELS_PER_REGISTER` a stage."""
    return -(-(1 + _log2(config.topk_k)) // LEVELS_PER_REGISTER)


def reduce_cycles(config):
    """Cycles ``R`` from the row's last fold to the cycle its result leaves the ring."""
    slots = ring_stages(config)
    occupied = set(range(slots))
    aside = False
    cycle = 0
    while True:
        slot = cycle % slots
        cycle += 1
        if slot not in occupied:
            continue
        if aside:  # merged with the one set aside; the slot stays occupied
            aside = False
        elif occupied == {slot}:
            return cycle
        else:
            occupied.discard(slot)
            aside = True


def latency(config):
    """Cycles from the handshake of a row's last input beat to its first output entry."""
    return sort_registers(config) + reduce_cycles(config) + 2


def beats_per_row(config, clusters):
    """Input beats of a row of ``clusters`` scores: ``ceil(clusters / wtu_lanes)``.

    Raises
    ------
    ValueError
        If ``clusters`` is not from 1 to ``max_clusters``.
    """
    if not 1 <= int(clusters) <= config.max_clusters:
        raise ValueError(f"clusters must be from 1 to {config.max_clusters}, not {clusters!r}")
    return -(-int(clusters) // config.wtu_lanes)


def cycles_per_row(config, clusters):
    """Cycles between the first beats of consecutive rows of ``clusters`` scores (no stalls).

    ``beats_per_row + latency - 1 + topk_k``: the input beats, the pipeline, and one cycle per
    output entry (see the module contract).
    """
    return beats_per_row(config, clusters) + latency(config) - 1 + config.topk_k


def topk_row(config, scores):
    """The ``k`` best clusters of one row, in rank order.

    Parameters
    ----------
    config : DREConfig
        Uses ``max_clusters``, ``score_bits``, ``wtu_lanes`` and ``topk_k``.
    scores : array_like of int
        The row's scores; its length must be a whole number of beats (a multiple of
        ``wtu_lanes``), at most ``max_clusters``.

    Returns
    -------
    clusters, scores, valid : numpy.ndarray
        Three arrays of length ``topk_k`` (uint32, uint32, uint8).

    Raises
    ------
    ValueError
        If the row length or a score is out of range.
    """
    row = np.asarray(scores, dtype=np.int64).reshape(-1)
    if row.size == 0 or row.size > config.max_clusters or row.size % config.wtu_lanes:
        raise ValueError(f"scores must hold a multiple of wtu_lanes ({config.wtu_lanes}) from "
                         f"{config.wtu_lanes} to {config.max_clusters} values, not {row.size}")
    if row.min() < 0 or row.max() > config.max_score:
        raise ValueError(f"scores must be from 0 to {config.max_score}")
    # Stable sort on -score keeps equal scores in cluster order: lower index first.
    order = np.argsort(-row, kind="stable")[:config.topk_k]
    kept = order.size
    clusters = np.zeros(config.topk_k, dtype=np.uint32)
    values = np.zeros(config.topk_k, dtype=np.uint32)
    valid = np.zeros(config.topk_k, dtype=np.uint8)
    clusters[:kept] = order
    values[:kept] = row[order]
    valid[:kept] = 1
    return clusters, values, valid


def topk_rows(config, rows):
    """:func:`topk_row` of each row of ``rows``; returns three ``(rows, topk_k)`` arrays."""
    results = [topk_row(config, row) for row in rows]
    return tuple(np.stack([result[index] for result in results]) for index in range(3))
