"""cocotb testbench of the hash-bit cluster unit on its generated Verilog, scored by the twin.

Every test drives token hashes into ``i`` and collects assignments from ``o`` through the shared
stream drivers (:mod:`sim.streams`), while a :class:`HandshakeMonitor` records the clock cycle of
every transfer. The scoreboard is :func:`model.twins.hcu.hash_cluster` (with ``on_overflow="flag"``,
the RTL's behaviour): the assignments must be equal, in order, none lost or duplicated, and
when neither stream stalls the cycles between consecutive assignments must equal the twin's
``cycles`` exactly.

Tests (the pytest wrappers in ``tests/test_cocotb_hcu.py`` pick them with ``testcase``):
``directed``, ``random_hashes``, ``stalls``, ``workload``, ``reset_mid_frame``, ``overflow``, and
``trace_run``, which runs the ``hashes`` of the stimulus ``.npz`` (``DRE_STIMULUS``) without
stalls and writes the assignments and measured cycles to ``DRE_RESPONSE`` (the RTL engine of
``python -m sim.run hcu --engine rtl``).
"""

import os
import random

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge

from hw.hcu import assignment_layout, token_layout
from model.twins.hcu import codewords, directed_streams, hash_cluster, synthetic_hashes
from model.npzio import save_arrays
from model.stimulus.traces import hcu_trace
from sim.runner import RESPONSE_ENV, STIMULUS_ENV, cocotb_config, cocotb_path
from sim.streams import StreamSink, StreamSource, pack, reset_dut, unpack

#: Clock period of the testbench in ns.
CLOCK_NS = 10

#: Fields of an assignment compared with the twin.
ASSIGNMENT_FIELDS = ("cluster", "new", "distance", "overflow")


class HandshakeMonitor:
    """Records the cycle number of every transfer on stream ports of the DUT."""

    def __init__(self, dut, prefixes=("i", "o")):
        self._clk = dut.clk
        self._ports = {prefix: (getattr(dut, f"{prefix}__valid"), getattr(dut, f"{prefix}__ready"))
                       for prefix in prefixes}
        self.transfers = {prefix: [] for prefix in prefixes}
        self._task = None

    async def _watch(self):
        cycle = 0
        while True:
            await RisingEdge(self._clk)
            # Values read right at the edge are those the flops sampled.
            for prefix, (valid, ready) in self._ports.items():
                if valid.value and ready.value:
                    self.transfers[prefix].append(cycle)
            cycle += 1

    def start(self):
        """Start watching (call before the stimulus)."""
        self._task = cocotb.start_soon(self._watch())

    def stop(self):
        """Stop watching."""
        self._task.cancel()


