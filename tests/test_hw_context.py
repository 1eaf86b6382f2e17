# amaranth: UnusedElaboratable=no
"""Amaranth-simulator tests of the context ports of the HCU and the KVMU against their twins.

Two streams share one block, frame by frame: before each frame the stream's image is restored
(an empty one first), after it the context is saved. Assignments (HCU) or moves, counts and
descriptors (KVMU) must equal those of each stream run straight by the twin, the saved images
the twin's words, and without stalls every cycle count the twin's (model/twins/context.py);
with random stalls on every stream only the words and outputs are compared. Malformed images
are refused with ``context_refused`` and leave the context empty.
"""

import numpy as np
import pytest

from hw.context_port import ContextOp, ImageWalker
from hw.hcu import HashClusterUnit
from hw.kvmu import KVManagementUnit
from model.config import PRESETS
from model.stimulus.kvmu_streams import random_stream, workload_stream
from model.stimulus.hashes import synthetic_hashes
from model.twins.context import item_words, restore_cycles, save_cycles
from sim.kit.amaranth_sim import AmaranthBench, simulate
from sim.kit.core import cycle_limit, wait_until
from model.twins.kvmu import run_stream
from sim.context_switch import (KVMUContextSwitch, context_command, image_beats,
                                kvmu_frame_beats)
from tests.context_images import hcu_frames, hcu_malformed, kvmu_malformed
from tests.hcu_configs import small_config

TINY = PRESETS["tiny"]


def transfer_cycles(bench, stream, start):
    """Cycles of the transfers of ``stream`` from its ``start``-th on."""
    return [cycle for cycle, _ in bench.drivers.get(stream, bench.monitors.get(stream))
            .transfers[start:]]


# ---------------------------------------------------------------------------------- the HCU


class HCUSwitcher:
    """Streams of frames through one HCU, each frame between a restore and a save."""

    def __init__(self, config, streams, *, stall=0.0, seed=0):
        self.config = config
        self.streams = streams
        self.stall = stall
        self.bench = AmaranthBench(HashClusterUnit(config), ["i", "ctx", "restore"],
                                   ["o", "save"], stall=stall, seed=seed)
        self.expected = [hcu_frames(config, frames, switch_contexts=True)
                         for frames in streams]
        self.measured = []   # per step: (restore cycles, decision cycles, save cycles)

    def order(self):
        """(stream, frame) in the order the block serves them: frame by frame, stream by
        stream."""
        frames = max(len(frames) for frames in self.streams)
        return [(s, f) for f in range(frames) for s in range(len(self.streams))
                if f < len(self.streams[s])]

    async def scenario(self, sim, bench):
        drivers, monitors = bench.drivers, bench.monitors
        for stream, frame in self.order():
            hashes = self.streams[stream][frame]
            image = self.expected[stream][1][frame - 1] if frame else [0]
            ctx_start, out_start = len(drivers["ctx"].transfers), len(monitors["o"].transfers)
            token_start = len(drivers["i"].transfers)
            save_start = len(monitors["save"].transfers)
            drivers["ctx"].send([{"op": ContextOp.RESTORE.value}])
            drivers["restore"].send(image_beats(image))
            tokens = [{"hash": int(value), "last": int(k == len(hashes) - 1)}
                      for k, value in enumerate(hashes)]
            if not self.stall:
                drivers["i"].send(tokens)   # held back by the command until the restore ends
            else:
                await wait_until(sim, lambda: drivers["restore"].done, 10_000, "restore")
                drivers["i"].send(tokens)
            await wait_until(sim, lambda: len(monitors["o"].transfers) == out_start + len(hashes),
                             cycle_limit(40 * len(hashes) + 100, *bench.stall_probabilities),
                             "the frame's assignments")
            drivers["ctx"].send([{"op": ContextOp.SAVE.value}])
            words = len(self.expected[stream][1][frame])
            await wait_until(sim, lambda: len(monitors["save"].transfers) == save_start + words,
                             cycle_limit(words + 20, *bench.stall_probabilities), "the save")
            restore_at, save_at = transfer_cycles(bench, "ctx", ctx_start)
            first_token = transfer_cycles(bench, "i", token_start)[0]
            delivered = transfer_cycles(bench, "o", out_start)
            self.measured.append((first_token - restore_at,
                                  [cycle - first_token for cycle in delivered],
                                  transfer_cycles(bench, "save", save_start)[-1] - save_at + 1))

    def run(self):
        budget = sum(40 * len(self.streams[s][f]) + 3 * len(self.expected[s][1][f]) + 100
                     for s, f in self.order())
        self.bench.run(lambda: True, cycle_limit(budget, *self.bench.stall_probabilities),
                       scenario=self.scenario)
        received = self.bench.monitors["o"].beats
        saved = self.bench.monitors["save"].beats
        start = save_start = 0
        for step, (stream, frame) in enumerate(self.order()):
            cluster, new, distance, overflow, decided = self.expected[stream][0][frame]
            count = len(cluster)
            beats = received[start:start + count]
            assert [b["cluster"] for b in beats] == cluster, (stream, frame)
            assert [b["new"] for b in beats] == new, (stream, frame)
            assert [b["distance"] for b in beats] == distance, (stream, frame)
            assert [b["overflow"] for b in beats] == overflow, (stream, frame)
            image = self.expected[stream][1][frame]
            words = saved[save_start:save_start + len(image)]
            assert [b["word"] for b in words] == image, (stream, frame)
            assert [b["last"] for b in words] == [0] * (len(image) - 1) + [1]
            if not self.stall:
                restored = self.expected[stream][1][frame - 1] if frame else [0]
                restore, decisions, save = self.measured[step]
                assert restore == restore_cycles(restored), (stream, frame)
                assert decisions == decided, (stream, frame)
                assert save == save_cycles(image), (stream, frame)
            start += count
            save_start += len(image)
        assert self.bench.dut.context_refused is not None


