"""cocotb testbench of the DRE top's generated Verilog, scored by its frame twin.

Sessions of commands (:mod:`model.stimulus.dre_sessions`) go through
:class:`sim.kit.cocotb_sim.TB` and :class:`sim.payloads.DRECodec` and are compared with
:func:`model.twins.dre.run_session`: assignments, moves, counts, selections, fetch descriptors,
fetched tokens and flags always; cycles per problem and the status beat's counters when nothing
stalls. Tests: ``workload_sessions`` (workload frames of a few streams, unstalled, then with
random stalls on every stream at once), ``faults`` (reset in mid-problem, out-of-range commands,
a continue or a save for a stream not on chip, cluster-id overflow), ``context_switch`` (the
streams frame-major through the one DRE, each problem restored from the stream's last save,
unstalled then with stalls on every stream, the context ports included), ``never_saved``
(restores of images that are not a saved context of the stream, or that a block refuses:
flagged, run as a restart), ``store_full`` (a small store fills), ``file_run`` (the RTL engine of
``python -m sim.run dre``: a co-simulation in which the model plays the LXE). Settings:
``DRE_SEED``, ``DRE_STALL``, ``DRE_FRAMES``, ``DRE_STREAMS`` (``layer:head`` pairs joined by
``,``), ``DRE_WORKLOAD``, ``DRE_FETCHES`` (0: the frames fetch nothing, as in a recent window
larger than the frames run).
"""

import cocotb
import numpy as np

from model.npzio import save_arrays
from model.stimulus import lxe as lxe_model
from model.stimulus.dre_sessions import (command_session, concatenate, distinct_hashes,
                                         restore_session, saved_image, workload_session)
from model.stimulus.kvdump import KVDump
from model.twins import dre as dre_twin
from model.twins.dre import MODE_RESTORE, MODE_SAVE, Command
from sim.kit.cocotb_sim import TB, knob
from sim.kit.core import control, cycle_limit
from hw.dre import STALL_PORTS
from sim.payloads import DRECodec, WTUCodec
from sim.runner import RESPONSE_ENV, STIMULUS_ENV, cocotb_path


def _streams():
    pairs = knob("DRE_STREAMS", "0:0,1:1").split(",")
    return [tuple(int(part) for part in pair.split(":")) for pair in pairs]


@cocotb.test()
async def workload_sessions(dut):
    """Workload frames of each stream in turn: unstalled (outputs, cycles and counters equal
    the twin's), then with the configured stalls on every stream (outputs equal)."""
    seed = knob("DRE_SEED", 0)
    tb = TB(dut, "dre", seed=seed)
    session = workload_session(tb.config, knob("DRE_FRAMES", 4), _streams(), seed=seed + 2,
                               workload=knob("DRE_WORKLOAD", "tiny"))
    for stall in (0.0, knob("DRE_STALL", 0.0)):
        await tb.reset()
        tb.set_stall(stall)
        decoded, = await tb.check([session])
        assert decoded["selected"].any() and not decoded["rejected"].any()
        if knob("DRE_FETCHES", 1):     # 0 when no token leaves the window in the frames run
            assert decoded["fetch_token"].size > 0
        if stall:
            assert decoded["stall"].sum() > 0


@cocotb.test()
async def faults(dut):
    """Reset in mid-problem, then on the fresh DRE: a continue (rejected: nothing on chip),
    out-of-range commands (rejected, nothing changes), a stream whose ids overflow."""
    seed = knob("DRE_SEED", 0) + 100
    tb = TB(dut, "dre", seed=seed)
    config = tb.config
    await tb.reset()
    tb.send([workload_session(config, 3, [(0, 0)], seed=seed)])
    assignments = tb.monitors["assignments"]
    await tb.wait_until(lambda: len(assignments.transfers) >= 5, 20000, "5 assignments")
    await tb.reset()
    tb.set_stall(knob("DRE_STALL", 0.0))
    # Every hash opens a cluster: the last three find no cluster id.
    hashes = distinct_hashes(config, config.max_clusters + 3, seed)
    size = config.max_frame_tokens
    chunks = [hashes[start:start + size] for start in range(0, len(hashes), size)]
    commands = [Command(3, 2, frame, len(chunk), 2, restart=frame == 0)
                for frame, chunk in enumerate(chunks)]
    bad = [Command(3, 2, 0, 1, 1), Command(3, 2, 1, 0, 1, restart=True),
           Command(3, 2, 1, 1, config.max_rows + 1, restart=True),
           Command(3, 2, 1, 1, config.max_rows + 1, mode=MODE_RESTORE),
           Command(3, 2, 1, 1, 1, mode=MODE_SAVE)]                  # nothing on chip to save
    session = concatenate(command_session(config, bad, [[1]] * len(bad)),
                          command_session(config, commands, chunks, seed=seed))
    decoded, = await tb.check([session])
    assert decoded["rejected"].tolist() == [True] * len(bad) + [False] * len(commands)
    assert decoded["hcu_overflow"][-1] and decoded["overflow"].sum() == 3