class HcuBench:
    """Clock, reset, drivers and scoreboard of one HCU under test."""

    def __init__(self, dut, seed=0):
        self.dut = dut
        self.config = cocotb_config()
        self.seed = seed
        self._inputs = token_layout(self.config)
        self._outputs = assignment_layout(self.config)
        dut.i__valid.value = 0
        dut.o__ready.value = 0
        cocotb.start_soon(Clock(dut.clk, CLOCK_NS, unit="ns").start())

    async def reset(self):
        """Hold reset for a few cycles (empties the table)."""
        await reset_dut(self.dut)

    async def run(self, hashes, *, lasts=None, in_stall=0.0, out_stall=0.0):
        """Send ``hashes``, collect one assignment each; returns (assignments, latencies)."""
        lasts = [0] * len(hashes) if lasts is None else lasts
        rng = random.Random(self.seed)
        source = StreamSource(self.dut, "i", self._inputs, random.Random(rng.random()), in_stall)
        sink = StreamSink(self.dut, "o", self._outputs, random.Random(rng.random()), out_stall)
        monitor = HandshakeMonitor(self.dut)
        monitor.start()
        payloads = [{"hash": int(value), "last": int(last)}
                    for value, last in zip(hashes, lasts)]
        sending = cocotb.start_soon(source.send(payloads))
        received = await sink.receive(count=len(payloads))
        await sending
        while len(monitor.transfers["o"]) < len(payloads):
            await RisingEdge(self.dut.clk)  # let the monitor see the last transfer
        monitor.stop()
        return received, _intervals(monitor.transfers["i"], monitor.transfers["o"])

    async def run_unstalled(self, hashes):
        """Like :meth:`run` without stalls, in one coroutine waking once per cycle (long traces)."""
        dut = self.dut
        payloads = [pack(self._inputs, {"hash": int(value), "last": 0}) for value in hashes]
        received, accepted, delivered = [], [], []
        dut.o__ready.value = 1
        sent = cycle = 0
        if payloads:
            dut.i__valid.value = 1
            dut.i__payload.value = payloads[0]
        while len(received) < len(payloads):
            await RisingEdge(dut.clk)
            # Values read right at the edge are those the flops sampled.
            if sent < len(payloads) and dut.i__ready.value:
                accepted.append(cycle)
                sent += 1
                if sent < len(payloads):
                    dut.i__payload.value = payloads[sent]
                else:
                    dut.i__valid.value = 0
            if dut.o__valid.value:
                received.append(unpack(self._outputs, dut.o__payload.value))
                delivered.append(cycle)
            cycle += 1
        dut.o__ready.value = 0
        return received, _intervals(accepted, delivered)

    def check(self, hashes, received, cycles, *, lasts=None, exact_cycles=True, what="stream"):
        """Assert the assignments (and, unstalled, the cycles) equal the twin's.

        Returns the twin's result.
        """
        expected = hash_cluster(self.config, hashes, on_overflow="flag")
        assert len(received) == len(hashes), f"{what}: {len(received)} outputs for {len(hashes)}"
        for index, payload in enumerate(received):
            got = {field: payload[field] for field in ASSIGNMENT_FIELDS}
            want = {field: int(expected[field][index]) for field in ASSIGNMENT_FIELDS}
            assert got == want, f"{what}: token {index}: RTL {got} != twin {want}"
            if lasts is not None:
                assert payload["last"] == lasts[index], f"{what}: token {index}: last flag"
        if exact_cycles:
            want = expected["cycles"].astype(np.int64)
            mismatch = np.flatnonzero(cycles != want)
            assert not len(mismatch), (f"{what}: cycles of token {mismatch[0]}: RTL "
                                       f"{cycles[mismatch[0]]} != twin {want[mismatch[0]]}")
        return expected

    async def run_and_check(self, hashes, *, what, in_stall=0.0, out_stall=0.0, lasts=None):
        """Reset, run ``hashes`` from an empty table and check them against the twin."""
        await self.reset()
        received, cycles = await self.run(hashes, lasts=lasts, in_stall=in_stall,
                                          out_stall=out_stall)
        return self.check(hashes, received, cycles, lasts=lasts,
                          exact_cycles=in_stall == out_stall == 0.0, what=what)


def _intervals(accepted, delivered):
    """Cycles of each token as the twin counts them: from the previous token's assignment (the
    first token: from its input transfer) to its own assignment."""
    if not delivered:
        return np.zeros(0, np.int64)
    return np.diff(np.array([accepted[0]] + list(delivered), np.int64))


def _stream_seed():
    return int(os.environ.get("HCU_SEED", "1"))


@cocotb.test()
async def directed(dut):
    """Corner cases: threshold - 1 and threshold, ties, empty and full table, identical frame."""
    bench = HcuBench(dut)
    for name, hashes in directed_streams(bench.config, seed=_stream_seed()).items():
        lasts = [0] * (len(hashes) - 1) + [1]
        await bench.run_and_check(hashes, what=name, lasts=lasts)


