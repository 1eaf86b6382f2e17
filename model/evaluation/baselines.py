"""Peer retrieval rules on the same traces as ReSV (the peers of the V-Rex paper, arXiv 2512.12284).

Each method sees one :class:`RetrievalProblem` (one layer, KV head and frame: the past cache's
post-RoPE keys, the frame's query rows, a token budget) and returns a bool mask of the past
tokens it retrieves. Every sparse method also keeps the ``recent_window`` most recent tokens
(held on chip, as ReSV does).

Budgets: the fixed-budget methods (ReKV, Quest, oracle top-k, StreamingLLM) get the **same number
of past tokens as ReSV retrieved for the same (layer, KV head, frame)**, rounded up to whole
frames (ReKV) or pages (Quest). This is generous to them (they inherit ReSV's adaptive per-head
budget); ReSV's edge must come from choosing better tokens. InfiniGen sets its own budget.

``full``
    every past token.
``streamingllm``
    :data:`SINK_TOKENS` attention sinks plus the most recent tokens, nothing retrieved.
``rekv``
    one block per frame, block key = mean of the frame's keys (post-RoPE here: the dumps hold
    post-RoPE keys), query = mean of the rows, raw dot product, top frames.
``quest``
    :data:`QUEST_PAGE`-token pages with per-channel min/max keys; page score per row
    ``sum_i max(q_i min_i, q_i max_i)``, maximum over rows; top pages.
``infinigen``
    speculative scores ``q . k`` on the :data:`INFINIGEN_CHANNEL_SHARE` of channels with the
    largest mean ``|k|`` (its skewed channels); per row, count the tokens whose scaled score is
    above ``max - alpha`` (:data:`INFINIGEN_ALPHA`); fetch the top ``mean count`` tokens of the
    head (scores summed over rows).
``topk_oracle``
    the tokens with the largest full attention probability summed over rows (an upper bound of
    any fixed top-k token rule at this budget).
"""

import dataclasses
import math

import numpy as np

__all__ = ["RetrievalProblem", "BASELINES", "SINK_TOKENS", "QUEST_PAGE", "INFINIGEN_ALPHA",
           "INFINIGEN_CHANNEL_SHARE", "full", "streamingllm", "rekv", "quest", "infinigen",
           "topk_oracle"]

SINK_TOKENS = 4
QUEST_PAGE = 16
INFINIGEN_ALPHA = 5.0
INFINIGEN_CHANNEL_SHARE = 0.25


@dataclasses.dataclass
class RetrievalProblem:
    """One (layer, KV head, frame) retrieval problem.

    Members
    -------
    past_keys : float (past, head_dim)
        Post-RoPE keys of the past cache.
    queries : float (rows, head_dim)
        The frame's query rows.
    frame_of_token : int (past,)
        Frame of each past token (non-decreasing).
    budget : int
        Past tokens the fixed-budget methods may retrieve (recent window included).
    recent_window : int
        Most recent past tokens always kept.
    probabilities : float (rows, past) or None
        Full-cache attention probabilities of the past tokens (``topk_oracle`` only).
    """

    past_keys: np.ndarray
    queries: np.ndarray
    frame_of_token: np.ndarray
    budget: int
    recent_window: int
    probabilities: np.ndarray = None

    @property
    def past(self):
        return len(self.past_keys)

    def base_mask(self):
        """The recent window."""
        mask = np.zeros(self.past, dtype=bool)
        mask[max(0, self.past - self.recent_window):] = True
        return mask


def _top_units(mask, unit_scores, unit_tokens, budget):
    """Add whole units (frames, pages, tokens) by decreasing score until ``budget`` tokens.

    ``unit_tokens`` is a list of index arrays; units already fully inside ``mask`` cost nothing.
    """
    count = int(mask.sum())
    for unit in np.argsort(-unit_scores, kind="stable"):
        if count >= budget:
            break
        tokens = unit_tokens[unit]
        count += int((~mask[tokens]).sum())
        mask[tokens] = True
    return mask


