"""The ranking of an ECP5 netlist's paths (:mod:`synth.netlist_paths`) on a netlist built by hand.

Every expected arrival is the sum of the module's own delay figures along the path, so the test
checks the traversal (which path is longest, which arcs it takes, where it starts and ends),
not the figures.
"""

import json

import pytest

from synth.netlist_paths import (DELAYS, IN_SLICE_NS, PLACED_TILE_NS, ROUTING_NS, main,
                                 placed_net_ns, rank_paths)


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


#: Tiles of the hand-built netlist's cells after a placement: ``a`` and the LUT behind it share a
#: tile (the PFUMX, which nextpnr's packer merges into its LUTs' slice, has no name of its own),
#: ``b`` is 19 rows away, the block RAM a row from the LUT and register it drives, and the carry
#: cells carry the names nextpnr gives the two halves of a split cell.
_TILES = {"ff_a": (1, 1), "lut1": (1, 1), "lut0": (9, 1), "ff_b": (1, 20), "ram": (30, 5),
          "lut2": (30, 6), "ff_c": (30, 6), "carry0$CCU2_COMB0": (2, 2),
          "carry0$CCU2_COMB1": (2, 2), "carry1$CCU2_COMB0": (2, 2), "ff_d": (2, 3)}


def _placement(tmp_path, tiles=_TILES):
    cells = {name: {"type": "TRELLIS_COMB", "attributes": {"NEXTPNR_BEL": f"X{x}/Y{y}/SLICEA"},
                    "connections": {}, "port_directions": {}}
             for name, (x, y) in tiles.items()}
    path = tmp_path / "placed.json"
    path.write_text(json.dumps({"modules": {"top": {"cells": cells}}}))
    return path


def test_placed_net_delay_follows_nextpnrs_estimate():
    # nextpnr's ECP5 predictDelay: 6 units, two per tile for the first five tiles of each
    # direction, one per tile beyond.
    assert placed_net_ns((0, 0), (0, 0)) == pytest.approx(6 * PLACED_TILE_NS)
    assert placed_net_ns((3, 4), (10, 5)) == pytest.approx((6 + 2 * (5 + 1) + 2) * PLACED_TILE_NS)
    assert placed_net_ns((10, 5), (3, 4)) == placed_net_ns((3, 4), (10, 5))
    assert placed_net_ns((2, 2), (2, 2), local=True) == 0.0
    assert placed_net_ns((2, 2), (2, 3), local=True) == pytest.approx(8 * PLACED_TILE_NS)


def test_a_placement_gives_each_net_its_distance(tmp_path):
    ranked = rank_paths(_netlist(tmp_path), count=10, placement=_placement(tmp_path))
    tiles = _TILES
    expected = {
        # The block RAM's word a row down to its LUT; the LUT into the register of its tile.
        ("word", "c_next"): DELAYS["DP16KD"] + placed_net_ns(tiles["ram"], tiles["lut2"])
        + DELAYS["LUT4"],
        # a into the LUT of its tile is a direct connection (no routing), so the undriven
        # input of the PFUMX's other LUT (the flat estimate) is later; then 19 rows up to b.
        ("free", "b_next"): ROUTING_NS + DELAYS["LUT4"] + IN_SLICE_NS + DELAYS["PFUMX"]
        + placed_net_ns(tiles["lut1"], tiles["ff_b"]),
        # A carry cell is not part of a slice's direct connections.
        ("a", "d_next"): DELAYS["TRELLIS_FF"] + placed_net_ns(tiles["ff_a"], (2, 2))
        + DELAYS["CCU2C"] + DELAYS["CCU2C.CIN"] + placed_net_ns((2, 2), tiles["ff_d"]),
        # The register-to-register hops, now across the die: b to the block RAM's address,
        # c to a's input.
        ("b", "b"): DELAYS["TRELLIS_FF"] + placed_net_ns(tiles["ff_b"], tiles["ram"]),
        ("c", "c"): DELAYS["TRELLIS_FF"] + placed_net_ns(tiles["ff_c"], tiles["ff_a"]),
    }
    assert {(item["start"], item["end"]): item["ns"] for item in ranked} == pytest.approx(expected)
    assert [item["ns"] for item in ranked] == pytest.approx(sorted(expected.values(),
                                                                   reverse=True))
    by_end = {item["end"]: item for item in ranked}
    # No tile for the undriven net; its LUT; the PFUMX, in the tile of its first LUT (lut1).
    assert by_end["b_next"]["tiles"] == [None, (9, 1), (1, 1)]
    assert by_end["d_next"]["tiles"] == [(1, 1), (2, 2), (2, 2)]


def test_cells_missing_from_the_placement_keep_the_flat_estimate(tmp_path):
    tiles = {name: tile for name, tile in _TILES.items() if name != "lut2"}
    ranked = rank_paths(_netlist(tmp_path), count=1, placement=_placement(tmp_path, tiles))
    assert ranked[0]["ns"] == pytest.approx(DELAYS["DP16KD"] + ROUTING_NS + DELAYS["LUT4"]
                                            + ROUTING_NS)
    assert ranked[0]["tiles"] == [(30, 5), None]


def test_a_netlist_without_placement_is_refused(tmp_path, capsys):
    with pytest.raises(ValueError, match="netlist.json: no cell has a NEXTPNR_BEL attribute"):
        rank_paths(_netlist(tmp_path), placement=_unplaced(tmp_path))
    main([str(_netlist(tmp_path)), "--count", "1", "--stages", "--placement",
          str(_placement(tmp_path))])
    lines = capsys.readouterr().out.splitlines()
    assert "routing from the placement" in lines[0]
    assert lines[2].split()[1:3] == ["DP16KD", "X30/Y5"]


def _unplaced(tmp_path):
    path = tmp_path / "netlist.json"
    path.write_text(json.dumps({"modules": {"top": {"cells": {"x": {"type": "LUT4"}}}}}))
    return path
