"""Frame twin of the DRE top: the HCU, KVMU and WTU twins composed into one engine, per problem.

One *problem* is one (layer, KV head, frame): a command, the frame's token hashes, the LXE's
quantised score rows. One context (the state of one (layer, KV head) stream: the HCU's table,
the KVMU's layout and counts) is on chip; the blocks keep it between the problems of a stream
and a ``restart`` command empties it. This module composes the block twins
(:mod:`model.twins.hcu`, :mod:`model.twins.kvmu`, :mod:`model.twins.wtu`) through their
functions only, never through a copy of their cycle formulas, so the frame twin follows a
block's twin when that changes.

Contract
--------
Command
    ``layer``, ``kv_head``, ``frame``, ``new_tokens``, ``rows``, ``mode`` (``MODE_CONTINUE`` = 0:
    go on with the stream on chip; ``MODE_RESTART`` = 1: empty the context first; 2 and 3 are
    reserved for the context port's restore and save and rejected for now). It is *rejected*
    (flag ``rejected``, nothing else happens, the context is unchanged) when ``layer`` is not
    below ``2**LAYER_BITS``, ``kv_head`` not below ``2**KV_HEAD_BITS``, ``frame`` not below
    ``2**FRAME_BITS``, ``new_tokens`` not from 1 to ``max_frame_tokens``, ``rows`` above
    ``max_rows``, ``mode`` above 1, or when it continues a stream (``mode = 0``) that is not the
    one on chip: no context yet (also after a reset), another (layer, KV head), or a frame not
    after the context's last frame. ``rows = 0`` clusters and offloads without selecting (no
    score rows, no fetch).
Phases of an accepted problem, one after another
    1. *HCU*: the ``new_tokens`` hashes; each assignment goes out to the LXE and into a FIFO of
       ``max_frame_tokens`` entries. A token that would open cluster ``max_clusters`` is
       flagged (``hcu_overflow``) and assigned to cluster 0, as the HCU twin's ``"flag"`` mode
       says: it is counted and stored with cluster 0, never lost.
    2. *KVMU* (one KVMU problem): offload moves out; the buffered assignments; the counts of
       every cluster, out to the host and packed ``wtu_lanes`` per beat into the WTU; the
       WTU's selected ids (also out to the host); fetch descriptors out, decoded through the
       moves into ``fetch_token``.
    3. *WTU* (inside the KVMU's problem, after its counts): ``rows`` score rows in (the LXE's
       ``quantize_scores`` of its queries against the clusters' representative keys, computed
       from this problem's assignments), the selected cluster ids (OR over rows) to the KVMU.
    4. *Status*: cycles, stall cycles per port, flags (``rejected``, ``hcu_overflow``,
       ``store_full``).
Cycle model (no stall on any port)
    From the command's transfer to the status beat's transfer, both included::

        cycles = COMMAND_CYCLES + hcu + HANDOFF_CYCLES + kvmu + wtu + STATUS_CYCLES

    ``hcu``: cycles from the first hash's acceptance (the cycle after the command's) to the
    last assignment, both included (:func:`model.twins.hcu.schedule` with the clusters opened
    before the frame, the HCU idle when the frame starts); ``HANDOFF_CYCLES`` = 0: the KVMU's
    command is taken in the cycle after the last assignment; ``kvmu``:
    :func:`model.twins.kvmu.problem_cycles` of the frame, the KVMU's own problem with every
    input there when it is ready for it (its assignments come from the FIFO, always ready);
    ``wtu``: the cycles the KVMU waits for its ``selected`` beats on top of that. The KVMU is
    ready for the first one in the cycle of its last count's transfer; the count packer takes
    ``PACKER_CYCLES`` to hand the WTU the last counts beat, after which the first beat comes
    ``first`` cycles later (:func:`model.twins.wtu.selected_schedule`: the rows, their stats
    and emissions, the aggregate's fetches); every later beat ``b`` comes ``gap_b`` cycles
    after the previous one's transfer, while the KVMU is ready again
    :func:`model.twins.kvmu.select_cycles` of the previous beat's pages after it: it waits
    ``max(0, gap_b - select_cycles)``. So ``wtu = PACKER_CYCLES + first + sum_b max(0, gap_b -
    select_cycles(pages_(b-1)))``; with ``rows = 0``, ``EMPTY_SELECT_CYCLES`` (the top offers
    the empty selection in the cycle after the last count). A rejected command takes
    ``COMMAND_CYCLES + STATUS_CYCLES``. Every term is a block twin's function or a constant of
    the top, so the sum follows a block twin that changes.

Status of the RTL
    :class:`hw.dre.DynamicRetrievalEngine` is the RTL of this schedule; its outputs always,
    and its cycles per problem without stalls, equal this twin's (``tests/test_hw_dre.py``,
    ``tests/test_cocotb_dre.py``; ``python -m sim.run dre --engine rtl``). Its exactness rests
    on two boundaries of the blocks, checked in those simulations: the KVMU is ready for its
    first ``selected`` beat in the cycle of its last ``counts`` transfer (its ``SELECT`` state
    follows the count reads), and the WTU takes its first row's first ``scores`` beat in the
    cycle after its last counts beat. The top does not yet wire the blocks' context ports
    (``mode`` 2 and 3 are rejected); :func:`context_state_bits` lists the whole on-chip state
    of one context (HCU table and its counter; KVMU cluster table with the counts, page
    pointers, ring and registers; the stream's identity) and :func:`context_bytes` its size.
Context image (proposed for the top)
    The HCU and the KVMU have context ports (``save`` and ``restore`` streams of 32-bit words,
    :mod:`model.twins.context`; their images in :mod:`model.twins.hcu` and
    :mod:`model.twins.kvmu`, "Context port"); each moves only its live part, so an image grows
    with the context. One DRE serving every (layer, KV head) saves the context on chip after a
    problem and restores the next problem's. :func:`context_image` proposes the image the top
    stores: :data:`CONTEXT_HEADER_WORDS` header words (``CONTEXT_MAGIC`` in bits 16-31 of word
    0 with ``kv_head`` and ``layer`` below it; ``frame``; the HCU's and the KVMU's word counts),
    then the HCU's image, then the KVMU's. Before restoring, the top checks the header against
    the command (magic, ``layer``, ``kv_head``, a ``frame`` before the command's, word counts
    within the blocks' largest images): a context that was never saved fails these checks and
    is started empty (a restart, flagged); an image that passes them but is malformed inside is
    refused by the block (its ``context_refused`` flag, its context left empty).
    :func:`context_traffic` gives the words and cycles of a save and a restore of the context
    on chip (``make bench``, section ``dre``).
"""

