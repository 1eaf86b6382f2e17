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
    ``layer``, ``kv_head``, ``frame``, ``new_tokens``, ``rows``, ``mode``: ``MODE_CONTINUE`` = 0
    (go on with the stream on chip), ``MODE_RESTART`` = 1 (empty the context first),
    ``MODE_RESTORE`` = 2 (restore the command's context from ``context_in``, then run the
    problem as a continue; "Context port" below) or ``MODE_SAVE`` = 3 (save the context on chip
    to ``context_out``, no problem). It is *rejected* (flag ``rejected``, nothing else happens,
    nothing is read from ``context_in``, the context is unchanged) when ``layer`` is not below
    ``2**LAYER_BITS``, ``kv_head`` not below ``2**KV_HEAD_BITS``, ``frame`` not below
    ``2**FRAME_BITS``, ``mode`` above 3; for modes 0 to 2, when ``new_tokens`` is not from 1 to
    ``max_frame_tokens`` or ``rows`` above ``max_rows``; when it continues a stream (``mode =
    0``) that is not the one on chip: no context yet (also after a reset), another (layer, KV
    head), or a frame not after the context's last frame; when it saves (``mode = 3``) a stream
    that is not the one on chip (no context, or another (layer, KV head); ``frame``,
    ``new_tokens`` and ``rows`` of a save are ignored). ``rows = 0`` clusters and offloads
    without selecting (no score rows, no fetch).
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
       ``store_full``, ``context_invalid``, ``context_refused``), the context words moved.
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

    A restore adds its phase before the HCU's (``context``, "Context port"); a save is only
    ``COMMAND_CYCLES + context + STATUS_CYCLES``.
Context port
    One DRE serves every (layer, KV head) context of a stream (frame-major: all contexts of a
    frame, then the next frame), saving the context on chip after a problem and restoring the
    next problem's. The *context image* of one context (:func:`context_image`) is
    :data:`CONTEXT_HEADER_WORDS` = 4 header words (``CONTEXT_MAGIC`` in bits 16-31 of word 0
    with ``kv_head`` and ``layer`` below it, bits 8-15 zero; the context's last ``frame``; ``H``
    and ``K``, the word counts of the HCU's and the KVMU's images), then the HCU's image, then
    the KVMU's (the blocks' images: :mod:`model.twins.hcu` and :mod:`model.twins.kvmu`,
    "Context port"; 32-bit words, live part only). The streams ``context_in`` and
    ``context_out`` carry one word a beat, ``last`` on the image's final word.

    *Save* (``mode = 3``): the image of the context on chip goes out on ``context_out``; the
    context stays on chip (a continue of the stream may follow). A separate command rather
    than a save bit on the problem's command: the command keeps its layout (the two modes were
    reserved for this), a save is needed only when the next problem is another context's (the
    last problem of a run, or a host that keeps the stream on chip, saves nothing), and each
    command's status then reports one thing (a problem's cycles stay those of the stream run
    straight, the save's words and cycles come in its own status beat); it costs
    ``COMMAND_CYCLES + STATUS_CYCLES`` = 2 cycles per save.

    *Restore* (``mode = 2``): the top always takes ``context_in`` up to and including the beat
    with ``last`` (``context_words`` in the status: all the words the host sent, whatever they
    hold), the header first (stopping early on a ``last``). The header is *valid* when it has
    its 4 words, word 0 is ``CONTEXT_MAGIC << 16 | kv_head << LAYER_BITS | layer`` of the
    command, word 1 (the saved frame) is below the command's ``frame``, and ``H``, ``K`` are
    from 1 to the blocks' largest images (:func:`largest_images`). With a valid header the next
    ``H + K`` positions go to the blocks, ``H`` to the HCU's ``restore`` and ``K`` to the
    KVMU's (each with ``last`` on its final word): the image's words while it lasts, zero words
    (not taken from ``context_in``) if it ended early; words after them up to ``last`` are taken
    and dropped. The context is *restored* when the header is valid, the image had exactly ``4
    + H + K`` words, neither block refused its image and they agree (the HCU's opened clusters
    equal the KVMU's ``clusters``): the problem then runs as a continue of the restored context.
    Otherwise the problem runs on an empty context, as a restart, and the status says why:
    ``context_refused`` when a block refused its image (its ``context_refused``; only with a
    valid header), ``context_invalid`` for the rest (a context never saved: garbage, wrong
    magic, another layer or head, a frame not before the command's, counts out of range; an
    image of the wrong length; blocks that disagree).

    Cycles (no stall): a restore's ``context`` phase is ``positions +
    model.twins.context.RESTORE_EXTRA_CYCLES + RESTORE_DECIDE_CYCLES``, with ``positions``
    the words taken or given (``max(words, 4 + H + K)`` with a valid header, else ``words``),
    ``RESTORE_EXTRA_CYCLES`` (2) the blocks' command cycle and the check of their last word
    (taken even with an invalid header, so one schedule serves both), ``RESTORE_DECIDE_CYCLES``
    (1) the cycle that decides between the restored context and a restart (as a command's
    cycle does): the HCU's phase starts in the next. A save's ``context`` phase is
    ``CONTEXT_START_CYCLES + words``: the blocks' save commands in one cycle, then one word a
    cycle; the 4 header words cover the blocks' save latency (``SAVE_EXTRA_CYCLES - 1`` = 3
    cycles from their command to their first word), so their words follow without a gap.
    :func:`context_traffic` gives the words and cycles of the context on chip (``make bench``,
    section ``dre``).
