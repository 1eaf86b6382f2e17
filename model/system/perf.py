"""Frame latency, KV traffic and energy of one batch step on a V-Rex system.

One *step* processes one new frame of each of ``batch`` streams, each with ``cache_tokens``
cached tokens. Its parts, in order (the paper's iterative prefill):

1. **Vision encoder and projector** of every stream's frame.
2. **32 decoder layers.** A layer's LXE work runs as phases, each timed by a roofline over the
   engines it uses, ``max(DPE FLOPs / DPE peak, VPE ops / VPE peak, DRAM bytes / sustained DRAM
   bandwidth)``, phases one after the other (the LXE runs one kernel at a time, our assumption):

   * *linear*: QKV, O and FFN, weights streamed once per step and shared by the batch; norms,
     RoPE and SwiGLU on the VPE;
   * *attention*: the frame's query rows against its own tokens and the fetched past tokens
     (read from DRAM), softmax on the VPE; the frame's new K/V written to DRAM;
   * *prediction on the LXE*: the parts of KV prediction the LXE does (ReSV: hash projections,
     scores against the cluster representatives; ``resv_lxe`` also clusters and thresholds on
     the VPE; ReKV and InfiniGen: their scores and top-k sorts).

   Beside the LXE, two resources work on the *next* layer (the paper's overlap): the **DRE**
   predicts its KV set (``resv_dre``, ``vrex``: :func:`model.system.dre.frame_cycles`) and the
   **link** fetches it from the offload store (plus the evicted tokens written to the store).
   A layer takes ``max(LXE, link, DRE)``; the first layer's prediction and fetch are exposed
   once (pipeline fill). Once a stream's cache exceeds its resident tokens, every frame evicts
   as many tokens as it adds: read from DRAM, written over the link to the store (with the
   KVMU into their clusters' ranges; the reorder costs no bytes beyond the write, our
   assumption).
3. **LM head** for ``lm_head_tokens`` per frame.

Methods: ``offload`` fetches every offloaded past token (no prediction); ``rekv`` and
``infinigen`` their measured sets with prediction on the LXE; ``resv_lxe`` ReSV with prediction
on the LXE; ``resv_dre`` adds the DRE's KV prediction unit (HCU + WTU); ``vrex`` adds the KV
management unit: ``kv_resident_tokens`` recent tokens per stream stay in DRAM and the offloaded
ones are stored cluster-contiguously (:mod:`model.system.layout`). Without the KVMU only the DRE
configuration's ``recent_window`` stays in DRAM. DRAM holds the weights, ``dram_reserve_gb`` and
the resident KV of every stream; when the resident windows do not fit they shrink to what does.

Energy of a step: each engine's per-core power times its busy time (DPE and VPE busy = their
work over their peak; on-chip memory for the whole step; HCU and WTU for their cycles; KVMU for
the whole step, ``vrex`` only) plus DRAM, link and store energy per byte.
"""

import dataclasses
import math

import numpy as np

from model.system.dre import frame_cycles
from model.system.retrieval import METHOD_MASKS
from model.twins.wtu import scan_sort_cycles

__all__ = ["METHODS", "FrameResult", "frame", "resident_tokens", "INFINIGEN_CHANNELS_SHARE",
           "REKV_TOP_FRAMES"]

#: Methods of the system model, the Fig. 16 ablation steps last.
METHODS = ("offload", "rekv", "infinigen", "resv_lxe", "resv_dre", "vrex")
#: Share of the key channels InfiniGen's partial scores read (model.evaluation.baselines).
INFINIGEN_CHANNELS_SHARE = 0.25
#: Frames ReKV keeps per layer (../shared/PAPER.md section 4); its sort ranks frame scores.
REKV_TOP_FRAMES = 64

_PREDICTING = {"rekv", "infinigen", "resv_lxe", "resv_dre", "vrex"}
_ON_DRE = {"resv_dre", "vrex"}