@cocotb.test()
async def context_switch(dut):
    """The streams frame-major through the one DRE (a restore before each problem after the
    first frame, a save after it): unstalled (outputs, images, cycles and counters equal the
    twin's), then with the configured stalls on every stream (outputs equal)."""
    seed = knob("DRE_SEED", 0) + 200
    tb = TB(dut, "dre", seed=seed)
    session = workload_session(tb.config, knob("DRE_FRAMES", 4), _streams(), seed=seed,
                               workload=knob("DRE_WORKLOAD", "tiny"), switch=True)
    modes = session["mode"]
    for stall in (0.0, knob("DRE_STALL", 0.0)):
        await tb.reset()
        tb.set_stall(stall)
        decoded, = await tb.check([session])
        assert decoded["saved"].size and (modes == MODE_RESTORE).any()
        assert not (decoded["context_invalid"].any() or decoded["context_refused"].any())
        if stall:
            stalls = dict(zip(STALL_PORTS, decoded["stall"].sum(axis=0)))
            assert stalls["context_in"] > 0 and stalls["context_out"] > 0, stalls


@cocotb.test()
async def never_saved(dut):
    """A stream saved after 3 frames, then restores at frame 3 of: garbage, a header of another
    layer, a frame not before the command's, the image one word long (each flagged
    ``context_invalid``), the image with a hash bit set above ``hash_bits`` (refused by the
    HCU, flagged ``context_refused``): each runs as a restart; then the image itself."""
    seed = knob("DRE_SEED", 0) + 300
    tb = TB(dut, "dre", seed=seed)
    config = tb.config
    image = saved_image(config)
    garbage = np.random.default_rng(seed).integers(0, 1 << 32, 7).tolist()
    broken_hash = image[:5] + [image[5] | (1 << config.hash_bits)] + image[6:]
    images = [garbage, [image[0] ^ 1] + image[1:], [image[0], 3] + image[2:], image + [0]]
    if config.hash_bits % 32:
        images.append(broken_hash)
    session = restore_session(config, images + [image])
    await tb.reset()
    tb.set_stall(knob("DRE_STALL", 0.0))
    decoded, = await tb.check([session])
    invalid = decoded["context_invalid"][-len(images) - 1:].tolist()
    refused = decoded["context_refused"][-len(images) - 1:].tolist()
    assert invalid == [True] * 4 + [False] * (len(images) - 4) + [False]
    assert refused == [False] * 4 + [True] * (len(images) - 4) + [False]
    assert decoded["context_words"][-len(images) - 1:].tolist() == [
        len(words) for words in images + [image]]


@cocotb.test()
async def store_full(dut):
    """One new cluster per frame and a window of 1 on a small store: every offloaded token takes
    a page of its own, until none is left; ``store_full`` is then set and stays (a store of
    ``2**kv_token_bits / kvmu_page_tokens`` pages: the tokens of frames after it are dropped)."""
    tb = TB(dut, "dre", seed=knob("DRE_SEED", 0))
    config = tb.config
    pages = (1 << config.kv_token_bits) // config.kvmu_page_tokens
    frames = pages + config.recent_window + 3
    hashes = [[value] for value in distinct_hashes(config, frames)]
    commands = [Command(0, 0, frame, 1, 1, restart=frame == 0) for frame in range(frames)]
    await tb.reset()
    tb.set_stall(knob("DRE_STALL", 0.0))
    decoded, = await tb.check([command_session(config, commands, hashes)])
    # token t leaves the window in frame t + window + 1; token `pages` finds no page
    full_from = pages + config.recent_window + 1
    assert decoded["store_full"].tolist() == [frame >= full_from for frame in range(frames)]


