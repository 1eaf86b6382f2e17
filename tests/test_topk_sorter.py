# amaranth: UnusedElaboratable=no
"""The sorter-based top-k baseline against its twin: entries with stalls, latency and span without.

Rows go through the stream kit (:func:`sim.kit.amaranth_sim.check_block`); the codec
(:class:`sim.payloads.SorterCodec`) decodes each row's ``topk_k`` entries and its timing.
"""

import numpy as np
import pytest
from amaranth.back import verilog

from hw.topk_sorter import TopKSorter
from model.config import PRESETS
from model.twins import topk_sorter as twin
from sim.kit.amaranth_sim import check_block

TINY = PRESETS["tiny"]


def random_rows(config, count, rng, max_beats=None):
    """Rows of random lengths (whole beats) with many ties (scores from a small range)."""
    max_beats = max_beats or config.max_clusters // config.wtu_lanes
    rows = []
    for _ in range(count):
        beats = int(rng.integers(1, max_beats + 1))
        high = int(rng.choice([3, config.max_score]))
        rows.append(rng.integers(0, high + 1, size=beats * config.wtu_lanes))
    return rows


@pytest.mark.parametrize("config", [TINY, TINY.replace(topk_k=3, wtu_lanes=8),
                                    TINY.replace(topk_k=12, wtu_lanes=2)],
                         ids=["tiny", "k3-lanes8", "k12-lanes2"])
def test_matches_twin_with_stalls(config):
    rng = np.random.default_rng(7)
    rows = random_rows(config, 6, rng)
    rows.append(np.full(config.wtu_lanes, config.max_score))  # one beat, all tied
    check_block("topk_sorter", config, [{"scores": row} for row in rows], stall=0.3, seed=3)


def test_latency_and_span_match_twin_and_component():
    rows = random_rows(TINY, 4, np.random.default_rng(11))
    dut = TopKSorter(TINY)
    results = check_block("topk_sorter", TINY, [{"scores": row} for row in rows], component=dut)
    assert {int(result["latency"]) for result in results} == {dut.latency}


def test_twin_worked_example():
    # Worked by hand: lanes 4, k 4, scores [5, 9, 5, 1, 9, 0, 0, 2] -> 9 (cluster 1),
    # 9 (cluster 4, tie after the lower index), 5 (cluster 0), 5 (cluster 2).
    clusters, scores, valid = twin.topk_row(TINY, [5, 9, 5, 1, 9, 0, 0, 2])
    assert clusters.tolist() == [1, 4, 0, 2]
    assert scores.tolist() == [9, 9, 5, 5]
    assert valid.tolist() == [1, 1, 1, 1]
    # Worked by hand: 2 beats of 4 lanes, k 4 -> B + 1 + k = 2 + 1 + 4 = 7 cycles.
    assert twin.cycles_per_row(TINY, 8) == 7


def test_twin_pads_short_rows():
    config = TINY.replace(topk_k=6)
    clusters, scores, valid = twin.topk_row(config, [0, 3, 3, 1])
    assert clusters.tolist() == [1, 2, 3, 0, 0, 0]
    assert scores.tolist() == [3, 3, 1, 0, 0, 0]
    assert valid.tolist() == [1, 1, 1, 1, 0, 0]


def test_twin_rejects_bad_rows():
    with pytest.raises(ValueError, match="multiple of wtu_lanes"):
        twin.topk_row(TINY, [1, 2, 3])
    with pytest.raises(ValueError, match="scores must be from 0 to 255"):
        twin.topk_row(TINY, [1, 2, 3, 256])
    with pytest.raises(ValueError, match="clusters must be from 1 to 64"):
        twin.cycles_per_row(TINY, 65)


def test_constructor_checks():
    with pytest.raises(TypeError, match="config must be a DREConfig"):
        TopKSorter({"wtu_lanes": 4})


def test_converts_to_verilog():
    text = verilog.convert(TopKSorter(TINY), name="topk_sorter")
    assert "module topk_sorter" in text
    assert "i__payload" in text and "o__payload" in text
