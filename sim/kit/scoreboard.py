"""The comparison every RTL test and engine makes: decoded RTL arrays against the twin's.

:func:`expected_run` asks the block's codec for the twin's arrays of each problem and the
run's cycle limit; :func:`compare` decodes a transcript and asserts every key equal, exactly
(dtype-independent), the timing keys only when no stream stalled.
"""

import numpy as np

from sim.kit.core import cycle_limit

__all__ = ["expected_run", "compare"]


def expected_run(codec, config, problems, *stall_probabilities):
    """The twin's arrays per problem and the cycle limit of running ``problems``.

    Returns
    -------
    tuple of (list of dict, int)
    """
    expected = [codec.expected(config, problem) for problem in problems]
    twin_cycles = sum(codec.twin_cycles(config, result) for result in expected)
    return expected, cycle_limit(twin_cycles, *stall_probabilities)


def _same(actual, wanted):
    actual, wanted = np.asarray(actual), np.asarray(wanted)
    return actual.shape == wanted.shape and actual.tolist() == wanted.tolist()


def compare(codec, config, problems, transcript, expected, *, timed):
    """Decode ``transcript`` and assert it equals ``expected`` (from :func:`expected_run`).

    Parameters
    ----------
    timed : bool
        Compare the codec's timing keys too (only meaningful without stalls).

    Returns
    -------
    list of dict
        The decoded arrays per problem.

    Raises
    ------
    AssertionError
        Naming the problem, the key, and both values.
    """
    decoded = codec.decode(config, problems, transcript)
    assert len(decoded) == len(expected), f"{len(decoded)} problems decoded, {len(expected)} sent"
    for index, (actual, wanted) in enumerate(zip(decoded, expected)):
        for key, value in wanted.items():
            if key in codec.timing_keys and not timed:
                continue
            assert key in actual, f"problem {index}: the RTL run produced no {key!r}"
            assert _same(actual[key], value), \
                f"problem {index}, key {key!r}: RTL {np.asarray(actual[key]).tolist()} != " \
                f"twin {np.asarray(value).tolist()}"
    return decoded
