"""cocotb testbench of the KV management unit's generated Verilog, scored by its twin.

Streams of frames go through :class:`sim.kit.cocotb_sim.TB` and :class:`sim.payloads.KVMUCodec`
and are compared with :func:`model.twins.kvmu.run_stream`: moves, counts, fetch descriptors and
the fetched tokens always, the cycles per frame when nothing stalls. Tests: ``random_streams``
(back to back, unstalled then stalled on every stream), ``reset_mid_stream``, ``context_switch``
(two streams sharing the KVMU through its context port, :mod:`sim.context_switch`),
``file_run`` (the RTL engine of ``python -m sim.run kvmu``). Settings: ``KVMU_SEED``, ``KVMU_STALL``,
``KVMU_STREAMS``, ``KVMU_FRAMES``.
"""

import cocotb
import numpy as np

from model.stimulus.kvmu_streams import random_stream
from sim.context_switch import KVMUContextSwitch
from sim.kit.cocotb_sim import TB, file_run as run_file, knob
from sim.kit.core import control, cycle_limit


def _streams(tb, rng):
    frames = knob("KVMU_FRAMES", 10)
    return [random_stream(tb.config, rng, frames) for _ in range(knob("KVMU_STREAMS", 3))]


@cocotb.test()
async def random_streams(dut):
    """Seeded random streams, back to back: unstalled (outputs and cycles equal the twin's),
    then with the configured stalls on every stream (outputs equal)."""
    seed = knob("KVMU_SEED", 0)
    tb = TB(dut, "kvmu", seed=seed)
    rng = np.random.default_rng(seed)
    for stall in (0.0, knob("KVMU_STALL", 0.0)):
        await tb.reset()
        tb.set_stall(stall)
        results = await tb.check(_streams(tb, rng))
        assert sum(result["fetch_token"].size for result in results) > 0  # something fetched


@cocotb.test()
async def reset_mid_stream(dut):
    """Reset while a stream's frames are being offloaded and assigned; afterwards every stream
    (the interrupted one again from its start) is exact."""
    seed = knob("KVMU_SEED", 0) + 100
    tb = TB(dut, "kvmu", seed=seed)
    await tb.reset()
    rng = np.random.default_rng(seed)
    streams = _streams(tb, rng)
    tb.send(streams[:1])
    await tb.wait_until(lambda: len(tb.drivers["assign"].transfers)
                        >= len(tb.drivers["assign"].pending) // 2, 20000, "half the assignments")
    await tb.reset()
    tb.set_stall(knob("KVMU_STALL", 0.0))
    await tb.check(streams)


@cocotb.test()
async def context_switch(dut):
    """Two streams share the KVMU frame by frame: a restore of the stream's image before each
    of its frames (from the second), a save after it; unstalled (images, outputs and cycles
    equal the twin's), then with the configured stalls on every stream (images and outputs)."""
    seed = knob("KVMU_SEED", 0) + 200
    tb = TB(dut, "kvmu", seed=seed)
    rng = np.random.default_rng(seed)
    for stall in (0.0, knob("KVMU_STALL", 0.0)):
        await tb.reset()
        tb.set_stall(stall)
        run = KVMUContextSwitch(tb.config, [random_stream(tb.config, rng, knob("KVMU_FRAMES", 10))
                                            for _ in range(2)])
        run.queue(tb.drivers)
        limit = cycle_limit(run.twin_cycles, *[end.stalls.probability for end in tb.ends])
        await control(tb.adapter, tb.drivers, tb.monitors, lambda: run.complete(tb.monitors),
                      limit)
        run.check(tb.drivers, tb.monitors, timed=not stall)


@cocotb.test()
async def file_run(dut):
    """The RTL engine: one stream from the stimulus file to the response file (no stalls)."""
    await run_file(dut, "kvmu")
