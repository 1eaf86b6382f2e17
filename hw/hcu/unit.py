"""The hash-bit cluster unit (HCU): Hamming-distance leader clustering of token hashes, in hardware.

For every token hash on ``i`` the unit finds the cluster of its on-chip table whose hash is
nearest in Hamming distance below ``hamming_threshold`` (ties to the lowest cluster id), or opens
a new cluster, and sends the assignment on ``o``. The behaviour, bit for bit and cycle for cycle,
is that of the twin :mod:`model.twins.hcu`, whose docstring is the contract ("Cycle model" gives the
schedule below as rules).

Microarchitecture: a pool of lanes fed from a banked table, several tokens in flight
-----------------------------------------------------------------------------------
The ``hash_mem_entries`` (E) cluster hashes live in ``hcu_dispatch_width`` (D) banks, one
:class:`amaranth.lib.memory.Memory` each with one synchronous read port and one write port
(cluster ``c`` in bank ``c mod D``, row ``(c mod E) // D``). The unit holds up to
``hcu_tokens_in_flight`` (K) tokens. A dispatcher starts up to D *jobs* (the compare of one
token with one cluster) per cycle and reserves the lowest-numbered free lanes of the
``hcu_lanes`` :class:`SimilarityLane` units for them; the banks read the clusters' hashes, the
next cycle registers them, the one after hands ``hash XOR token`` to the lanes, which register
it, and the compare's first beat comes in the cycle after. A lane compares
``hcu_bits_per_cycle`` bits per cycle and stops as soon as the partial distance reaches the
threshold (early exit), keeping its best match per token. A lane's availability is a register
set two cycles ahead (its compare ends within four more beats) and the lanes of a cycle's jobs
are a register chosen in the cycle before (:class:`FreeLanePicker`), so a lane whose compares
take at least five beats is given its next job in time to start right after the last beat.

Jobs come from the tokens in order. Each token first *walks* the table downwards from the newest
cluster it saw on arrival, D consecutive clusters (so D distinct banks) per cycle; meanwhile the
older tokens are decided, and every cluster one of them opens is compared with the younger
tokens by a *catch-up* job (one per cycle; catch-ups go first, oldest token first), so a token
sees exactly the table the leader rule gives it: clusters opened earlier in its own frame
(spatial) and in earlier frames (temporal). The walk of a younger token stops short of the
clusters an older one may still evict until that one is decided. The oldest token is decided,
its assignment sent and the table written, four cycles after its last compare's last beat
(and at least five after its entry, the lanes clearing its slot's matches in the cycle after
it): each token slot has an argmin tree of (distance, cluster id) over the lanes' best
matches, three registered stages (pairs of lanes first).

Timing: every path starts and ends at a flip-flop or a macro, and the macros' read data is
registered before any logic (a macro's clock-to-output is most of a cycle); the lanes'
availability, the argmin and the decision's "slot blocked" bits are registers, the last made a
cycle ahead, as is the dispatcher's catch-up choice (retimings: no cycle changes); the lanes of
a cycle's jobs are a register chosen in the cycle before, for every number of lanes the jobs
of that cycle may take, then selected by it (no search over the lanes between the
dispatcher's state and its jobs); the walk's state and its tests (``top``, ``room``, their
compares with the job counts) are registers whose next values are made beforehand from
registers and selected by the cycle's late signals (the jobs, the decision, a token
entering), with no arithmetic after them; the operands handed to the lanes (fanned
out to every lane) end at the lanes' compare registers, so each beat, its best-match update
and the lane's availability start from the lane's own registers (on the ECP5 the path from
the operands through the first beat to ``best_*`` and ``available`` was the critical one).

Why this organisation: a bit-serial lane spends several cycles on each compare (at least
``ceil(hamming_threshold / hcu_bits_per_cycle)``), so a few table reads per cycle feed many
lanes and no lane is tied to a part of the table. Early in a stream the table holds about as
many clusters as there are lanes, and the compare with the cluster a token joins runs to the
last bit; with a lane per bank (the previous organisation of this unit, two tokens in flight),
lanes idled whenever the clusters did not split evenly: lane utilisation on the edge preset's
streaming workload was 0.57-0.80 over the first 100 frames. Pooled lanes with K = 4 tokens in
flight and D = 2 reads per cycle keep them 0.98-0.99 busy there, over the whole workload and on
a full table, and take 15-30 cycles per token early in the stream instead of 27-38, with about
half the previous unit's logic gates and a sixth of its FPGA LUTs (``make bench``,
``make synth``). The dispatch width still caps the work when compares are shorter than
``hcu_lanes / D`` cycles on average (wide ``hcu_bits_per_cycle``): the lanes then wait for jobs.
The timing is a plain function of the compares' early-exit points, so the twin's cycle model is
exact.

The parts (each a component of :mod:`hw.hcu`): :class:`TokenRing` (the tokens in flight),
:class:`Dispatcher` (catch-up and walk jobs, table reads, the walk's progress),
:class:`FreeLanePicker` (job ``j`` to the ``j``-th free lane), :class:`LaneIssue` (the jobs
reach their lanes with the hashes read), ``hcu_lanes`` :class:`SimilarityLane` units and
:class:`ArgminTree` (the oldest token's best match); the unit wires them, holds the table and
decides.

Streams and frames
------------------
``i`` carries :func:`token_layout` (``hash``, ``last``), ``o`` :func:`assignment_layout`
(``cluster``, ``new``, ``distance``, ``overflow``, ``last``), one assignment per token in order.
``last`` marks the final token of a frame and is passed through unchanged: frames do not change
the clustering (the table is shared by all frames), they only delimit the output.

Context port
------------
The context (the table's live slots and the opened-cluster counter) leaves on ``save`` and
enters from ``restore`` as context words (:mod:`hw.context_port`; the image, its checks and its
cycles are in :mod:`model.twins.hcu`, "Context port"). A ``ctx`` beat starts the operation: it
is taken when the unit holds no token, and while one is offered no new token is accepted (the
top sends it after a frame's last assignment). *Save*: an :class:`~hw.context_port.ImageWalker`
steps through the header (``opened``) and the ``min(opened, hash_mem_entries)`` live slots, one
word a cycle; all banks read the slot's row, a :class:`~hw.context_port.SavePipeline` registers
the banks' data and picks the slot's bank and word into the output register. *Restore*: each
word is registered on its transfer (:class:`~hw.context_port.RestoreRegister`), then checked and,
on a hash's last word, written to its bank. The image's ``opened`` takes effect when its last
word is checked; a refused image clears ``opened`` instead (an empty table) and raises
``context_refused`` until the next restore command or a reset.

Too many clusters
-----------------
When a token would open cluster number ``max_clusters`` (its id would not fit
``cluster_id_bits``), the unit sends it with ``overflow = 1``, ``cluster = 0``, ``new = 0``,
``distance = 0``, leaves the table unchanged, keeps joining later tokens to existing clusters,
and raises the sticky ``overflow`` status output until reset (the twin's ``on_overflow="flag"``).
Reset empties the table (the counters are cleared; the memory keeps stale data that is never
read).
"""

