"""Retrieval metrics against full-cache attention (model/evaluation/metrics.py)."""

import math

import numpy as np
import pytest

from model.evaluation.metrics import FrameAttention, summarize


def test_worked_by_hand():
    # head_dim 1, one row q = ln 3; past keys [1, 0] (values [10, 0]), own key [0] (value 5):
    # logits [ln 3, 0, 0] -> probabilities [3/5, 1/5, 1/5]
    attention = FrameAttention(np.array([[math.log(3.0)]]), np.array([[1.0], [0.0]]),
                               np.array([[10.0], [0.0]]), np.array([[0.0]]), np.array([[5.0]]))
    assert np.allclose(attention.probabilities, [[0.6, 0.2, 0.2]])
    full = attention.evaluate(np.array([True, True]))
    assert full["recall"] == pytest.approx(1.0) and full["output_error"] == pytest.approx(0.0)
    # keep token 0 only: recall 0.6 + 0.2 (own token) = 0.8; output (0.6 * 10 + 0.2 * 5) / 0.8
    # = 8.75 vs full 0.6 * 10 + 0.2 * 5 = 7 -> error 1.75 / 7 = 0.25
    kept = attention.evaluate(np.array([True, False]), recent_window=0)
    assert kept["recall"] == pytest.approx(0.8)
    assert kept["output_error"] == pytest.approx(0.25)
    assert (kept["retrieved"], kept["past"], kept["ratio"]) == (1, 2, 0.5)
    # bytes: 1 token x 2 (K, V) x head_dim 1 x 2 B
    assert kept["bytes_fetched"] == 4
    # a token inside the recent window is on chip: not fetched
    assert attention.evaluate(np.array([False, True]), recent_window=1)["bytes_fetched"] == 0


def test_restricted_softmax_equals_direct_computation():
    rng = np.random.default_rng(3)
    q, keys, values = rng.standard_normal((3, 8)), rng.standard_normal((30, 8)), \
        rng.standard_normal((30, 8))
    attention = FrameAttention(q, keys[:25], values[:25], keys[25:], values[25:])
    mask = rng.random(25) < 0.4
    attended = np.concatenate([mask, np.ones(5, bool)])
    logits = q @ keys[attended].T / math.sqrt(8)
    weights = np.exp(logits - logits.max(axis=1, keepdims=True))
    weights /= weights.sum(axis=1, keepdims=True)
    direct = weights @ values[attended]
    full_logits = q @ keys.T / math.sqrt(8)
    full = np.exp(full_logits - full_logits.max(axis=1, keepdims=True))
    full /= full.sum(axis=1, keepdims=True)
    expected = np.mean(np.linalg.norm(direct - full @ values, axis=1) /
                       np.linalg.norm(full @ values, axis=1))
    assert attention.evaluate(mask)["output_error"] == pytest.approx(expected)
    with pytest.raises(ValueError, match=r"retrieved must have shape \(25,\)"):
        attention.evaluate(np.ones(3, bool))


def test_summarize():
    assert summarize([]) == {"count": 0}
    assert summarize([{"a": 1, "b": "x"}, {"a": 3, "b": "y"}]) == {"count": 2, "a": 2.0}
