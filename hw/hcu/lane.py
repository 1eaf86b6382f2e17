"""One similarity lane of the HCU: the Hamming compare of one token with one cluster."""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data
from amaranth.lib.wiring import In, Out

from hw.component import ConfiguredComponent
from hw.hcu.arith import better

__all__ = ["SimilarityLane"]


def _popcount(value):
    return sum(value[index] for index in range(len(value)))


class SimilarityLane(ConfiguredComponent):
    """One similarity lane of the HCU: one compare at a time, with early exit.

    A job arrives with ``load`` as the difference ``cluster hash XOR token hash``, the token's
    slot among the tokens in flight (``load_tag``) and the cluster id. The lane counts the
    differing bits ``hcu_bits_per_cycle`` at a time from the least significant end, the first
    beat in the cycle of ``load``, and stops after the beat at which the count reaches
    ``hamming_threshold`` or after the last beat. A compare that runs to the end below the
    threshold is a match; the lane keeps the best match of each token slot (smallest distance,
    then lowest cluster id) in ``best_distance`` / ``best_cluster`` (``hamming_threshold``:
    none), which ``clear`` resets when a new token takes the slot.

    ``available`` is a register, so the dispatcher's choice of lanes starts from flip-flops: it
    is set for cycle ``y + 1`` in cycle ``y`` when the lane was given no job (``reserve``) in
    ``y`` or ``y - 1`` and the compare of cycle ``y`` (if any) ends within two more beats. A job
    reserved in cycle ``x`` is loaded in ``x + 2`` (the unit reads and registers the table
    first), so the lane is free again in ``x + max(beats, 3)`` (:attr:`min_job_cycles`).

    Parameters
    ----------
    config : DREConfig

    Members
    -------
    reserve : In(1)
        The dispatcher gives the lane a job this cycle (only when ``available``); it is
        loaded two cycles later.
    load : In(1)
        A job starts this cycle (two cycles after its ``reserve``).
    load_difference, load_tag, load_cluster : In
        The job's bit difference, token slot and cluster id.
    clear : In(hcu_tokens_in_flight)
        Forget the best match of these token slots.
    working : Out(1)
        The lane compares in this cycle.
    available : Out(1)
        The lane can be reserved this cycle: its compares end by the next cycle (a register).
    tag : Out(range(hcu_tokens_in_flight))
        Token slot of the compare in this cycle (when ``working``).
    best_distance, best_cluster : Out, one per token slot
        Best match so far of each token slot.

    Raises
    ------
    TypeError
        If ``config`` is not a :class:`DREConfig`.
    """

    def _members(self, config):
        slots = config.hcu_tokens_in_flight
        return {
            "reserve": In(1),
            "load": In(1),
            "load_difference": In(config.hash_bits),
            "load_tag": In(range(slots)),
            "load_cluster": In(config.cluster_id_bits),
            "clear": In(slots),
            "working": Out(1),
            "available": Out(1),
            "tag": Out(range(slots)),
            "best_distance": Out(data.ArrayLayout(range(config.hash_bits + 1), slots)),
            "best_cluster": Out(data.ArrayLayout(config.cluster_id_bits, slots)),
        }

    @property
    def min_job_cycles(self):
        """Fewest cycles from one ``reserve`` of the lane to the next (a compare of fewer beats
        leaves the lane idle for the rest)."""
        return 3

    def elaborate(self, platform):
        config = self._config
        m = Module()
        threshold = config.hamming_threshold
        width = config.hcu_bits_per_cycle
        beats = config.hcu_beats_per_hash

        active = Signal()
        difference = Signal(config.hash_bits)
        beat = Signal(range(beats))
        partial = Signal(range(threshold))
        tag = Signal.like(self.load_tag)
        cluster = Signal(config.cluster_id_bits)

        # The compare of this cycle: a job loaded now, or the one in progress.
        current_difference = Mux(self.load, self.load_difference, difference)
        current_beat = Mux(self.load, 0, beat)
        current_partial = Mux(self.load, 0, partial)
        current_cluster = Mux(self.load, self.load_cluster, cluster)
        distance = Signal(range(threshold + width))
        reached = Signal()
        last_beat = Signal()
        finishing = Signal()
        lookahead = min(3 * width, config.hash_bits)
        distance_ahead = Signal(range(threshold + lookahead))
        ends_soon = Signal()
        reserved = Signal()            # reserved in the previous cycle, loaded in the next
        free = Signal(init=1)          # ``available``, registered
        m.d.comb += [
            self.working.eq(active | self.load),
            self.tag.eq(Mux(self.load, self.load_tag, tag)),
            distance.eq(current_partial + _popcount(current_difference[:width])),
            reached.eq(distance >= threshold),
            last_beat.eq(current_beat == beats - 1),
            finishing.eq(self.working & (reached | last_beat)),
            self.available.eq(free),
            # Lookahead: the compare of this cycle ends in this beat or one of the next two.
            distance_ahead.eq(current_partial + _popcount(current_difference[:lookahead])),
            ends_soon.eq((distance_ahead >= threshold) | (current_beat + 2 >= beats - 1)),
        ]
        # Availability for the next cycle: no job reserved now or in the previous cycle (both
        # still to be loaded), and the compare in progress, if any, ends by then.
        m.d.sync += [reserved.eq(self.reserve),
                     free.eq(~self.reserve & ~reserved & (~self.working | ends_soon))]
        with m.If(self.working & ~finishing):
            m.d.sync += [active.eq(1), difference.eq(current_difference >> width),
                         beat.eq(current_beat + 1), partial.eq(distance), tag.eq(self.tag),
                         cluster.eq(current_cluster)]
        with m.If(finishing):
            m.d.sync += active.eq(0)
            best_distance = self.best_distance[self.tag]
            best_cluster = self.best_cluster[self.tag]
            with m.If(~reached & better(distance, current_cluster, best_distance, best_cluster)):
                m.d.sync += [best_distance.eq(distance), best_cluster.eq(current_cluster)]
        for slot in range(config.hcu_tokens_in_flight):
            with m.If(self.clear[slot]):
                m.d.sync += [self.best_distance[slot].eq(threshold),
                             self.best_cluster[slot].eq(0)]
        return m
