"""Loader of user-supplied KV dumps (``.npz``), so the main job runs on a real model's cache.

A dump holds one streaming session of one model (``python -m model.main --kv-dump FILE``):

``keys``
    float ``[layers, kv_heads, tokens, head_dim]``: post-RoPE keys, in arrival order.
``values``
    float, the shape of ``keys``.
``frame_of_token``
    int ``[tokens]``: frame number of every token, starting at 0, non-decreasing, without gaps
    (every frame has at least one token; interval and text tokens belong to the frame they
    follow).
``queries``
    float ``[layers, kv_heads, query_frames, rows, head_dim]``: post-RoPE query rows of the
    frames in ``query_frames``, for each KV head (rows of all query heads of its GQA group; every
    row attends to all of its frame's tokens and to the past cache).
``query_frames`` (optional)
    int ``[query_frames]``: strictly increasing frame numbers of the ``queries`` axis 2; when
    missing, ``queries`` must hold every frame.
``token_kind`` (optional)
    int ``[tokens]``: what every token is, :data:`TOKEN_KINDS` (0 text, 1 visual, 2 interval);
    written by real-model traces (:mod:`model.stimulus.real_trace`), ignored by the main job.

Errors name the file and what is wrong (:mod:`model.npzio` for keys, dimensions and dtypes).
"""

import os
from pathlib import Path

import numpy as np

from model.npzio import ArraySpec, check_arrays, load_arrays, save_arrays

__all__ = ["SPECS", "TOKEN_KINDS", "FLOAT_LIMIT", "KVDump", "load_kv_dump", "save_kv_dump"]

#: Codes of the optional ``token_kind`` array.
TOKEN_KINDS = {"text": 0, "visual": 1, "interval": 2}

#: Largest magnitude of a key, value or query: the float32 range (model dumps are BF16, FP16 or
#: FP32), far enough below float64's that the model's sums and products cannot overflow.
FLOAT_LIMIT = float(np.finfo(np.float32).max)

SPECS = [
    ArraySpec("keys", "f", 4, "post-RoPE keys [layers, kv_heads, tokens, head_dim]"),
    ArraySpec("values", "f", 4, "values [layers, kv_heads, tokens, head_dim]"),
    ArraySpec("frame_of_token", "i", 1, "frame of every token [tokens], 0, 0, ..., 1, 1, ..."),
    ArraySpec("queries", "f", 5,
              "post-RoPE query rows [layers, kv_heads, query_frames, rows, head_dim]"),
    ArraySpec("query_frames", "i", 1, "frames of the queries' axis 2 [query_frames]",
              optional=True),
    ArraySpec("token_kind", "i", 1, "kind of every token [tokens]: 0 text, 1 visual, 2 interval",
              optional=True),
]