def hcu_streams(config, seed, streams=2, frames=6, every=5):
    rng = np.random.default_rng(seed)
    return [[synthetic_hashes(config, every, rng, centres=3 * config.hash_mem_entries)
             for _ in range(frames)] for _ in range(streams)]


@pytest.mark.parametrize("changes", [{}, {"hcu_dispatch_width": 1}, {"hash_bits": 48,
                                                                   "hcu_bits_per_cycle": 4}],
                         ids=["tiny-like", "one-bank", "two-word-hashes"])
def test_hcu_switched_streams_match_twin(changes):
    config = small_config(**changes)
    switcher = HCUSwitcher(config, hcu_streams(config, 1, frames=8))
    switcher.run()
    # the table filled: the last images hold every slot
    longest = max(len(image) for _, images in switcher.expected for image in images)
    assert longest == 1 + 16 * item_words(config.hash_bits)


def test_hcu_malformed_images_are_refused():
    config = small_config()
    frames = hcu_streams(config, 4, streams=1, frames=4)[0]
    image = hcu_frames(config, frames, switch_contexts=False)[1][-1]
    cases = list(hcu_malformed(config, image).values())
    dut = HashClusterUnit(config)
    bench = AmaranthBench(dut, ["i", "ctx", "restore"], ["o", "save"])
    flags, saved_after, cycles = [], [], []

    async def scenario(sim, bench):
        drivers, monitors = bench.drivers, bench.monitors
        for bad in cases + [image]:
            ctx_start, save_start = len(drivers["ctx"].transfers), len(monitors["save"].transfers)
            drivers["ctx"].send([{"op": ContextOp.RESTORE.value}, {"op": ContextOp.SAVE.value}])
            drivers["restore"].send(image_beats(bad))
            await wait_until(sim, lambda: len(monitors["save"].transfers) > save_start
                             and monitors["save"].transfers[-1][1]["last"], 500, "the save")
            flags.append(sim.get(dut.context_refused))
            saved_after.append([beat["word"] for beat in monitors["save"].beats[save_start:]])
            restore_at, save_at = transfer_cycles(bench, "ctx", ctx_start)
            cycles.append(save_at - restore_at)

    bench.run(lambda: True, 20 * len(cases) * (len(image) + 20), scenario=scenario)
    assert flags == [1] * len(cases) + [0]
    assert saved_after == [[0]] * len(cases) + [image]
    # every word up to ``last`` is consumed, then the check of the last one
    assert cycles == [restore_cycles(bad) for bad in cases + [image]]


def test_hcu_tokens_after_a_refused_restore_start_an_empty_table():
    config = small_config()
    hashes = synthetic_hashes(config, 12, np.random.default_rng(9))
    expected = hcu_frames(config, [hashes], switch_contexts=False)[0][0]
    dut = HashClusterUnit(config)
    bench = AmaranthBench(dut, ["i", "ctx", "restore"], ["o"])
    bench.drivers["ctx"].send([{"op": ContextOp.RESTORE.value}])
    bench.drivers["restore"].send(image_beats([config.max_clusters + 1, 5]))
    bench.drivers["i"].send([{"hash": int(value), "last": 0} for value in hashes])
    bench.run(lambda: len(bench.monitors["o"].transfers) == len(hashes), 2000)
    assert [beat["cluster"] for beat in bench.monitors["o"].beats] == expected[0]
    assert [beat["new"] for beat in bench.monitors["o"].beats] == expected[1]


@pytest.mark.parametrize("seed", [2, 3])
def test_hcu_switched_streams_with_stalls(seed):
    config = small_config()
    HCUSwitcher(config, hcu_streams(config, seed), stall=0.4, seed=seed).run()


