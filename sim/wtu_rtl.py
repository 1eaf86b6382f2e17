"""RTL engine of the WTU for ``python -m sim.run wtu --engine rtl``, and its transaction codec.

:func:`problem_transactions` turns a problem (``scores`` rows x clusters, ``counts``) into the
beats of the WTU's input streams, and :func:`decode_transactions` turns the beats received on its
output streams back into the arrays of :data:`model.twins.wtu.OUTPUTS`, so the Amaranth-simulator
tests, the cocotb tests and this engine compare the hardware with the twin the same way.
:func:`run_arrays` runs the generated Verilog under cocotb and Icarus (cocotb test ``run_file`` of
``sim.test_wtu``).
"""


import numpy as np

from model.npzio import check_arrays
from model.twins.wtu import INPUTS, OUTPUTS, check_problem

__all__ = ["problem_transactions", "decode_transactions", "run_arrays", "STAT_KEYS"]

#: Per-row keys of :data:`model.twins.wtu.OUTPUTS` carried by the ``stats`` stream (same field names).
STAT_KEYS = ("cycles", "buckets_visited", "passes", "touched", "cutoff", "weighted_sum",
             "threshold", "min_score", "max_score")

def _lane_beats(values, lanes):
    """``values`` in beats of ``lanes`` (lists, lane ``l`` of beat ``b`` = value ``b * lanes + l``,
    zero padding): the ``ArrayLayout`` fields of the ``counts`` and ``scores`` payloads."""
    padded = np.zeros(-(-len(values) // lanes) * lanes, dtype=np.uint64)
    padded[:len(values)] = values
    return [[int(value) for value in chunk] for chunk in padded.reshape(-1, lanes)]


def problem_transactions(config, scores, counts):
    """Input beats of one problem: ``(problem, counts, scores)`` lists of payload dicts.

    Raises
    ------
    ValueError
        If the problem does not fit ``config`` (see :func:`model.twins.wtu.check_problem`).
    """
    scores, counts = check_problem(config, scores, counts)
    rows, clusters = scores.shape
    lanes = config.wtu_lanes
    problem = [{"clusters_minus_one": clusters - 1, "rows_minus_one": rows - 1}]
    count_beats = [{"count": beat} for beat in _lane_beats(counts, lanes)]
    score_beats = [{"score": beat} for row in scores for beat in _lane_beats(row, lanes)]
    return problem, count_beats, score_beats


def decode_transactions(config, rows, clusters, stats, masks, selected):
    """The result arrays (keys of :data:`model.twins.wtu.OUTPUTS` except the cycle constants).

    Parameters
    ----------
    rows, clusters : int
        Shape of the problem.
    stats, masks, selected : lists of dicts
        Payloads received on ``stats``, ``row_mask`` and ``selected``, in order.

    Raises
    ------
    AssertionError
        If the beats are not in the documented order (row numbers, chunks, ``last`` flags).
    """
    lanes = config.wtu_lanes
    beats = -(-clusters // lanes)
    assert len(stats) == rows, f"expected {rows} stats beats, got {len(stats)}"
    assert len(masks) == rows * beats, f"expected {rows * beats} mask beats, got {len(masks)}"
    result = {}
    for key in STAT_KEYS:
        values = [int(beat[key]) for beat in stats]
        # As in model.twins.wtu: sums past 64 bits stay exact as Python ints.
        result[key] = np.array(values, dtype=object if max(values) >> 64 else np.uint64)
    assert [int(beat["row"]) for beat in stats] == list(range(rows)), "stats rows out of order"
    row_selected = np.zeros((rows, beats * lanes), dtype=bool)
    for index, beat in enumerate(masks):
        row, chunk = divmod(index, beats)
        assert (int(beat["row"]), int(beat["chunk"]), int(beat["last"])) == \
            (row, chunk, int(chunk == beats - 1)), f"mask beat {index} out of order: {beat}"
        mask = int(beat["mask"])
        row_selected[row, chunk * lanes:(chunk + 1) * lanes] = \
            [(mask >> lane) & 1 for lane in range(lanes)]
    assert not row_selected[:, clusters:].any(), "mask bits set past the last cluster"
    result["row_selected"] = row_selected[:, :clusters]
    if len(selected) == 1 and int(selected[0]["empty"]):
        selected = []
    assert not any(int(beat["empty"]) for beat in selected), "empty flag on a selected cluster"
    ids = [int(beat["cluster"]) for beat in selected]
    assert ids == sorted(set(ids)), f"aggregate ids not strictly increasing: {ids}"
    assert [int(beat["last"]) for beat in selected] == [0] * (len(ids) - 1) + [1] * bool(ids), \
        "aggregate last flag not on the final beat only"
    result["selected"] = np.zeros(clusters, dtype=bool)
    result["selected"][ids] = True
    result["selected_score"] = np.zeros(clusters, dtype=np.uint64)
    result["selected_score"][ids] = [int(beat["score"]) for beat in selected]
    return result


def run_arrays(config, arrays, workdir):
    """File interface on the RTL: the same keys as :func:`model.twins.wtu.run_arrays`.

    The per-row ``cycles`` and statistics come from the hardware's ``stats`` stream; the
    emission and aggregate cycle counts come from the cycles the Verilog took to deliver them.

    Raises
    ------
    ValueError
        If the inputs do not fit ``config``.
    """
    from sim.runner import run_file_testcase

    arrays = check_arrays("wtu input", INPUTS, arrays)
    check_problem(config, arrays["scores"], arrays["counts"])
    response, _ = run_file_testcase("wtu", config, "sim.test_wtu", "run_file", arrays, workdir)
    return check_arrays("wtu RTL response", OUTPUTS, response)
