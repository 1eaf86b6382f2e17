"""The HCU's dispatcher: the compares (jobs) started in each cycle, and the walk of the table."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data
from amaranth.lib.wiring import In, Out

from hw.component import ConfiguredComponent
from hw.hcu.arith import modulo_sum, select

__all__ = ["Dispatcher"]


class Dispatcher(ConfiguredComponent):
    """Up to ``hcu_dispatch_width`` (D) jobs per cycle: a catch-up, else the walk's clusters.

    A *catch-up* compares a token with a cluster an older token opened after it arrived: the
    oldest held token whose walk has begun (or ended) and whose ``seen`` is below ``opened``
    gets one, cluster ``seen``, as job 0 (``bump`` then asks the ring to increment its
    ``seen``). Otherwise the *walk token* (the token of age ``walk_age``) compares the clusters
    ``top - 1``, ``top - 2``, ... (one per job, D consecutive ids so D distinct banks), where
    ``top`` is its ``seen`` when its walk begins; a walk job needs a free lane (``found``), a
    cluster that exists and one the older tokens cannot evict before it is decided (``top +
    hash_mem_entries >= opened + walk_age + job + 1``). The walk ends when no cluster is left
    below it, or, for the oldest token, when the rest has been evicted; the next token walks
    from the next cycle. ``pop`` (the oldest token decided) ages every walk by one.

    Bank ``b`` reads row ``read_row[b]``: the catch-up cluster, or the walk cluster of this
    cycle that lies in bank ``b`` (cluster ``c`` is in bank ``c mod D`` at row
    ``(c mod hash_mem_entries) // D``).

    Timing: the walk token's slot, ``top`` and the table rows of the walk's next clusters are
    registers (not ``head + walk_age`` and the walk token's ``seen`` selected each cycle, nor
    ``top`` minus the bank before the table's address), the catch-up choice is a register chosen in
    the previous cycle from the ring's next ``behind`` bits (no compare of ``seen`` with
    ``opened``) and per-slot registers saying whose walk has begun or ended, so the jobs, the
    lanes' grants and the walk's state do not wait for it; the eviction bound is a register
    ``room`` (the clusters below ``top`` the older tokens cannot evict) compared with
    constants and kept by small sums (a new walk token's from its ring counter ``lag``), and
    the walk's end is computed
    from ``top`` for every possible number of walk jobs beside the jobs themselves, then
    picked by them, so the path from the state registers through the jobs to the walk's
    registers stays short (6.0 ns in SG13G2, 10 ns on the ECP5, edge preset).

    Parameters
    ----------
    config : DREConfig
        Uses ``hcu_tokens_in_flight`` (K), ``hcu_dispatch_width`` (D), ``hash_mem_entries``
        and ``max_clusters``.

    Members
    -------
    head : In(range(K))
    held : In(range(K + 1))
    seen : In(ArrayLayout(range(max_clusters + 1), K))
    tail : In(range(K))
    lag : In(ArrayLayout(range(K + 1), K))
        The token ring's state (:class:`hw.hcu.TokenRing`).
    behind_next : In(K)
        The ring's ``behind`` bits of the next cycle (``seen < opened`` per slot then).
    opened : In(range(max_clusters + 1))
        Clusters opened so far.
    push : In(1)
        A token enters the ring this cycle (in slot ``(head + held) mod K``, its ``seen``
        ``opened``).
    opens : In(1)
        A cluster opens this cycle (``opened`` counts it from the next); only with ``pop``.
    found : In(D)
        Bit ``j``: a lane is free for job ``j`` (:class:`hw.hcu.FreeLanePicker`).
    pop : In(1)
        The oldest token is decided this cycle.
    job_valid : Out(D)
        Bit ``j``: job ``j`` starts this cycle.
    job_cluster : Out(ArrayLayout(cluster_id_bits, D))
        Cluster id of each job.
    job_slot : Out(range(K))
        Token slot of this cycle's jobs.
    read_row : Out(ArrayLayout(hash_slot_bits - log2(D), D))
        Row each table bank reads this cycle.
    bump : Out(1)
        A catch-up starts: increment ``seen`` of slot ``bump_slot``.
    bump_slot : Out(range(K))
        The slot of this cycle's catch-up (``job_slot`` when ``bump``; a register).
    walk_age : Out(range(K + 1))
        Age of the walk token (``held`` once every held token has walked).

    Raises
    ------
    TypeError
        If ``config`` is not a :class:`DREConfig`.
    """

    def _members(self, config):
        slots, width = config.hcu_tokens_in_flight, config.hcu_dispatch_width
        cluster_range = range(config.max_clusters + 1)
        row_bits = config.hash_slot_bits - (width.bit_length() - 1)
        return {
            "head": In(range(slots)),
            "held": In(range(slots + 1)),
            "seen": In(data.ArrayLayout(cluster_range, slots)),
            "tail": In(range(slots)),
            "behind_next": In(slots),
            "lag": In(data.ArrayLayout(range(slots + 1), slots)),
            "opened": In(cluster_range),
            "push": In(1),
            "opens": In(1),
            "found": In(width),
            "pop": In(1),
            "job_valid": Out(width),
            "job_cluster": Out(data.ArrayLayout(config.cluster_id_bits, width)),
            "job_slot": Out(range(slots)),
            "read_row": Out(data.ArrayLayout(row_bits, width)),
            "bump": Out(1),
            "bump_slot": Out(range(slots)),
            "walk_age": Out(range(slots + 1)),
        }

    def elaborate(self, platform):
        config = self._config
        m = Module()
        slots, width = config.hcu_tokens_in_flight, config.hcu_dispatch_width
        entries = config.hash_mem_entries
        bank_bits = width.bit_length() - 1
        head, held, seen, opened = self.head, self.held, self.seen, self.opened
        # The walk's next cluster is top - 1: a register, the walk token's ``seen`` until its
        # walk begins (written when a token becomes the walk token), then counted down.
        top = Signal.like(opened)
        # The walk token's slot, (head + walk_age) mod K, kept as a register: a decision moves
        # head up and walk_age down, the walk's end moves walk_age up.
        walk_slot = Signal(range(slots))
        next_slot = modulo_sum(walk_slot, 1, slots) if slots > 1 else 0

        # The catch-up of this cycle, chosen in the previous one (below, "The next cycle's
        # catch-up"): registers, the slot one-hot (``catch``, 0 without a catch-up), numbered
        # (``catch_slot``) and ``catch_up`` = ``catch != 0``, so the choice's fan-out (the jobs,
        # the picker's grants, the lanes' issue registers, the ring, the walk's state) starts
        # at flip-flops.
        catch = Signal(slots)
        catch_slot = Signal(range(slots))
        catch_up = Signal()
        # Bit s: slot s holds a token whose walk has begun or ended (a catch-up may go to it).
        eligible = Signal(slots)
        # A walk token exists (``walk_age < held``): a register, kept by the walk's end and
        # an entering token (a decision moves both ``walk_age`` and ``held`` down by one).
        walk_token = Signal()
        m.d.comb += [
            self.job_slot.eq(Mux(catch_up, catch_slot, walk_slot)),
            self.bump.eq(catch_up & self.job_valid[0]),
            self.bump_slot.eq(catch_slot),
        ]
        catch_cluster = Signal.like(opened)
        m.d.comb += catch_cluster.eq(select([(catch[slot], seen[slot]) for slot in range(slots)]
                                            + [(~catch_up, 0)]))
        # The walk's tests, registers updated with the walk's state (below): bit c of
        # ``top_at_least`` is ``top >= c``, of ``top_is`` ``top == c``, of ``room_above``
        # ``room > c``, for c = 0 .. D. ``room`` = top + entries - opened - walk_age counts the
        # clusters below ``top`` the older tokens cannot evict (those from opened + walk_age -
        # entries up).
        top_at_least = Signal(width + 1, init=1)
        top_is = Signal(width + 1, init=1)
        room = Signal(signed(entries.bit_length() + 2))
        room_above = Signal(width + 1)
        # Jobs: one catch-up, else walk clusters top - 1, top - 2, ... that exist, that the
        # older tokens cannot evict, and that have a free lane. ``more[c]``: at least c walk
        # jobs (a prefix of the jobs: each test holds for job j only if it holds for j - 1).
        more = [Const(1)] + [self.found[count - 1] & walk_token & ~catch_up
                             & top_at_least[count] & room_above[count - 1]
                             for count in range(1, width + 1)] + [Const(0)]
        for job in range(width):
            m.d.comb += [
                self.job_valid[job].eq(more[job + 1]
                                       | ((self.found[0] & catch_up) if job == 0 else 0)),
                self.job_cluster[job].eq(Mux(catch_up, catch_cluster, top - 1 - job)),
            ]
        # The walk's clusters in this cycle sit in distinct banks: bank b reads the one of
        # top - D .. top - 1 that is b mod D, the largest c < top with c mod D = b, whose row
        # is (top - 1 - b) // D mod (hash_mem_entries / D). ``walk_rows`` holds them, a
        # register kept with ``top`` (no subtraction between ``top`` and the table's address).
        row_bits = len(self.read_row[0])

        def rows_below(value, offset=0):
            # The rows of the walk's clusters in each bank when ``top`` is ``value - offset``.
            return Cat((value - (offset + 1 + bank))[bank_bits:bank_bits + row_bits]
                       for bank in range(width))

        # (Reset: ``top`` 0, every row's bits of ``-1 - bank`` set.)
        walk_rows = Signal(width * row_bits, init=(1 << width * row_bits) - 1)
        for bank in range(width):
            catch_row = catch_cluster[bank_bits:config.hash_slot_bits]
            m.d.comb += self.read_row[bank].eq(
                Mux(catch_up, catch_row, walk_rows.word_select(bank, row_bits)))

        # The walk's progress. The walk ends, after ``count`` walk jobs, when top == count or,
        # for the oldest token, room <= count (the rest is evicted): registered tests picked
        # by the count. Every next value of the walk's state and of its tests is made from
        # registers for each possible outcome of the cycle, and the outcome (the walk jobs,
        # the decision ``pop``, a token entering) only selects one (:func:`select`): no
        # arithmetic after the cycle's late signals. The catch-up choice, the deepest of the
        # dispatcher's own signals, is taken out of it: the next state is worked out both
        # with the walk's jobs and without (a catch-up), and it picks one last.
        entering = Signal()            # the next walk token enters the ring now
        seen_next = Signal.like(opened)
        m.d.comb += [entering.eq(self.push & (self.walk_age + 1 == held)),
                     seen_next.eq(seen[next_slot])]
        grows = Signal()               # a decision that opens no cluster: room grows by one
        m.d.comb += grows.eq(self.pop & ~self.opens)
        lag_next = self.lag[next_slot]
        # A new walk token's room is entries minus a small sum, ``used``: its tests compare
        # that sum with constants (no subtraction before them).
        used = []
        for index, value in enumerate((self.walk_age, 1 + self.walk_age,
                                       1 + lag_next + self.walk_age)):
            total = Signal(range(2 * slots + 2), name=f"room_used{index}")
            m.d.comb += total.eq(value)
            used.append(total)

        def constant_minus(constant, value):
            # ``constant - value`` for a narrow unsigned ``value`` (a new walk token's small
            # sum), as a table over its values: a few LUT levels, no carry chain after the sum.
            return select([(value == index, Const(constant - index, room.shape()))
                           for index in range(1 << len(value))])

        def top_tests(value, offset=0):
            # The tests of ``value - offset`` (``offset`` taken into the constants).
            # (``value >= 0`` always holds: a constant, not a compare the lint flags.)
            return (Cat((value >= count + offset) if count + offset else Const(1, 1)
                        for count in range(width + 1)),
                    Cat(value == count + offset for count in range(width + 1)))

        # ``room > k`` for the small constants k the tests need (-1 .. 2 D) without a carry
        # chain per constant: ``room`` is above k when it is not negative and its bits above
        # the low ones (shared by every test) are not all 0, or its low bits are above k.
        low_bits = min((2 * width + 1).bit_length(), len(room) - 1)
        room_negative = room[-1]
        room_high = Signal()
        m.d.comb += room_high.eq(~room_negative & room[low_bits:-1].any())

        def room_above_constant(constant):
            if constant < 0:                # -1: room >= 0
                return ~room_negative
            return room_high | (~room_negative & (room[:low_bits] > constant))

        def room_tests(offset):
            # The tests of ``room - offset`` (``offset`` taken into the constants).
            return Cat(room_above_constant(count + offset) for count in range(width + 1))

        def outcome(more, grown):
            """The next values of the walk's registers, given ``more`` (at least c walk
            jobs) and ``grown`` (``room`` grows by one: a decision that opens no cluster), in
            the order of ``registers`` below."""
            exactly = [more[count] & ~more[count + 1] for count in range(width + 1)]
            ended = Cat(exactly[count] & (top_is[count]
                                          | ((self.walk_age == 0) & ~room_above[count]))
                        for count in range(width + 1)).any()
            advance = walk_token & ended
            goes_on = walk_token & ~ended      # the walk token keeps walking
            top_choices = [
                # No walk token: a token entering now walks from opened; the next walk token:
                # the one of slot walk_slot + 1 (its walk has not begun), or the one entering.
                ((~walk_token & self.push) | (advance & entering),
                 (opened, *top_tests(opened), rows_below(opened))),
                (advance & ~entering, (seen_next, *top_tests(seen_next), rows_below(seen_next))),
                ((~walk_token & ~self.push) | (goes_on & exactly[0]),
                 (top, top_at_least, top_is, walk_rows)),
            ] + [(goes_on & exactly[count],
                  (top - count, *top_tests(top, count), rows_below(top, count)))
                 for count in range(1, width + 1)]
            # ``room`` next cycle, from top_next + entries - opened_next - walk_age_next: a new
            # walk token starts from ``seen`` = opened - lag (its ring counter) or, entering
            # now, from opened; otherwise ``room`` moves down by the walk jobs.
            starts = [~walk_token, advance & entering, advance & ~entering]
            settled = held != 0
            room_choices = [(held == 0, (entries, Cat(Const(entries > count)
                                                      for count in range(width + 1))))]
            room_choices += [(settled & condition,
                              (constant_minus(entries + grown, total),
                               Cat(total < entries + grown - count
                                   for count in range(width + 1))))
                             for condition, total in zip(starts, used)]
            # ``room`` plus one constant (``grown - count``): a single carry chain from the
            # register before the selection (``room - count + grown`` chained two).
            room_choices += [(settled & goes_on & exactly[count],
                              (room + (grown - count), room_tests(count - grown)))
                             for count in range(width + 1)]
            values = [select([(condition, choice[index]) for condition, choice in choices])
                      for choices in (top_choices, room_choices)
                      for index in range(len(choices[0][1]))]
            return values + [
                self.push | Mux(advance, self.walk_age + 1 < held, walk_token),
                select([(advance & ~self.pop, self.walk_age + 1),
                        (~advance & self.pop, self.walk_age - 1),
                        (advance == self.pop, self.walk_age)]),
                Mux(advance, next_slot, walk_slot),
            ]

        registers = [top, top_at_least, top_is, walk_rows, room, room_above, walk_token,
                     self.walk_age, walk_slot]
        walk_more = [Const(1)] + [self.found[count - 1] & walk_token & top_at_least[count]
                                  & room_above[count - 1] for count in range(1, width + 1)]
        # The decision (``grows``) and the catch-up choice select last, the decision
        # outermost (the values that do not depend on it are the same logic, merged).
        outcomes = [[outcome(walk_more + [Const(0)], grown),
                     outcome([Const(1)] + [Const(0)] * (width + 1), grown)]
                    for grown in (0, 1)]
        for index, register in enumerate(registers):
            same, more_room = (Mux(catch_up, catching[index], walking[index])
                               for walking, catching in outcomes)
            m.d.sync += register.eq(Mux(grows, more_room, same))

        # The next cycle's catch-up, chosen now from this cycle's registers and the ring's
        # next ``behind`` (the same rule as above, one cycle ahead). The walk token's walk has
        # begun or ended after this cycle when it gets a walk job or its walk ends without one
        # (the "exactly 0 jobs" case of ``outcome``: top == 0, or the oldest token with nothing
        # left it may compare).
        walked = walk_token & ((walk_more[1] & ~catch_up) | top_is[0]
                               | ((self.walk_age == 0) & ~room_above[0]))
        eligible_next = Signal(slots)
        for slot in range(slots):
            entering_slot = self.push & (self.tail == slot)
            leaving_slot = self.pop & (head == slot)
            m.d.comb += eligible_next[slot].eq(
                ~entering_slot & ~leaving_slot
                & (eligible[slot] | (walked & (walk_slot == slot))))
        candidate = Signal(slots)
        m.d.comb += candidate.eq(eligible_next & self.behind_next)
        # The oldest candidate, by age from ``head``: the slot a decision frees has no
        # candidate, so the order of the others from ``head`` is their order from the next head.
        catch_next = Signal(slots)
        for slot in range(slots):
            older = select([(head == first,
                             Cat(candidate[(first + age) % slots]
                                 for age in range((slot - first) % slots)).any())
                            for first in range(slots)])
            m.d.comb += catch_next[slot].eq(candidate[slot] & ~older)
        m.d.sync += [eligible.eq(eligible_next), catch.eq(catch_next),
                     catch_up.eq(candidate.any()),
                     catch_slot.eq(Cat(Cat(catch_next[slot] for slot in range(slots)
                                           if slot >> bit & 1).any()
                                       for bit in range(len(catch_slot))))]
        return m
