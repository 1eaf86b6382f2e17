"""``make bench`` still runs end to end: every section in quick mode writes its figures.

Only structure and agreement are checked here; the figures themselves are measured by
``make bench`` and never asserted against times.
"""

import json

import pytest

from sim.bench import SECTIONS, main


@pytest.mark.cocotb
def test_quick_bench_writes_every_section(tmp_path, capsys):
    assert main(["--quick", "--out", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "bench.json").read_text())
    assert set(results["sections"]) == {name for name, _ in SECTIONS}
    sections = results["sections"]
    assert sections["resv"]["speed"] and sections["resv"]["retrieval"]
    # Each block section's RTL run must agree with its twin's cycle-exact prediction.
    assert sections["hcu"]["rtl"]["cycles_match"] is True
    assert sections["wtu"]["rtl"]["equal_to_twin"] is True
    assert sections["kvmu"]["rtl"]["equal_to_twin"] is True
    assert "wrote" in capsys.readouterr().out
