"""The check of issue 11's item 5, shared by the model and the RTL engines' tests: what the DRE
fetched, plus the resident window, is exactly what the float ReSV model retrieves for the same
frames (same hashes, same clusters, same quantised scores)."""

import numpy as np

from model.reference.resv import ResvHead, make_hyperplanes

__all__ = ["problem_index", "problem_part", "check_against_float_resv"]


def problem_index(out, frame, layer, head):
    """The index of problem (frame, layer, head) in ``out``."""
    match = ((out["problem_frame"] == frame) & (out["problem_layer"] == layer)
             & (out["problem_head"] == head))
    return int(np.flatnonzero(match)[0])


def problem_part(out, key, offsets_key, problem):
    """Problem ``problem``'s slice of the flattened ``out[key]`` (offsets ``out[offsets_key]``)."""
    offsets = out[offsets_key].astype(int)
    return out[key][offsets[problem]:offsets[problem + 1]]


def check_against_float_resv(config, dump, out, frames, layers, heads, seed=0):
    """Assert that ``out`` (the arrays of ``python -m sim.run dre``, either engine) equals
    :class:`model.reference.resv.ResvHead` stepped through the frames of ``dump``, for every
    reported problem of ``frames`` x ``layers`` x ``heads`` (ranges); the float model runs every
    frame from 0, as the DRE's context does."""
    for layer in layers:
        for head in heads:
            planes = make_hyperplanes(config.hash_bits, dump.head_dim, seed, layer, head)
            np.testing.assert_array_equal(out["hyperplanes"][layer, head], planes.T)
            resv = ResvHead(config, dump.head_dim, planes, dump.tokens)
            for frame in range(frames.stop):
                start, stop = dump.frame_starts[frame], dump.frame_starts[frame + 1]
                step = resv.step(dump.keys(layer, head)[start:stop],
                                 dump.queries(layer, head, frame))
                if frame not in frames:
                    continue
                problem = problem_index(out, frame, layer, head)
                np.testing.assert_array_equal(
                    out["token_cluster"][layer, head, start:stop], step.cluster)
                np.testing.assert_array_equal(problem_part(out, "score", "score_offsets", problem),
                                              step.scores.reshape(-1))
                np.testing.assert_array_equal(
                    problem_part(out, "selected", "cluster_offsets", problem), step.selected)
                np.testing.assert_array_equal(
                    problem_part(out, "cluster_count", "cluster_offsets", problem), step.counts)
                retrieved = np.zeros(start, bool)
                retrieved[problem_part(out, "fetch_token", "fetch_offsets", problem)
                          .astype(int)] = True
                resident = max(0, start - config.recent_window)
                assert not retrieved[resident:].any(), "a resident token was fetched"
                retrieved[resident:] = True
                np.testing.assert_array_equal(retrieved, step.retrieved,
                                              err_msg=f"frame {frame} ({layer}, {head})")
