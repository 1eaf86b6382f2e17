"""Leader clustering of hash codes by Hamming distance: the reference rule of ReSV's HCU.

ReSV groups post-RoPE keys whose sign-random-projection hashes are close in Hamming distance
(V-Rex, arXiv 2512.12284; the tie-break and the table are this project's decisions). This module
fixes the rule every other part of the project (the float model, the traces, the HCU twin and the
RTL) must agree on:

* Tokens are processed strictly in arrival order.
* Each token's hash is compared (XOR, popcount) with the hash of every cluster currently in the
  table. It joins the cluster at the **smallest** distance that is strictly below
  ``hamming_threshold``; ties go to the **lowest cluster id**.
* Otherwise it opens a new cluster whose hash is this token's hash (leader clustering: a cluster's
  hash never changes). Cluster ids are 0, 1, 2, ... in order of opening.
* The table holds the ``table_entries`` most recently opened clusters (clustering runs within the
  recent part of the cache): it is a ring buffer, cluster ``c`` lives in slot
  ``c % table_entries``, so opening a cluster when the table is full evicts the oldest one and a
  token only ever compares with clusters ``id >= opened - table_entries``.
* Opening more than ``max_clusters`` clusters in total is an error.

Speed: a call to :meth:`LeaderClusterer.assign` compares the whole block of new hashes with the
whole table in one vectorised step, then walks the tokens in order in Python with scalar work only
for the clusters opened inside the block (and recomputes one row in the rare case that the best
existing match of a token was evicted inside the block). Large inputs are processed in blocks of
:data:`BLOCK_TOKENS`. 40K tokens against 1024 entries take a fraction of a second.
"""

import numpy as np

__all__ = ["LeaderClusterer", "leader_cluster", "hamming_distance", "BLOCK_TOKENS"]

#: Tokens compared with the table in one vectorised step by :func:`leader_cluster`.
BLOCK_TOKENS = 32

_NO_MATCH = np.iinfo(np.int64).max


