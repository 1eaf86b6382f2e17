"""Seeded input traces for the DRE block tests, cut from the workload and the ReSV float model.

Each function runs the streaming workload (:mod:`model.stimulus.workload`) through the ReSV float model
(:mod:`model.reference.resv`) for one (layer, KV head) and returns the arrays one block of the DRE sees:

:func:`hcu_trace`
    the key hashes in arrival order (HCU input);
:func:`wtu_trace`
    one frame's quantized scores per query row and the clipped token counts per cluster (WTU
    input);
:func:`buffer_trace`
    the OR-ed WiCSum selection, per-cluster scores (max over rows), and the cluster-contiguous
    layout (base address, count) of the retrieval buffer;
:func:`kvmu_trace`
    the stream of one (layer, KV head) for the KV management unit: tokens per frame, ReSV's
    cluster assignments and selected clusters per frame.

``frames=None`` takes as many frames of the workload as fit the configuration (clusters at most
``max_clusters``, tokens below ``2**kv_token_bits``); an explicit ``frames`` that does not fit
raises ValueError.
"""

import numpy as np

from model.reference.clustering import LeaderClusterer
from model.reference.resv import ResvHead, hash_keys, make_hyperplanes
from model.stimulus.kvmu_streams import workload_stream
from model.stimulus.workload import WORKLOADS, StreamingWorkload

__all__ = ["hcu_trace", "wtu_trace", "buffer_trace", "kvmu_trace", "dre_trace"]


def _workload(workload, frames, seed):
    if workload not in WORKLOADS:
        raise ValueError(f"workload must be one of {', '.join(WORKLOADS)}, not {workload!r}")
    wcfg = WORKLOADS[workload].replace(seed=int(seed))
    if frames is not None:
        if not isinstance(frames, int) or isinstance(frames, bool) or frames < 1:
            raise ValueError(f"frames must be a positive integer, not {frames!r}")
        wcfg = wcfg.replace(frames=frames)
    return StreamingWorkload(wcfg)


def _hashes(config, stream, seed, layer, kv_head):
    wcfg = stream.config
    planes = make_hyperplanes(config.hash_bits, wcfg.head_dim, seed, layer, kv_head)
    return hash_keys(stream.keys(layer, kv_head, wcfg.frames), planes), planes


def hcu_trace(config, frames=None, seed=0, layer=0, kv_head=0, workload="tiny"):
    """Key hashes of one (layer, KV head) in arrival order.

    Parameters
    ----------
    config : model.config.DREConfig
        ``hash_bits`` hyperplanes are used.
    frames : int, optional
        Frames of the workload (default: the preset's).
    seed, layer, kv_head : int
        Seed of the workload and of the hyperplanes; the stream to hash.
    workload : str
        A key of :data:`model.stimulus.workload.WORKLOADS`.

    Returns
    -------
    dict
        ``{"hashes": uint64 (tokens,)}``, each below ``2**hash_bits``.
    """
    stream = _workload(workload, frames, seed)
    hashes, _ = _hashes(config, stream, seed, layer, kv_head)
    return {"hashes": hashes}


def _fitting_frames(config, stream, seed, layer, kv_head, explicit):
    """Frames whose clusters fit ``max_clusters`` and whose tokens fit ``kv_token_bits``."""
    hashes, _ = _hashes(config, stream, seed, layer, kv_head)
    tpf = stream.tokens_per_frame
    clusterer = LeaderClusterer(hamming_threshold=config.hamming_threshold,
                                table_entries=config.hash_mem_entries,
                                max_clusters=1 << 30)
    token_limit = (1 << config.kv_token_bits) - 1
    for frame in range(stream.frames):
        clusterer.assign(hashes[frame * tpf:(frame + 1) * tpf])
        if clusterer.opened > config.max_clusters or clusterer.tokens > token_limit:
            if explicit:
                raise ValueError(
                    f"frames={stream.frames} does not fit the configuration: after frame {frame} "
                    f"there are {clusterer.opened} clusters (max_clusters {config.max_clusters}) "
                    f"and {clusterer.tokens} tokens (at most {token_limit} for kv_token_bits "
                    f"{config.kv_token_bits}); use fewer frames")
            if frame == 0:
                raise ValueError("not even one frame fits the configuration")
            return frame
    return stream.frames


