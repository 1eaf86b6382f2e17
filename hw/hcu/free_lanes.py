"""The HCU's free-lane picker: which lanes take the compares started this cycle."""

from amaranth.hdl import Module, Signal
from amaranth.lib import data
from amaranth.lib.wiring import In, Out

from hw.component import ConfiguredComponent

__all__ = ["FreeLanePicker"]


class FreeLanePicker(ConfiguredComponent):
    """The ``hcu_dispatch_width`` (D) lowest-numbered free lanes, lowest first (combinational).

    Job ``j`` of a cycle goes to ``lane[j]``, the ``j``-th lowest lane whose ``available`` bit
    is set; ``found[j]`` is 0 when fewer than ``j + 1`` lanes are free (``lane[j]`` is then 0).

    Parameters
    ----------
    config : DREConfig
        Uses ``hcu_lanes`` and ``hcu_dispatch_width``.

    Members
    -------
    available : In(hcu_lanes)
        Bit ``l``: lane ``l`` can take a job this cycle.
    lane : Out(ArrayLayout(range(hcu_lanes), D))
        The lane of each job.
    found : Out(D)
        Bit ``j``: job ``j`` has a lane.

    Raises
    ------
    TypeError
        If ``config`` is not a :class:`DREConfig`.
    """

    def _members(self, config):
        lanes, width = config.hcu_lanes, config.hcu_dispatch_width
        return {
            "available": In(lanes),
            "lane": Out(data.ArrayLayout(range(lanes), width)),
            "found": Out(width),
        }

    def elaborate(self, platform):
        lanes = self._config.hcu_lanes
        m = Module()
        free = [self.available[index] for index in range(lanes)]
        for job in range(self._config.hcu_dispatch_width):
            chosen = Signal(range(lanes), name=f"free_lane{job}")
            for index in reversed(range(lanes)):
                with m.If(free[index]):
                    m.d.comb += [self.found[job].eq(1), chosen.eq(index)]
            m.d.comb += self.lane[job].eq(chosen)
            # The lanes still free for the next job.
            free = [available & (chosen != index) for index, available in enumerate(free)]
        return m
