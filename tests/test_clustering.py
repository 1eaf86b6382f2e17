"""Leader clustering (model/reference/clustering.py): hand-worked cases and a brute-force oracle."""

import numpy as np
import pytest

from model.reference.clustering import LeaderClusterer, hamming_distance, leader_cluster


def brute_force(hashes, threshold, entries, max_clusters):
    """The rule of model/reference/clustering.py written as plainly as possible (test oracle)."""
    leaders, result = [], []
    for value in (int(h) for h in hashes):
        candidates = [((value ^ leaders[c]).bit_count(), c)
                      for c in range(max(0, len(leaders) - entries), len(leaders))]
        candidates = [pair for pair in candidates if pair[0] < threshold]
        if candidates:
            distance, cluster = min(candidates)
            result.append((cluster, False, distance))
        else:
            if len(leaders) == max_clusters:
                raise ValueError("max_clusters exceeded")
            result.append((len(leaders), True, 0))
            leaders.append(value)
    return result


def as_tuples(cluster, new, distance):
    return [(int(c), bool(n), int(d)) for c, n, d in zip(cluster, new, distance)]


def test_threshold_is_strict():
    # worked by hand, threshold 3: 0b0011 is 2 = Th-1 bits from leader 0b0000 -> joins with
    # distance 2; 0b0111 is 3 = Th bits away -> opens cluster 1.
    result = leader_cluster(np.array([0b0000, 0b0011, 0b0111], np.uint64), 3, 16, 16)
    assert as_tuples(*result) == [(0, True, 0), (0, False, 2), (1, True, 0)]


def test_tie_goes_to_lowest_id():
    # worked by hand, threshold 3: leaders 0b0000 (c0) and 0b1111 (c1, 4 bits from c0);
    # 0b0011 is 2 bits from both -> c0.
    result = leader_cluster(np.array([0b0000, 0b1111, 0b0011], np.uint64), 3, 16, 16)
    assert as_tuples(*result) == [(0, True, 0), (1, True, 0), (0, False, 2)]


def test_smallest_distance_wins_over_lower_id():
    # worked by hand, threshold 4: leaders 0b000000 (c0) and 0b001111 (c1, 4 bits from c0);
    # 0b000111 is 3 bits from c0 and 1 bit from c1 -> c1 at distance 1.
    result = leader_cluster(np.array([0b000000, 0b001111, 0b000111], np.uint64), 4, 16, 16)
    assert as_tuples(*result) == [(0, True, 0), (1, True, 0), (1, False, 1)]


def test_eviction_when_table_full():
    # worked by hand, 2 table entries, threshold 2: 0x00 c0, 0xFF c1, 0x0F c2 (4 bits from both,
    # evicts c0), 0x01 is 1 bit from the evicted c0, 7 from c1, 3 from c2 -> new c3 (evicts c1);
    # 0x0E is 1 bit from c2 (still in the table) and 4 from c3 -> c2 at distance 1.
    hashes = np.array([0x00, 0xFF, 0x0F, 0x01, 0x0E], np.uint64)
    result = leader_cluster(hashes, 2, 2, 16)
    assert as_tuples(*result) == [(0, True, 0), (1, True, 0), (2, True, 0), (3, True, 0),
                                  (2, False, 1)]
    clusterer = LeaderClusterer(hamming_threshold=2, table_entries=2, max_clusters=16)
    clusterer.assign(hashes)
    ids, leaders = clusterer.table()
    assert ids.tolist() == [2, 3] and leaders.tolist() == [0x0F, 0x01]


def test_max_clusters_overflow_raises_and_keeps_state():
    clusterer = LeaderClusterer(hamming_threshold=2, table_entries=4, max_clusters=2)
    clusterer.assign(np.array([0x00], np.uint64))
    # 0xFF and 0x0F are 8 and 4 bits from every leader: they would open clusters 2 and 3 of 2
    with pytest.raises(ValueError, match=r"max_clusters exceeded: token 2 would open cluster 3 "
                                         r"but at most 2"):
        clusterer.assign(np.array([0xFF, 0x0F], np.uint64))
    assert clusterer.opened == 1 and clusterer.tokens == 1
    assert as_tuples(*clusterer.assign(np.array([0x01], np.uint64))) == [(0, False, 1)]


@pytest.mark.parametrize("seed", range(6))
def test_matches_brute_force_and_incremental_equals_one_shot(seed):
    rng = np.random.default_rng(seed)
    bits, entries, threshold = int(rng.integers(4, 12)), int(rng.integers(1, 40)), 0
    threshold = int(rng.integers(1, bits))
    # correlated hashes: a few leaders with 0-2 flipped bits, plus random ones
    leaders = rng.integers(0, 1 << bits, 12)
    hashes = leaders[rng.integers(0, 12, 300)]
    for _ in range(2):
        hashes ^= (rng.random(300) < 0.5) << rng.integers(0, bits, 300)
    hashes = hashes.astype(np.uint64)
    expected = brute_force(hashes, threshold, entries, 10 ** 6)
    assert as_tuples(*leader_cluster(hashes, threshold, entries, 10 ** 6)) == expected
    clusterer = LeaderClusterer(hamming_threshold=threshold, table_entries=entries,
                                max_clusters=10 ** 6)
    pieces, start = [], 0
    while start < hashes.size:
        size = int(rng.integers(1, 50))
        pieces += as_tuples(*clusterer.assign(hashes[start:start + size]))
        start += size
    assert pieces == expected


def test_distance_output_is_the_hamming_distance_to_the_leader():
    rng = np.random.default_rng(7)
    hashes = rng.integers(0, 1 << 10, 500).astype(np.uint64)
    cluster, new, distance = leader_cluster(hashes, 4, 64, 1 << 12)
    leaders = hashes[new]
    assert np.array_equal(distance, hamming_distance(hashes, leaders[cluster]))
    assert np.all(distance < 4)


def test_empty_input():
    cluster, new, distance = leader_cluster(np.zeros(0, np.uint64), 7, 1024, 4096)
    assert cluster.size == new.size == distance.size == 0


@pytest.mark.parametrize("name,value,error,match", [
    ("hamming_threshold", 0, ValueError, "hamming_threshold must be a positive integer, not 0"),
    ("table_entries", 1.5, TypeError, "table_entries must be a positive integer, not 1.5"),
    ("max_clusters", -2, ValueError, "max_clusters must be a positive integer, not -2"),
])
def test_invalid_parameters(name, value, error, match):
    params = {"hamming_threshold": 7, "table_entries": 16, "max_clusters": 64, name: value}
    with pytest.raises(error, match=match):
        LeaderClusterer(**params)


def test_invalid_hashes():
    with pytest.raises(ValueError, match="hashes must be a 1-D array"):
        leader_cluster(np.zeros((2, 2), np.uint64), 7, 16, 16)
    with pytest.raises(ValueError, match="hashes must be non-negative"):
        leader_cluster(np.array([-1]), 7, 16, 16)
    with pytest.raises(TypeError, match="hashes must be an integer array"):
        leader_cluster(np.array([0.5]), 7, 16, 16)
