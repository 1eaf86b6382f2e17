"""Formal harness of the KV management unit (:class:`hw.kvmu.KVManagementUnit`).

Input assumptions (besides the stream rule), on each beat when it is taken: a command asks for
1 to ``max_frame_tokens`` new tokens; an assignment opens the next cluster (``new``, id equal
to the clusters opened since the last restart, fewer than ``max_clusters``) or joins an opened
one; a selection names opened clusters in strictly ascending order, ``last`` on its final beat
(only a beat below the highest opened cluster may be followed by another), or is the single
``empty`` beat of its problem. The RTL's ``ready`` never depends on a payload, so assuming
these at the transfer is assuming them of the producer.

The harness keeps its own model of the context from the inputs alone (the twin's contract,
:mod:`model.twins.kvmu`): the tokens resident in the window, the tokens each cluster has
offloaded (``stored``), each cluster's members, and the store addresses written.

Properties (group: what is asserted)
------------------------------------
contract
    ``moves``, ``counts`` and ``fetch`` keep ``valid`` and their payloads while stalled;
    ``cmd``, ``assign`` and ``selected`` are assumed to do the same.
conservation
    Per problem: an assignment is taken only while the command's ``new_tokens`` are not all
    in, a selection only after them; the move descriptors' lengths add up to the tokens leaving
    the window (none dropped, none invented; a length-0 beat only alone); exactly one count
    per opened cluster, in order, ``last`` on the final one, each the cluster's members
    (saturated); the last fetch descriptor only after the last selection, and the fetched
    tokens are exactly the offloaded tokens of the selected clusters (unless the store ran out
    of pages since the start: then tokens were dropped, flagged in ``moves``); at most two
    problems inside on each output (a problem starts before the previous one's last beat left).
response
    With every output always ready and every input always offered, a problem's last fetch
    descriptor leaves within the twin's cycle formula evaluated on that problem (exact without
    dropped tokens, an upper bound with them), counted from its command; and the unit never
    waits longer than the formula's worst case over all problems.
invariants
    The layout: a stored move writes addresses within the store that no token since the last
    restart holds (no two tokens at one address), a dropped move has ``dst`` 0; every fetch
    descriptor lies within the addresses written and apart from the problem's other descriptors;
    a length-0 descriptor only as the single descriptor of a problem.
"""

from amaranth.hdl import Array, Cat, Const, Mux, Signal

from model.config import PRESETS
from sim.formal.properties import (FormalHarness, Previous, ProblemQueue, counter, drive_input,
                                   drive_output, waiting_cycles)

__all__ = ["VARIANTS", "JOBS", "QUICK", "KVMUHarness", "worst_problem_cycles", "harness"]

_TINY = PRESETS["tiny"]
_SMALL = dict(hash_bits=4, hamming_threshold=2, hcu_lanes=2, hcu_tokens_in_flight=2,
              hcu_bits_per_cycle=2, topk_k=2, max_rows=2, wtu_buckets=2,
              score_bits=2, wtu_refine_depth=0, count_bits=2, kv_token_bits=4)
_TWO = dict(hash_mem_entries=2, max_clusters=2, wtu_lanes=1)
#: Configurations proved: the preset ``tiny`` and small ones that take every path of the unit
#: within the depths below: one-token pages and no window (``page1``: consecutive pages of a
#: cluster merge into one descriptor), a store of two pages that runs out (``full``: dropped
#: moves, ``store_full``), a recent window with two-token pages (``window``: consecutive
#: window slots merge into one move, partly filled tail pages, resident tokens never fetched).
VARIANTS = {
    "tiny": _TINY,
    "page1": _TINY.replace(**_SMALL, **_TWO, kvmu_page_tokens=1,
                           recent_window=0, max_frame_tokens=2),
    "full": _TINY.replace(**_SMALL, hash_mem_entries=4, max_clusters=4, wtu_lanes=2,
                          kvmu_page_tokens=8,
                          recent_window=0, max_frame_tokens=3),
    "window": _TINY.replace(**_SMALL, **_TWO, kvmu_page_tokens=2,
                            recent_window=2, max_frame_tokens=4),
}
_ALL = (("contract", "prove", 8), ("conservation", "bmc", 24), ("response", "bmc", 24),
        ("invariants", "bmc", 28), ("cover", "cover", 40))