@cocotb.test()
async def random_hashes(dut):
    """Seeded random hashes around random centres (some evicted again), exact cycles."""
    bench = HcuBench(dut)
    rng = np.random.default_rng(_stream_seed())
    count = int(os.environ.get("HCU_TOKENS", "48"))
    hashes = synthetic_hashes(bench.config, count, rng, centres=count // 2)
    await bench.run_and_check(hashes, what="random")


@cocotb.test()
async def stalls(dut):
    """Random valid/ready stalls on both streams: nothing lost, duplicated or reordered."""
    bench = HcuBench(dut, seed=_stream_seed())
    rng = np.random.default_rng(_stream_seed() + 1)
    hashes = synthetic_hashes(bench.config, 40, rng)
    lasts = [int(index % 10 == 9) for index in range(len(hashes))]
    for in_stall, out_stall in ((0.5, 0.0), (0.0, 0.5), (0.4, 0.4)):
        await bench.run_and_check(hashes, what=f"stalls {in_stall}/{out_stall}",
                                  in_stall=in_stall, out_stall=out_stall, lasts=lasts)


@cocotb.test()
async def workload(dut):
    """Hashes of the streaming workload, frame ends marked, under random stalls on both sides."""
    bench = HcuBench(dut, seed=_stream_seed())
    stream = hcu_trace(bench.config, frames=12, seed=_stream_seed(), workload="tiny")
    hashes = stream["hashes"]
    frame_tokens = len(hashes) // 12
    lasts = [int(index % frame_tokens == frame_tokens - 1) for index in range(len(hashes))]
    expected = await bench.run_and_check(hashes, what="workload", in_stall=0.3, out_stall=0.3,
                                         lasts=lasts)
    opened = int(expected["new"].sum())
    assert opened > 1 and opened < len(hashes), "the trace must both open and join clusters"


@cocotb.test()
async def reset_mid_frame(dut):
    """A reset while a frame is being clustered empties the table; the next stream is exact."""
    bench = HcuBench(dut)
    rng = np.random.default_rng(_stream_seed() + 2)
    first = synthetic_hashes(bench.config, 30, rng)
    await bench.reset()
    source = StreamSource(dut, "i", token_layout(bench.config), random.Random(3), 0.2)
    sink = StreamSink(dut, "o", assignment_layout(bench.config), random.Random(4), 0.2)
    sending = cocotb.start_soon(source.send([{"hash": int(value), "last": 0}
                                             for value in first]))
    receiving = cocotb.start_soon(sink.receive(count=len(first)))
    # Wait until a few tokens are done and the unit is busy comparing (input not ready).
    finished = 0
    while True:
        await RisingEdge(dut.clk)
        if receiving.done():
            raise AssertionError("the whole first stream finished before the reset")
        finished += int(dut.o__valid.value and dut.o__ready.value)
        if finished >= 5 and dut.i__valid.value and not dut.i__ready.value \
                and not dut.o__valid.value:
            break
    sending.cancel()
    receiving.cancel()
    dut.i__valid.value = 0
    dut.o__ready.value = 0
    await reset_dut(dut)
    await ClockCycles(dut.clk, 2)
    assert dut.o__valid.value == 0, "an assignment is pending after reset"
    second = synthetic_hashes(bench.config, 20, rng)
    received, cycles = await bench.run(second)
    bench.check(second, received, cycles, what="after reset")


@cocotb.test()
async def overflow(dut):
    """More than max_clusters clusters: flagged tokens, unchanged table, sticky status."""
    bench = HcuBench(dut)
    config = bench.config
    rng = np.random.default_rng(_stream_seed() + 3)
    words = codewords(config, config.max_clusters + 3, rng, window=config.hash_mem_entries)
    hashes = words + words[-6:-3]  # three overflows, then three of the last clusters again
    await bench.reset()
    assert dut.overflow.value == 0, "overflow status set after reset"
    received, cycles = await bench.run(hashes)
    expected = bench.check(hashes, received, cycles, what="overflow")
    assert not expected["new"][-3:].any(), "the last three tokens must join kept clusters"
    assert expected["overflow"].sum() == 3, "the stream must overflow exactly three times"
    assert dut.overflow.value == 1, "overflow status not raised"
    await bench.reset()
    assert dut.overflow.value == 0, "overflow status not cleared by reset"


@cocotb.test()
async def trace_run(dut):
    """File engine: the hashes of the stimulus file unstalled; assignments and cycles to the response."""
    bench = HcuBench(dut)
    with np.load(cocotb_path(STIMULUS_ENV)) as archive:
        hashes = archive["hashes"].astype(np.uint64)
    await bench.reset()
    received, cycles = await bench.run_unstalled(hashes)
    result = {field: np.array([payload[field] for payload in received], np.uint64)
              for field in ASSIGNMENT_FIELDS}
    result["cycles"] = cycles.astype(np.uint64)
    save_arrays(cocotb_path(RESPONSE_ENV), result)
