"""DREConfig: presets, derived widths, validation messages and the JSON round trip."""

import json

import pytest

from model.config import PRESETS, DREConfig, load_config, ratio_code


def test_edge_preset_is_the_papers_core():
    # Source: ../shared/PAPER.md sections 2 and 3 (N_hp = 32, Th_hd = 7, Thr_wics = 0.3, 16 XOR
    # lanes, 4 KB = 1024 cluster hashes, 8 KB score + 8 KB count memories of 16-bit entries).
    edge = PRESETS["edge"]
    assert (edge.hash_bits, edge.hamming_threshold) == (32, 7)
    assert abs(edge.wicsum_ratio - 0.3) <= 2 ** -(edge.wicsum_ratio_bits + 1)
    assert (edge.hcu_lanes, edge.wtu_lanes, edge.hash_mem_entries) == (16, 16, 1024)
    assert (edge.max_clusters, edge.score_bits, edge.count_bits) == (4096, 16, 16)
    assert edge.hash_mem_entries * edge.hash_bits // 8 == 4096
    assert edge.max_clusters * edge.score_bits // 8 == 8192


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_round_trip_through_json(name):
    config = PRESETS[name]
    assert DREConfig.from_json(config.to_json()) == config
    assert load_config(name) is config


def test_derived_widths_of_edge():
    # Worked by hand: 4096 clusters -> 12-bit ids; 1024 entries -> 10-bit slots; distances 0..32
    # need 6 bits; 16 buckets resolve 4 bits a pass, so 16-bit scores need 4 passes (3 refinements);
    # a row's weighted sum is below 2**16 * 2**16 * 2**12 = 2**44.
    edge = PRESETS["edge"]
    assert edge.cluster_id_bits == 12
    assert edge.hash_slot_bits == 10
    assert edge.distance_bits == 6
    assert edge.bucket_bits == 4
    assert edge.full_refine_depth == 3
    assert edge.weight_bits == 44
    assert edge.hcu_beats_per_hash == 32
    assert edge.derived()["row_bits"] == 6


def test_wtu_bucket_passes():
    # Worked by hand from shift_p = max(0, S - (p + 1) * b), pass bits S - shift_0 then
    # shift_(p-1) - shift_p:
    # edge: S = 16, 16 buckets -> b = 4, passes 0..3: shifts 12, 8, 4, 0; 4 bits each.
    # tiny: S = 8, 4 buckets -> b = 2, passes 0..3: shifts 6, 4, 2, 0; 2 bits each.
    # S = 7, 8 buckets -> b = 3, ceil(7 / 3) = 3 passes: shifts 4, 1, 0; bits 3, 3, 1.
    edge, tiny = PRESETS["edge"], PRESETS["tiny"]
    assert edge.wtu_bucket_shifts == (12, 8, 4, 0)
    assert edge.wtu_pass_bits == (4, 4, 4, 4)
    assert tiny.wtu_bucket_shifts == (6, 4, 2, 0)
    assert tiny.wtu_pass_bits == (2, 2, 2, 2)
    seven_bits = tiny.replace(score_bits=7, wtu_buckets=8, wtu_refine_depth=2)
    assert seven_bits.wtu_bucket_shifts == (4, 1, 0)
    assert seven_bits.wtu_pass_bits == (3, 3, 1)
    assert seven_bits.derived()["wtu_pass_bits"] == (3, 3, 1)


def test_ratio_code_rounds_half_up():
    # Worked by hand: 0.3 * 256 = 76.8 -> 77; 0.5/256 * 256 = 0.5 -> 1; 1.0 -> 256.
    assert ratio_code(0.3, 8) == 77
    assert ratio_code(0.5 / 256, 8) == 1
    assert ratio_code(1.0, 8) == 256
    assert PRESETS["edge"].with_ratio(1.0).wicsum_ratio == 1.0
    with pytest.raises(ValueError, match=r"ratio must be a number from 0 to 1, not 1\.5"):
        ratio_code(1.5, 8)


