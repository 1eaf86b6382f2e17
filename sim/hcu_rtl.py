"""RTL engine of the HCU: ``python -m sim.run hcu --engine rtl`` on the generated Verilog.

The input hashes are written to the run's build folder, the cocotb test ``trace_run`` of
:mod:`sim.test_hcu` streams them through the Verilog under Icarus (no stalls, so the measured
cycles are exact) and records each assignment and the cycles since the previous assignment
(the first: since its input transfer), and the result
is read back with the keys of the model engine (:data:`model.twins.hcu.OUTPUTS`).
"""


import numpy as np

from model.twins.hcu import INPUTS, OUTPUTS, check_hashes, overflow_message
from model.npzio import check_arrays
from sim.runner import run_file_testcase, simulation_seconds

__all__ = ["run_arrays", "simulate"]


def simulate(config, hashes, workdir, *, tag="rtl"):
    """Stream ``hashes`` through the HCU's Verilog; returns every field the RTL produced.

    Parameters
    ----------
    config : DREConfig
    hashes : array-like of int
        Token hashes (validated against ``config``).
    workdir : path-like
        Build root; the run happens in ``workdir/hcu/tag``.
    tag : str
        Name of the run's build folder.

    Returns
    -------
    dict of numpy.ndarray
        ``cluster``, ``new``, ``distance``, ``overflow``, ``cycles``, and ``sim_seconds``: the
        wall time of the simulation itself (without the Verilog build).
    """
    hashes = check_hashes(config, hashes)
    result, build_dir = run_file_testcase("hcu", config, "sim.test_hcu", "trace_run",
                                          {"hashes": hashes}, workdir, tag=tag)
    result["sim_seconds"] = np.array(simulation_seconds(build_dir))
    return result


def run_arrays(config, arrays, workdir):
    """File-interface entry point: the same keys as :func:`model.twins.hcu.run_arrays`, from the RTL.

    Raises
    ------
    ValueError
        If the input is malformed, or the stream opens more than ``max_clusters`` clusters (the
        RTL flags it; the engine raises like the model).
    """
    arrays = check_arrays("hcu input", INPUTS, arrays)
    result = simulate(config, arrays["hashes"], workdir)
    if result["overflow"].any():
        raise ValueError(overflow_message(config))
    result["new"] = result["new"].astype(bool)
    return {spec.name: result[spec.name] for spec in OUTPUTS}
