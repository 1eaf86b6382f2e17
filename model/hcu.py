"""Bit-exact, cycle-exact numpy twin of the hash-bit cluster unit (HCU).

The HCU assigns every incoming token hash to a cluster of the hash-cluster table: the cluster at
the smallest Hamming distance strictly below ``hamming_threshold``, or a new cluster led by the
token's own hash (leader clustering, ``PAPER.md`` section 5). This module is the scoreboard of the
RTL (:class:`hw.hcu.HashClusterUnit`): it returns the same assignments and, for every token, the
number of clock cycles the hardware takes.

Bit-exact contract
------------------
Widths
    A hash is ``hash_bits`` wide (unsigned; a value ``>= 2**hash_bits`` is an error). A cluster id
    is ``cluster_id_bits`` wide, a distance ``distance_bits`` wide.
Assignment
    Cluster ids count 0, 1, 2, ... in opening order. The table holds the most recent
    ``hash_mem_entries`` (E) clusters in a ring: cluster ``c`` lives in slot ``c mod E`` and is
    evicted when cluster ``c + E`` opens. A token joins the table cluster at the smallest Hamming
    distance ``d < hamming_threshold``; ties go to the lowest cluster id; the reported distance is
    ``d``. With no such cluster it opens cluster ``n`` (the number of clusters opened so far) with
    its own hash, reported with ``new = 1`` and distance 0. Frames do not reset the table: a token
    clusters with clusters of its own frame (spatial) and of earlier frames (temporal).
Full table, too many clusters
    A full table evicts its oldest cluster (above). Opening cluster number ``max_clusters``
    (ids would no longer fit ``cluster_id_bits``) raises ``ValueError`` with
    ``on_overflow="raise"`` (the default); with ``on_overflow="flag"`` the twin does what the
    RTL does: the token is reported with ``overflow = 1``, ``cluster = 0``, ``new = 0``,
    ``distance = 0``, the table is left unchanged, and later tokens still join existing clusters.
Early exit
    Table slot ``s`` is row ``s // hcu_lanes`` of bank ``s mod hcu_lanes``. A compare of the
    token with a slot runs ``hcu_bits_per_cycle`` (B) bits per cycle, least significant bits
    first (beat ``b`` covers bits ``b*B`` to ``b*B + B - 1``), and stops after the first beat at
    which the partial distance reaches ``hamming_threshold``, or after the last beat
    (``hcu_beats_per_hash``). A stopped compare can never be a match (its full distance is at
    least the threshold), so early exit never changes an assignment.
Cycle model
    ``exit(s)`` is the number of beats the compare with slot ``s`` takes. Token ``t`` (counted
    from 0 after reset) is compared by lane ``l`` with the valid rows of bank
    ``(l + t) mod hcu_lanes`` (the lane-to-bank mapping rotates every token), which keeps lane
    ``l`` busy ``w_l(t) = sum of exit(s)`` over those rows. At most ``TOKENS_IN_FLIGHT = 2``
    tokens are held: the oldest, decided next, and the one after it, which a lane starts as
    soon as it is free, except the lane whose bank the oldest token may write (bank
    ``(opened mod hash_mem_entries) mod hcu_lanes``), which waits for that decision. With
    neither stream stalling, in clock cycles counted from the input transfer of token 0:

    * token ``t`` is accepted in ``a(0) = 0``, ``a(1) = 1``,
      ``a(t) = max(a(t-1) + 1, d(t-2))``;
    * lane ``l`` starts it in ``S = max(a(t) + 1, F_l, d(t-1) + 1 if l waits)``, is busy
      ``max(w_l(t), 1)`` cycles (an empty bank still takes one) and is free again from
      ``F_l = S + max(w_l(t), 1)`` (``F_l = 0`` after reset);
    * its assignment is valid, transferred and written to the table in cycle
      ``d(t) = max(max_l F_l, d(t-1) + 1)``.

    A token's ``cycles`` is ``d(t) - d(t-1)`` (token 0: ``d(0) - a(0)``), the interval between
    assignments, so the cycles of a stream add up to its time from first input to last output.
    ``useful_cycles = sum_l w_l(t)`` counts the lane-cycles spent comparing; lane utilisation is
    ``useful_cycles / (hcu_lanes * cycles)``.

File interface (``python -m sim.run hcu``): input ``hashes``; outputs ``cluster``, ``new``,
``distance`` and ``cycles`` (clock cycles per token without stalls, as above).
"""