import dataclasses

import numpy as np

from model.stimulus import kvdump
from model.reference.resv import make_hyperplanes
from model.stimulus import lxe as lxe_model
from model.twins import hcu as hcu_twin
from model.twins import kvmu as kvmu_twin
from model.twins import wtu as wtu_twin
from model.twins.context import WORD_BITS, restore_cycles, save_cycles

__all__ = ["COMMAND_CYCLES", "HANDOFF_CYCLES", "STATUS_CYCLES", "PACKER_CYCLES",
           "EMPTY_SELECT_CYCLES", "LAYER_BITS", "KV_HEAD_BITS", "FRAME_BITS", "MODE_CONTINUE",
           "MODE_RESTART", "Command", "ProblemResult", "DRETwin", "command_errors",
           "selection_wait", "context_state_bits", "context_bytes", "CONTEXT_MAGIC",
           "CONTEXT_HEADER_WORDS", "context_image", "context_traffic", "run_dump", "collect",
           "SESSION_FIELDS", "ReplayLXE", "record_commands", "session_commands", "session_part",
           "run_session", "record_streams", "INPUT_KIND", "INPUTS", "OUTPUTS", "run_arrays"]

#: Widths of the command's identifying fields (Llama-3-8B: 32 layers, 8 KV heads); the RTL
#: declares its own (:mod:`hw.dre`), and the tests compare the two behaviours, not the constants.
LAYER_BITS = 5
KV_HEAD_BITS = 3
FRAME_BITS = 16
#: The command's ``mode``: continue the stream on chip, or restart it (2 and 3 are rejected).
MODE_CONTINUE = 0
MODE_RESTART = 1

