"""Count packer: the KVMU's counts, one per beat, into the WTU's counts, ``wtu_lanes`` per beat.

An adapter of the DRE top (:class:`hw.dre.DynamicRetrievalEngine`): the KVMU emits the
token count of clusters ``0 .. N - 1`` one per beat (:func:`hw.kvmu.count_layout`, ``last`` on
cluster ``N - 1``); the WTU takes them ``wtu_lanes`` per beat, cluster ``chunk * lanes + l`` in
lane ``l`` (:class:`hw.wtu.WTULayouts` ``counts``). The packer fills lanes in order and emits a
beat when its last lane is filled or the count carries ``last``; the lanes after a ``last``
count are 0 (the WTU ignores lanes past ``N - 1``).

Timing: one count accepted per cycle; a beat is valid in the cycle after the transfer of the
count that completes it (:attr:`CountPacker.latency`), and while it waits for ``o.ready`` the
next beat's first count is accepted in the cycle it leaves, so an always-ready WTU sees
``ceil(N / lanes)`` beats with no count ever stalled.
"""

from amaranth.hdl import Module, Signal
from amaranth.lib import stream
from amaranth.lib.wiring import In, Out

from hw.component import ConfiguredComponent
from hw.kvmu import count_layout
from hw.wtu import WTULayouts

__all__ = ["CountPacker"]


class CountPacker(ConfiguredComponent):
    """The KVMU's per-cluster counts packed into the WTU's multi-lane count beats.

    Parameters
    ----------
    config : DREConfig
        Supplies ``wtu_lanes`` and ``count_bits``.

    Members
    -------
    i : In(stream.Signature(hw.kvmu.count_layout(config)))
        One count per beat, ``last`` on the problem's last cluster.
    o : Out(stream.Signature(WTULayouts(config).counts))
        ``wtu_lanes`` counts per beat.

    Raises
    ------
    TypeError
        If ``config`` is not a :class:`DREConfig`.
    """

    #: Cycles from the transfer of a beat's last count to the beat's ``valid``.
    latency = 1

    def _members(self, config):
        return {"i": In(stream.Signature(count_layout(config))),
                "o": Out(stream.Signature(WTULayouts(config).counts))}

    def elaborate(self, platform):
        m = Module()
        lanes = self.config.wtu_lanes
        lane = Signal(range(lanes))
        full = Signal()

        # The output register is the beat itself; it is free when empty or leaving this cycle.
        m.d.comb += [self.o.valid.eq(full), self.i.ready.eq(~full | self.o.ready)]
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += full.eq(0)
        with m.If(self.i.valid & self.i.ready):
            for index in range(lanes):
                with m.If(lane == index):
                    m.d.sync += self.o.payload.count[index].eq(self.i.payload.count)
                with m.Elif(lane == 0):
                    m.d.sync += self.o.payload.count[index].eq(0)    # a new beat: clear
            with m.If(self.i.payload.last | (lane == lanes - 1)):
                m.d.sync += [full.eq(1), lane.eq(0)]
            with m.Else():
                m.d.sync += lane.eq(lane + 1)
        return m
