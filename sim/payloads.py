"""Every conversion between stream payloads and numpy arrays, in one place.

Two layers:

* :func:`pack` / :func:`unpack` turn a payload value (a dict per ``StructLayout``, a list per
  ``ArrayLayout``, an int for a plain shape, nested as the layout is) into the integer the
  port carries and back, first member in the lowest bits, exactly as Amaranth lays out
  ``lib.data`` views and flattens them into the Verilog ``PORT__payload`` vector. The layouts
  themselves are defined once, in ``hw/`` beside each block.
* One *codec* per block (named by its entry in :mod:`hw.registry`) turns the block's problems (the numpy arrays of its
  file interface) into the beats of its input streams (:meth:`BlockCodec.input_beats`), tells
  when every expected output beat has arrived (:meth:`BlockCodec.complete`), and decodes a run's
  transcript (the ``(cycle, beat)`` transfers of every stream) into the arrays of the twin,
  including the cycle counts measured the twin's way (:meth:`BlockCodec.decode`). It also names
  the twin's expected arrays (:meth:`BlockCodec.expected`), so every RTL test, under either
  simulator, and every RTL engine compares the hardware with the twin the same way: decoded
  arrays equal, key by key, with the timing keys (:attr:`BlockCodec.timing_keys`) compared when
  no stream stalls.

A decoder is strict: a beat out of the documented order (a wrong row, chunk or ``last`` flag)
raises :class:`PayloadError`.
"""

import numpy as np
from amaranth.hdl import Shape
from amaranth.lib import data

from model.npzio import check_arrays

from hw.dre import MODE_RESTART, MODE_RESTORE, MODE_SAVE, STALL_PORTS
from model.stimulus.lxe import flatten
from model.twins import dre as dre_twin
from model.twins import hcu as hcu_twin
from model.twins import kvmu as kvmu_twin
from model.twins import retrieval_buffer as buffer_twin
from model.twins import topk_sorter as sorter_twin
from model.twins import wtu as wtu_twin

__all__ = ["PayloadError", "pack", "unpack", "BlockCodec", "HCUCodec", "WTUCodec",
           "BufferCodec", "SorterCodec", "KVMUCodec", "DRECodec"]


class PayloadError(AssertionError):
    """Output beats that break the documented stream order."""


def _check(condition, message):
    if not condition:
        raise PayloadError(message)


def pack(layout, value):
    """The integer of payload ``value`` laid out by ``layout`` (a ``lib.data`` layout or shape).

    Raises
    ------
    ValueError
        If a field value does not fit its width (nothing is truncated).
    """
    if isinstance(layout, data.StructLayout):
        word = 0
        for name, field in layout:
            word |= pack(field.shape, value[name]) << field.offset
        return word
    if isinstance(layout, data.ArrayLayout):
        width = Shape.cast(layout.elem_shape).width
        values = list(value)
        if len(values) != layout.length:
            raise ValueError(f"payload array must have {layout.length} elements, "
                             f"not {len(values)}")
        return sum(pack(layout.elem_shape, element) << (index * width)
                   for index, element in enumerate(values))
    width = Shape.cast(layout).width
    integer = int(value)
    if not 0 <= integer < (1 << width):
        raise ValueError(f"payload value must be from 0 to {(1 << width) - 1}, not {integer}")
    return integer


def unpack(layout, word):
    """The payload value of integer ``word`` laid out by ``layout`` (inverse of :func:`pack`)."""
    word = int(word)
    if isinstance(layout, data.StructLayout):
        return {name: unpack(field.shape, word >> field.offset) for name, field in layout}
    if isinstance(layout, data.ArrayLayout):
        width = Shape.cast(layout.elem_shape).width
        return [unpack(layout.elem_shape, word >> (index * width))
                for index in range(layout.length)]
    return word & ((1 << Shape.cast(layout).width) - 1)


def _cycles(transcript, stream):
    return [cycle for cycle, _ in transcript[stream]]


def _beats(transcript, stream):
    return [beat for _, beat in transcript[stream]]


def _split_at_last(beats, problems):
    """Cut ``beats`` into ``problems`` groups, each ending at a beat with ``last`` set."""
    groups = _groups_at_last(beats)
    _check(len(groups) == problems,
           f"expected {problems} problem(s) closed by a last beat, got {len(groups)}")
    return groups


