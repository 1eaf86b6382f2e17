"""``python -m synth.part_fmax``: a WTU part placed and routed alone, and its bad inputs."""

import json

import pytest
from amaranth.hdl import Fragment

from hw.wtu import Lane
from model.config import PRESETS
from synth import part_fmax

TINY = PRESETS["tiny"]


@pytest.mark.parametrize("name", part_fmax.PARTS)
def test_every_part_is_built_for_the_configuration(name):
    part = part_fmax.build_part(name, TINY)
    assert part.config is TINY
    if isinstance(part, Lane):
        assert part.index == 0
    Fragment.get(part, None)     # it elaborates (and is not left unused)


def test_an_unknown_part_is_refused_with_the_names_allowed():
    with pytest.raises(ValueError, match=r"part must be one of Lane, LaneMemories, .*, not "
                                         r"'WiCSumThresholdUnit'"):
        part_fmax.build_part("WiCSumThresholdUnit", TINY)


@pytest.mark.parametrize("argv, message", [
    (["Decison"], "part must be one of"),
    (["Sequencer", "--pnr-timeout", "0"], "pnr_timeout must be a positive number"),
    (["Sequencer", "--pnr-target-mhz", "0"], "pnr_target_mhz must be between 1 and 1000"),
    (["Sequencer", "--config", "no_such_preset"], "config must be a preset"),
])
def test_bad_arguments_stop_before_any_tool_runs(argv, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as stopped:
        part_fmax.main(argv + ["--out", str(tmp_path / "parts")])
    assert stopped.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "parts").exists()


@pytest.mark.filterwarnings("ignore:Using platform.request without:DeprecationWarning")
def test_the_tiny_sequencer_is_routed_alone(tmp_path, capsys):
    """The real tools on the smallest part: the result file holds its routed fmax, which is
    the last "Max frequency" of nextpnr's log, and the screen says so."""
    out = tmp_path / "parts"
    assert part_fmax.main(["Sequencer", "--config", "tiny", "--out", str(out)]) == 0
    result = json.loads((out / "parts.json").read_text())["Sequencer"]
    log = (out / "Sequencer" / "top.tim").read_text()
    last = [line for line in log.splitlines() if "Max frequency for clock" in line][-1]
    assert result["routed"] is True
    assert f"{result['fmax_mhz']:.2f} MHz" in last
    assert any(line.startswith("TRELLIS_FF ") for line in result["utilisation"])
    assert f"Sequencer: {result['fmax_mhz']} MHz routed" in capsys.readouterr().out
