"""The DRE top: the HCU, the KVMU and the WTU composed into one engine, one problem at a time.

One *problem* is one (layer, KV head, frame): a ``cmd`` beat, the frame's token hashes, the
LXE's quantised score rows. The top holds one context on chip (the state of one (layer, KV head)
stream: the HCU's table, the KVMU's layout and counts, the stream's identity); ``mode = 1``
(restart) empties it first, ``mode = 0`` (continue) goes on with it, ``mode = 2`` (restore)
loads the command's context from ``context_in`` first, ``mode = 3`` (save) sends the context
on chip to ``context_out`` (no problem), so one DRE serves every context. The bit-exact contract and
the cycle model are those of the frame twin :mod:`model.twins.dre`: outputs always, and cycles
per problem when no port stalls, are equal.

Design rationale
----------------
The top composes the blocks through their ports only (:class:`hw.hcu.HashClusterUnit`,
:class:`hw.kvmu.KVManagementUnit`, :class:`hw.wtu.WiCSumThresholdUnit`), so a block that is
re-pipelined keeps working here; its twin composes their twins' functions the same way. The
phases run one after another, as the data dictates: the KVMU needs every assignment of the frame
(its ``new`` flags give the cluster count ``N`` the WTU's problem beat carries), the WTU needs the
counts of all ``N`` clusters before its first row, and the LXE can only score the clusters once
it knows the frame's assignments. Between the phases:

* *assignments*: the HCU's ``o`` is forked (every sink takes each beat once, whichever is ready
  first) to the ``assignments`` port (the LXE) and to a FIFO of ``max_frame_tokens`` entries
  (``SyncFIFOBuffered``) that the KVMU reads in its assign phase; the FIFO never fills (the KVMU
  empties it in every problem);
* *counts*: the KVMU's counts go through :class:`hw.count_packer.CountPacker` into the WTU's
  lanes, and to the ``counts`` port; with ``rows = 0`` they go only to the port and the top
  offers the KVMU an empty selection in the cycle after the last count;
* *selection*: the WTU's ``selected`` (cluster, empty, last) goes to the KVMU and to the
  ``selected`` port. The WTU's ``stats`` and ``row_mask`` streams are consumed inside.

``counts`` and ``selected`` are outputs for the host: they tell the LXE which clusters hold how
many tokens and which ones were selected (the fetch covers only the offloaded members of the
selected clusters), and they let a co-simulation compare every stage with the model.

Context port: the image (header, the HCU's image, the KVMU's), the checks of a restore, what a
restore that fails does and the cycles are the frame twin's (:mod:`model.twins.dre`, "Context
port"). *Save*: the header words come from registers loaded in the command's cycle: the HCU's
word count from the clusters opened, the KVMU's from the clusters, its pages allocated and its
window tokens, which the top follows (the pages from the stored moves: pages are handed out in
order, so the page after the highest a move reaches; the window from the tokens per problem),
as the KVMU does not show its registers; the blocks' save commands go out together, their
pipelines fill while the header goes out, then ``context_out`` passes the HCU's words, then the
KVMU's (with its ``last``). *Restore*: the header words are checked as they come (one
comparison a word, the result registered); then the blocks' restore commands together, and
``context_in`` is passed to the HCU's ``restore`` for ``H`` words and to the KVMU's for ``K``
(``last`` set by the top at the counts; zero words once the image ended early); the KVMU's
header words and the HCU's first word are kept, and in the decide cycle the top takes the
KVMU's registers from them (or restarts: a reset pulse to the HCU and the restart flag on the
KVMU's command, as a restart command does). Every added path starts at a register or a block's
output register: the stream muxes and the per-word comparisons are the logic added.

Restart and reset: a restart command resets the HCU (its counters; the table memory keeps stale
words that are never read) through a ``ResetInserter`` in the command's cycle, and the KVMU
empties its context on the restart flag of its own command; the WTU and the packer keep no
state between problems. A reset of the top empties everything: no context is on chip, so the
next command must be a restart (a continue is rejected).

Ports (``lib.stream``; payload layouts below)
---------------------------------------------
``cmd`` (in), ``context_in`` (in, a restore's image), ``context_out`` (out, a save's image),
``hashes`` (in, one per new token), ``assignments`` (out, one per new token),
``scores`` (in, ``rows x ceil(N / wtu_lanes)`` beats in the WTU's format), ``moves`` (out, the
KVMU's offload moves, ``last`` on the final one), ``counts`` (out, ``N`` beats), ``selected``
(out, the selected cluster ids, ascending, or one ``empty`` beat), ``fetch`` (out, descriptors,
``last`` on the final one), ``status`` (out, one beat per command, after the command's last
beat on every other output: a problem's last move and last selected beat included, which the
KVMU does not wait for, so a host that stalls ``moves`` or ``selected`` past the last fetch
descriptor delays the status).

Status beat
-----------
``cycles``: from the command's transfer to the cycle the status beat is first offered, both
included (without a stall on ``status``, its transfer); a rejected command takes 2.
``hcu_cycles``: the cycles from the command's to the last assignment's transfer, the command's
excluded (the twin's ``hcu`` phase); ``wtu_cycles``: the cycles in which the KVMU is ready for a
``selected`` beat that is not there (the twin's ``wtu`` phase: it waits for the WTU);
``kvmu_cycles``: the other cycles from the KVMU's command to the last descriptor's transfer (the
twin's ``kvmu``). Without stalls ``cycles = 2 + hcu_cycles + kvmu_cycles + wtu_cycles``.
``stall``: per port, the cycles of the problem (after the command's transfer, before the status
beat) in which an output offered a beat (``valid``) that was not taken (``ready`` low), or in
which the top was ready for an input (``ready``) that offered nothing (``valid`` low). All are
0 when nothing stalls; the counters saturate at ``2**STATUS_COUNTER_BITS - 1``.
``context_words``: the words moved on ``context_in`` or ``context_out``. Flags:
``rejected`` (nothing else happened, nothing was read, the context is unchanged),
``hcu_overflow`` (a token of the frame found no cluster id: it was assigned to cluster 0,
counted and stored there, never lost), ``store_full`` (the store had no page for a token since
the context's restart; sticky), ``context_invalid`` and ``context_refused`` (a restore ran the
problem on an empty context: the image was not a saved context of the command's stream, or a
block refused its part; :mod:`model.twins.dre`, "Context port"). ``cycles`` includes a
restore's or a save's cycles; without stalls ``cycles = 2 + context + hcu_cycles +
kvmu_cycles + wtu_cycles``.

Latency and throughput
----------------------
Without stalls a command takes the frame twin's cycles (:mod:`model.twins.dre`, "Cycle
model" and "Context port": a restore adds its positions + :attr:`restore_extra_cycles` +
:attr:`restore_decide_cycles`; a save is :attr:`context_start_cycles` + its words between
the command's and the status's cycles). A problem:
:attr:`~DynamicRetrievalEngine.command_cycles` (1) + the HCU's frame +
:attr:`~DynamicRetrievalEngine.handoff_cycles` (0: the KVMU's command goes out in the cycle
after the last assignment) + the KVMU's problem + the cycles the KVMU waits for the selection
(the count packer's :attr:`~hw.count_packer.CountPacker.latency`, the WTU's rows and aggregate up
to each selected beat it waits for; :attr:`~DynamicRetrievalEngine.empty_select_cycles` without
rows) + :attr:`~DynamicRetrievalEngine.status_cycles` (1). The next command is taken in the
cycle after the status beat's transfer. One problem is in the top at a time (the blocks' phases do
not overlap): throughput is one problem per ``cycles``.
"""