def _selection_beats(group, clusters):
    """The beats of one problem's selection (``cluster``, ``empty``, ``last``) naming a cluster:
    none for the single ``empty`` beat; ids strictly increasing below ``clusters``."""
    if len(group) == 1 and group[0]["empty"]:
        group = []
    _check(not any(beat["empty"] for beat in group), "empty flag on a selected cluster")
    ids = [beat["cluster"] for beat in group]
    _check(ids == sorted(set(ids)), f"aggregate ids not strictly increasing: {ids}")
    _check(all(cluster < clusters for cluster in ids), f"aggregate id past the row: {ids}")
    return group


class BlockCodec:
    """Payload conversions of one block (subclasses fill in the block's streams).

    Attributes
    ----------
    inputs, outputs : tuple of str
        The block's input and output stream ports, by name.
    timing_keys : tuple of str
        Keys of :meth:`decode` that are cycle counts measured from transfer times: equal to the
        twin's only when no stream stalls.
    """

    inputs = ()
    outputs = ()
    timing_keys = ()

    def input_beats(self, config, problems):
        """The beats of every input stream for ``problems`` (a list of array dicts), in order."""
        raise NotImplementedError

    def complete(self, config, problems, received):
        """Whether ``received`` (stream -> beats so far) holds every output of ``problems``."""
        raise NotImplementedError

    def decode(self, config, problems, transcript):
        """Per problem, the arrays of the twin decoded from ``transcript`` (stream -> transfers)."""
        raise NotImplementedError

    def expected(self, config, problem):
        """The twin's arrays for one problem (the keys :meth:`decode` produces)."""
        raise NotImplementedError

    def twin_cycles(self, config, expected):
        """Stall-free cycles of one problem by the twin (drives the simulation's cycle limit)."""
        raise NotImplementedError

    def engine_outputs(self, config, decoded, twin):
        """The file interface's output arrays (the twin's ``OUTPUTS``) of one decoded RTL run.

        Raises
        ------
        ValueError
            If the RTL's outputs do not fit the file interface.
        """
        return check_arrays("RTL response", twin.OUTPUTS,
                            {spec.name: decoded[spec.name] for spec in twin.OUTPUTS})


class HCUCodec(BlockCodec):
    """HCU: token hashes in (``i``), one assignment per token out (``o``).

    A problem is ``{"hashes": ..., "last": ...}`` (``last``, optional, flags the final token of
    each frame); problems are streamed one after another into the same table. ``cycles`` of a
    token counts from the previous assignment's transfer (the first token: from its own input
    transfer) to its assignment's transfer, as :func:`model.twins.hcu.hash_cluster` does.
    """

    inputs = ("i", "ctx", "restore")    # the context port's streams stay idle here
    outputs = ("o", "save")
    timing_keys = ("cycles",)
    FIELDS = ("cluster", "new", "distance", "overflow", "last")

    @staticmethod
    def _lasts(problem):
        hashes = problem["hashes"]
        return np.asarray(problem.get("last", np.zeros(len(hashes))), dtype=bool)

    def input_beats(self, config, problems):
        return {"i": [{"hash": int(value), "last": int(last)}
                      for problem in problems
                      for value, last in zip(hcu_twin.check_hashes(config, problem["hashes"]),
                                             self._lasts(problem))]}

    def complete(self, config, problems, received):
        return len(received["o"]) >= sum(len(problem["hashes"]) for problem in problems)

    def decode(self, config, problems, transcript):
        beats = _beats(transcript, "o")
        delivered = _cycles(transcript, "o")
        accepted = _cycles(transcript, "i")
        results, start = [], 0
        for problem in problems:
            count = len(problem["hashes"])
            own = beats[start:start + count]
            _check(len(own) == count, f"expected {count} assignments, got {len(own)}")
            result = {field: np.array([beat[field] for beat in own], np.uint64)
                      for field in self.FIELDS}
            for flag in ("new", "overflow", "last"):
                result[flag] = result[flag].astype(bool)
            origin = [delivered[start - 1]] if start else accepted[:1]
            result["cycles"] = np.diff(origin + delivered[start:start + count]).astype(np.uint64)
            results.append(result)
            start += count
        return results

    def expected(self, config, problem):
        twin = hcu_twin.hash_cluster(config, problem["hashes"], on_overflow="flag")
        return {**{key: twin[key] for key in ("cluster", "new", "distance", "overflow", "cycles")},
                "last": self._lasts(problem)}

    def twin_cycles(self, config, expected):
        return int(expected["cycles"].sum())

    def engine_outputs(self, config, decoded, twin):
        """As the model engine, which refuses a stream that overflows ``max_clusters``."""
        if decoded["overflow"].any():
            raise ValueError(twin.overflow_message(config))
        return super().engine_outputs(config, decoded, twin)