def full(problem):
    """Every past token."""
    return np.ones(problem.past, dtype=bool)


def streamingllm(problem):
    """Attention sinks plus the most recent ``budget - sinks`` tokens (at least the window)."""
    mask = problem.base_mask()
    mask[:SINK_TOKENS] = True
    recent = max(problem.budget - SINK_TOKENS, problem.recent_window)
    mask[max(0, problem.past - recent):] = True
    return mask


def _groups(labels):
    """Index arrays of the runs of equal values of a non-decreasing label array."""
    starts = np.flatnonzero(np.diff(labels, prepend=labels[0] - 1)) if len(labels) else []
    bounds = list(starts) + [len(labels)]
    return [np.arange(bounds[i], bounds[i + 1]) for i in range(len(starts))]


def rekv(problem):
    """ReKV: top frames by ``mean(rows) . mean(frame keys)``."""
    mask = problem.base_mask()
    if problem.past == 0:
        return mask
    frames = _groups(problem.frame_of_token)
    starts = np.array([tokens[0] for tokens in frames])
    sizes = np.array([tokens.size for tokens in frames])
    block_keys = np.add.reduceat(problem.past_keys, starts, axis=0) / sizes[:, None]
    scores = block_keys @ problem.queries.mean(axis=0)
    return _top_units(mask, scores, frames, problem.budget)


def quest(problem):
    """Quest: top 16-token pages by ``max over rows of sum_i max(q_i min_i, q_i max_i)``."""
    mask = problem.base_mask()
    if problem.past == 0:
        return mask
    pages = [np.arange(start, min(start + QUEST_PAGE, problem.past))
             for start in range(0, problem.past, QUEST_PAGE)]
    padded = len(pages) * QUEST_PAGE
    # pad the last page with copies of the last key: its min and max do not change
    rows = np.minimum(np.arange(padded), problem.past - 1)
    keys = problem.past_keys[rows].reshape(len(pages), QUEST_PAGE, -1)
    low, high = keys.min(axis=1), keys.max(axis=1)                        # (pages, d)
    # sum_i max(q_i min_i, q_i max_i) = q+ . max + q- . min
    positive, negative = np.maximum(problem.queries, 0), np.minimum(problem.queries, 0)
    scores = (positive @ high.T + negative @ low.T).max(axis=0)
    return _top_units(mask, scores, pages, problem.budget)


def infinigen(problem):
    """InfiniGen: speculative partial scores, budget = mean over rows of the tokens above
    ``max - alpha``."""
    mask = problem.base_mask()
    if problem.past == 0:
        return mask
    head_dim = problem.past_keys.shape[1]
    channels = max(1, int(round(INFINIGEN_CHANNEL_SHARE * head_dim)))
    skewed = np.argsort(-np.abs(problem.past_keys).mean(axis=0), kind="stable")[:channels]
    scores = problem.queries[:, skewed] @ problem.past_keys[:, skewed].T / math.sqrt(head_dim)
    above = scores > scores.max(axis=1, keepdims=True) - INFINIGEN_ALPHA
    budget = int(round(above.sum(axis=1).mean()))
    order = np.argsort(-scores.sum(axis=0), kind="stable")
    mask[order[:budget]] = True
    return mask


def topk_oracle(problem):
    """The ``budget`` tokens with the largest full attention summed over rows."""
    if problem.probabilities is None:
        raise ValueError("topk_oracle needs the problem's full attention probabilities")
    mask = problem.base_mask()
    mass = problem.probabilities.sum(axis=0)
    mass[mask] = -np.inf
    extra = max(0, problem.budget - int(mask.sum()))
    mask[np.argsort(-mass, kind="stable")[:extra]] = True
    return mask


#: name -> method, in the order of the reports.
BASELINES = {"full": full, "streamingllm": streamingllm, "rekv": rekv, "quest": quest,
             "infinigen": infinigen, "topk_oracle": topk_oracle}
