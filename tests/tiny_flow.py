"""The synthesis flow's run on the ``tiny`` preset that ``tests/test_synth.py`` checks, and the
facts of the project's own small PDK that it and ``tests/test_synth_pdk.py`` check against.

One run measures everything the check needs (:data:`OPTIONS`: every block, the project's
liberty file, ECP5 resources, the demo PDK's macros, register files and OpenSTA timing, no
place and route), so that the tools run once for the area, FPGA and silicon reports.
"""

from pathlib import Path

from synth import flow

__all__ = ["DEMO_LIBERTY", "DEMO_PDK", "DEMO_MACRO", "DEMO_MIN_REG_TO_REG_NS",
           "DEMO_MACRO_ACCESS_NS", "DEMO_MACRO_UM2", "DEMO_FLIP_FLOP_UM2", "OPTIONS", "run"]

DATA = Path(__file__).parent / "data"
DEMO_LIBERTY = DATA / "demo_cells.lib"
DEMO_PDK = DATA / "demo_pdk"
DEMO_MACRO = "RM_DEMO_2P_16x16_demo"
# tests/data/demo_pdk: the flip-flop's clock-to-Q is 0.10 ns at the smallest load and its
# setup at least 0.04 ns, so no register-to-register path is shorter than 0.14 ns; the macro's
# clock to DOUT is 0.5 ns; its area 300 um^2; the flip-flop 4.5 um^2.
DEMO_MIN_REG_TO_REG_NS = 0.14
DEMO_MACRO_ACCESS_NS = 0.5
DEMO_MACRO_UM2 = 300.0
DEMO_FLIP_FLOP_UM2 = 4.5

#: The flow's options: every measurement the check reads, and no place and route.
OPTIONS = {"liberty": DEMO_LIBERTY, "fpga": True, "pnr": False, "families": ["ecp5"],
           "pdk_root": DEMO_PDK, "pdk_corner": "demo"}


def run(out, **options):
    """Run the flow on ``tiny`` with :data:`OPTIONS` into ``out``; returns the report dict.

    ``options`` are further arguments of :func:`synth.flow.run_flow` (``jobs``, ``blocks``).
    """
    return flow.run_flow("tiny", out, **OPTIONS, **options)
