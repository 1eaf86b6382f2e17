"""One similarity lane of the HCU: the Hamming compare of one token with one cluster."""

from amaranth.hdl import Cat, Const, Module, Signal
from amaranth.lib import data
from amaranth.lib.wiring import In, Out

from hw.component import ConfiguredComponent
from hw.hcu.arith import better

__all__ = ["SimilarityLane", "MIN_JOB_CYCLES"]

#: Fewest cycles from one reservation of a lane to the next (:attr:`SimilarityLane.min_job_cycles`).
MIN_JOB_CYCLES = 5


def _popcount(value):
    return sum(value[index] for index in range(len(value)))


class SimilarityLane(ConfiguredComponent):
    """One similarity lane of the HCU: one compare at a time, with early exit.

    A job arrives with ``load`` as the difference ``cluster hash XOR token hash``, the token's
    slot among the tokens in flight (``load_tag``) and the cluster id. The lane registers them
    (its compare state) and counts the differing bits ``hcu_bits_per_cycle`` at a time from
    the least significant end, the first beat in the cycle after ``load``; it stops after the
    beat at which the count reaches ``hamming_threshold`` or after the last beat. A compare that
    runs to the end below the threshold is a match; the lane keeps the best match of each token
    slot (smallest distance, then lowest cluster id) in ``best_distance`` / ``best_cluster``
    (``hamming_threshold``: none), which ``clear`` resets when a new token takes the slot.

    Every beat starts from the lane's own registers (no operand multiplexer in front of the
    count, the best-match update or the availability), so the unit's widest fan-out, the
    issue stage's operands, ends at a register (:attr:`load_latency`).

    ``available_next`` is a register that looks two cycles ahead, so the unit's choice of the
    next cycle's lanes (:class:`hw.hcu.FreeLanePicker`, itself registered) starts from
    flip-flops, and the lane learns of its reservations a cycle late, from the issue stage's
    registers (``reserved``), so the dispatcher's jobs are not broadcast to every lane: it
    holds in cycle ``y + 1`` when the lane was given no job in ``y - 1`` or ``y - 2`` and the
    compare of cycle ``y`` (if any) ends within four more beats; the lane can then be
    reserved in ``y + 2`` unless it is reserved in ``y`` or ``y + 1`` (the picker knows
    those). A job reserved in cycle ``x`` is loaded in ``x + 2`` (the unit reads and
    registers the table first) and its first beat is in ``x + 3``, so the lane is free again
    in ``x + max(beats, 5)``
    (:attr:`min_job_cycles`).

    Parameters
    ----------
    config : DREConfig

    Members
    -------
    reserved : In(1)
        The lane was given a job in the previous cycle (only when it was free then; a
        register of the issue stage); the job is loaded in the next cycle.
    load : In(1)
        A job's operands arrive this cycle (two cycles after its reservation); its first beat
        is in the next cycle.
    load_difference, load_tag, load_cluster : In
        The job's bit difference, token slot and cluster id.
    clear : In(hcu_tokens_in_flight)
        Forget the best match of these token slots (never one with a compare in progress or
        loading: the unit clears a slot the cycle after a token enters it).
    working : Out(1)
        The lane compares in this cycle (a register).
    available_next : Out(1)
        The lane can be reserved in the next cycle unless it is reserved in this one or was
        in the previous one: its compares end in time (a register).
    tag : Out(range(hcu_tokens_in_flight))
        Token slot of the compare in this cycle (when ``working``; a register).
    best_distance, best_cluster : Out, one per token slot
        Best match so far of each token slot (a distance at most ``hamming_threshold``, the
        value of "no match").

    Raises
    ------
    TypeError
        If ``config`` is not a :class:`DREConfig`.
    """

    def _members(self, config):
        slots = config.hcu_tokens_in_flight
        return {
            "reserved": In(1),
            "load": In(1),
            "load_difference": In(config.hash_bits),
            "load_tag": In(range(slots)),
            "load_cluster": In(config.cluster_id_bits),
            "clear": In(slots),
            "working": Out(1),
            "available_next": Out(1, init=1),
            "tag": Out(range(slots)),
            "best_distance": Out(data.ArrayLayout(range(config.hamming_threshold + 1), slots)),
            "best_cluster": Out(data.ArrayLayout(config.cluster_id_bits, slots)),
        }

    @property
    def load_latency(self):
        """Cycles from a job's ``load`` to its first beat."""
        return 1

    @property
    def min_job_cycles(self):
        """Fewest cycles from one reservation of the lane to the next (a compare of fewer beats
        leaves the lane idle for the rest)."""
        return MIN_JOB_CYCLES

    def elaborate(self, platform):
        config = self._config
        m = Module()
        threshold = config.hamming_threshold
        width = config.hcu_bits_per_cycle
        beats = config.hcu_beats_per_hash

        # The compare state, written by ``load`` and stepped by each beat.
        difference = Signal(config.hash_bits)
        beat = Signal(range(beats))
        partial = Signal(range(threshold))
        cluster = Signal(config.cluster_id_bits)
        distance = Signal(range(threshold + width))
        reached = Signal()
        finishing = Signal()
        # The beats of this cycle and of the next four (the lane's next job, reserved at the
        # earliest two cycles from now, beats three cycles after its reservation).
        lookahead = min(5 * width, config.hash_bits)
        distance_ahead = Signal(range(threshold + lookahead))
        ends_soon = Signal()
        reserved_2 = Signal()          # reserved two cycles ago (loaded now)
        m.d.comb += [
            distance.eq(partial + _popcount(difference[:width])),
            reached.eq(distance >= threshold),
            finishing.eq(self.working & (reached | (beat == beats - 1))),
            # Lookahead: the compare of this cycle ends in this beat or one of the next four.
            distance_ahead.eq(partial + _popcount(difference[:lookahead])),
            ends_soon.eq((distance_ahead >= threshold)
                         | (beat >= beats - 5 if beats > 5 else Const(1))),
        ]
        # Free in two cycles unless reserved now or in the next cycle (the picker excludes
        # those): no job reserved in the two previous cycles (still to be loaded, or loading),
        # and the compare in progress, if any, ends in time; every input is a register.
        m.d.sync += [reserved_2.eq(self.reserved),
                     self.available_next.eq(~self.reserved & ~reserved_2
                                            & (~self.working | ends_soon))]
        # The compare state steps on every working cycle, the last beat's too (its values are
        # then unused until the next load), so its enables are ``load`` and ``working``, two
        # registers: the beat's end test (``finishing``) only clears ``working``.
        with m.If(self.load):
            m.d.sync += [self.working.eq(1), difference.eq(self.load_difference), beat.eq(0),
                         partial.eq(0), self.tag.eq(self.load_tag),
                         cluster.eq(self.load_cluster)]
        with m.Else():
            with m.If(finishing):
                m.d.sync += self.working.eq(0)
            with m.If(self.working):
                m.d.sync += [difference.eq(difference >> width), beat.eq(beat + 1),
                             partial.eq(distance)]
        best_distance = self.best_distance[self.tag]
        best_cluster = self.best_cluster[self.tag]
        if beats > 1:
            # A match ends at the last beat, so the slot's best match is read a beat ahead
            # into registers: only this lane's own compare for the slot writes it meanwhile
            # (and ``clear`` never during one), and the argmin order's wide cluster compare
            # and the slot multiplexers stand before a register, not before ``best_*``.
            slot_distance = Signal.like(best_distance)
            cluster_below = Signal()
            m.d.sync += [slot_distance.eq(best_distance),
                         cluster_below.eq(cluster < best_cluster)]
            improves = (distance < slot_distance) | ((distance == slot_distance) & cluster_below)
        else:
            improves = better(distance, cluster, best_distance, best_cluster)
        with m.If(finishing & ~reached & improves):
            m.d.sync += [best_distance.eq(distance), best_cluster.eq(cluster)]
        for slot in range(config.hcu_tokens_in_flight):
            with m.If(self.clear[slot]):
                m.d.sync += [self.best_distance[slot].eq(threshold),
                             self.best_cluster[slot].eq(0)]
        return m
