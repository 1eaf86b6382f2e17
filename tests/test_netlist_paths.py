"""The ranking of an ECP5 netlist's paths (:mod:`synth.netlist_paths`) on a netlist built by hand.

Every expected arrival is the sum of the module's own delay figures along the path, so the test
checks the traversal (which path is longest, which arcs it takes, where it starts and ends),
not the figures.
"""

import json

import pytest

from synth.netlist_paths import DELAYS, IN_SLICE_NS, ROUTING_NS, main, rank_paths


def _cell(cell_type, inputs, outputs):
    connections = {**inputs, **outputs}
    directions = {**{port: "input" for port in inputs}, **{port: "output" for port in outputs}}
    return {"type": cell_type, "connections": connections, "port_directions": directions}


def _netlist(tmp_path):
    """Registers ``a`` to ``d`` and a block RAM on clock bit 2:

    * ``a`` -> LUT4 -> PFUMX (its ``ALUT`` input, in the slice) -> ``b``;
    * the block RAM's word -> LUT4 -> ``c``, and ``c`` -> ``a`` (a loop through registers);
    * ``a`` -> carry cell -> carry chain -> ``d``;
    * ``b`` -> the block RAM's address.
    """
    cells = {
        "ff_a": _cell("TRELLIS_FF", {"CLK": [2], "DI": [10]}, {"Q": [3]}),
        "lut1": _cell("LUT4", {"A": [3], "B": ["0"]}, {"Z": [4]}),
        "lut0": _cell("LUT4", {"A": [8]}, {"Z": [5]}),
        "mux": _cell("PFUMX", {"ALUT": [4], "BLUT": [5], "C0": [6]}, {"Z": [7]}),
        "ff_b": _cell("TRELLIS_FF", {"CLK": [2], "DI": [7]}, {"Q": [9]}),
        "ram": _cell("DP16KD", {"CLKA": [2], "ADA0": [9]}, {"DOB0": [11]}),
        "lut2": _cell("LUT4", {"A": [11]}, {"Z": [12]}),
        "ff_c": _cell("TRELLIS_FF", {"CLK": [2], "DI": [12]}, {"Q": [10]}),
        "carry0": _cell("CCU2C", {"A0": [3]}, {"COUT": [13]}),
        "carry1": _cell("CCU2C", {"CIN": [13]}, {"S0": [14]}),
        "ff_d": _cell("TRELLIS_FF", {"CLK": [2], "DI": [14]}, {"Q": [15]}),
    }
    names = {"clk": [2], "a": [3], "b_lut": [4], "b_next": [7], "b": [9], "word": [11],
             "c_next": [12], "c": [10], "carry": [13], "$generated": [14], "d_next": [14],
             "d": [15], "free": [8], "select": [6]}
    netnames = {name: {"bits": bits} for name, bits in names.items()}
    path = tmp_path / "top.json"
    path.write_text(json.dumps({"modules": {"top": {"cells": cells, "netnames": netnames},
                                            "LUT4": {"cells": {}}}}))
    return path


def test_paths_are_ranked_longest_first_with_their_stages(tmp_path):
    ranked = rank_paths(_netlist(tmp_path), count=10)
    lut = ROUTING_NS + DELAYS["LUT4"]
    expected = [
        ("word", "c_next", DELAYS["DP16KD"] + lut + ROUTING_NS),
        ("a", "b_next", DELAYS["TRELLIS_FF"] + lut + IN_SLICE_NS + DELAYS["PFUMX"] + ROUTING_NS),
        ("a", "d_next", DELAYS["TRELLIS_FF"] + ROUTING_NS + DELAYS["CCU2C"]
         + DELAYS["CCU2C.CIN"] + ROUTING_NS),
    ]
    assert [(item["start"], item["end"]) for item in ranked[:3]] == [e[:2] for e in expected]
    assert [item["ns"] for item in ranked[:3]] == pytest.approx([e[2] for e in expected])
    # The register-to-register hops: b -> the RAM's address, c -> a.
    assert {(item["start"], item["end"]) for item in ranked[3:]} == {("b", "b"), ("c", "c")}
    assert all(item["ns"] == pytest.approx(DELAYS["TRELLIS_FF"] + ROUTING_NS)
               for item in ranked[3:])
    assert len(ranked) == 5
    first = ranked[0]
    assert first["end_cell"] == "TRELLIS_FF.DI"
    assert [stage[1:] for stage in first["stages"]] == [("DP16KD", "word"), ("LUT4", "c_next")]
    assert [stage[0] for stage in first["stages"]] == pytest.approx(
        [DELAYS["DP16KD"], DELAYS["DP16KD"] + lut])
    # Named nets win over generated ones ("d_next", not "$generated").
    assert ranked[2]["stages"][-1][2] == "d_next"


def test_count_limits_the_ranking(tmp_path):
    assert [item["end"] for item in rank_paths(_netlist(tmp_path), count=2)] == ["c_next",
                                                                                 "b_next"]


def test_command_line_prints_the_paths(tmp_path, capsys):
    main([str(_netlist(tmp_path)), "--count", "1", "--stages"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("1 longest paths of ")
    assert "word  ->  c_next (TRELLIS_FF.DI)" in lines[1]
    assert [line.split()[1] for line in lines[2:]] == ["DP16KD", "LUT4"]


@pytest.mark.parametrize("content, message", [
    (None, "cannot be read"),
    ("{not json", "not a JSON netlist"),
    ('{"cells": {}}', "no 'modules' key"),
    ('{"modules": {"other": {"cells": {"x": {}}}}}', r"no module 'top' under 'modules' "
                                                     r"\(modules with cells: \['other'\]\)"),
])
def test_malformed_netlists_are_named(tmp_path, content, message):
    path = tmp_path / "netlist.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ValueError, match=f"netlist.json: {message}"):
        rank_paths(path)


def test_bad_count_and_cli_errors(tmp_path, capsys):
    with pytest.raises(ValueError, match="count must be a positive integer, not 0"):
        rank_paths(_netlist(tmp_path), count=0)
    with pytest.raises(SystemExit) as stop:
        main([str(tmp_path / "missing.json")])
    assert stop.value.code == 2
    assert "missing.json: cannot be read" in capsys.readouterr().err