@cocotb.test()
async def file_run(dut):
    """The RTL engine: the KV dump of the stimulus file through the one DRE, the model playing
    the LXE with the RTL's own assignments; the outputs of :data:`model.twins.dre.OUTPUTS` to
    the response. Contexts ``stream``: each (layer, KV head) of the slice in turn (restart on
    its first frame). ``switch``: frame-major, each problem after frame 0 a restore of the
    image the RTL's last save of the stream sent (the model keeps it, as the external memory),
    each problem before the last frame followed by a save."""
    tb = TB(dut, "dre")
    config = tb.config
    await tb.reset()
    with np.load(cocotb_path(STIMULUS_ENV), allow_pickle=False) as archive:
        arrays = {key: archive[key] for key in archive.files}
    first, stop, layer_start, layer_stop, head_start, head_stop, seed, order = (
        int(value) for value in arrays.pop("run_slice"))
    switch = dre_twin.CONTEXT_ORDERS[order] == "switch"
    dump = KVDump(arrays, "dre stimulus")
    outputs = lxe_model.empty_outputs(config, dump, seed)
    slices = dict(frames=f"0:{stop}", layers=f"{layer_start}:{layer_stop}",
                  heads=f"{head_start}:{head_stop}", seed=seed,
                  contexts=dre_twin.CONTEXT_ORDERS[order])
    twin_run = dre_twin.run_dump(config, dump, **slices)
    limit = cycle_limit(int(twin_run["cycles"].sum()
                            + twin_run.get("cycles_context", np.zeros(1, np.uint64)).sum()))
    assignments, status = tb.monitors["assignments"], tb.monitors["status"]
    saved_words = tb.monitors["context_out"]
    streams = [(layer, head) for layer in range(layer_start, layer_stop)
               for head in range(head_start, head_stop)]
    lxe_heads = {(layer, head): lxe_model.LXEHead(config, dump.keys(layer, head),
                                                  outputs["hyperplanes"][layer, head].T)
                 for layer, head in streams}
    clusters = dict.fromkeys(streams, 0)
    order = ([(frame, stream) for frame in range(stop) for stream in streams] if switch
             else [(frame, stream) for stream in streams for frame in range(stop)])
    commands, places, images, saved = [], [], [], {}

    def send_command(command, image=None):
        commands.append(command)
        images.append(image)
        tb.drivers["cmd"].send([{name: getattr(command, name)
                                 for name in dre_twin.SESSION_FIELDS}])

    for frame, (layer, head) in order:
        start, end = int(dump.frame_starts[frame]), int(dump.frame_starts[frame + 1])
        lxe = lxe_model.LXEFrame(lxe_heads[layer, head], start, dump.queries(layer, head, frame))
        hashes = lxe_heads[layer, head].hashes(start, end)
        mode = (dre_twin.MODE_RESTART if frame == 0
                else MODE_RESTORE if switch else dre_twin.MODE_CONTINUE)
        command = Command(layer, head, frame, end - start, lxe.rows, mode=mode)
        places.append((frame, layer, head, start))
        image = saved.get((layer, head)) if mode == MODE_RESTORE else None
        send_command(command, image)
        if image is not None:
            tb.drivers["context_in"].send([{"word": word, "last": int(index == len(image) - 1)}
                                           for index, word in enumerate(image)])
        tb.drivers["hashes"].send([{"hash": int(value)} for value in hashes])
        target = len(assignments.transfers) + command.new_tokens
        await tb.wait_until(lambda: len(assignments.transfers) >= target, limit,
                            f"the assignments of frame {frame} ({layer}, {head})")
        own = assignments.beats[target - command.new_tokens:target]
        cluster = np.array([beat["cluster"] for beat in own], np.int64)
        lxe.assignments(cluster)
        clusters[layer, head] += sum(beat["new"] for beat in own)
        outputs["token_hash"][layer, head, start:end] = hashes
        outputs["token_cluster"][layer, head, start:end] = cluster
        if command.rows:
            tb.drivers["scores"].send(
                [{"score": chunk} for row in lxe.score_rows(clusters[layer, head])
                 for chunk in WTUCodec._chunks(row, config.wtu_lanes)])
        if switch and frame < stop - 1:
            # Save the context; the model keeps the image the RTL sends.
            send_command(Command(layer, head, frame, 0, 0, mode=MODE_SAVE))
            places.append(None)
            before = len(saved_words.beats)
            await tb.wait_until(lambda: len(status.transfers) >= len(commands), limit,
                                f"the save of frame {frame} ({layer}, {head})")
            saved[layer, head] = [int(beat["word"]) for beat in saved_words.beats[before:]]
    await control(tb.adapter, tb.drivers, tb.monitors, lambda: len(status.transfers)
                  >= len(commands), limit)
    results, _ = DRECodec.results(config, commands, tb.transcript)
    DRECodec.decode_fetch(commands, results, images)
    records, saves = [], []
    for index, (place, result) in enumerate(zip(places, results)):
        if place is None:
            continue
        if commands[index].mode == MODE_RESTORE:
            # the restore's cycles: the measured ones beyond the status beat's phases
            result.phase_cycles["context"] = result.cycles - sum(result.phase_cycles.values())
        following = index + 1 < len(commands) and places[index + 1] is None
        records.append(place + (result,))
        saves.append(results[index + 1] if following else None)
    pairs = sorted((pair for pair in zip(records, saves) if pair[0][0] >= first),
                   key=lambda pair: pair[0][:4])
    outputs.update(dre_twin.collect([record for record, _ in pairs],
                                    [save for _, save in pairs] if switch else None))
    save_arrays(cocotb_path(RESPONSE_ENV), outputs)
