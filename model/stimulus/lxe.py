"""The DRE's environment on a KV dump: the LXE (hashes, representative keys, score rows) and the
problem list, for the DRE's file interface (``python -m sim.run dre``).

Per (layer, KV head) of a dump (:mod:`model.stimulus.kvdump`), :class:`LXEHead` plays the LLM
engine beside the DRE: it hashes the frame's keys on the head's hyperplanes
(:func:`model.reference.resv.make_hyperplanes`, :func:`~model.reference.resv.hash_keys`), keeps
the running key sum and member count of every cluster from the assignments the DRE reports (the
representative key is the mean of the members, as :class:`model.reference.resv.ResvHead` keeps
it, frame by frame in the same order, so the floats are equal), and quantises the frame's query
rows against the representatives (:func:`~model.reference.resv.quantize_scores`).

Problems are numbered in (frame, layer, KV head) order over the requested slice; frames before
the slice's first frame are run too (they build the context) but are not reported. Ragged
per-problem data is flattened with offsets of length problems + 1 (:data:`OUTPUTS`).
"""

import numpy as np

from model.npzio import ArraySpec
from model.reference.resv import hash_keys, make_hyperplanes, quantize_scores
from model.twins import kvmu as kvmu_twin

__all__ = ["OUTPUTS", "LXEHead", "LXEFrame", "problem_slice", "check_dump_fits", "flatten",
           "empty_outputs"]

OUTPUTS = [
    ArraySpec("problem_frame", "u", 1, "frame of each problem [P], (frame, layer, head) order"),
    ArraySpec("problem_layer", "u", 1, "layer of each problem [P]"),
    ArraySpec("problem_head", "u", 1, "KV head of each problem [P]"),
    ArraySpec("hyperplanes", "f", 4,
              "[layers, kv_heads, head_dim, hash_bits]: bit i = keys @ hyperplanes[..., i] > 0"),
    ArraySpec("token_hash", "u", 3, "[layers, kv_heads, tokens] hash of every token run (else 0)"),
    ArraySpec("token_cluster", "i", 3,
              "[layers, kv_heads, tokens] cluster of every token run (-1: not run)"),
    ArraySpec("past_tokens", "u", 1, "per problem: tokens of the stream before its frame"),
    ArraySpec("cluster_offsets", "u", 1, "P + 1 offsets into cluster_count and selected"),
    ArraySpec("cluster_count", "u", 1,
              "per problem and cluster: tokens up to and including the frame (<= max_count)"),
    ArraySpec("selected", "b", 1, "per problem and cluster: selected (OR over the rows)"),
    ArraySpec("score_offsets", "u", 1, "P + 1 offsets into score"),
    ArraySpec("score", "u", 1, "per problem: rows x clusters quantised scores, row-major"),
    ArraySpec("rows", "u", 1, "per problem: query rows (0: the frame has no queries)"),
    # The offload moves, fetch descriptors and fetched tokens, as the KVMU's file interface
    # names them (per problem P of the run).
    *(spec for spec in kvmu_twin.OUTPUTS if spec.name.startswith(("move_", "desc_", "fetch_"))),
    ArraySpec("hcu_overflow", "b", 1, "per problem: a token found no cluster id (max_clusters)"),
    ArraySpec("store_full", "b", 1, "per problem: the store had no page left (sticky)"),
    ArraySpec("cycles", "u", 1, "per problem: DRE cycles from command to status, no stalls"),
    ArraySpec("cycles_hcu", "u", 1, "per problem: cycles of the HCU phase"),
    ArraySpec("cycles_kvmu", "u", 1,
              "per problem: cycles of the KVMU's problem, its waits for the WTU excluded"),
    ArraySpec("cycles_wtu", "u", 1,
              "per problem: cycles the KVMU waits for the WTU's selection (rows, aggregate)"),
]


