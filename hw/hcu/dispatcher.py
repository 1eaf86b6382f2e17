"""The HCU's dispatcher: the compares (jobs) started in each cycle, and the walk of the table."""

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import data
from amaranth.lib.wiring import In, Out

from hw.component import ConfiguredComponent
from hw.hcu.arith import modulo_sum

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

    Timing: the walk token's slot and ``top`` are registers (not ``head + walk_age`` and the
    walk token's ``seen`` selected each cycle), the catch-up choice reads the ring's
    ``behind`` bits (no compare of ``seen`` with ``opened``), the eviction bound is a register
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
    behind : In(K)
    lag : In(ArrayLayout(range(K + 1), K))
        The token ring's state (:class:`hw.hcu.TokenRing`).
    opened : In(range(max_clusters + 1))
        Clusters opened so far.
    push : In(1)
        A token enters the ring this cycle (in slot ``(head + held) mod K``, its ``seen``
        ``opened``).
    opens : In(1)
        A cluster opens this cycle (``opened`` counts it from the next).
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
        A catch-up starts: increment ``seen`` of slot ``job_slot``.
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
            "behind": In(slots),
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
            "walk_age": Out(range(slots + 1)),
        }

    def elaborate(self, platform):
        config = self._config
        m = Module()
        slots, width = config.hcu_tokens_in_flight, config.hcu_dispatch_width
        entries = config.hash_mem_entries
        bank_bits = width.bit_length() - 1
        head, held, seen, opened = self.head, self.held, self.seen, self.opened
        walk_begun = Signal()
        # The walk's next cluster is top - 1: a register, the walk token's ``seen`` until its
        # walk begins (written when a token becomes the walk token), then counted down.
        top = Signal.like(opened)
        # The walk token's slot, (head + walk_age) mod K, kept as a register: a decision moves
        # head up and walk_age down, the walk's end moves walk_age up.
        walk_slot = Signal(range(slots))
        next_slot = modulo_sum(walk_slot, 1, slots) if slots > 1 else 0

        # The catch-up of the oldest eligible token (the loop's last match wins); ``behind``
        # is the ring's register bit for ``seen < opened``.
        catch_up = Signal()
        catch_slot = Signal(range(slots))
        for age in reversed(range(slots)):
            slot = modulo_sum(head, age, slots)
            walked_past = (age < self.walk_age) | ((age == self.walk_age) & walk_begun)
            with m.If((age < held) & walked_past & self.behind.bit_select(slot, 1)):
                m.d.comb += [catch_up.eq(1), catch_slot.eq(slot)]
        walk_token = Signal()
        m.d.comb += [
            walk_token.eq(self.walk_age < held),
            self.job_slot.eq(Mux(catch_up, catch_slot, walk_slot)),
            self.bump.eq(catch_up & self.job_valid[0]),
        ]
        # Jobs: one catch-up, else walk clusters top - 1, top - 2, ... that exist, that the
        # older tokens cannot evict, and that have a free lane.
        # The clusters the older tokens cannot evict are those at least opened + walk_age -
        # entries: ``room`` = top + entries - opened - walk_age of them lie below ``top``, a
        # register kept by small sums (below), so the walk's tests compare it with constants.
        room = Signal(signed(entries.bit_length() + 2))
        for job in range(width):
            walk_ok = walk_token & ~catch_up & (top >= job + 1) & (room > job)
            m.d.comb += [
                self.job_valid[job].eq(self.found[job]
                                       & (walk_ok | (catch_up if job == 0 else 0))),
                self.job_cluster[job].eq(Mux(catch_up, seen[catch_slot], top - 1 - job)),
            ]
        for bank in range(width):
            # The walk's clusters in this cycle sit in distinct banks: bank b reads the one of
            # top - D .. top - 1 that is b mod D (or the catch-up cluster).
            offset = (top - 1 - bank)[:bank_bits] if width > 1 else 0
            walk_cluster = (top - 1 - offset)[:config.cluster_id_bits]
            cluster = Mux(catch_up, seen[catch_slot], walk_cluster)
            m.d.comb += self.read_row[bank].eq(cluster[bank_bits:config.hash_slot_bits])

        # The walk's progress. The walk jobs of a cycle are a prefix of jobs 0 .. D - 1 (each
        # condition holds for job j only if it holds for job j - 1), so the walk's end and its
        # next top are decided for every possible count of walk jobs from ``top`` alone, in
        # parallel with the jobs, and picked by the count (no count of the jobs, no subtraction
        # after it: the choice is the last logic before ``top``).
        ended = (top == 0) | ((self.walk_age == 0) & (room <= 0))
        after = top
        for count in range(1, width + 1):
            # At least ``count`` walk jobs: job ``count - 1`` is one (the outermost choice is
            # the largest such count).
            more = self.job_valid[count - 1] & ~catch_up
            ended = Mux(more, (top == count) | ((self.walk_age == 0) & (room <= count)), ended)
            after = Mux(more, top - count, after)
        advance = Signal()
        m.d.comb += advance.eq(walk_token & ended)
        with m.If(~walk_token):
            # No walk token: a token entering now takes slot walk_slot, its ``seen`` is opened.
            with m.If(self.push):
                m.d.sync += top.eq(opened)
        with m.Elif(advance):
            # The next walk token: the one of slot walk_slot + 1 (not bumped, its walk has not
            # begun), or the token entering it now.
            m.d.sync += [walk_begun.eq(0),
                         top.eq(Mux(self.push & (self.walk_age + 1 == held), opened,
                                    seen[next_slot]))]
        with m.Elif(self.job_valid[0] & ~catch_up):
            m.d.sync += [walk_begun.eq(1), top.eq(after)]
        m.d.sync += self.walk_age.eq(self.walk_age + advance - self.pop)
        # ``room`` next cycle, from top_next + entries - opened_next - walk_age_next: a new
        # walk token starts from ``seen`` = opened - lag (its ring counter) or, entering now,
        # from opened, so only small values are summed; otherwise ``room`` moves by the walk
        # jobs, the cluster opened and the decision, the last signals of the cycle, so its
        # possible values are made beforehand and selected by their sum.
        lag_next = Mux(self.push & (self.walk_age + 1 == held), 0, self.lag[next_slot])
        walked = Signal(range(width + 1))
        for count in range(1, width + 1):
            with m.If(self.job_valid[count - 1] & ~catch_up):
                m.d.comb += walked.eq(count)
        step = Signal(range(-1, width + 2))
        m.d.comb += step.eq(walked + self.opens - self.pop)
        settle = Signal(range(-1, 2))  # the decision's share, opens - pop
        m.d.comb += settle.eq(self.opens - self.pop)
        with m.If(held == 0):
            # A token entering now walks from opened with walk_age 0.
            m.d.sync += room.eq(entries)
        with m.Elif(~walk_token | advance):
            # A token entering now (no walk token), or the next walk token.
            start = Signal.like(room)
            m.d.comb += start.eq(Mux(walk_token, entries - 1 - lag_next, entries)
                                 - self.walk_age)
            with m.Switch(settle):
                for delta in range(-1, 2):
                    with m.Case(delta):
                        m.d.sync += room.eq(start - delta)
        with m.Else():
            with m.Switch(step):
                for delta in range(-1, width + 2):
                    with m.Case(delta):
                        m.d.sync += room.eq(room - delta)
        if slots > 1:
            with m.If(advance):
                m.d.sync += walk_slot.eq(next_slot)
        return m
