"""Validated parameters of the system model: the workload's shape and each V-Rex system.

Every parameter lives in a JSON file (``model/system/systems.json`` by default, ``--systems
FILE`` for a user's copy) as ``{"value": ..., "source": "..."}``: the paper, a datasheet or
model card, or "our assumption" with the reason. The file has three objects:

``model``
    the fields of :class:`ModelShape` (Llama-3-8B, SigLIP-L/16-384, VideoLLM-online's tokens);
``systems``
    one object per system (``vrex8``, ``vrex48``) with the fields of :class:`SystemConfig`;
``batches``
    per system, the batch sizes to report (a list of positive integers).

Loading is strict, like :class:`model.config.DREConfig`: a missing or unknown key, a value of
the wrong type or outside its range raises ``TypeError``/``ValueError`` naming the file, the key
and the allowed range.
"""

import dataclasses
import json
import math
from pathlib import Path

__all__ = ["ModelShape", "SystemConfig", "SystemFile", "load_systems", "DEFAULT_SYSTEMS_FILE"]

#: The project's parameter file (every value with its source).
DEFAULT_SYSTEMS_FILE = Path(__file__).with_name("systems.json")


def _check_fields(instance, rules):
    """Validate the fields of a frozen dataclass against ``rules``.

    ``rules`` maps a field name to ``(kind, lowest, highest)``: kind ``int`` or ``float``
    (finite), ``str`` with ``lowest`` the tuple of allowed values; ``highest`` may be None.
    """
    for name, (kind, lowest, highest) in rules.items():
        value = getattr(instance, name)
        if kind is str:
            if value not in lowest:
                raise ValueError(f"{name} must be one of {', '.join(lowest)}, not {value!r}")
            continue
        if kind is int and (not isinstance(value, int) or isinstance(value, bool)):
            raise TypeError(f"{name} must be an integer, not {value!r}")
        if kind is float and (not isinstance(value, (int, float)) or isinstance(value, bool)
                              or not math.isfinite(value)):
            raise TypeError(f"{name} must be a finite number, not {value!r}")
        if value < lowest or (highest is not None and value > highest):
            upper = "" if highest is None else f" to {highest}"
            raise ValueError(f"{name} must be from {lowest}{upper}, not {value!r}")


_MODEL_RULES = {
    "llm_layers": (int, 1, 1024), "hidden": (int, 1, None), "intermediate": (int, 1, None),
    "heads": (int, 1, None), "kv_heads": (int, 1, None), "head_dim": (int, 1, None),
    "vocab": (int, 1, None), "vision_layers": (int, 0, None), "vision_hidden": (int, 1, None),
    "vision_heads": (int, 1, None),
    "vision_intermediate": (int, 1, None), "vision_patches": (int, 1, None),
    "projector_hidden": (int, 1, None), "visual_tokens_per_frame": (int, 1, None),
    "interval_tokens": (int, 0, None), "lm_head_tokens": (int, 0, None),
    "bytes_per_weight": (float, 0.125, 8), "bytes_per_kv": (float, 0.125, 8),
    "norm_ops_per_element": (float, 0, None), "activation_ops_per_element": (float, 0, None),
    "rope_ops_per_element": (float, 0, None), "softmax_ops_per_score": (float, 0, None),
}