from amaranth.hdl import Array, Cat, Const, Module, Mux, ResetInserter, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from hw.component import ConfiguredComponent
from hw.context_port import WORD_BITS, ContextOp, context_word_layout, item_words
from hw.count_packer import CountPacker
from hw.hcu import HashClusterUnit
from hw.kvmu import (KVManagementUnit, cluster_word_layout, context_header_layout, count_layout,
                     move_layout, select_layout)
from hw.retrieval_buffer import descriptor_layout
from hw.wtu import WiCSumThresholdUnit, WTULayouts

__all__ = ["LAYER_BITS", "KV_HEAD_BITS", "FRAME_BITS", "MODE_BITS", "MODE_CONTINUE",
           "MODE_RESTART", "MODE_RESTORE", "MODE_SAVE", "CONTEXT_MAGIC", "CONTEXT_HEADER_WORDS",
           "STATUS_COUNTER_BITS", "STALL_PORTS", "command_layout", "hash_layout",
           "assignment_layout", "status_layout", "largest_images", "DynamicRetrievalEngine"]

#: Widths of the command's identifying fields (Llama-3-8B: 32 layers, 8 KV heads).
LAYER_BITS = 5
KV_HEAD_BITS = 3
FRAME_BITS = 16
#: The command's ``mode``: 0 continues the stream on chip, 1 restarts, 2 restores the command's
#: context from ``context_in`` and continues it, 3 saves the context on chip to
#: ``context_out``.
MODE_BITS = 2
MODE_CONTINUE = 0
MODE_RESTART = 1
MODE_RESTORE = 2
MODE_SAVE = 3
#: Bits 16-31 of a context image's first word, and the image's header words (magic, layer and
#: KV head; frame; the HCU's words; the KVMU's words).
CONTEXT_MAGIC = 0xD2E1
CONTEXT_HEADER_WORDS = 4
#: Width of the status beat's cycle and stall counters (saturating).
STATUS_COUNTER_BITS = 32
#: The ports whose stall cycles the status beat counts, inputs first (the first three).
STALL_PORTS = ("hashes", "scores", "context_in", "assignments", "moves", "counts", "selected",
               "fetch", "context_out")
_INPUT_PORTS = 3


def _bits(value):
    return max(1, int(value).bit_length())