Status of the RTL
    :class:`hw.dre.DynamicRetrievalEngine` is the RTL of this schedule; its outputs always,
    and its cycles per problem without stalls, equal this twin's (``tests/test_hw_dre.py``,
    ``tests/test_cocotb_dre.py``; ``python -m sim.run dre --engine rtl``). Its exactness rests
    on two boundaries of the blocks, checked in those simulations: the KVMU is ready for its
    first ``selected`` beat in the cycle of its last ``counts`` transfer (its ``SELECT`` state
    follows the count reads), and the WTU takes its first row's first ``scores`` beat in the
    cycle after its last counts beat. :func:`context_state_bits` lists the whole on-chip state
    of one context (HCU table and its counter; KVMU cluster table with the counts, page
    pointers, ring and registers; the stream's identity) and :func:`context_bytes` its size
    (the most a context port could move; the images move only the live part).
"""

import dataclasses

import numpy as np

from model.npzio import ArraySpec
from model.stimulus import kvdump
from model.reference.resv import make_hyperplanes
from model.stimulus import lxe as lxe_model
from model.twins import hcu as hcu_twin
from model.twins import kvmu as kvmu_twin
from model.twins import wtu as wtu_twin
from model.twins.context import (RESTORE_EXTRA_CYCLES, WORD_BITS, item_words, restore_cycles,
                                 save_cycles)

__all__ = ["COMMAND_CYCLES", "HANDOFF_CYCLES", "STATUS_CYCLES", "PACKER_CYCLES",
           "EMPTY_SELECT_CYCLES", "LAYER_BITS", "KV_HEAD_BITS", "FRAME_BITS", "MODE_CONTINUE",
           "MODE_RESTART", "MODE_RESTORE", "MODE_SAVE", "CONTEXT_START_CYCLES",
           "RESTORE_DECIDE_CYCLES", "largest_images", "Command", "ProblemResult", "DRETwin",
           "command_errors", "selection_wait", "context_state_bits", "context_bytes",
           "CONTEXT_MAGIC", "CONTEXT_HEADER_WORDS", "context_image", "save_phase_cycles",
           "restore_phase_cycles", "context_traffic",
           "run_dump", "collect", "SESSION_FIELDS", "ReplayLXE", "record_commands",
           "session_commands", "session_part", "run_session", "record_streams", "CONTEXT_ORDERS",
           "INPUT_KIND", "INPUTS", "OUTPUTS", "run_arrays"]

#: Widths of the command's identifying fields (Llama-3-8B: 32 layers, 8 KV heads); the RTL
#: declares its own (:mod:`hw.dre`), and the tests compare the two behaviours, not the constants.
LAYER_BITS = 5
KV_HEAD_BITS = 3
FRAME_BITS = 16
#: The command's ``mode``: continue the stream on chip, restart it, restore a context and
#: continue it, save the context on chip (module docstring, "Context port").
MODE_CONTINUE = 0
MODE_RESTART = 1
MODE_RESTORE = 2
MODE_SAVE = 3

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
#: Cycles of a save before its first word: the blocks' save commands.
CONTEXT_START_CYCLES = 1
#: Cycles of a restore after the blocks' last word is checked: the choice between the restored
#: context and a restart.
RESTORE_DECIDE_CYCLES = 1


@dataclasses.dataclass(frozen=True)
class Command:
    """One command beat (one problem).

    ``mode`` is the command's field (module docstring); when it is not given, ``restart``
    sets it (``MODE_RESTART`` or ``MODE_CONTINUE``), and ``restart`` is true exactly when
    ``mode`` is ``MODE_RESTART``. A save (``MODE_SAVE``) ignores ``frame``, ``new_tokens`` and
    ``rows``.
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
    context_invalid, context_refused : bool
        A restore's flags (module docstring, "Context port"): the problem ran on an empty
        context.
    context_words : int
        Words moved on ``context_in`` (a restore) or ``context_out`` (a save).
    saved_image : list of int or None
        A save's image (None for every other command).
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
        Cycles of each phase (``command``, ``context`` of a restore or a save, ``hcu``,
        ``handoff``, ``kvmu``, ``wtu``, ``status``).
    measured_cycles : int or None
        Cycles measured in an RTL run (command transfer to status transfer); None for the twin.
    """

    rejected: bool
    hcu_overflow: bool = False
    store_full: bool = False
    context_invalid: bool = False
    context_refused: bool = False
    context_words: int = 0
    saved_image: list = None
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
    if command.mode not in (MODE_CONTINUE, MODE_RESTART, MODE_RESTORE, MODE_SAVE):
        errors.append(f"mode must be {MODE_CONTINUE} (continue), {MODE_RESTART} (restart), "
                      f"{MODE_RESTORE} (restore) or {MODE_SAVE} (save), not {command.mode}")
    if command.mode == MODE_SAVE:
        return errors
    if not 1 <= command.new_tokens <= config.max_frame_tokens:
        errors.append(f"new_tokens must be from 1 to {config.max_frame_tokens} "
                      f"(max_frame_tokens), not {command.new_tokens}")
    if not 0 <= command.rows <= config.max_rows:
        errors.append(f"rows must be from 0 to {config.max_rows} (max_rows), not {command.rows}")
    return errors


def largest_images(config):
    """The words of the HCU's and of the KVMU's largest context images, ``(H, K)``: a full
    table of ``hash_mem_entries`` hashes behind the HCU's header; ``max_clusters`` table items,
    every page's pointer and ``recent_window + max_frame_tokens`` window tokens behind the
    KVMU's header (:mod:`model.twins.hcu`, :mod:`model.twins.kvmu`, "Context port")."""
    fields = kvmu_twin.context_header_fields(config)
    hcu_words = (item_words(config.cluster_id_bits + 1)
                 + config.hash_mem_entries * item_words(config.hash_bits))
    pages = (1 << config.kv_token_bits) // config.kvmu_page_tokens
    kvmu_words = (item_words(sum(fields.values()))
                  + config.max_clusters * item_words(sum(kvmu_twin.cluster_word_fields(config)
                                                         .values()))
                  + pages * item_words(kvmu_twin.page_bits(config))
                  + (config.recent_window + config.max_frame_tokens)
                  * item_words(config.cluster_id_bits))
    return hcu_words, kvmu_words


class DRETwin:
    """One DRE with one context on chip, stepped one command at a time.

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
        # Per stream, the host's view of the store (address -> token, tokens offloaded so
        # far): what decodes the fetch descriptors, kept off chip as the store itself is; and
        # the view at each save, by image, which a restore of that image takes up again.
        self._layouts = {}
        self._saved_layouts = {}

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

    def _accepted(self, command):
        if command_errors(self._config, command):
            return False
        if command.mode == MODE_CONTINUE:
            return self._continues(command)
        if command.mode == MODE_SAVE:
            return self._stream == (command.layer, command.kv_head)
        return True

    def _restart(self, command):
        self._hcu = hcu_twin.HashClusterTwin(self._config, on_overflow="flag")
        self._kvmu.restart()
        self._stream = (command.layer, command.kv_head)
        self._layouts[self._stream] = ({}, 0)

    def problem(self, command, hashes, lxe, *, timed=True, image=None):
        """Run one command.

        Parameters
        ----------
        command : Command
        hashes : array-like of int
            The frame's ``new_tokens`` token hashes (ignored when the command is rejected or
            saves).
        lxe : object
            The LXE: ``lxe.assignments(cluster)`` takes the frame's assignments once the HCU
            has made them; ``lxe.score_rows(clusters)`` returns the ``rows x clusters``
            unsigned scores (not called when ``rows = 0``), e.g.
            :class:`model.stimulus.lxe.LXEFrame`. Ignored by a save.
        timed : bool
            False skips the HCU's schedule (its phase's cycles are then None), to move a
            context forward quickly between the problems a benchmark times.
        image : sequence of int, optional
            A restore's words on ``context_in`` (``last`` on the final one); required with
            ``MODE_RESTORE``, ignored otherwise.

        Returns
        -------
        ProblemResult

        Raises
        ------
        ValueError
            If ``hashes`` or the score rows do not match the accepted command, or a restore
            has no image, an empty one or a value that is not a 32-bit word.
        """
        config = self._config
        if not self._accepted(command):
            return ProblemResult(rejected=True, store_full=self._kvmu.store_full,
                                 phase_cycles={"command": COMMAND_CYCLES,
                                               "status": STATUS_CYCLES})
        if command.mode == MODE_SAVE:
            return self._save(command)
        restore = {}
        if command.mode == MODE_RESTORE:
            restore = self._restore(command, image)
        hashes = hcu_twin.check_hashes(config, hashes)
        if hashes.size != command.new_tokens:
            raise ValueError(f"hashes must hold new_tokens = {command.new_tokens} values, "
                             f"not {hashes.size}")
        if command.restart or restore.get("restart"):
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
                                               [d[1] for d in descriptors],
                                               self._layouts[self._stream][0])
        kvmu_cycles = kvmu_twin.problem_cycles(config, departing, command.new_tokens, clusters,
                                               pages_per_beat)
        phases = {"command": COMMAND_CYCLES}
        if restore:
            phases["context"] = restore["cycles"]
        phases.update({"hcu": hcu_cycles, "handoff": HANDOFF_CYCLES, "kvmu": kvmu_cycles,
                       "wtu": wtu_cycles, "status": STATUS_CYCLES})
        return ProblemResult(
            rejected=False, hcu_overflow=bool(overflow.any()), store_full=self._kvmu.store_full,
            context_invalid=restore.get("invalid", False),
            context_refused=restore.get("refused", False),
            context_words=restore.get("words", 0),
            cluster=cluster, new=new, overflow=overflow, counts=counts, scores=scores,
            selected=selected, moves=[tuple(move) for move in moves],
            descriptors=[tuple(d) for d in descriptors], fetch_token=fetch_token,
            pages_per_beat=list(pages_per_beat), phase_cycles=phases)

    def _save(self, command):
        """A save: the image of the context on chip (module docstring, "Context port")."""
        image = self.image()
        address_token, offloaded = self._layouts[self._stream]
        self._saved_layouts[tuple(image)] = (dict(address_token), offloaded)
        return ProblemResult(rejected=False, store_full=self._kvmu.store_full,
                             context_words=len(image), saved_image=image,
                             phase_cycles={"command": COMMAND_CYCLES,
                                           "context": save_phase_cycles(len(image)),
                                           "status": STATUS_CYCLES})

    def image(self):
        """The :func:`context_image` of the context on chip (what a save sends).

        Raises
        ------
        ValueError
            If no context is on chip.
        """
        if self._stream is None:
            raise ValueError("no context is on chip to save")
        layer, kv_head = self._stream
        return context_image(layer, kv_head, self._last_frame, self._hcu.save(),
                             self._kvmu.save())

    def _restore(self, command, image):
        """Restore the command's context from ``image``; returns ``words``, ``cycles`` and, when
        the problem must run on an empty context, ``restart`` with the flag that says why."""
        if image is None:
            raise ValueError(f"a restore command (mode 2) needs an image; none was given for "
                             f"stream {(command.layer, command.kv_head)}")
        words = [int(word) for word in image]
        if not words or not all(0 <= word < (1 << WORD_BITS) for word in words):
            raise ValueError(f"image must hold at least one word, each from 0 to "
                             f"{(1 << WORD_BITS) - 1}")
        config = self._config
        header = words[:CONTEXT_HEADER_WORDS]
        largest = largest_images(config)
        valid = (len(header) == CONTEXT_HEADER_WORDS
                 and header[0] == ((CONTEXT_MAGIC << 16) | (command.kv_head << LAYER_BITS)
                                   | command.layer)
                 and header[1] < command.frame
                 and all(1 <= count <= most for count, most in zip(header[2:], largest)))
        outcome = {"words": len(words)}
        if not valid:
            outcome.update(restart=True, invalid=True)
            positions = len(words)
        else:
            hcu_words, kvmu_words = header[2:]
            end = CONTEXT_HEADER_WORDS + hcu_words + kvmu_words
            body = words[CONTEXT_HEADER_WORDS:end]
            body += [0] * (hcu_words + kvmu_words - len(body))      # an image that ended early
            hcu = hcu_twin.HashClusterTwin(config, on_overflow="flag")
            kvmu = kvmu_twin.KVMUContext(config)
            hcu_taken = hcu.restore(body[:hcu_words])
            kvmu_taken = kvmu.restore(body[hcu_words:])
            refused = not (hcu_taken and kvmu_taken)
            invalid = len(words) != end or (not refused and hcu.opened != kvmu.clusters)
            if refused or invalid:
                outcome.update(restart=True, invalid=invalid, refused=refused)
            else:
                self._hcu, self._kvmu = hcu, kvmu
                self._stream = (command.layer, command.kv_head)
                if tuple(words) in self._saved_layouts:
                    address_token, offloaded = self._saved_layouts[tuple(words)]
                    self._layouts[self._stream] = (dict(address_token), offloaded)
                self._layouts.setdefault(self._stream, ({}, 0))
            positions = max(len(words), end)
        outcome["cycles"] = restore_phase_cycles(positions)
        return outcome

    def _record_layout(self, moves):
        """Store address -> token of the moves (the ``k``-th leaving token of the stream is
        token ``k``)."""
        address_token, offloaded = self._layouts[self._stream]
        for _, dst, length, dropped in moves:
            for step in range(length):
                if not dropped:
                    address_token[dst + step] = offloaded
                offloaded += 1
        self._layouts[self._stream] = (address_token, offloaded)


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


def save_phase_cycles(words):
    """Cycles of a save command's context phase for an image of ``words`` words, without
    stalls: the blocks' save commands, then a word a cycle (the command's and the status beat's
    cycles come on top)."""
    return CONTEXT_START_CYCLES + words


def restore_phase_cycles(words):
    """Cycles a restore of ``words`` words (the words the top takes or positions it fills)
    adds to its problem, without stalls: a word a cycle, the blocks' last check and write, and
    the choice between the restored context and a restart."""
    return words + RESTORE_EXTRA_CYCLES + RESTORE_DECIDE_CYCLES


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
        blocks' operations side by side), and what the top spends: ``save_cycles`` (a save
        command, command to status) and ``restore_cycles`` (what a restore adds to its
        problem).
    """
    hcu_words = twin._hcu.save() if twin._hcu is not None else [0]
    kvmu_words = twin._kvmu.save()
    words = CONTEXT_HEADER_WORDS + len(hcu_words) + len(kvmu_words)
    return {"hcu_words": len(hcu_words), "kvmu_words": len(kvmu_words), "words": words,
            "bytes": words * WORD_BITS // 8,
            "hcu_save_cycles": save_cycles(hcu_words),
            "kvmu_save_cycles": save_cycles(kvmu_words),
            "hcu_restore_cycles": restore_cycles(hcu_words),
            "kvmu_restore_cycles": restore_cycles(kvmu_words),
            "save_cycles": COMMAND_CYCLES + save_phase_cycles(words) + STATUS_CYCLES,
            "restore_cycles": restore_phase_cycles(words)}


