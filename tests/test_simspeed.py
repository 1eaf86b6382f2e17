"""The default simulator of the DRE top's co-simulation (``sim.simspeed``): pure functions, no
simulation (the measured figures come from ``make bench``, section ``dre_sim``)."""

import math

import pytest

from model.config import PRESETS
from sim.run import main as run_main
from sim.simspeed import (DRE_COSTS, break_even_problems, co_simulation_rule,
                          co_simulation_simulator)


def test_break_even_problems():
    # first: 10 s + 1.0 s a problem; second: 100 s + 0.25 s: equal at (100 - 10) / 0.75 = 120
    assert break_even_problems(10, 1.0, 100, 0.25) == pytest.approx(120)
    # the second simulates no faster: it never ends first
    assert break_even_problems(10, 1.0, 100, 1.0) is None
    # the second starts sooner and simulates faster: it ends first from the first problem
    assert break_even_problems(100, 1.0, 10, 0.5) == 0


@pytest.mark.parametrize("preset", ["tiny", "edge"])
def test_co_simulation_simulator_follows_the_measured_costs(monkeypatch, preset):
    monkeypatch.delenv("SIM", raising=False)
    config = PRESETS[preset]
    even = break_even_problems(*DRE_COSTS[preset]["icarus"], *DRE_COSTS[preset]["verilator"])
    assert even is not None, "Verilator is measured faster per problem on both presets"
    both = ["icarus", "verilator"]
    assert co_simulation_simulator(config, 1, both) == "icarus"
    assert co_simulation_simulator(config, math.floor(even), both) == "icarus"
    assert co_simulation_simulator(config, math.ceil(even) + 1, both) == "verilator"
    # without Verilator, Icarus at any length; SIM wins over the rule
    assert co_simulation_simulator(config, 10 * math.ceil(even), ["icarus"]) == "icarus"
    monkeypatch.setenv("SIM", "icarus")
    assert co_simulation_simulator(config, 10 * math.ceil(even), both) == "icarus"


def test_other_configurations_take_the_edge_costs(monkeypatch):
    monkeypatch.delenv("SIM", raising=False)
    edge = break_even_problems(*DRE_COSTS["edge"]["icarus"], *DRE_COSTS["edge"]["verilator"])
    variant = PRESETS["edge"].replace(hcu_lanes=4)
    both = ["icarus", "verilator"]
    assert co_simulation_simulator(variant, math.floor(edge), both) == "icarus"
    assert co_simulation_simulator(variant, math.ceil(edge) + 1, both) == "verilator"


def test_no_simulator_installed_is_named(monkeypatch):
    monkeypatch.delenv("SIM", raising=False)
    with pytest.raises(ValueError, match="no simulator is installed"):
        co_simulation_simulator(PRESETS["tiny"], 1, [])


def test_the_dre_help_states_the_rule(capsys):
    with pytest.raises(SystemExit):
        run_main(["dre", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert " ".join(co_simulation_rule().split()) in help_text
