"""cocotb tests of the retrieval buffer's generated Verilog against the numpy twin.

Run through :func:`sim.runner.run_cocotb` (pytest wrappers in
``tests/test_cocotb_retrieval_buffer.py``, RTL engine in :mod:`sim.retrieval_buffer_rtl`). The
:class:`TB` drives the ``i`` stream, collects the ``o`` stream and timestamps every transfer, so
each problem's cycle count (first input transfer to last output transfer) is measured the way the
twin's cycle model defines it.

Environment (all optional): ``BUFFER_SEED`` seeds the random problems and stalls, ``BUFFER_STALL``
is the stall probability of both ends, ``BUFFER_PROBLEMS`` the number of random problems;
``DRE_STIMULUS``/``DRE_RESPONSE`` are the ``.npz`` files of :func:`file_run`.
"""

import os
import random

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge

from hw.retrieval_buffer import cluster_layout, descriptor_layout
from model.npzio import load_arrays, save_arrays
from model.twins.retrieval_buffer import (INPUTS, MODE_DYNAMIC, MODE_TOPK, descriptors_from_beats,
                                    input_beats, output_beats, random_problem, retrieve)
from sim.runner import RESPONSE_ENV, STIMULUS_ENV, cocotb_config, cocotb_path
from sim.streams import StreamSink, StreamSource, reset_dut, unpack


class TB:
    """Clock, reset, stream ends and a transfer monitor around the ``buffer`` top level."""

    def __init__(self, dut, seed=0):
        self.dut = dut
        self.config = cocotb_config()
        self.source_layout = cluster_layout(self.config)
        self.sink_layout = descriptor_layout(self.config)
        self.rng = random.Random(seed)
        self.input_cycles = []
        self.last_output_cycles = []
        cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
        cocotb.start_soon(self._monitor())

    async def _monitor(self):
        cycle = 0
        dut = self.dut
        while True:
            await RisingEdge(dut.clk)
            if dut.rst.value:
                self.input_cycles.clear()
                self.last_output_cycles.clear()
            else:
                if dut.i__valid.value and dut.i__ready.value:
                    self.input_cycles.append(cycle)
                if dut.o__valid.value and dut.o__ready.value:
                    if unpack(self.sink_layout, dut.o__payload.value)["last"]:
                        self.last_output_cycles.append(cycle)
            cycle += 1

    async def reset(self):
        await reset_dut(self.dut)

    async def send(self, beats, stall=0.0):
        """Drive input ``beats`` with ``valid`` stalled at random with probability ``stall``."""
        source = StreamSource(self.dut, "i", self.source_layout,
                              random.Random(self.rng.random()), stall)
        await source.send(beats)

    async def run(self, problems, stall=0.0):
        """Send ``problems`` back to back, both ends stalling with probability ``stall``.

        Returns per problem (output beats, cycles from its first input transfer to its last
        output transfer).
        """
        beats = [input_beats(**problem) for problem in problems]
        self.input_cycles.clear()
        self.last_output_cycles.clear()
        sink = StreamSink(self.dut, "o", self.sink_layout, random.Random(self.rng.random()),
                          stall)
        sender = cocotb.start_soon(self.send([b for problem in beats for b in problem], stall))
        outputs = []
        for _ in problems:
            outputs.append(await sink.receive(until=lambda payload: payload["last"]))
        await sender
        await RisingEdge(self.dut.clk)  # the monitor has now seen the last transfer's edge
        starts = np.cumsum([0] + [len(problem) for problem in beats[:-1]])
        firsts = [self.input_cycles[start] for start in starts]
        return [(out, last - first + 1)
                for out, first, last in zip(outputs, firsts, self.last_output_cycles)]


def _settings():
    return (int(os.environ.get("BUFFER_SEED", "0")), float(os.environ.get("BUFFER_STALL", "0")),
            int(os.environ.get("BUFFER_PROBLEMS", "12")))


def check_problems(tb, problems, results, stall):
    """Assert the RTL's beats (and, without stalls, cycles) equal the twin's."""
    assert len(results) == len(problems)
    for number, (problem, (beats, cycles)) in enumerate(zip(problems, results)):
        expected = retrieve(tb.config, **problem)
        assert beats == output_beats(expected["desc_base"], expected["desc_len"]), \
            f"problem {number}: {beats} != twin"
        if stall == 0:
            assert cycles == expected["cycles"], f"problem {number}: {cycles} cycles != twin"


@cocotb.test()
async def random_problems(dut):
    """Seeded random problems in both modes, back to back: without stalls (outputs and cycles
    equal the twin's), then with the configured stalls on both streams (outputs equal)."""
    seed, stall, count = _settings()
    tb = TB(dut, seed)
    await tb.reset()
    rng = np.random.default_rng(seed)
    for run_stall in (0.0, stall):
        problems = [random_problem(tb.config, rng) for _ in range(count)]
        check_problems(tb, problems, await tb.run(problems, run_stall), run_stall)


@cocotb.test()
async def reset_mid_stream(dut):
    """Reset while a top-k problem streams in; afterwards every problem is still exact."""
    seed, stall, count = _settings()
    tb = TB(dut, seed + 100)
    await tb.reset()
    rng = np.random.default_rng(seed + 100)
    partial = random_problem(tb.config, rng, clusters=10, mode=MODE_TOPK)
    partial["selected"][:] = True
    await tb.send(input_beats(**partial)[:6])
    await tb.reset()
    problems = [partial] + [random_problem(tb.config, rng) for _ in range(3)]
    check_problems(tb, problems, await tb.run(problems, stall), stall)


@cocotb.test()
async def file_run(dut):
    """The RTL engine: one problem from the stimulus file to the response file (no stalls)."""
    tb = TB(dut)
    await tb.reset()
    arrays = load_arrays(cocotb_path(STIMULUS_ENV), INPUTS)
    problem = {"selected": arrays["selected"], "scores": arrays["scores"],
               "base": arrays["base"], "count": arrays["count"],
               "mode": int(arrays.get("mode", MODE_DYNAMIC))}
    (beats, cycles), = await tb.run([problem])
    desc_base, desc_len = descriptors_from_beats(beats)
    save_arrays(cocotb_path(RESPONSE_ENV),
                {"desc_base": desc_base, "desc_len": desc_len, "cycles": np.uint64(cycles)})