class WTUCodec(BlockCodec):
    """WTU: ``problem``, ``counts``, ``scores`` in; ``stats``, ``row_mask``, ``selected`` out.

    A problem is ``{"scores": rows x clusters, "counts": clusters}``. The multi-lane beats
    (``counts.count``, ``scores.score``, ``row_mask.mask``) carry lane ``l`` as element (or bit)
    ``l``: cluster ``chunk * wtu_lanes + l``. Timing keys, measured from transfer cycles:
    ``stats_delay`` (per row, from its first ``scores`` transfer to its ``stats`` transfer;
    the twin's ``cycles``), ``emit_cycles``, ``aggregate_cycles``, ``count_cycles``.
    """

    inputs = ("problem", "counts", "scores")
    outputs = ("stats", "row_mask", "selected")
    timing_keys = ("stats_delay", "emit_cycles", "aggregate_cycles", "count_cycles")
    STAT_KEYS = ("cycles", "buckets_visited", "passes", "touched", "cutoff", "weighted_sum",
                 "threshold", "min_score", "max_score")

    @staticmethod
    def _chunks(values, lanes):
        padded = np.zeros(-(-len(values) // lanes) * lanes, dtype=np.uint64)
        padded[:len(values)] = values
        return [[int(value) for value in chunk] for chunk in padded.reshape(-1, lanes)]

    def input_beats(self, config, problems):
        beats = {"problem": [], "counts": [], "scores": []}
        for problem in problems:
            scores, counts = wtu_twin.check_problem(config, problem["scores"], problem["counts"])
            rows, clusters = scores.shape
            beats["problem"].append({"clusters_minus_one": clusters - 1,
                                     "rows_minus_one": rows - 1})
            beats["counts"] += [{"count": chunk}
                                for chunk in self._chunks(counts, config.wtu_lanes)]
            beats["scores"] += [{"score": chunk} for row in scores
                                for chunk in self._chunks(row, config.wtu_lanes)]
        return beats

    @staticmethod
    def _shape(config, problem):
        rows, clusters = np.shape(problem["scores"])
        return rows, clusters, -(-clusters // config.wtu_lanes)

    def complete(self, config, problems, received):
        rows = sum(self._shape(config, problem)[0] for problem in problems)
        masks = sum(self._shape(config, p)[0] * self._shape(config, p)[2] for p in problems)
        closed = sum(beat["last"] for beat in received["selected"])
        return (len(received["stats"]) >= rows and len(received["row_mask"]) >= masks
                and closed >= len(problems))

    def decode(self, config, problems, transcript):
        stats_all = transcript["stats"]
        masks_all = transcript["row_mask"]
        selected_groups = _split_at_last(_beats(transcript, "selected"), len(problems))
        selected_cycles = _cycles(transcript, "selected")
        results, row0, mask0, selected0 = [], 0, 0, 0
        for index, problem in enumerate(problems):
            rows, clusters, beats = self._shape(config, problem)
            stats = stats_all[row0:row0 + rows]
            masks = masks_all[mask0:mask0 + rows * beats]
            result = self._decode_stats(stats, rows)
            result.update(self._decode_masks(config, [beat for _, beat in masks], rows,
                                             clusters, beats))
            group = selected_groups[index]
            result.update(self._decode_selected(group, clusters))
            # Problems before this one had rows x beats score beats each (``mask0`` of them).
            first_scores = _cycles(transcript, "scores")[mask0:mask0 + rows * beats:beats]
            stats_cycles = [cycle for cycle, _ in stats]
            mask_ends = [cycle for cycle, _ in masks][beats - 1::beats]
            counts = _cycles(transcript, "counts")
            counts_used = self._count_beats(config, problems[:index])
            result["stats_delay"] = np.array(
                [end - start for start, end in zip(first_scores, stats_cycles)], np.uint64)
            result["emit_cycles"] = np.array(
                [end - start for start, end in zip(stats_cycles, mask_ends)], np.uint64)
            last_selected = selected_cycles[selected0 + len(group) - 1]
            result["aggregate_cycles"] = np.array([last_selected - mask_ends[-1]], np.uint64)
            own_counts = counts[counts_used:counts_used + beats]
            result["count_cycles"] = np.array([own_counts[-1] - own_counts[0] + 1], np.uint64)
            results.append(result)
            row0, mask0, selected0 = row0 + rows, mask0 + rows * beats, selected0 + len(group)
        return results

    def _count_beats(self, config, problems):
        return sum(self._shape(config, problem)[2] for problem in problems)

    def _decode_stats(self, stats, rows):
        _check(len(stats) == rows, f"expected {rows} stats beats, got {len(stats)}")
        _check([beat["row"] for _, beat in stats] == list(range(rows)),
               "stats rows out of order")
        result = {}
        for key in self.STAT_KEYS:
            values = [int(beat[key]) for _, beat in stats]
            # As the twin: sums past 64 bits stay exact as Python ints.
            result[key] = np.array(values, dtype=object if max(values) >> 64 else np.uint64)
        return result

    @staticmethod
    def _decode_masks(config, masks, rows, clusters, beats):
        lanes = config.wtu_lanes
        _check(len(masks) == rows * beats, f"expected {rows * beats} mask beats, got {len(masks)}")
        row_selected = np.zeros((rows, beats * lanes), dtype=bool)
        for index, beat in enumerate(masks):
            row, chunk = divmod(index, beats)
            _check((beat["row"], beat["chunk"], beat["last"]) == (row, chunk, int(chunk == beats - 1)),
                   f"mask beat {index} out of order: {beat}")
            row_selected[row, chunk * lanes:(chunk + 1) * lanes] = \
                [(beat["mask"] >> lane) & 1 for lane in range(lanes)]
        _check(not row_selected[:, clusters:].any(), "mask bits set past the last cluster")
        return {"row_selected": row_selected[:, :clusters]}

    @staticmethod
    def _decode_selected(group, clusters):
        group = _selection_beats(group, clusters)
        ids = [beat["cluster"] for beat in group]
        selected = np.zeros(clusters, dtype=bool)
        selected[ids] = True
        selected_score = np.zeros(clusters, dtype=np.uint64)
        selected_score[ids] = [beat["score"] for beat in group]
        return {"selected": selected, "selected_score": selected_score}

    def expected(self, config, problem):
        twin = wtu_twin.wtu_problem(config, problem["scores"], problem["counts"])
        return {**twin, "stats_delay": twin["cycles"]}

    def twin_cycles(self, config, expected):
        rows = len(expected["cycles"])
        # The rows' emissions overlap the next row's load but the last one's (EMIT_LATENCY).
        return int(expected["cycles"].sum() + rows + expected["emit_cycles"].sum()
                   - (rows - 1) * wtu_twin.EMIT_LATENCY
                   + expected["aggregate_cycles"].sum() + expected["count_cycles"].sum() + 1)


class BufferCodec(BlockCodec):
    """Retrieval buffer: selected clusters in (``i``), fetch descriptors out (``o``).

    A problem is ``{"selected", "scores", "base", "count", "mode"}`` (the input of
    :func:`model.twins.retrieval_buffer.retrieve`). An empty selection is one input beat with
    ``selected = 0``; a problem with nothing kept is one output beat of length 0. ``cycles``
    counts from a problem's first input transfer to its last output transfer, both included.
    """

    inputs = ("i",)
    outputs = ("o",)
    timing_keys = ("cycles",)

    def input_beats(self, config, problems):
        beats = []
        for problem in problems:
            selected, scores, base, count, mode = buffer_twin.validate_problem(
                config, problem["selected"], problem["scores"], problem["base"],
                problem["count"], problem.get("mode", buffer_twin.MODE_DYNAMIC))
            indices = np.flatnonzero(selected)
            if indices.size == 0:
                beats.append(dict(score=0, base=0, count=0, selected=0, topk=mode, last=1))
            beats += [dict(score=int(scores[c]), base=int(base[c]), count=int(count[c]),
                           selected=1, topk=mode, last=int(n == indices.size - 1))
                      for n, c in enumerate(indices)]
        return {"i": beats}

    def complete(self, config, problems, received):
        return sum(beat["last"] for beat in received["o"]) >= len(problems)

    def decode(self, config, problems, transcript):
        groups = _split_at_last(_beats(transcript, "o"), len(problems))
        out_cycles = _cycles(transcript, "o")
        in_groups = _split_at_last([{"cycle": cycle, "last": beat["last"]}
                                    for cycle, beat in transcript["i"]], len(problems))
        results, end = [], 0
        for group, inputs in zip(groups, in_groups):
            end += len(group)
            kept = [beat for beat in group if beat["length"] > 0]
            _check(len(kept) == len(group) or len(group) == 1,
                   f"a length-0 descriptor beside others: {group}")
            results.append({
                "desc_base": np.array([beat["base"] for beat in kept], np.uint64),
                "desc_len": np.array([beat["length"] for beat in kept], np.uint64),
                "cycles": np.uint64(out_cycles[end - 1] - inputs[0]["cycle"] + 1)})
        return results

    def expected(self, config, problem):
        twin = buffer_twin.retrieve(config, problem["selected"], problem["scores"],
                                    problem["base"], problem["count"],
                                    problem.get("mode", buffer_twin.MODE_DYNAMIC))
        return {key: twin[key] for key in ("desc_base", "desc_len")} | {
            "cycles": np.uint64(twin["cycles"])}

    def twin_cycles(self, config, expected):
        return int(expected["cycles"])


class SorterCodec(BlockCodec):
    """Sorter-based top-k baseline: score rows in (``i``), ``topk_k`` ranked entries out (``o``).

    A problem is one row ``{"scores": ...}`` (a multiple of ``wtu_lanes`` values). Timing keys:
    ``latency``, cycles from the row's last input transfer to its first output transfer (the
    twin's :func:`model.twins.topk_sorter.latency`); ``span``, cycles from its first input
    transfer to its last output transfer, both included (the twin's
    :func:`model.twins.topk_sorter.cycles_per_row`: the next row starts in the cycle after).
    """

    inputs = ("i",)
    outputs = ("o",)
    timing_keys = ("latency", "span")

    def input_beats(self, config, problems):
        beats = []
        for problem in problems:
            row = [int(value) for value in problem["scores"]]
            count = len(row) // config.wtu_lanes
            lanes = config.wtu_lanes
            beats += [{"scores": row[beat * lanes:(beat + 1) * lanes],
                       "last": int(beat == count - 1)} for beat in range(count)]
        return {"i": beats}

    def complete(self, config, problems, received):
        return len(received["o"]) >= len(problems) * config.topk_k

    def decode(self, config, problems, transcript):
        k = config.topk_k
        entries = _beats(transcript, "o")
        out_cycles = _cycles(transcript, "o")
        ends = [cycle for cycle, beat in transcript["i"] if beat["last"]]
        starts = [transcript["i"][0][0]] + [cycle for (cycle, _), (_, previous)
                                            in zip(transcript["i"][1:], transcript["i"])
                                            if previous["last"]]
        results = []
        for index in range(len(problems)):
            own = entries[index * k:(index + 1) * k]
            _check([beat["last"] for beat in own] == [0] * (k - 1) + [1],
                   f"row {index}: last flag not on the k-th entry only")
            results.append({
                "cluster": np.array([beat["cluster"] for beat in own], np.uint32),
                "score": np.array([beat["score"] for beat in own], np.uint32),
                "valid": np.array([beat["valid"] for beat in own], np.uint8),
                "latency": np.uint64(out_cycles[index * k] - ends[index]),
                "span": np.uint64(out_cycles[(index + 1) * k - 1] - starts[index] + 1)})
        return results

    def expected(self, config, problem):
        cluster, score, valid = sorter_twin.topk_row(config, problem["scores"])
        return {"cluster": cluster, "score": score, "valid": valid,
                "latency": np.uint64(sorter_twin.latency(config)),
                "span": np.uint64(sorter_twin.cycles_per_row(config, len(problem["scores"])))}

    def twin_cycles(self, config, expected):
        return sorter_twin.latency(config) + config.max_clusters // config.wtu_lanes + config.topk_k


class KVMUCodec(BlockCodec):
    """KV management unit: ``cmd``, ``assign``, ``selected`` in; ``moves``, ``counts``, ``fetch`` out.

    A problem of this codec is one *stream* of frames of a context (the arrays of
    :data:`model.twins.kvmu.INPUTS`); its first frame is sent with ``restart = 1``, so streams
    are independent. Per frame: one ``cmd`` beat, one ``assign`` beat per new token, the
    selected ids (one beat flagged ``empty`` when none); out come the frame's moves (a length-0
    beat when none), its ``N`` counts and its fetch descriptors (a length-0 beat when none),
    each closed by ``last``. ``cycles`` of a frame counts from its ``cmd`` transfer to its last
    ``fetch`` transfer, both included. ``fetch_token`` is decoded through the RTL's own moves.
    """

    inputs = ("cmd", "assign", "selected", "restore")    # the context port stays idle here
    outputs = ("moves", "counts", "fetch", "save")
    timing_keys = ("cycles",)

    def input_beats(self, config, problems):
        beats = {"cmd": [], "assign": [], "selected": []}
        for problem in problems:
            stream = kvmu_twin.check_stream(config, problem)
            beats["assign"] += [{"cluster": int(c), "new": int(n)}
                                for c, n in zip(stream["cluster"], stream["new"])]
            for new_tokens, restart, ids in zip(stream["new_tokens"], stream["restart"],
                                                stream["selected"]):
                beats["cmd"].append({"new_tokens": int(new_tokens), "restart": int(restart),
                                     "context": 0})
                if ids.size == 0:
                    beats["selected"].append({"cluster": 0, "empty": 1, "last": 1})
                beats["selected"] += [{"cluster": int(c), "empty": 0,
                                       "last": int(n == ids.size - 1)} for n, c in enumerate(ids)]
        return beats

    @staticmethod
    def _frames(problems):
        return sum(len(problem["new_tokens"]) for problem in problems)

    def complete(self, config, problems, received):
        frames = self._frames(problems)
        return all(sum(beat["last"] for beat in received[stream]) >= frames
                   for stream in ("moves", "counts", "fetch"))

    @staticmethod
    def _ranges(group, fields):
        present = [beat for beat in group if beat["length"] > 0]
        _check(len(present) == len(group) or len(group) == 1,
               f"a length-0 descriptor beside others: {group}")
        return [tuple(int(beat[field]) for field in fields) for beat in present]

    def decode(self, config, problems, transcript):
        frames = self._frames(problems)
        move_groups = _split_at_last(_beats(transcript, "moves"), frames)
        count_groups = _split_at_last(_beats(transcript, "counts"), frames)
        fetch_groups = _split_at_last(_beats(transcript, "fetch"), frames)
        fetch_ends = [cycle for cycle, beat in transcript["fetch"] if beat["last"]]
        starts = _cycles(transcript, "cmd")
        results, frame = [], 0
        for problem in problems:
            stream = kvmu_twin.check_stream(config, problem)
            own = range(frame, frame + len(stream["new_tokens"]))
            results.append(kvmu_twin.collect(
                stream["restart"],
                [[beat["count"] for beat in count_groups[f]] for f in own],
                [self._ranges(move_groups[f], ("src", "dst", "length", "dropped")) for f in own],
                [self._ranges(fetch_groups[f], ("base", "length")) for f in own],
                [bool(move_groups[f][-1]["full"]) for f in own],
                [fetch_ends[f] - starts[f] + 1 for f in own]))
            frame += len(own)
        return results

    def expected(self, config, problem):
        result = kvmu_twin.run_stream(config, problem)
        return {spec.name: result[spec.name] for spec in kvmu_twin.OUTPUTS}

    def twin_cycles(self, config, expected):
        return int(expected["cycles"].sum())


def _groups_at_last(beats):
    """Cut ``beats`` into groups each closed by a beat with ``last`` (a trailing open group is
    an error)."""
    groups, current = [], []
    for beat in beats:
        current.append(beat)
        if beat["last"]:
            groups.append(current)
            current = []
    _check(not current, f"{len(current)} beat(s) after the last closed group")
    return groups


class DRECodec(BlockCodec):
    """The DRE top: ``cmd``, ``hashes``, ``scores``, ``context_in`` in; ``assignments``,
    ``moves``, ``counts``, ``selected``, ``fetch``, ``status``, ``context_out`` out.

    A problem of this codec is a *session* (:func:`model.twins.dre.record_commands`): commands
    with their hashes and the score rows the LXE returned, replayed on a fresh frame twin
    (:func:`model.twins.dre.run_session`). A session after the first of a run must begin with
    an accepted restart (the DRE is not fresh then). Hashes and score rows are sent only for the
    commands the twin accepts. Per accepted command the outputs are: one assignment per new
    token; the moves, counts, selected ids and fetch descriptors, each closed by ``last``;
    per command one status beat. A restore (``mode = 2``) the twin accepts sends its image on
    ``context_in`` (the session's ``images``); a save (``mode = 3``) gives its image on
    ``context_out`` (the key ``saved``, with ``saved_offsets`` per save), and no other output.
    Flags ``context_invalid``, ``context_refused`` and the status's ``context_words`` per
    command. Timing keys: ``cycles`` (command transfer to status transfer,
    both included), ``status_cycles``, ``cycles_hcu``, ``cycles_kvmu``, ``cycles_wtu`` (the
    status beat's counters) and ``stall`` (its stall counters, :data:`hw.dre.STALL_PORTS`
    per command, all 0 without stalls).
    """

    inputs = ("cmd", "hashes", "scores", "context_in")
    outputs = ("assignments", "moves", "counts", "selected", "fetch", "status", "context_out")
    timing_keys = ("cycles", "status_cycles", "cycles_hcu", "cycles_kvmu", "cycles_wtu", "stall")

    def input_beats(self, config, problems):
        beats = {"cmd": [], "hashes": [], "scores": [], "context_in": []}
        for index, session in enumerate(problems):
            commands = dre_twin.session_commands(session)
            results = dre_twin.run_session(config, session)
            if index and (commands[0].mode != MODE_RESTART or results[0].rejected):
                raise ValueError(f"session {index} must begin with an accepted restart command "
                                 f"(the DRE is not fresh after session {index - 1})")
            for number, (command, result) in enumerate(zip(commands, results)):
                beats["cmd"].append({name: getattr(command, name)
                                     for name in dre_twin.SESSION_FIELDS})
                if result.rejected or command.mode == MODE_SAVE:
                    continue
                if command.mode == MODE_RESTORE:
                    image = dre_twin.session_part(session, "images", number)
                    beats["context_in"] += [{"word": int(word), "last": int(place == len(image)
                                                                            - 1)}
                                            for place, word in enumerate(image)]
                beats["hashes"] += [{"hash": int(value)} for value in
                                    dre_twin.session_part(session, "hashes", number)]
                beats["scores"] += [{"score": chunk} for row in result.scores
                                    for chunk in WTUCodec._chunks(row, config.wtu_lanes)]
        return beats

    def complete(self, config, problems, received):
        return len(received["status"]) >= sum(len(session["mode"]) for session in problems)

    @staticmethod
    def results(config, commands, transcript):
        """One :class:`model.twins.dre.ProblemResult` per command of the run, from the RTL's
        transcript (outputs, the scores it took, the measured cycles and the status beat's
        counters as ``phase_cycles``); also the status beats."""
        statuses = transcript["status"]
        _check(len(statuses) == len(commands),
               f"expected {len(commands)} status beats, got {len(statuses)}")
        groups = {name: iter(_groups_at_last(_beats(transcript, name)))
                  for name in ("moves", "counts", "selected", "fetch", "context_out")}
        assignments = iter(_beats(transcript, "assignments"))
        scores = iter(_beats(transcript, "scores"))
        starts = _cycles(transcript, "cmd")
        results = []
        for command, start, (end, status) in zip(commands, starts, statuses):
            measured = end - start + 1
            phases = {"command": 1, "hcu": status["hcu_cycles"], "handoff": 0,
                      "kvmu": status["kvmu_cycles"], "wtu": status["wtu_cycles"], "status": 1}
            if status["rejected"]:
                results.append(dre_twin.ProblemResult(
                    rejected=True, store_full=bool(status["store_full"]),
                    phase_cycles=phases, measured_cycles=measured))
                continue
            if command.mode == MODE_SAVE:
                image = next(groups["context_out"], None)
                _check(image is not None, "a save's image is missing")
                results.append(dre_twin.ProblemResult(
                    rejected=False, store_full=bool(status["store_full"]),
                    context_words=int(status["context_words"]),
                    saved_image=[int(beat["word"]) for beat in image],
                    phase_cycles=phases, measured_cycles=measured))
                continue
            own = [next(assignments, None) for _ in range(command.new_tokens)]
            _check(None not in own, "fewer assignments than new tokens")
            own_groups = {name: next(groups[name], None)
                          for name in ("moves", "counts", "selected", "fetch")}
            _check(None not in own_groups.values(), f"an output group is missing: {own_groups}")
            counts = np.array([beat["count"] for beat in own_groups["counts"]], np.uint64)
            clusters = counts.size
            selected = np.zeros(clusters, bool)
            selected[[beat["cluster"] for beat in
                      _selection_beats(own_groups["selected"], clusters)]] = True
            chunks = -(-clusters // config.wtu_lanes)
            taken = [next(scores) for _ in range(command.rows * chunks)]
            rows = np.array([beat["score"] for beat in taken], np.uint64).reshape(
                command.rows, chunks * config.wtu_lanes)[:, :clusters]
            moves = [tuple(int(beat[f]) for f in ("src", "dst", "length", "dropped"))
                     for beat in own_groups["moves"] if beat["length"]]
            descriptors = [(int(beat["base"]), int(beat["length"]))
                           for beat in own_groups["fetch"] if beat["length"]]
            results.append(dre_twin.ProblemResult(
                rejected=False, hcu_overflow=bool(status["hcu_overflow"]),
                store_full=bool(status["store_full"]),
                context_invalid=bool(status["context_invalid"]),
                context_refused=bool(status["context_refused"]),
                context_words=int(status["context_words"]),
                cluster=np.array([beat["cluster"] for beat in own], np.uint64),
                new=np.array([beat["new"] for beat in own], bool),
                overflow=np.array([beat["overflow"] for beat in own], bool),
                counts=counts, scores=rows, selected=selected, moves=moves,
                descriptors=descriptors, phase_cycles=phases, measured_cycles=measured))
        _check(next(assignments, None) is None, "more assignments than new tokens")
        _check(next(groups["context_out"], None) is None, "more images than saves")
        return results, [status for _, status in statuses]

    @staticmethod
    def decode_fetch(commands, results, images=None):
        """Fill in ``fetch_token`` of the problems (accepted, not saves), decoding their
        descriptors through the moves of their (layer, KV head) stream: a restart, or a
        restore that ran on an empty context, starts the stream anew; a restore takes up the
        moves as they were at the save of its image (``images``: per command, a restore's
        words; the moves so far when its image was not saved in the run)."""
        moves, at_save = {}, {}
        for index, (command, result) in enumerate(zip(commands, results)):
            if result.rejected:
                continue
            stream = (command.layer, command.kv_head)
            if result.saved_image is not None:
                at_save[tuple(result.saved_image)] = list(moves.get(stream, []))
                continue
            if command.restart or result.context_invalid or result.context_refused:
                moves[stream] = []
            elif command.mode == MODE_RESTORE and images is not None:
                image = tuple(int(word) for word in images[index])
                moves[stream] = list(at_save.get(image, moves.get(stream, [])))
            moves[stream] = moves.get(stream, []) + list(result.moves)
            address_token = kvmu_twin.layout_from_moves([m[1] for m in moves[stream]],
                                                        [m[2] for m in moves[stream]],
                                                        [bool(m[3]) for m in moves[stream]])
            result.fetch_token = np.array(kvmu_twin.fetched_tokens(
                [d[0] for d in result.descriptors], [d[1] for d in result.descriptors],
                address_token), np.uint64)

    def decode(self, config, problems, transcript):
        sessions = [dre_twin.session_commands(session) for session in problems]
        results, statuses = self.results(config, [c for s in sessions for c in s], transcript)
        decoded, start = [], 0
        for session, commands in zip(problems, sessions):
            own = results[start:start + len(commands)]
            self.decode_fetch(commands, own,
                              [dre_twin.session_part(session, "images", index)
                               for index in range(len(commands))])
            decoded.append(self.session_arrays(own, statuses[start:start + len(commands)]))
            start += len(commands)
        return decoded

    @staticmethod
    def session_arrays(results, statuses=None):
        """The arrays compared per session (``statuses``: the RTL's status beats; None for
        the twin, whose status counts its own cycles and no stall)."""
        accepted = [r for r in results if not r.rejected and r.saved_image is None]
        out = {flag: np.array([getattr(r, flag) for r in results], bool)
               for flag in ("rejected", "hcu_overflow", "store_full", "context_invalid",
                            "context_refused")}
        out["context_words"] = np.array([r.context_words for r in results], np.uint64)
        out["saved_offsets"], out["saved"] = flatten(
            [r.saved_image for r in results if r.saved_image is not None])
        out["cycles"] = np.array([r.cycles for r in results], np.uint64)
        for phase in ("hcu", "kvmu", "wtu"):
            out[f"cycles_{phase}"] = np.array([r.phase_cycles.get(phase, 0) for r in results],
                                              np.uint64)
        if statuses is None:
            out["status_cycles"] = out["cycles"]
            out["stall"] = np.zeros((len(results), len(STALL_PORTS)), np.uint64)
        else:
            out["status_cycles"] = np.array([s["cycles"] for s in statuses], np.uint64)
            out["stall"] = np.array([[s["stall"][port] for port in STALL_PORTS]
                                     for s in statuses], np.uint64).reshape(-1, len(STALL_PORTS))
        for key in ("cluster", "new", "overflow", "counts", "selected", "fetch_token"):
            out[f"{key}_offsets"], out[key] = flatten(
                [getattr(r, key) for r in accepted], bool if key in ("new", "overflow",
                                                                     "selected") else np.uint64)
        moves = [np.array(r.moves, np.uint64).reshape(-1, 4) for r in accepted]
        out["move_offsets"], out["moves"] = flatten(moves)
        descriptors = [np.array(r.descriptors, np.uint64).reshape(-1, 2) for r in accepted]
        out["desc_offsets"], out["descriptors"] = flatten(descriptors)
        return out

    def expected(self, config, problem):
        return self.session_arrays(dre_twin.run_session(config, problem))

    def twin_cycles(self, config, expected):
        return int(expected["cycles"].sum())