import functools
import operator

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hw.component import ConfiguredComponent
from hw.context_port import (WORD_BITS, ContextOp, ImageWalker, RestoreRegister, SavePipeline,
                             context_word_layout, item_words)
from hw.hcu.argmin import ArgminTree, stage_groups
from hw.hcu.dispatcher import Dispatcher
from hw.hcu.free_lanes import FreeLanePicker
from hw.hcu.issue import LaneIssue
from hw.hcu.lane import MIN_JOB_CYCLES, SimilarityLane
from hw.hcu.layouts import assignment_layout, context_command_layout, token_layout
from hw.hcu.ring import TokenRing

__all__ = ["HashClusterUnit"]


class HashClusterUnit(ConfiguredComponent):
    """The hash-bit cluster unit: token hashes in, cluster assignments out.

    Parameters
    ----------
    config : DREConfig
        Uses ``hash_bits``, ``hamming_threshold``, ``hcu_lanes``, ``hcu_bits_per_cycle``,
        ``hcu_tokens_in_flight``, ``hcu_dispatch_width``, ``hash_mem_entries`` and
        ``max_clusters``.

    Members
    -------
    i : In(stream.Signature(token_layout(config)))
        Token hashes in arrival order.
    o : Out(stream.Signature(assignment_layout(config)))
        One assignment per token, in order.
    overflow : Out(1)
        Sticky: a token needed cluster number ``max_clusters`` (see the module docstring).
    ctx : In(stream.Signature(context_command_layout()))
        Context commands: ``op`` save, restore (or none).
    save : Out(stream.Signature(context_word_layout()))
        The context image of a save.
    restore : In(stream.Signature(context_word_layout()))
        The context image of a restore.
    context_refused : Out(1)
        The last restored image was refused (the table is empty); cleared by the next restore
        command.

    Raises
    ------
    TypeError
        If ``config`` is not a :class:`DREConfig`.
    """

    def _members(self, config):
        return {
            "i": In(stream.Signature(token_layout(config))),
            "o": Out(stream.Signature(assignment_layout(config))),
            "overflow": Out(1),
            "ctx": In(stream.Signature(context_command_layout())),
            "save": Out(stream.Signature(context_word_layout())),
            "restore": In(stream.Signature(context_word_layout())),
            "context_refused": Out(1),
        }

    @property
    def tokens_in_flight(self):
        """Tokens the unit holds at once, ``hcu_tokens_in_flight``."""
        return self._config.hcu_tokens_in_flight

    @property
    def min_latency(self):
        """Fewest cycles from a token's input transfer to its assignment: the lanes clear the
        slot's matches in the cycle after the transfer, its argmin tree (three stages,
        :attr:`ArgminTree.latency`) sees them from the cycle after, so the decision comes five
        cycles after it."""
        return 2 + self._argmin_stages

    @property
    def min_token_cycles(self):
        """Fewest cycles between two assignments: one decision per cycle at most."""
        return 1

    @property
    def max_token_cycles(self):
        """Most cycles between two assignments without stalls. Once a token is the oldest its
        jobs go first; each of its at most ``hash_mem_entries`` compares waits at most one
        lane occupancy (``max(hcu_beats_per_hash, 5)`` cycles,
        :attr:`SimilarityLane.min_job_cycles`) for a lane, the last one runs through the read
        and load stages and its beats, and the argmin (three stages) and the decision take
        four more cycles."""
        beats = self._config.hcu_beats_per_hash
        occupancy = max(beats, MIN_JOB_CYCLES)
        return (self._config.hash_mem_entries + 1) * occupancy + 3 + self._argmin_stages

    @property
    def _argmin_stages(self):
        """Registered stages of each token slot's argmin tree."""
        return len(stage_groups(self._config.hcu_lanes))

    @property
    def save_latency(self):
        """Cycles from a saved word's issue (one a cycle after the command) to its transfer."""
        return SavePipeline.latency

    @property
    def peak_throughput(self):
        """Assignments per cycle at best; the twin gives the exact cycles of every token."""
        return 1 / self.min_token_cycles

    def elaborate(self, platform):
        # Design rationale in the module docstring. The parts, in the order a token meets them:
        # TokenRing (held tokens), Dispatcher + FreeLanePicker (jobs of this cycle, table reads),
        # LaneIssue (jobs reach their lanes two cycles later), SimilarityLane x hcu_lanes
        # (compares, the first beat a cycle after the load),
        # ArgminTree (the oldest token's best match), then the decision below.
        config = self._config
        m = Module()
        slots = config.hcu_tokens_in_flight
        width = config.hcu_dispatch_width
        bank_bits = width.bit_length() - 1
        m.submodules.ring = ring = TokenRing(config)
        m.submodules.dispatcher = dispatcher = Dispatcher(config)
        m.submodules.free_lanes = free_lanes = FreeLanePicker(config)
        m.submodules.issue = issue = LaneIssue(config)
        argmins = []
        for slot in range(slots):
            m.submodules[f"argmin{slot}"] = argmin = ArgminTree(config)
            argmins.append(argmin)
        lanes = []
        for index in range(config.hcu_lanes):
            m.submodules[f"lane{index}"] = lane = SimilarityLane(config)
            lanes.append(lane)
        reads, writes = self._table(m)
        opened = Signal(range(config.max_clusters + 1))
        head = ring.head

        # Decide. Each token slot has its argmin tree over the lanes' best matches (three
        # registered stages), and ``busy`` says per slot whether a job of it is in the read or
        # load stage or in a lane, or a token enters it or is cleared (a job dispatched in y is
        # in the read stage in y + 1, and in ``busy`` then). Cycle y: the slot's last beat (or
        # its clearing), busy; the lanes' best matches are registered at its end. Cycles
        # y + 1, y + 2, y + 3: the trees' three stages (and the "below the threshold" flag).
        # Cycle y + 4: the oldest token is decided from its tree once its walk is done, every
        # cluster opened before it has been compared, its slot was not busy in the three
        # previous cycles and no job of it was dispatched in the previous cycle (all of it in
        # the register ``blocked``).
        busy = Signal(slots)
        # ``history[k]``: busy k + 1 cycles before (registers), one per argmin stage.
        history = [Signal(slots, name=f"busy_{delay}")
                   for delay in range(1, self._argmin_stages)]
        # A job of the slot dispatched in this cycle: it is in the read stage in the next (the
        # dispatch itself is not in ``busy``, so the dispatcher's jobs end at registers).
        dispatching = Signal(slots)
        clearing = Signal(slots)       # a token entered the slot in the previous cycle
        # Bit s: slot s cannot be decided this cycle (its token is behind, a job of it was
        # dispatched in the previous cycle, or it was busy in one of the three cycles before):
        # a register made a cycle ahead, so the decision starts from flip-flops.
        blocked = Signal(slots)
        for slot in range(slots):
            m.d.comb += busy[slot].eq(
                Cat(lane.working & (lane.tag == slot) for lane in lanes).any()
                | (issue.read_valid & (issue.read_slot == slot))
                | (issue.load_valid & (issue.load_tag == slot))
                | (ring.push & (ring.tail == slot)) | clearing[slot])
            m.d.comb += dispatching[slot].eq(dispatcher.job_valid.any()
                                             & (dispatcher.job_slot == slot))
            for index, lane in enumerate(lanes):
                m.d.comb += [argmins[slot].distance[index].eq(lane.best_distance[slot]),
                             argmins[slot].cluster[index].eq(lane.best_cluster[slot])]
        m.d.sync += [delayed.eq(earlier) for delayed, earlier in zip(history, [busy] + history)]
        blocked_terms = [ring.behind_next, dispatching, busy, *history]
        m.d.sync += blocked.eq(functools.reduce(operator.or_, blocked_terms))
        best_distance = Array(argmin.best_distance for argmin in argmins)[head]
        best_cluster = Array(argmin.best_cluster for argmin in argmins)[head]
        best_found = Array(argmin.best_found for argmin in argmins)[head]
        found = Signal()
        # ``opened == max_clusters``, a register: a compare of ``opened`` with the constant, of
        # ``max_clusters - 1`` in the cycle a cluster opens, so the decision's "a new cluster
        # opens" starts from flip-flops and no wide compare stands before the ring's counters.
        # After a restore it is right from the next cycle but one, before any decision (the
        # unit is empty then, and a token is decided at least ``min_latency`` cycles after it
        # enters).
        full = Signal()
        decide = Signal()
        m.d.comb += [
            found.eq(best_found),
            self.o.valid.eq((ring.held != 0) & (dispatcher.walk_age != 0)
                            & ~blocked.bit_select(head, 1)),
            self.o.payload.last.eq(ring.last[head]),
            self.o.payload.cluster.eq(Mux(found, best_cluster,
                                          Mux(full, 0, opened[:config.cluster_id_bits]))),
            self.o.payload.new.eq(~found & ~full),
            self.o.payload.distance.eq(Mux(found, best_distance, 0)),
            self.o.payload.overflow.eq(~found & full),
            decide.eq(self.o.valid & self.o.ready),
        ]
        for bank, write in enumerate(writes):
            m.d.comb += [write.addr.eq(opened[bank_bits:config.hash_slot_bits]),
                         write.data.eq(ring.hash[head])]
        with m.If(decide):
            with m.If(~found & ~full):
                for bank, write in enumerate(writes):
                    m.d.comb += write.en.eq(opened[:bank_bits] == bank if width > 1 else 1)
                m.d.sync += opened.eq(opened + 1)
            with m.If(~found & full):
                m.d.sync += self.overflow.eq(1)

        # Dispatch this cycle's jobs to the lowest free lanes; they reach the lanes two cycles
        # later (read, then load: :class:`LaneIssue`) and beat from the next.
        m.d.comb += [
            free_lanes.available_next.eq(Cat(lane.available_next for lane in lanes)),
            free_lanes.taken.eq(dispatcher.job_valid),
            dispatcher.head.eq(head), dispatcher.held.eq(ring.held),
            dispatcher.seen.eq(ring.seen), dispatcher.behind_next.eq(ring.behind_next),
            dispatcher.tail.eq(ring.tail),
            dispatcher.lag.eq(ring.lag),
            dispatcher.opened.eq(opened), dispatcher.push.eq(ring.push),
            dispatcher.opens.eq(ring.opens),
            dispatcher.found.eq(free_lanes.found), dispatcher.pop.eq(decide),
            ring.bump.eq(dispatcher.bump), ring.bump_slot.eq(dispatcher.bump_slot),
            issue.job_valid.eq(dispatcher.job_valid), issue.job_lane.eq(free_lanes.lane),
            issue.job_cluster.eq(dispatcher.job_cluster), issue.job_slot.eq(dispatcher.job_slot),
            issue.token.eq(ring.hash),
        ]
        for bank, read in enumerate(reads):
            m.d.comb += [read.addr.eq(dispatcher.read_row[bank]),
                         issue.bank_data[bank].eq(read.data)]
        for index, lane in enumerate(lanes):
            m.d.comb += [lane.reserved.eq(issue.reserved[index]),
                         lane.load.eq(issue.load[index]), lane.load_tag.eq(issue.load_tag),
                         lane.load_difference.eq(issue.load_difference[index]),
                         lane.load_cluster.eq(issue.load_cluster[index])]

        m.d.sync += full.eq(Mux(ring.opens, opened == config.max_clusters - 1,
                                opened == config.max_clusters))
        idle = self._context_port(m, ring, opened, reads, writes)

        # Accept into the slot after the youngest; the oldest leaves on its decision. An
        # offered context command holds new tokens back until it is taken and done.
        m.d.comb += [
            self.i.ready.eq((ring.held < slots) | decide),
            ring.push.eq(self.i.valid & self.i.ready),
            ring.push_hash.eq(self.i.payload.hash), ring.push_last.eq(self.i.payload.last),
            ring.push_seen.eq(opened), ring.pop.eq(decide),
            ring.opens.eq(decide & ~found & ~full),
        ]
        with m.If(~idle | self.ctx.valid):
            m.d.comb += self.i.ready.eq(0)
        # The lanes forget the best matches of a slot the cycle after a token enters it, from a
        # register (it reaches every lane's best-match registers of the slot; the token's
        # first compare beats three cycles after its first dispatch, at the earliest the
        # cycle after the entry).
        m.d.sync += clearing.eq(0)
        with m.If(ring.push):
            m.d.sync += clearing.bit_select(ring.tail, 1).eq(1)
        for lane in lanes:
            m.d.comb += lane.clear.eq(clearing)
        return m

    def _context_port(self, m, ring, opened, reads, writes):
        """The save and restore of the context (module docstring, "Context port"); returns
        the signal that says no context operation is under way."""
        config = self._config
        entries, width = config.hash_mem_entries, config.hcu_dispatch_width
        bank_bits = width.bit_length() - 1
        hash_words = item_words(config.hash_bits)
        m.submodules.ctx_walker = walker = ImageWalker([(1, 1), (entries, hash_words)])
        tag_layout = data.StructLayout({"header": 1, "bank": max(bank_bits, 1),
                                        "chunk": range(max(hash_words, 2))})
        m.submodules.save_pipeline = pipeline = SavePipeline(tag_layout)
        m.submodules.restore_register = restored = RestoreRegister()
        wiring.connect(m, pipeline.o, wiring.flipped(self.save))
        wiring.connect(m, wiring.flipped(self.restore), restored.i)
        slot_bank = walker.index[:bank_bits] if bank_bits else Const(0, 1)
        slot_row = walker.index[bank_bits:config.hash_slot_bits]

        idle = Signal()
        issuing = Signal()             # save: words left to issue
        last_taken = Signal()          # restore: the word with ``last`` was taken
        bad = Signal()                 # restore: the image is refused
        walked = Signal()              # restore: the walk passed the image's last word
        restored_opened = Signal.like(opened)
        assembly = Signal(WORD_BITS * hash_words)
        item = Signal(WORD_BITS * hash_words)
        m.d.comb += item.eq(Cat(assembly[WORD_BITS:], restored.word) if hash_words > 1
                            else restored.word)
        data_registers = [Signal(config.hash_bits, name=f"save_data{bank}")
                          for bank in range(width)]
        tag = pipeline.tag
        saved_hash = Cat(Array(data_registers)[tag.bank], Const(0, WORD_BITS * hash_words
                                                                 - config.hash_bits))
        m.d.comb += pipeline.word.eq(Mux(tag.header, opened,
                                         saved_hash.word_select(tag.chunk, WORD_BITS)))
        # The header's checks are made on the word as it arrives and registered with it (the
        # restore register takes the word every cycle), so the refusal and the walk's counts
        # start from flip-flops: ``header_live`` = min(word, entries), ``header_above`` = word
        # above max_clusters; ``restored_live`` = min(restored opened, entries), kept with it.
        arriving = self.restore.payload.word
        header_live = Signal(range(entries + 1))
        header_above = Signal()
        restored_live = Signal(range(entries + 1))
        m.d.sync += [header_live.eq(Mux(arriving > entries, entries, arriving)),
                     header_above.eq(arriving > config.max_clusters)]
        # The registered restore word breaks a field's range (header) or has a bit set above
        # hash_bits (a hash's last word).
        word_bad = Signal()
        m.d.comb += word_bad.eq(Mux(walker.section == 0, header_above,
                                    (walker.chunk == hash_words - 1)
                                    & item[config.hash_bits:].any()))

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += [idle.eq(1), self.ctx.ready.eq(ring.held == 0),
                             walker.start.eq(1)]
                with m.If(self.ctx.valid & self.ctx.ready):
                    with m.Switch(self.ctx.payload.op):
                        with m.Case(ContextOp.SAVE):
                            m.d.sync += issuing.eq(1)
                            m.next = "SAVE"
                        with m.Case(ContextOp.RESTORE):
                            m.d.sync += [last_taken.eq(0), bad.eq(0), walked.eq(0),
                                         self.context_refused.eq(0)]
                            m.next = "RESTORE"

            with m.State("SAVE"):
                # One word issued a cycle: every bank reads the slot's row.
                m.d.comb += [walker.count1.eq(Mux(opened > entries, entries, opened)),
                             pipeline.issue.eq(issuing), pipeline.issue_last.eq(walker.final),
                             pipeline.issue_tag.header.eq(walker.section == 0),
                             pipeline.issue_tag.bank.eq(slot_bank),
                             pipeline.issue_tag.chunk.eq(walker.chunk),
                             walker.step.eq(issuing & pipeline.advance)]
                for read in reads:
                    m.d.comb += [read.addr.eq(slot_row), read.en.eq(pipeline.advance)]
                with m.If(pipeline.advance):
                    m.d.sync += [register.eq(read.data)
                                 for register, read in zip(data_registers, reads)]
                    with m.If(walker.final):
                        m.d.sync += issuing.eq(0)
                with m.If(self.save.valid & self.save.ready & self.save.payload.last):
                    m.next = "IDLE"

            with m.State("RESTORE"):
                # Words are taken until the one with ``last``; each is checked (and a hash
                # written) in the cycle after its transfer.
                m.d.comb += [restored.accept.eq(~last_taken),
                             walker.count1.eq(Mux(walker.section == 0, header_live,
                                                  restored_live)),
                             walker.step.eq(restored.valid)]
                with m.If(self.restore.valid & self.restore.ready & self.restore.payload.last):
                    m.d.sync += last_taken.eq(1)
                with m.If(restored.valid):
                    if hash_words > 1:
                        m.d.sync += assembly.eq(item)
                    with m.If(~bad & ~walked):
                        with m.If(word_bad):
                            m.d.sync += bad.eq(1)
                        with m.If(walker.section == 0):
                            m.d.sync += [restored_opened.eq(restored.word),
                                         restored_live.eq(header_live)]
                        with m.Elif(walker.chunk == hash_words - 1):
                            for bank, write in enumerate(writes):
                                m.d.comb += [write.addr.eq(slot_row),
                                             write.data.eq(item[:config.hash_bits]),
                                             write.en.eq(slot_bank == bank)]
                        with m.If(walker.final):
                            m.d.sync += walked.eq(1)
                    with m.If(restored.last):
                        # An image of only a header is accepted only with ``opened`` 0.
                        refused = bad | walked | word_bad | ~walker.final
                        m.d.sync += [opened.eq(Mux(refused | (walker.section == 0), 0,
                                                   restored_opened)),
                                     self.context_refused.eq(refused)]
                        m.next = "IDLE"
        return idle

    def _table(self, m):
        """The cluster-hash table: ``hcu_dispatch_width`` (D) banks, cluster ``c`` in bank
        ``c mod D`` at row ``(c mod hash_mem_entries) // D``, each with one synchronous read
        port and one write port. Returns the read ports and the write ports, one per bank."""
        config = self._config
        rows = config.hash_mem_entries // config.hcu_dispatch_width
        reads, writes = [], []
        for bank in range(config.hcu_dispatch_width):
            memory = Memory(shape=unsigned(config.hash_bits), depth=rows, init=[])
            m.submodules[f"table{bank}"] = memory
            reads.append(memory.read_port())
            writes.append(memory.write_port())
        return reads, writes
