"""KV memory accounting (model/evaluation/kvmem.py)."""

import pytest

from model.config import PRESETS
from model.evaluation.kvmem import (GIB, bytes_per_hour, bytes_per_token, cache_bytes, hc_entry_bytes,
                         hc_table_overhead)


def test_llama3_8b_bf16_is_128_kib_per_token():
    # Llama-3-8B: 32 layers x 8 KV heads x 128 x 2 (K, V) x 2 B = 131072 B = 128 KiB
    assert bytes_per_token(32, 8, 128) == 131072
    # and 40K tokens take about 5.2 GB (V-Rex paper): 40000 x 131072 = 5.24e9 B
    assert cache_bytes(40_000, 32, 8, 128) == 5_242_880_000


def test_28_layer_4_head_model_at_196_tokens_per_frame_and_1_fps():
    # worked by hand: 28 x 4 x 128 x 2 x 2 = 57344 B/token; x 196 x 3600 = 40.46e9 B = 37.68 GiB
    assert bytes_per_token(28, 4, 128) == 57344
    per_hour = bytes_per_hour(196, 1, 28, 4, 128)
    assert per_hour == 57344 * 196 * 3600
    assert per_hour / GIB == pytest.approx(37.68, abs=0.005)


def test_hc_table_entry_and_overhead():
    edge = PRESETS["edge"]
    # worked by hand, edge: 32 hash + 16 count + 16 address bits = 8 B, + 128 x 2 B key = 264 B
    assert hc_entry_bytes(edge, 128) == 264
    # 1 cluster per 32 tokens of one head: 264 / (32 x 128 x 2 x 2) = 264 / 16384 = 1.61%
    assert hc_table_overhead(10, 320, edge, 128) == pytest.approx(264 / 16384)
    assert hc_table_overhead(0, 0, edge, 128) == 0.0


def test_invalid_arguments():
    with pytest.raises(ValueError, match="layers must be a number of at least 1, not 0"):
        bytes_per_token(0, 8, 128)
    with pytest.raises(ValueError, match="fps must be a number"):
        bytes_per_hour(10, 0, 32, 8, 128)