#: The orders ``run_dump`` runs the problems in: ``stream`` (a context per stream, as many
#: DREs or a DRE that keeps every context on chip) or ``switch`` (one DRE, every context saved
#: after its problem and restored before its next).
CONTEXT_ORDERS = ("stream", "switch")


def run_dump(config, dump, *, frames=None, layers=None, heads=None, seed=0, contexts="stream"):
    """Run the frame twin on a KV dump, the model playing the LXE (:mod:`model.stimulus.lxe`).

    Problems run in (frame, layer, KV head) order. With ``contexts="stream"`` every (layer, KV
    head) stream has its own context; with ``"switch"`` one DRE serves them all: each problem
    after frame 0 is a restore (``MODE_RESTORE``) of the image its stream's last save sent, and
    each problem but those of the last frame is followed by a save (``MODE_SAVE``); the model
    plays the external memory that keeps the images. The outputs are the same either way
    (``cycles`` is the problem's without its restore); ``"switch"`` adds the keys
    ``context_in_words``, ``context_out_words`` and ``cycles_context``. A stream's first frame
    restarts it.

    Parameters
    ----------
    config : DREConfig
    dump : model.stimulus.kvdump.KVDump
    frames, layers, heads : str, optional
        ``A:B`` slices (default: all); frames before ``A`` are run but not reported.
    seed : int
        Seed of the hyperplanes (:func:`model.reference.resv.make_hyperplanes`).
    contexts : str
        One of :data:`CONTEXT_ORDERS`.

    Returns
    -------
    dict of numpy.ndarray
        The keys of :data:`OUTPUTS`.

    Raises
    ------
    ValueError
        If a slice is out of range, a frame does not fit the configuration, or ``contexts``
        is not one of :data:`CONTEXT_ORDERS`.
    """
    if contexts not in CONTEXT_ORDERS:
        raise ValueError(f"contexts must be one of {', '.join(CONTEXT_ORDERS)}, not {contexts!r}")
    switch = contexts == "switch"
    frame_range, layer_range, head_range = lxe_model.problem_slice(dump, frames, layers, heads)
    lxe_model.check_dump_fits(config, dump, frame_range)
    outputs = lxe_model.empty_outputs(config, dump, seed)
    shared = DRETwin(config)
    streams = {(layer, head): (shared if switch else DRETwin(config),
                               lxe_model.LXEHead(config, dump.keys(layer, head),
                                                 outputs["hyperplanes"][layer, head].T))
               for layer in layer_range for head in head_range}
    records, saves, images = [], [], {}
    for frame in range(frame_range.stop):
        start, stop = int(dump.frame_starts[frame]), int(dump.frame_starts[frame + 1])
        for (layer, head), (twin, lxe_head) in streams.items():
            lxe = lxe_model.LXEFrame(lxe_head, start, dump.queries(layer, head, frame))
            hashes = lxe_head.hashes(start, stop)
            mode = MODE_RESTART if frame == 0 else MODE_RESTORE if switch else MODE_CONTINUE
            command = Command(layer, head, frame, stop - start, lxe.rows, mode=mode)
            result = twin.problem(command, hashes, lxe, image=images.get((layer, head)))
            save = None
            if switch and frame < frame_range.stop - 1:
                save = twin.problem(Command(layer, head, frame, 0, 0, mode=MODE_SAVE), [], None)
                images[layer, head] = save.saved_image
            outputs["token_hash"][layer, head, start:stop] = hashes
            outputs["token_cluster"][layer, head, start:stop] = result.cluster
            if frame in frame_range:
                records.append((frame, layer, head, start, result))
                saves.append(save)
    return {**outputs, **collect(records, saves if switch else None)}


