"""cocotb testbench of the WTU's generated Verilog, scored by its twin (:mod:`model.twins.wtu`).

Problems go through :class:`sim.kit.cocotb_sim.TB` and :class:`sim.payloads.WTUCodec`: the
three input streams and the three output streams are driven and monitored with seeded random
stalls, and every decoded array (per-row statistics and masks, the aggregate, and, unstalled, the
timing of every stream) must equal the twin's. Tests: ``directed``, ``random_rows``,
``reset_mid_row``, ``workload_rows`` (the trace in ``WTU_TRACE``) and ``file_run`` (the RTL
engine of ``python -m sim.run wtu``). Setting: ``WTU_SEED``.
"""

import cocotb
import numpy as np

from model.npzio import load_arrays
from model.twins.wtu import INPUTS
from sim.kit.cocotb_sim import TB, file_run as run_file, knob
from sim.runner import cocotb_path


def _random_problem(config, rng, rows, clusters):
    return {"scores": rng.integers(0, config.max_score + 1, size=(rows, clusters)),
            "counts": rng.integers(0, config.max_count + 1, size=clusters)}


@cocotb.test()
async def directed(dut):
    """All equal, single non-zero, zero weight, scores and counts at their maximum."""
    tb = TB(dut, "wtu", seed=knob("WTU_SEED", 1), stall=0.3)
    config = tb.config
    await tb.reset()
    n = min(config.max_clusters, 13)
    counts = np.arange(1, n + 1) % (config.max_count + 1)
    single = np.zeros((1, n), dtype=np.int64)
    single[0, n // 2] = config.max_score
    await tb.check([
        {"scores": np.full((2, n), config.max_score // 3), "counts": counts},
        {"scores": single, "counts": counts},
        {"scores": np.full((1, n), 5), "counts": np.zeros(n, dtype=np.int64)},
        {"scores": np.full((2, n), config.max_score), "counts": np.full(n, config.max_count)},
    ])


@cocotb.test()
async def random_rows(dut):
    """Seeded random problems back to back, unstalled (timing exact), then stalled."""
    seed = knob("WTU_SEED", 1)
    tb = TB(dut, "wtu", seed=seed)
    config = tb.config
    rng = np.random.default_rng(seed)
    for stall in (0.0, 0.4):
        await tb.reset()
        tb.set_stall(stall)
        await tb.check([_random_problem(config, rng, int(rng.integers(1, min(config.max_rows, 4) + 1)),
                                        int(rng.integers(1, min(config.max_clusters, 64) + 1)))
                        for _ in range(3)])


@cocotb.test()
async def reset_mid_row(dut):
    """A reset in the middle of a row's load leaves no trace on the next problem."""
    seed = knob("WTU_SEED", 1)
    tb = TB(dut, "wtu", seed=seed, stall=0.2)
    config = tb.config
    await tb.reset()
    rng = np.random.default_rng(seed + 7)
    first = _random_problem(config, rng, 2, min(config.max_clusters, 40))
    beats = tb.codec.input_beats(config, [first])
    row_beats = len(beats["scores"]) // 2
    tb.drivers["problem"].send(beats["problem"])
    tb.drivers["counts"].send(beats["counts"])
    tb.drivers["scores"].send(beats["scores"][:row_beats // 2 + 1])  # into row 0
    await tb.wait_until(lambda: not any(tb.drivers[name].pending
                                        for name in ("problem", "counts", "scores")),
                        5000, "the partial problem's beats")
    await tb.reset()
    await tb.check([_random_problem(config, rng, 2, min(config.max_clusters, 23))])


@cocotb.test()
async def workload_rows(dut):
    """Rows of the streaming workload scored by the float model (file in ``WTU_TRACE``)."""
    tb = TB(dut, "wtu", seed=knob("WTU_SEED", 1), stall=0.2)
    await tb.reset()
    await tb.check([load_arrays(cocotb_path("WTU_TRACE"), INPUTS)])


@cocotb.test()
async def file_run(dut):
    """The RTL engine: the stimulus file's problem, unstalled, to the response file."""
    await run_file(dut, "wtu")
