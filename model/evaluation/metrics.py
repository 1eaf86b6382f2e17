"""Quality and cost of a retrieved token set, measured against full-cache attention.

For one (layer, KV head, frame), :class:`FrameAttention` computes the full-cache softmax of every
query row over the past cache plus the frame's own tokens (attention within the frame is full:
every row sees all of the frame's tokens, which are prefilled together and always on chip). A
retrieval method keeps a subset of the past tokens; attention restricted to a subset is the full
softmax renormalised over it, so each method costs one masked sum:

``recall``
    attention-mass recall: full-cache probability mass on the attended tokens (retrieved past
    tokens and the frame's own tokens), averaged over rows (1 = nothing lost);
``output_error``
    relative error of the attention output, ``||o - o_full|| / ||o_full||``, averaged over rows;
``retrieved``, ``ratio``
    retrieved past tokens and their share of the past cache;
``bytes_fetched``
    K and V bytes fetched from off-chip memory: retrieved past tokens outside the on-chip recent
    window, ``2 * head_dim * bytes_per_element`` each.
"""

import math

import numpy as np

__all__ = ["FrameAttention", "summarize", "METRIC_NAMES"]

METRIC_NAMES = ("retrieved", "past", "ratio", "recall", "output_error", "bytes_fetched")


class FrameAttention:
    """Full-cache attention of one frame's query rows, ready to score token subsets.

    Parameters
    ----------
    queries : float array (rows, head_dim)
    past_keys, past_values : float arrays (past, head_dim)
    own_keys, own_values : float arrays (frame_tokens, head_dim)
    """

    def __init__(self, queries, past_keys, past_values, own_keys, own_values):
        queries = np.asarray(queries, dtype=np.float64)
        self._head_dim = queries.shape[1]
        keys = np.concatenate([past_keys, own_keys])
        values = np.concatenate([past_values, own_values])
        logits = queries @ keys.T / math.sqrt(self._head_dim)
        probs = np.exp(logits - logits.max(axis=1, keepdims=True))
        probs /= probs.sum(axis=1, keepdims=True)
        self._past = len(past_keys)
        self._probs = probs
        self._values = values
        self._full_output = probs @ values
        self._full_norm = np.maximum(np.linalg.norm(self._full_output, axis=1), 1e-30)

    @property
    def past(self):
        return self._past

    @property
    def probabilities(self):
        """Full-cache attention probabilities (rows, past + frame tokens)."""
        return self._probs

    def evaluate(self, retrieved, recent_window=0, bytes_per_element=2):
        """Metrics of a retrieved set of past tokens.

        Parameters
        ----------
        retrieved : bool array (past,)
        recent_window : int
            Most recent past tokens held on chip (not counted in ``bytes_fetched``).

        Returns
        -------
        dict with the keys of :data:`METRIC_NAMES`
        """
        retrieved = np.asarray(retrieved, dtype=bool)
        if retrieved.shape != (self._past,):
            raise ValueError(f"retrieved must have shape ({self._past},), not {retrieved.shape}")
        attended = np.concatenate([retrieved, np.ones(self._probs.shape[1] - self._past, bool)])
        kept = self._probs[:, attended]
        mass = kept.sum(axis=1)
        output = (kept @ self._values[attended]) / mass[:, None]
        error = np.linalg.norm(output - self._full_output, axis=1) / self._full_norm
        off_chip = retrieved[:max(0, self._past - recent_window)].sum()
        count = int(retrieved.sum())
        return {"retrieved": count, "past": self._past,
                "ratio": count / self._past if self._past else 1.0,
                "recall": float(mass.mean()), "output_error": float(error.mean()),
                "bytes_fetched": int(off_chip) * 2 * self._head_dim * bytes_per_element}


def summarize(records):
    """Mean of every numeric metric over a list of metric dicts (``count`` = records)."""
    if not records:
        return {"count": 0}
    result = {"count": len(records)}
    for name in records[0]:
        values = [record[name] for record in records]
        if all(isinstance(value, (int, float, np.integer, np.floating)) for value in values):
            result[name] = float(np.mean(values))
    return result