@dataclasses.dataclass
class FrameResult:
    """One step of ``batch`` frames (times in seconds, energy in joules, traffic in bytes).

    Members
    -------
    step_s : float
        Latency of the step (every stream's frame is ready after it).
    parts_s : dict
        Breakdown adding up to ``step_s``: ``vision`` (encoder + projector), ``linear``,
        ``attention``, ``prediction`` (on the LXE plus exposed DRE time), ``fetch`` (exposed link
        time), ``lm_head``.
    prediction_s : float
        KV prediction busy time: the LXE's prediction phases plus the DRE's cycles / clock.
    dre_cycles, dre_s : float
        The DRE's cycles for the step and their time at the system's clock.
    lxe_compute_s : float
        Sum of the LXE phases (the "computation" the paper's 23% refers to).
    fetched_tokens, store_bytes, link_bytes, dram_bytes : float
        Per step: past tokens read from the store, bytes read from the store (granules), bytes
        over the link (fetches and evictions), bytes moved in DRAM.
    energy_j : dict
        Per part: ``dpe``, ``vpe``, ``onchip_memory``, ``hcu``, ``wtu``, ``kvmu``, ``dram``,
        ``link``, ``store``.
    resident_tokens : int
        Past tokens per stream kept in DRAM.
    """

    step_s: float
    parts_s: dict
    prediction_s: float
    dre_cycles: float
    dre_s: float
    lxe_compute_s: float
    fetched_tokens: float
    store_bytes: float
    link_bytes: float
    dram_bytes: float
    energy_j: dict
    resident_tokens: int

    @property
    def energy_total_j(self):
        return float(sum(self.energy_j.values()))