#: Cycles of the command beat: taken, range-checked, the phase started.
COMMAND_CYCLES = 1
#: Cycles between the HCU's last assignment and the KVMU's command (it is taken in the next).
HANDOFF_CYCLES = 0
#: Cycles of the status beat.
STATUS_CYCLES = 1
#: Cycles from the KVMU's last count to the WTU's last counts beat (the count packer's latency).
PACKER_CYCLES = 1
#: With ``rows = 0``: cycles from the KVMU's last count to the empty selection it takes.
EMPTY_SELECT_CYCLES = 1


@dataclasses.dataclass(frozen=True)
class Command:
    """One command beat (one problem).

    ``mode`` is the command's field (module docstring); when it is not given, ``restart``
    sets it (``MODE_RESTART`` or ``MODE_CONTINUE``), and ``restart`` is true exactly when
    ``mode`` is ``MODE_RESTART``.
    """

    layer: int
    kv_head: int
    frame: int
    new_tokens: int
    rows: int
    restart: bool = False
    mode: int = None

    def __post_init__(self):
        if self.mode is None:
            object.__setattr__(self, "mode", MODE_RESTART if self.restart else MODE_CONTINUE)
        object.__setattr__(self, "restart", self.mode == MODE_RESTART)


@dataclasses.dataclass
class ProblemResult:
    """What the DRE did for one problem (the arrays are None when the command was rejected).

    Members
    -------
    rejected, hcu_overflow, store_full : bool
        Status flags (``store_full`` is sticky until a restart, as the KVMU's).
    cluster, new, overflow : numpy.ndarray
        Per new token: assignment out to the LXE.
    counts : numpy.ndarray
        Token count of every cluster after the frame (saturated at ``max_count``).
    scores : numpy.ndarray
        The score rows (rows x clusters) the WTU took.
    selected : numpy.ndarray of bool
        Per cluster, the OR over the rows.
    moves : list of tuple
        ``(src, dst, length, dropped)`` offload moves.
    descriptors : list of tuple
        ``(base, length)`` fetch descriptors.
    fetch_token : numpy.ndarray
        Ascending token indices the descriptors cover.
    pages_per_beat : list of int
        Pages the KVMU walked for each selected cluster (0: nothing offloaded yet).
    phase_cycles : dict
        Cycles of each phase (``command``, ``hcu``, ``handoff``, ``kvmu``, ``wtu``, ``status``).
    measured_cycles : int or None
        Cycles measured in an RTL run (command transfer to status transfer); None for the twin.
    """

    rejected: bool
    hcu_overflow: bool = False
    store_full: bool = False
    cluster: np.ndarray = None
    new: np.ndarray = None
    overflow: np.ndarray = None
    counts: np.ndarray = None
    scores: np.ndarray = None
    selected: np.ndarray = None
    moves: list = dataclasses.field(default_factory=list)
    descriptors: list = dataclasses.field(default_factory=list)
    fetch_token: np.ndarray = None
    pages_per_beat: list = dataclasses.field(default_factory=list)
    phase_cycles: dict = dataclasses.field(default_factory=dict)
    measured_cycles: int = None

    @property
    def cycles(self):
        """Cycles of the problem, command to status: measured (an RTL run) or the module's
        cycle model; None when the problem was run untimed."""
        if self.measured_cycles is not None:
            return self.measured_cycles
        if None in self.phase_cycles.values():
            return None
        return int(sum(self.phase_cycles.values()))


