"""Bytes read from the offload store for a set of retrieved tokens, in two KV layouts.

The offload store (SSD or CPU memory) is read in whole granules (``store_granule_bytes``). Per
(layer, KV head), the keys and the values of the offloaded tokens are two arrays of
``head_dim * bytes_per_kv`` bytes per token (the *unit*); fetching a token reads the granules its
K and its V entries touch, and a granule shared by several fetched tokens is read once.

Token order (:func:`token_order_bytes`)
    Without the KV management unit the store keeps tokens in arrival order: fetched tokens that
    are not neighbours land in different granules.
Cluster-contiguous (:func:`cluster_layout_bytes`)
    The KVMU stores each cluster's offloaded tokens at contiguous addresses, clusters in opening
    order; the retrieval buffer twin (:func:`model.twins.retrieval_buffer.retrieve`) turns the
    selected clusters into merged fetch descriptors, which are read granule by granule.
"""

import numpy as np

from model.twins.retrieval_buffer import retrieve

__all__ = ["granule_bytes", "token_order_bytes", "cluster_layout_bytes"]


def granule_bytes(positions, unit_bytes, granule):
    """Bytes read to fetch the K and V units at ``positions`` of a store read in granules.

    Parameters
    ----------
    positions : int array
        Distinct positions of the fetched tokens in the store's order.
    unit_bytes : int
        Bytes of one token's K (and of its V) in one (layer, KV head).
    granule : int
        Bytes of one read granule; must divide ``unit_bytes`` or be a multiple of it.

    Returns
    -------
    int
        ``2 * granule * granules touched`` (K and V).
    """
    positions = np.asarray(positions, dtype=np.int64)
    if granule % unit_bytes and unit_bytes % granule:
        raise ValueError(f"store_granule_bytes ({granule}) must divide the {unit_bytes} bytes of "
                         f"a token's K or be a multiple of them")
    if granule <= unit_bytes:
        return 2 * int(positions.size) * unit_bytes
    per_granule = granule // unit_bytes
    return 2 * granule * int(np.unique(positions // per_granule).size)


def token_order_bytes(fetched, offloaded, unit_bytes, granule):
    """Store bytes of the fetched tokens among the first ``offloaded`` tokens, arrival order.

    Parameters
    ----------
    fetched : bool array (past,)
        Tokens the method fetches.
    offloaded : int
        The oldest ``offloaded`` past tokens are in the store, the rest in DRAM.

    Returns
    -------
    (int, int)
        Tokens read from the store and the bytes read.
    """
    positions = np.flatnonzero(np.asarray(fetched)[:offloaded])
    return int(positions.size), granule_bytes(positions, unit_bytes, granule)


def cluster_layout_bytes(config, token_cluster, selected, cluster_scores, offloaded, unit_bytes,
                         granule):
    """Store bytes of the selected clusters' offloaded tokens in the cluster-contiguous layout.

    Parameters
    ----------
    config : model.config.DREConfig
        The retrieval buffer's configuration (widths, mode).
    token_cluster : int array (past,)
        Cluster of every past token.
    selected : bool array (clusters,)
        Clusters the WTU selected.
    cluster_scores : uint array (clusters,)
        A score per cluster (the retrieval buffer's input; the dynamic mode keeps all selected).
    offloaded : int
        The oldest ``offloaded`` past tokens are in the store.

    Returns
    -------
    (int, int, int)
        Tokens read from the store, bytes read, and fetch descriptors.
    """
    clusters = len(selected)
    counts = np.bincount(np.asarray(token_cluster)[:offloaded], minlength=clusters)[:clusters]
    counts = counts.astype(np.uint64)
    base = np.cumsum(counts, dtype=np.uint64) - counts
    if counts.size and int(base[-1] + counts[-1]) > (1 << config.kv_token_bits):
        raise ValueError(f"{int(counts.sum())} offloaded tokens exceed the "
                         f"2**kv_token_bits = {1 << config.kv_token_bits} addresses of the "
                         f"configuration; use a larger kv_token_bits")
    if counts.size and int(counts.max()) > config.max_count:
        raise ValueError(f"a cluster of {int(counts.max())} offloaded tokens exceeds max_count "
                         f"({config.max_count}); use a larger count_bits")
    buffer = retrieve(config, selected, cluster_scores, base, counts)
    starts, lengths = buffer["desc_base"].astype(np.int64), buffer["desc_len"].astype(np.int64)
    if starts.size == 0:
        return 0, 0, 0
    positions = np.concatenate([np.arange(s, s + n) for s, n in zip(starts, lengths)])
    return int(positions.size), granule_bytes(positions, unit_bytes, granule), int(starts.size)
