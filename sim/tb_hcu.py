"""cocotb testbench of the hash-bit cluster unit's generated Verilog, scored by its twin.

Every test goes through :class:`sim.kit.cocotb_sim.TB`: token hashes into ``i``, assignments
from ``o``, decoded by :class:`sim.payloads.HCUCodec` and compared with
:func:`model.twins.hcu.hash_cluster` (``on_overflow="flag"``, the RTL's behaviour): the
assignments and ``last`` flags always, the cycles between assignments when nothing stalls.

Tests (the pytest wrappers in ``tests/test_cocotb_hcu.py`` pick them): ``directed``,
``random_hashes``, ``stalls``, ``workload``, ``reset_mid_frame``, ``overflow``, and
``file_run`` (the RTL engine of ``python -m sim.run hcu``). Settings: ``HCU_SEED``,
``HCU_TOKENS``.
"""

import cocotb
import numpy as np

from model.stimulus.hashes import codewords, directed_streams, synthetic_hashes
from model.stimulus.traces import hcu_trace
from model.twins.hcu import hash_cluster
from sim.kit.cocotb_sim import TB, file_run as run_file, knob


def _frames(count, every):
    return np.arange(count) % every == every - 1


@cocotb.test()
async def directed(dut):
    """Corner cases: threshold - 1 and threshold, ties, empty and full table, identical frame."""
    tb = TB(dut, "hcu")
    for name, hashes in directed_streams(tb.config, seed=knob("HCU_SEED", 1)).items():
        await tb.reset()
        dut._log.info("directed stream %s", name)
        await tb.check([{"hashes": hashes, "last": _frames(len(hashes), len(hashes))}])


@cocotb.test()
async def random_hashes(dut):
    """Seeded random hashes around random centres (some evicted again), exact cycles."""
    tb = TB(dut, "hcu")
    await tb.reset()
    count = knob("HCU_TOKENS", 48)
    hashes = synthetic_hashes(tb.config, count, np.random.default_rng(knob("HCU_SEED", 1)),
                              centres=count // 2)
    await tb.check([{"hashes": hashes}])


@cocotb.test()
async def stalls(dut):
    """Random valid/ready stalls on each stream and on both: nothing lost, duplicated or late."""
    seed = knob("HCU_SEED", 1)
    tb = TB(dut, "hcu", seed=seed)
    hashes = synthetic_hashes(tb.config, 40, np.random.default_rng(seed + 1))
    for stall in ({"i": 0.5}, {"o": 0.5}, {"i": 0.4, "o": 0.4}):
        await tb.reset()
        tb.set_stall(stall)
        await tb.check([{"hashes": hashes, "last": _frames(len(hashes), 10)}])


@cocotb.test()
async def workload(dut):
    """Hashes of the streaming workload, frame ends marked, under random stalls on both sides."""
    seed = knob("HCU_SEED", 1)
    tb = TB(dut, "hcu", seed=seed, stall=0.3)
    await tb.reset()
    hashes = hcu_trace(tb.config, frames=12, seed=seed, workload="tiny")["hashes"]
    # A precondition on the stimulus, checked with the twin before the run (the RTL is
    # compared by tb.check): the trace must both open and join clusters.
    opened = int(hash_cluster(tb.config, hashes, on_overflow="flag")["new"].sum())
    if not 1 < opened < len(hashes):
        raise ValueError(f"the workload trace opens {opened} clusters for {len(hashes)} "
                         "tokens: it must both open and join clusters")
    await tb.check([{"hashes": hashes, "last": _frames(len(hashes), len(hashes) // 12)}])


@cocotb.test()
async def reset_mid_frame(dut):
    """A reset while tokens are being compared empties the table; the next stream is exact."""
    seed = knob("HCU_SEED", 1)
    tb = TB(dut, "hcu", seed=seed, stall=0.2)
    await tb.reset()
    rng = np.random.default_rng(seed + 2)
    tb.send([{"hashes": synthetic_hashes(tb.config, 30, rng)}])
    await tb.wait_until(lambda: len(tb.monitors["o"].transfers) >= 5 and not dut.o__valid.value,
                        2000, "five tokens done and the unit busy comparing")
    await tb.reset()
    await tb.cycles(2)
    assert not dut.o__valid.value, "an assignment is pending after reset"
    await tb.check([{"hashes": synthetic_hashes(tb.config, 20, rng)}])


@cocotb.test()
async def overflow(dut):
    """More than max_clusters clusters: flagged tokens, unchanged table, sticky status."""
    tb = TB(dut, "hcu")
    config = tb.config
    rng = np.random.default_rng(knob("HCU_SEED", 1) + 3)
    words = codewords(config, config.max_clusters + 3, rng, window=config.hash_mem_entries)
    hashes = words + words[-6:-3]  # three overflows, then three of the last clusters again
    await tb.reset()
    assert dut.overflow.value == 0, "overflow status set after reset"
    (result,) = await tb.check([{"hashes": hashes}])
    assert result["overflow"].sum() == 3, "the stream must overflow exactly three times"
    assert not result["new"][-3:].any(), "the last three tokens must join kept clusters"
    assert dut.overflow.value == 1, "overflow status not raised"
    await tb.reset()
    assert dut.overflow.value == 0, "overflow status not cleared by reset"


@cocotb.test()
async def file_run(dut):
    """The RTL engine: the stimulus file's hashes, unstalled, to the response file."""
    await run_file(dut, "hcu")
