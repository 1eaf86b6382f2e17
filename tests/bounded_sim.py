"""Run one async testbench under the Amaranth simulator with a cycle limit.

The component tests of ``tests/test_hw_*_parts.py`` drive their part cycle by cycle from one
testbench; :func:`simulate` stops the simulation after ``max_cycles`` clock periods and fails
when the testbench has not returned by then, so a part that never answers fails at once instead
of hanging the suite.
"""

from amaranth.sim import Simulator

__all__ = ["PERIOD", "simulate"]

#: Clock period of the simulations (seconds); a combinational part's testbench waits this long
#: between two cases.
PERIOD = 1e-6


def simulate(dut, testbench, max_cycles, *, clocked=True):
    """Run ``testbench(ctx)`` on ``dut`` for at most ``max_cycles`` periods.

    Parameters
    ----------
    dut : wiring.Component
    testbench : async callable
        Takes the simulator context; returns when its checks are done.
    max_cycles : int
        Cycle limit.
    clocked : bool
        Add a clock to the ``sync`` domain (False for a purely combinational part).

    Raises
    ------
    AssertionError
        If the testbench has not finished within ``max_cycles`` periods.
    """
    finished = []

    async def bench(ctx):
        await testbench(ctx)
        finished.append(True)

    sim = Simulator(dut)
    if clocked:
        sim.add_clock(PERIOD)
    sim.add_testbench(bench)
    sim.run_until(max_cycles * PERIOD)
    assert finished, f"the testbench did not finish within {max_cycles} cycles"