import collections

import numpy as np

from model.npzio import ArraySpec, check_arrays

__all__ = ["TOKENS_IN_FLIGHT", "INPUTS", "OUTPUTS", "TokenResult", "HashClusterTwin",
           "check_hashes", "overflow_message", "exit_beats", "bank_capacities", "hash_cluster",
           "run_arrays", "summarize", "codewords", "synthetic_hashes", "directed_streams"]

#: Tokens the HCU holds at once: the oldest, being decided, and the next, being compared.
TOKENS_IN_FLIGHT = 2

INPUTS = [
    ArraySpec("hashes", "u", 1, "token hashes in arrival order, each below 2**hash_bits"),
]

OUTPUTS = [
    ArraySpec("cluster", "u", 1, "cluster id of each token (0, 1, 2, ... in opening order)"),
    ArraySpec("new", "b", 1, "1 when the token opened its cluster"),
    ArraySpec("distance", "u", 1, "Hamming distance to the joined cluster's hash (0 if new)"),
    ArraySpec("cycles", "u", 1, "HCU clock cycles from the previous assignment to this one"),
]

#: One token's assignment and timing (see the module docstring for each field).
TokenResult = collections.namedtuple(
    "TokenResult", ["cluster", "new", "distance", "overflow", "cycles", "useful_cycles",
                    "compared"])

_OVERFLOW_MODES = ("raise", "flag")


def overflow_message(config):
    """Text of the error raised when a stream opens more than ``max_clusters`` clusters."""
    return (f"more than max_clusters = {config.max_clusters} clusters: cluster ids must fit "
            f"cluster_id_bits = {config.cluster_id_bits}; use a larger max_clusters")


def check_hashes(config, hashes, name="hashes"):
    """Validate token hashes against ``config`` and return them as a 1-D ``uint64`` array.

    Raises
    ------
    ValueError
        If ``hashes`` is not one-dimensional, holds non-integers or negative values, or a value
        is at least ``2**hash_bits``.
    """
    array = np.asarray(hashes)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, not shape {array.shape}")
    if array.size == 0:
        return np.zeros(0, np.uint64)
    if array.dtype.kind not in "iu":
        raise ValueError(f"{name} must hold integers, not dtype {array.dtype}")
    if array.dtype.kind == "i" and array.min() < 0:
        raise ValueError(f"{name} must be from 0 to 2**hash_bits - 1 = "
                         f"{(1 << config.hash_bits) - 1}, found {int(array.min())}")
    array = array.astype(np.uint64)
    if config.hash_bits < 64 and int(array.max()) >> config.hash_bits:
        raise ValueError(f"{name} must be from 0 to 2**hash_bits - 1 = "
                         f"{(1 << config.hash_bits) - 1}, found {int(array.max())}")
    return array