def collect(records, saves=None):
    """The per-problem output arrays of ``records`` (``(frame, layer, head, past, result)`` in
    problem order), flattened with offsets (shared by both engines); ``saves``: per record, the
    :class:`ProblemResult` of the save after it (None: none), for the context keys of
    ``run_dump(..., contexts="switch")``."""
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
    out["cycles"] = np.array([r.cycles - r.phase_cycles.get("context", 0) for r in results],
                             np.uint64)
    for phase in ("hcu", "kvmu", "wtu"):
        out[f"cycles_{phase}"] = np.array([r.phase_cycles[phase] for r in results], np.uint64)
    if saves is not None:
        out["context_in_words"] = np.array([r.context_words for r in results], np.uint64)
        out["context_out_words"] = np.array([s.context_words if s else 0 for s in saves],
                                            np.uint64)
        out["cycles_context"] = np.array([r.phase_cycles.get("context", 0)
                                          + (s.cycles if s else 0)
                                          for r, s in zip(results, saves)], np.uint64)
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


def record_commands(config, commands, hashes, lxes, images=None):
    """Run ``commands`` on a fresh frame twin and record them as a *session*.

    Parameters
    ----------
    commands : list of Command
    hashes : list of array-like
        Per command, its token hashes (ignored when it is rejected or saves).
    lxes : list
        Per command, the LXE (``assignments``, ``score_rows``) that answers it.
    images : list, optional
        Per command, the words a restore sends on ``context_in``; None (and every entry when
        not given) takes the image of the stream's last save in the session.

    Returns
    -------
    dict of numpy.ndarray
        The session: :data:`SESSION_FIELDS` per command, ``hash_offsets`` and ``hashes``,
        ``score_offsets`` and ``scores`` (the rows the LXE returned, flattened),
        ``image_offsets`` and ``images`` (each restore's words), which :func:`run_session`
        replays.

    Raises
    ------
    ValueError
        If an accepted restore has no image and its stream was not saved before it.
    """
    twin = DRETwin(config)
    images = [None] * len(commands) if images is None else list(images)
    recorded, sent, saved = [], [], {}
    for index, (command, frame_hashes, lxe) in enumerate(zip(commands, hashes, lxes)):
        recorder = _Recorder(lxe)
        stream = (command.layer, command.kv_head)
        image = images[index]
        if command.mode == MODE_RESTORE and image is None:
            image = saved.get(stream)
        result = twin.problem(command, frame_hashes, recorder, timed=False,
                              image=image if command.mode == MODE_RESTORE else None)
        if result.saved_image is not None:
            saved[stream] = result.saved_image
        recorded.append(recorder.scores)
        sent.append(np.array(image if command.mode == MODE_RESTORE and not result.rejected
                             else [], np.uint64))
    session = {name: np.array([getattr(c, name) for c in commands], np.uint64)
               for name in SESSION_FIELDS}
    session["hash_offsets"], session["hashes"] = lxe_model.flatten(hashes)
    session["score_offsets"], session["scores"] = lxe_model.flatten(recorded)
    session["image_offsets"], session["images"] = lxe_model.flatten(sent)
    return session


