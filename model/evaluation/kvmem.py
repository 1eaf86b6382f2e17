"""KV-cache memory accounting: bytes per token, per stream duration, and the HC table's size.

A token's KV footprint is ``layers * kv_heads * head_dim * 2 (K and V) * bytes_per_element``
(Llama-3-8B in BF16 takes 128 KiB per token).

The hash-cluster (HC) table entry of one cluster of one (layer, KV head), as this project counts
it (the paper gives only the total, 1.67% of the KV cache):

* the cluster hash, ``hash_bits``;
* the representative key, ``head_dim`` elements of ``bytes_per_element`` bytes (BF16: 2);
* the token count, ``count_bits``;
* the base address of the cluster's tokens in the cluster-contiguous KV layout, ``kv_token_bits``
  (member tokens are contiguous, so base + count name them all);

rounded up to whole bytes. At 32 tokens per cluster and head_dim 128 in BF16 this is
``(4 + 256 + 2 + 2) / (32 * 512) = 1.6%`` of the KV cache, close to the paper's 1.67%.
"""

import math

__all__ = ["bytes_per_token", "cache_bytes", "bytes_per_hour", "hc_entry_bytes",
           "hc_table_overhead", "GIB", "KIB"]

KIB = 1024
GIB = 1024 ** 3


def _check(name, value, lowest=1):
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not value >= lowest:
        raise ValueError(f"{name} must be a number of at least {lowest}, not {value!r}")


def bytes_per_token(layers, kv_heads, head_dim, bytes_per_element=2):
    """KV bytes of one token over all layers and KV heads (K and V)."""
    for name, value in (("layers", layers), ("kv_heads", kv_heads), ("head_dim", head_dim),
                        ("bytes_per_element", bytes_per_element)):
        _check(name, value)
    return layers * kv_heads * head_dim * 2 * bytes_per_element


def cache_bytes(tokens, layers, kv_heads, head_dim, bytes_per_element=2):
    """KV bytes of a cache of ``tokens`` tokens."""
    _check("tokens", tokens, 0)
    return tokens * bytes_per_token(layers, kv_heads, head_dim, bytes_per_element)


def bytes_per_hour(tokens_per_frame, fps, layers, kv_heads, head_dim, bytes_per_element=2):
    """KV bytes one hour of streaming adds (no eviction)."""
    _check("tokens_per_frame", tokens_per_frame)
    _check("fps", fps, 1e-9)
    return tokens_per_frame * fps * 3600 * bytes_per_token(layers, kv_heads, head_dim,
                                                           bytes_per_element)


def hc_entry_bytes(config, head_dim, bytes_per_element=2):
    """Bytes of one HC table entry (format in the module docstring)."""
    _check("head_dim", head_dim)
    bits = config.hash_bits + config.count_bits + config.kv_token_bits
    return math.ceil(bits / 8) + head_dim * bytes_per_element


def hc_table_overhead(clusters, tokens, config, head_dim, bytes_per_element=2):
    """HC table bytes / KV bytes of one (layer, KV head) with ``clusters`` clusters of ``tokens``
    tokens (0 for an empty cache)."""
    if tokens <= 0:
        return 0.0
    table = clusters * hc_entry_bytes(config, head_dim, bytes_per_element)
    return table / (tokens * head_dim * 2 * bytes_per_element)
