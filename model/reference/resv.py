"""ReSV float reference: hashing, Hamming clustering, scores, WiCSum selection and retrieval.

This is the golden model of ReSV (V-Rex, arXiv 2512.12284) with this project's decisions where
the paper is silent, per (layer, KV head), frame by frame:

1. **Hash** the new frame's post-RoPE keys: bit ``i`` of a hash is 1 when the projection on
   hyperplane ``i`` is ``> 0`` (bit 0 = first hyperplane = LSB), :func:`hash_keys`. Hyperplanes are
   seeded Gaussians per (layer, KV head), :func:`make_hyperplanes`.
2. **Cluster** the new tokens incrementally with :class:`model.reference.clustering.LeaderClusterer`
   (``hamming_threshold``, ``hash_mem_entries`` table entries, ``max_clusters``). Every cluster
   keeps the running sum of its members' keys; its representative key is their mean. Clusters
   that left the HCU's hash table can no longer be joined but are still scored and retrieved.
3. **Score** every query row against every representative key, ``q . k_c`` (float), and quantize
   for the WTU with :func:`quantize_scores`.
4. **WiCSum** per row on the integer scores and the token counts clipped to ``max_count``
   (:func:`exact_wicsum`, rule below), then **OR** over the rows of the KV head's query heads.
5. **Retrieve** the member tokens of the selected clusters, plus the ``recent_window`` most
   recent past tokens, plus the frame's own tokens (being prefilled, they are on chip).

Attention on the frame's own tokens is **full within the frame**: every query row of the frame sees
all of the frame's tokens (they are prefilled together and on chip) besides the retrieved past
tokens; the retrieved set only restricts the past cache (:mod:`model.evaluation.metrics`).

Exact WiCSum rule (the bit-exact contract the WTU is tested against)
--------------------------------------------------------------------
Inputs: unsigned scores ``s_j < 2**score_bits`` and counts ``n_j < 2**count_bits`` of the row's
clusters. With ``r = wicsum_ratio_code`` and ``b = wicsum_ratio_bits``:

* ``W = sum_j s_j * n_j`` (exact, ``weight_bits`` wide);
* ``T = (W * r + 2**(b-1)) >> b`` (round half up; ``T <= W``; ``threshold_bits`` wide before the
  shift);
* with ``G(v) = sum of s_k * n_k over clusters with s_k > v`` (strictly greater), cluster ``j`` is
  selected iff ``T > 0`` and ``s_j > 0`` and ``G(s_j) < T``.

Equivalently: walk the distinct positive score values from the highest down with an accumulator
starting at 0; before each value, stop if the accumulator ``>= T``; otherwise select every cluster
with that score and add their ``s * n``. So the selected set is closed under "higher or equal
score" (ties are selected together), its weight reaches ``T`` (cumulative ``>= T``), and dropping
its lowest score value would fall below ``T``. ``T = 0`` (ratio 0, or ``W`` too small) selects
nothing; a zero score is never selected.
"""

import dataclasses
import math

import numpy as np

from model.reference.clustering import LeaderClusterer

__all__ = ["make_hyperplanes", "hash_keys", "check_score_inputs", "quantize_scores",
           "wicsum_threshold", "exact_wicsum", "wicsum_select", "check_wicsum_inputs", "ResvHead", "FrameStep",
           "cluster_summary"]

_HYPERPLANE_STREAM = 101


