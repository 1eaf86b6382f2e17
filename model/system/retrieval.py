"""Retrieval measured on a workload or a KV dump at each cache size, for the system model.

For each sampled (layer, KV head) the stream is replayed frame by frame through the ReSV float
model (:class:`model.reference.resv.ResvHead`). At each cache size ``n`` the first
``frames_per_size`` frames whose past cache holds at least ``n`` tokens (and that have queries)
are evaluated: ReSV's retrieved past tokens (selected clusters plus the recent window), its
attention recall, the clusters, and the same problem solved by the peers' rules
(:mod:`model.evaluation.baselines`): InfiniGen with its own budget, ReKV at the paper's ratio
(58.4% of the past tokens; the project's ReKV rule picks which frames). For the first
``dre_heads`` sampled heads, the DRE's cycles of the problem come from the DRE's frame twin
(:class:`model.system.dre.StreamCycles`, which runs every frame of the stream through it).

A :class:`Sample` keeps the masks, so the system model can lay the fetched tokens out for any
number of DRAM-resident tokens (:mod:`model.system.layout`).
"""

import dataclasses
import time

import numpy as np

from model.evaluation.baselines import RetrievalProblem, infinigen, rekv
from model.evaluation.metrics import FrameAttention
from model.reference.resv import ResvHead, hash_keys, make_hyperplanes
from model.system.dre import StreamCycles
from model.system.layout import cluster_layout_bytes, token_order_bytes

__all__ = ["Sample", "RetrievalProfile", "measure", "spread", "PAPER_RATIOS", "METHOD_MASKS"]

#: Retrieval ratios during frame processing reported by the paper (../shared/PAPER.md section 2).
PAPER_RATIOS = {"resv": 0.327, "rekv": 0.584, "infinigen": 0.508}

#: Which measured mask each system-model method fetches.
METHOD_MASKS = {"offload": "full", "rekv": "rekv", "infinigen": "infinigen",
                "resv_lxe": "resv", "resv_dre": "resv", "vrex": "resv"}


@dataclasses.dataclass
class Sample:
    """One evaluated (layer, KV head, frame).

    Members
    -------
    layer, kv_head, frame, past, cache_tokens : int
        Where, the past tokens before the frame, and the cache size it stands for.
    masks : dict of str to bool array (past,)
        Past tokens fetched by ``resv``, ``rekv`` and ``infinigen``.
    token_cluster : int64 array (past,)
        Cluster of every past token.
    selected : bool array (clusters,)
        ReSV's selected clusters (OR over the rows).
    cluster_scores : uint64 array (clusters,)
        Maximum quantized score over the rows.
    clusters, table_entries, frame_tokens : int
        Clusters scored, clusters in the HCU table at the frame's start, tokens of the frame.
    row_selected : int64 array (rows,)
        Clusters each row selected.
    recall : float
        Share of the full-cache attention mass (over past and frame tokens) on ReSV's set.
    dre : dict or None
        :meth:`model.system.dre.StreamCycles.frame` of the problem.
    """

    layer: int
    kv_head: int
    frame: int
    past: int
    cache_tokens: int
    masks: dict
    token_cluster: np.ndarray
    selected: np.ndarray
    cluster_scores: np.ndarray
    clusters: int
    table_entries: int
    frame_tokens: int
    row_selected: np.ndarray
    recall: float
    dre: dict = None
    _reads: dict = dataclasses.field(default_factory=dict, repr=False)

    def ratio(self, mask):
        """Share of the past tokens fetched by ``mask`` (``full``: 1)."""
        return 1.0 if mask == "full" else float(self.masks[mask].mean())

    def store_read(self, mask, offloaded, unit_bytes, granule, config, clustered):
        """Tokens, bytes and descriptors read from the store for ``mask`` (``full``: all).

        ``clustered`` selects the KVMU's cluster-contiguous layout (``resv`` only); otherwise
        the store is in arrival order and each run of fetched tokens is one descriptor.
        """
        offloaded = max(0, min(offloaded, self.past))
        key = (mask, offloaded, unit_bytes, granule, clustered)
        if key not in self._reads:
            self._reads[key] = self._store_read(mask, offloaded, unit_bytes, granule, config,
                                                clustered)
        return self._reads[key]

    def _store_read(self, mask, offloaded, unit_bytes, granule, config, clustered):
        if clustered:
            return cluster_layout_bytes(config, self.token_cluster, self.selected,
                                        self.cluster_scores, offloaded, unit_bytes, granule)
        fetched = (np.ones(self.past, bool) if mask == "full" else self.masks[mask])
        tokens, read = token_order_bytes(fetched, offloaded, unit_bytes, granule)
        head = fetched[:offloaded]
        runs = int(np.count_nonzero(np.diff(head.astype(np.int8), prepend=0) == 1))
        return tokens, read, runs