def command_errors(config, command):
    """The range errors of ``command`` (empty when its fields are in range), one text each."""
    errors = []
    for name, bits in (("layer", LAYER_BITS), ("kv_head", KV_HEAD_BITS), ("frame", FRAME_BITS)):
        value = getattr(command, name)
        if not 0 <= value < (1 << bits):
            errors.append(f"{name} must be from 0 to {(1 << bits) - 1}, not {value}")
    if not 1 <= command.new_tokens <= config.max_frame_tokens:
        errors.append(f"new_tokens must be from 1 to {config.max_frame_tokens} "
                      f"(max_frame_tokens), not {command.new_tokens}")
    if not 0 <= command.rows <= config.max_rows:
        errors.append(f"rows must be from 0 to {config.max_rows} (max_rows), not {command.rows}")
    if command.mode not in (MODE_CONTINUE, MODE_RESTART):
        errors.append(f"mode must be {MODE_CONTINUE} (continue) or {MODE_RESTART} (restart; 2 "
                      f"and 3 are reserved), not {command.mode}")
    return errors


class DRETwin:
    """One DRE with one context on chip, stepped one problem at a time.

    Parameters
    ----------
    config : DREConfig
    """

    def __init__(self, config):
        self._config = config
        self._hcu = None
        self._kvmu = kvmu_twin.KVMUContext(config)
        self._stream = None           # (layer, kv_head) of the context on chip
        self._last_frame = None
        self._address_token = {}
        self._offloaded = 0

    @property
    def config(self):
        """The configuration."""
        return self._config

    @property
    def clusters(self):
        """Clusters opened in the context on chip."""
        return self._kvmu.clusters

    def _continues(self, command):
        return (self._stream == (command.layer, command.kv_head)
                and command.frame > self._last_frame)

    def _restart(self, command):
        self._hcu = hcu_twin.HashClusterTwin(self._config, on_overflow="flag")
        self._kvmu.restart()
        self._stream = (command.layer, command.kv_head)
        self._address_token = {}
        self._offloaded = 0

    def problem(self, command, hashes, lxe, *, timed=True):
        """Run one problem.

        Parameters
        ----------
        command : Command
        hashes : array-like of int
            The frame's ``new_tokens`` token hashes (ignored when the command is rejected).
        lxe : object
            The LXE: ``lxe.assignments(cluster)`` takes the frame's assignments once the HCU
            has made them; ``lxe.score_rows(clusters)`` returns the ``rows x clusters``
            unsigned scores (not called when ``rows = 0``), e.g.
            :class:`model.stimulus.lxe.LXEFrame`.
        timed : bool
            False skips the HCU's schedule (its phase's cycles are then None), to move a
            context forward quickly between the problems a benchmark times.

        Returns
        -------
        ProblemResult

        Raises
        ------
        ValueError
            If ``hashes`` or the score rows do not match the accepted command.
        """
        config = self._config
        if command_errors(config, command) or not (command.restart or self._continues(command)):
            return ProblemResult(rejected=True, store_full=self._kvmu.store_full,
                                 phase_cycles={"command": COMMAND_CYCLES,
                                               "status": STATUS_CYCLES})
        hashes = hcu_twin.check_hashes(config, hashes)
        if hashes.size != command.new_tokens:
            raise ValueError(f"hashes must hold new_tokens = {command.new_tokens} values, "
                             f"not {hashes.size}")
        if command.restart:
            self._restart(command)
        self._last_frame = command.frame
        opened_before = self._hcu.opened
        steps = [self._hcu.step(int(value)) for value in hashes]
        hcu_cycles = None
        if timed:
            decided = hcu_twin.schedule(config, [step.first_id for step in steps],
                                        [step.beats for step in steps],
                                        [step.new for step in steps], opened=opened_before)
            hcu_cycles = int(decided[-1]) + 1
        cluster = np.array([step.cluster for step in steps], np.uint64)
        new = np.array([step.new for step in steps], bool)
        overflow = np.array([step.overflow for step in steps], bool)
        lxe.assignments(cluster)

        moves, departing = self._kvmu.offload()
        self._record_layout(moves)
        self._kvmu.assign(cluster, new)
        counts = np.array(self._kvmu.counts(), np.uint64)
        clusters = counts.size
        selected = np.zeros(clusters, bool)
        scores = np.zeros((0, clusters), np.uint64)
        wtu = None
        if command.rows:
            scores = np.asarray(lxe.score_rows(clusters))
            if scores.shape != (command.rows, clusters):
                raise ValueError(f"score rows must have shape ({command.rows}, {clusters}), "
                                 f"not {scores.shape}")
            wtu = wtu_twin.wtu_problem(config, scores, counts)
            selected = wtu["selected"]
            scores = scores.astype(np.uint64)
        descriptors, pages_per_beat = self._kvmu.fetch(np.flatnonzero(selected))
        wtu_cycles = selection_wait(config, wtu, pages_per_beat)
        fetch_token = kvmu_twin.fetched_tokens([d[0] for d in descriptors],
                                               [d[1] for d in descriptors], self._address_token)
        kvmu_cycles = kvmu_twin.problem_cycles(config, departing, command.new_tokens, clusters,
                                               pages_per_beat)
        return ProblemResult(
            rejected=False, hcu_overflow=bool(overflow.any()), store_full=self._kvmu.store_full,
            cluster=cluster, new=new, overflow=overflow, counts=counts, scores=scores,
            selected=selected, moves=[tuple(move) for move in moves],
            descriptors=[tuple(d) for d in descriptors], fetch_token=fetch_token,
            pages_per_beat=list(pages_per_beat),
            phase_cycles={"command": COMMAND_CYCLES, "hcu": hcu_cycles,
                          "handoff": HANDOFF_CYCLES, "kvmu": kvmu_cycles, "wtu": wtu_cycles,
                          "status": STATUS_CYCLES})

    def _record_layout(self, moves):
        """Store address -> token of the moves (the ``k``-th leaving token is token ``k``)."""
        for _, dst, length, dropped in moves:
            for step in range(length):
                if not dropped:
                    self._address_token[dst + step] = self._offloaded
                self._offloaded += 1


