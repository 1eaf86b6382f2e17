"""KVMU context switches on the stream kit, scored by the twin (Amaranth simulator and cocotb).

Several streams share one KVMU, frame by frame, as when one DRE serves every (layer, KV head):
per frame of each stream in turn, a restore command with the stream's image (from its second
frame on), the frame's problem, a save command. :class:`KVMUContextSwitch` queues it all at once
on the kit's drivers (the KVMU takes its commands in order) and checks the monitors' transfers
against :func:`model.twins.kvmu.run_stream` with ``switch_contexts``: each frame's moves, counts,
descriptors and ``full`` flag equal the stream's run straight, each saved image the twin's
words, and without stalls every cycle count the twin's (:mod:`model.twins.context`).
"""

from hw.context_port import ContextOp
from model.twins.context import restore_cycles, save_cycles
from model.twins.kvmu import run_stream
from sim.payloads import KVMUCodec

__all__ = ["image_beats", "context_command", "kvmu_frame_beats", "KVMUContextSwitch"]


def image_beats(words):
    """The ``restore`` beats of a context image."""
    return [{"word": int(word), "last": int(index == len(words) - 1)}
            for index, word in enumerate(words)]


def context_command(op):
    """A KVMU ``cmd`` beat carrying a context operation (the problem fields unused)."""
    return {"new_tokens": 1, "restart": 0, "context": op.value}


def kvmu_frame_beats(config, arrays):
    """Per frame of a stream: its ``cmd`` beat, its ``assign`` beats, its ``selected`` beats."""
    beats = KVMUCodec().input_beats(config, [arrays])
    frames, token, selected = [], 0, iter(beats["selected"])
    for command in beats["cmd"]:
        own = beats["assign"][token:token + command["new_tokens"]]
        token += command["new_tokens"]
        group = [next(selected)]
        while not group[-1]["last"]:
            group.append(next(selected))
        frames.append((command, own, group))
    return frames


def _groups(transfers):
    """``(cycle, beat)`` transfers cut after each beat with ``last``."""
    groups, current = [], []
    for cycle, beat in transfers:
        current.append((cycle, beat))
        if beat["last"]:
            groups.append(current)
            current = []
    assert not current, f"{len(current)} beat(s) after the last one with last"
    return groups


class KVMUContextSwitch:
    """Streams of frames through one KVMU with a restore and a save around every frame.

    Parameters
    ----------
    config : DREConfig
    streams : list of dict
        Streams of :data:`model.twins.kvmu.INPUTS` arrays.
    """

    def __init__(self, config, streams):
        self.config = config
        self.streams = streams
        self.twins = [run_stream(config, arrays, switch_contexts=True) for arrays in streams]
        self.steps = []    # (kind, stream, frame) in command order

    @property
    def twin_cycles(self):
        """Stall-free cycles of the whole run by the twin (for the cycle limit)."""
        return sum(int(twin["cycles"].sum())
                   + sum(save_cycles(image) + restore_cycles(image) for image in twin["images"])
                   for twin in self.twins)

    def queue(self, drivers):
        """Queue every beat on ``drivers`` (stream name -> the kit's driver)."""
        per_stream = [kvmu_frame_beats(self.config, arrays) for arrays in self.streams]
        for frame in range(max(len(frames) for frames in per_stream)):
            for s, frames in enumerate(per_stream):
                if frame >= len(frames):
                    continue
                if frame:
                    drivers["cmd"].send([context_command(ContextOp.RESTORE)])
                    drivers["restore"].send(image_beats(self.twins[s]["images"][frame - 1]))
                    self.steps.append(("restore", s, frame))
                command, assign, selected = frames[frame]
                drivers["cmd"].send([command])
                drivers["assign"].send(assign)
                drivers["selected"].send(selected)
                self.steps.append(("problem", s, frame))
                drivers["cmd"].send([context_command(ContextOp.SAVE)])
                self.steps.append(("save", s, frame))

    def complete(self, monitors):
        """Whether every problem's descriptors and every save have arrived."""
        problems = sum(kind == "problem" for kind, _, _ in self.steps)
        return all(sum(beat["last"] for beat in monitors[name].beats) == problems
                   for name in ("fetch", "save"))

    def check(self, drivers, monitors, *, timed):
        """Assert the transfers equal the twin's (cycles too when ``timed``)."""
        groups = {name: iter(_groups(monitors[name].transfers))
                  for name in ("moves", "counts", "fetch", "save")}
        commands = [cycle for cycle, _ in drivers["cmd"].transfers]
        assert len(commands) == len(self.steps), f"{len(commands)} commands taken"
        for index, (kind, s, frame) in enumerate(self.steps):
            twin, where = self.twins[s], (kind, s, frame)
            if kind == "restore":
                if timed:   # the next command is taken right after the restore's last cycle
                    assert commands[index + 1] - commands[index] == restore_cycles(
                        twin["images"][frame - 1]), where
            elif kind == "save":
                words = next(groups["save"])
                assert [beat["word"] for _, beat in words] == twin["images"][frame], where
                if timed:
                    assert words[-1][0] - commands[index] + 1 == save_cycles(words), where
            else:
                fetch_end = self._check_problem(twin, frame, [next(groups[name]) for name in
                                                              ("moves", "counts", "fetch")],
                                                where)
                if timed:
                    assert fetch_end - commands[index] + 1 == twin["cycles"][frame], where

    @staticmethod
    def _check_problem(twin, frame, groups, where):
        """Assert one problem's outputs; returns its last descriptor's transfer cycle."""
        moves, counts, fetch = groups

        def span(key):
            offsets = twin[f"{key}_offsets"].astype(int)
            return slice(offsets[frame], offsets[frame + 1])

        assert [b["count"] for _, b in counts] == twin["counts"][span("count")].tolist(), where
        moved = [(b["src"], b["dst"], b["length"], b["dropped"]) for _, b in moves if b["length"]]
        expected = zip(*(twin[key][span("move")].tolist()
                         for key in ("move_src", "move_dst", "move_len", "move_dropped")))
        assert moved == [tuple(int(value) for value in move) for move in expected], where
        assert moves[-1][1]["full"] == twin["store_full"][frame], where
        fetched = [(b["base"], b["length"]) for _, b in fetch if b["length"]]
        assert fetched == list(zip(twin["desc_base"][span("desc")].tolist(),
                                   twin["desc_len"][span("desc")].tolist())), where
        return fetch[-1][0]
