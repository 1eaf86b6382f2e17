"""cocotb testbench of the retrieval buffer's generated Verilog, scored by its twin.

Problems go through :class:`sim.kit.cocotb_sim.TB` and :class:`sim.payloads.BufferCodec`
and are compared with :func:`model.twins.retrieval_buffer.retrieve`: the descriptors always, the
cycles per problem when nothing stalls. Tests: ``random_problems`` (both modes, back to back,
unstalled then stalled), ``reset_mid_stream``, ``file_run`` (the RTL engine of ``python -m
sim.run buffer``). Settings: ``BUFFER_SEED``, ``BUFFER_STALL``, ``BUFFER_PROBLEMS``.
"""

import cocotb
import numpy as np

from model.stimulus.buffer_problems import random_problem
from model.twins.retrieval_buffer import MODE_TOPK
from sim.kit.cocotb_sim import TB, file_run as run_file, knob


@cocotb.test()
async def random_problems(dut):
    """Seeded random problems in both modes, back to back: unstalled (descriptors and cycles
    equal the twin's), then with the configured stalls on both streams (descriptors equal)."""
    seed, count = knob("BUFFER_SEED", 0), knob("BUFFER_PROBLEMS", 12)
    tb = TB(dut, "buffer", seed=seed)
    rng = np.random.default_rng(seed)
    for stall in (0.0, knob("BUFFER_STALL", 0.0)):
        await tb.reset()
        tb.set_stall(stall)
        await tb.check([random_problem(tb.config, rng) for _ in range(count)])


@cocotb.test()
async def reset_mid_stream(dut):
    """Reset while a top-k problem streams in; afterwards every problem is still exact."""
    seed = knob("BUFFER_SEED", 0) + 100
    tb = TB(dut, "buffer", seed=seed)
    await tb.reset()
    rng = np.random.default_rng(seed)
    partial = random_problem(tb.config, rng, clusters=10, mode=MODE_TOPK)
    partial["selected"][:] = True
    tb.drivers["i"].send(tb.codec.input_beats(tb.config, [partial])["i"][:6])
    await tb.wait_until(lambda: not tb.drivers["i"].pending, 1000, "the partial problem's beats")
    await tb.reset()
    tb.set_stall(knob("BUFFER_STALL", 0.0))
    await tb.check([partial] + [random_problem(tb.config, rng) for _ in range(3)])


@cocotb.test()
async def file_run(dut):
    """The RTL engine: one problem from the stimulus file to the response file (no stalls)."""
    await run_file(dut, "buffer")