def make_hyperplanes(hash_bits, head_dim, seed, layer, kv_head):
    """Seeded Gaussian hyperplanes of one (layer, KV head): float64 (hash_bits, head_dim).

    The generator is ``np.random.default_rng(SeedSequence([seed, 101, layer, kv_head]))``.
    """
    for name, value, lowest in (("hash_bits", hash_bits, 1), ("head_dim", head_dim, 1),
                                ("seed", seed, 0), ("layer", layer, 0), ("kv_head", kv_head, 0)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
            raise TypeError(f"{name} must be an integer, not {value!r}")
        if value < lowest:
            raise ValueError(f"{name} must be an integer of at least {lowest}, not {value!r}")
    if hash_bits > 64:
        raise ValueError(f"hash_bits must be at most 64, not {hash_bits!r}")
    rng = np.random.default_rng(np.random.SeedSequence(
        [int(seed), _HYPERPLANE_STREAM, int(layer), int(kv_head)]))
    return rng.standard_normal((int(hash_bits), int(head_dim)))


def hash_keys(keys, hyperplanes):
    """Sign-random-projection hashes: bit ``i`` is ``keys @ hyperplanes[i] > 0`` (bit 0 = LSB).

    Parameters
    ----------
    keys : float array (n, head_dim)
    hyperplanes : float array (hash_bits, head_dim), hash_bits <= 64

    Returns
    -------
    uint64 array (n,)
    """
    keys = np.asarray(keys, dtype=np.float64)
    hyperplanes = np.asarray(hyperplanes, dtype=np.float64)
    if keys.ndim != 2 or hyperplanes.ndim != 2 or keys.shape[1] != hyperplanes.shape[1]:
        raise ValueError(f"keys (n, d) and hyperplanes (bits, d) must agree on d, not shapes "
                         f"{keys.shape} and {hyperplanes.shape}")
    if hyperplanes.shape[0] > 64:
        raise ValueError(f"at most 64 hyperplanes fit a uint64 hash, not {hyperplanes.shape[0]}")
    bits = (keys @ hyperplanes.T > 0).astype(np.uint64)
    weights = np.left_shift(np.uint64(1), np.arange(hyperplanes.shape[0], dtype=np.uint64))
    return (bits * weights).sum(axis=1, dtype=np.uint64)


def check_score_inputs(logits, score_bits):
    """Validate a score transform's inputs: ``(logits as float64, 2**score_bits - 1)``.

    Raises
    ------
    ValueError
        If ``score_bits`` is not an integer from 1 to 63.
    """
    if not isinstance(score_bits, (int, np.integer)) or not 1 <= score_bits <= 63:
        raise ValueError(f"score_bits must be an integer from 1 to 63, not {score_bits!r}")
    return np.asarray(logits, dtype=np.float64), (1 << int(score_bits)) - 1


def quantize_scores(logits, score_bits, head_dim):
    """Unsigned WTU scores of raw logits ``q . k_c``, softmax-like, per row.

    ``s = floor(exp((logit - rowmax) / sqrt(head_dim)) * (2**score_bits - 1) + 0.5)`` (round half
    up), clipped to ``[0, 2**score_bits - 1]``; the row maximum gets the largest score. Rows are
    the last-but-one axis (a 1-D input is one row).

    Returns
    -------
    uint64 array, the shape of ``logits``
    """
    logits, top = check_score_inputs(logits, score_bits)
    if logits.shape[-1] == 0:
        return np.zeros(logits.shape, dtype=np.uint64)
    scale = 1.0 / math.sqrt(head_dim)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    # exp(x * scale) * top + 0.5 < 1 below this cut: those scores are 0 without computing exp
    # (the margin keeps values near the cut on the exact path)
    live = shifted > math.log(0.5 / top) / scale - 1e-6
    scaled = np.exp(shifted[live] * scale)          # in (0, 1]: the result lies in [0, top]
    scaled *= top
    scaled += 0.5
    scores = np.zeros(logits.shape, dtype=np.uint64)
    scores[live] = np.clip(np.floor(scaled), 0, top).astype(np.uint64)
    return scores


def check_wicsum_inputs(scores, counts, config):
    """Validate WTU inputs against ``config``: shapes, ranges; returns int64 (or object) arrays.

    Raises
    ------
    ValueError
        Naming ``scores`` or ``counts`` and the allowed range.
    """
    scores = np.asarray(scores)
    counts = np.asarray(counts)
    if counts.ndim != 1 or scores.shape[-1:] != counts.shape:
        raise ValueError(f"scores (..., clusters) and counts (clusters,) must agree, not shapes "
                         f"{scores.shape} and {counts.shape}")
    if counts.size > config.max_clusters:
        raise ValueError(f"clusters must be at most max_clusters ({config.max_clusters}), "
                         f"not {counts.size}")
    for name, array, top in (("scores", scores, config.max_score),
                             ("counts", counts, config.max_count)):
        if array.size and array.dtype.kind not in "iu":
            raise ValueError(f"{name} must hold integers, not dtype {array.dtype}")
        if array.size and (array.min() < 0 or array.max() > top):
            raise ValueError(f"{name} must be from 0 to {top}, found {array.min()} to "
                             f"{array.max()}")
    dtype = np.int64 if config.threshold_bits <= 62 else object
    return scores.astype(dtype), counts.astype(dtype)


def wicsum_threshold(weighted_sum, config):
    """``T = (W * wicsum_ratio_code + 2**(wicsum_ratio_bits - 1)) >> wicsum_ratio_bits``."""
    bits = config.wicsum_ratio_bits
    return (weighted_sum * config.wicsum_ratio_code + (1 << (bits - 1))) >> bits


def exact_wicsum(scores_row, counts, config):
    """Exact WiCSum selection of one row (rule in the module docstring): bool mask (clusters,).

    Parameters
    ----------
    scores_row : unsigned integer array (clusters,)
    counts : unsigned integer array (clusters,)
    config : model.config.DREConfig
        ``score_bits``, ``count_bits``, ``max_clusters``, ``wicsum_ratio_code``,
        ``wicsum_ratio_bits``.

    Raises
    ------
    ValueError
        If a score, a count or the number of clusters is out of range for ``config``.
    """
    scores, counts = check_wicsum_inputs(scores_row, counts, config)
    if scores.ndim != 1:
        raise ValueError(f"scores_row must be 1-D, not shape {scores.shape}")
    weights = scores * counts
    threshold = wicsum_threshold(int(weights.sum()), config)
    selected = np.zeros(scores.size, dtype=bool)
    if threshold <= 0:
        return selected
    accumulated = 0
    for value in sorted({int(v) for v in scores if v > 0}, reverse=True):
        if accumulated >= threshold:
            break
        group = scores == value
        selected |= group
        accumulated += int(weights[group].sum())
    return selected


def wicsum_select(scores, counts, config):
    """Vectorised exact WiCSum of many rows: bool (rows, clusters), equal to :func:`exact_wicsum`
    on every row.

    Per row, the clusters are sorted by score (highest first); ``v*`` is the score at which the
    inclusive cumulative ``s * n`` first reaches ``T``; the selection is ``s_j >= v*`` (all ties
    of ``v*`` included), empty when ``T = 0``.
    """
    scores, counts = check_wicsum_inputs(scores, counts, config)
    return _select_rows(np.atleast_2d(scores), counts, config)


def _select_rows(scores, counts, config):
    """:func:`wicsum_select` on validated int64 (or object) arrays."""
    rows, clusters = scores.shape
    if clusters == 0:
        return np.zeros((rows, 0), dtype=bool)
    live = scores.any(axis=0)              # clusters with a zero score in every row: never
    if not live.all():                     # selected, left out of the sort
        selected = np.zeros((rows, clusters), dtype=bool)
        if live.any():
            selected[:, live] = _select_rows(scores[:, live], counts[live], config)
        return selected
    threshold = wicsum_threshold((scores * counts[None, :]).sum(axis=1), config)     # (rows,)
    if scores.dtype == object:  # widths beyond 62 bits: sort each row with Python integers
        order = np.argsort(-scores.astype(float), axis=1, kind="stable")
        ranked = np.take_along_axis(scores, order, axis=1)
        weights = ranked * counts[order]
    else:  # one sort of (score, cluster) keys per row, highest first
        index_bits = max(1, (clusters - 1).bit_length())
        keys = np.sort((scores << index_bits) | np.arange(clusters), axis=1)[:, ::-1]
        ranked = keys >> index_bits
        weights = ranked * counts[keys & ((1 << index_bits) - 1)]
    reached = np.cumsum(weights, axis=1) >= threshold[:, None]
    pivot = np.take_along_axis(ranked, reached.argmax(axis=1)[:, None], axis=1)     # v*
    return (threshold[:, None] > 0) & (scores >= pivot)


@dataclasses.dataclass
class FrameStep:
    """What ReSV did for one frame of one (layer, KV head).

    Members
    -------
    frame_tokens : int64 array
        Stream positions of the frame's tokens.
    cluster : int64 array
        Cluster of each of the frame's tokens; ``new`` and ``distance`` as in clustering.
    logits : float64 (rows, clusters)
        ``q . k_c`` for every query row and cluster representative.
    scores : uint64 (rows, clusters)
        Quantized scores.
    counts : uint64 (clusters,)
        Token counts clipped to ``max_count``.
    row_selected : bool (rows, clusters)
        WiCSum selection per row.
    selected : bool (clusters,)
        OR over rows.
    retrieved : bool (past_tokens,)
        Retrieved past tokens: members of selected clusters and the recent window.
    """

    frame_tokens: np.ndarray
    cluster: np.ndarray
    new: np.ndarray
    distance: np.ndarray
    logits: np.ndarray
    scores: np.ndarray
    counts: np.ndarray
    row_selected: np.ndarray
    selected: np.ndarray
    retrieved: np.ndarray


class ResvHead:
    """Incremental ReSV state of one (layer, KV head): HC table, key sums, token clusters.

    Parameters
    ----------
    config : model.config.DREConfig
    head_dim : int
    hyperplanes : float array (config.hash_bits, head_dim)
    capacity : int
        Tokens to preallocate for (grows when exceeded).
    """

    def __init__(self, config, head_dim, hyperplanes, capacity):
        self._cfg = config
        self._head_dim = int(head_dim)
        self._hyperplanes = np.asarray(hyperplanes, dtype=np.float64)
        if self._hyperplanes.shape != (config.hash_bits, self._head_dim):
            raise ValueError(f"hyperplanes must have shape ({config.hash_bits}, {head_dim}), "
                             f"not {self._hyperplanes.shape}")
        self._clusterer = LeaderClusterer(hamming_threshold=config.hamming_threshold,
                                          table_entries=config.hash_mem_entries,
                                          max_clusters=config.max_clusters)
        self._sums = np.zeros((config.max_clusters, self._head_dim))
        self._means = np.zeros((config.max_clusters, self._head_dim))
        self._counts = np.zeros(config.max_clusters, dtype=np.int64)
        self._token_cluster = np.zeros(int(capacity), dtype=np.int64)
        self._tokens = 0
        self._undo = None

    @property
    def tokens(self):
        """Tokens clustered so far."""
        return self._tokens

    @property
    def clusters(self):
        """Clusters opened so far."""
        return self._clusterer.opened

    @property
    def token_cluster(self):
        """Cluster of every token so far (a read-only view)."""
        return self._token_cluster[:self._tokens]

    @property
    def counts(self):
        """Token count of every cluster so far (a read-only view, not clipped)."""
        return self._counts[:self.clusters]

    def representatives(self):
        """Representative keys, the mean of each cluster's members: float64 (clusters, head_dim),
        a read-only view kept up to date incrementally."""
        return self._means[:self.clusters]

    def add_keys(self, keys):
        """Hash and cluster new tokens, update the key sums and means.

        Returns
        -------
        (cluster, new, distance)
            As :meth:`model.reference.clustering.LeaderClusterer.assign`.
        """
        keys = np.asarray(keys, dtype=np.float64)
        start = self._tokens
        if start + len(keys) > self._token_cluster.size:
            grown = np.zeros(max(2 * self._token_cluster.size, start + len(keys)), np.int64)
            grown[:start] = self._token_cluster[:start]
            self._token_cluster = grown
        snapshot = self._clusterer.snapshot()
        cluster, new, distance = self._clusterer.assign(hash_keys(keys, self._hyperplanes))
        touched = np.unique(cluster)
        self._undo = (snapshot, start, touched, self._sums[touched].copy(),
                      self._means[touched].copy(), self._counts[touched].copy())
        np.add.at(self._sums, cluster, keys)
        np.add.at(self._counts, cluster, 1)
        self._means[touched] = self._sums[touched] / self._counts[touched, None]
        self._token_cluster[start:start + len(keys)] = cluster
        self._tokens += len(keys)
        return cluster, new, distance

    def undo_last(self):
        """Forget the tokens of the last :meth:`add_keys` or :meth:`step` (once), exactly.

        Used to time or evaluate a frame without changing the state.
        """
        if self._undo is None:
            raise ValueError("undo_last: nothing to undo")
        snapshot, start, touched, sums, means, counts = self._undo
        self._clusterer.restore(snapshot)
        self._sums[touched], self._means[touched], self._counts[touched] = sums, means, counts
        self._tokens = start
        self._undo = None

    def step(self, keys, queries):
        """Process one frame: cluster its keys, score its queries, select and retrieve.

        Parameters
        ----------
        keys : float array (tokens_per_frame, head_dim)
            Post-RoPE keys of the frame's tokens.
        queries : float array (rows, head_dim)
            Post-RoPE queries of the frame (rows of all query heads of this KV head).

        Returns
        -------
        FrameStep
        """
        cfg = self._cfg
        past = self._tokens
        cluster, new, distance = self.add_keys(keys)
        logits = np.asarray(queries, dtype=np.float64) @ self.representatives().T
        scores = quantize_scores(logits, cfg.score_bits, self._head_dim)
        counts = np.minimum(self.counts, cfg.max_count)
        if cfg.threshold_bits <= 62:   # in range by construction: skip the input checks
            row_selected = _select_rows(scores.astype(np.int64), counts, cfg)
        else:
            row_selected = wicsum_select(scores, counts, cfg)
        counts = counts.astype(np.uint64)
        selected = row_selected.any(axis=0)
        retrieved = selected[self._token_cluster[:past]]
        retrieved[max(0, past - cfg.recent_window):] = True
        return FrameStep(np.arange(past, self._tokens, dtype=np.int64), cluster, new, distance,
                         logits, scores, counts, row_selected, selected, retrieved)


def cluster_summary(counts):
    """Statistics of cluster sizes: clusters, mean/median/max tokens per cluster."""
    counts = np.asarray(counts)
    if counts.size == 0:
        return {"clusters": 0, "tokens_per_cluster_mean": 0.0, "tokens_per_cluster_median": 0.0,
                "tokens_per_cluster_max": 0}
    return {"clusters": int(counts.size), "tokens_per_cluster_mean": float(counts.mean()),
            "tokens_per_cluster_median": float(np.median(counts)),
            "tokens_per_cluster_max": int(counts.max())}