def command_layout(config):
    """Payload of ``cmd``: ``layer``, ``kv_head``, ``frame``, ``new_tokens`` (valid: 1 to
    ``max_frame_tokens``), ``rows`` (valid: 0 to ``max_rows``), ``mode``."""
    return data.StructLayout({
        "layer": LAYER_BITS, "kv_head": KV_HEAD_BITS, "frame": FRAME_BITS,
        "new_tokens": _bits(config.max_frame_tokens), "rows": _bits(config.max_rows),
        "mode": MODE_BITS})


def hash_layout(config):
    """Payload of ``hashes``: one token's ``hash`` (``hash_bits``)."""
    return data.StructLayout({"hash": config.hash_bits})


def assignment_layout(config):
    """Payload of ``assignments``: ``cluster``, ``new`` (it opened the cluster), ``overflow``
    (no cluster id was left: assigned to cluster 0)."""
    return data.StructLayout({"cluster": config.cluster_id_bits, "new": 1, "overflow": 1})


def status_layout(config):
    """Payload of ``status`` (see the module docstring): ``cycles``, ``hcu_cycles``,
    ``kvmu_cycles``, ``wtu_cycles``, ``stall`` (one counter per port of :data:`STALL_PORTS`),
    ``context_words``, ``rejected``, ``hcu_overflow``, ``store_full``, ``context_invalid``,
    ``context_refused``."""
    return data.StructLayout({
        "cycles": STATUS_COUNTER_BITS, "hcu_cycles": STATUS_COUNTER_BITS,
        "kvmu_cycles": STATUS_COUNTER_BITS, "wtu_cycles": STATUS_COUNTER_BITS,
        "stall": data.StructLayout({port: STATUS_COUNTER_BITS for port in STALL_PORTS}),
        "context_words": STATUS_COUNTER_BITS,
        "rejected": 1, "hcu_overflow": 1, "store_full": 1, "context_invalid": 1,
        "context_refused": 1})


def _pages(config):
    return (1 << config.kv_token_bits) // config.kvmu_page_tokens


def _image_words(config):
    """Per-item words of the blocks' images: the HCU's header and hash; the KVMU's header,
    table item, page pointer and window token."""
    return {"hcu_header": item_words(config.cluster_id_bits + 1),
            "hash": item_words(config.hash_bits),
            "kvmu_header": item_words(context_header_layout(config).size),
            "cluster": item_words(cluster_word_layout(config).size),
            "page": item_words(_bits(_pages(config) - 1)),
            "token": item_words(config.cluster_id_bits)}


def largest_images(config):
    """Words of the HCU's and the KVMU's largest context images, ``(H, K)``: a full table
    behind the HCU's header; ``max_clusters`` table items, every page's pointer and
    ``recent_window + max_frame_tokens`` window tokens behind the KVMU's header."""
    words = _image_words(config)
    return (words["hcu_header"] + config.hash_mem_entries * words["hash"],
            words["kvmu_header"] + config.max_clusters * words["cluster"]
            + _pages(config) * words["page"]
            + (config.recent_window + config.max_frame_tokens) * words["token"])


def _fork(m, name, source_valid, source_ready, sinks):
    """Give every beat of a source to each of ``sinks`` (``(valid, ready)`` pairs) exactly once.

    A sink that took the beat is marked done until the source moves on, so each sink sees a
    proper stream (``valid`` held until taken, never depending on its own ``ready``); the
    source moves when every sink has taken the beat or takes it in this cycle."""
    done = [Signal(name=f"{name}_done{index}") for index in range(len(sinks))]
    m.d.comb += source_ready.eq(Cat(d | ready for d, (_, ready) in zip(done, sinks)).all())
    for d, (valid, ready) in zip(done, sinks):
        m.d.comb += valid.eq(source_valid & ~d)
        with m.If(source_valid & source_ready):
            m.d.sync += d.eq(0)
        with m.Elif(valid & ready):
            m.d.sync += d.eq(1)