#: (kind, mode, depth) of the jobs of each variant. The contract closes by k-induction at
#: length 8 on every variant (``prove``: it holds at every depth). ``tiny`` (a 64-entry table,
#: 256 pages) gets the conservation checks of its first steps only. ``full``'s conservation
#: (four clusters' sums) is checked to depth 20: each step past it took minutes. The
#: invariants go to depth 28, where ``page1``'s second frame has offloaded both tokens of
#: its first (4 cycles per leaving token): the store address of each is checked; the covers
#: go to 40, where ``page1`` fetches a descriptor over two offloaded pages.
JOBS = {
    "tiny": (("contract", "prove", 8), ("conservation", "bmc", 12)),
    "page1": _ALL,
    "full": (_ALL[0], ("conservation", "bmc", 20)) + _ALL[2:],
    "window": _ALL,
}
#: The jobs ``make test`` runs (the others run in ``make formal``).
QUICK = (("page1", "contract"),)

#: Width of the harness's counters and token sums: no wrap within 63 steps.
_COUNT_BITS = 6


def worst_problem_cycles(config):
    """The KVMU twin's cycle formula at its worst over all problems of ``config``, from the
    unit's declared per-step cycles: the command, ``max_frame_tokens`` tokens leaving the window
    and as many assigned, a count per cluster and one more, a selected beat per cluster, a walk
    of every page and its links, the merger's flush."""
    from hw.kvmu import KVManagementUnit as unit

    frame_tokens, clusters = config.max_frame_tokens, config.max_clusters
    pages = (1 << config.kv_token_bits) // config.kvmu_page_tokens
    return (1 + unit.cycles_before_offload + frame_tokens * unit.cycles_per_offload + 1
            + frame_tokens * unit.cycles_per_assign + clusters + 1
            + max(1, clusters) * unit.cycles_per_select + pages * unit.cycles_per_page
            + pages * unit.cycles_per_link + unit.flush_latency)


def _range_mask(base, length, space):
    """The bits ``base .. base + length - 1`` of a ``space``-bit address map."""
    return Cat(*[(base <= address) & (address < base + length) for address in range(space)])


