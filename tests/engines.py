"""``python -m sim.run`` through its command line, for the tests that compare its engines."""

import numpy as np

from sim.run import main as run_main
from sim.runner import selected_simulator

__all__ = ["run_engine"]


def run_engine(block, engine, config_name, input_path, tmp_path, options=()):
    """Run ``block`` with ``engine`` on ``input_path`` (extra command-line ``options``);
    returns the output arrays it wrote.

    The RTL engine runs on the regression's simulator (``SIM``, else Icarus), not on the
    long-run default of the command line."""
    out = tmp_path / f"{engine}.npz"
    status = run_main([block, "--config", config_name, "--input", str(input_path),
                       "--output", str(out), "--engine", engine,
                       "--workdir", str(tmp_path / "rtl"),
                       "--simulator", selected_simulator(), *options])
    assert status == 0
    with np.load(out) as result:
        return {key: result[key] for key in result.files}
