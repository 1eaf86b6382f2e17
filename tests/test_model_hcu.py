"""Tests of the HCU twin (model/twins/hcu.py): hand-worked cases, the reference rule, the cycle model."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from model.reference.clustering import leader_cluster
from model.config import PRESETS
from model.stimulus.hashes import codewords, directed_streams, synthetic_hashes
from model.twins.hcu import (LANE_MIN_CYCLES, OUTPUTS, HashClusterTwin, check_hashes,
                             exit_beats, hash_cluster, run_arrays, summarize)
from tests.hcu_configs import small_config

TINY = PRESETS["tiny"]  # hash_bits 16, threshold 4, 2 lanes, 4 bits per cycle, 16 entries


def assignments(result):
    return (result["cluster"].astype(np.int64).tolist(), result["new"].astype(bool).tolist(),
            result["distance"].astype(np.int64).tolist())


def test_hand_worked_tiny_stream():
    # Worked by hand on the tiny preset (16-bit hashes, threshold 4, 2 lanes, 4 bits per beat).
    # Assignments and the beats of each compare (clusters 0, 1, 2) against the table before each:
    #   0x0000: empty table -> new 0; no compares.
    #   0x0001: vs 0x0000 distance 1 over all 4 beats -> joins 0 at 1; beats [4].
    #   0x0003: distance 2 -> joins 0 at 2; beats [4].
    #   0xffff: beat 0 already differs in 4 bits -> new 1; beats [1].
    #   0xfff0: cluster 0 stops after beat 2, cluster 1 after beat 1 -> new 2; beats [2, 1].
    #   0x0007: cluster 0 distance 3 (4 beats), clusters 1 and 2 stop after 2 -> joins 0 at 3;
    #           beats [4, 2, 2].
    #   0x0000: cluster 0 (4), cluster 1 (1), cluster 2 (2) -> joins 0 at 0; beats [4, 1, 2].
    # Timing (module docstring, "Cycle model"; K = 4 tokens in flight, D = 2, lanes free from 0;
    # a job dispatched in x beats in x+3 .. x+2+beats and frees its lane in x+max(beats, 5); a
    # token is decided once its last beat is at most x-4 and its acceptance at most x-5; no
    # walk has more than one cluster, so D does not matter here):
    #   c0: t0 accepted (seen 0). c1: t0's walk is empty, done; t1 accepted (seen 0).
    #   c2: t2 accepted (seen 0); t1's walk done. c3: t3 accepted (seen 0); t2's walk done.
    #   c4: t3's walk done (the ring is full). c5: t0 decided (accepted in c0; opens 0, O = 1
    #   from c6); t4 accepted (seen 0). c6: catch-up t1 x c0 to lane 0, beats 9..12, lane free
    #   from 11; t4's walk is empty, done. c7: catch-up t2 x c0 to lane 1, 10..13, free from 12.
    #   c11: catch-up t3 x c0 to lane 0, beat 14, free from 16.
    #   c12: catch-up t4 x c0 to lane 1, 15..16, free from 17.
    #   c16: t1 decided (last beat 12); t5 accepted (seen 1).
    #   c17: t2 decided; t6 accepted (seen 1); walk t5 x c0 to lane 0, 20..23, free from 22.
    #   c18: t3 decided (opens 1, O = 2 from c19); walk t6 x c0 to lane 1, 21..24, free from 23.
    #   c22: catch-up t4 x c1 to lane 0, beat 25, free from 27. c23: catch-up t5 x c1 to
    #   lane 1, 26..27, free from 28. c27: catch-up t6 x c1 to lane 0, beat 30, free from 32.
    #   c29: t4 decided (last beat 25; opens 2, O = 3 from c30).
    #   c30: catch-up t5 x c2 to lane 1, 33..34. c32: catch-up t6 x c2 to lane 0, 35..36.
    #   c38: t5 decided. c40: t6 decided. Decisions 5, 16, 17, 18, 29, 38, 40.
    result = hash_cluster(TINY, [0x0000, 0x0001, 0x0003, 0xffff, 0xfff0, 0x0007, 0x0000])
    assert result["cluster"].tolist() == [0, 0, 0, 1, 2, 0, 0]
    assert result["new"].tolist() == [True, False, False, True, True, False, False]
    assert result["distance"].tolist() == [0, 1, 2, 0, 0, 3, 0]
    assert result["cycles"].tolist() == [5, 11, 1, 1, 11, 9, 2]
    assert result["useful_cycles"].tolist() == [0, 4, 4, 1, 3, 8, 7]


def test_hand_worked_two_compares_per_cycle():
    # One token in flight, two compares started per cycle (D = 2), 2 lanes, 4 bits per beat,
    # threshold 4. Beats against clusters 0, 1, 2: 0xffff [1] (new 1); 0x0f0f [1, 2] (new 2);
    # 0x0001 [4 (distance 1), 2, 3] (joins 0). "Cycle model", worked by hand (a job dispatched
    # in x beats in x+3 .. x+2+beats, its lane free from x+max(beats, 5); decided once the last
    # beat is at most x-4 and the acceptance at most x-5):
    #   c0 t0 accepted; c1 its walk is empty; c5 decided (O = 1 from c6), t1 accepted (seen 0).
    #   c6 t1's walk is empty; c7 catch-up t1 x c0 on lane 0 (beat 10, free from 12); c14 t1
    #   decided (O = 2 from c15), t2 accepted (seen 1). c15 walk t2 x c0 on lane 0 (beat 18, free
    #   from 20); c16 catch-up t2 x c1 on lane 1 (beats 19..20, free from 21); c24 t2 decided
    #   (O = 3), t3 accepted (seen 2). c25: the walk starts two compares, t3 x c1 on lane 0
    #   (28..29, free from 30) and t3 x c0 on lane 1 (28..31, free from 30); c30 catch-up
    #   t3 x c2 on lane 0 (33..35); c39 t3 decided. Decisions 5, 14, 24, 39.
    config = small_config(hcu_tokens_in_flight=1, hcu_dispatch_width=2)
    result = hash_cluster(config, [0x0000, 0xffff, 0x0f0f, 0x0001])
    assert assignments(result) == ([0, 1, 2, 0], [True, True, True, False], [0, 0, 0, 1])
    assert result["cycles"].tolist() == [5, 9, 10, 15]
    assert result["useful_cycles"].tolist() == [0, 1, 3, 9]


def test_exit_beats_hand_worked():
    # Worked by hand: 0x00f0 vs 0x0000 at threshold 4, 4 bits per beat: beat 0 adds 0, beat 1
    # adds 4 -> stops after beat 2 with partial distance 4; 0x0111 vs 0x0000: 1 bit in each of
    # beats 0..2 -> runs all 4 beats, a match at distance 3.
    beats, match, distance = exit_beats(TINY, 0x0000, np.array([0x00f0, 0x0111], np.uint64))
    assert beats.tolist() == [2, 4]
    assert match.tolist() == [False, True]
    assert distance.tolist() == [4, 3]


def test_directed_streams_hit_their_cases():
    # Expected values follow from how directed_streams builds each stream (its docstring).
    threshold = TINY.hamming_threshold
    entries = TINY.hash_mem_entries
    streams = directed_streams(TINY)
    result = {name: hash_cluster(TINY, hashes) for name, hashes in streams.items()}
    assert assignments(result["empty_table"]) == ([0], [True], [0])
    assert assignments(result["threshold_minus_one"]) == ([0, 0], [True, False],
                                                           [0, threshold - 1])
    assert assignments(result["threshold"]) == ([0, 1], [True, True], [0, 0])
    assert assignments(result["tie"]) == ([0, 1, 0], [True, True, False], [0, 0, threshold - 1])
    wrap = result["tie_after_wrap"]
    assert wrap["new"][:entries + 1].all() and wrap["cluster"][entries] == entries
    assert (wrap["cluster"][-1], wrap["new"][-1], wrap["distance"][-1]) == (1, False,
                                                                           threshold - 1)
    assert assignments(result["identical_frame"]) == ([0] * 10, [True] + [False] * 9, [0] * 10)
    full = result["full_table"]
    kept = entries // 2  # 1.5 tables of distinct hashes, then 8 evicted ones, then 8 kept ones
    assert full["new"][:entries + kept].all()
    assert full["new"][entries + kept:entries + 2 * kept].all()    # evicted: opened again
    assert not full["new"][entries + 2 * kept:].any()               # still in the table


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1),
       shape=st.sampled_from([(8, 2), (16, 4), (32, 7), (32, 3)]),
       lanes=st.sampled_from([1, 2, 3, 4, 16]),
       bits=st.sampled_from([1, 2, 4, 8]),
       entries=st.sampled_from([16, 32]),
       count=st.integers(0, 120))
def test_early_exit_never_changes_an_assignment(seed, shape, lanes, bits, entries, count):
    """The twin (early exit at any lanes / bits per cycle) equals the reference leader rule."""
    hash_bits, threshold = shape
    config = small_config(hash_bits=hash_bits, hamming_threshold=threshold, hcu_lanes=lanes,
                          hcu_bits_per_cycle=min(bits, hash_bits), hash_mem_entries=entries,
                          max_clusters=256)
    hashes = synthetic_hashes(config, count, np.random.default_rng(seed))
    cluster, new, distance = leader_cluster(hashes, threshold, entries, 256)
    result = hash_cluster(config, hashes)
    assert assignments(result) == (cluster.tolist(), new.tolist(), distance.tolist())


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), lanes=st.sampled_from([1, 2, 3, 4, 16]),
       bits=st.sampled_from([1, 4, 16]), in_flight=st.sampled_from([1, 2, 4, 16]))
def test_cycle_model_bounds(seed, lanes, bits, in_flight):
    """Decisions at most one per cycle and within the worst case; lanes never overbooked."""
    config = small_config(hcu_lanes=lanes, hcu_bits_per_cycle=bits,
                          hcu_tokens_in_flight=in_flight)
    hashes = synthetic_hashes(config, 60, np.random.default_rng(seed), centres=40)
    result = hash_cluster(config, hashes)
    cycles = result["cycles"].astype(np.int64)
    worst = (config.hash_mem_entries + 1) * max(config.hcu_beats_per_hash, LANE_MIN_CYCLES) + 5
    assert (cycles >= 1).all() and (cycles <= worst).all()
    # Every beat of tokens 0..t happens before the decision of token t.
    assert (np.cumsum(result["useful_cycles"].astype(np.int64))
            <= lanes * (np.cumsum(cycles) - 1)).all()


def test_one_token_in_flight_is_sequential():
    # With one token held, a token's compares start after the previous decision and at most one
    # starts per cycle: the decision comes after its longest compare, and no sooner than one
    # cycle per compare plus the cycle of its acceptance and of the decision.
    config = small_config(hcu_lanes=4, hcu_bits_per_cycle=1, hcu_tokens_in_flight=1)
    hashes = synthetic_hashes(config, 50, np.random.default_rng(11))
    result = hash_cluster(config, hashes)
    cycles = result["cycles"].astype(np.int64)[1:]
    compared = result["compared"].astype(np.int64)[1:]
    assert (cycles >= compared + 2).all()
    assert (cycles.sum() > hash_cluster(config.replace(hcu_tokens_in_flight=4),
                                        hashes)["cycles"][1:].sum())


def test_no_early_exit_at_full_threshold():
    # With a threshold of hash_bits no compare can stop before its last beat.
    config = small_config(hamming_threshold=16)
    hashes = synthetic_hashes(config, 30, np.random.default_rng(3))
    result = hash_cluster(config, hashes)
    assert (result["useful_cycles"] == result["compared"] * config.hcu_beats_per_hash).all()
    assert summarize(config, result)["early_exit_ratio"] == 1.0


def test_overflow_raises_or_flags():
    # 20 hashes pairwise at least the threshold apart: each opens a cluster until the 17th.
    config = small_config(hash_mem_entries=16, max_clusters=16)
    words = [int(word) for word in directed_streams(config)["full_table"][:20]]
    with pytest.raises(ValueError, match=r"more than max_clusters = 16 clusters"):
        hash_cluster(config, words)
    flagged = hash_cluster(config, words + words[14:16], on_overflow="flag")
    assert flagged["overflow"].tolist() == [False] * 16 + [True] * 4 + [False, False]
    assert flagged["cluster"][16:20].tolist() == [0] * 4
    assert not flagged["new"][16:].any()
    assert flagged["cluster"][20:].tolist() == [14, 15]  # the table is unchanged by overflows


def test_twin_matches_reference_on_workload_trace():
    from model.stimulus.traces import hcu_trace

    hashes = hcu_trace(TINY, workload="tiny")["hashes"]
    cluster, new, distance = leader_cluster(hashes, TINY.hamming_threshold,
                                            TINY.hash_mem_entries, TINY.max_clusters)
    result = run_arrays(TINY, {"hashes": hashes})
    assert sorted(result) == sorted(spec.name for spec in OUTPUTS)
    assert assignments(result) == (cluster.tolist(), new.tolist(), distance.tolist())


def test_invalid_inputs():
    with pytest.raises(ValueError, match=r"hashes must be from 0 to 2\*\*hash_bits - 1 = 65535"):
        hash_cluster(TINY, [1, 1 << 16])
    with pytest.raises(ValueError, match=r"hashes must be from 0 to .* found -1"):
        check_hashes(TINY, np.array([3, -1]))
    with pytest.raises(ValueError, match=r"hashes must be one-dimensional, not shape \(2, 2\)"):
        hash_cluster(TINY, np.zeros((2, 2), np.uint64))
    with pytest.raises(ValueError, match=r"hashes must hold integers"):
        hash_cluster(TINY, np.array([0.5]))
    with pytest.raises(ValueError, match=r"on_overflow must be 'raise' or 'flag'"):
        HashClusterTwin(TINY, on_overflow="ignore")
    with pytest.raises(ValueError, match=r"missing key 'hashes'"):
        run_arrays(TINY, {})
    with pytest.raises(ValueError, match=r"key 'hashes' must have 1 dimension"):
        run_arrays(TINY, {"hashes": np.zeros((1, 3), np.uint64)})
    with pytest.raises(ValueError, match=r"hashes must be from 0 to 2\*\*hash_bits - 1"):
        run_arrays(TINY, {"hashes": np.array([70000], np.uint64)})


def test_cli_model_engine(tmp_path):
    from model.npzio import save_arrays
    from sim.run import main

    save_arrays(tmp_path / "in.npz", {"hashes": np.array([0, 1, 0xffff], np.uint64)})
    assert main(["hcu", "--config", "tiny", "--input", str(tmp_path / "in.npz"),
                 "--output", str(tmp_path / "out.npz")]) == 0
    with np.load(tmp_path / "out.npz") as archive:
        # Worked by hand: distances 1 and 16; the first two tokens as in the tiny stream above
        # (decisions in cycles 5 and 16); the third is caught up with cluster 0 on lane 1 in
        # cycle 7 (one beat, 16 bits differ: beat 10) and decided in cycle 17.
        assert archive["cluster"].tolist() == [0, 0, 1]
        assert archive["cycles"].tolist() == [5, 11, 1]