def selection_wait(config, wtu, pages_per_beat):
    """Cycles the KVMU waits for its ``selected`` beats (the ``wtu`` phase of the cycle model).

    Parameters
    ----------
    config : DREConfig
    wtu : dict or None
        :func:`model.twins.wtu.wtu_problem`'s result; None when the problem has no rows.
    pages_per_beat : list of int
        Pages the KVMU walks for each ``selected`` beat.
    """
    if wtu is None:
        return EMPTY_SELECT_CYCLES
    first, gaps = wtu_twin.selected_schedule(wtu, config.wtu_lanes)
    return PACKER_CYCLES + first + sum(max(0, gap - kvmu_twin.select_cycles(pages))
                                       for gap, pages in zip(gaps, pages_per_beat))


def context_state_bits(config):
    """Bits of the state of one (layer, KV head) context that a context port would move.

    ``hcu_table``: ``hash_mem_entries`` cluster hashes of ``hash_bits``; ``hcu_opened``: the
    clusters-opened counter (``cluster_id_bits + 1``); ``kvmu``: the KVMU's on-chip state
    (:func:`hw.kvmu.context_state_bits`: cluster table with counts, page pointers, ring,
    registers); ``stream``: layer, KV head and last frame of the context.
    """
    from hw.kvmu import context_state_bits as kvmu_state_bits

    return {"hcu_table": config.hash_mem_entries * config.hash_bits,
            "hcu_opened": config.cluster_id_bits + 1,
            "kvmu": sum(kvmu_state_bits(config).values()),
            "stream": LAYER_BITS + KV_HEAD_BITS + FRAME_BITS}


