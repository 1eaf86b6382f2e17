"""One validated configuration of ReSV and of the DRE blocks, shared by hw/, model/, sim/ and synth/.

:class:`DREConfig` is a frozen dataclass: every parameter of the algorithm (hash bits, Hamming
threshold, WiCSum ratio) and of the hardware (lanes, bits compared per cycle, memory depths,
widths, buckets, refinement depth, top-k, token budget) in one place, validated on construction,
with the derived widths every block uses. It round-trips through JSON, which is how the cocotb
runs and the reports receive it.

Named presets live in :data:`PRESETS`:

``tiny``
    Small widths and depths for fast RTL tests.
``edge``
    The paper's DRE core: 32 hash bits, Hamming threshold 7, WiCSum ratio 0.3, 16 HCU lanes,
    16 WTU lanes, 1024 cluster hashes on chip, up to 4096 clusters per row with 16-bit scores and
    counts (``../shared/PAPER.md`` section 3).
``server``
    Twice the lanes and memories of ``edge``, for longer caches.
"""

import dataclasses
import json
import math
from pathlib import Path

__all__ = ["DREConfig", "PRESETS", "load_config", "ratio_code"]


def _is_power_of_two(value):
    return value > 0 and value & (value - 1) == 0


def ratio_code(ratio, frac_bits):
    """Fixed-point code of a WiCSum ratio: ``round(ratio * 2**frac_bits)`` (half away from zero).

    Parameters
    ----------
    ratio : float
        The ratio, from 0 to 1 inclusive.
    frac_bits : int
        Fractional bits of the code.

    Raises
    ------
    ValueError
        If ``ratio`` is outside [0, 1].
    """
    if not 0.0 <= float(ratio) <= 1.0:
        raise ValueError(f"ratio must be a number from 0 to 1, not {ratio!r}")
    return int(math.floor(float(ratio) * (1 << frac_bits) + 0.5))


# name: (lowest, highest, extra rule or None, text of the extra rule)
_RULES = {
    "hash_bits": (4, 64, None, ""),
    "hamming_threshold": (1, None, None, ""),  # highest: hash_bits, checked below
    "wicsum_ratio_bits": (1, 16, None, ""),
    "wicsum_ratio_code": (0, None, None, ""),  # highest: 2**wicsum_ratio_bits
    "hcu_lanes": (1, 256, None, ""),
    "hcu_bits_per_cycle": (1, 64, None, ""),
    "hcu_tokens_in_flight": (1, 16, None, ""),  # highest also: hash_mem_entries, checked below
    "hcu_dispatch_width": (1, 16, _is_power_of_two, "a power of two"),  # also <= lanes, entries
    "hash_mem_entries": (2, 1 << 16, _is_power_of_two, "a power of two"),
    "max_clusters": (2, 1 << 16, _is_power_of_two, "a power of two"),
    "score_bits": (2, 32, None, ""),
    "count_bits": (2, 32, None, ""),
    "wtu_lanes": (1, 256, _is_power_of_two, "a power of two"),
    "wtu_buckets": (2, 256, _is_power_of_two, "a power of two"),
    "wtu_refine_depth": (0, None, None, ""),  # highest: full_refine_depth
    "max_rows": (1, 4096, None, ""),
    "topk_k": (1, None, None, ""),  # highest: max_clusters
    "kv_token_bits": (4, 32, None, ""),
    "token_budget": (0, None, None, ""),  # highest: 2**kv_token_bits
    "recent_window": (0, None, None, ""),  # highest: 2**kv_token_bits
    "kvmu_page_tokens": (1, None, _is_power_of_two, "a power of two"),  # highest: 2**kv_token_bits
    "max_frame_tokens": (1, 1 << 16, None, ""),
}


