"""RTL engine of the retrieval buffer for ``python -m sim.run buffer --engine rtl``.

Writes the validated problem into the run folder, runs the ``file_run`` cocotb test of
:mod:`sim.test_retrieval_buffer` on the generated Verilog under Icarus Verilog, and reads back the
descriptors and the measured cycle count: the same keys as
:func:`model.twins.retrieval_buffer.run_arrays`.
"""

import numpy as np

from model.npzio import check_arrays
from model.twins.retrieval_buffer import INPUTS, MODE_DYNAMIC, OUTPUTS, validate_problem
from sim.runner import run_file_testcase

__all__ = ["run_arrays"]


def run_arrays(config, arrays, workdir):
    """Run one problem on the RTL; returns ``desc_base``, ``desc_len`` and ``cycles``.

    Parameters
    ----------
    config : DREConfig
        The configuration the Verilog is generated for.
    arrays : dict
        Input arrays (see :data:`model.twins.retrieval_buffer.INPUTS`).
    workdir : pathlib.Path
        Build folder of the run.

    Raises
    ------
    ValueError
        If an input is outside its range or breaks the layout contract (checked before any
        simulation starts).
    """
    arrays = check_arrays("buffer input", INPUTS, arrays)
    validate_problem(config, arrays["selected"], arrays["scores"], arrays["base"],
                     arrays["count"], arrays.get("mode", MODE_DYNAMIC))
    response, _ = run_file_testcase("buffer", config, "sim.test_retrieval_buffer", "file_run",
                                    arrays, workdir)
    outputs = check_arrays("buffer RTL response", OUTPUTS, response)
    return {"desc_base": outputs["desc_base"], "desc_len": outputs["desc_len"],
            "cycles": np.uint64(outputs["cycles"])}
