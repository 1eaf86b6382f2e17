"""The HCU's free-lane picker: which lanes take the compares started in each cycle (registered)."""

from amaranth.hdl import Cat, Const, Module, Signal
from amaranth.lib import data
from amaranth.lib.wiring import In, Out

from hw.component import ConfiguredComponent

__all__ = ["FreeLanePicker"]


def at_least(m, bits, count, name):
    """``[bits has at least k bits set for k in 1 .. count]``, as a balanced tree of halves
    (a saturating count: logarithmic depth, no chain over the bits).

    Each node of the tree is a signal of ``m`` named ``name`` and its path (``l`` low half,
    ``h`` high half), so that a half used by several counts is built once: as expressions,
    each use repeated it (the server preset's HCU Verilog was 30.6 MB, 5.7 MB with the
    signals, and the Amaranth simulator evaluated every copy).
    """
    if len(bits) == 0:
        return [Const(0, 1)] * count
    if len(bits) == 1:
        return [bits[0]] + [Const(0, 1)] * (count - 1)
    half = len(bits) // 2
    low = [Const(1, 1)] + at_least(m, bits[:half], count, f"{name}l")
    high = [Const(1, 1)] + at_least(m, bits[half:], count, f"{name}h")
    node = Signal(count, name=name)
    m.d.comb += node.eq(Cat(Cat(low[part] & high[k - part] for part in range(k + 1)).any()
                            for k in range(1, count + 1)))
    return list(node)


def lowest_lanes(m, free, count, name):
    """The ``count`` lowest set bits of the signal ``free``, each a one-hot signal of ``m``,
    and whether each exists.

    Bit ``l`` of pick ``j`` is set when bit ``l`` of ``free`` is and exactly ``j`` bits below
    it are (each from a saturating count of the bits below, :func:`at_least`: no pick waits
    for the one before it). Returns ``count`` signals as wide as ``free`` (zero where fewer
    bits are set) and a signal of ``count`` bits, bit ``j`` set when pick ``j`` exists.
    """
    picked = [Signal(len(free), name=f"{name}_lowest{job}") for job in range(count)]
    for index in range(len(free)):
        below = [Const(1, 1)] + at_least(m, free[:index], count, f"{name}_below{index}_")
        for job in range(count):
            m.d.comb += picked[job][index].eq(free[index] & below[job] & ~below[job + 1])
    exists = Signal(count, name=f"{name}_found")
    m.d.comb += exists.eq(Cat(at_least(m, free, count, f"{name}_count_")))
    return picked, exists


class FreeLanePicker(ConfiguredComponent):
    """The ``hcu_dispatch_width`` (D) lowest-numbered free lanes of each cycle, chosen a cycle ahead.

    Job ``j`` of a cycle goes to ``lane[j]``, the ``j``-th lowest lane that can take a job in
    that cycle; ``found[j]`` is 0 when fewer than ``j + 1`` lanes can (``lane[j]`` and
    ``grant[j]`` are then 0). The choice is a register (the *grant*), made in the previous
    cycle from the lanes' ``available_next`` registers: the lanes free in the next cycle are
    those with ``available_next`` set less the grants the previous cycle's jobs took (a
    register here: the lanes learn of their reservations a cycle late) and those this
    cycle's jobs take (``taken``, a prefix of the grants, so jobs ``0 .. j``). The choice for every possible number of taken
    grants is made from registers, and ``taken``, the last signal of the cycle, only selects
    one of them: the dispatcher's jobs do not wait for a search over the lanes.

    After reset every lane is free: the grants are lanes ``0 .. D - 1``.

    Parameters
    ----------
    config : DREConfig
        Uses ``hcu_lanes`` and ``hcu_dispatch_width``.

    Members
    -------
    available_next : In(hcu_lanes)
        Bit ``l``: lane ``l`` can take a job in the next cycle unless it takes one in this
        cycle or took one in the previous (:attr:`hw.hcu.SimilarityLane.available_next`).
    taken : In(D)
        Bit ``j``: job ``j`` of this cycle takes grant ``j`` (a prefix: bit ``j`` only with bit
        ``j - 1``).
    grant : Out(ArrayLayout(hcu_lanes, D))
        The lane of each job of this cycle, one-hot (a register).
    lane : Out(ArrayLayout(range(hcu_lanes), D))
        The same lanes, numbered.
    found : Out(D)
        Bit ``j``: job ``j`` has a lane this cycle (a register).

    Raises
    ------
    TypeError
        If ``config`` is not a :class:`DREConfig`.
    """

    def _members(self, config):
        lanes, width = config.hcu_lanes, config.hcu_dispatch_width
        return {
            "available_next": In(lanes),
            "taken": In(width),
            "grant": Out(data.ArrayLayout(lanes, width)),
            "lane": Out(data.ArrayLayout(range(lanes), width)),
            "found": Out(width),
        }

    def elaborate(self, platform):
        lanes, width = self._config.hcu_lanes, self._config.hcu_dispatch_width
        m = Module()
        # The registers, at reset the lanes 0 .. D - 1 (every lane free).
        grant = [Signal(lanes, name=f"grant{job}", init=1 << job) for job in range(width)]
        found = Signal(width, init=(1 << width) - 1)
        index_bits = (lanes - 1).bit_length()
        for job in range(width):
            # The lane's number, bit b the OR of the grant's bits whose number has bit b set.
            number = Cat(Cat(grant[job][index] for index in range(lanes) if index >> bit & 1)
                         .any() for bit in range(index_bits))
            m.d.comb += [self.grant[job].eq(grant[job]),
                         self.lane[job].eq(number if index_bits else 0)]
        m.d.comb += self.found.eq(found)
        # The next grants for each number of grants taken now (0 .. D), from registers.
        # The lanes the previous cycle's jobs took, one-hot (their ``available_next`` does not
        # know it yet).
        took = Signal(lanes)
        m.d.sync += took.eq(Cat(*(Cat(self.taken[job] & grant[job][index]
                                      for job in range(width)).any()
                                  for index in range(lanes))))
        free = Signal(lanes)
        m.d.comb += free.eq(self.available_next & ~took)
        choices = []
        for taken in range(width + 1):
            choices.append(lowest_lanes(m, free, width, f"taken{taken}"))
            if taken < width:
                remaining = Signal(lanes, name=f"free_after{taken + 1}")
                m.d.comb += remaining.eq(free & ~grant[taken])
                free = remaining
        # The number taken selects one, the last logic before the registers.
        def update(taken):
            return [*(register.eq(value) for register, value in zip(grant, choices[taken][0])),
                    found.eq(choices[taken][1])]

        with m.If(self.taken[width - 1]):
            m.d.sync += update(width)
        for taken in reversed(range(1, width)):
            with m.Elif(self.taken[taken - 1]):
                m.d.sync += update(taken)
        with m.Else():
            m.d.sync += update(0)
        return m
