"""KV management unit (KVMU) of the DRE: the layout of one (layer, KV head) context.

Per frame (one *problem*) the KVMU offloads the tokens that leave the recent window to the
external store and says where they went (move descriptors), takes the frame's cluster
assignments from the HCU, hands the WTU the token count of every cluster, and turns the WTU's
selected clusters into fetch descriptors ``(base, length)`` of the store. The bit-exact contract
and the cycle model are in :mod:`model.twins.kvmu`; the two are equal, outputs and cycles.

Design rationale: a linked list of pages per cluster
----------------------------------------------------
The paper stores a cluster's tokens at contiguous addresses so that one transfer fetches a
whole cluster, and reorders the store as clusters grow. A cluster grows for the whole stream
(VideoLLM-online never evicts), so any fixed contiguous slot is eventually outgrown and must be
moved, and the moves grow with the cluster: reorder traffic without bound. Here the store is
cut into pages of ``P = kvmu_page_tokens`` tokens; each cluster owns a list of pages, allocated
on demand from a bump pointer and never moved or freed (until the stream restarts):

* *no reorder traffic*: every offloaded token is written once, where it stays;
* *bounded fragmentation*: at most ``P - 1`` unused slots per cluster (its tail page);
* *descriptors*: one per run of consecutive pages of a selected cluster (one per page at
  worst, ``ceil(tokens / P)``); pages of clusters that grow together interleave, so ``P``
  trades descriptors (larger ``P``: fewer) against unused slots (larger ``P``: more);
* *state*: a few pointers per cluster and one per page, no per-token table.

Measured (``make bench``, section ``kvmu``: ``edge``, four 480-frame (layer, KV head) streams of
the ``default`` workload; ``make synth``): 2.77 fetch descriptors per selected cluster (13.4
tokens each); 5552 B offloaded per frame (10.8 tokens of 512 B), 0 B of reorder traffic; 8.1
unused slots per cluster (16.7 % of the allocated slots); 240 cycles per frame on average;
235063 bits of state per context, 4556 GE of logic beside 235008 SRAM bits. Pages of 1, 4, 16, 64
tokens give 32.8, 9.3, 2.8, 1.3 descriptors per selected cluster against 0, 1.6, 8.1, 42.1 unused
slots per cluster: 16 balances the two. The state is dominated by the cluster table (its
``count`` duplicates the WTU's count memory, which a composed top could share) and the page
pointers.

On-chip state (all of one context; the context port moves its live part)
------------------------------------------------------------------------
With ``C = max_clusters``, ``G = 2**kv_token_bits / P`` pages, ``g = log2(G)`` (at least 1),
``R = recent_window + max_frame_tokens``:

* ``cluster_table`` memory, ``C`` words of ``2 g + bits(P) + count_bits``: per cluster the
  ``head`` and ``tail`` pages, ``fill`` (0: nothing offloaded yet, else the tokens in the tail
  page, 1 to ``P``; the offloaded count modulo the page, all the layout needs) and ``count``
  (members so far, saturated at ``max_count``: the WTU's count);
* ``page_next`` memory, ``G`` words of ``g`` bits: the page that follows each page in its list;
* ``ring`` memory, ``R`` words of ``cluster_id_bits``: the cluster of the last ``R`` tokens
  (the window plus the current frame), read when a token leaves the window;
* registers: ``clusters`` (``cluster_id_bits + 1``), ``window_tokens`` (tokens given and not
  yet offloaded, ``bits(R)``), the ring's read and write pointers and the window slot of the
  next leaving token (``bits(R - 1)``, ``bits(R - 1)``, ``bits(W - 1)``), ``next_page``
  (``g + 1``), ``store_full`` (1). :meth:`KVManagementUnit.state_bits` counts them.

A restart (``cmd.restart``) or a reset empties the context by clearing the registers only: a
cluster's table word is initialised when the HCU opens it (``assign.new``: ``head = tail = 0``)
and a page's ``next`` is cleared in the step before the page is handed out (the table-read
cycle of a leaving token writes 0 to ``page_next[next_page]``) and set when the page is
linked, so no memory is ever cleared and the live state is a function of the stream alone.

Context port
------------
A ``cmd`` beat with ``context`` = save or restore moves the context through ``save`` and
``restore`` (:mod:`hw.context_port`; the image, its checks and its cycles are in
:mod:`model.twins.kvmu`, "Context port"): the header (the context registers), the opened
clusters' table words, the allocated pages' ``next`` pointers and the window tokens' clusters,
oldest first; the ring's pointers are not in the image (a restore puts the window tokens at
ring slots ``0 .. T - 1``). *Save* (state ``SAVE``): an :class:`~hw.context_port.ImageWalker`
steps through the image one word a cycle; the cluster table and ``page_next`` are read at the
walk's index and the ring at a save pointer from ``ring_read`` on, their data registered by a
:class:`~hw.context_port.SavePipeline`, which picks the word into the output register.
*Restore* (state ``RESTORE``): each word is registered on its transfer
(:class:`~hw.context_port.RestoreRegister`), then checked and, on an item's last word, written
(the header into the context registers). The range checks of every section are computed on the
word while it is taken and registered with it, so the registered word's verdict comes from
flip-flops. A refused image raises ``context_refused`` (in the cycle after the last word, as an
accepted image's verdict) until the next restore command or a reset, and clears the context
registers, as a restart does, in the next cycle (the first of ``IDLE``, whatever command it
takes: a command there sees the context empty). The clear's enable is a flip-flop, not the
checks: on the ECP5 that path (checks -> refusal -> every context register's multiplexer)
bounded the block.

Microarchitecture
-----------------
One finite-state machine walks the phases of a problem; the three memories have synchronous
read ports (SRAM macros), one read and one write port each. Offload: ``IDLE`` takes the command
and issues the ring read of the first leaving token, ``OFF_RING`` registers its cluster, then
per token ``OFF_READ`` reads its cluster's word and issues the next token's ring read,
``OFF_WORD`` registers both (every read of the cluster table is registered before
logic uses it: a macro's clock-to-output leaves too little of a 6 ns cycle),
``OFF_DECIDE`` registers the token's decision (new page or not, its address, whether it
continues the pending move: the update's enables start at flip-flops, for the FPGA) and
``OFF_UPDATE`` writes it back (a new page linked when the tail is full),
merges the move into the pending move descriptor and issues the next ring read; ``MOVE_FLUSH``
emits the pending move with ``last`` (a length-0 beat when nothing moved) and the sticky
``full`` flag. Assign: per token ``ASSIGN_READ`` takes the beat, writes the ring and reads the
word; ``ASSIGN_WORD`` registers it; ``ASSIGN_UPDATE`` writes it. A word is written in the
cycle before the next read of any
word, so no read ever sees a stale value. ``COUNT`` reads one count per cycle into the count
output register (a read whose register is stalled is held by the read port's enable).
Fetch: per selected beat ``SELECT`` takes it and reads the cluster's word, ``SELECT_WORD``
registers it, ``SELECT_HEAD`` starts its page walk (reads the head page's ``next``), and
``WALK`` hands the page to the :class:`hw.retrieval_buffer.DescriptorMerger` while the page's
``next`` pointer leaves the macro into the link register; ``WALK_LINK`` (every page but the
tail) reads the ``next`` of the linked page and makes it the page. The walk is a chain of
dependent reads, and a macro's (or a block RAM's) output never drives its own address: two
cycles per link, one page every two cycles. Every
output has a register; a stalled output holds the machine in the step that feeds it. Cycles per
problem without stalls: :func:`model.twins.kvmu.problem_cycles`; steps per token and per page
are :attr:`KVManagementUnit.cycles_per_offload`, :attr:`~KVManagementUnit.cycles_per_assign`,
:attr:`~KVManagementUnit.cycles_per_select`, :attr:`~KVManagementUnit.cycles_per_page`,
:attr:`~KVManagementUnit.cycles_per_link`.
"""

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hw.retrieval_buffer import DescriptorMerger, descriptor_layout
from hw.component import ConfiguredComponent
from hw.context_port import (WORD_BITS, ContextOp, ImageWalker, RestoreRegister, SavePipeline,
                             context_word_layout, item_words)

