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
    A compare of the token with a table hash runs ``hcu_bits_per_cycle`` (B) bits per cycle,
    least significant bits first (beat ``b`` covers bits ``b*B`` to ``b*B + B - 1``), and stops
    after the first beat at which the partial distance reaches ``hamming_threshold``, or after
    the last beat (``hcu_beats_per_hash``). A stopped compare can never be a match (its full
    distance is at least the threshold), so early exit never changes an assignment.
Cycle model
    A *job* is the compare of one token with one cluster; ``beats(t, c)`` is the number of
    beats it takes. Token ``t`` is compared with exactly the clusters in the table when it is
    decided (ids ``max(0, O - E)`` to ``O - 1``, ``O`` the clusters opened before it), in an
    order set by the schedule below; the ids below ``seen(t)`` (``O`` when the token was
    accepted) by a downward *walk*, the ids from ``seen(t)`` up by *catch-up* jobs as older
    tokens open clusters. Up to ``K = hcu_tokens_in_flight`` tokens are held; a token's *age* is
    the number of held tokens older than it. Every clock cycle ``x``, from the state at its
    start (``O`` counts the decisions before ``x``):

    * **decide**: the oldest token is decided in ``x`` if its walk is done, ``seen == O``, and
      it was accepted at most in ``x - 5`` and its jobs' last beat came at most in ``x - 4``
      (its slot's matches are cleared in the cycle after its acceptance); it leaves, a new
      cluster is written, ``O`` counts it from ``x + 1``;
    * **accept**: a token is accepted in ``x`` when fewer than ``K`` are held or one is
      decided in ``x``; its ``seen`` is ``O``;
    * **dispatch**: lane ``l`` is free in ``x`` if ``x`` is at least its last job's dispatch
      cycle plus ``max(beats, 5)``. The *walk token* is the oldest token whose walk is not
      done; with age ``a``, it walks down from ``u`` (``seen`` before its first walk job). If
      some token that is older than the walk token, or is the walk token with its walk begun,
      has ``seen < O``, the oldest such one gets one catch-up job (cluster ``seen``, then
      ``seen`` counts up). Otherwise the walk token gets jobs for its clusters ``u - 1``,
      ``u - 2``, ... while they are at least 0 and at least ``O + a - E`` (the older tokens
      cannot evict them), at most ``D = hcu_dispatch_width`` of them and at most one per free
      lane (``u`` counts down by their number). Job ``j`` of the cycle goes to the ``j``-th
      lowest-numbered free lane. The walk is done (from ``x + 1``) when, after this cycle's
      jobs, ``u == 0`` or ``a == 0`` and ``u + E <= O`` (the rest are evicted).

    A job dispatched in ``x`` passes three pipeline cycles before its first beat: ``x``
    the table read, ``x + 1`` the read data registered, ``x + 2`` the load (the registered
    hash XOR the token's, into the lane's registers), ``x + 3`` to ``x + 2 + beats`` its
    beats. A lane's availability is a register set two cycles ahead from the lane's own
    state (the compare in progress ends within four more beats), and the lanes of each
    cycle's jobs are chosen in the cycle before (a registered grant of the lowest free
    lanes, less those the jobs of that cycle take), so a lane given a job in ``x`` is free
    again in ``x + max(beats, 5)``: back to back when a compare takes at least 5 beats
    (always when ``hamming_threshold >= 5 * hcu_bits_per_cycle``, as on ``edge`` and
    ``server``), one to four idle cycles otherwise. Each lane keeps the best match of every held
    token (cleared in the cycle after the token's acceptance); each token slot reduces them
    over the lanes with a pipelined argmin of three registered stages (pairs of lanes first),
    so the matches after a beat in ``y`` (or the cleared ones, ``y`` the cycle after an
    acceptance) reach the decision in ``y + 4``.

    With neither stream stalling, token ``t`` (counted after reset) is offered from the cycle
    after token ``t - 1`` is accepted (token 0 in cycle 0). ``d(t)``, the cycle of its decision,
    is also the cycle its assignment is transferred and written to the table. A token's
    ``cycles`` is ``d(t) - d(t-1)`` (token 0: ``d(0)``, counted from its acceptance in cycle
    0), the interval between assignments, so the cycles of a stream add up to its time from
    first input to last output. ``useful_cycles``, the sum of its jobs' beats, counts the
    lane-cycles spent comparing; lane utilisation is ``useful_cycles / (hcu_lanes * cycles)``.

Context port
    The HCU's context is its table and its opened-cluster counter ``O``. :meth:`HashClusterTwin.save`
    gives its image in context words (:mod:`model.twins.context`): the header item ``O``
    (``cluster_id_bits + 1`` bits), then the hashes of the ``L = min(O, hash_mem_entries)``
    live table slots ``0 .. L - 1`` (slot ``c mod hash_mem_entries`` holds cluster ``c``), each
    an item of ``hash_bits``: ``1 + L * ceil(hash_bits / 32)`` words. A restored image is
    refused (the table left empty, ``O = 0``) when ``O > max_clusters``, a hash has a bit set
    above ``hash_bits``, a padding bit is set, or the image is not exactly that long. A save or
    restore starts with a ``ctx`` command beat, taken when the HCU holds no token (an offered
    command blocks new tokens meanwhile); the cycles are :func:`model.twins.context.save_cycles`
    and :func:`~model.twins.context.restore_cycles`. After a restore the HCU is idle with ``O``
    clusters opened, which is what :func:`schedule`'s ``opened`` assumes, so a stream saved and
    restored between its frames is assigned, and timed, exactly as the stream run straight.

File interface (``python -m sim.run hcu``): input ``hashes``; outputs ``cluster``, ``new``,
``distance`` and ``cycles`` (clock cycles per token without stalls, as above).
"""

import collections

import numpy as np

from model.npzio import ArraySpec, check_arrays
from model.twins.context import RestorableContext, words_of

__all__ = ["INPUTS", "OUTPUTS", "FIRST_BEAT_DELAY", "LANE_MIN_CYCLES", "DECIDE_DELAY",
           "CLEAR_DELAY", "TokenAssignment",
           "HashClusterTwin", "schedule",
           "check_hashes", "overflow_message", "exit_beats", "hash_cluster",
           "run_arrays", "summarize"]

INPUTS = [
    ArraySpec("hashes", "u", 1, "token hashes in arrival order, each below 2**hash_bits"),
]

OUTPUTS = [
    ArraySpec("cluster", "u", 1, "cluster id of each token (0, 1, 2, ... in opening order)"),
    ArraySpec("new", "b", 1, "1 when the token opened its cluster"),
    ArraySpec("distance", "u", 1, "Hamming distance to the joined cluster's hash (0 if new)"),
    ArraySpec("cycles", "u", 1, "HCU clock cycles from the previous assignment to this one"),
]

#: One token's assignment, the lowest cluster id in the table and the beats of its compare with
#: each cluster of the table from that id up (see the module docstring).
TokenAssignment = collections.namedtuple(
    "TokenAssignment", ["cluster", "new", "distance", "overflow", "first_id", "beats"])

_OVERFLOW_MODES = ("raise", "flag")

#: Cycles from a job's dispatch to its first beat (table read, read data registered, load into
#: the lane's registers).
FIRST_BEAT_DELAY = 3
#: Fewest cycles from a lane's job to its next job (its availability is a register set two
#: cycles ahead, the lanes of a cycle's jobs are chosen in the cycle before, and a job beats in
#: the lane three cycles after its dispatch).
LANE_MIN_CYCLES = 5
#: Registered argmin stages between the lanes' best matches and the decision: a token is decided
#: at least ``DECIDE_DELAY + 1`` cycles after its last beat and after its slot is cleared.
DECIDE_DELAY = 3
#: Cycles from a token's acceptance to the clearing of its slot's best matches in the lanes.
CLEAR_DELAY = 1


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


class HashClusterTwin(RestorableContext):
    """The HCU's table (cluster hashes, clusters opened) stepped one token at a time.

    :meth:`step` gives a token's assignment and the beats of its compare with every cluster of
    the table; :func:`schedule` turns the beats of a stream into clock cycles.

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

    @property
    def opened(self):
        """Clusters opened so far."""
        return self._opened

    def save(self):
        """The context image (header ``O``, then the live slots' hashes) as a list of words."""
        config = self._config
        live = min(self._opened, config.hash_mem_entries)
        words = words_of(self._opened, config.cluster_id_bits + 1)
        for slot in range(live):
            words += words_of(self._table[slot], config.hash_bits)
        return words

    def _read_image(self, reader):
        """The items of an image, checked (raises :class:`model.twins.context.ImageRefused`)."""
        config = self._config
        opened = reader.item(config.cluster_id_bits + 1, "the header")
        reader.require(opened <= config.max_clusters,
                       f"the header opens {opened} clusters, above max_clusters")
        table = [reader.item(config.hash_bits, f"hash {slot}")
                 for slot in range(min(opened, config.hash_mem_entries))]
        return opened, table

    def _load_image(self, state):
        opened, table = state
        self._table[:len(table)] = table
        self._opened = opened

    def _empty_context(self):
        self._opened = 0

    def step(self, token_hash):
        """Assign one token; returns a :class:`TokenAssignment`.

        Raises
        ------
        ValueError
            If the token would open cluster ``max_clusters`` and ``on_overflow="raise"``.
        """
        config = self._config
        entries = config.hash_mem_entries
        opened = self._opened
        first = max(0, opened - entries)
        ids = np.arange(first, opened)
        beats, match, distance = exit_beats(config, token_hash, self._table[ids % entries])
        result = dict(overflow=0, first_id=first, beats=beats)
        if match.any():
            best = np.lexsort((ids[match], distance[match]))[0]
            return TokenAssignment(int(ids[match][best]), 0, int(distance[match][best]),
                                   **result)
        if opened >= config.max_clusters:
            if self._on_overflow == "raise":
                raise ValueError(overflow_message(config))
            return TokenAssignment(0, 0, 0, **{**result, "overflow": 1})
        self._table[opened % entries] = token_hash
        self._opened += 1
        return TokenAssignment(opened, 1, 0, **result)


class _HeldToken:
    """Scheduling state of one token held by the HCU (see "Cycle model")."""

    def __init__(self, index, seen, accepted):
        self.index = index
        self.seen = seen
        # Last cycle in which one of its jobs works (or its slot is cleared).
        self.last_beat = accepted + CLEAR_DELAY
        self.jobs = 0


def schedule(config, first_ids, beats, opens, *, opened=0):
    """Clock cycle of every token's decision under the HCU's schedule ("Cycle model").

    The HCU is idle when the first token arrives (no token held, every lane free) and its
    table holds the ``opened`` clusters of the stream so far (0: after a reset). A unit that
    feeds the HCU one batch at a time (the DRE top, one frame per problem) times each batch
    with the clusters opened before it.

    Parameters
    ----------
    config : DREConfig
    first_ids : sequence of int
        Lowest cluster id in the table when each token is decided.
    beats : sequence of numpy.ndarray
        Per token, the beats of its compare with clusters ``first_ids[t]``,
        ``first_ids[t] + 1``, ... (one entry per cluster in the table when it is decided).
    opens : sequence of bool
        Whether each token opens a cluster.
    opened : int
        Clusters opened before the first token (the table's state when the batch starts).

    Returns
    -------
    numpy.ndarray of int64
        ``d(t)``, the cycle in which token ``t`` is decided (token 0 accepted in cycle 0).
    """
    entries = config.hash_mem_entries
    limit = config.hcu_tokens_in_flight
    width = config.hcu_dispatch_width
    count = len(beats)
    lane_free = [0] * config.hcu_lanes
    held = collections.deque()
    decided = np.zeros(count, np.int64)
    walk_age = 0          # age of the walk token (len(held) when every held walk is done)
    walk_begun = False
    walk_top = 0          # u: the walk's next cluster is u - 1
    next_token = 0
    cycle = 0
    while next_token < count or held:
        oldest = held[0] if held else None
        decide = (oldest is not None and walk_age >= 1 and oldest.seen == opened
                  and oldest.last_beat <= cycle - 1 - DECIDE_DELAY)
        accept = next_token < count and (len(held) < limit or decide)

        # Dispatch: one catch-up job, else up to ``width`` walk jobs, to the lowest-numbered
        # free lanes.
        jobs = []
        for token in list(held)[:walk_age + walk_begun]:
            if token.seen < opened:
                jobs = [(token, token.seen)]
                break
        walk_token = held[walk_age] if walk_age < len(held) else None
        top = walk_top if walk_begun else (walk_token.seen if walk_token else 0)
        free = [index for index, cycle_free in enumerate(lane_free) if cycle_free <= cycle]
        if not jobs and walk_token is not None:
            lowest = max(0, opened + walk_age - entries)
            count_now = max(0, min(width, len(free), top - lowest))
            jobs = [(walk_token, top - 1 - step) for step in range(count_now)]
        jobs = jobs[:len(free)]
        walked = 0
        for lane, (token, cluster) in zip(free, jobs):
            offset = cluster - first_ids[token.index]
            if not 0 <= offset < len(beats[token.index]):
                raise AssertionError(f"token {token.index} compared with cluster {cluster}, "
                                     f"not in its table")
            job_beats = int(beats[token.index][offset])
            lane_free[lane] = cycle + max(job_beats, LANE_MIN_CYCLES)
            token.last_beat = max(token.last_beat, cycle + FIRST_BEAT_DELAY - 1 + job_beats)
            token.jobs += 1
            if token is walk_token and cluster < token.seen:
                walked += 1
            else:
                token.seen += 1
        dispatched = bool(jobs)
        advance = False
        if walk_token is not None:
            after = top - walked
            advance = after == 0 or (walk_age == 0 and after + entries <= opened)
            walk_begun, walk_top = (False, 0) if advance else (walk_begun or walked > 0, after)

        # End of the cycle: the decision, the acceptance and the walk's progress take effect.
        seen = opened
        if decide:
            if oldest.jobs != len(beats[oldest.index]):
                raise AssertionError(f"token {oldest.index} decided after {oldest.jobs} of "
                                     f"{len(beats[oldest.index])} compares")
            held.popleft()
            decided[oldest.index] = cycle
            opened += bool(opens[oldest.index])
            walk_age -= 1
        if accept:
            held.append(_HeldToken(next_token, seen, cycle))
            next_token += 1
        walk_age += advance
        if decide or accept or dispatched or advance:
            cycle += 1
            continue
        # Nothing changes until a lane frees or the oldest token's last beat passes.
        events = [free for free in lane_free if free > cycle]
        if oldest is not None and oldest.last_beat >= cycle - DECIDE_DELAY:
            events.append(oldest.last_beat + 1 + DECIDE_DELAY)
        if not events:
            raise AssertionError(f"HCU schedule stuck in cycle {cycle}")
        cycle = min(events)
    return decided


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
        ``useful_cycles`` (lane-cycles spent comparing) and ``compared`` (clusters compared).

    Raises
    ------
    ValueError
        On invalid hashes, or when ``max_clusters`` is exceeded with ``on_overflow="raise"``.
    """
    hashes = check_hashes(config, hashes)
    twin = HashClusterTwin(config, on_overflow=on_overflow)
    rows = [twin.step(int(value)) for value in hashes]
    decided = schedule(config, [row.first_id for row in rows], [row.beats for row in rows],
                       [row.new for row in rows])
    result = {
        "cluster": np.array([row.cluster for row in rows], np.uint64),
        "new": np.array([row.new for row in rows], bool),
        "distance": np.array([row.distance for row in rows], np.uint64),
        "overflow": np.array([row.overflow for row in rows], bool),
        "cycles": np.diff(decided, prepend=0).astype(np.uint64),
        "useful_cycles": np.array([int(row.beats.sum()) for row in rows], np.uint64),
        "compared": np.array([len(row.beats) for row in rows], np.uint64),
    }
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