@dataclasses.dataclass
class RetrievalProfile:
    """Every sample of a measurement and how it was made.

    Members
    -------
    samples : list of Sample
    cache_tokens : tuple of int
    layers, kv_heads : tuple of int
        The sampled layers and KV heads.
    source : str
    note : str
        What was sampled, for the report.
    runtime_s : float
    """

    samples: list
    cache_tokens: tuple
    layers: tuple
    kv_heads: tuple
    source: str
    note: str
    runtime_s: float

    def at(self, cache_tokens, layer=None):
        """Samples of one cache size (and one sampled layer)."""
        return [s for s in self.samples if s.cache_tokens == cache_tokens
                and (layer is None or s.layer == layer)]

    def summary(self):
        """Per cache size: mean ratios (per layer, per ``layer/kv_head``), recall, clusters, DRE
        cycles (JSON-ready)."""
        rows = []
        for size in self.cache_tokens:
            here = self.at(size)
            dre = [s.dre for s in here if s.dre is not None]
            rows.append({
                "cache_tokens": size, "samples": len(here),
                "past_tokens_mean": float(np.mean([s.past for s in here])),
                "ratio": {m: float(np.mean([s.ratio(m) for s in here]))
                          for m in ("resv", "rekv", "infinigen")},
                "resv_ratio_per_layer": {str(layer): float(np.mean(
                    [s.ratio("resv") for s in self.at(size, layer)])) for layer in self.layers},
                "resv_ratio_per_head": {f"{s.layer}/{s.kv_head}": float(np.mean(
                    [t.ratio("resv") for t in here if (t.layer, t.kv_head) ==
                     (s.layer, s.kv_head)])) for s in here},
                "resv_recall": float(np.mean([s.recall for s in here])),
                "clusters_mean": float(np.mean([s.clusters for s in here])),
                "selected_clusters_mean": float(np.mean([s.selected.sum() for s in here])),
                "dre_problems_timed": len(dre),
                "dre_cycles": {part: float(np.mean([d[part] for d in dre]))
                               for part in ("hcu", "kvmu", "wtu", "top", "total")} if dre else None,
            })
        return rows


def spread(count, total):
    """``count`` indices evenly spread over ``range(total)`` (first and last included)."""
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise ValueError(f"count must be a positive integer, not {count!r}")
    return tuple(int(i) for i in np.unique(np.round(np.linspace(0, total - 1, min(count,
                                                                                   total)))))


def _plan(source, cache_tokens, frames_per_size):
    """Frame -> cache size: the first frames with queries whose past reaches each size."""
    starts = source.frame_starts
    plan = {}
    for size in cache_tokens:
        frames = [int(f) for f in source.query_frames if starts[f] >= size and int(f) not in plan]
        if not frames:
            raise ValueError(f"{source.source}: no frame with queries has {size} past tokens "
                             f"(the stream holds {source.tokens} tokens); use smaller cache sizes")
        for frame in frames[:frames_per_size]:
            plan[frame] = size
    return plan


