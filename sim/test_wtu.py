"""cocotb tests of the WTU's generated Verilog against the twin (:mod:`model.twins.wtu`).

Run through :func:`sim.runner.run_cocotb` (pytest wrappers in ``tests/test_cocotb_wtu.py``).
:class:`WTUBench` drives the three input streams and the three output streams with seeded random
stalls and records every transfer with its cycle; problems are encoded and decoded by
:mod:`sim.wtu_rtl`, so the comparison with the twin is on whole transaction streams. Stimulus
from files comes through environment variables: ``DRE_STIMULUS``/``DRE_RESPONSE`` (test ``run_file``,
the RTL engine of ``python -m sim.run``) and ``WTU_TRACE`` (test ``workload_rows``).
"""

import os
import random

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge

from hw.wtu import WTULayouts
from model.npzio import load_arrays, save_arrays
from model.twins.wtu import INPUTS, wtu_problem
from sim.runner import RESPONSE_ENV, STIMULUS_ENV, cocotb_config, cocotb_path
from sim.streams import StreamSink, StreamSource, reset_dut, unpack
from sim.wtu_rtl import STAT_KEYS, decode_transactions, problem_transactions

COMPARED_KEYS = (*STAT_KEYS, "row_selected", "selected", "selected_score")


class TransferMonitor:
    """Records ``(cycle, payload)`` of every transfer on stream ``prefix`` (passive)."""

    def __init__(self, dut, prefix, layout):
        self._dut = dut
        self._valid = getattr(dut, f"{prefix}__valid")
        self._ready = getattr(dut, f"{prefix}__ready")
        self._payload = getattr(dut, f"{prefix}__payload")
        self._layout = layout
        self.transfers = []
        self._task = cocotb.start_soon(self._run())

    async def _run(self):
        # Sample in the read-only phase: the settled valid/ready/payload that the next rising
        # edge will see, whatever order the drivers' coroutines ran in after this edge.
        cycle = 0
        while True:
            await RisingEdge(self._dut.clk)
            await ReadOnly()
            cycle += 1
            if str(self._valid.value) == "1" and str(self._ready.value) == "1":
                self.transfers.append((cycle, unpack(self._layout, self._payload.value)))

    def stop(self):
        self._task.cancel()


def _packed(layout, beats):
    """``beats`` with each field as one integer, as :func:`sim.streams.pack` takes them (an
    ``ArrayLayout`` field packed by Amaranth's own layout: lane 0 in the lowest bits)."""
    return [{name: layout.const(beat)[name].as_value().value for name in beat} for beat in beats]