def context_bytes(config):
    """Bytes one context would move per save or restore (:func:`context_state_bits`, rounded
    up to whole bytes)."""
    return -(-sum(context_state_bits(config).values()) // 8)


#: Bits 16-31 of a context image's first word.
CONTEXT_MAGIC = 0xD2E1
#: Header words of a context image (:func:`context_image`).
CONTEXT_HEADER_WORDS = 4


def context_image(layer, kv_head, frame, hcu_words, kvmu_words):
    """The words the top stores for one context: its header, the HCU's image, the KVMU's.

    Parameters
    ----------
    layer, kv_head, frame : int
        The context's stream and its last frame (``LAYER_BITS``, ``KV_HEAD_BITS``,
        ``FRAME_BITS`` wide).
    hcu_words, kvmu_words : list of int
        The blocks' images (:meth:`model.twins.hcu.HashClusterTwin.save`,
        :meth:`model.twins.kvmu.KVMUContext.save`).

    Raises
    ------
    ValueError
        If a field does not fit its width.
    """
    for name, value, bits in (("layer", layer, LAYER_BITS), ("kv_head", kv_head, KV_HEAD_BITS),
                              ("frame", frame, FRAME_BITS)):
        if not 0 <= value < (1 << bits):
            raise ValueError(f"{name} must be from 0 to {(1 << bits) - 1}, not {value}")
    first = (CONTEXT_MAGIC << 16) | (kv_head << LAYER_BITS) | layer
    header = [first, frame, len(hcu_words), len(kvmu_words)]
    return header + [int(word) for word in hcu_words] + [int(word) for word in kvmu_words]


def context_traffic(twin):
    """Words, bytes and cycles of saving (and then restoring) the context on ``twin``'s chip.

    Parameters
    ----------
    twin : DRETwin

    Returns
    -------
    dict
        ``hcu_words``, ``kvmu_words``, ``words`` (with the :func:`context_image` header),
        ``bytes``, and the stall-free cycles of each block's save and restore
        (``hcu_save_cycles``, ``kvmu_save_cycles``, ``hcu_restore_cycles``,
        ``kvmu_restore_cycles``; the blocks' ports are independent, so a top may run the two
        blocks' operations side by side).
    """
    hcu_words = twin._hcu.save() if twin._hcu is not None else [0]
    kvmu_words = twin._kvmu.save()
    words = CONTEXT_HEADER_WORDS + len(hcu_words) + len(kvmu_words)
    return {"hcu_words": len(hcu_words), "kvmu_words": len(kvmu_words), "words": words,
            "bytes": words * WORD_BITS // 8,
            "hcu_save_cycles": save_cycles(hcu_words),
            "kvmu_save_cycles": save_cycles(kvmu_words),
            "hcu_restore_cycles": restore_cycles(hcu_words),
            "kvmu_restore_cycles": restore_cycles(kvmu_words)}


def run_dump(config, dump, *, frames=None, layers=None, heads=None, seed=0):
    """Run the frame twin on a KV dump, the model playing the LXE (:mod:`model.stimulus.lxe`).

    Every (layer, KV head) stream has its own context (a DRE per context, or one DRE whose
    context port saves and restores them: the results are the same); its first frame restarts
    it.

    Parameters
    ----------
    config : DREConfig
    dump : model.stimulus.kvdump.KVDump
    frames, layers, heads : str, optional
        ``A:B`` slices (default: all); frames before ``A`` are run but not reported.
    seed : int
        Seed of the hyperplanes (:func:`model.reference.resv.make_hyperplanes`).

    Returns
    -------
    dict of numpy.ndarray
        The keys of :data:`model.stimulus.lxe.OUTPUTS`.

    Raises
    ------
    ValueError
        If a slice is out of range or a frame does not fit the configuration.
    """
    frame_range, layer_range, head_range = lxe_model.problem_slice(dump, frames, layers, heads)
    lxe_model.check_dump_fits(config, dump, frame_range)
    outputs = lxe_model.empty_outputs(config, dump, seed)
    streams = {(layer, head): (DRETwin(config),
                               lxe_model.LXEHead(config, dump.keys(layer, head),
                                                 outputs["hyperplanes"][layer, head].T))
               for layer in layer_range for head in head_range}
    records = []
    for frame in range(frame_range.stop):
        start, stop = int(dump.frame_starts[frame]), int(dump.frame_starts[frame + 1])
        for (layer, head), (twin, lxe_head) in streams.items():
            lxe = lxe_model.LXEFrame(lxe_head, start, dump.queries(layer, head, frame))
            hashes = lxe_head.hashes(start, stop)
            command = Command(layer, head, frame, stop - start, lxe.rows, restart=frame == 0)
            result = twin.problem(command, hashes, lxe)
            outputs["token_hash"][layer, head, start:stop] = hashes
            outputs["token_cluster"][layer, head, start:stop] = result.cluster
            if frame in frame_range:
                records.append((frame, layer, head, start, result))
    return {**outputs, **collect(records)}


def collect(records):
    """The per-problem output arrays of ``records`` (``(frame, layer, head, past, result)`` in
    problem order), flattened with offsets (shared by both engines)."""
    flatten = lxe_model.flatten
    results = [record[4] for record in records]
    out = {name: np.array([record[index] for record in records], np.uint64)
           for index, name in enumerate(("problem_frame", "problem_layer", "problem_head",
                                         "past_tokens"))}
    out["cluster_offsets"], out["cluster_count"] = flatten([r.counts for r in results])
    out["selected"] = flatten([r.selected for r in results], bool)[1]
    out["score_offsets"], out["score"] = flatten([r.scores for r in results])
    out["rows"] = np.array([len(r.scores) for r in results], np.uint64)
    moves = [np.array(r.moves, np.uint64).reshape(-1, 4) for r in results]
    out["move_offsets"], move_src = flatten([m[:, 0] for m in moves])
    for column, name in ((1, "move_dst"), (2, "move_len")):
        out[name] = flatten([m[:, column] for m in moves])[1]
    out["move_src"] = move_src
    out["move_dropped"] = flatten([m[:, 3] for m in moves], bool)[1]
    descriptors = [np.array(r.descriptors, np.uint64).reshape(-1, 2) for r in results]
    out["desc_offsets"], out["desc_base"] = flatten([d[:, 0] for d in descriptors])
    out["desc_len"] = flatten([d[:, 1] for d in descriptors])[1]
    out["fetch_offsets"], out["fetch_token"] = flatten([r.fetch_token for r in results])
    for name in ("hcu_overflow", "store_full"):
        out[name] = np.array([getattr(r, name) for r in results], bool)
    out["cycles"] = np.array([r.cycles for r in results], np.uint64)
    for phase in ("hcu", "kvmu", "wtu"):
        out[f"cycles_{phase}"] = np.array([r.phase_cycles[phase] for r in results], np.uint64)
    return out


#: Per-command fields of a *session* (a run of commands from a fresh DRE, with their inputs).
SESSION_FIELDS = ("layer", "kv_head", "frame", "new_tokens", "rows", "mode")


class _Recorder:
    """Wraps an LXE and keeps the score rows it returned (empty when it was not asked)."""

    def __init__(self, lxe):
        self._lxe = lxe
        self.scores = np.zeros(0, np.uint64)

    def assignments(self, cluster):
        self._lxe.assignments(cluster)

    def score_rows(self, clusters):
        scores = np.asarray(self._lxe.score_rows(clusters))
        self.scores = scores.astype(np.uint64).reshape(-1)
        return scores


class ReplayLXE:
    """An LXE that answers with recorded score rows (flattened rows x clusters)."""

    def __init__(self, scores, rows):
        self._scores = np.asarray(scores, np.uint64)
        self._rows = rows

    def assignments(self, cluster):
        """The assignments are not needed: the rows are recorded."""

    def score_rows(self, clusters):
        """The recorded rows as ``rows x clusters``.

        Raises
        ------
        ValueError
            If the recorded rows do not hold ``rows x clusters`` scores.
        """
        if self._scores.size != self._rows * clusters:
            raise ValueError(f"scores must hold rows x clusters = {self._rows} x {clusters} "
                             f"values for the command, not {self._scores.size}")
        return self._scores.reshape(self._rows, clusters)


def record_commands(config, commands, hashes, lxes):
    """Run ``commands`` on a fresh frame twin and record them as a *session*.

    Parameters
    ----------
    commands : list of Command
    hashes : list of array-like
        Per command, its token hashes (ignored when it is rejected).
    lxes : list
        Per command, the LXE (``assignments``, ``score_rows``) that answers it.

    Returns
    -------
    dict of numpy.ndarray
        The session: :data:`SESSION_FIELDS` per command, ``hash_offsets`` and ``hashes``,
        ``score_offsets`` and ``scores`` (the rows the LXE returned, flattened), which
        :func:`run_session` replays.
    """
    twin = DRETwin(config)
    recorded = []
    for command, frame_hashes, lxe in zip(commands, hashes, lxes):
        recorder = _Recorder(lxe)
        twin.problem(command, frame_hashes, recorder, timed=False)
        recorded.append(recorder.scores)
    session = {name: np.array([getattr(c, name) for c in commands], np.uint64)
               for name in SESSION_FIELDS}
    session["hash_offsets"], session["hashes"] = lxe_model.flatten(hashes)
    session["score_offsets"], session["scores"] = lxe_model.flatten(recorded)
    return session


def session_commands(session):
    """The :class:`Command` list of a session."""
    return [Command(*(int(session[name][index]) for name in SESSION_FIELDS[:5]),
                    mode=int(session["mode"][index]))
            for index in range(len(session["mode"]))]


def session_part(session, key, index):
    """Command ``index``'s part of the ragged session array ``key`` (``hashes``, ``scores``)."""
    offsets = session[{"hashes": "hash_offsets", "scores": "score_offsets"}[key]]
    return session[key][int(offsets[index]):int(offsets[index + 1])]


def run_session(config, session):
    """Replay a session on a fresh frame twin; one :class:`ProblemResult` per command."""
    twin = DRETwin(config)
    return [twin.problem(command, session_part(session, "hashes", index),
                         ReplayLXE(session_part(session, "scores", index), command.rows))
            for index, command in enumerate(session_commands(session))]


def record_streams(config, dump, streams, frames, *, seed=0):
    """A session of workload frames: each (layer, KV head) of ``streams`` in turn, frames
    ``0 .. frames - 1`` (restart on the first), the model playing the LXE."""
    planes = {(layer, head): make_hyperplanes(config.hash_bits, dump.head_dim, seed, layer, head)
              for layer, head in streams}
    commands, hashes, lxes = [], [], []
    for layer, head in streams:
        lxe_head = lxe_model.LXEHead(config, dump.keys(layer, head), planes[layer, head])
        for frame in range(frames):
            start, stop = int(dump.frame_starts[frame]), int(dump.frame_starts[frame + 1])
            lxe = lxe_model.LXEFrame(lxe_head, start, dump.queries(layer, head, frame))
            commands.append(Command(layer, head, frame, stop - start, lxe.rows,
                                    restart=frame == 0))
            hashes.append(lxe_head.hashes(start, stop))
            lxes.append(lxe)
    return record_commands(config, commands, hashes, lxes)


#: The DRE's file interface reads a KV dump (``python -m sim.run dre``), not plain arrays.
INPUT_KIND = "kvdump"
INPUTS = kvdump.SPECS
OUTPUTS = lxe_model.OUTPUTS


def run_arrays(config, arrays, **slices):
    """File interface: the validated arrays of a KV dump in, :data:`OUTPUTS` out
    (``slices``: ``frames``, ``layers``, ``heads``, ``seed`` of :func:`run_dump`)."""
    return run_dump(config, kvdump.KVDump(arrays, "dre input"), **slices)