def _measure_head(source, config, layer, kv_head, plan, seed, with_dre):
    keys = source.keys(layer, kv_head)
    planes = make_hyperplanes(config.hash_bits, source.head_dim, seed, layer, kv_head)
    last = max(plan)
    starts = source.frame_starts
    hashes = hash_keys(keys[:starts[last + 1]], planes) if with_dre else None
    head = ResvHead(config, source.head_dim, planes, int(starts[last + 1]))
    stream = StreamCycles(config, layer, kv_head) if with_dre else None
    samples = []
    for frame in range(last + 1):
        begin, end = int(starts[frame]), int(starts[frame + 1])
        if frame not in plan:
            head.add_keys(keys[begin:end])
            if stream:
                stream.frame(hashes[begin:end])
            continue
        queries = source.queries(layer, kv_head, frame)
        if queries.shape[0] > config.max_rows:
            raise ValueError(f"{source.source}: {queries.shape[0]} query rows per frame exceed "
                             f"max_rows ({config.max_rows}) of the DRE configuration")
        clusters_before = head.clusters
        step = head.step(keys[begin:end], queries)
        problem = RetrievalProblem(keys[:begin], queries, source.frame_of_token[:begin],
                                   int(round(PAPER_RATIOS["rekv"] * begin)), config.recent_window)
        values = source.values(layer, kv_head)
        attention = FrameAttention(queries, keys[:begin], values[:begin], keys[begin:end],
                                   values[begin:end])
        dre = None
        if stream:
            timed = plan[frame] not in {s.cache_tokens for s in samples if s.dre}
            dre = stream.frame(hashes[begin:end], step if timed else None)
        samples.append(Sample(
            layer=layer, kv_head=kv_head, frame=frame, past=begin, cache_tokens=plan[frame],
            masks={"resv": step.retrieved, "rekv": rekv(problem), "infinigen": infinigen(problem)},
            token_cluster=head.token_cluster[:begin].copy(), selected=step.selected.copy(),
            cluster_scores=step.scores.max(axis=0).astype(np.uint64), clusters=head.clusters,
            table_entries=min(clusters_before, config.hash_mem_entries),
            frame_tokens=end - begin, row_selected=step.row_selected.sum(axis=1),
            recall=float(attention.evaluate(step.retrieved, config.recent_window)["recall"]),
            dre=dre))
    return samples


def measure(source, config, cache_tokens, *, layers=4, kv_heads=2, frames_per_size=2,
            dre_heads=2, seed=0, progress=None):
    """Run ReSV and the peers on ``source`` at each cache size.

    Parameters
    ----------
    source : model.main.WorkloadSource or model.stimulus.kvdump.KVDump
    config : model.config.DREConfig
    cache_tokens : sequence of int
        Cache sizes, increasing.
    layers, kv_heads : int
        Layers and KV heads sampled, evenly spread.
    frames_per_size : int
        Frames evaluated per cache size and sampled head.
    dre_heads : int
        Sampled heads (in order) whose problems are also timed by the DRE's block twins
        (one frame per cache size each; 0 for none).
    seed : int
        Seed of the hyperplanes.
    progress : callable or None
        Called with a line of text after each head.

    Returns
    -------
    RetrievalProfile
    """
    sizes = tuple(int(size) for size in cache_tokens)
    if not sizes or any(size < 1 for size in sizes) or list(sizes) != sorted(set(sizes)):
        raise ValueError(f"cache_tokens must be increasing positive integers, not {sizes!r}")
    for name, value, lowest in (("frames_per_size", frames_per_size, 1),
                                ("dre_heads", dre_heads, 0)):
        if not isinstance(value, int) or isinstance(value, bool) or value < lowest:
            raise ValueError(f"{name} must be an integer of at least {lowest}, not {value!r}")
    started = time.perf_counter()
    plan = _plan(source, sizes, frames_per_size)
    chosen_layers = spread(layers, source.layers)
    chosen_heads = spread(kv_heads, source.kv_heads)
    samples = []
    for index, (layer, head) in enumerate((l, h) for l in chosen_layers for h in chosen_heads):
        samples += _measure_head(source, config, layer, head, plan, seed, index < dre_heads)
        if progress:
            ratios = [np.mean([s.ratio("resv") for s in samples[-len(plan):]
                               if s.cache_tokens == size]) for size in sizes]
            progress(f"layer {layer}, KV head {head}: ReSV retrieves "
                     f"{', '.join(f'{100 * r:.1f}%' for r in ratios)} of the past tokens "
                     f"({time.perf_counter() - started:.1f} s)")
    note = (f"{source.source}: layers {list(chosen_layers)} of {source.layers}, KV heads "
            f"{list(chosen_heads)} of {source.kv_heads}, {frames_per_size} frame(s) per cache "
            f"size; DRE block twins on {min(dre_heads, len(chosen_layers) * len(chosen_heads))} "
            f"head(s), one frame per size")
    return RetrievalProfile(samples, sizes, chosen_layers, chosen_heads, source.source, note,
                            time.perf_counter() - started)
