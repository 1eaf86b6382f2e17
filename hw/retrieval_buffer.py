"""Retrieval buffer of the DRE: selected clusters in, KV fetch descriptors ``(base, length)`` out.

The buffer follows the WiCSum threshold unit. Per (layer, KV head, frame) problem it receives
the selected clusters as a stream in ascending cluster index, keeps every one of them (dynamic
mode), the ``topk_k`` best (top-k mode) or the best ones within a token budget (budgeted
dynamic mode), and emits fetch descriptors of the cluster-contiguous KV layout in ascending
address order with adjacent ranges merged. The bit-exact contract and the cycle model are in
:mod:`model.twins.retrieval_buffer`; the two are equal, outputs and cycles.

Design rationale
----------------
*Layout in the input stream.* Each input beat carries the cluster's ``base`` and ``count``
besides its ``score``. The layout already exists upstream: the KV manager owns the addresses,
the hash-cluster table and the threshold unit's count memory hold the counts, all updated while a
frame is clustered; a second copy inside the buffer would cost ``max_clusters x
(kv_token_bits + count_bits)`` bits of memory (16 KiB for ``edge``) and a write port that must
be kept coherent with the first. The producer joins the selected cluster index with one table
read, which it needs anyway. The buffer is then stateless between problems and needs no cluster
index at all: ties go to the earlier beat, which is the lower index.

*Runtime mode.* Every beat has a ``topk`` bit; the value on a problem's first beat holds for the
whole problem, so one instance serves the DRE (dynamic) and the fixed top-k baselines. The token
budget is a configuration constant (``token_budget``); 0 builds no budget logic.

*Sorted insertion buffer.* Top-k and budgeted dynamic modes collect candidates in a
``topk_k``-entry register array kept sorted by score (ties: the older entry stays first). A new
candidate is compared with every entry in parallel in the cycle it is taken, and the results
(one bit per entry, ``stays``) are registered with it; it is inserted in the next cycle, entries
behind it shifting by one, while the next candidate is compared. That compare sees the entries
as the insertion under way leaves them: per position the insertion's registered choice picks
the compare with the entry itself, with the entry before it (shifted in) or with the held
candidate (put there), so no comparator stands behind the insertion and the loop through the
entries is a multiplexer. For the budget each entry keeps the running token total up to and including itself,
so an insertion adds the new count to the entries behind it: ``topk_k`` adders in parallel, no
carry chain through the array, and the entries whose total passes the budget fall off the end.
The best-ranked cluster ever dropped is remembered (its score): a later candidate ranked behind
it can never be kept and is refused, which makes the streamed result equal to the prefix rule.
Without a budget this is not needed (a dropped cluster is the last of a full buffer, and a
candidate ranked behind it falls off the end by itself) and not built.

*Drain in address order.* After the last beat the kept entries leave one per cycle, lowest base
first, into the same merger the dynamic mode uses directly. Bases ascend with arrival (the
layout contract), and the kept entries are a prefix of the array: an odd-even transposition
sort by base puts them in address order in place, one round per cycle, ``n`` rounds for ``n``
kept entries (each round compares the pairs of neighbours ``(p, p + 1)`` of one parity and
exchanges their base and count when the later one is lower). The head entry then leaves
through a register (``drained``) to the merger, the array shifting by one toward the head. Every
entry talks only to its neighbours: an earlier structure recorded which of each pair of
entries arrived first (``topk_k (topk_k - 1) / 2`` flip-flops moved in two dimensions on each
insertion) and chose the earliest entry by an AND-OR over all of them, and on the ECP5 that
all-to-all wiring did not finish routing.

*Merger* (:class:`DescriptorMerger`). One pending descriptor register grows while the next
range starts where it ends (its end is a register of its own, so the test is one equality
compare); a range that does not continue it pushes it to the output register.
The last range of a problem leaves a flush cycle that emits the pending descriptor with
``last = 1`` (a length-0 beat if nothing was kept). The descriptor length is
``kv_token_bits + 1`` bits, enough for the whole address space, so nothing saturates, wraps or
splits.

*Timing.* One input beat per cycle in every mode; the output register breaks the path from
``i`` to ``o`` (``i.ready`` does depend on ``o.ready``). Per problem, from its first input
transfer to its last output transfer with no stalls: ``beats + 2`` cycles in dynamic mode
without a budget, ``beats + 1 + kept + max(1, kept) + 1 + 2`` in top-k and budgeted dynamic
mode, where ``beats = max(1, selected clusters)`` (:attr:`RetrievalBuffer.insert_latency` is
the 1, :attr:`RetrievalBuffer.sort_rounds_per_entry` the factor of the sort's ``kept``,
:attr:`RetrievalBuffer.drain_latency` the second 1, :attr:`RetrievalBuffer.flush_latency` the 2; the
twin :mod:`model.twins.retrieval_buffer` states the same cycle model independently). A problem
after a buffered one starts once the drain is over.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.component import ConfiguredComponent

__all__ = ["cluster_layout", "range_layout", "descriptor_layout", "DescriptorMerger",
           "RetrievalBuffer"]


def cluster_layout(config):
    """Payload of the input stream: one selected cluster of a problem.

    Fields (first in the lowest bits): ``score`` (``score_bits``), ``base`` (``kv_token_bits``),
    ``count`` (``count_bits``), ``selected`` (0 only on the single beat of an empty selection;
    such a beat carries no cluster), ``topk`` (mode: 0 dynamic, 1 top-k; read on a problem's
    first beat), ``last`` (last beat of the problem).
    """
    return data.StructLayout({
        "score": config.score_bits,
        "base": config.kv_token_bits,
        "count": config.count_bits,
        "selected": 1,
        "topk": 1,
        "last": 1,
    })


def range_layout(config):
    """Payload of the merger's input: one token range (or none) of a problem.

    Fields: ``base`` (``kv_token_bits``), ``count`` (``count_bits``), ``present`` (0: the beat
    carries no range, only ``last``), ``last`` (last range of the problem).
    """
    return data.StructLayout({
        "base": config.kv_token_bits,
        "count": config.count_bits,
        "present": 1,
        "last": 1,
    })


def descriptor_layout(config):
    """Payload of the output stream: one fetch descriptor.

    Fields: ``base`` (``kv_token_bits``), ``length`` (``kv_token_bits + 1``; 0 only on the single
    beat of a problem with nothing kept), ``last`` (last descriptor of the problem).
    """
    return data.StructLayout({
        "base": config.kv_token_bits,
        "length": config.kv_token_bits + 1,
        "last": 1,
    })


class DescriptorMerger(ConfiguredComponent):
    """Merges a problem's ascending token ranges into fetch descriptors.

    A pending descriptor grows while the next range starts where it ends; a range that does not
    continue it pushes it into the output register. After a problem's last range one flush
    cycle emits the pending descriptor with ``last = 1``, or a length-0 beat when the problem
    had no range. Ranges must be ascending and end at most at ``2**kv_token_bits``; the
    ``kv_token_bits + 1`` bit length then holds any merged length exactly.

    Parameters
    ----------
    config : DREConfig
        Supplies ``kv_token_bits`` and ``count_bits``.

    Members
    -------
    i : In(stream.Signature(range_layout(config)))
        Ranges, one per cycle; ``ready`` is low only in the flush cycle and when the output
        register is full and not being read.
    o : Out(stream.Signature(descriptor_layout(config)))
        Descriptors, from a register (no combinational path from ``i``).
    """

    def _members(self, config):
        return {
            "i": In(stream.Signature(range_layout(config))),
            "o": Out(stream.Signature(descriptor_layout(config))),
        }

    def elaborate(self, platform):
        m = Module()
        kv_bits = self._config.kv_token_bits
        piece = self.i.payload
        out = self.o.payload
        pending = Signal()
        pending_base = Signal(kv_bits)
        pending_len = Signal(kv_bits + 1)
        # The pending descriptor's end, ``pending_base + pending_len``, kept in a register so
        # that the continuation test is one equality compare (ranges end at most at
        # ``2**kv_token_bits``); both candidate ends are summed beside it.
        pending_end = Signal(kv_bits + 1)
        flush = Signal()
        out_free = ~self.o.valid | self.o.ready
        m.d.comb += self.i.ready.eq(~flush & out_free)

        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(self.i.valid & self.i.ready):
            with m.If(piece.present):
                with m.If(pending & (piece.base == pending_end)):
                    m.d.sync += [pending_len.eq(pending_len + piece.count),
                                 pending_end.eq(pending_end + piece.count)]
                with m.Else():
                    with m.If(pending):
                        m.d.sync += [self.o.valid.eq(1), out.base.eq(pending_base),
                                     out.length.eq(pending_len), out.last.eq(0)]
                    m.d.sync += [pending.eq(1), pending_base.eq(piece.base),
                                 pending_len.eq(piece.count),
                                 pending_end.eq(piece.base + piece.count)]
            with m.If(piece.last):
                m.d.sync += flush.eq(1)
        with m.Elif(flush & out_free):
            m.d.sync += [self.o.valid.eq(1),
                         out.base.eq(Mux(pending, pending_base, 0)),
                         out.length.eq(Mux(pending, pending_len, 0)),
                         out.last.eq(1),
                         flush.eq(0), pending.eq(0)]
        return m


class RetrievalBuffer(ConfiguredComponent):
    """Dynamic / top-k retrieval buffer emitting merged KV fetch descriptors.

    Parameters
    ----------
    config : DREConfig
        Supplies ``score_bits``, ``count_bits``, ``kv_token_bits``, ``topk_k`` (the capacity of
        the sorted buffer) and ``token_budget``.

    Members
    -------
    i : In(stream.Signature(cluster_layout(config)))
        Selected clusters of a problem, ascending cluster index.
    o : Out(stream.Signature(descriptor_layout(config)))
        Fetch descriptors, ascending base, adjacent ranges merged.

    Raises
    ------
    TypeError
        If ``config`` is not a :class:`DREConfig`.
    """

    def _members(self, config):
        return {
            "i": In(stream.Signature(cluster_layout(config))),
            "o": Out(stream.Signature(descriptor_layout(config))),
        }

    @property
    def capacity(self):
        """Entries of the sorted buffer (``topk_k``)."""
        return self._config.topk_k

    #: Input beats accepted per cycle in every mode (throughput).
    beats_per_cycle = 1
    #: Cycles after the last input beat (pass-through) or the last drained entry (buffered
    #: modes) until the last descriptor is transferred: the merger's flush cycle, then its
    #: output register.
    flush_latency = 2
    #: Pipeline cycles of the drain between the head entry and the merger: the registered
    #: entry (``drained``, the head of a two-entry queue that is only filled by stalls).
    drain_latency = 1
    #: Rounds of the odd-even transposition sort by base, per kept entry (a sort of ``n``
    #: entries takes ``n`` rounds, one per cycle, between the last insertion and the drain).
    sort_rounds_per_entry = 1
    #: Cycles from a buffered beat's transfer to its insertion (the beat and its compares with
    #: the entries registered, ``held`` and ``stays``).
    insert_latency = 1

    def elaborate(self, platform):
        # Every entry talks only to its neighbours. The array used to record the arrival order
        # of each pair of entries (topk_k (topk_k - 1) / 2 flip-flops, moved in two dimensions
        # on each insertion) and to drain by an AND-OR choice over all of them: on the ECP5
        # that all-to-all wiring did not route. Bases ascend with arrival (the layout
        # contract), so after the last insertion the kept entries are sorted by base in place
        # by an odd-even transposition sort (one round per cycle, the compare of each pair of
        # neighbours), then leave from the head, the array shifting by one per cycle.
        m = Module()
        config = self._config
        k = config.topk_k
        beat = self.i.payload
        m.submodules.merger = merger = DescriptorMerger(config)
        wiring.connect(m, merger.o, wiring.flipped(self.o))

        # The mode of a problem's first beat holds for the whole problem.
        in_problem = Signal()
        mode_topk = Signal()
        beat_topk = Mux(in_problem, mode_topk, beat.topk)
        beat_buffered = beat_topk | (config.token_budget > 0)
        candidate = beat.selected & (beat.count != 0)
        take = Signal()
        # The held beat (collect stage: the beat, then its insertion a cycle later).
        held = Signal(cluster_layout(config))
        held_offered = Signal()
        held_last = Signal()
        held_budget = Signal()
        # After the last insertion: sort rounds, then the drain. The phase of the next cycle is
        # decided a cycle ahead into registers (``sort_even``, ``sort_odd``, ``drain_phase``),
        # so that the nets reaching every entry start at a flip-flop; ``rounds_left`` holds one
        # bit per sort round still to run (loaded with the valid entries, a prefix).
        rounds_left = Signal(k)
        sort_even = Signal()
        sort_odd = Signal()
        drain_phase = Signal()
        finishing = Signal()
        drain_step = Signal()
        # The drained entries wait in a two-entry queue before the merger: ``drained`` (the
        # merger's input, so its select starts at a flip-flop of few loads) and ``spare``. The
        # array shifts whenever ``spare`` is free, so the enable that reaches every entry
        # comes from two flip-flops, not from the merger's handshake.
        drained = Signal(range_layout(config))
        drained_valid = Signal()
        spare = Signal(range_layout(config))
        spare_valid = Signal()
        m.d.comb += [
            finishing.eq(sort_even | sort_odd | drain_phase),
            drain_step.eq(drain_phase & ~spare_valid),
            # A new problem waits until the drain is over (descriptors stay in order and the
            # entries are not overwritten while they are still being drained).
            self.i.ready.eq(~held_last & ~finishing & ~drained_valid & ~spare_valid
                            & merger.i.ready),
            take.eq(self.i.valid & self.i.ready),
        ]
        with m.If(take):
            m.d.sync += [in_problem.eq(~beat.last), mode_topk.eq(beat_topk)]

        # Sorted buffer: entry 0 holds the best-ranked cluster. A buffered beat is held one
        # cycle with its compares (``stays``, registered) and inserted the next cycle; the
        # sort starts after the last beat's insertion cycle.
        entries = self._entries()
        held_stays = [Signal(name=f"entry{n}_stays") for n in range(k)]
        insertion = self._insertion(m, entries, held, held_stays, held_offered,
                                    budget_active=held_budget)
        insertion["stays"] = held_stays
        stays_next = self._stays(m, entries, held, insertion, beat)
        # The held beat and its compares are only used in the cycle after a transfer (its
        # insertion, when ``held_offered``), so they load every cycle: no enable, and no path
        # from the stream handshake to the comparators' registers.
        m.d.sync += [held_offered.eq(take & beat_buffered & candidate),
                     held_last.eq(take & beat_buffered & beat.last),
                     held.eq(beat), held_budget.eq(~beat_topk),
                     *[held_stays[n].eq(stays_next[n]) for n in range(k)]]
        with m.If(held_last):
            valid_after = Mux(insertion["inserting"], Cat(insertion["keep"]),
                              Cat(entries["valid"]))
            m.d.sync += [rounds_left.eq(valid_after), sort_even.eq(valid_after[0]),
                         drain_phase.eq(~valid_after[0])]
        with m.If(sort_even | sort_odd):
            another = rounds_left[1] if k > 1 else Const(0)
            m.d.sync += [rounds_left.eq(rounds_left >> 1), sort_even.eq(sort_odd & another),
                         sort_odd.eq(sort_even & another), drain_phase.eq(~another)]

        # Sort rounds: the pairs (n, n + 1) with n even in even rounds, odd in odd rounds,
        # exchange base and count when the later one is valid and has the lower base (the
        # valid entries are a prefix, so an invalid one acts as the highest base). ``n``
        # rounds sort ``n`` entries; valid bits and scores do not move.
        exchange = []
        for n in range(k - 1):
            exchange.append(Signal(name=f"pair{n}_exchange"))
            later_lower = entries["valid"][n + 1] & (entries["base"][n + 1] < entries["base"][n])
            m.d.comb += exchange[n].eq((sort_odd if n % 2 else sort_even) & later_lower)

        # Drain: the head entry goes to the ``drained`` register and the array shifts toward
        # the head. The last one is the head when the entry behind it is invalid (with nothing
        # kept, one beat without a range).
        head_last = ~entries["valid"][1] if k > 1 else Const(1)
        head = Signal(range_layout(config))
        m.d.comb += [head.present.eq(entries["valid"][0]), head.base.eq(entries["base"][0]),
                     head.count.eq(entries["count"][0]), head.last.eq(head_last)]
        with m.If(~drained_valid | merger.i.ready):
            # ``drained`` is free or handed over: it takes the spare entry, else the head.
            m.d.sync += [drained_valid.eq(spare_valid | drain_step),
                         drained.eq(Mux(spare_valid, spare, head)), spare_valid.eq(0)]
        with m.Elif(drain_step):
            m.d.sync += [spare_valid.eq(1), spare.eq(head)]
        with m.If(drain_step & head_last):
            m.d.sync += drain_phase.eq(0)
            if config.token_budget > 0:
                m.d.sync += entries["dropped_valid"].eq(0)
        self._update_entries(m, entries, insertion, held, exchange, drain_step)

        # Merger input: the drained entry (buffered modes) or the input beat (pass-through).
        piece = merger.i.payload
        with m.If(drained_valid):
            m.d.comb += [merger.i.valid.eq(1), piece.eq(drained)]
        with m.Else():
            m.d.comb += [merger.i.valid.eq(self.i.valid & ~held_last & ~finishing
                                           & ~beat_buffered),
                         piece.present.eq(candidate), piece.base.eq(beat.base),
                         piece.count.eq(beat.count), piece.last.eq(beat.last)]
        return m

    def _entries(self):
        """The registers of the sorted buffer, as a dict of per-entry signal lists."""
        config = self._config
        fields = {"valid": 1, "score": config.score_bits, "base": config.kv_token_bits,
                  "count": config.count_bits}
        if config.token_budget > 0:
            fields["total"] = self._total_bits
        entries = {field: [Signal(width, name=f"entry{n}_{field}")
                           for n in range(config.topk_k)]
                   for field, width in fields.items()}
        if config.token_budget > 0:
            entries["dropped_valid"] = Signal()
            entries["dropped_score"] = Signal(config.score_bits)
        return entries

    @property
    def _total_bits(self):
        # Running totals of kept entries are at most token_budget <= 2**kv_token_bits; one
        # insertion adds at most max_count before the comparison.
        return max(self._config.kv_token_bits + 1, self._config.count_bits) + 1

    def _insertion(self, m, entries, beat, stays, offered, budget_active):
        """Insert the held ``beat`` when ``offered`` and ranked before the best dropped cluster.

        ``stays`` (registered with the beat, :meth:`_stays`) says which entries have a score at
        least as high as the beat's: they stay (older entries win ties), the beat takes the
        first other position, the rest shift by one. Position ``topk_k`` is the one pushed out.
        With a budget each entry's running total becomes the total of the entry before it plus
        the new count.

        Returns
        -------
        dict
            ``inserting`` (the beat is inserted this cycle), ``keep`` (per position, valid after
            it), ``is_new`` (per position, the beat goes there).
        """
        config = self._config
        k = config.topk_k
        use_budget = config.token_budget > 0
        inserted = {"valid": Const(1), "score": beat.score}
        stays = list(stays) + [Const(0)]

        following, keep = [], []
        for n in range(k + 1):
            after_new = stays[n - 1] if n > 0 else Const(1)
            nxt = {}
            for field in ("valid", "score"):
                mine = entries[field][n] if n < k else 0
                shifted = entries[field][n - 1] if n > 0 else 0
                value = Mux(stays[n], mine, Mux(after_new, inserted[field], shifted))
                if n < k:  # named for waveforms; position k is only an expression
                    nxt[field] = Signal(len(entries[field][n]), name=f"next{n}_{field}")
                    m.d.comb += nxt[field].eq(value)
                else:
                    nxt[field] = value
            within = Const(1)
            if use_budget and n < k:
                # lossless: a kept total is at most 2**kv_token_bits, plus one count
                behind_total = ((entries["total"][n - 1] + beat.count)[:self._total_bits]
                                if n > 0 else beat.count)
                nxt["total"] = Signal(self._total_bits, name=f"next{n}_total")
                m.d.comb += nxt["total"].eq(Mux(stays[n], entries["total"][n], behind_total))
                within = ~budget_active | (nxt["total"] <= config.token_budget)
            if n < k:
                keep.append(Signal(name=f"next{n}_keep"))
                m.d.comb += keep[n].eq(nxt["valid"] & within)
            else:
                keep.append(Const(0))
            following.append(nxt)

        # Best-ranked cluster this insertion drops: the first position not kept. Occupied and
        # kept positions are both prefixes (running totals grow with the position), so that
        # position is one-hot and its score a balanced OR tree, not a priority chain. Without a
        # budget (top-k only) nothing needs remembering: a dropped cluster is the last of a full
        # buffer, ranked behind every kept one, so a later candidate ranked behind it falls off
        # the end by itself and leaves the entries as they were.
        refused = Const(0)
        if use_budget:
            first_dropped = [following[n]["valid"] & ~keep[n] & (keep[n - 1] if n > 0 else 1)
                             for n in range(k + 1)]
            any_dropped = Signal()
            first_dropped_score = Signal(config.score_bits)
            m.d.comb += [
                any_dropped.eq(Cat(first_dropped).any()),
                first_dropped_score.eq(_or_tree([
                    following[n]["score"] & first_dropped[n].replicate(config.score_bits)
                    for n in range(k + 1)])),
            ]
            refused = entries["dropped_valid"] & ~(beat.score > entries["dropped_score"])
            with m.If(offered & ~refused & any_dropped):
                m.d.sync += [entries["dropped_valid"].eq(1),
                             entries["dropped_score"].eq(first_dropped_score)]
        after_new = [Const(1)] + stays[:k - 1]
        is_new = [~stays[n] & after_new[n] for n in range(k)]

        inserting = Signal(name="inserting")
        m.d.comb += inserting.eq(offered & ~refused)
        if use_budget:
            with m.If(inserting):
                m.d.sync += [entries["total"][n].eq(following[n]["total"]) for n in range(k)]
        return {"inserting": inserting, "keep": keep[:k], "is_new": is_new}

    @staticmethod
    def _update_entries(m, entries, insertion, held, exchange, drain_step):
        """Write the entries: insertion of the held beat, sort exchanges, drain shift.

        The three never happen in the same cycle. Per entry the choice is made by explicit
        selects from registered phase flags and signals of the entry and its neighbours only
        (its ``stays`` and ``is_new``, the exchange of its two pairs): ``from_behind`` (entry
        ``n + 1`` moves here: an exchange or the drain), ``from_ahead`` (entry ``n - 1``: an
        exchange or the shift behind an insertion) and ``gets_new`` (the held beat).
        """
        k = len(entries["valid"])
        inserting, stays, is_new = insertion["inserting"], insertion["stays"], insertion["is_new"]
        for n in range(k):
            shifted = inserting & ~stays[n] & ~is_new[n] if n > 0 else Const(0)
            gets_new = Signal(name=f"entry{n}_gets_new")
            from_ahead = Signal(name=f"entry{n}_from_ahead")
            from_behind = Signal(name=f"entry{n}_from_behind")
            m.d.comb += [
                gets_new.eq(inserting & is_new[n]),
                from_ahead.eq(shifted | (exchange[n - 1] if n > 0 else 0)),
                from_behind.eq(exchange[n] | drain_step if n + 1 < k else 0),
            ]
            for field in ("base", "count"):
                ahead = entries[field][n - 1] if n > 0 else 0
                behind = entries[field][n + 1] if n + 1 < k else 0
                with m.If(gets_new | from_ahead | from_behind):
                    m.d.sync += entries[field][n].eq(
                        Mux(from_behind, behind, Mux(from_ahead, ahead, getattr(held, field))))
            with m.If(gets_new | shifted):
                ahead = entries["score"][n - 1] if n > 0 else 0
                m.d.sync += entries["score"][n].eq(Mux(gets_new, held.score, ahead))
            with m.If(inserting | drain_step):
                behind = entries["valid"][n + 1] if n + 1 < k else 0
                m.d.sync += entries["valid"][n].eq(Mux(drain_step, behind, insertion["keep"][n]))

    @staticmethod
    def _stays(m, entries, held, insertion, beat):
        """Per entry, whether it ranks at least as high as ``beat`` (the input beat), once the
        held beat's insertion of this cycle is done: registered with ``beat`` when it is taken.

        The entries' scores are compared with the beat's directly; the insertion under way
        only chooses, per position, which compare applies (the entry's own, the one of the
        entry before it, which shifts in, or the held beat's, which goes there): a register
        and a multiplexer behind the comparators, never a comparator behind the insertion.
        """
        k = len(entries["valid"])
        at_least = [entries["score"][n] >= beat.score for n in range(k)]
        held_at_least = held.score >= beat.score
        stays = []
        for n in range(k):
            shifted = at_least[n - 1] if n > 0 else Const(0)
            moved = Mux(insertion["stays"][n], at_least[n],
                        Mux(insertion["is_new"][n], held_at_least, shifted))
            valid = Mux(insertion["inserting"], insertion["keep"][n], entries["valid"][n])
            stays.append(Signal(name=f"entry{n}_stays_next"))
            m.d.comb += stays[n].eq(valid & Mux(insertion["inserting"], moved, at_least[n]))
        return stays


def _or_tree(values):
    """Bitwise OR of ``values`` as a balanced tree (logarithmic depth)."""
    while len(values) > 1:
        values = [values[n] | values[n + 1] if n + 1 < len(values) else values[n]
                  for n in range(0, len(values), 2)]
    return values[0]