# --------------------------------------------------------------------------------- the KVMU


class KVMUSwitcher(KVMUContextSwitch):
    """:class:`sim.context_switch.KVMUContextSwitch` on the Amaranth simulator."""

    def __init__(self, config, streams, *, stall=0.0, seed=0):
        super().__init__(config, streams)
        self.stall = stall
        self.bench = AmaranthBench(KVManagementUnit(config),
                                   ["cmd", "assign", "selected", "restore"],
                                   ["moves", "counts", "fetch", "save"], stall=stall, seed=seed)

    def run(self):
        self.queue(self.bench.drivers)
        self.bench.run(lambda: self.complete(self.bench.monitors),
                       cycle_limit(self.twin_cycles, *self.bench.stall_probabilities))
        self.check(self.bench.drivers, self.bench.monitors, timed=not self.stall)


def kvmu_streams(config, seed, count=2, frames=8, **options):
    rng = np.random.default_rng(seed)
    return [random_stream(config, rng, frames, **options) for _ in range(count)]


@pytest.mark.parametrize("changes", [
    {}, {"recent_window": 3}, {"kv_token_bits": 5}, {"recent_window": 0},
    {"count_bits": 30},                    # two words per cluster-table item
    {"max_frame_tokens": 1, "recent_window": 1},
], ids=["tiny", "window-3", "store-fills", "no-window", "two-word-items", "one-token"])
def test_kvmu_switched_streams_match_twin(changes):
    config = TINY.replace(**changes)
    switcher = KVMUSwitcher(config, kvmu_streams(config, 5, frames=10))
    switcher.run()
    if "kv_token_bits" in changes:
        assert any(twin["store_full"].any() for twin in switcher.twins)


@pytest.mark.parametrize("seed", [1, 2])
def test_kvmu_switched_streams_with_stalls(seed):
    KVMUSwitcher(TINY, kvmu_streams(TINY, seed), stall=0.4, seed=seed).run()


def test_kvmu_workload_stream_switched():
    arrays, _ = workload_stream(TINY, 24)
    other, _ = workload_stream(TINY, 24, layer=1, kv_head=1)
    KVMUSwitcher(TINY, [arrays, other]).run()


def test_kvmu_malformed_images_are_refused():
    config = TINY.replace(recent_window=3)
    arrays = random_stream(config, np.random.default_rng(4), 8, new_probability=0.1)
    image = run_stream(config, arrays, switch_contexts=True)["images"][-1]
    cases = list(kvmu_malformed(config, image).values())
    dut = KVManagementUnit(config)
    bench = AmaranthBench(dut, ["cmd", "assign", "selected", "restore"],
                          ["moves", "counts", "fetch", "save"])
    flags = []

    async def scenario(sim, bench):
        drivers, monitors = bench.drivers, bench.monitors
        for bad in cases + [image]:
            saves = len(monitors["save"].transfers)
            drivers["cmd"].send([context_command(ContextOp.RESTORE),
                                 context_command(ContextOp.SAVE)])
            drivers["restore"].send(image_beats(bad))
            await wait_until(sim, lambda: len(monitors["save"].transfers) > saves
                             and monitors["save"].transfers[-1][1]["last"], 2000, "the save")
            flags.append(sim.get(dut.context_refused))

    bench.run(lambda: True, 10 * len(cases) * (len(image) + 20), scenario=scenario)
    assert flags == [1] * len(cases) + [0]
    saved = [beat["word"] for beat in bench.monitors["save"].beats]
    assert saved == [0] * len(cases) + image       # a refused image leaves an empty context
    commands = [cycle for cycle, _ in bench.drivers["cmd"].transfers]
    assert [commands[2 * k + 1] - commands[2 * k] for k in range(len(cases) + 1)] == [
        restore_cycles(bad) for bad in cases + [image]]