@dataclasses.dataclass(frozen=True)
class ModelShape:
    """Shape of the streaming video LLM (VideoLLM-online: SigLIP-L/16-384, MLP, Llama-3-8B).

    Parameters
    ----------
    llm_layers, hidden, intermediate, heads, kv_heads, head_dim, vocab : int
        Llama-3-8B: 32 layers, 4096, 14336 (SwiGLU), 32 query heads, 8 KV heads, 128, 128256.
    vision_layers, vision_hidden, vision_heads, vision_intermediate, vision_patches : int
        The vision encoder: 24 layers, 1024, 16 heads, 4096, 576 patches (384 / 16 = 24 per
        side).
    projector_hidden : int
        Width of the two-layer MLP projector (vision_hidden -> projector_hidden -> hidden).
    visual_tokens_per_frame, interval_tokens : int
        Tokens a frame adds to the cache: 10 visual (CLS + 3x3 pooled) + 1 interval.
    lm_head_tokens : int
        Tokens per frame that go through the LM head (0 or more).
    bytes_per_weight, bytes_per_kv : float
        BF16: 2.
    norm_ops_per_element, activation_ops_per_element, rope_ops_per_element,
    softmax_ops_per_score : float
        Vector-engine operations per element of RMSNorm, of SwiGLU, of RoPE, and per attention
        score of the softmax.

    Raises
    ------
    TypeError, ValueError
        Naming the parameter and the allowed range.
    """

    llm_layers: int
    hidden: int
    intermediate: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    vision_layers: int
    vision_hidden: int
    vision_heads: int
    vision_intermediate: int
    vision_patches: int
    projector_hidden: int
    visual_tokens_per_frame: int
    interval_tokens: int
    lm_head_tokens: int
    bytes_per_weight: float
    bytes_per_kv: float
    norm_ops_per_element: float
    activation_ops_per_element: float
    rope_ops_per_element: float
    softmax_ops_per_score: float

    def __post_init__(self):
        _check_fields(self, _MODEL_RULES)
        if self.heads % self.kv_heads:
            raise ValueError(f"kv_heads must divide heads ({self.heads}), not {self.kv_heads!r}")

    @property
    def tokens_per_frame(self):
        """Tokens a frame adds to the cache (visual + interval)."""
        return self.visual_tokens_per_frame + self.interval_tokens

    @property
    def gqa_group(self):
        """Query heads per KV head."""
        return self.heads // self.kv_heads

    @property
    def query_rows(self):
        """Query rows per (layer, KV head, frame): ``gqa_group * tokens_per_frame``."""
        return self.gqa_group * self.tokens_per_frame

    @property
    def kv_bytes_per_token_head(self):
        """K and V bytes of one token in one (layer, KV head)."""
        return 2 * self.head_dim * self.bytes_per_kv

    @property
    def kv_bytes_per_token_layer(self):
        """K and V bytes of one token in one layer."""
        return self.kv_heads * self.kv_bytes_per_token_head

    @property
    def kv_bytes_per_token(self):
        """K and V bytes of one token over all layers (Llama-3-8B BF16: 128 KiB)."""
        return self.llm_layers * self.kv_bytes_per_token_layer

    @property
    def layer_linear_weights(self):
        """Weights of one decoder layer's QKV, O and FFN matrices."""
        kv = self.kv_heads * self.head_dim
        return (self.hidden * (self.hidden + 2 * kv) + self.hidden * self.hidden
                + 3 * self.hidden * self.intermediate)

    @property
    def vision_weights(self):
        """Weights of the vision encoder's layers (attention 4 d^2, MLP 2 d f per layer)."""
        d, f = self.vision_hidden, self.vision_intermediate
        return self.vision_layers * (4 * d * d + 2 * d * f)

    @property
    def projector_weights(self):
        """Weights of the two-layer MLP projector."""
        return self.vision_hidden * self.projector_hidden + self.projector_hidden * self.hidden

    @property
    def lm_head_weights(self):
        """Weights of the LM head."""
        return self.vocab * self.hidden

    @property
    def weight_bytes(self):
        """Bytes of every weight streamed per frame (embeddings are looked up, not streamed)."""
        weights = (self.llm_layers * self.layer_linear_weights + self.vision_weights
                   + self.projector_weights + self.lm_head_weights)
        return weights * self.bytes_per_weight


_STORES = ("ssd", "cpu_memory")