class DynamicRetrievalEngine(ConfiguredComponent):
    """The DRE top: token hashes and score rows in, assignments, moves and fetch descriptors out.

    Parameters
    ----------
    config : DREConfig

    Members
    -------
    cmd : In(stream.Signature(command_layout(config)))
    hashes : In(stream.Signature(hash_layout(config)))
    assignments : Out(stream.Signature(assignment_layout(config)))
    scores : In(stream.Signature(WTULayouts(config).scores))
    moves : Out(stream.Signature(hw.kvmu.move_layout(config)))
    counts : Out(stream.Signature(hw.kvmu.count_layout(config)))
    selected : Out(stream.Signature(hw.kvmu.select_layout(config)))
    fetch : Out(stream.Signature(hw.retrieval_buffer.descriptor_layout(config)))
    status : Out(stream.Signature(status_layout(config)))
    context_in : In(stream.Signature(hw.context_port.context_word_layout()))
        A restore's image (``mode = 2``), ``last`` on its final word.
    context_out : Out(stream.Signature(hw.context_port.context_word_layout()))
        A save's image (``mode = 3``), ``last`` on its final word.

    Raises
    ------
    TypeError
        If ``config`` is not a :class:`DREConfig`.
    ValueError
        If ``wtu_lanes`` exceeds ``max_clusters // 2`` (the WTU's limit, see
        :class:`hw.wtu.WiCSumThresholdUnit`).
    """

    #: Cycles of the command beat (taken and checked; a rejected one goes to its status).
    command_cycles = 1
    #: Cycles from the last assignment's transfer to the KVMU's command (it goes out next cycle).
    handoff_cycles = 0
    #: With ``rows = 0``: cycles from the KVMU's last count to the empty selection it takes.
    empty_select_cycles = 1
    #: Cycles of the status beat.
    status_cycles = 1
    #: Cycles of a save before its first word (the blocks' save commands).
    context_start_cycles = 1
    #: Cycles of a restore beyond its positions (header, body and dropped words): the blocks'
    #: restore commands, the check of their last word.
    restore_extra_cycles = 2
    #: Cycles of a restore after that: the choice of the restored context or a restart.
    restore_decide_cycles = 1

    def _members(self, config):
        # The WTU's own check, here so that it comes at construction (the WTU is built in
        # elaborate(), so that a top built only for its ports leaves no unused block behind).
        if config.wtu_lanes > config.max_clusters // 2:
            raise ValueError(f"wtu_lanes must be at most max_clusters // 2 "
                             f"({config.max_clusters // 2}), not {config.wtu_lanes!r}")
        return {
            "cmd": In(stream.Signature(command_layout(config))),
            "hashes": In(stream.Signature(hash_layout(config))),
            "assignments": Out(stream.Signature(assignment_layout(config))),
            "scores": In(stream.Signature(WTULayouts(config).scores)),
            "moves": Out(stream.Signature(move_layout(config))),
            "counts": Out(stream.Signature(count_layout(config))),
            "selected": Out(stream.Signature(select_layout(config))),
            "fetch": Out(stream.Signature(descriptor_layout(config))),
            "status": Out(stream.Signature(status_layout(config))),
            "context_in": In(stream.Signature(context_word_layout())),
            "context_out": Out(stream.Signature(context_word_layout())),
        }

    def elaborate(self, platform):
        # Design rationale in the module docstring.
        config = self._config
        m = Module()
        hcu_restart = Signal()
        m.submodules.hcu = ResetInserter({"sync": hcu_restart})(hcu := HashClusterUnit(config))
        m.submodules.kvmu = kvmu = KVManagementUnit(config)
        m.submodules.wtu = wtu = WiCSumThresholdUnit(config)
        m.submodules.packer = packer = CountPacker(config)
        m.submodules.fifo = fifo = SyncFIFOBuffered(width=config.cluster_id_bits + 1,
                                                    depth=config.max_frame_tokens)

        # The context on chip: the stream's identity and sticky flag, the clusters opened.
        has_context = Signal()
        context_layer = Signal(LAYER_BITS)
        context_head = Signal(KV_HEAD_BITS)
        context_frame = Signal(FRAME_BITS)
        store_full = Signal()
        clusters = Signal(range(config.max_clusters + 1))
        # What a save's header needs of the KVMU's context registers, followed here: its
        # pages allocated and its window tokens (given, not yet offloaded).
        window = config.recent_window
        next_page = Signal(range(_pages(config) + 1))
        window_tokens = Signal(range(window + config.max_frame_tokens + 1))
        # The problem.
        hashes_left = Signal(range(config.max_frame_tokens + 1))
        assignments_left = Signal(range(config.max_frame_tokens + 1))
        new_tokens = Signal(range(config.max_frame_tokens + 1))
        rows = Signal(range(config.max_rows + 1))
        # ``rows == 0``, a register set with ``rows``: it gates the selection's handshake with
        # the WTU, on the path from the KVMU's ``selected.ready`` into the WTU's queue.
        rows_zero = Signal(init=1)
        restart = Signal()
        kvmu_cmd_done = Signal()
        # The WTU's problem beat is offered (a register, set on entering START with rows and
        # cleared when the WTU takes it): the WTU's sequencer takes it without decoding the
        # top's state.
        wtu_problem_pending = Signal()
        empty_pending = Signal()
        status = self.status.payload
        busy = Signal()          # between the command's transfer and the status beat

        # Stall counters and the cycle counter, saturating.
        def count_up(counter, condition):
            with m.If(condition & (counter != (1 << STATUS_COUNTER_BITS) - 1)):
                m.d.sync += counter.eq(counter + 1)

        stalled = {}
        for port in STALL_PORTS[:_INPUT_PORTS]:
            stalled[port] = getattr(self, port).ready & ~getattr(self, port).valid
        for port in STALL_PORTS[_INPUT_PORTS:]:
            stalled[port] = getattr(self, port).valid & ~getattr(self, port).ready
        waiting = kvmu.selected.ready & ~kvmu.selected.valid
        with m.If(busy):
            count_up(status.cycles, 1)
            for port in STALL_PORTS:
                count_up(status.stall[port], stalled[port])
            count_up(status.context_words,
                     (self.context_in.valid & self.context_in.ready)
                     | (self.context_out.valid & self.context_out.ready))

        # Hashes into the HCU while the frame's are due (in the HCU phase: not in a restore).
        hashing = Signal()
        taking_hashes = hashing & (hashes_left != 0)
        m.d.comb += [hcu.i.valid.eq(self.hashes.valid & taking_hashes),
                     self.hashes.ready.eq(hcu.i.ready & taking_hashes),
                     hcu.i.payload.hash.eq(self.hashes.payload.hash),
                     hcu.i.payload.last.eq(hashes_left == 1)]
        with m.If(hcu.i.valid & hcu.i.ready):
            m.d.sync += hashes_left.eq(hashes_left - 1)

        # Assignments: to the LXE and into the FIFO (the KVMU's).
        _fork(m, "assignment", hcu.o.valid, hcu.o.ready,
              [(self.assignments.valid, self.assignments.ready),
               (fifo.w_en, fifo.w_rdy)])
        m.d.comb += [self.assignments.payload.cluster.eq(hcu.o.payload.cluster),
                     self.assignments.payload.new.eq(hcu.o.payload.new),
                     self.assignments.payload.overflow.eq(hcu.o.payload.overflow),
                     fifo.w_data.eq(Cat(hcu.o.payload.cluster, hcu.o.payload.new))]
        assignment_taken = hcu.o.valid & hcu.o.ready
        with m.If(assignment_taken):
            m.d.sync += [assignments_left.eq(assignments_left - 1),
                         clusters.eq(clusters + hcu.o.payload.new)]
            with m.If(hcu.o.payload.overflow):
                m.d.sync += status.hcu_overflow.eq(1)
        m.d.comb += [kvmu.assign.valid.eq(fifo.r_rdy), fifo.r_en.eq(kvmu.assign.ready),
                     kvmu.assign.payload.cluster.eq(fifo.r_data[:config.cluster_id_bits]),
                     kvmu.assign.payload.new.eq(fifo.r_data[-1])]

        # Moves and fetch descriptors: the KVMU's, as they are.
        wiring.connect(m, kvmu.moves, wiring.flipped(self.moves))
        wiring.connect(m, kvmu.fetch, wiring.flipped(self.fetch))
        moves_end = self.moves.valid & self.moves.ready & self.moves.payload.last
        moves_open = Signal()    # the problem's last move is not taken yet
        with m.If(moves_end):
            m.d.sync += [store_full.eq(self.moves.payload.full),
                         status.store_full.eq(self.moves.payload.full), moves_open.eq(0)]
        # The KVMU's pages allocated (for a save's header): pages are handed out in order, so
        # the page after the highest one a stored move reaches.
        move = self.moves.payload
        move_end_page = Signal.like(next_page)
        m.d.comb += move_end_page.eq(
            ((move.dst + move.length - 1) >> (config.kvmu_page_tokens.bit_length() - 1)) + 1)
        with m.If(self.moves.valid & self.moves.ready & ~move.dropped & (move.length != 0)
                  & (move_end_page > next_page)):
            m.d.sync += next_page.eq(move_end_page)

        # Counts: to the count packer (or, without rows, nowhere) and to the host.
        count_sink_valid, count_sink_ready = Signal(), Signal()
        _fork(m, "count", kvmu.counts.valid, kvmu.counts.ready,
              [(count_sink_valid, count_sink_ready), (self.counts.valid, self.counts.ready)])
        m.d.comb += [packer.i.valid.eq(count_sink_valid & ~rows_zero),
                     count_sink_ready.eq(rows_zero | packer.i.ready),
                     packer.i.payload.eq(kvmu.counts.payload),
                     self.counts.payload.eq(kvmu.counts.payload)]
        with m.If(rows_zero & kvmu.counts.valid & kvmu.counts.ready & kvmu.counts.payload.last):
            m.d.sync += empty_pending.eq(1)
        wiring.connect(m, packer.o, wtu.counts)
        wiring.connect(m, wiring.flipped(self.scores), wtu.scores)
        m.d.comb += [wtu.stats.ready.eq(1), wtu.row_mask.ready.eq(1)]

        # Selection: the WTU's (or, without rows, the empty one) to the KVMU and to the host.
        selection_valid, selection_ready = Signal(), Signal()
        _fork(m, "selection", selection_valid, selection_ready,
              [(kvmu.selected.valid, kvmu.selected.ready),
               (self.selected.valid, self.selected.ready)])
        selection = Signal(select_layout(config))
        m.d.comb += [
            selection_valid.eq(Mux(rows_zero, empty_pending, wtu.selected.valid)),
            wtu.selected.ready.eq(selection_ready & ~rows_zero),
            selection.cluster.eq(Mux(rows_zero, 0, wtu.selected.payload.cluster)),
            selection.empty.eq(rows_zero | wtu.selected.payload.empty),
            selection.last.eq(rows_zero | wtu.selected.payload.last),
            kvmu.selected.payload.eq(selection), self.selected.payload.eq(selection),
        ]
        with m.If(rows_zero & selection_valid & selection_ready):
            m.d.sync += empty_pending.eq(0)
        selection_end = selection_valid & selection_ready & selection.last
        selection_open = Signal()    # the problem's last selected beat is not taken by both
        with m.If(selection_end):
            m.d.sync += selection_open.eq(0)
        # The host still holds the problem's last move or last selected beat after this cycle.
        beats_held = (moves_open & ~moves_end) | (selection_open & ~selection_end)

        command = self.cmd.payload
        is_save = command.mode == MODE_SAVE
        is_restart = command.mode == MODE_RESTART
        sizes_ok = ((command.new_tokens >= 1) & (command.new_tokens <= config.max_frame_tokens)
                    & (command.rows <= config.max_rows))
        in_range = is_save | sizes_ok
        same_stream = (has_context & (command.layer == context_layer)
                       & (command.kv_head == context_head))
        continues = same_stream & (command.frame > context_frame)
        accepted = in_range & Mux(command.mode == MODE_CONTINUE, continues,
                                  Mux(is_save, same_stream, 1))
        # What ``accepted`` is for a restart, written as such: the HCU's reset in the command's
        # cycle then does not wait for the context's checks (the frame's comparison), which a
        # restart ignores.
        restart_command = is_restart & sizes_ok

        # The context port (module docstring, "Context port").
        words = _image_words(config)
        most_hcu, most_kvmu = largest_images(config)
        header_index = Signal(range(CONTEXT_HEADER_WORDS))
        header_bad = Signal()
        ended = Signal()                 # the restore's last word was taken
        length_bad = Signal()
        image_hcu = Signal(range(most_hcu + 1))
        image_kvmu = Signal(range(most_kvmu + 1))
        position = Signal(range(most_hcu + most_kvmu + 1))
        hcu_end = Signal.like(position)
        body_end = Signal.like(position)
        restored_opened = Signal(config.cluster_id_bits + 1)
        kvmu_header_bits = context_header_layout(config).size
        kvmu_header_words = Signal(WORD_BITS * words["kvmu_header"])
        kvmu_header_left = Signal(range(words["kvmu_header"] + 1))
        restored = data.View(context_header_layout(config),
                             kvmu_header_words[:kvmu_header_bits])
        save_header = Array(Signal(WORD_BITS, name=f"save_header{index}")
                            for index in range(CONTEXT_HEADER_WORDS))
        hcu_ctx_done, kvmu_ctx_done = Signal(), Signal()

        word_in = self.context_in.payload.word
        first_word = Cat(context_layer, context_head,
                         Const(0, 16 - LAYER_BITS - KV_HEAD_BITS), Const(CONTEXT_MAGIC, 16))
        header_ok = Signal()
        with m.Switch(header_index):
            with m.Case(0):
                m.d.comb += header_ok.eq(word_in == first_word)
            with m.Case(1):
                m.d.comb += header_ok.eq(word_in < context_frame)
            with m.Case(2):
                m.d.comb += header_ok.eq((word_in >= 1) & (word_in <= most_hcu))
            with m.Case(3):
                m.d.comb += header_ok.eq((word_in >= 1) & (word_in <= most_kvmu))
        taken_in = self.context_in.valid & self.context_in.ready

        def start_blocks(op, proceed):
            """Offer the HCU's and the KVMU's context commands (``op``) until both are taken;
            ``proceed`` runs in the cycle the second one is."""
            m.d.comb += [hcu.ctx.valid.eq(~hcu_ctx_done), hcu.ctx.payload.op.eq(op),
                         kvmu.cmd.valid.eq(~kvmu_ctx_done), kvmu.cmd.payload.context.eq(op)]
            hcu_done = hcu_ctx_done | hcu.ctx.ready
            kvmu_done = kvmu_ctx_done | kvmu.cmd.ready
            with m.If(hcu_done & kvmu_done):
                m.d.sync += [hcu_ctx_done.eq(0), kvmu_ctx_done.eq(0)]
                proceed()
            with m.Else():
                m.d.sync += [hcu_ctx_done.eq(hcu_done), kvmu_ctx_done.eq(kvmu_done)]

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.cmd.ready.eq(1)
                with m.If(self.cmd.valid):
                    m.d.comb += hcu_restart.eq(restart_command)
                    # The status counts this cycle and its own.
                    m.d.sync += [status.cycles.eq(self.command_cycles + self.status_cycles),
                                 status.rejected.eq(~accepted), status.hcu_overflow.eq(0),
                                 status.store_full.eq(store_full),
                                 status.context_invalid.eq(0), status.context_refused.eq(0),
                                 status.context_words.eq(0)]
                    m.d.sync += [status.stall[port].eq(0) for port in STALL_PORTS]
                    m.d.sync += [status.hcu_cycles.eq(0), status.kvmu_cycles.eq(0),
                                 status.wtu_cycles.eq(0)]
                    with m.If(accepted & is_save):
                        # The header: the HCU's words from the clusters opened, the KVMU's
                        # from its context registers (followed here).
                        live = Mux(clusters > config.hash_mem_entries, config.hash_mem_entries,
                                   clusters)
                        m.d.sync += [
                            save_header[0].eq(first_word), save_header[1].eq(context_frame),
                            save_header[2].eq(words["hcu_header"] + live * words["hash"]),
                            save_header[3].eq(words["kvmu_header"] + clusters * words["cluster"]
                                              + next_page * words["page"]
                                              + window_tokens * words["token"]),
                            busy.eq(1)]
                        m.next = "SAVE_START"
                    with m.Elif(accepted):
                        m.d.sync += [has_context.eq(1), context_layer.eq(command.layer),
                                     context_head.eq(command.kv_head),
                                     context_frame.eq(command.frame),
                                     hashes_left.eq(command.new_tokens),
                                     assignments_left.eq(command.new_tokens),
                                     new_tokens.eq(command.new_tokens),
                                     rows.eq(command.rows), rows_zero.eq(command.rows == 0),
                                     restart.eq(is_restart), busy.eq(1), moves_open.eq(1),
                                     selection_open.eq(1)]
                        with m.If(command.mode == MODE_RESTORE):
                            m.d.sync += [header_index.eq(0), header_bad.eq(0), ended.eq(0),
                                         length_bad.eq(0)]
                            m.next = "CTX_HEADER"
                        with m.Else():
                            held = Mux(is_restart | (window_tokens < window), window_tokens,
                                       window)
                            m.d.sync += window_tokens.eq(Mux(is_restart, 0, held)
                                                         + command.new_tokens)
                            with m.If(is_restart):
                                m.d.sync += [clusters.eq(0), next_page.eq(0)]
                            m.next = "HCU"
                    with m.Else():
                        m.next = "STATUS"

            # Restore: header, the blocks' commands, their words, the rest, the choice.
            with m.State("CTX_HEADER"):
                m.d.comb += self.context_in.ready.eq(1)
                with m.If(taken_in):
                    m.d.sync += header_index.eq(header_index + 1)
                    with m.If(~header_ok | (self.context_in.payload.last
                                            & (header_index != CONTEXT_HEADER_WORDS - 1))):
                        m.d.sync += header_bad.eq(1)
                    with m.If(header_index == 2):
                        m.d.sync += image_hcu.eq(word_in)
                    with m.If(header_index == 3):
                        m.d.sync += image_kvmu.eq(word_in)
                    with m.If(self.context_in.payload.last):
                        m.d.sync += ended.eq(1)
                    with m.If(self.context_in.payload.last
                              | (header_index == CONTEXT_HEADER_WORDS - 1)):
                        m.next = "CTX_START"
            with m.State("CTX_START"):
                def to_body():
                    m.d.sync += [position.eq(0), hcu_end.eq(image_hcu - 1),
                                 body_end.eq(image_hcu + image_kvmu - 1),
                                 kvmu_header_left.eq(words["kvmu_header"])]
                    m.next = "CTX_BODY"
                with m.If(header_bad):
                    m.next = "CTX_DRAIN"
                    with m.If(ended):
                        m.next = "CTX_SETTLE"
                with m.Else():
                    start_blocks(ContextOp.RESTORE, to_body)
            with m.State("CTX_BODY"):
                # Position p goes to the HCU (p < H) or the KVMU; zeros once the image ended.
                in_hcu = position <= hcu_end
                offered = ended | self.context_in.valid
                word = Mux(ended, 0, word_in)
                sink_ready = Mux(in_hcu, hcu.restore.ready, kvmu.restore.ready)
                step = offered & sink_ready
                m.d.comb += [hcu.restore.valid.eq(offered & in_hcu),
                             kvmu.restore.valid.eq(offered & ~in_hcu),
                             hcu.restore.payload.word.eq(word),
                             kvmu.restore.payload.word.eq(word),
                             hcu.restore.payload.last.eq(position == hcu_end),
                             kvmu.restore.payload.last.eq(position == body_end),
                             self.context_in.ready.eq(~ended & sink_ready)]
                with m.If(step):
                    m.d.sync += position.eq(position + 1)
                    with m.If(position == 0):
                        m.d.sync += restored_opened.eq(word)
                    with m.If(~in_hcu & (kvmu_header_left != 0)):
                        m.d.sync += [kvmu_header_words.eq(Cat(kvmu_header_words[WORD_BITS:],
                                                              word)),
                                     kvmu_header_left.eq(kvmu_header_left - 1)]
                    image_ends = taken_in & self.context_in.payload.last
                    with m.If(image_ends):
                        m.d.sync += ended.eq(1)
                    with m.If(image_ends & (position != body_end)):
                        m.d.sync += length_bad.eq(1)
                    with m.If(position == body_end):
                        with m.If(ended | image_ends):
                            m.next = "CTX_SETTLE"
                        with m.Else():
                            m.d.sync += length_bad.eq(1)
                            m.next = "CTX_DRAIN"
            with m.State("CTX_DRAIN"):
                # Words after the image's (or after an invalid header) up to ``last``.
                m.d.comb += self.context_in.ready.eq(1)
                with m.If(taken_in & self.context_in.payload.last):
                    m.next = "CTX_SETTLE"
            with m.State("CTX_SETTLE"):
                # The blocks check their last word.
                m.next = "CTX_DECIDE"
            with m.State("CTX_DECIDE"):
                refused = ~header_bad & (hcu.context_refused | kvmu.context_refused)
                invalid = (header_bad | length_bad
                           | (~refused & (restored_opened != restored.clusters)))
                empty = invalid | refused
                m.d.comb += hcu_restart.eq(empty)
                held = Mux(restored.window_tokens < window, restored.window_tokens, window)
                m.d.sync += [status.context_invalid.eq(invalid),
                             status.context_refused.eq(refused), restart.eq(empty),
                             clusters.eq(Mux(empty, 0, restored.clusters)),
                             next_page.eq(Mux(empty, 0, restored.next_page)),
                             window_tokens.eq(Mux(empty, 0, held) + new_tokens)]
                m.next = "HCU"

            with m.State("HCU"):
                m.d.comb += hashing.eq(1)
                count_up(status.hcu_cycles, 1)
                with m.If(assignment_taken & (assignments_left == 1)):
                    m.d.sync += wtu_problem_pending.eq(~rows_zero)
                    m.next = "START"
            with m.State("START"):
                # The KVMU's command and the WTU's problem beat (none without rows).
                count_up(status.kvmu_cycles, 1)
                m.d.comb += [kvmu.cmd.valid.eq(~kvmu_cmd_done),
                             kvmu.cmd.payload.new_tokens.eq(new_tokens),
                             kvmu.cmd.payload.restart.eq(restart),
                             wtu.problem.valid.eq(wtu_problem_pending),
                             wtu.problem.payload.clusters_minus_one.eq(clusters - 1),
                             wtu.problem.payload.rows_minus_one.eq(rows - 1)]
                kvmu_done = kvmu_cmd_done | kvmu.cmd.ready
                wtu_done = ~wtu_problem_pending | wtu.problem.ready
                with m.If(kvmu_done & wtu_done):
                    m.d.sync += [kvmu_cmd_done.eq(0), wtu_problem_pending.eq(0)]
                    m.next = "RUN"
                with m.Else():
                    m.d.sync += [kvmu_cmd_done.eq(kvmu_done), wtu_problem_pending.eq(~wtu_done)]
            with m.State("RUN"):
                count_up(status.kvmu_cycles, ~waiting)
                count_up(status.wtu_cycles, waiting)
                with m.If(self.fetch.valid & self.fetch.ready & self.fetch.payload.last):
                    with m.If(beats_held):
                        m.next = "DRAIN"
                    with m.Else():
                        m.d.sync += busy.eq(0)
                        m.next = "STATUS"
            with m.State("DRAIN"):
                # The host still stalls the problem's last move or last selected beat (the
                # KVMU went on without them): the status waits for both.
                with m.If(~beats_held):
                    m.d.sync += busy.eq(0)
                    m.next = "STATUS"

            # Save: the blocks' commands, the header, the HCU's image, the KVMU's.
            with m.State("SAVE_START"):
                def to_header():
                    m.d.sync += header_index.eq(0)
                    m.next = "SAVE_HEADER"
                start_blocks(ContextOp.SAVE, to_header)
            with m.State("SAVE_HEADER"):
                m.d.comb += [self.context_out.valid.eq(1),
                             self.context_out.payload.word.eq(save_header[header_index])]
                with m.If(self.context_out.ready):
                    m.d.sync += header_index.eq(header_index + 1)
                    with m.If(header_index == CONTEXT_HEADER_WORDS - 1):
                        m.next = "SAVE_HCU"
            with m.State("SAVE_HCU"):
                m.d.comb += [self.context_out.valid.eq(hcu.save.valid),
                             self.context_out.payload.word.eq(hcu.save.payload.word),
                             hcu.save.ready.eq(self.context_out.ready)]
                with m.If(hcu.save.valid & hcu.save.ready & hcu.save.payload.last):
                    m.next = "SAVE_KVMU"
            with m.State("SAVE_KVMU"):
                m.d.comb += [self.context_out.valid.eq(kvmu.save.valid),
                             self.context_out.payload.eq(kvmu.save.payload),
                             kvmu.save.ready.eq(self.context_out.ready)]
                with m.If(kvmu.save.valid & kvmu.save.ready & kvmu.save.payload.last):
                    m.d.sync += busy.eq(0)
                    m.next = "STATUS"

            with m.State("STATUS"):
                m.d.comb += self.status.valid.eq(1)
                with m.If(self.status.ready):
                    m.next = "IDLE"
        return m
