"""Sessions for the DRE top's tests: commands with their hashes and recorded score rows.

A *session* (:func:`model.twins.dre.record_commands`) is what the DRE's codec
(:class:`sim.payloads.DRECodec`) sends to the RTL and replays on the frame twin. This module
builds the ones the tests use: workload frames of a few (layer, KV head) streams with the model
playing the LXE (:func:`workload_session`), hand-made commands with seeded score rows
(:func:`command_session`), two sessions one after the other (:func:`concatenate`), hashes
that each open a cluster (:func:`distinct_hashes`), and restores of one stream from given
context images (:func:`restore_session`, :func:`saved_image`).
"""

import numpy as np

from model.stimulus.kvdump import KVDump
from model.stimulus.traces import dre_trace
from model.twins import dre as dre_twin

__all__ = ["SeededLXE", "workload_session", "command_session", "concatenate",
           "distinct_hashes", "restore_session", "saved_image"]


class SeededLXE:
    """An LXE whose score rows are seeded random integers below ``2**score_bits``."""

    def __init__(self, config, rows, seed):
        self.rows = rows
        self._highest = config.max_score
        self._rng = np.random.default_rng(seed)

    def assignments(self, cluster):
        """Not needed: the scores do not depend on the clusters' members."""

    def score_rows(self, clusters):
        """``rows x clusters`` seeded scores."""
        return self._rng.integers(0, self._highest + 1, (self.rows, clusters))


def workload_session(config, frames, streams, *, seed=2, workload="tiny", switch=False):
    """Frames ``0 .. frames - 1`` of each (layer, KV head) of ``streams`` in turn (restart on
    each stream's first), the model playing the LXE on the workload's keys and queries; with
    ``switch``, frame-major through one DRE with a save after each problem and a restore
    before (:func:`model.twins.dre.record_streams`)."""
    layers = 1 + max(layer for layer, _ in streams)
    heads = 1 + max(head for _, head in streams)
    dump = KVDump(dre_trace(frames, seed=seed, workload=workload, layers=layers,
                            kv_heads=heads), f"{workload} workload")
    return dre_twin.record_streams(config, dump, streams, frames, switch=switch)


def command_session(config, commands, hashes, *, seed=0):
    """Hand-made ``commands`` (:class:`model.twins.dre.Command`) with their ``hashes``; the
    score rows of command ``i`` are seeded with ``seed + i``."""
    lxes = [SeededLXE(config, command.rows, seed + index)
            for index, command in enumerate(commands)]
    return dre_twin.record_commands(config, commands, hashes, lxes)


def concatenate(first, second):
    """One session of ``first``'s commands, then ``second``'s (valid when ``second`` begins
    with a restart, or ``first`` changes no context)."""
    joined = {}
    for key, value in first.items():
        if key.endswith("_offsets"):
            joined[key] = np.concatenate([value, value[-1] + second[key][1:]])
        else:
            joined[key] = np.concatenate([value, second[key]])
    return joined


def distinct_hashes(config, count, seed=0):
    """``count`` seeded hashes pairwise at least ``hamming_threshold`` bits apart: each opens a
    cluster of its own (drawn at random, kept when far from every kept one).

    Raises
    ------
    ValueError
        If ``count`` such hashes are not found within ``1000 * count`` draws.
    """
    rng = np.random.default_rng(seed)
    kept = []
    for _ in range(1000 * count):
        if len(kept) == count:
            break
        value = int(rng.integers(0, 1 << config.hash_bits))
        if all(bin(value ^ other).count("1") >= config.hamming_threshold for other in kept):
            kept.append(value)
    if len(kept) < count:
        raise ValueError(f"count must allow {count} hashes of {config.hash_bits} bits "
                         f"{config.hamming_threshold} bits apart; found {len(kept)}")
    return kept


def restore_session(config, images, *, frames=3, seed=21):
    """Stream (0, 0) run ``frames`` frames of 5 seeded hashes (3 rows of seeded scores) and
    saved, then one restore of it at frame ``frames`` per image of ``images``, each with the
    same hashes and score rows (a restore that fails runs them as a restart)."""
    rng = np.random.default_rng(seed)
    hashes = [rng.integers(0, 1 << config.hash_bits, 5) for _ in range(frames + 1)]
    commands = [dre_twin.Command(0, 0, frame, 5, 3, restart=frame == 0)
                for frame in range(frames)]
    commands.append(dre_twin.Command(0, 0, frames - 1, 0, 0, mode=dre_twin.MODE_SAVE))
    commands += [dre_twin.Command(0, 0, frames, 5, 3, mode=dre_twin.MODE_RESTORE)] * len(images)
    lxes = [SeededLXE(config, 3, seed + index) for index in range(frames)] + [None]
    lxes += [SeededLXE(config, 3, seed + frames) for _ in images]
    return dre_twin.record_commands(config, commands, hashes[:frames] + [[]]
                                    + [hashes[frames]] * len(images), lxes,
                                    [None] * (frames + 1) + list(images))


def saved_image(config, *, frames=3, seed=21):
    """The context image :func:`restore_session`'s save sends (the twin's)."""
    session = restore_session(config, [], frames=frames, seed=seed)
    return [int(word) for word in dre_twin.run_session(config, session)[-1].saved_image]