def session_commands(session):
    """The :class:`Command` list of a session."""
    return [Command(*(int(session[name][index]) for name in SESSION_FIELDS[:5]),
                    mode=int(session["mode"][index]))
            for index in range(len(session["mode"]))]


def session_part(session, key, index):
    """Command ``index``'s part of the ragged session array ``key`` (``hashes``, ``scores``,
    ``images``)."""
    offsets = session[{"hashes": "hash_offsets", "scores": "score_offsets",
                       "images": "image_offsets"}[key]]
    return session[key][int(offsets[index]):int(offsets[index + 1])]


def run_session(config, session):
    """Replay a session on a fresh frame twin; one :class:`ProblemResult` per command."""
    twin = DRETwin(config)
    return [twin.problem(command, session_part(session, "hashes", index),
                         ReplayLXE(session_part(session, "scores", index), command.rows),
                         image=session_part(session, "images", index)
                         if command.mode == MODE_RESTORE else None)
            for index, command in enumerate(session_commands(session))]


def record_streams(config, dump, streams, frames, *, seed=0, switch=False):
    """A session of workload frames ``0 .. frames - 1`` of each (layer, KV head) of
    ``streams``, the model playing the LXE.

    Without ``switch``, each stream in turn (restart on its first frame, continues after).
    With ``switch``, frame-major as one DRE serving every context: per frame, each stream's
    problem (a restart on frame 0, else a restore of the stream's last save) followed by a
    save of its context (none after the last frame).
    """
    planes = {(layer, head): make_hyperplanes(config.hash_bits, dump.head_dim, seed, layer, head)
              for layer, head in streams}
    heads = {(layer, head): lxe_model.LXEHead(config, dump.keys(layer, head), planes[layer, head])
             for layer, head in streams}
    order = ([(frame, stream) for frame in range(frames) for stream in streams] if switch
             else [(frame, stream) for stream in streams for frame in range(frames)])
    commands, hashes, lxes = [], [], []
    for frame, (layer, head) in order:
        start, stop = int(dump.frame_starts[frame]), int(dump.frame_starts[frame + 1])
        lxe = lxe_model.LXEFrame(heads[layer, head], start, dump.queries(layer, head, frame))
        mode = (MODE_RESTART if frame == 0 else MODE_RESTORE if switch else MODE_CONTINUE)
        commands.append(Command(layer, head, frame, stop - start, lxe.rows, mode=mode))
        hashes.append(heads[layer, head].hashes(start, stop))
        lxes.append(lxe)
        if switch and frame < frames - 1:
            commands.append(Command(layer, head, frame, 0, 0, mode=MODE_SAVE))
            hashes.append([])
            lxes.append(None)
    return record_commands(config, commands, hashes, lxes)


#: The DRE's file interface reads a KV dump (``python -m sim.run dre``), not plain arrays.
INPUT_KIND = "kvdump"
INPUTS = kvdump.SPECS
OUTPUTS = lxe_model.OUTPUTS + [
    ArraySpec("context_in_words", "u", 1, "per problem (--contexts switch): words restored "
              "before it (0: a restart)", optional=True),
    ArraySpec("context_out_words", "u", 1, "per problem (--contexts switch): words of the "
              "save after it (0: none, the last frame)", optional=True),
    ArraySpec("cycles_context", "u", 1, "per problem (--contexts switch): cycles of its "
              "restore and of the save command after it, no stalls", optional=True),
]


def run_arrays(config, arrays, **slices):
    """File interface: the validated arrays of a KV dump in, :data:`OUTPUTS` out
    (``slices``: ``frames``, ``layers``, ``heads``, ``seed`` of :func:`run_dump`)."""
    return run_dump(config, kvdump.KVDump(arrays, "dre input"), **slices)