def _resv_frame(config, frames, seed, layer, kv_head, workload, frame):
    stream = _workload(workload, frames, seed)
    wcfg = stream.config
    if wcfg.query_rows > config.max_rows:
        raise ValueError(f"the workload {workload!r} has {wcfg.query_rows} query rows per frame "
                         f"but max_rows is {config.max_rows}")
    fitting = _fitting_frames(config, stream, seed, layer, kv_head, frames is not None)
    if frame is None:
        frame = fitting - 1
    if not isinstance(frame, int) or not 0 <= frame < fitting:
        raise ValueError(f"frame must be an integer from 0 to {fitting - 1}, not {frame!r}")
    planes = make_hyperplanes(config.hash_bits, wcfg.head_dim, seed, layer, kv_head)
    head = ResvHead(config, wcfg.head_dim, planes, (frame + 1) * wcfg.tokens_per_frame)
    for current in stream.stream(layer, kv_head, range(frame + 1)):
        step = head.step(current.keys, current.queries)
    return step


def wtu_trace(config, frames=None, seed=0, layer=0, kv_head=0, workload="tiny", frame=None):
    """One frame's WTU problem: quantized scores per query row and clipped counts per cluster.

    The cache of frames ``0..frame`` (inclusive, default: the last frame that fits) is clustered
    with :func:`model.reference.clustering.leader_cluster` rules (``hamming_threshold``,
    ``hash_mem_entries``, ``max_clusters``); a cluster's representative key is the mean of its
    members' keys; the frame's query rows are scored and quantized to ``score_bits``; counts are
    clipped to ``max_count``.

    Returns
    -------
    dict
        ``{"scores": uint64 (rows, clusters), "counts": uint64 (clusters,)}``.

    Raises
    ------
    ValueError
        If the workload's query rows exceed ``max_rows`` or ``frames`` does not fit.
    """
    step = _resv_frame(config, frames, seed, layer, kv_head, workload, frame)
    return {"scores": step.scores, "counts": step.counts}


def buffer_trace(config, frames=None, seed=0, layer=0, kv_head=0, workload="tiny", frame=None):
    """One frame's retrieval-buffer input in the cluster-contiguous layout.

    Returns
    -------
    dict
        ``selected`` bool (clusters,), OR over the rows of the exact WiCSum selection;
        ``scores`` uint64 (clusters,), the maximum over rows of the quantized scores;
        ``count`` uint64 (clusters,), clipped token counts;
        ``base`` uint64 (clusters,), exclusive prefix sum of ``count`` in cluster-id order.
    """
    step = _resv_frame(config, frames, seed, layer, kv_head, workload, frame)
    counts = step.counts
    base = (np.cumsum(counts, dtype=np.uint64) - counts).astype(np.uint64)
    return {"selected": step.selected, "scores": step.scores.max(axis=0).astype(np.uint64),
            "base": base, "count": counts.astype(np.uint64)}


def kvmu_trace(config, frames=None, seed=0, layer=0, kv_head=0, workload="tiny"):
    """The KV management unit's stream of one (layer, KV head): every frame of the workload
    (default: as many as fit, see the module docstring), through ReSV's float model.

    Returns
    -------
    dict
        The input arrays of :mod:`model.twins.kvmu` (see
        :func:`model.stimulus.kvmu_streams.workload_stream`).
    """
    stream = _workload(workload, frames, seed)
    fitting = _fitting_frames(config, stream, seed, layer, kv_head, frames is not None)
    arrays, _ = workload_stream(config, fitting, workload=workload, layer=layer,
                                kv_head=kv_head, seed=seed)
    return arrays


def dre_trace(frames, seed=0, workload="tiny", layers=None, kv_heads=None):
    """A KV dump (the arrays of :mod:`model.stimulus.kvdump`) of the workload's first ``frames``
    frames, for the DRE's file interface (``python -m sim.run dre``).

    Parameters
    ----------
    frames : int
    seed : int
    workload : str
    layers, kv_heads : int, optional
        Only the first ``layers`` layers and ``kv_heads`` KV heads (default: all).
    """
    stream = _workload(workload, frames, seed)
    wcfg = stream.config
    layer_ids = range(wcfg.layers if layers is None else layers)
    head_ids = range(wcfg.kv_heads if kv_heads is None else kv_heads)
    return {
        "keys": np.array([[stream.keys(l, h, frames) for h in head_ids] for l in layer_ids]),
        "values": np.array([[stream.values(l, h, frames) for h in head_ids] for l in layer_ids]),
        "frame_of_token": stream.frame_of_token(),
        "queries": np.array([[[stream.queries(l, h, f) for f in range(frames)] for h in head_ids]
                             for l in layer_ids]),
    }