class KVDump:
    """A validated KV dump (see the module docstring for the layout).

    Parameters
    ----------
    arrays : dict
        As returned by :func:`model.npzio.load_arrays` with :data:`SPECS`.
    source : str
        Name of the file, for error messages.

    Raises
    ------
    ValueError
        If the arrays are inconsistent; the message names ``source`` and the key.
    """

    def __init__(self, arrays, source="kv dump"):
        keys, values = arrays["keys"], arrays["values"]
        frame_of_token, queries = arrays["frame_of_token"], arrays["queries"]
        layers, kv_heads, tokens, head_dim = keys.shape
        for name in ("keys", "values", "queries"):
            # Beyond the float32 range, dot products and means overflow to inf silently.
            if arrays[name].size and np.abs(arrays[name]).max() > FLOAT_LIMIT:
                raise ValueError(f"{source}: key {name!r} holds values beyond the float32 range "
                                 f"(|x| > {FLOAT_LIMIT:.3g})")
        if min(keys.shape) == 0:
            raise ValueError(f"{source}: key 'keys' must not be empty, shape {keys.shape}")
        if values.shape != keys.shape:
            raise ValueError(f"{source}: key 'values' must have the shape of 'keys' "
                             f"{keys.shape}, not {values.shape}")
        if frame_of_token.shape != (tokens,):
            raise ValueError(f"{source}: key 'frame_of_token' must have shape ({tokens},), "
                             f"not {frame_of_token.shape}")
        steps = np.diff(frame_of_token)
        if frame_of_token[0] != 0 or np.any((steps != 0) & (steps != 1)):
            raise ValueError(f"{source}: key 'frame_of_token' must start at 0 and grow by 0 or 1 "
                             f"from token to token")
        frames = int(frame_of_token[-1]) + 1
        if queries.shape[:2] != (layers, kv_heads) or queries.shape[4] != head_dim \
                or queries.shape[3] == 0:
            raise ValueError(f"{source}: key 'queries' must have shape ({layers}, {kv_heads}, "
                             f"query_frames, rows, {head_dim}), not {queries.shape}")
        query_frames = arrays.get("query_frames")
        if query_frames is None:
            if queries.shape[2] != frames:
                raise ValueError(f"{source}: key 'queries' holds {queries.shape[2]} frames but "
                                 f"the dump has {frames}; add 'query_frames' to name them")
            query_frames = np.arange(frames)
        elif query_frames.shape != (queries.shape[2],) or query_frames.size == 0 or \
                np.any(np.diff(query_frames) <= 0) or query_frames[0] < 0 or \
                query_frames[-1] >= frames:
            raise ValueError(f"{source}: key 'query_frames' must list {queries.shape[2]} strictly "
                             f"increasing frames from 0 to {frames - 1}")
        token_kind = arrays.get("token_kind")
        if token_kind is not None and (token_kind.shape != (tokens,) or
                                       not np.isin(token_kind, list(TOKEN_KINDS.values())).all()):
            raise ValueError(f"{source}: key 'token_kind' must have shape ({tokens},) and hold "
                             f"only {sorted(TOKEN_KINDS.values())} "
                             f"({', '.join(f'{v} {k}' for k, v in TOKEN_KINDS.items())})")
        self.token_kind = token_kind
        self._arrays = {"keys": keys, "values": values, "queries": queries}
        self._query_index = {int(frame): index for index, frame in enumerate(query_frames)}
        self.source = source
        self.layers, self.kv_heads, self.tokens, self.head_dim = layers, kv_heads, tokens, head_dim
        self.frames = frames
        self.query_rows = queries.shape[3]
        self.query_frames = np.asarray(query_frames, dtype=np.int64)
        self.frame_of_token = frame_of_token
        self.frame_starts = np.searchsorted(frame_of_token, np.arange(frames + 1))

    def keys(self, layer, kv_head):
        """Keys of one (layer, KV head): float64 (tokens, head_dim)."""
        return self._arrays["keys"][layer, kv_head]

    def values(self, layer, kv_head):
        """Values of one (layer, KV head): float64 (tokens, head_dim)."""
        return self._arrays["values"][layer, kv_head]

    def queries(self, layer, kv_head, frame):
        """Query rows of one frame (rows, head_dim), or None if the dump has none for it."""
        index = self._query_index.get(int(frame))
        return None if index is None else self._arrays["queries"][layer, kv_head, index]


def load_kv_dump(path):
    """Load and validate a KV dump ``.npz`` file; returns a :class:`KVDump`.

    Raises
    ------
    ValueError
        Naming the file and the problem (missing key, wrong shape or dtype, inconsistency).
    """
    return KVDump(load_arrays(path, SPECS), str(path))


def save_kv_dump(path, keys, values, frame_of_token, queries, query_frames=None,
                 token_kind=None):
    """Validate and write a KV dump ``.npz`` file (layout in the module docstring).

    The file is written under a temporary name beside ``path`` and renamed, so an interrupted
    write never leaves a partial dump.

    Raises
    ------
    ValueError
        If the arrays do not form a valid dump.
    """
    arrays = {"keys": keys, "values": values, "frame_of_token": frame_of_token,
              "queries": queries}
    if query_frames is not None:
        arrays["query_frames"] = query_frames
    if token_kind is not None:
        arrays["token_kind"] = token_kind
    KVDump(check_arrays(str(path), SPECS, arrays), str(path))
    path = Path(path)
    partial = path.with_name(f".{path.stem}.partial.npz")
    try:
        save_arrays(partial, {name: np.asarray(array) for name, array in arrays.items()})
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