def exit_beats(config, token_hash, table_hashes):
    """Early-exit points and full-compare outcome of one token against table hashes.

    Parameters
    ----------
    config : DREConfig
    token_hash : int
    table_hashes : numpy.ndarray of uint64
        Stored cluster hashes.

    Returns
    -------
    beats : numpy.ndarray of int64
        Beats each compare takes (1 to ``hcu_beats_per_hash``).
    match : numpy.ndarray of bool
        Whether the full distance is below ``hamming_threshold`` (the compare ran to the end).
    distance : numpy.ndarray of int64
        The partial distance when the compare stopped (the full distance for matches).
    """
    width = config.hcu_bits_per_cycle
    count = config.hcu_beats_per_hash
    difference = np.asarray(table_hashes, np.uint64) ^ np.uint64(token_hash)
    shifts = np.arange(count, dtype=np.uint64) * np.uint64(width)
    mask = np.uint64((1 << width) - 1) if width < 64 else np.uint64(2**64 - 1)
    per_beat = np.bitwise_count((difference[:, None] >> shifts[None, :]) & mask).astype(np.int64)
    partial = np.cumsum(per_beat, axis=1)
    reached = partial >= config.hamming_threshold
    match = ~reached[:, -1]
    beats = np.where(match, count, np.argmax(reached, axis=1) + 1)
    distance = partial[np.arange(len(partial)), beats - 1]
    return beats.astype(np.int64), match, distance


def bank_capacities(config):
    """Slots of each lane's bank: slot ``s`` of the table belongs to bank ``s mod hcu_lanes``."""
    lanes = config.hcu_lanes
    return np.array([len(range(lane, config.hash_mem_entries, lanes)) for lane in range(lanes)])


class HashClusterTwin:
    """The HCU's state (cluster table, clusters opened) stepped one token at a time.

    Parameters
    ----------
    config : DREConfig
    on_overflow : str
        ``"raise"`` (ValueError when ``max_clusters`` would be exceeded) or ``"flag"`` (do what
        the RTL does, see the module docstring).

    Raises
    ------
    ValueError
        If ``on_overflow`` is not one of the two modes.
    """

    def __init__(self, config, *, on_overflow="raise"):
        if on_overflow not in _OVERFLOW_MODES:
            raise ValueError(f"on_overflow must be 'raise' or 'flag', not {on_overflow!r}")
        self._config = config
        self._on_overflow = on_overflow
        self._table = np.zeros(config.hash_mem_entries, np.uint64)
        self._opened = 0
        self._banks = np.arange(config.hash_mem_entries) % config.hcu_lanes
        # Timing state (see "Cycle model"): the cycle from which each lane is free, the decide
        # cycles of the last two tokens, the accept cycle and the write bank of the last token.
        self._tokens = 0
        self._lane_free = np.zeros(config.hcu_lanes, np.int64)
        self._decided = []
        self._accepted = 0
        self._last_write_bank = 0

    @property
    def opened(self):
        """Clusters opened so far."""
        return self._opened

    def cluster_ids(self):
        """Cluster id held by each valid slot, indexed by slot (length ``min(opened, E)``)."""
        entries = self._config.hash_mem_entries
        slots = np.arange(min(self._opened, entries))
        write_slot = self._opened % entries
        epoch_base = self._opened - write_slot
        return np.where(slots < write_slot, epoch_base + slots, epoch_base - entries + slots)

    def _advance_time(self, bank_time):
        """Schedule the lanes' walks of the next token; returns its cycles (decide interval)."""
        lanes = self._config.hcu_lanes
        token = self._tokens
        if token == 0:
            accepted = 0
        elif token < TOKENS_IN_FLIGHT:
            accepted = self._accepted + 1
        else:
            accepted = max(self._accepted + 1, self._decided[-TOKENS_IN_FLIGHT])
        banks = (np.arange(lanes) + token) % lanes
        start = np.maximum(self._lane_free, accepted + 1)
        if token:
            gated = banks == self._last_write_bank
            start[gated] = np.maximum(start[gated], self._decided[-1] + 1)
        done = start + np.maximum(bank_time[banks], 1)
        decided = int(done.max())
        previous = self._decided[-1] if token else accepted
        if token:
            decided = max(decided, previous + 1)
        self._lane_free = done
        self._decided = (self._decided + [decided])[-TOKENS_IN_FLIGHT:]
        self._accepted = accepted
        self._last_write_bank = self._opened % self._config.hash_mem_entries % lanes
        self._tokens += 1
        return decided - previous

    def step(self, token_hash):
        """Assign one token; returns a :class:`TokenResult`.

        Raises
        ------
        ValueError
            If the token would open cluster ``max_clusters`` and ``on_overflow="raise"``.
        """
        config = self._config
        valid = min(self._opened, config.hash_mem_entries)
        beats, match, distance = exit_beats(config, token_hash, self._table[:valid])
        bank_time = np.bincount(self._banks[:valid], weights=beats,
                                minlength=config.hcu_lanes).astype(np.int64)
        cycles = self._advance_time(bank_time)
        useful = int(beats.sum())
        if match.any():
            ids = self.cluster_ids()[match]
            distances = distance[match]
            best = np.lexsort((ids, distances))[0]
            return TokenResult(int(ids[best]), 0, int(distances[best]), 0, cycles, useful, valid)
        if self._opened >= config.max_clusters:
            if self._on_overflow == "raise":
                raise ValueError(overflow_message(config))
            return TokenResult(0, 0, 0, 1, cycles, useful, valid)
        cluster = self._opened
        self._table[cluster % config.hash_mem_entries] = token_hash
        self._opened += 1
        return TokenResult(cluster, 1, 0, 0, cycles, useful, valid)