class KVMUHarness(FormalHarness):
    """The KVMU with free inputs and one group of properties (see the module docstring)."""

    def harness(self, m, config, props):
        from hw.registry import build_component

        m.submodules.dut = dut = build_component("kvmu", config)
        responding = props.responding
        cmd_taken = drive_input(m, dut.cmd, props, "cmd", always_valid=responding)
        assign_taken = drive_input(m, dut.assign, props, "assign", always_valid=responding)
        select_taken = drive_input(m, dut.selected, props, "selected", always_valid=responding)
        moves_given = drive_output(m, dut.moves, props, "moves")
        counts_given = drive_output(m, dut.counts, props, "counts")
        fetch_given = drive_output(m, dut.fetch, props, "fetch")
        command, token, choice = dut.cmd.payload, dut.assign.payload, dut.selected.payload
        move, count, desc = dut.moves.payload, dut.counts.payload, dut.fetch.payload

        clusters, frame_tokens = config.max_clusters, config.max_frame_tokens
        window, page_tokens = config.recent_window, config.kvmu_page_tokens
        page_shift = page_tokens.bit_length() - 1
        space = 1 << config.kv_token_bits
        ring_depth = dut.ring_depth
        restart = cmd_taken & command.restart
        moves_end = moves_given & move.last
        select_end = select_taken & choice.last
        fetch_end = fetch_given & desc.last

        # The context as the inputs define it.
        opened = Signal(range(clusters + 1))
        with m.If(assign_taken & token.new):
            m.d.sync += opened.eq(opened + 1)
        with m.If(restart):
            m.d.sync += opened.eq(0)
        need = Signal(range(frame_tokens + 1))          # assignments the problem still expects
        with m.If(assign_taken):
            m.d.sync += need.eq(need - 1)
        with m.If(cmd_taken):
            m.d.sync += need.eq(command.new_tokens)
        resident = Signal(range(ring_depth + frame_tokens + 1))
        leave = Signal(range(ring_depth + 1))           # tokens leaving at this command
        m.d.comb += leave.eq(Mux(command.restart | (resident <= window), 0, resident - window))
        with m.If(assign_taken):
            m.d.sync += resident.eq(resident + 1)
        with m.If(cmd_taken):
            m.d.sync += resident.eq(Mux(command.restart, 0, resident - leave))

        # Input assumptions, on each beat taken.
        selected_first = Signal(init=1)
        selected_previous = Signal(config.cluster_id_bits)
        with m.If(select_taken):
            m.d.sync += [selected_first.eq(choice.last), selected_previous.eq(choice.cluster)]
        props.assume(m, ~cmd_taken | ((command.new_tokens >= 1)
                                      & (command.new_tokens <= frame_tokens)))
        props.assume(m, ~assign_taken | Mux(token.new,
                                            (token.cluster == opened) & (opened < clusters),
                                            token.cluster < opened))
        props.assume(m, ~select_taken | Mux(
            choice.empty, choice.last & selected_first,
            (choice.cluster < opened) & (selected_first | (choice.cluster > selected_previous))
            & (choice.last | (choice.cluster + 1 < opened))))

        # The clusters of the resident tokens, oldest first; each cluster's offloaded tokens.
        token_cluster = Array(Signal(config.cluster_id_bits, name=f"resident{slot}")
                              for slot in range(ring_depth))
        write, read = Signal(range(ring_depth)), Signal(range(ring_depth))
        stored = [Signal(_COUNT_BITS, name=f"stored{cluster}") for cluster in range(clusters)]
        members = [Signal(config.count_bits, name=f"members{cluster}")
                   for cluster in range(clusters)]
        with m.If(assign_taken):
            m.d.sync += [token_cluster[write].eq(token.cluster),
                         write.eq(Mux(write == ring_depth - 1, 0, write + 1))]
        leaving = [Signal(config.cluster_id_bits, name=f"leaving{index}")
                   for index in range(frame_tokens)]
        for index, value in enumerate(leaving):
            slot = read + index
            m.d.comb += value.eq(token_cluster[Mux(slot >= ring_depth, slot - ring_depth, slot)])
        with m.If(cmd_taken):
            after = read + leave
            m.d.sync += read.eq(Mux(after >= ring_depth, after - ring_depth, after))
            for cluster in range(clusters):
                leaves = sum((index < leave) & (value == cluster)
                             for index, value in enumerate(leaving))
                m.d.sync += stored[cluster].eq(stored[cluster] + leaves)
        for cluster in range(clusters):
            joined = assign_taken & (token.cluster == cluster)
            with m.If(joined & token.new):
                m.d.sync += members[cluster].eq(1)
            with m.Elif(joined & (members[cluster] != config.max_count)):
                m.d.sync += members[cluster].eq(members[cluster] + 1)
            with m.If(restart):
                m.d.sync += stored[cluster].eq(0)
        with m.If(restart):
            m.d.sync += [read.eq(0), write.eq(0)]
        # Pages the offloaded tokens need; more than the store has: tokens were dropped.
        pages_needed = sum((value + page_tokens - 1) >> page_shift for value in stored)
        overfull = Signal()
        with m.If(pages_needed > dut.pages):
            m.d.sync += overfull.eq(1)

        # Conservation.
        check = props.checker(m, "conservation")
        problems_in = counter(m, cmd_taken, _COUNT_BITS, "problems_in")
        moves_done = counter(m, moves_end, _COUNT_BITS, "moves_done")
        selects_done = counter(m, select_end, _COUNT_BITS, "selects_done")
        fetches_done = counter(m, fetch_end, _COUNT_BITS, "fetches_done")
        check(~assign_taken | (need != 0))
        check(~select_taken | ((need == 0) & (selects_done < problems_in)))
        check(~fetch_end | (fetches_done < selects_done))

        move_queue = ProblemQueue(m, cmd_taken, Cat(leave, command.restart), moves_end,
                                  depth=2, name="move_problems")
        move_leave = move_queue.head[:len(leave)]
        move_restart = move_queue.head[len(leave)]
        moved = Signal(_COUNT_BITS)
        move_first = Signal(init=1)
        with m.If(moves_given):
            m.d.sync += [moved.eq(Mux(move.last, 0, moved + move.length)),
                         move_first.eq(move.last)]
        check(~moves_given | (move_queue.count != 0))
        check(~moves_end | (moved + move.length == move_leave))
        check(~(moves_given & (move.length == 0)) | (move.last & move_first))
        check(~move_queue.overflow)

        count_index = Signal(range(clusters + 1))
        with m.If(counts_given):
            m.d.sync += count_index.eq(Mux(count.last, 0, count_index + 1))
        counts_previous = Previous(m, dut.counts, "counts_fresh")
        fresh_count = dut.counts.valid & ~counts_previous.held      # offered for the first time
        check(~fresh_count | ((need == 0) & (count_index < opened)
                              & (count.last == (count_index == opened - 1))
                              & (count.count == Array(members)[count_index])))

        want = Signal(_COUNT_BITS)                      # offloaded tokens of the selection
        with_choice = Signal(_COUNT_BITS)
        m.d.comb += with_choice.eq(want + Mux(choice.empty, 0, Array(stored)[choice.cluster]))
        with m.If(select_taken):
            m.d.sync += want.eq(Mux(choice.last, 0, with_choice))
        fetch_queue = ProblemQueue(m, select_end, with_choice, fetch_end, depth=2,
                                   name="fetch_problems")
        fetched = Signal(_COUNT_BITS)
        with m.If(fetch_given):
            m.d.sync += fetched.eq(Mux(desc.last, 0, fetched + desc.length))
        check(~fetch_end | overfull | (fetched + desc.length == fetch_queue.head))
        check(~fetch_queue.overflow)

        # Bounded response: the twin's cycle formula on each problem, and its worst case.
        now = counter(m, Const(1), _COUNT_BITS, "now")
        budget = Signal(_COUNT_BITS + 2)
        pages_of = Array((value + page_tokens - 1) >> page_shift for value in stored)
        with m.If(cmd_taken):
            # command, [d > 0], 3 d, move flush, 3 n, merger flush (2)
            m.d.sync += budget.eq(1 + (leave != 0) * dut.cycles_before_offload
                                  + leave * dut.cycles_per_offload + 1
                                  + command.new_tokens * dut.cycles_per_assign
                                  + dut.flush_latency)
        with_beat = Signal.like(budget)
        walked = Mux(choice.empty, 0, pages_of[choice.cluster])
        m.d.comb += with_beat.eq(budget + dut.cycles_per_select + walked * dut.cycles_per_page
                                 + Mux(walked == 0, 0, walked - 1) * dut.cycles_per_link)
        with m.If(select_taken):
            m.d.sync += budget.eq(with_beat)
        start_queue = ProblemQueue(m, cmd_taken, now, fetch_end, depth=2, name="starts")
        # N + 1 count cycles, known at the last selection (no assignment after it).
        budget_queue = ProblemQueue(m, select_end, with_beat + opened + 1, fetch_end, depth=2,
                                    name="budgets")
        elapsed = Signal(_COUNT_BITS)
        m.d.comb += elapsed.eq(now - start_queue.head + 1)
        props.check(m, "response", ~fetch_end | (elapsed <= budget_queue.head))
        worst = worst_problem_cycles(config)
        waiting = waiting_cycles(m, pending=problems_in != fetches_done, progress=fetch_end,
                                 width=_COUNT_BITS + 2, name="waiting")
        # waiting counts from the cycle after the command (or after the previous problem's
        # last descriptor, taken at most two cycles after this problem's command).
        props.check(m, "response", waiting + 2 <= worst)

        # Invariants: the layout.
        invariant = props.checker(m, "invariants")
        written = Signal(space)
        before = Signal(space)
        m.d.comb += before.eq(Mux(move_first & move_restart, 0, written))
        move_mask = Signal(space)
        m.d.comb += move_mask.eq(_range_mask(move.dst, move.length, space))
        kept = moves_given & ~move.dropped & (move.length != 0)
        invariant(~kept | ((move.dst + move.length <= space) & ((before & move_mask) == 0)))
        invariant(~(moves_given & move.dropped) | (move.dst == 0))
        with m.If(moves_given):
            m.d.sync += written.eq(before | Mux(kept, move_mask, 0))
        fetch_mask = Signal(space)
        m.d.comb += fetch_mask.eq(_range_mask(desc.base, desc.length, space))
        fetch_map = Signal(space)
        fetch_first = Signal(init=1)
        with m.If(fetch_given):
            m.d.sync += [fetch_map.eq(Mux(desc.last, 0, fetch_map | fetch_mask)),
                         fetch_first.eq(desc.last)]
        # The moves of this problem are out and none of a later one yet.
        in_step = (moves_done == fetches_done + 1) & move_first
        present = fetch_given & (desc.length != 0)
        invariant(~present | ((desc.base + desc.length <= space)
                              & ((fetch_map & fetch_mask) == 0)))
        invariant(~(present & in_step) | ((fetch_mask & ~written) == 0))
        invariant(~(fetch_given & (desc.length == 0)) | (desc.last & fetch_first))

        props.cover(m, fresh_count & (count.count == config.max_count))
        props.cover(m, select_taken & ~choice.last & (opened > 1))
        props.cover(m, fetch_end & (elapsed == budget_queue.head))
        props.cover(m, restart & (problems_in != 0) & (opened != 0))
        if page_tokens == 1:            # consecutive pages of a cluster merge
            props.cover(m, fetch_end & (fetched + desc.length > page_tokens) & ~overfull)
        if dut.pages < clusters:        # the store can run out of pages
            props.cover(m, moves_given & move.dropped)
        if window > 1:                  # consecutive window slots merge into one move
            props.cover(m, moves_given & ~move.dropped & (move.length > 1))

def harness(config, kind):
    """The harness of the KVMU for ``config`` proving job kind ``kind``."""
    return KVMUHarness(config, kind)