@dataclasses.dataclass(frozen=True)
class DREConfig:
    """Parameters of ReSV and of the DRE blocks, validated on construction.

    All parameters are keyword-only integers. Change one with :meth:`replace`, which validates
    again.

    Parameters
    ----------
    hash_bits : int
        Sign-random-projection hash bits per key (N_hp), 4 to 64.
    hamming_threshold : int
        Th_hd: a token joins a cluster whose hash differs in fewer than this many bits,
        1 to ``hash_bits``.
    wicsum_ratio_bits : int
        Fractional bits of the WiCSum ratio, 1 to 16.
    wicsum_ratio_code : int
        The WiCSum ratio Thr_wics as a fixed-point code, ``ratio = code / 2**wicsum_ratio_bits``,
        0 to ``2**wicsum_ratio_bits`` (ratio 0 to 1 inclusive).
    hcu_lanes : int
        Similarity lanes of the hash-bit cluster unit, 1 to 256, at most ``hash_mem_entries``.
    hcu_bits_per_cycle : int
        Hash bits one lane compares per cycle: 1 is fully bit-serial, ``hash_bits`` fully
        parallel. Must divide ``hash_bits``.
    hcu_tokens_in_flight : int
        Tokens the HCU compares at once, 1 to 16 and at most ``hash_mem_entries``: a younger
        token's compares fill the lanes while older ones finish (see :mod:`hw.hcu`).
    hcu_dispatch_width : int
        Compares the HCU starts per cycle (banks of its hash table), a power of two from 1 to
        16, at most ``hcu_lanes`` and ``hash_mem_entries``.
    hash_mem_entries : int
        Cluster hashes the HCU keeps on chip, a power of two from 2 to 65536.
    max_clusters : int
        Clusters per row the WTU holds (score and count memories), a power of two from 2 to
        65536, at least ``hash_mem_entries``.
    score_bits, count_bits : int
        Widths of the unsigned cluster score and token count, 2 to 32.
    wtu_lanes : int
        Score x count multipliers of the WTU per cycle, a power of two from 1 to 256, at most
        ``max_clusters // 2``.
    wtu_buckets : int
        Buckets of one WTU bucket pass, a power of two from 2 to 256.
    wtu_refine_depth : int
        Refinement passes after the first bucket pass, 0 to :attr:`full_refine_depth` (which
        refines down to single score values, i.e. exact WiCSum).
    max_rows : int
        Query rows per (layer, KV head, frame) problem, 1 to 4096.
    topk_k : int
        k of the retrieval buffer's fixed top-k mode, 1 to ``max_clusters``.
    token_budget : int
        Token budget of the buffer's dynamic mode, 0 (no budget) to ``2**kv_token_bits``.
    kv_token_bits : int
        Width of a token address of the cluster-contiguous KV layout, 4 to 32.
    recent_window : int
        Most recent tokens always retrieved besides the selected clusters, 0 to
        ``2**kv_token_bits``.
    kvmu_page_tokens : int
        Tokens per page of the KV management unit's offloaded store (each cluster owns a list
        of pages), a power of two from 1 to ``2**kv_token_bits``.
    max_frame_tokens : int
        New tokens per (layer, KV head, frame) problem at most, 1 to 65536 (the KV management
        unit's ring of cluster ids holds ``recent_window + max_frame_tokens`` tokens).

    Raises
    ------
    TypeError
        If a parameter is not an integer.
    ValueError
        If a parameter is outside its range or inconsistent with another one.
    """

    hash_bits: int = 32
    hamming_threshold: int = 7
    wicsum_ratio_bits: int = 8
    wicsum_ratio_code: int = 77
    hcu_lanes: int = 16
    hcu_bits_per_cycle: int = 1
    hcu_tokens_in_flight: int = 4
    hcu_dispatch_width: int = 2
    hash_mem_entries: int = 1024
    max_clusters: int = 4096
    score_bits: int = 16
    count_bits: int = 16
    wtu_lanes: int = 16
    wtu_buckets: int = 16
    wtu_refine_depth: int = 3
    max_rows: int = 64
    topk_k: int = 64
    token_budget: int = 0
    kv_token_bits: int = 16
    recent_window: int = 64
    kvmu_page_tokens: int = 16
    max_frame_tokens: int = 64

    def __post_init__(self):
        for name, (lowest, highest, rule, rule_text) in _RULES.items():
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"{name} must be an integer, not {value!r}")
            highest = self._dependent_highest(name, highest)
            if value < lowest or (highest is not None and value > highest):
                upper = "" if highest is None else f" to {highest}"
                raise ValueError(f"{name} must be from {lowest}{upper}, not {value!r}")
            if rule is not None and not rule(value):
                raise ValueError(f"{name} must be {rule_text}, not {value!r}")
        if self.hash_bits % self.hcu_bits_per_cycle:
            raise ValueError(f"hcu_bits_per_cycle must divide hash_bits ({self.hash_bits}), "
                             f"not {self.hcu_bits_per_cycle!r}")
        if self.hcu_lanes > self.hash_mem_entries:
            raise ValueError(f"hcu_lanes must be at most hash_mem_entries ({self.hash_mem_entries}), "
                             f"not {self.hcu_lanes!r}")
        if self.hcu_tokens_in_flight > self.hash_mem_entries:
            raise ValueError(f"hcu_tokens_in_flight must be at most hash_mem_entries "
                             f"({self.hash_mem_entries}), not {self.hcu_tokens_in_flight!r}")
        for limit in ("hcu_lanes", "hash_mem_entries"):
            if self.hcu_dispatch_width > getattr(self, limit):
                raise ValueError(f"hcu_dispatch_width must be at most {limit} "
                                 f"({getattr(self, limit)}), not {self.hcu_dispatch_width!r}")
        if self.max_clusters < self.hash_mem_entries:
            raise ValueError(f"max_clusters must be at least hash_mem_entries "
                             f"({self.hash_mem_entries}), not {self.max_clusters!r}")
        if self.wtu_lanes > self.max_clusters // 2:
            # The WTU's lane memories need two addresses each; the sorter a row of whole beats.
            raise ValueError(f"wtu_lanes must be at most max_clusters // 2 "
                             f"({self.max_clusters // 2}), not {self.wtu_lanes!r}")

    def _dependent_highest(self, name, highest):
        """The highest value of ``name`` where it depends on parameters validated before it."""
        dependent = {
            "hamming_threshold": lambda: self.hash_bits,
            "wicsum_ratio_code": lambda: 1 << self.wicsum_ratio_bits,
            "wtu_refine_depth": lambda: self.full_refine_depth,
            "topk_k": lambda: self.max_clusters,
            "token_budget": lambda: 1 << self.kv_token_bits,
            "recent_window": lambda: 1 << self.kv_token_bits,
            "kvmu_page_tokens": lambda: 1 << self.kv_token_bits,
        }
        return dependent[name]() if name in dependent else highest

    # Derived quantities ---------------------------------------------------------------------

    @property
    def wicsum_ratio(self):
        """The WiCSum ratio as a float, ``wicsum_ratio_code / 2**wicsum_ratio_bits``."""
        return self.wicsum_ratio_code / (1 << self.wicsum_ratio_bits)

    @property
    def bucket_bits(self):
        """Score bits one bucket pass resolves, ``log2(wtu_buckets)``."""
        return self.wtu_buckets.bit_length() - 1

    @property
    def full_refine_depth(self):
        """Refinement passes that resolve every score bit: ``ceil(score_bits / bucket_bits) - 1``."""
        bucket_bits = self.wtu_buckets.bit_length() - 1
        return -(-self.score_bits // bucket_bits) - 1

    @property
    def cluster_id_bits(self):
        """Width of a cluster index, ``log2(max_clusters)``."""
        return self.max_clusters.bit_length() - 1

    @property
    def hash_slot_bits(self):
        """Width of an HCU hash-memory address, ``log2(hash_mem_entries)``."""
        return self.hash_mem_entries.bit_length() - 1

    @property
    def distance_bits(self):
        """Width of a Hamming distance (0 to ``hash_bits`` inclusive)."""
        return self.hash_bits.bit_length()

    @property
    def hcu_beats_per_hash(self):
        """Cycles one lane takes to compare a whole hash without early exit."""
        return self.hash_bits // self.hcu_bits_per_cycle

    @property
    def weight_bits(self):
        """Width of a row's weighted sum of score x count over ``max_clusters`` clusters."""
        return self.score_bits + self.count_bits + self.cluster_id_bits

    @property
    def threshold_bits(self):
        """Width of ``weighted_sum * wicsum_ratio_code`` before the fixed-point shift."""
        return self.weight_bits + self.wicsum_ratio_bits + 1

    @property
    def row_bits(self):
        """Width of a query-row index (0 to ``max_rows - 1``)."""
        return max(1, (self.max_rows - 1).bit_length())

    @property
    def max_score(self):
        """Largest score, ``2**score_bits - 1``."""
        return (1 << self.score_bits) - 1

    @property
    def max_count(self):
        """Largest token count of a cluster, ``2**count_bits - 1``."""
        return (1 << self.count_bits) - 1

    @property
    def wtu_bucket_shifts(self):
        """``shift_p`` of every WTU bucket pass ``p`` from 0 to ``full_refine_depth``.

        Pass ``p`` resolves the score bits from ``shift_p = max(0, score_bits - (p + 1) *
        bucket_bits)`` up (the bucket rule of :mod:`model.twins.wtu`).
        """
        return tuple(max(0, self.score_bits - (p + 1) * self.bucket_bits)
                     for p in range(self.full_refine_depth + 1))

    @property
    def wtu_pass_bits(self):
        """Score bits each WTU bucket pass resolves: ``score_bits - shift_0``, then
        ``shift_(p-1) - shift_p``; pass ``p`` has ``2**wtu_pass_bits[p]`` buckets."""
        shifts = self.wtu_bucket_shifts
        return tuple((self.score_bits if p == 0 else shifts[p - 1]) - shifts[p]
                     for p in range(len(shifts)))

    # Construction and serialisation ---------------------------------------------------------

    def replace(self, **changes):
        """A copy with ``changes`` applied, validated again."""
        return dataclasses.replace(self, **changes)

    def with_ratio(self, ratio):
        """A copy whose WiCSum ratio is ``ratio`` (a float from 0 to 1) at the same precision."""
        return self.replace(wicsum_ratio_code=ratio_code(ratio, self.wicsum_ratio_bits))

    def to_dict(self):
        """The parameters as a plain dict (JSON-ready)."""
        return dataclasses.asdict(self)

    def to_json(self):
        """The parameters as a JSON text."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    def derived(self):
        """The derived widths and values as a dict, for reports."""
        names = ["wicsum_ratio", "bucket_bits", "full_refine_depth", "cluster_id_bits",
                 "hash_slot_bits", "distance_bits", "hcu_beats_per_hash", "weight_bits",
                 "threshold_bits", "row_bits", "wtu_bucket_shifts", "wtu_pass_bits"]
        return {name: getattr(self, name) for name in names}

    @classmethod
    def from_dict(cls, data, source="configuration"):
        """Build a configuration from a dict, rejecting unknown keys.

        Raises
        ------
        TypeError
            If ``data`` is not a dict or a value has the wrong type.
        ValueError
            If a key is unknown or a value is out of range; the message names ``source``.
        """
        if not isinstance(data, dict):
            raise TypeError(f"{source}: must be a JSON object, not {type(data).__name__}")
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"{source}: unknown parameter(s) {', '.join(unknown)}; "
                             f"known: {', '.join(sorted(known))}")
        try:
            return cls(**data)
        except (TypeError, ValueError) as error:
            raise type(error)(f"{source}: {error}") from None

    @classmethod
    def from_json(cls, text, source="configuration"):
        """Build a configuration from a JSON text (see :meth:`from_dict`)."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"{source}: not valid JSON ({error})") from None
        return cls.from_dict(data, source)


PRESETS = {
    "tiny": DREConfig(hash_bits=16, hamming_threshold=4, hcu_lanes=2, hcu_bits_per_cycle=4,
                      hash_mem_entries=16, max_clusters=64, score_bits=8, count_bits=8,
                      wtu_lanes=4, wtu_buckets=4, wtu_refine_depth=3, max_rows=8, topk_k=4,
                      kv_token_bits=10, recent_window=8, kvmu_page_tokens=4, max_frame_tokens=16),
    "edge": DREConfig(),
    "server": DREConfig(hcu_lanes=32, hcu_dispatch_width=4, hash_mem_entries=2048, max_clusters=8192, wtu_lanes=32,
                        topk_k=128, kv_token_bits=17, recent_window=128, kvmu_page_tokens=16,
                        max_frame_tokens=128),
}


def load_config(name_or_path):
    """A preset by name, or a configuration from a JSON file (partial files start from ``edge``).

    Parameters
    ----------
    name_or_path : str or pathlib.Path
        A key of :data:`PRESETS`, or the path of a JSON file of parameters.

    Raises
    ------
    ValueError
        If it is neither a preset nor a readable, valid JSON configuration file; the message
        names the file.
    """
    name = str(name_or_path)
    if name in PRESETS:
        return PRESETS[name]
    path = Path(name)
    if not path.is_file():
        raise ValueError(f"config must be a preset ({', '.join(PRESETS)}) or a JSON file, "
                         f"not {name!r}")
    data_source = f"{path}"
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise ValueError(f"{data_source}: cannot read a JSON configuration ({error})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{data_source}: must hold a JSON object of parameters")
    return DREConfig.from_dict({**PRESETS["edge"].to_dict(), **data}, data_source)