def hash_cluster(config, hashes, *, on_overflow="raise"):
    """Run the HCU twin over a stream of token hashes from an empty table.

    Parameters
    ----------
    config : DREConfig
    hashes : array-like of int
        Token hashes in arrival order.
    on_overflow : str
        ``"raise"`` or ``"flag"`` (see :class:`HashClusterTwin`).

    Returns
    -------
    dict of numpy.ndarray
        Per token: ``cluster``, ``new`` (bool), ``distance``, ``overflow`` (bool), ``cycles``,
        ``useful_cycles`` (lane-cycles spent comparing) and ``compared`` (valid table entries).

    Raises
    ------
    ValueError
        On invalid hashes, or when ``max_clusters`` is exceeded with ``on_overflow="raise"``.
    """
    hashes = check_hashes(config, hashes)
    twin = HashClusterTwin(config, on_overflow=on_overflow)
    rows = [twin.step(int(value)) for value in hashes]
    columns = list(zip(*rows)) if rows else [()] * len(TokenResult._fields)
    result = {}
    for field, column in zip(TokenResult._fields, columns):
        dtype = bool if field in ("new", "overflow") else np.uint64
        result[field] = np.array(column, dtype=dtype)
    return result


def summarize(config, result):
    """Throughput and efficiency figures of a :func:`hash_cluster` result (JSON-ready dict).

    ``lane_utilisation`` is useful lane-cycles over ``hcu_lanes * cycles``; ``early_exit_bits``
    the hash bits compared with early exit over those of full compares.
    """
    cycles = int(result["cycles"].sum())
    useful = int(result["useful_cycles"].sum())
    compared = int(result["compared"].sum())
    tokens = len(result["cycles"])
    return {
        "tokens": tokens,
        "clusters": int(result["new"].sum()),
        "cycles": cycles,
        "cycles_per_token": cycles / tokens if tokens else 0.0,
        "lane_utilisation": useful / (config.hcu_lanes * cycles) if cycles else 0.0,
        "bits_with_early_exit": useful * config.hcu_bits_per_cycle,
        "bits_without_early_exit": compared * config.hash_bits,
        "early_exit_ratio": useful / (compared * config.hcu_beats_per_hash) if compared else 0.0,
    }


def run_arrays(config, arrays):
    """File-interface entry point: validated ``hashes`` in, ``cluster/new/distance/cycles`` out.

    Raises
    ------
    ValueError
        If a key is missing or malformed, a hash is at least ``2**hash_bits``, or the stream
        opens more than ``max_clusters`` clusters.
    """
    arrays = check_arrays("hcu input", INPUTS, arrays)
    result = hash_cluster(config, arrays["hashes"])
    return {spec.name: result[spec.name] for spec in OUTPUTS}


# Stimuli shared by the tests and the benchmark -------------------------------------------------


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
