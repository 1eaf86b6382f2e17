"""Small HCU configurations shared by the twin tests and the Amaranth-simulator tests."""

from model.config import DREConfig

__all__ = ["small_config"]


def small_config(**changes):
    """A tiny-sized HCU configuration (16-bit hashes, threshold 4, 2 lanes, 4 bits per cycle,
    16 entries, 4 WTU lanes) with ``changes`` applied; the dispatch width defaults to ``min(2, hcu_lanes)``."""
    values = dict(hash_bits=16, hamming_threshold=4, hcu_lanes=2, hcu_bits_per_cycle=4,
                  hash_mem_entries=16, max_clusters=64, topk_k=4, wtu_lanes=4)
    values.update(changes)
    values.setdefault("hcu_dispatch_width", min(2, values["hcu_lanes"]))
    return DREConfig(**values)