class WTUBench:
    """Clock, reset, stalling drivers and monitors of every WTU stream."""

    def __init__(self, dut, seed=0, stall=0.0):
        self.dut = dut
        self.config = cocotb_config()
        self.layouts = WTULayouts(self.config)
        self.rng = random.Random(seed)
        self.stall = stall
        cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())

    def _streams(self):
        rng, stall = self.rng, self.stall
        layouts = self.layouts
        sources = {name: StreamSource(self.dut, name, getattr(layouts, name),
                                      random.Random(rng.random()), stall)
                   for name in ("problem", "counts", "scores")}
        sinks = {name: StreamSink(self.dut, name, getattr(layouts, name),
                                  random.Random(rng.random()), stall)
                 for name in ("stats", "row_mask", "selected")}
        monitors = {name: TransferMonitor(self.dut, name, getattr(layouts, name))
                    for name in ("counts", "scores", "stats", "row_mask", "selected")}
        return sources, sinks, monitors

    def transactions(self, scores, counts):
        """The input beats of a problem (:func:`sim.wtu_rtl.problem_transactions`), packed."""
        problem, count_beats, score_beats = problem_transactions(self.config, scores, counts)
        return (problem, _packed(self.layouts.counts, count_beats),
                _packed(self.layouts.scores, score_beats))

    async def reset(self):
        await reset_dut(self.dut)

    async def run(self, problems):
        """Run ``problems`` (list of (scores, counts)) back to back; returns (results, timings).

        ``timings`` holds per problem the transfer cycles of ``scores``, ``stats``, ``row_mask``
        and ``selected``.
        """
        sources, sinks, monitors = self._streams()

        async def feed():
            for scores, counts in problems:
                problem, count_beats, score_beats = self.transactions(scores, counts)
                await sources["problem"].send(problem)
                await sources["counts"].send(count_beats)
                await sources["scores"].send(score_beats)

        feeder = cocotb.start_soon(feed())
        results, timings = [], []
        for scores, _ in problems:
            rows, clusters = scores.shape
            beats = -(-clusters // self.config.wtu_lanes)
            stats = cocotb.start_soon(sinks["stats"].receive(count=rows))
            masks = cocotb.start_soon(sinks["row_mask"].receive(count=rows * beats))
            selected = await sinks["selected"].receive(until=lambda beat: beat["last"])
            results.append(decode_transactions(self.config, rows, clusters, await stats,
                                               await masks, selected))
            timings.append({name: [cycle for cycle, _ in monitor.transfers]
                            for name, monitor in monitors.items()})
            for monitor in monitors.values():
                monitor.transfers.clear()
        await feeder
        for monitor in monitors.values():
            monitor.stop()
        return results, timings

    async def check(self, problems):
        """Run ``problems`` and assert every compared key equals the twin's."""
        results, _ = await self.run(problems)
        for index, ((scores, counts), result) in enumerate(zip(problems, results)):
            twin = wtu_problem(self.config, scores, counts)
            for key in COMPARED_KEYS:
                np.testing.assert_array_equal(result[key], twin[key],
                                              err_msg=f"problem {index}, key {key}")


def _random_problem(config, rng, rows, clusters):
    scores = rng.integers(0, config.max_score + 1, size=(rows, clusters))
    counts = rng.integers(0, config.max_count + 1, size=clusters)
    return scores, counts


def _seed():
    return int(os.environ.get("WTU_SEED", "1"))


@cocotb.test()
async def directed(dut):
    """All equal, single non-zero, zero weight, counts at the maximum, ratio 0 and ratio 1."""
    bench = WTUBench(dut, seed=_seed(), stall=0.3)
    config = bench.config
    await bench.reset()
    n = min(config.max_clusters, 13)
    counts = np.arange(1, n + 1) % (config.max_count + 1)
    single = np.zeros((1, n), dtype=np.int64)
    single[0, n // 2] = config.max_score
    await bench.check([
        (np.full((2, n), config.max_score // 3), counts),
        (single, counts),
        (np.full((1, n), 5), np.zeros(n, dtype=np.int64)),
        (np.full((2, n), config.max_score), np.full(n, config.max_count)),
    ])


@cocotb.test()
async def random_rows(dut):
    """Seeded random problems back to back under random valid/ready stalls."""
    bench = WTUBench(dut, seed=_seed(), stall=0.4)
    config = bench.config
    await bench.reset()
    rng = np.random.default_rng(_seed())
    problems = [_random_problem(config, rng, int(rng.integers(1, min(config.max_rows, 4) + 1)),
                                int(rng.integers(1, min(config.max_clusters, 64) + 1)))
                for _ in range(3)]
    await bench.check(problems)


@cocotb.test()
async def reset_mid_row(dut):
    """A reset in the middle of a row's load leaves no trace on the next problem."""
    bench = WTUBench(dut, seed=_seed(), stall=0.2)
    config = bench.config
    await bench.reset()
    rng = np.random.default_rng(_seed() + 7)
    scores, counts = _random_problem(config, rng, 2, min(config.max_clusters, 40))
    problem, count_beats, score_beats = bench.transactions(scores, counts)
    sources, _, monitors = bench._streams()
    await sources["problem"].send(problem)
    await sources["counts"].send(count_beats)
    row_beats = len(score_beats) // len(scores)
    await sources["scores"].send(score_beats[:row_beats // 2 + 1])  # into row 0
    for monitor in monitors.values():
        monitor.stop()
    await bench.reset()
    await bench.check([_random_problem(config, rng, 2, min(config.max_clusters, 23))])


@cocotb.test()
async def workload_rows(dut):
    """Rows of the streaming workload scored by the float model (file in ``WTU_TRACE``)."""
    bench = WTUBench(dut, seed=_seed(), stall=0.2)
    await bench.reset()
    arrays = load_arrays(cocotb_path("WTU_TRACE"), INPUTS)
    await bench.check([(arrays["scores"], arrays["counts"])])


@cocotb.test()
async def run_file(dut):
    """File engine: the stimulus file in, the response file out, no stalls, cycles measured."""
    bench = WTUBench(dut, seed=0, stall=0.0)
    config = bench.config
    await bench.reset()
    arrays = load_arrays(cocotb_path(STIMULUS_ENV), INPUTS)
    scores, counts = arrays["scores"], arrays["counts"]
    (result,), (timing,) = await bench.run([(scores, counts)])
    rows, clusters = scores.shape
    beats = -(-clusters // config.wtu_lanes)
    score_cycles, stats_cycles = timing["scores"], timing["stats"]
    mask_cycles, selected_cycles = timing["row_mask"], timing["selected"]
    for row in range(rows):
        # Without stalls, the stats beat comes exactly ``cycles`` after the first score beat.
        measured = stats_cycles[row] - score_cycles[row * beats]
        assert measured == int(result["cycles"][row]), \
            f"row {row}: stats after {measured} cycles, reports {result['cycles'][row]}"
    result["emit_cycles"] = np.array(
        [mask_cycles[(row + 1) * beats - 1] - stats_cycles[row] for row in range(rows)],
        dtype=np.uint64)
    result["aggregate_cycles"] = np.array([selected_cycles[-1] - mask_cycles[-1]],
                                          dtype=np.uint64)
    count_cycles = timing["counts"]
    result["count_cycles"] = np.array([count_cycles[-1] - count_cycles[0] + 1], dtype=np.uint64)
    save_arrays(cocotb_path(RESPONSE_ENV), result)