_SYSTEM_RULES = {
    "cores": (int, 1, 4096), "dpe_trees": (int, 1, None), "dpe_inputs": (int, 1, None),
    "vpe_lanes": (int, 1, None), "clock_mhz": (float, 1.0, 10000.0),
    "dram_bandwidth_gbs": (float, 0.001, None), "dram_efficiency": (float, 0.01, 1.0),
    "dram_capacity_gb": (float, 0.001, None), "dram_reserve_gb": (float, 0.0, None),
    "dram_pj_per_byte": (float, 0.0, None),
    "link_bandwidth_gbs": (float, 0.001, None), "link_efficiency": (float, 0.01, 1.0),
    "link_pj_per_byte": (float, 0.0, None), "store": (str, _STORES, None),
    "store_granule_bytes": (int, 1, 1 << 20), "store_pj_per_byte": (float, 0.0, None),
    "kv_resident_tokens": (int, 0, None),
    "dpe_mw": (float, 0.0, None), "vpe_mw": (float, 0.0, None),
    "onchip_memory_mw": (float, 0.0, None),
    "hcu_mw": (float, 0.0, None), "wtu_mw": (float, 0.0, None), "kvmu_mw": (float, 0.0, None),
    "lxe_ops_per_hash_compare": (float, 0.0, None),
}


@dataclasses.dataclass(frozen=True)
class SystemConfig:
    """One V-Rex system: cores, memories, link, offload store, powers.

    Parameters
    ----------
    cores : int
        LXE cores, each with one DRE (1 to 4096).
    dpe_trees, dpe_inputs : int
        The dot-product engine: MAC trees x inputs per tree (64 x 64).
    vpe_lanes : int
        Lanes of the vector engine (64).
    clock_mhz : float
        Clock of the LXE and of the DRE.
    dram_bandwidth_gbs, dram_efficiency, dram_capacity_gb, dram_reserve_gb : float
        Accelerator DRAM: peak GB/s (1e9 bytes), share of it sustained (0.01 to 1), capacity,
        and the part kept for activations and the HC table.
    dram_pj_per_byte, link_pj_per_byte, store_pj_per_byte : float
        Energy per byte moved in DRAM, over the link, in the offload store.
    link_bandwidth_gbs, link_efficiency : float
        The PCIe link to the offload store: peak GB/s and the share of it carrying payload.
    store : str
        ``"ssd"`` or ``"cpu_memory"``.
    store_granule_bytes : int
        Smallest unit read from the store: a read is rounded up to whole granules.
    kv_resident_tokens : int
        Most recent tokens per stream the KV management unit keeps in DRAM (V-Rex only).
    dpe_mw, vpe_mw, onchip_memory_mw, hcu_mw, wtu_mw, kvmu_mw : float
        Per-core power of each engine while busy (Table III of the paper).
    lxe_ops_per_hash_compare : float
        Vector operations the LXE spends on one token-hash against cluster-hash compare when
        ReSV's clustering runs without the HCU.

    Raises
    ------
    TypeError, ValueError
        Naming the parameter and the allowed range.
    """

    cores: int
    dpe_trees: int
    dpe_inputs: int
    vpe_lanes: int
    clock_mhz: float
    dram_bandwidth_gbs: float
    dram_efficiency: float
    dram_capacity_gb: float
    dram_reserve_gb: float
    dram_pj_per_byte: float
    link_bandwidth_gbs: float
    link_efficiency: float
    link_pj_per_byte: float
    store: str
    store_granule_bytes: int
    store_pj_per_byte: float
    kv_resident_tokens: int
    dpe_mw: float
    vpe_mw: float
    onchip_memory_mw: float
    hcu_mw: float
    wtu_mw: float
    kvmu_mw: float
    lxe_ops_per_hash_compare: float

    def __post_init__(self):
        _check_fields(self, _SYSTEM_RULES)

    @property
    def clock_hz(self):
        """Clock frequency in Hz."""
        return self.clock_mhz * 1e6

    @property
    def dpe_flops(self):
        """Peak FLOP/s of all dot-product engines (2 FLOPs per MAC)."""
        return self.cores * self.dpe_trees * self.dpe_inputs * 2 * self.clock_hz

    @property
    def vpe_ops(self):
        """Peak operations per second of all vector engines (one per lane and cycle)."""
        return self.cores * self.vpe_lanes * self.clock_hz

    @property
    def peak_flops(self):
        """Peak FLOP/s as the paper counts it: MAC trees and vector lanes at 2 FLOPs each."""
        return self.cores * (self.dpe_trees * self.dpe_inputs + self.vpe_lanes) * 2 * self.clock_hz

    @property
    def dram_bytes_per_s(self):
        """Sustained DRAM bandwidth in bytes per second."""
        return self.dram_bandwidth_gbs * 1e9 * self.dram_efficiency

    @property
    def link_bytes_per_s(self):
        """Sustained link payload bandwidth in bytes per second."""
        return self.link_bandwidth_gbs * 1e9 * self.link_efficiency

    def replace(self, **changes):
        """A copy with ``changes`` applied, validated again."""
        return dataclasses.replace(self, **changes)