def _positive_int(name, value):
    if not isinstance(value, (int, np.integer)) or isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a positive integer, not {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be a positive integer, not {value!r}")
    return int(value)


def _as_hashes(hashes):
    array = np.asarray(hashes)
    if array.ndim != 1:
        raise ValueError(f"hashes must be a 1-D array, not shape {array.shape}")
    if array.size and array.dtype.kind not in "iu":
        raise TypeError(f"hashes must be an integer array, not dtype {array.dtype}")
    if array.size and array.dtype.kind == "i" and array.min() < 0:
        raise ValueError(f"hashes must be non-negative, found {array.min()}")
    return array.astype(np.uint64)


def hamming_distance(a, b):
    """Hamming distance (popcount of XOR) of unsigned 64-bit hashes, broadcast, as ``int64``."""
    return np.bitwise_count(np.bitwise_xor(np.asarray(a, np.uint64), np.asarray(b, np.uint64))
                            ).astype(np.int64)


class LeaderClusterer:
    """Incremental leader clustering: the HC table's hash part, fed one frame at a time.

    Parameters
    ----------
    hamming_threshold : int
        A token joins a cluster whose hash differs in fewer than this many bits.
    table_entries : int
        Clusters kept in the table (the most recently opened ones, ring buffer).
    max_clusters : int
        Most clusters that may be opened in total.

    Members
    -------
    opened : int
        Clusters opened so far (the next cluster id).
    tokens : int
        Tokens assigned so far.

    Raises
    ------
    TypeError, ValueError
        If a parameter is not a positive integer.
    """

    def __init__(self, *, hamming_threshold, table_entries, max_clusters):
        self._threshold = _positive_int("hamming_threshold", hamming_threshold)
        self._entries = _positive_int("table_entries", table_entries)
        self._max_clusters = _positive_int("max_clusters", max_clusters)
        self._table = np.zeros(self._entries, dtype=np.uint64)
        self._opened = 0
        self._tokens = 0

    @property
    def hamming_threshold(self):
        return self._threshold

    @property
    def table_entries(self):
        return self._entries

    @property
    def max_clusters(self):
        return self._max_clusters

    @property
    def opened(self):
        return self._opened

    @property
    def tokens(self):
        return self._tokens

    def snapshot(self):
        """The whole state (a copy), for :meth:`restore`."""
        return self._table.copy(), self._opened, self._tokens

    def restore(self, snapshot):
        """Return to a state taken by :meth:`snapshot`."""
        table, opened, tokens = snapshot
        self._table, self._opened, self._tokens = table.copy(), opened, tokens

    def table(self):
        """The clusters in the table: ``(ids, hashes)`` sorted by id (copies)."""
        first_id = max(0, self._opened - self._entries)
        ids = np.arange(first_id, self._opened, dtype=np.int64)
        return ids, self._table[ids % self._entries].copy()

    def assign(self, hashes):
        """Cluster a block of new tokens (in arrival order) and update the table.

        Parameters
        ----------
        hashes : array of unsigned integers, shape (n,)
            Hashes of the new tokens.

        Returns
        -------
        cluster : int64 array (n,)
            Cluster id of each token.
        new : bool array (n,)
            Whether the token opened its cluster.
        distance : int64 array (n,)
            Hamming distance to the joined cluster's hash, 0 for a new cluster.

        Raises
        ------
        ValueError
            If more than ``max_clusters`` clusters would be opened; the state is then unchanged.
        """
        hashes = _as_hashes(hashes)
        n = hashes.size
        table, opened = self._table.copy(), self._opened
        cluster = np.empty(n, dtype=np.int64)
        new = np.zeros(n, dtype=bool)
        distance = np.zeros(n, dtype=np.int64)
        for start in range(0, n, BLOCK_TOKENS):
            opened = self._assign_block(hashes[start:start + BLOCK_TOKENS], table, opened,
                                        cluster[start:], new[start:], distance[start:],
                                        self._tokens + start)
        self._table, self._opened = table, opened
        self._tokens += n
        return cluster, new, distance

    def _best_existing(self, hashes, table, opened):
        """Best ``distance << 32 | id`` per hash over the current table, ``_NO_MATCH`` if none."""
        entries = self._entries
        if opened <= entries:
            by_id, first_id = table[:opened], 0
        else:  # ring buffer: the oldest cluster lives in slot opened % entries
            by_id, first_id = np.roll(table, -(opened % entries)), opened - entries
        if by_id.size == 0:
            return np.full(hashes.size, _NO_MATCH, dtype=np.int64)
        dist = np.bitwise_count(hashes[:, None] ^ by_id[None, :])
        first = dist.argmin(axis=1)  # first occurrence of the minimum: the lowest id
        best = dist[np.arange(hashes.size), first].astype(np.int64)
        key = (best << 32) | (first + first_id)
        return np.where(best < self._threshold, key, _NO_MATCH)

    def _assign_block(self, hashes, table, opened, cluster, new, distance, first_token):
        threshold, entries = self._threshold, self._entries
        best = self._best_existing(hashes, table, opened)
        first_new = opened                    # clusters >= first_new were opened in this block
        new_hashes = []                       # Python ints, hash of cluster first_new + i
        for t, h in enumerate(hashes.tolist()):
            key = int(best[t])
            if key != _NO_MATCH and (key & 0xFFFFFFFF) < opened - entries:
                # the best existing match was evicted inside this block: compare again
                key = int(self._best_existing(hashes[t:t + 1], table, opened)[0])
            oldest_alive = max(first_new, opened - entries)
            for c in range(oldest_alive, opened):
                d = (h ^ new_hashes[c - first_new]).bit_count()
                if d < threshold and (d << 32 | c) < key:
                    key = d << 32 | c
            if key == _NO_MATCH:
                if opened >= self._max_clusters:
                    raise ValueError(f"max_clusters exceeded: token {first_token + t} would open "
                                     f"cluster {opened + 1} but at most {self._max_clusters} "
                                     f"clusters may be opened")
                slot = opened % entries
                table[slot] = h
                new_hashes.append(h)
                cluster[t], new[t], distance[t] = opened, True, 0
                opened += 1
            else:
                cluster[t], distance[t] = key & 0xFFFFFFFF, key >> 32
        return opened


def leader_cluster(hashes, hamming_threshold, table_entries, max_clusters):
    """Leader clustering of a whole hash sequence (see the module docstring for the rule).

    Parameters
    ----------
    hashes : array of unsigned integers, shape (n,)
        Token hashes in arrival order.
    hamming_threshold, table_entries, max_clusters : int
        See :class:`LeaderClusterer`.

    Returns
    -------
    cluster : int64 array (n,), new : bool array (n,), distance : int64 array (n,)
        As :meth:`LeaderClusterer.assign`.
    """
    clusterer = LeaderClusterer(hamming_threshold=hamming_threshold, table_entries=table_entries,
                                max_clusters=max_clusters)
    return clusterer.assign(hashes)
