"""The DRE's cycles for the system model, composed from the block twins.

The DRE top (its frame twin) does not exist yet, so one retrieval problem (one layer, KV head and
frame of one stream) is timed by running the three block twins one after the other, the way the
blocks hand data to each other:

1. the HCU (:func:`model.twins.hcu.hash_cluster`) clusters the frame's token hashes against the
   cluster hashes of its table;
2. the WTU (:func:`model.twins.wtu.wtu_problem`) thresholds the frame's query rows against every
   cluster (the scores come from the LXE);
3. the retrieval buffer (:func:`model.twins.retrieval_buffer.retrieve`) turns the selected
   clusters into fetch descriptors of the cluster-contiguous layout.

:func:`problem_cycles` is the one place a frame twin of the DRE top will replace. Its
assumptions: the three blocks run back to back (no overlap between them inside a problem); the
WTU's time is its counts load, every row's load, decide, refinement and bitmask emission, and the
aggregate stream (the components its twin reports); the HCU's time is the sum of the frame's
tokens' ``cycles`` (intervals between assignments) when its table holds the clusters the
stream has opened so far. The HCU twin starts from an empty table, so the table is rebuilt by
replaying the hashes of the clusters it holds (their leaders, in opening order: each opens its
cluster again, in the same slot order) before the frame's hashes; the frame's assignments are
then exactly those of the whole stream (checked), and only the HCU pipeline at the frame's first
token differs (it holds the replay's last tokens instead of the previous frame's).

:func:`frame_cycles` spreads the problems of one layer over the DREs (one per core) and adds the
layers: ``sum over layers of ceil(kv_heads * batch / cores) * cycles of the layer's problem``.
"""

import math

import numpy as np

from model.twins.hcu import hash_cluster
from model.twins.retrieval_buffer import retrieve
from model.twins.wtu import wtu_problem

__all__ = ["problem_cycles", "frame_cycles", "table_leaders"]


def table_leaders(config, token_cluster, clusters):
    """Indices of the leader tokens of the clusters in the HCU table, in opening order.

    Parameters
    ----------
    config : model.config.DREConfig
        ``hash_mem_entries`` is the table size.
    token_cluster : int array (tokens,)
        Cluster of every past token (clusters numbered in opening order).
    clusters : int
        Clusters opened by the past tokens.

    Returns
    -------
    int64 array
        The first token of each of the ``min(clusters, hash_mem_entries)`` most recent clusters.
    """
    ids, first = np.unique(np.asarray(token_cluster), return_index=True)
    if ids.size != clusters or (clusters and ids[-1] != clusters - 1):
        raise ValueError(f"token_cluster must number its {clusters} clusters 0 to "
                         f"{clusters - 1} in opening order")
    return first[max(0, clusters - config.hash_mem_entries):].astype(np.int64)


def problem_cycles(config, table_hashes, frame_hashes, scores, counts):
    """DRE cycles of one retrieval problem, from the block twins (the module's composition).

    Parameters
    ----------
    config : model.config.DREConfig
    table_hashes : uint array
        Hashes of the clusters in the HCU table, in opening order (at most ``hash_mem_entries``).
    frame_hashes : uint array
        Hashes of the frame's tokens, in arrival order.
    scores : uint array (rows, clusters)
        The frame's quantized scores against every cluster (the frame's own clusters included).
    counts : uint array (clusters,)
        Token count of every cluster, clipped to ``max_count``.

    Returns
    -------
    dict
        ``hcu``, ``wtu``, ``buffer`` and ``total`` cycles; ``cluster`` (the frame's tokens'
        clusters numbered from the first table cluster), ``selected`` (the WTU's selection) and
        ``descriptors`` (fetch descriptors of the buffer).

    Raises
    ------
    ValueError
        If an input does not fit ``config`` (the twins' messages).
    """
    table_hashes = np.asarray(table_hashes, dtype=np.uint64)
    if table_hashes.size > config.hash_mem_entries:
        raise ValueError(f"table_hashes must hold at most hash_mem_entries "
                         f"({config.hash_mem_entries}) hashes, not {table_hashes.size}")
    frame_hashes = np.asarray(frame_hashes, dtype=np.uint64)
    hcu = hash_cluster(config, np.concatenate([table_hashes, frame_hashes]))
    replay = table_hashes.size
    if not hcu["new"][:replay].all():
        raise ValueError("table_hashes must be the leaders of distinct clusters: one of them "
                         "joined an earlier one")
    hcu_cycles = int(hcu["cycles"][replay:].sum())
    wtu = wtu_problem(config, scores, counts)
    wtu_cycles = int(wtu["count_cycles"].sum() + wtu["cycles"].sum() + wtu["emit_cycles"].sum()
                     + wtu["aggregate_cycles"].sum())
    counts = np.asarray(counts, dtype=np.uint64)
    base = np.cumsum(counts, dtype=np.uint64) - counts
    buffer = retrieve(config, wtu["selected"], np.asarray(scores).max(axis=0), base, counts)
    return {"hcu": hcu_cycles, "wtu": wtu_cycles, "buffer": int(buffer["cycles"]),
            "total": hcu_cycles + wtu_cycles + int(buffer["cycles"]),
            "cluster": hcu["cluster"][replay:].astype(np.int64), "selected": wtu["selected"],
            "descriptors": int(buffer["desc_base"].size)}


def frame_cycles(layer_problem_cycles, kv_heads, batch, cores):
    """DRE cycles of one frame of a batch: the problems of a layer spread over ``cores`` DREs.

    Parameters
    ----------
    layer_problem_cycles : sequence of float
        Cycles of one problem of each layer.
    kv_heads, batch, cores : int
        Problems per layer are ``kv_heads * batch``, run ``cores`` at a time.

    Returns
    -------
    float
        ``sum(ceil(kv_heads * batch / cores) * cycles)`` over the layers.
    """
    for name, value in (("kv_heads", kv_heads), ("batch", batch), ("cores", cores)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive integer, not {value!r}")
    rounds = math.ceil(kv_heads * batch / cores)
    return float(rounds * sum(layer_problem_cycles))