__all__ = ["command_layout", "assign_layout", "select_layout", "move_layout", "count_layout",
           "cluster_word_layout", "context_header_layout", "context_state_bits",
           "KVManagementUnit"]


def _bits(value):
    """Bits of an unsigned field holding 0 .. ``value`` (at least 1)."""
    return max(1, int(value).bit_length())


def _page_bits(config):
    return _bits((1 << config.kv_token_bits) // config.kvmu_page_tokens - 1)


def command_layout(config):
    """Payload of ``cmd``: ``new_tokens`` (1 to ``max_frame_tokens``), ``restart`` (empty the
    context first), ``context`` (:class:`hw.context_port.ContextOp`: ``NONE`` for a problem,
    ``SAVE`` or ``RESTORE`` the context instead, the other fields ignored)."""
    return data.StructLayout({"new_tokens": _bits(config.max_frame_tokens), "restart": 1,
                              "context": ContextOp})


def assign_layout(config):
    """Payload of ``assign``, one per new token: ``cluster`` (``cluster_id_bits``), ``new`` (it
    opened the cluster)."""
    return data.StructLayout({"cluster": config.cluster_id_bits, "new": 1})


def select_layout(config):
    """Payload of ``selected``: ``cluster`` (ascending), ``empty`` (the single beat of an empty
    selection, carrying no cluster), ``last`` (last beat of the problem)."""
    return data.StructLayout({"cluster": config.cluster_id_bits, "empty": 1, "last": 1})


def move_layout(config):
    """Payload of ``moves``: ``src`` (recent-window slot), ``dst`` (store address), ``length``
    (tokens; 0 only on the single beat of a problem that moves nothing), ``dropped`` (the tokens
    found no page and were not stored; ``dst`` is 0), ``full`` (the store had no page for a
    token since the restart; meaningful on ``last``), ``last``."""
    return data.StructLayout({
        "src": _bits(max(config.recent_window, 1) - 1),
        "dst": config.kv_token_bits,
        "length": _bits(config.max_frame_tokens),
        "dropped": 1,
        "full": 1,
        "last": 1,
    })


def count_layout(config):
    """Payload of ``counts``: ``count`` (``count_bits``, saturated), ``last`` (cluster N - 1)."""
    return data.StructLayout({"count": config.count_bits, "last": 1})


def cluster_word_layout(config):
    """A word of the cluster table: ``head``, ``tail`` (pages), ``fill`` (0 to P), ``count``."""
    page_bits = _page_bits(config)
    return data.StructLayout({"head": page_bits, "tail": page_bits,
                              "fill": _bits(config.kvmu_page_tokens), "count": config.count_bits})


def offload_decision_layout(config):
    """A leaving token's decision: ``need_page``, ``no_page`` (none left), ``page``, ``dst`` (its
    token address) and ``continues`` (it extends the pending move)."""
    return data.StructLayout({"need_page": 1, "no_page": 1, "page": _page_bits(config),
                              "dst": config.kv_token_bits, "continues": 1})


def context_header_layout(config):
    """The header item of a context image: the context registers ``clusters``, ``next_page``,
    ``window_tokens``, ``window_slot`` (at least 1 bit) and ``store_full``."""
    pages = (1 << config.kv_token_bits) // config.kvmu_page_tokens
    return data.StructLayout({
        "clusters": _bits(config.max_clusters), "next_page": _bits(pages),
        "window_tokens": _bits(config.recent_window + config.max_frame_tokens),
        "window_slot": _bits(max(config.recent_window, 1) - 1), "store_full": 1})



def context_state_bits(config):
    """On-chip state of one KVMU context in bits, by item (see the module docstring).

    A function of the configuration alone, so reports need not build the component.
    """
    page_bits = _page_bits(config)
    pages = (1 << config.kv_token_bits) // config.kvmu_page_tokens
    ring = config.recent_window + config.max_frame_tokens
    return {
        "cluster_table": config.max_clusters * cluster_word_layout(config).size,
        "page_next": pages * page_bits,
        "ring": ring * config.cluster_id_bits,
        "registers": (config.cluster_id_bits + 1 + _bits(ring) + 2 * _bits(ring - 1)
                      + _bits(max(config.recent_window, 1) - 1) + _bits(pages) + 1),
    }

class KVManagementUnit(ConfiguredComponent):
    """KV management unit: offload moves, cluster counts and fetch descriptors of one context.

    Parameters
    ----------
    config : DREConfig
        Supplies ``kvmu_page_tokens``, ``kv_token_bits``, ``recent_window``,
        ``max_frame_tokens``, ``max_clusters``, ``count_bits``.

    Members
    -------
    cmd : In(stream.Signature(command_layout(config)))
        One beat per problem.
    assign : In(stream.Signature(assign_layout(config)))
        The problem's cluster assignments, one per new token (the HCU's).
    selected : In(stream.Signature(select_layout(config)))
        The problem's selected clusters (the WTU's), ascending.
    moves : Out(stream.Signature(move_layout(config)))
        Offload move descriptors of the problem, merged; ``last`` on the final one.
    counts : Out(stream.Signature(count_layout(config)))
        Counts of clusters ``0 .. N - 1`` after the problem's tokens.
    fetch : Out(stream.Signature(descriptor_layout(config)))
        Fetch descriptors, merged; ``last`` on the final one (a length-0 beat if none).
    save : Out(stream.Signature(context_word_layout()))
        The context image of a save command.
    restore : In(stream.Signature(context_word_layout()))
        The context image of a restore command.
    context_refused : Out(1)
        The last restored image was refused (the context is empty); cleared by the next
        restore command.

    Raises
    ------
    TypeError
        If ``config`` is not a :class:`DREConfig`.
    """

    #: Cycles per token leaving the window (cluster-table read, read data registered, decision
    #: registered, update).
    cycles_per_offload = 4
    #: Cycles before the first leaving token's table read (its ring read data registered).
    cycles_before_offload = 1
    #: Cycles per new token (take the beat and read, read data registered, update).
    cycles_per_assign = 3
    #: Cycles per ``selected`` beat before its page walk (take the beat and read, read data
    #: registered, start the walk).
    cycles_per_select = 3
    #: Cycles per page of a fetch walk (the page handed to the merger).
    cycles_per_page = 1
    #: Cycles per link followed in a fetch walk (from a page to the next: the registered
    #: ``next`` pointer addresses the page_next memory).
    cycles_per_link = 1
    #: Cycles from the last fetch step to the last descriptor's transfer (the merger's flush
    #: cycle and output register).
    flush_latency = 2

    def _members(self, config):
        return {
            "cmd": In(stream.Signature(command_layout(config))),
            "assign": In(stream.Signature(assign_layout(config))),
            "selected": In(stream.Signature(select_layout(config))),
            "moves": Out(stream.Signature(move_layout(config))),
            "counts": Out(stream.Signature(count_layout(config))),
            "fetch": Out(stream.Signature(descriptor_layout(config))),
            "save": Out(stream.Signature(context_word_layout())),
            "restore": In(stream.Signature(context_word_layout())),
            "context_refused": Out(1),
        }

    @property
    def save_latency(self):
        """Cycles from a saved word's issue (one a cycle after the command) to its transfer."""
        return SavePipeline.latency

    @property
    def pages(self):
        """Pages of the store, ``2**kv_token_bits / kvmu_page_tokens``."""
        return (1 << self._config.kv_token_bits) // self._config.kvmu_page_tokens

    @property
    def ring_depth(self):
        """Cluster ids the ring keeps, ``recent_window + max_frame_tokens``."""
        return self._config.recent_window + self._config.max_frame_tokens

    def state_bits(self):
        """On-chip state of one context in bits, by item (see :func:`context_state_bits`)."""
        return context_state_bits(self._config)

    def _merger_config(self):
        # The merger's range count must hold a whole page (P tokens).
        config = self._config
        return config.replace(count_bits=max(config.count_bits, _bits(config.kvmu_page_tokens)))

    def elaborate(self, platform):
        m = Module()
        config = self._config
        page_tokens = config.kvmu_page_tokens
        page_shift = page_tokens.bit_length() - 1
        window = config.recent_window
        slots = max(window, 1)
        ring_depth = self.ring_depth

        m.submodules.cluster_table = table = Memory(
            shape=cluster_word_layout(config), depth=config.max_clusters, init=[])
        m.submodules.page_next = page_next = Memory(
            shape=_page_bits(config), depth=self.pages, init=[])
        m.submodules.ring = ring = Memory(
            shape=config.cluster_id_bits, depth=ring_depth, init=[])
        table_rd, table_wr = table.read_port(), table.write_port()
        next_rd, next_wr = page_next.read_port(), page_next.write_port()
        ring_rd, ring_wr = ring.read_port(), ring.write_port()
        m.submodules.merger = merger = DescriptorMerger(self._merger_config())
        wiring.connect(m, merger.o, wiring.flipped(self.fetch))

        # Context registers (cleared by a restart or a reset).
        clusters = Signal(range(config.max_clusters + 1))
        window_tokens = Signal(range(ring_depth + 1))
        ring_read = Signal(range(ring_depth))
        ring_write = Signal(range(ring_depth))
        window_slot = Signal(range(slots))
        next_page = Signal(range(self.pages + 1))
        store_full = Signal()
        # Problem registers.
        remaining = Signal(range(max(ring_depth, config.max_frame_tokens) + 1))
        new_tokens = Signal(range(config.max_frame_tokens + 1))
        token_cluster = Signal(config.cluster_id_bits)
        ring_cluster = Signal(config.cluster_id_bits)
        token_new = Signal()
        count_index = Signal(range(config.max_clusters + 1))
        select_last = Signal()
        select_empty = Signal()
        # 1 exactly in the SELECT state (set on each transition into it, cleared when it takes
        # the beat): ``selected.ready`` comes from this flip-flop, not from the state's
        # decoding, since it reaches back into the WTU's aggregate queue in the DRE top.
        selecting = Signal()
        m.d.comb += self.selected.ready.eq(selecting)
        walk_page = Signal(_page_bits(config))
        walk_tail = Signal(_page_bits(config))
        walk_fill = Signal(range(page_tokens + 1))
        # The page walk's ``next`` pointer, registered: the page_next macro's output never
        # drives its own address (FPGA block RAM clock-to-output is most of a 10 ns cycle).
        walk_link = Signal(_page_bits(config))

        # The cluster table's read data, registered before any logic uses it: an SRAM macro's
        # clock-to-output (about 4.3 ns at 1024 words) leaves too little of the cycle.
        word = Signal(cluster_word_layout(config))
        moves = self.moves
        moves_free = ~moves.valid | moves.ready
        with m.If(moves.ready):
            m.d.sync += moves.valid.eq(0)

        # The count output register, fed by the cluster table's read port one count a cycle.
        counts = self.counts
        count_advance = ~counts.valid | counts.ready
        count_inflight = Signal()
        count_inflight_last = Signal()
        count_issue = Signal()
        with m.If(count_advance):
            m.d.sync += [counts.valid.eq(count_inflight),
                         counts.payload.count.eq(table_rd.data.count),
                         counts.payload.last.eq(count_inflight_last),
                         count_inflight.eq(count_issue)]

        # Pending move descriptor.
        move_pending = Signal()
        move_src = Signal(len(moves.payload.src))
        move_dst = Signal(config.kv_token_bits)
        move_len = Signal(len(moves.payload.length))
        # The pending move's ends, ``move_src + move_len`` and ``move_dst + move_len`` (full
        # width, no wrap), kept in registers: a leaving token continues the move when its slot
        # and address equal them, one equality compare each and no adder in that cycle.
        move_src_end = Signal(len(move_src + move_len))
        move_dst_end = Signal(len(move_dst + move_len))
        move_dropped = Signal()
        # The leaving token's decision (state OFF_DECIDE), registered for its update.
        offload = Signal(offload_decision_layout(config))

        ring_read_next = Mux(ring_read == ring_depth - 1, 0, ring_read + 1)
        m.d.comb += [ring_rd.addr.eq(ring_read), ring_wr.addr.eq(ring_write),
                     ring_wr.data.eq(self.assign.payload.cluster),
                     table_wr.addr.eq(token_cluster)]

        registers = {"clusters": clusters, "next_page": next_page,
                     "window_tokens": window_tokens, "window_slot": window_slot,
                     "store_full": store_full, "ring_read": ring_read, "ring_write": ring_write}
        ports = {"table": (table_rd, table_wr), "next": (next_rd, next_wr),
                 "ring": (ring_rd, ring_wr)}
        context = self._context_parts(m)

        with m.FSM():
            with m.State("IDLE"):
                # Take the command; the ring read of the first leaving token is issued.
                # A refused restore (the cycle before) clears the context registers here, as a
                # restart does, whatever command comes in this cycle: the clear's enable is
                # a flip-flop, not the restored word's checks.
                command = self.cmd.payload
                refused = context["refused"]
                leaving = Signal(range(ring_depth + 1))
                m.d.comb += [self.cmd.ready.eq(1), context["walker"].start.eq(1),
                             leaving.eq(Mux(~command.restart & ~refused & (window_tokens > window),
                                            window_tokens - window, 0))]
                with m.If(refused):
                    m.d.sync += [register.eq(0) for register in registers.values()]
                    m.d.sync += refused.eq(0)
                with m.If(self.cmd.valid & (command.context == ContextOp.SAVE)):
                    m.d.sync += [context["issuing"].eq(1),
                                 context["ring_pointer"].eq(Mux(refused, 0, ring_read))]
                    m.next = "SAVE"
                with m.Elif(self.cmd.valid & (command.context == ContextOp.RESTORE)):
                    m.d.sync += [context["last_taken"].eq(0), context["bad"].eq(0),
                                 context["walked"].eq(0), self.context_refused.eq(0),
                                 context["restoring"].eq(1)]
                    m.next = "RESTORE"
                with m.Elif(self.cmd.valid):
                    m.d.sync += [remaining.eq(leaving), new_tokens.eq(command.new_tokens)]
                    with m.If(command.restart):
                        m.d.sync += [clusters.eq(0), window_tokens.eq(0), ring_read.eq(0),
                                     ring_write.eq(0), window_slot.eq(0), next_page.eq(0),
                                     store_full.eq(0)]
                    with m.Elif(~refused & (window_tokens > window)):
                        m.d.sync += window_tokens.eq(window)
                    with m.If(leaving != 0):
                        m.next = "OFF_RING"
                    with m.Else():
                        m.next = "MOVE_FLUSH"

            with m.State("OFF_RING"):
                # The first leaving token's cluster leaves the ring into its register.
                m.d.sync += ring_cluster.eq(ring_rd.data)
                m.next = "OFF_READ"

            with m.State("OFF_READ"):
                # The leaving token's cluster (registered) addresses the cluster table; the
                # ring read of the next leaving token is issued.
                m.d.comb += [table_rd.addr.eq(ring_cluster), ring_rd.addr.eq(ring_read_next)]
                m.d.sync += token_cluster.eq(ring_cluster)
                m.next = "OFF_WORD"

            with m.State("OFF_WORD"):
                # The cluster's word leaves the macro into the word register, the next leaving
                # token's cluster leaves the ring into its register. The next page to hand out
                # gets a clear ``next`` (a tail's ``next`` is 0).
                m.d.comb += [table_rd.en.eq(0), next_wr.addr.eq(next_page), next_wr.data.eq(0),
                             next_wr.en.eq(next_page != self.pages)]
                m.d.sync += [word.eq(table_rd.data), ring_cluster.eq(ring_rd.data)]
                m.next = "OFF_DECIDE"

            with m.State("OFF_DECIDE"):
                # The token's page, slot and whether it continues the pending move, registered.
                m.d.comb += table_rd.en.eq(0)
                self._offload_decide(m, word, next_page, window_slot, offload,
                                     (move_pending, move_dropped, move_src_end, move_dst_end))
                m.next = "OFF_UPDATE"

            with m.State("OFF_UPDATE"):
                m.d.comb += table_rd.en.eq(0)
                self._offload_step(m, word, table_wr, next_wr, moves, moves_free, store_full,
                                   next_page, window_slot, offload,
                                   (move_pending, move_src, move_dst, move_len, move_dropped,
                                    move_src_end, move_dst_end))
                with m.If(moves_free):
                    m.d.sync += [remaining.eq(remaining - 1), ring_read.eq(ring_read_next),
                                 window_slot.eq(Mux(window_slot == slots - 1, 0,
                                                    window_slot + 1))]
                    with m.If(remaining == 1):
                        m.next = "MOVE_FLUSH"
                    with m.Else():
                        m.next = "OFF_READ"

            with m.State("MOVE_FLUSH"):
                with m.If(moves_free):
                    m.d.sync += [moves.valid.eq(1),
                                 moves.payload.src.eq(Mux(move_pending, move_src, 0)),
                                 moves.payload.dst.eq(Mux(move_pending, move_dst, 0)),
                                 moves.payload.length.eq(Mux(move_pending, move_len, 0)),
                                 moves.payload.dropped.eq(move_pending & move_dropped),
                                 moves.payload.full.eq(store_full),
                                 moves.payload.last.eq(1),
                                 move_pending.eq(0)]
                    with m.If(new_tokens != 0):
                        m.next = "ASSIGN_READ"
                    with m.Else():
                        m.d.sync += count_index.eq(0)
                        m.next = "COUNT"

            with m.State("ASSIGN_READ"):
                # Take a new token's assignment, keep its cluster in the ring, read its word.
                m.d.comb += [self.assign.ready.eq(1),
                             table_rd.addr.eq(self.assign.payload.cluster),
                             ring_wr.en.eq(self.assign.valid)]
                with m.If(self.assign.valid):
                    m.d.sync += [token_cluster.eq(self.assign.payload.cluster),
                                 token_new.eq(self.assign.payload.new),
                                 ring_write.eq(Mux(ring_write == ring_depth - 1, 0,
                                                   ring_write + 1))]
                    m.next = "ASSIGN_WORD"

            with m.State("ASSIGN_WORD"):
                # The cluster's word leaves the macro into the word register.
                m.d.comb += table_rd.en.eq(0)
                m.d.sync += word.eq(table_rd.data)
                m.next = "ASSIGN_UPDATE"

            with m.State("ASSIGN_UPDATE"):
                saturated = word.count == config.max_count
                m.d.comb += [table_rd.en.eq(0), table_wr.en.eq(1),
                             table_wr.data.head.eq(word.head), table_wr.data.tail.eq(word.tail)]
                with m.If(token_new):
                    m.d.comb += [table_wr.data.head.eq(0), table_wr.data.tail.eq(0),
                                 table_wr.data.fill.eq(0), table_wr.data.count.eq(1)]
                with m.Else():
                    m.d.comb += [table_wr.data.fill.eq(word.fill),
                                 table_wr.data.count.eq(Mux(saturated, word.count,
                                                            word.count + 1))]
                m.d.sync += [clusters.eq(clusters + token_new), window_tokens.eq(window_tokens + 1),
                             new_tokens.eq(new_tokens - 1)]
                with m.If(new_tokens == 1):
                    m.d.sync += count_index.eq(0)
                    m.next = "COUNT"
                with m.Else():
                    m.next = "ASSIGN_READ"

            with m.State("COUNT"):
                # One count read a cycle; a stalled output register holds the read (en low).
                m.d.comb += [table_rd.addr.eq(count_index), table_rd.en.eq(count_advance),
                             count_issue.eq(count_advance & (count_index < clusters))]
                with m.If(count_issue):
                    m.d.sync += [count_index.eq(count_index + 1),
                                 count_inflight_last.eq(count_index == clusters - 1)]
                with m.If(count_advance & (count_index == clusters)):
                    m.d.sync += selecting.eq(1)
                    m.next = "SELECT"

            with m.State("SELECT"):
                m.d.comb += table_rd.addr.eq(self.selected.payload.cluster)
                with m.If(self.selected.valid):
                    m.d.sync += [selecting.eq(0), select_last.eq(self.selected.payload.last),
                                 select_empty.eq(self.selected.payload.empty)]
                    m.next = "SELECT_WORD"

            with m.State("SELECT_WORD"):
                # The selected cluster's word leaves the macro into the word register.
                m.d.comb += table_rd.en.eq(0)
                m.d.sync += word.eq(table_rd.data)
                m.next = "SELECT_HEAD"

            with m.State("SELECT_HEAD"):
                m.d.comb += table_rd.en.eq(0)
                with m.If(select_empty | (word.fill == 0)):
                    # Nothing offloaded: only the last beat tells the merger the problem ends.
                    with m.If(select_last):
                        m.d.comb += [merger.i.valid.eq(1), merger.i.payload.present.eq(0),
                                     merger.i.payload.last.eq(1)]
                        with m.If(merger.i.ready):
                            m.next = "IDLE"
                    with m.Else():
                        m.d.sync += selecting.eq(1)
                        m.next = "SELECT"
                with m.Else():
                    m.d.comb += [next_rd.addr.eq(word.head)]
                    m.d.sync += [walk_page.eq(word.head), walk_tail.eq(word.tail),
                                 walk_fill.eq(word.fill)]
                    m.next = "WALK"

            with m.State("WALK"):
                # The page goes to the merger; its ``next`` pointer leaves the macro into the
                # link register (the read port holds it while the merger stalls).
                at_tail = walk_page == walk_tail
                piece = merger.i.payload
                m.d.comb += [merger.i.valid.eq(1), piece.present.eq(1),
                             piece.base.eq(Cat(Const(0, page_shift), walk_page)),
                             piece.count.eq(Mux(at_tail, walk_fill, page_tokens)),
                             piece.last.eq(select_last & at_tail),
                             next_rd.en.eq(0)]
                m.d.sync += walk_link.eq(next_rd.data)
                with m.If(merger.i.ready):
                    with m.If(at_tail & select_last):
                        m.next = "IDLE"
                    with m.Elif(at_tail):
                        m.d.sync += selecting.eq(1)
                        m.next = "SELECT"
                    with m.Else():
                        m.next = "WALK_LINK"

            with m.State("WALK_LINK"):
                # The link register addresses the next page's pointer, which becomes the page.
                m.d.comb += next_rd.addr.eq(walk_link)
                m.d.sync += walk_page.eq(walk_link)
                m.next = "WALK"

            self._save_state(m, context, registers, ports)
            self._restore_state(m, context, registers, ports)
        return m

    def _context_parts(self, m):
        """The context port's walker, save pipeline, restore register and control registers."""
        config = self._config
        header_words = item_words(context_header_layout(config).size)
        word_words = item_words(cluster_word_layout(config).size)
        m.submodules.ctx_walker = walker = ImageWalker([
            (1, header_words), (config.max_clusters, word_words), (self.pages, 1),
            (self.ring_depth, 1)], nonzero_inputs=True)
        m.submodules.save_pipeline = pipeline = SavePipeline(data.StructLayout({
            "section": range(4), "chunk": range(max(header_words, word_words, 2))}))
        m.submodules.restore_register = restored = RestoreRegister()
        wiring.connect(m, pipeline.o, wiring.flipped(self.save))
        wiring.connect(m, wiring.flipped(self.restore), restored.i)
        return {"walker": walker, "pipeline": pipeline, "restored": restored,
                "header_words": header_words, "word_words": word_words,
                "issuing": Signal(name="save_issuing"),
                "ring_pointer": Signal(range(self.ring_depth), name="save_ring_pointer"),
                "last_taken": Signal(name="restore_last_taken"),
                "restoring": Signal(name="restoring"),
                "refused": Signal(name="restore_refused"),
                "bad": Signal(name="restore_bad"), "walked": Signal(name="restore_walked")}

    def _save_state(self, m, context, registers, ports):
        """State ``SAVE``: one word issued a cycle, the memories read at the walk's position
        (the ring at the save pointer), their data registered, the word picked from it."""
        config = self._config
        walker, pipeline = context["walker"], context["pipeline"]
        issuing, ring_pointer = context["issuing"], context["ring_pointer"]
        (table_rd, _), (next_rd, _), (ring_rd, _) = ports.values()
        header = Signal(context_header_layout(config))
        table_data = Signal(cluster_word_layout(config))
        next_data = Signal.like(next_rd.data)
        ring_data = Signal.like(ring_rd.data)
        tag = pipeline.tag
        padded = [Cat(value.as_value(), Const(0, WORD_BITS * words - len(value.as_value())))
                  for value, words in ((header, context["header_words"]),
                                       (table_data, context["word_words"]))]
        with m.State("SAVE"):
            m.d.comb += [header[name].eq(registers[name])
                         for name, _ in context_header_layout(config)]
            m.d.comb += pipeline.word.eq(Mux(tag.section == 0,
                                             padded[0].word_select(tag.chunk, WORD_BITS),
                                             Mux(tag.section == 1,
                                                 padded[1].word_select(tag.chunk, WORD_BITS),
                                                 Mux(tag.section == 2, next_data, ring_data))))
            advance = pipeline.advance
            m.d.comb += [pipeline.issue.eq(issuing), pipeline.issue_last.eq(walker.final),
                         pipeline.issue_tag.section.eq(walker.section),
                         pipeline.issue_tag.chunk.eq(walker.chunk),
                         walker.step.eq(issuing & advance),
                         table_rd.addr.eq(walker.index), table_rd.en.eq(advance),
                         next_rd.addr.eq(walker.index), next_rd.en.eq(advance),
                         ring_rd.addr.eq(ring_pointer), ring_rd.en.eq(advance)]
            with m.If(advance):
                m.d.sync += [table_data.eq(table_rd.data), next_data.eq(next_rd.data),
                             ring_data.eq(ring_rd.data)]
                with m.If(issuing & walker.final):
                    m.d.sync += issuing.eq(0)
                with m.If(issuing & (walker.section == 3)):
                    m.d.sync += ring_pointer.eq(Mux(ring_pointer == self.ring_depth - 1, 0,
                                                    ring_pointer + 1))
            with m.If(self.save.valid & self.save.ready & self.save.payload.last):
                m.next = "IDLE"

    def _restore_state(self, m, context, registers, ports):
        """State ``RESTORE``: words taken until ``last``; each, registered, is checked and, on
        an item's last word, written; the context registers are cleared if the image is
        refused."""
        config = self._config
        walker, restored = context["walker"], context["restored"]
        last_taken, bad, walked = context["last_taken"], context["bad"], context["walked"]
        (_, table_wr), (_, next_wr), (_, ring_wr) = ports.values()
        header_words, word_words = context["header_words"], context["word_words"]
        most = max(header_words, word_words)
        assembly = Signal(WORD_BITS * most)
        full = Signal(WORD_BITS * most)
        m.d.comb += full.eq(Cat(assembly[WORD_BITS:], restored.word) if most > 1
                            else restored.word)
        _, _, header, cluster_word = self._restored_items(full, most)
        section, chunk = walker.section, walker.chunk
        # The format checks of each section are made on the word being taken, a cycle before
        # it is registered (its item's earlier words as they will be in ``assembly``, the
        # registers as the header, if written in this cycle, will leave them), and registered
        # with it: the checked word's refusal starts at flip-flops.
        header_written = (restored.valid & ~bad & ~walked & (section == 0)
                          & (chunk == header_words - 1))
        incoming = self.restore.payload.word
        full_next = (Cat(Mux(restored.valid, full, assembly)[WORD_BITS:], incoming) if most > 1
                     else incoming)
        early = Signal(4, name="restore_checks")
        m.d.sync += early.eq(self._restore_checks(
            full_next, most,
            Mux(header_written, header.next_page, registers["next_page"]),
            Mux(header_written, header.clusters, registers["clusters"])))
        # The walker's counts are the registers, in a save and in a restore: the walk is past
        # the header only after the header's last word wrote them. Which later sections have
        # items in the header's last word (a restore's) is checked on the word being taken, as
        # the format is, and registered with it; the walk's end then starts at flip-flops,
        # not at the restored word's fields.
        later = ("clusters", "next_page", "window_tokens")
        header_nonzero = Signal(len(later), name="restore_header_nonzero")
        incoming_header = self._restored_items(full_next, most)[2]
        m.d.sync += header_nonzero.eq(Cat(incoming_header[name] != 0 for name in later))
        in_header = context["restoring"] & (section == 0)
        for s, name in enumerate(later, start=1):
            m.d.comb += [getattr(walker, f"count{s}").eq(registers[name]),
                         getattr(walker, f"nonzero{s}").eq(Mux(in_header, header_nonzero[s - 1],
                                                               registers[name] != 0))]
        value = restored.word
        ring_depth = self.ring_depth
        cluster_bits, page_bits_ = config.cluster_id_bits, _page_bits(config)
        # The registered word breaks the format (checked on an item's last word), by section.
        word_bad = Signal()
        breaks = Array([(chunk == header_words - 1) & early[0],
                        (chunk == word_words - 1) & early[1], early[2], early[3]])
        with m.State("RESTORE"):
            m.d.comb += word_bad.eq(breaks[section])
            m.d.comb += [restored.accept.eq(~last_taken), walker.step.eq(restored.valid)]
            with m.If(self.restore.valid & self.restore.ready & self.restore.payload.last):
                m.d.sync += last_taken.eq(1)
            with m.If(restored.valid):
                if most > 1:
                    m.d.sync += assembly.eq(full)
                with m.If(~bad & ~walked):
                    with m.If(word_bad):
                        m.d.sync += bad.eq(1)
                    with m.If(in_header & (chunk == header_words - 1)):
                        tokens = header.window_tokens
                        m.d.sync += [registers[name].eq(header[name])
                                     for name, _ in context_header_layout(config)]
                        m.d.sync += [registers["ring_read"].eq(0),
                                     registers["ring_write"].eq(Mux(tokens == ring_depth, 0,
                                                                    tokens))]
                    with m.If((section == 1) & (chunk == word_words - 1)):
                        m.d.comb += [table_wr.addr.eq(walker.index),
                                     table_wr.data.eq(cluster_word), table_wr.en.eq(1)]
                    with m.If(section == 2):
                        m.d.comb += [next_wr.addr.eq(walker.index),
                                     next_wr.data.eq(value[:page_bits_]), next_wr.en.eq(1)]
                    with m.If(section == 3):
                        m.d.comb += [ring_wr.addr.eq(walker.index),
                                     ring_wr.data.eq(value[:cluster_bits]), ring_wr.en.eq(1)]
                    with m.If(walker.final):
                        m.d.sync += walked.eq(1)
                with m.If(restored.last):
                    # The context registers are cleared in the next cycle (state IDLE).
                    refused = bad | walked | word_bad | ~walker.final
                    m.d.sync += [self.context_refused.eq(refused), context["refused"].eq(refused),
                                 context["restoring"].eq(0)]
                    m.next = "IDLE"

    def _restored_items(self, full, most):
        """The header item and the cluster-word item ending at the last word of ``full``
        (``most`` words: an item's earlier words, then its last one), each with its padding,
        and their fields."""
        config = self._config
        header_layout, word_layout = context_header_layout(config), cluster_word_layout(config)
        header_item = full[WORD_BITS * (most - item_words(header_layout.size)):]
        word_item = full[WORD_BITS * (most - item_words(word_layout.size)):]
        return (header_item, word_item, header_layout(header_item[:header_layout.size]),
                word_layout(word_item[:word_layout.size]))

    def _restore_checks(self, full, most, next_page, clusters):
        """Per section, whether a restored word (the last of ``full``, ``most`` words) breaks
        the format when it is the last word of an item of that section, with the context
        registers ``next_page`` and ``clusters``: padding set or a field out of range."""
        config = self._config
        header_layout, word_layout = context_header_layout(config), cluster_word_layout(config)
        header_item, word_item, header, cluster_word = self._restored_items(full, most)
        value = full[-WORD_BITS:]
        cluster_bits, page_bits = config.cluster_id_bits, _page_bits(config)
        return Cat(
            header_item[header_layout.size:].any()
            | (header.clusters > config.max_clusters) | (header.next_page > self.pages)
            | (header.window_tokens > self.ring_depth)
            | (header.window_slot >= max(config.recent_window, 1)),
            word_item[word_layout.size:].any()
            | (cluster_word.fill > config.kvmu_page_tokens)
            | ((cluster_word.fill != 0)
               & ((cluster_word.head >= next_page) | (cluster_word.tail >= next_page))),
            value[page_bits:].any(),
            value[cluster_bits:].any() | (value[:cluster_bits] >= clusters))

    def _offload_decide(self, m, word, next_page, window_slot, offload, pending):
        """The leaving token's decision from its cluster's word and the registers: whether it
        needs a new page (and none is left), its page and address, whether it continues the
        pending move. Registered into ``offload``, so the update's enables start at flip-flops."""
        config = self._config
        page_tokens = config.kvmu_page_tokens
        page_shift = page_tokens.bit_length() - 1
        move_pending, move_dropped, src_end, dst_end = pending
        need_page = (word.fill == 0) | (word.fill == page_tokens)
        no_page = need_page & (next_page == self.pages)
        page = Mux(need_page, next_page, word.tail)
        slot = Mux(need_page, 0, word.fill)
        dst = Signal(config.kv_token_bits)
        m.d.comb += dst.eq(Mux(no_page, 0, Cat(slot[:page_shift], page)[:config.kv_token_bits]))
        continues = (move_pending & (move_dropped == no_page)
                     & (window_slot == src_end)
                     & (no_page | (dst == dst_end)))
        m.d.sync += [offload.need_page.eq(need_page), offload.no_page.eq(no_page),
                     offload.page.eq(page), offload.dst.eq(dst),
                     offload.continues.eq(continues)]

    def _offload_step(self, m, word, table_wr, next_wr, moves, moves_free, store_full,
                      next_page, window_slot, offload, pending):
        """One leaving token (its cluster's word and its decision in registers): the page list
        grown when needed, the word written back, the move merged or the pending one emitted."""
        move_pending, move_src, move_dst, move_len, move_dropped, src_end, dst_end = pending
        need_page, no_page, dst = offload.need_page, offload.no_page, offload.dst
        with m.If(moves_free & no_page):
            m.d.sync += store_full.eq(1)
        with m.Elif(moves_free):
            m.d.comb += [table_wr.en.eq(1),
                         table_wr.data.head.eq(Mux(word.fill == 0, next_page, word.head)),
                         table_wr.data.tail.eq(offload.page),
                         table_wr.data.fill.eq(Mux(need_page, 1, word.fill + 1)),
                         table_wr.data.count.eq(word.count),
                         next_wr.addr.eq(word.tail), next_wr.data.eq(next_page),
                         next_wr.en.eq(need_page & (word.fill != 0))]
            with m.If(need_page):
                m.d.sync += next_page.eq(next_page + 1)
        with m.If(moves_free):
            with m.If(offload.continues):
                m.d.sync += [move_len.eq(move_len + 1), src_end.eq(src_end + 1),
                             dst_end.eq(dst_end + 1)]
            with m.Else():
                with m.If(move_pending):
                    m.d.sync += [moves.valid.eq(1), moves.payload.src.eq(move_src),
                                 moves.payload.dst.eq(move_dst),
                                 moves.payload.length.eq(move_len),
                                 moves.payload.dropped.eq(move_dropped),
                                 moves.payload.full.eq(0), moves.payload.last.eq(0)]
                m.d.sync += [move_pending.eq(1), move_src.eq(window_slot), move_dst.eq(dst),
                             move_len.eq(1), move_dropped.eq(no_page),
                             src_end.eq(window_slot + 1), dst_end.eq(dst + 1)]
