"""Synthetic token-hash streams for the HCU: far-apart codewords, clustered streams, corner cases.

Stimulus only: the twin (:mod:`model.twins.hcu`) and the tests take these streams as input.
"""

import numpy as np

__all__ = ["codewords", "synthetic_hashes", "directed_streams"]

def _low_mask(bits):
    return (1 << bits) - 1


def codewords(config, count, rng, *, window=None, avoid=()):
    """``count`` random hashes, each at least ``hamming_threshold`` from the ``window`` before it.

    Parameters
    ----------
    config : DREConfig
    count : int
    rng : numpy.random.Generator
    window : int, optional
        How many preceding words each new word must be far from (default: all of them).
    avoid : iterable of int
        Words every new word must also be far from.

    Raises
    ------
    ValueError
        If no such word is found in a bounded number of draws (the hash space is too small).
    """
    words = []
    avoid = [int(word) for word in avoid]
    for _ in range(count):
        recent = words if window is None else words[max(0, len(words) - window):]
        others = np.array(recent + avoid, np.uint64)
        for _attempt in range(1000):
            word = int(rng.integers(0, 1 << config.hash_bits, dtype=np.uint64))
            if not len(others) or np.bitwise_count(others ^ np.uint64(word)).min() \
                    >= config.hamming_threshold:
                words.append(word)
                break
        else:
            raise ValueError(f"cannot draw {count} hashes {config.hamming_threshold} bits apart "
                             f"in {config.hash_bits} bits")
    return words


def synthetic_hashes(config, count, rng, *, centres=None, flips=None):
    """A stream of ``count`` hashes scattered around random centres (tests and benchmarks).

    Each hash is a random centre with ``0`` to ``flips`` random bits flipped (default: up to
    ``hamming_threshold`` bits, so some tokens join and some open clusters); ``centres``
    defaults to ``count // 4 + 1``.
    """
    centres = count // 4 + 1 if centres is None else centres
    flips = config.hamming_threshold if flips is None else flips
    base = rng.integers(0, 1 << config.hash_bits, size=centres, dtype=np.uint64)
    picks = base[rng.integers(0, centres, size=count)]
    result = []
    for value in picks:
        bits = rng.choice(config.hash_bits, size=int(rng.integers(0, flips + 1)), replace=False)
        result.append(int(value) ^ sum(1 << int(bit) for bit in bits))
    return np.array(result, np.uint64)


def directed_streams(config, seed=0):
    """Named corner-case streams, each meant to run from an empty table.

    ``empty_table`` one token; ``threshold_minus_one`` a token ``hamming_threshold - 1`` bits
    from a cluster (joins); ``threshold`` a token ``hamming_threshold`` bits away (opens a
    cluster); ``tie`` a token equally near two clusters (joins the lower id);
    ``tie_after_wrap`` the same once the table has wrapped, so the lower id sits in the higher
    slot; ``identical_frame`` a frame of identical hashes; ``full_table`` one and a half tables
    of far-apart hashes, then the evicted and the kept ones again. ``tie`` and
    ``tie_after_wrap`` need ``2 * (hamming_threshold - 1) >= hamming_threshold``, i.e. a
    threshold of at least 2, and are left out otherwise.

    Returns
    -------
    dict
        name -> list of int hashes.
    """
    rng = np.random.default_rng(seed)
    threshold = config.hamming_threshold
    entries = config.hash_mem_entries
    first = int(rng.integers(0, 1 << config.hash_bits, dtype=np.uint64))
    streams = {
        "empty_table": [first],
        "threshold_minus_one": [first, first ^ _low_mask(threshold - 1)],
        "threshold": [first, first ^ _low_mask(threshold)],
        "identical_frame": [first] * 10,
    }
    near = threshold - 1
    if threshold >= 2 and 2 * near <= config.hash_bits:
        spread = _low_mask(2 * near)
        streams["tie"] = [first, first ^ spread, first ^ _low_mask(near)]
        # Cluster 1 and cluster E (which evicts cluster 0 into slot 0) are equally near the
        # last token; every other cluster is far from all three.
        partner = first ^ spread
        token = first ^ _low_mask(near)
        others = codewords(config, entries - 1, rng, avoid=(first, partner, token))
        streams["tie_after_wrap"] = [others[0], first] + others[1:] + [partner, token]
    words = codewords(config, entries + entries // 2, rng)
    streams["full_table"] = words + words[:entries // 2] + words[-entries // 2:]
    return streams