def resident_tokens(model, system, dre_config, method, batch, cache_tokens):
    """Past tokens per stream kept in DRAM (the rest is offloaded).

    ``vrex`` keeps ``kv_resident_tokens``, the others the DRE configuration's
    ``recent_window``, both capped by what DRAM holds besides the weights and the reserve.

    Raises
    ------
    ValueError
        If the weights and the reserve alone exceed the DRAM capacity.
    """
    free = system.dram_capacity_gb * 1e9 - model.weight_bytes - system.dram_reserve_gb * 1e9
    if free < 0:
        raise ValueError(f"dram_capacity_gb ({system.dram_capacity_gb}) must hold the "
                         f"{model.weight_bytes / 1e9:.2f} GB of weights and dram_reserve_gb "
                         f"({system.dram_reserve_gb})")
    wanted = system.kv_resident_tokens if method == "vrex" else dre_config.recent_window
    fits = int(free // (batch * model.kv_bytes_per_token))
    return min(wanted, fits, cache_tokens)


def _roofline(system, flops=0.0, ops=0.0, dram=0.0):
    return max(flops / system.dpe_flops, ops / system.vpe_ops, dram / system.dram_bytes_per_s)


class _Work:
    """DPE FLOPs, VPE ops and DRAM bytes of one phase."""

    def __init__(self):
        self.flops = self.ops = self.dram = 0.0

    def add(self, flops=0.0, ops=0.0, dram=0.0):
        self.flops += flops
        self.ops += ops
        self.dram += dram

    def time(self, system):
        return _roofline(system, self.flops, self.ops, self.dram)


def _vision(model, batch):
    """Vision encoder and projector of ``batch`` frames."""
    work = _Work()
    p, d, f = model.vision_patches, model.vision_hidden, model.vision_intermediate
    attention = 2 * 2 * p * p * d * model.vision_layers
    work.add(flops=batch * (2 * model.vision_weights * p + attention),
             ops=batch * model.vision_layers * p * (2 * d * model.norm_ops_per_element
                                                    + f * model.activation_ops_per_element
                                                    + model.vision_heads * p
                                                    * model.softmax_ops_per_score),
             dram=model.vision_weights * model.bytes_per_weight)
    work.add(flops=batch * 2 * model.projector_weights * model.visual_tokens_per_frame,
             dram=model.projector_weights * model.bytes_per_weight)
    return work


def _linear(model, batch):
    """QKV, O and FFN of one layer for ``batch`` frames."""
    t = model.tokens_per_frame * batch
    kv = model.kv_heads * model.head_dim
    work = _Work()
    work.add(flops=2 * model.layer_linear_weights * t,
             ops=t * (2 * model.hidden * model.norm_ops_per_element
                      + (model.hidden + kv) * model.rope_ops_per_element
                      + model.intermediate * model.activation_ops_per_element),
             dram=model.layer_linear_weights * model.bytes_per_weight)
    return work


def _attention(model, batch, attended_past):
    """Attention of one layer: every stream's rows against its frame and ``attended_past``."""
    t = model.tokens_per_frame
    attended = t + attended_past
    per_token_layer = model.kv_bytes_per_token_layer
    work = _Work()
    work.add(flops=batch * 4 * model.heads * model.head_dim * t * attended,
             ops=batch * model.softmax_ops_per_score * model.heads * t * attended,
             dram=batch * per_token_layer * (attended_past + t))
    return work


def _prediction(model, system, dre_config, method, samples, batch):
    """KV prediction work the LXE does for one layer of ``batch`` streams (mean of samples)."""
    work = _Work()
    if method not in _PREDICTING:
        return work
    heads = model.kv_heads * batch
    d, rows, lanes = model.head_dim, model.query_rows, system.vpe_lanes
    for sample in samples:
        share = heads / len(samples)
        if method == "infinigen":
            channels = max(1, round(INFINIGEN_CHANNELS_SHARE * d))
            budget = int(sample.masks["infinigen"].sum())
            work.add(flops=share * 2 * rows * sample.past * channels,
                     ops=share * (2 * rows * sample.past
                                  + lanes * scan_sort_cycles(sample.past, budget, lanes)),
                     dram=share * sample.past * channels * model.bytes_per_kv)
        elif method == "rekv":
            frames = max(1, math.ceil(sample.past / model.tokens_per_frame))
            work.add(flops=share * 2 * (rows * d + frames * d),
                     ops=share * lanes * scan_sort_cycles(frames, min(frames, REKV_TOP_FRAMES),
                                                          lanes),
                     dram=share * frames * d * model.bytes_per_kv)
        else:
            # hash projections of the frame's keys and scores against the representatives
            work.add(flops=share * 2 * d * (sample.frame_tokens * dre_config.hash_bits
                                            + rows * sample.clusters),
                     dram=share * sample.clusters * d * model.bytes_per_kv)
            if method == "resv_lxe":
                compares = sample.frame_tokens * max(1, sample.table_entries)
                sort = sum(scan_sort_cycles(sample.clusters, int(k), lanes)
                           for k in sample.row_selected)
                work.add(ops=share * (compares * system.lxe_ops_per_hash_compare
                                      + lanes * sort))
    return work


def _dre_problem_cycles(samples_dre):
    """Mean DRE cycles of one problem and of its HCU, KVMU, WTU and top parts."""
    if not samples_dre:
        raise ValueError("the DRE methods need problems timed by the block twins "
                         "(dre_heads of at least 1)")
    return {part: float(np.mean([d[part] for d in samples_dre]))
            for part in ("hcu", "kvmu", "wtu", "top", "total")}


def frame(model, system, dre_config, profile, method, batch, cache_tokens, ratio_scale=None,
          lxe_prediction_scale=1.0):
    """Time, traffic and energy of one step (module docstring) as a :class:`FrameResult`.

    Parameters
    ----------
    model : model.system.params.ModelShape
    system : model.system.params.SystemConfig
    dre_config : model.config.DREConfig
    profile : model.system.retrieval.RetrievalProfile
    method : str
        One of :data:`METHODS`.
    batch : int
        Streams per step.
    cache_tokens : int
        A cache size of ``profile``.
    ratio_scale : dict or None
        Per mask (``resv``, ``rekv``, ``infinigen``), a factor applied to the measured fetched
        tokens and store bytes (to evaluate other retrieval ratios, e.g. the paper's).

    Raises
    ------
    ValueError
        For an unknown method, a batch below 1 or a cache size the profile lacks.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, not {method!r}")
    if not isinstance(batch, int) or isinstance(batch, bool) or batch < 1:
        raise ValueError(f"batch must be a positive integer, not {batch!r}")
    if cache_tokens not in profile.cache_tokens:
        raise ValueError(f"cache_tokens must be one of the measured sizes "
                         f"{list(profile.cache_tokens)}, not {cache_tokens!r}")
    mask = METHOD_MASKS[method]
    scale = (ratio_scale or {}).get(mask, 1.0)
    resident = resident_tokens(model, system, dre_config, method, batch, cache_tokens)
    unit = int(model.head_dim * model.bytes_per_kv)
    granule = system.store_granule_bytes
    per_token_layer = model.kv_bytes_per_token_layer
    t = model.tokens_per_frame
    all_samples = profile.at(cache_tokens)
    dre = _dre_problem_cycles([s.dre for s in all_samples if s.dre]) \
        if method in _ON_DRE else None
    vision = _vision(model, batch)
    linear = _linear(model, batch).time(system)
    parts = {"vision": vision.time(system), "linear": 0.0, "attention": 0.0, "prediction": 0.0,
             "fetch": 0.0, "lm_head": 0.0}
    totals = {"flops": vision.flops, "ops": vision.ops, "dram": vision.dram}
    fetched = store = link = 0.0
    prediction_lxe = lxe_compute = dre_cycles = 0.0
    fill = None
    for layer in range(model.llm_layers):
        nearest = min(profile.layers, key=lambda sampled: abs(sampled - layer * (
            max(profile.layers) + 1) / model.llm_layers))
        samples = profile.at(cache_tokens, nearest)
        # per stream: past tokens attended, (token, KV head) entries and bytes from the store
        attended = scale * float(np.mean([s.past * s.ratio(mask) for s in samples]))
        reads = [s.store_read(mask, s.past - resident, unit, granule, dre_config,
                              method == "vrex") for s in samples]
        everything = [s.store_read("full", s.past - resident, unit, granule, dre_config, False)
                      for s in samples]
        # a scaled ratio reads at most every offloaded token (granule reuse is not linear)
        tokens_read = min(scale * float(np.mean([r[0] for r in reads])),
                          float(np.mean([r[0] for r in everything])))
        bytes_read = min(scale * float(np.mean([r[1] for r in reads])),
                         float(np.mean([r[1] for r in everything]))) * model.kv_heads
        evicted = t * per_token_layer if cache_tokens > resident else 0.0
        layer_link = batch * (bytes_read + evicted)
        attention = _attention(model, batch, attended)
        # fetched K/V land in DRAM, evicted K/V leave it
        attention.add(dram=batch * (bytes_read + evicted))
        predict = _prediction(model, system, dre_config, method, samples, batch)
        predict.flops *= lxe_prediction_scale
        predict.ops *= lxe_prediction_scale
        predict.dram *= lxe_prediction_scale
        lxe_parts = {"linear": linear, "attention": attention.time(system),
                     "prediction": predict.time(system)}
        lxe = sum(lxe_parts.values())
        layer_dre_cycles = (frame_cycles([dre["total"]], model.kv_heads, batch, system.cores)
                            if dre else 0.0)
        dre_time = layer_dre_cycles / system.clock_hz
        link_time = layer_link / system.link_bytes_per_s
        if fill is None:
            fill = dre_time + link_time
        layer_time = max(lxe, link_time, dre_time)
        for key, value in lxe_parts.items():
            parts[key] += value
        exposed = layer_time - lxe
        parts["fetch" if link_time >= dre_time else "prediction"] += exposed
        prediction_lxe += lxe_parts["prediction"]
        lxe_compute += lxe
        dre_cycles += layer_dre_cycles
        fetched += batch * tokens_read * model.kv_heads
        store += batch * bytes_read
        link += layer_link
        for work in (_linear(model, batch), attention, predict):
            totals["flops"] += work.flops
            totals["ops"] += work.ops
            totals["dram"] += work.dram
    parts["fetch"] += fill
    lm_head = _Work()
    lm_head.add(flops=batch * 2 * model.lm_head_weights * model.lm_head_tokens,
                dram=model.lm_head_weights * model.bytes_per_weight)
    parts["lm_head"] = lm_head.time(system)
    totals["flops"] += lm_head.flops
    totals["dram"] += lm_head.dram
    step = float(sum(parts.values()))
    dre_s = dre_cycles / system.clock_hz
    hcu_cycles = wtu_cycles = 0.0
    if dre:     # busy cycles summed over the DREs: every problem of the step once
        problems = model.llm_layers * model.kv_heads * batch
        hcu_cycles = problems * dre["hcu"]
        wtu_cycles = problems * dre["wtu"]     # the KVMU's power counts the whole step
    mw = 1e-3
    energy = {
        "dpe": system.dpe_mw * mw * system.cores * totals["flops"] / system.dpe_flops,
        "vpe": system.vpe_mw * mw * system.cores * totals["ops"] / system.vpe_ops,
        "onchip_memory": system.onchip_memory_mw * mw * system.cores * step,
        "hcu": system.hcu_mw * mw * hcu_cycles / system.clock_hz,
        "wtu": system.wtu_mw * mw * wtu_cycles / system.clock_hz,
        "kvmu": system.kvmu_mw * mw * system.cores * step if method == "vrex" else 0.0,
        "dram": system.dram_pj_per_byte * 1e-12 * totals["dram"],
        "link": system.link_pj_per_byte * 1e-12 * link,
        "store": system.store_pj_per_byte * 1e-12 * link,
    }
    return FrameResult(step_s=step, parts_s=parts, prediction_s=prediction_lxe + dre_s,
                       dre_cycles=dre_cycles, dre_s=dre_s, lxe_compute_s=lxe_compute,
                       fetched_tokens=fetched, store_bytes=store, link_bytes=link,
                       dram_bytes=totals["dram"], energy_j=energy, resident_tokens=resident)
