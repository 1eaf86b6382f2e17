"""The HCU's tokens in flight: a ring of slots, oldest first."""

from amaranth.hdl import Module, Signal
from amaranth.lib import data
from amaranth.lib.wiring import In, Out

from hw.component import ConfiguredComponent
from hw.hcu.arith import modulo_sum

__all__ = ["TokenRing"]


class TokenRing(ConfiguredComponent):
    """The tokens the HCU holds: ``hcu_tokens_in_flight`` (K) slots in a ring.

    The oldest token is in slot ``head``, the token of age ``a`` in slot ``(head + a) mod K``;
    ``held`` slots are in use. Each slot keeps the token's hash, its end-of-frame flag and
    ``seen``, the next cluster id the token has not yet been compared with by a catch-up job,
    and ``behind``, whether clusters were opened since (``seen`` below the unit's opened-cluster
    counter): a small per-slot counter of those clusters, kept beside ``seen`` and counted up
    by ``opens`` and down by ``bump``, so that no wide compare of ``seen`` with the counter
    stands in front of the catch-up choice or the decision. All updates take effect at the
    next clock edge; a push in the cycle of a pop is allowed when the ring is full (the new
    token takes the slot the oldest leaves).

    Parameters
    ----------
    config : DREConfig
        Uses ``hash_bits``, ``hcu_tokens_in_flight`` and ``max_clusters``.

    Members
    -------
    push : In(1)
        Store a token in slot ``tail`` (only when ``held < K`` or ``pop``).
    push_hash, push_last, push_seen : In
        Its hash, end-of-frame flag and first cluster id not yet compared (the clusters opened
        so far, before a cluster ``opens`` in this cycle).
    opens : In(1)
        The unit opens a cluster this cycle (its counter counts it from the next).
    pop : In(1)
        The oldest token leaves (only when ``held != 0``).
    bump : In(1)
        Increment ``seen`` of slot ``bump_slot`` (a catch-up job started).
    bump_slot : In(range(K))
    head : Out(range(K))
        Slot of the oldest token.
    held : Out(range(K + 1))
        Tokens held.
    tail : Out(range(K))
        Slot the next pushed token takes, ``(head + held) mod K``.
    hash : Out(ArrayLayout(hash_bits, K))
    last : Out(ArrayLayout(1, K))
    seen : Out(ArrayLayout(range(max_clusters + 1), K))
    lag : Out(ArrayLayout(range(K + 1), K))
    behind : Out(K)
        The slots' contents (a slot not held keeps stale values); ``lag``, the clusters opened
        since ``seen`` (at most K for a held token), a register; ``behind`` = ``lag != 0``, a
        register beside it.
    behind_next : Out(K)
        The value ``behind`` takes at the next clock edge (from this cycle's ``push``,
        ``opens`` and ``bump``), for a choice registered a cycle ahead
        (:class:`hw.hcu.Dispatcher`'s catch-up).

    Raises
    ------
    TypeError
        If ``config`` is not a :class:`DREConfig`.
    """

    def _members(self, config):
        slots = config.hcu_tokens_in_flight
        cluster_range = range(config.max_clusters + 1)
        return {
            "push": In(1),
            "push_hash": In(config.hash_bits),
            "push_last": In(1),
            "push_seen": In(cluster_range),
            "opens": In(1),
            "pop": In(1),
            "bump": In(1),
            "bump_slot": In(range(slots)),
            "head": Out(range(slots)),
            "held": Out(range(slots + 1)),
            "tail": Out(range(slots)),
            "hash": Out(data.ArrayLayout(config.hash_bits, slots)),
            "last": Out(data.ArrayLayout(1, slots)),
            "seen": Out(data.ArrayLayout(cluster_range, slots)),
            "lag": Out(data.ArrayLayout(range(slots + 1), slots)),
            "behind": Out(slots),
            "behind_next": Out(slots),
        }

    def elaborate(self, platform):
        slots = self._config.hcu_tokens_in_flight
        m = Module()
        m.d.comb += self.tail.eq(modulo_sum(self.head, self.held[:len(self.head)], slots)
                                 if slots > 1 else 0)
        # Clusters opened and not yet caught up with, per slot: a held token's is at most K
        # (the K - 1 older tokens and the one decided as it enters each open one).
        m.d.sync += self.behind.eq(self.behind_next)
        for slot in range(slots):
            lag = self.lag[slot]
            bumped = self.bump & (self.bump_slot == slot)
            # Each slot counts its own ``seen`` up (no multiplexer before the adder).
            with m.If(bumped):
                m.d.sync += self.seen[slot].eq(self.seen[slot] + 1)
            behind_next = self.behind_next[slot]
            m.d.comb += behind_next.eq(self.behind[slot])
            with m.If(self.push & (self.tail == slot)):
                m.d.sync += lag.eq(self.opens)
                m.d.comb += behind_next.eq(self.opens)
            with m.Elif(self.opens & ~bumped):
                m.d.sync += lag.eq(lag + 1)
                m.d.comb += behind_next.eq(1)
            with m.Elif(~self.opens & bumped):
                m.d.sync += lag.eq(lag - 1)
                m.d.comb += behind_next.eq(lag != 1)
        # A push after the bump: it wins if both name one slot (they never do, see the unit).
        with m.If(self.push):
            m.d.sync += [self.hash[self.tail].eq(self.push_hash),
                         self.last[self.tail].eq(self.push_last),
                         self.seen[self.tail].eq(self.push_seen)]
        m.d.sync += self.held.eq(self.held + self.push - self.pop)
        with m.If(self.pop):
            m.d.sync += self.head.eq(modulo_sum(self.head, 1, slots))
        return m
