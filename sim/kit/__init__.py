"""The stream verification kit: drivers, monitors, stalls, cycle limits and the twin scoreboard.

:mod:`sim.kit.core` holds what both simulators share (one sampling convention, seeded stall
patterns, the deadlock-detecting controller with its drain check); :mod:`sim.kit.amaranth_sim`
and :mod:`sim.kit.cocotb_sim` adapt it to Amaranth's simulator and to cocotb on the generated
Verilog; :mod:`sim.kit.scoreboard` compares decoded RTL outputs with the twin's.
"""