class LXEHead:
    """The LXE's side of one (layer, KV head) stream: hashes, member sums, score rows.

    Parameters
    ----------
    config : DREConfig
    keys : float array (tokens, head_dim)
        Post-RoPE keys of the stream.
    hyperplanes : float array (hash_bits, head_dim)
    """

    def __init__(self, config, keys, hyperplanes):
        self._config = config
        self._keys = np.asarray(keys, dtype=np.float64)
        self._hyperplanes = np.asarray(hyperplanes, dtype=np.float64)
        head_dim = self._keys.shape[1]
        self._sums = np.zeros((config.max_clusters, head_dim))
        self._means = np.zeros((config.max_clusters, head_dim))
        self._members = np.zeros(config.max_clusters, dtype=np.int64)

    def hashes(self, start, stop):
        """Hashes of tokens ``start`` to ``stop - 1``: uint64."""
        return hash_keys(self._keys[start:stop], self._hyperplanes)

    def add(self, start, cluster):
        """Take the DRE's assignments of the tokens from ``start`` on (member sums, means)."""
        cluster = np.asarray(cluster, dtype=np.int64)
        touched = np.unique(cluster)
        np.add.at(self._sums, cluster, self._keys[start:start + cluster.size])
        np.add.at(self._members, cluster, 1)
        self._means[touched] = self._sums[touched] / self._members[touched, None]

    def score_rows(self, queries, clusters):
        """Quantised scores of ``queries`` (rows, head_dim) against clusters ``0 .. clusters-1``."""
        logits = np.asarray(queries, dtype=np.float64) @ self._means[:clusters].T
        return quantize_scores(logits, self._config.score_bits, self._keys.shape[1])


class LXEFrame:
    """The LXE's side of one problem: the frame's first token and query rows (None: no rows).

    The DRE calls :meth:`assignments` once with the frame's assignments, then, when the frame
    has rows, :meth:`score_rows`.
    """

    def __init__(self, head, start, queries):
        self._head, self._start, self._queries = head, int(start), queries

    @property
    def rows(self):
        """Query rows of the frame (0 when the dump has none for it)."""
        return 0 if self._queries is None else len(self._queries)

    def assignments(self, cluster):
        """Take the frame's cluster assignments."""
        self._head.add(self._start, cluster)

    def score_rows(self, clusters):
        """The frame's quantised score rows against clusters ``0 .. clusters - 1``."""
        return self._head.score_rows(self._queries, clusters)


def _parse_range(text, count, name):
    """``A:B`` (either side optional) or ``A`` -> range within ``0 .. count``."""
    try:
        if ":" in text:
            low, _, high = text.partition(":")
            start = int(low) if low else 0
            stop = int(high) if high else count
        else:
            start = int(text)
            stop = start + 1
    except ValueError:
        raise ValueError(f"{name} must be A:B or A with integers, not {text!r}") from None
    if not 0 <= start < stop <= count:
        raise ValueError(f"{name} must select from 0 to {count} (A < B), not {text!r}")
    return range(start, stop)


def problem_slice(dump, frames=None, layers=None, heads=None):
    """The frames, layers and KV heads of a run: each a ``range`` (``A:B`` strings or None)."""
    return (_parse_range(frames, dump.frames, "frames") if frames else range(dump.frames),
            _parse_range(layers, dump.layers, "layers") if layers else range(dump.layers),
            _parse_range(heads, dump.kv_heads, "heads") if heads else range(dump.kv_heads))


def check_dump_fits(config, dump, frames):
    """Raise ValueError (naming the dump, the frame or key) if the DRE cannot run ``frames``."""
    sizes = np.diff(dump.frame_starts)[:frames.stop]
    if sizes.max() > config.max_frame_tokens:
        frame = int(np.argmax(sizes))
        raise ValueError(f"{dump.source}: frame {frame} has {int(sizes[frame])} tokens, more "
                         f"than max_frame_tokens = {config.max_frame_tokens}")
    if dump.query_rows > config.max_rows:
        raise ValueError(f"{dump.source}: key 'queries' has {dump.query_rows} rows per frame, "
                         f"more than max_rows = {config.max_rows}")


def flatten(groups, dtype=np.uint64):
    """Offsets (``len(groups) + 1``) and the concatenated values of ragged per-problem groups
    (a 2-D group is flattened row-major)."""
    flat = [np.asarray(group, dtype=dtype).reshape(-1) for group in groups]
    offsets = np.zeros(len(groups) + 1, dtype=np.uint64)
    offsets[1:] = np.cumsum([group.size for group in flat])
    values = np.concatenate(flat) if flat else np.zeros(0, dtype)
    return offsets, values.astype(dtype)


def empty_outputs(config, dump, seed):
    """The dump-wide arrays (hyperplanes, token_hash, token_cluster) before any problem."""
    planes = np.stack([np.stack([make_hyperplanes(config.hash_bits, dump.head_dim, seed,
                                                  layer, head).T
                                 for head in range(dump.kv_heads)])
                       for layer in range(dump.layers)])
    shape = (dump.layers, dump.kv_heads, dump.tokens)
    return {"hyperplanes": planes, "token_hash": np.zeros(shape, np.uint64),
            "token_cluster": np.full(shape, -1, np.int64)}
