"""Seeded input streams of the KV management unit (:mod:`model.twins.kvmu`).

A stream is the arrays of the KVMU's file interface for the frames of one (layer, KV head):
``new_tokens`` per frame, ``cluster`` and ``new`` per token, ``selected_offsets`` and
``selected_ids``, optionally ``restart``.

:func:`random_stream`
    synthetic assignments and selections (sizes and probabilities as parameters);
:func:`workload_stream`
    the streaming workload through the ReSV float model (:class:`model.reference.resv.ResvHead`):
    its cluster assignments and its WiCSum selection (OR over rows) per frame, plus what ReSV
    retrieved, for the end-to-end checks.
"""

import numpy as np

from model.reference.resv import ResvHead, make_hyperplanes
from model.stimulus.workload import WORKLOADS, StreamingWorkload

__all__ = ["random_stream", "workload_stream"]


def _offsets(groups):
    offsets = np.zeros(len(groups) + 1, dtype=np.uint64)
    offsets[1:] = np.cumsum([len(group) for group in groups])
    return offsets


def random_stream(config, rng, frames=8, *, max_tokens=None, new_probability=0.3,
                  select_probability=0.4, max_new_clusters=None):
    """A random stream of ``frames`` frames.

    Parameters
    ----------
    config : DREConfig
    rng : numpy.random.Generator
    frames : int
    max_tokens : int, optional
        Most new tokens per frame (default ``max_frame_tokens``).
    new_probability, select_probability : float
        Chance that a token opens a cluster, that a cluster is selected.
    max_new_clusters : int, optional
        Clusters opened at most (default ``max_clusters``).
    """
    max_tokens = max_tokens or config.max_frame_tokens
    limit = max_new_clusters or config.max_clusters
    new_tokens = rng.integers(1, max_tokens + 1, size=frames)
    cluster, new, selected, clusters = [], [], [], 0
    for count in new_tokens:
        for _ in range(count):
            opens = clusters == 0 or (clusters < limit and rng.random() < new_probability)
            cluster.append(clusters if opens else int(rng.integers(0, clusters)))
            new.append(opens)
            clusters += opens
        selected.append(np.flatnonzero(rng.random(clusters) < select_probability))
    return {"new_tokens": new_tokens.astype(np.uint64),
            "cluster": np.array(cluster, dtype=np.uint64), "new": np.array(new, dtype=bool),
            "selected_offsets": _offsets(selected),
            "selected_ids": np.concatenate(selected).astype(np.uint64)}


def workload_stream(config, frames, *, workload="tiny", layer=0, kv_head=0, seed=0):
    """The KVMU stream of one (layer, KV head) of the workload, from ReSV's float model.

    Returns
    -------
    tuple of (dict, list of numpy.ndarray)
        The stream's arrays, and per frame the past tokens ReSV retrieved (ascending indices:
        members of selected clusters and the recent window).

    Raises
    ------
    ValueError
        If the workload is unknown or its frames have more tokens than ``max_frame_tokens``.
    """
    if workload not in WORKLOADS:
        raise ValueError(f"workload must be one of {', '.join(WORKLOADS)}, not {workload!r}")
    wcfg = WORKLOADS[workload].replace(seed=int(seed), frames=int(frames))
    stream = StreamingWorkload(wcfg)
    if stream.tokens_per_frame > config.max_frame_tokens:
        raise ValueError(f"the workload {workload!r} has {stream.tokens_per_frame} tokens per "
                         f"frame but max_frame_tokens is {config.max_frame_tokens}")
    planes = make_hyperplanes(config.hash_bits, wcfg.head_dim, seed, layer, kv_head)
    head = ResvHead(config, wcfg.head_dim, planes, frames * stream.tokens_per_frame)
    cluster, new, selected, retrieved = [], [], [], []
    for frame in stream.stream(layer, kv_head, range(frames)):
        step = head.step(frame.keys, frame.queries)
        cluster.append(step.cluster)
        new.append(step.new)
        selected.append(np.flatnonzero(step.selected))
        retrieved.append(np.flatnonzero(step.retrieved))
    arrays = {"new_tokens": np.full(frames, stream.tokens_per_frame, dtype=np.uint64),
              "cluster": np.concatenate(cluster).astype(np.uint64),
              "new": np.concatenate(new).astype(bool),
              "selected_offsets": _offsets(selected),
              "selected_ids": np.concatenate(selected).astype(np.uint64)}
    return arrays, retrieved