def test_kvmu_problem_right_after_a_refused_restore_starts_empty():
    """A refused restore clears the context registers in the first cycle of ``IDLE``; a
    problem command (no restart) taken in that very cycle must see the context empty: its
    outputs are those of the same frames on a fresh context, although the context before held
    more tokens than the window (a stale ``window_tokens`` would offload them)."""
    config = TINY.replace(recent_window=3)
    before = random_stream(config, np.random.default_rng(4), 4, new_probability=0.1)
    image = run_stream(config, before, switch_contexts=True)["images"][-1]
    bad = kvmu_malformed(config, image)["too short"]
    after = random_stream(config, np.random.default_rng(5), 3, new_probability=0.2)
    twins = [run_stream(config, before), run_stream(config, after)]
    frames = [kvmu_frame_beats(config, arrays) for arrays in (before, after)]
    frames[1][0] = ({**frames[1][0][0], "restart": 0},) + frames[1][0][1:]
    dut = KVManagementUnit(config)
    bench = AmaranthBench(dut, ["cmd", "assign", "selected", "restore"],
                          ["moves", "counts", "fetch"])
    problems = len(frames[0]) + len(frames[1])
    flags = []

    async def scenario(sim, bench):
        drivers = bench.drivers
        for stream, group in enumerate(frames):
            if stream:
                drivers["cmd"].send([context_command(ContextOp.RESTORE)])
                drivers["restore"].send(image_beats(bad))
            for command, assign, selected in group:
                drivers["cmd"].send([command])
                drivers["assign"].send(assign)
                drivers["selected"].send(selected)
        await wait_until(sim, lambda: sum(beat["last"] for beat in bench.monitors["fetch"].beats)
                         == problems, 20000, "the last problem")
        flags.append(sim.get(dut.context_refused))

    bench.run(lambda: True, 20000, scenario=scenario)
    assert flags == [1]
    commands = [cycle for cycle, _ in bench.drivers["cmd"].transfers]
    restore = len(frames[0])
    # the first problem after the restore is taken in the cycle the refusal clears the context
    assert commands[restore + 1] - commands[restore] == restore_cycles(bad)
    assert before["new_tokens"].sum() > config.recent_window
    groups = {}
    for name in ("moves", "counts", "fetch"):
        ends = [index for index, beat in enumerate(bench.monitors[name].transfers)
                if beat[1]["last"]]
        groups[name] = iter([bench.monitors[name].transfers[start + 1:end + 1]
                             for start, end in zip([-1] + ends, ends)])
    for stream, twin in enumerate(twins):
        for frame in range(len(frames[stream])):
            KVMUContextSwitch._check_problem(
                twin, frame, [next(groups[name]) for name in ("moves", "counts", "fetch")],
                ("problem", stream, frame))


# ------------------------------------------------------------------------ the shared parts


def test_context_port_signatures_and_constants():
    from hw import context_port
    from model.twins import context as twin_context

    # the RTL's format constants are its own; they must agree with the twin's
    assert context_port.WORD_BITS == twin_context.WORD_BITS == 32
    assert [context_port.item_words(b) for b in (1, 32, 33, 64, 65)] == [1, 1, 2, 2, 3]
    assert context_port.SavePipeline.latency + 1 == twin_context.SAVE_EXTRA_CYCLES
    layout = context_port.context_word_layout()
    for dut in (HashClusterUnit(TINY), KVManagementUnit(TINY)):
        assert dut.save.payload.shape() == layout
        assert dut.restore.payload.shape() == layout
        assert dut.save_latency == context_port.SavePipeline.latency
    assert HashClusterUnit(TINY).ctx.payload.shape().size == 2          # op: none/save/restore
    assert [op.value for op in ContextOp] == [0, 1, 2]
    with pytest.raises(ValueError, match=r"sections must start with a header of one item, "
                                         r"not \[\(2, 1\)\]"):
        context_port.ImageWalker([(2, 1)])


@pytest.mark.parametrize("nonzero_inputs", [False, True], ids=["counts", "flags"])
def test_image_walker_visits_every_word_of_the_nonempty_sections(nonzero_inputs):
    """The walker's position, word by word, against a list of the image's words (section,
    item, word of the item) built here from random counts, empty sections skipped; ``final``
    on the last word only. With ``nonzero_inputs`` the flags are driven from the counts."""
    sections = [(1, 2), (5, 2), (4, 1), (3, 3)]
    rng = np.random.default_rng(5)
    dut = ImageWalker(sections, nonzero_inputs=nonzero_inputs)
    walks = 40
    limit = walks * (1 + sum(items * words for items, words in sections))

    async def testbench(ctx):
        for _ in range(walks):
            counts = [1] + [int(rng.integers(0, items + 1)) for items, _ in sections[1:]]
            words = [(s, index, chunk) for s, (_, per_item) in enumerate(sections)
                     for index in range(counts[s]) for chunk in range(per_item)]
            for s in range(1, len(sections)):
                ctx.set(getattr(dut, f"count{s}"), counts[s])
                if nonzero_inputs:
                    ctx.set(getattr(dut, f"nonzero{s}"), counts[s] != 0)
            ctx.set(dut.start, 1)
            await ctx.tick()
            ctx.set(dut.start, 0)
            for position, expected in enumerate(words):
                seen = (ctx.get(dut.section), ctx.get(dut.index), ctx.get(dut.chunk))
                assert seen == expected, (counts, position)
                assert ctx.get(dut.final) == (position == len(words) - 1), (counts, position)
                ctx.set(dut.step, 1)
                await ctx.tick()
                ctx.set(dut.step, 0)

    simulate(dut, testbench, limit)
