"""Formal harness of the hash-bit cluster unit (:class:`hw.hcu.HashClusterUnit`).

Properties (group: what is asserted)
------------------------------------
contract
    ``o`` keeps ``valid`` and its payload while stalled; ``i`` is assumed to do the same.
conservation
    An assignment only for a token taken before it (``o`` transfers never outnumber ``i``
    transfers); never more than ``hcu_tokens_in_flight`` tokens inside (no token accepted while
    full); tokens leave in order, none dropped or repeated: the ``n``-th assignment carries the
    ``last`` flag of the ``n``-th token, for a token number ``n`` the solver picks freely.
response
    With ``o`` always ready, while a token is inside, an assignment follows within
    :attr:`HashClusterUnit.max_token_cycles` cycles (the unit's declared bound).
invariants
    Cluster ids in opening order: a new cluster gets the next id; a joined cluster was opened
    before and is still among the ``hash_mem_entries`` newest (in the table), at a distance below
    ``hamming_threshold``; the overflow rule: an ``overflow`` beat only once ``max_clusters``
    clusters are open, with ``cluster``, ``new`` and ``distance`` 0; the ``overflow`` status
    output is high exactly after the first overflow beat.
"""

from amaranth.hdl import Signal

from model.config import PRESETS
from sim.formal.properties import (FormalHarness, counter, drive_input, drive_output,
                                   free_constant, waiting_cycles)

__all__ = ["VARIANTS", "JOBS", "QUICK", "HCUHarness", "harness"]

_TINY = PRESETS["tiny"]
#: Configurations proved. ``tiny`` is the preset; the others are small enough that an overflow
#: and a full table are reached within the depths below, and between them exercise every
#: parameter path of the unit: one or several tokens in flight, one or two table banks, more
#: lanes than banks, bit-serial and wider lanes, a ring table smaller than ``max_clusters``.
VARIANTS = {
    "tiny": _TINY,
    "ring": _TINY.replace(hash_bits=4, hamming_threshold=2, hcu_lanes=2, hcu_bits_per_cycle=2,
                          hcu_tokens_in_flight=2, hcu_dispatch_width=2, hash_mem_entries=2,
                          max_clusters=4, wtu_lanes=2, topk_k=2),
    # Threshold 2, not 3: at most two 4-bit hashes lie pairwise 3 bits apart, so with 3 the
    # table could never fill (the cover job found the overflow unreachable).
    "serial": _TINY.replace(hash_bits=4, hamming_threshold=2, hcu_lanes=3, hcu_bits_per_cycle=1,
                            hcu_tokens_in_flight=1, hcu_dispatch_width=1, hash_mem_entries=4,
                            max_clusters=4, wtu_lanes=2, topk_k=2),
}
_ALL = (("contract", "bmc", 16), ("conservation", "bmc", 16), ("response", "bmc", 24),
        ("invariants", "bmc", 16), ("cover", "cover", 48))
#: (kind, mode, depth) of the jobs of each variant. With the pipelined unit (table read data
#: registered, lanes loading their operands into registers, three-stage argmin) ``ring``
#: reaches a join after an eviction and an overflow within its cover depth (48: with the
#: argmin's third stage the overflow comes at step 37 and a join after it at step 45; it was
#: at step 39 of 40 before); its
#: response bound is 21 cycles (depth 24; a lane is reserved at most every 5 cycles).
#: ``serial`` (one token at a time, 4-cycle compares) needs about twice as many steps for its
#: fifth token (cover depth 68: the overflow at step 51, a join after it was at step 59 of 62
#: before the argmin's third stage); its response bound (31 cycles) needs depth 35;
#: its contract closes by k-induction at length 8 (``ring``'s did not at 8 or 16). ``tiny``
#: (64 clusters, a 91-cycle response bound) is
#: checked to a depth where its overflow and response bound are out of reach: no response or
#: cover job there; the same harness's covers are reached on the small variants.
JOBS = {
    "tiny": (("contract", "bmc", 12), ("conservation", "bmc", 12), ("invariants", "bmc", 12)),
    "ring": _ALL,
    "serial": (("contract", "prove", 8), _ALL[1], ("response", "bmc", 35), _ALL[3],
               ("cover", "cover", 68)),
}
#: The jobs ``make test`` runs (the others run in ``make formal``).
QUICK = (("tiny", "contract"),)

#: Width of the harness's counters: no wrap within 127 steps, deeper than every job.
_COUNT_BITS = 7


class HCUHarness(FormalHarness):
    """The HCU with free inputs and one group of properties (see the module docstring)."""

    def harness(self, m, config, props):
        from hw.registry import build_component

        m.submodules.dut = dut = build_component("hcu", config)
        taken = drive_input(m, dut.i, props, "i")
        given = drive_output(m, dut.o, props, "o")
        out = dut.o.payload

        # Conservation: counts of tokens in and assignments out, one tracked token.
        tokens_in = counter(m, taken, _COUNT_BITS, "tokens_in")
        tokens_out = counter(m, given, _COUNT_BITS, "tokens_out")
        inside = tokens_in - tokens_out
        props.check(m, "conservation", ~given | (tokens_out < tokens_in))
        props.check(m, "conservation", tokens_out <= tokens_in)
        props.check(m, "conservation", inside <= dut.tokens_in_flight)
        tracked = free_constant(m, _COUNT_BITS, "tracked")
        tracked_last = Signal()
        with m.If(taken & (tokens_in == tracked)):
            m.d.sync += tracked_last.eq(dut.i.payload.last)
        leaves = given & (tokens_out == tracked)
        props.check(m, "conservation", ~leaves | (out.last == tracked_last))
        props.cover(m, inside == dut.tokens_in_flight)
        props.cover(m, leaves & (tracked == 2))

        # Bounded response.
        waiting = waiting_cycles(m, pending=tokens_out != tokens_in, progress=given,
                                 width=_COUNT_BITS, name="waiting")
        props.check(m, "response", waiting < dut.max_token_cycles)
        props.cover(m, given & (waiting >= 3))

        # Invariants on every offered assignment.
        opened = counter(m, given & out.new, _COUNT_BITS, "opened")
        new, overflow = out.new, out.overflow
        joined = ~new & ~overflow
        entries, clusters = config.hash_mem_entries, config.max_clusters
        props.check(m, "invariants", ~dut.o.valid | ~(new & overflow))
        props.check(m, "invariants", ~(dut.o.valid & new)
                    | ((out.cluster == opened) & (out.distance == 0) & (opened < clusters)))
        props.check(m, "invariants", ~(dut.o.valid & joined)
                    | ((out.cluster < opened) & (out.cluster + entries >= opened)
                       & (out.distance < config.hamming_threshold)))
        props.check(m, "invariants", ~(dut.o.valid & overflow)
                    | ((opened == clusters) & (out.cluster == 0) & (out.distance == 0)))
        overflowed = Signal()
        with m.If(given & overflow):
            m.d.sync += overflowed.eq(1)
        props.check(m, "invariants", dut.overflow == overflowed)
        props.cover(m, given & joined & (out.distance != 0))
        if entries < clusters:      # a ring table: a join after the oldest cluster was evicted
            props.cover(m, given & joined & (opened == entries + 1) & (out.cluster != 0))
        props.cover(m, given & overflow)
        props.cover(m, given & joined & overflowed)


def harness(config, kind):
    """The harness of the HCU for ``config`` proving job kind ``kind``."""
    return HCUHarness(config, kind)
