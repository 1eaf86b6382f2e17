"""Retrieval-buffer problems in a cluster-contiguous layout: hand-made and seeded random ones.

Stimulus only: the twin (:mod:`model.twins.retrieval_buffer`) and the tests take these problems
(the input dict of :func:`model.twins.retrieval_buffer.retrieve`) as input.
"""

import numpy as np

from model.twins.retrieval_buffer import MODE_DYNAMIC

__all__ = ["make_problem", "random_problem"]


def make_problem(scores, counts, selected=None, gaps=None, mode=MODE_DYNAMIC):
    """A problem (the input dict of :func:`retrieve`) in a cluster-contiguous layout.

    Cluster ``c`` starts ``gaps[c]`` tokens (default 0) after the end of cluster ``c - 1``
    (cluster 0 after address 0); ``selected`` defaults to all ones.
    """
    count = np.asarray(counts, dtype=np.int64)
    gaps = np.zeros_like(count) if gaps is None else np.asarray(gaps, dtype=np.int64)
    base = np.cumsum(gaps) + np.concatenate(([0], np.cumsum(count)[:-1]))
    selected = (np.ones(count.shape, bool) if selected is None
                else np.asarray(selected).astype(bool))
    return {"selected": selected, "scores": np.asarray(scores, dtype=np.int64),
            "base": base.astype(np.int64), "count": count, "mode": int(mode)}


def random_problem(config, rng, clusters=None, mode=None):
    """A seeded random valid problem: the input dict of :func:`retrieve` (stimulus for tests).

    Scores come from a narrow range (ties are common), about a third of the gaps between
    clusters are zero (merges are common), some counts are 0 or ``max_count`` when the address
    space allows it.

    Parameters
    ----------
    config : DREConfig
        Supplies the widths.
    rng : numpy.random.Generator
        The seeded generator.
    clusters : int, optional
        Clusters of the problem (default: random, 1 to ``min(max_clusters, 24)``).
    mode : int, optional
        The mode (default: random).
    """
    if clusters is None:
        clusters = int(rng.integers(1, min(config.max_clusters, 24) + 1))
    address_space = 1 << config.kv_token_bits
    largest = min(config.max_count, address_space // (2 * clusters))
    count = rng.integers(0, largest + 1, clusters)
    count[rng.random(clusters) < 0.1] = largest
    count[rng.random(clusters) < 0.1] = 0
    gaps = rng.integers(0, largest + 1, clusters) * (rng.random(clusters) < 0.6)
    score_range = int(rng.choice([2, 8, config.max_score + 1]))
    scores = rng.integers(max(0, config.max_score + 1 - score_range), config.max_score + 1,
                          clusters)
    selected = rng.random(clusters) < rng.choice([0.0, 0.5, 0.9, 1.0])
    return make_problem(scores, count, selected, gaps,
                        int(rng.integers(0, 2)) if mode is None else mode)