@dataclasses.dataclass(frozen=True)
class SystemFile:
    """A loaded parameter file.

    Members
    -------
    model : ModelShape
    systems : dict of str to SystemConfig
    batches : dict of str to tuple of int
    sources : dict
        ``{"model": {name: source}, "systems": {system: {name: source}}}``.
    path : str
    """

    model: ModelShape
    systems: dict
    batches: dict
    sources: dict
    path: str


def _values(where, cls, entries):
    """Split ``{name: {"value", "source"}}`` into values and sources, checking the keys."""
    if not isinstance(entries, dict):
        raise TypeError(f"{where} must be a JSON object, not {type(entries).__name__}")
    known = [field.name for field in dataclasses.fields(cls)]
    missing = [name for name in known if name not in entries]
    unknown = sorted(set(entries) - set(known))
    if missing or unknown:
        problems = ([f"missing key(s) {', '.join(missing)}"] if missing else []) + \
                   ([f"unknown key(s) {', '.join(unknown)}"] if unknown else [])
        raise ValueError(f"{where}: {'; '.join(problems)}")
    values, sources = {}, {}
    for name in known:
        entry = entries[name]
        if not isinstance(entry, dict) or set(entry) != {"value", "source"} \
                or not isinstance(entry["source"], str) or not entry["source"].strip():
            raise ValueError(f"{where}: key {name!r} must be an object "
                             f"{{\"value\": ..., \"source\": \"...\"}} with a non-empty source")
        values[name], sources[name] = entry["value"], entry["source"]
    try:
        return cls(**values), sources
    except (TypeError, ValueError) as error:
        raise type(error)(f"{where}: {error}") from None


def load_systems(path=DEFAULT_SYSTEMS_FILE):
    """Read and validate a parameter file (layout in the module docstring).

    Raises
    ------
    ValueError, TypeError
        Naming the file and the key.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: cannot read a JSON parameter file ({error})") from None
    if not isinstance(data, dict) or set(data) != {"model", "systems", "batches"}:
        keys = sorted(data) if isinstance(data, dict) else type(data).__name__
        raise ValueError(f"{path}: must be an object with exactly the keys batches, model, "
                         f"systems, not {keys}")
    model, model_sources = _values(f"{path}: model", ModelShape, data["model"])
    if not isinstance(data["systems"], dict) or not data["systems"]:
        raise ValueError(f"{path}: systems must be a non-empty object of systems")
    systems, system_sources = {}, {}
    for name, entries in data["systems"].items():
        systems[name], system_sources[name] = _values(f"{path}: systems.{name}", SystemConfig,
                                                      entries)
    batches = data["batches"]
    if not isinstance(batches, dict) or set(batches) != set(systems):
        raise ValueError(f"{path}: batches must list the batch sizes of every system "
                         f"({', '.join(systems)}) and no other")
    for name, sizes in batches.items():
        if not isinstance(sizes, list) or not sizes or any(
                not isinstance(size, int) or isinstance(size, bool) or size < 1
                for size in sizes):
            raise ValueError(f"{path}: batches.{name} must be a non-empty list of positive "
                             f"integers, not {sizes!r}")
    return SystemFile(model, systems, {name: tuple(sizes) for name, sizes in batches.items()},
                      {"model": model_sources, "systems": system_sources}, str(path))