@pytest.mark.parametrize("changes, error, message", [
    ({"hash_bits": 3}, ValueError, r"hash_bits must be from 4 to 64, not 3"),
    ({"hash_bits": 32.0}, TypeError, r"hash_bits must be an integer, not 32\.0"),
    ({"hash_bits": True}, TypeError, r"hash_bits must be an integer, not True"),
    ({"hamming_threshold": 33}, ValueError, r"hamming_threshold must be from 1 to 32, not 33"),
    ({"hamming_threshold": 0}, ValueError, r"hamming_threshold must be from 1 to 32, not 0"),
    ({"wicsum_ratio_code": 257}, ValueError, r"wicsum_ratio_code must be from 0 to 256, not 257"),
    ({"hcu_bits_per_cycle": 3}, ValueError, r"hcu_bits_per_cycle must divide hash_bits \(32\)"),
    ({"hash_mem_entries": 1000}, ValueError, r"hash_mem_entries must be a power of two"),
    ({"max_clusters": 512}, ValueError, r"max_clusters must be at least hash_mem_entries \(1024\)"),
    ({"hcu_lanes": 0}, ValueError, r"hcu_lanes must be from 1 to 256, not 0"),
    ({"hcu_dispatch_width": 3}, ValueError, r"hcu_dispatch_width must be a power of two, not 3"),
    ({"hcu_dispatch_width": 32}, ValueError, r"hcu_dispatch_width must be from 1 to 16, not 32"),
    ({"hcu_lanes": 1}, ValueError, r"hcu_dispatch_width must be at most hcu_lanes \(1\), not 2"),
    ({"hcu_tokens_in_flight": 0}, ValueError, r"hcu_tokens_in_flight must be from 1 to 16, not 0"),
    ({"hcu_tokens_in_flight": 17}, ValueError,
     r"hcu_tokens_in_flight must be from 1 to 16, not 17"),
    ({"wtu_lanes": 12}, ValueError, r"wtu_lanes must be a power of two, not 12"),
    ({"wtu_buckets": 1}, ValueError, r"wtu_buckets must be from 2 to 256, not 1"),
    ({"wtu_refine_depth": 4}, ValueError, r"wtu_refine_depth must be from 0 to 3, not 4"),
    ({"topk_k": 0}, ValueError, r"topk_k must be from 1 to 4096, not 0"),
    ({"token_budget": -1}, ValueError, r"token_budget must be from 0 to 65536, not -1"),
    ({"score_bits": 33}, ValueError, r"score_bits must be from 2 to 32, not 33"),
])
def test_invalid_values_raise_clear_errors(changes, error, message):
    with pytest.raises(error, match=message):
        PRESETS["edge"].replace(**changes)


def test_wtu_lanes_need_two_addresses_per_lane():
    # Before any component is built: load_config and replace reject it, not make verilog.
    tiny = PRESETS["tiny"]  # max_clusters 64 -> at most 32 lanes
    assert tiny.replace(wtu_lanes=32).wtu_lanes == 32
    with pytest.raises(ValueError, match=r"wtu_lanes must be at most max_clusters // 2 \(32\), "
                                         r"not 64"):
        tiny.replace(wtu_lanes=64)


def test_hcu_lanes_cannot_exceed_the_table():
    with pytest.raises(ValueError, match=r"hcu_lanes must be at most hash_mem_entries \(16\), not 32"):
        PRESETS["tiny"].replace(hcu_lanes=32)


def test_hcu_tokens_in_flight_cannot_exceed_the_table():
    small = PRESETS["tiny"].replace(hcu_lanes=2, hash_mem_entries=4, max_clusters=64)
    with pytest.raises(ValueError,
                       match=r"hcu_tokens_in_flight must be at most hash_mem_entries \(4\), not 8"):
        small.replace(hcu_tokens_in_flight=8)


def test_from_dict_names_the_source_and_unknown_keys():
    with pytest.raises(ValueError, match=r"cfg\.json: unknown parameter\(s\) lanes"):
        DREConfig.from_dict({"lanes": 4}, "cfg.json")
    with pytest.raises(TypeError, match=r"cfg\.json: must be a JSON object, not list"):
        DREConfig.from_dict([1], "cfg.json")
    with pytest.raises(ValueError, match=r"cfg\.json: hash_bits must be from 4 to 64"):
        DREConfig.from_dict({"hash_bits": 2}, "cfg.json")
    with pytest.raises(ValueError, match=r"x: not valid JSON"):
        DREConfig.from_json("{", "x")


def test_load_config_from_a_partial_json_file(tmp_path):
    path = tmp_path / "narrow.json"
    path.write_text(json.dumps({"hcu_lanes": 4, "hcu_bits_per_cycle": 4}))
    config = load_config(path)
    assert config == PRESETS["edge"].replace(hcu_lanes=4, hcu_bits_per_cycle=4)


def test_load_config_errors_name_the_file(tmp_path):
    with pytest.raises(ValueError, match=r"config must be a preset \(tiny, edge, server\) or a JSON file, not 'nope'"):
        load_config("nope")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(ValueError, match=r"broken\.json: cannot read a JSON configuration"):
        load_config(broken)
    array = tmp_path / "array.json"
    array.write_text("[1, 2]")
    with pytest.raises(ValueError, match=r"array\.json: must hold a JSON object"):
        load_config(array)
    bad_value = tmp_path / "bad.json"
    bad_value.write_text('{"wtu_buckets": 3}')
    with pytest.raises(ValueError, match=r"bad\.json: wtu_buckets must be a power of two, not 3"):
        load_config(bad_value)


def test_config_is_frozen():
    with pytest.raises(AttributeError):
        PRESETS["edge"].hash_bits = 16
