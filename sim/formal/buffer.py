"""Formal harness of the retrieval buffer (:class:`hw.retrieval_buffer.RetrievalBuffer`).

Input assumptions: besides the stream rule, the clusters of one problem come in the order of
the cluster-contiguous KV layout: each kept range (``selected`` and ``count`` > 0) starts at or
after the end of the previous one and ends within the ``2**kv_token_bits`` address space.

Properties (group: what is asserted)
------------------------------------
contract
    ``o`` keeps ``valid`` and its payload while stalled; ``i`` is assumed to do the same.
conservation
    A problem's last descriptor only after its last input beat, at most two problems inside at
    once; never more tokens out than in; in dynamic mode without a budget every input token
    has come out at the last descriptor of a problem (when no later problem's input is
    complete yet); with a budget, no dynamic problem fetches more tokens
    than ``token_budget``.
response
    With ``o`` always ready, a problem's last descriptor follows its last input beat within
    ``insert_latency + sort_rounds_per_entry * topk_k + topk_k + drain_latency +
    flush_latency`` cycles (the last insertion, the sort rounds by base, the kept entries
    drained one per cycle, then the merger's flush).
invariants
    The descriptors of a problem are strictly ascending and disjoint (adjacent ranges were
    merged: a gap lies between two descriptors), each within the address space; a length-0
    descriptor only as the single descriptor of a problem with nothing kept.
"""

from amaranth.hdl import Assume, Mux, Signal

from model.config import PRESETS
from sim.formal.properties import (FormalHarness, counter, drive_input, drive_output,
                                   waiting_cycles)

__all__ = ["VARIANTS", "JOBS", "QUICK", "BufferHarness", "harness"]

_TINY = PRESETS["tiny"]
_SMALL = dict(kv_token_bits=4, count_bits=2, score_bits=2, recent_window=0, wtu_refine_depth=0)
#: Configurations proved: the preset ``tiny`` and small ones covering every parameter path of
#: the buffer: a two-entry sorted buffer, a single entry, and a token budget.
VARIANTS = {
    "tiny": _TINY,
    "small": _TINY.replace(**_SMALL, topk_k=2),
    "single": _TINY.replace(**_SMALL, topk_k=1),
    "budget": _TINY.replace(**_SMALL, topk_k=2, token_budget=4),
}
_ALL = (("contract", "prove", 8), ("conservation", "bmc", 10), ("response", "bmc", 16),
        ("invariants", "bmc", 12), ("cover", "cover", 16))
#: (kind, mode, depth) of the jobs of each variant. The contract closes by k-induction at
#: length 8 (``prove``: it holds at every depth); the token sums of ``conservation`` and the
#: address compares of ``invariants`` make those the slowest bounded checks: depth 10 (each
#: conservation step past 9 took minutes) and 12.
#: On ``tiny`` (a four-entry sorted buffer, 10-bit addresses, 8-bit counts) a step of those
#: two takes minutes past depth 6: it is checked to depth 6 (invariants went to depth 8 before
#: the drain sorted by base; with the sort's compares, step 6 did not finish in 25 minutes).
JOBS = {"tiny": (_ALL[0], ("conservation", "bmc", 6), _ALL[2], ("invariants", "bmc", 6),
                 _ALL[4]),
        "small": _ALL, "single": _ALL, "budget": _ALL}
#: The jobs ``make test`` runs (the others run in ``make formal``).
QUICK = (("tiny", "contract"), ("small", "response"))

#: Width of the harness's counters: no wrap within 63 steps, deeper than every job.
_COUNT_BITS = 6


class BufferHarness(FormalHarness):
    """The retrieval buffer with free inputs and one group of properties (module docstring)."""

    def harness(self, m, config, props):
        from hw.registry import build_component

        m.submodules.dut = dut = build_component("buffer", config)
        taken = drive_input(m, dut.i, props, "i")
        given = drive_output(m, dut.o, props, "o")
        beat, desc = dut.i.payload, dut.o.payload
        space = 1 << config.kv_token_bits
        token_bits = config.kv_token_bits + _COUNT_BITS

        # Input assumption: the ranges of a problem in layout order, within the address space.
        in_end = Signal(config.kv_token_bits + 1)
        in_first = Signal(init=1)
        candidate = beat.selected & (beat.count != 0)
        m.d.comb += Assume(~(dut.i.valid & candidate)
                           | ((beat.base >= in_end) & (beat.base + beat.count <= space)))
        with m.If(taken):
            m.d.sync += in_first.eq(beat.last)
            with m.If(beat.last):
                m.d.sync += in_end.eq(0)
            with m.Elif(candidate):
                m.d.sync += in_end.eq(beat.base + beat.count)
        topk_problem = taken & in_first & beat.topk
        seen_topk = Signal()
        with m.If(topk_problem):
            m.d.sync += seen_topk.eq(1)

        # Conservation.
        problems_in = counter(m, taken & beat.last, _COUNT_BITS, "problems_in")
        problems_out = counter(m, given & desc.last, _COUNT_BITS, "problems_out")
        tokens_in = Signal(token_bits)
        tokens_out = Signal(token_bits)
        tokens_done = Signal(token_bits)      # input tokens of the problems whose last beat came
        problem_tokens = Signal(token_bits)
        beat_tokens = tokens_in + Mux(candidate, beat.count, 0)
        with m.If(taken):
            m.d.sync += tokens_in.eq(beat_tokens)
            with m.If(beat.last):
                m.d.sync += tokens_done.eq(beat_tokens)
        with m.If(given):
            m.d.sync += tokens_out.eq(tokens_out + desc.length)
            m.d.sync += problem_tokens.eq(0)
            with m.If(~desc.last):
                m.d.sync += problem_tokens.eq(problem_tokens + desc.length)
        check = props.checker(m, "conservation")
        check(~(given & desc.last) | (problems_out < problems_in))
        check(problems_in - problems_out <= 2)
        check(tokens_out <= tokens_in)
        if config.token_budget == 0:
            # At the last descriptor of the only problem whose input is complete, every token
            # of the complete problems has left.
            closing = given & desc.last & (problems_in == problems_out + 1)
            check(seen_topk | ~closing | (tokens_out + desc.length == tokens_done))
        else:
            check(seen_topk | ~given | (problem_tokens + desc.length <= config.token_budget))

        # Bounded response.
        waiting = waiting_cycles(m, pending=problems_in != problems_out,
                                 progress=given & desc.last, width=_COUNT_BITS, name="waiting")
        bound = (dut.insert_latency + dut.sort_rounds_per_entry * dut.capacity + dut.capacity
                 + dut.drain_latency + dut.flush_latency)
        props.check(m, "response", waiting < bound)

        # Invariants: ascending, disjoint descriptors within the address space.
        out_end = Signal(config.kv_token_bits + 1)
        out_first = Signal(init=1)
        with m.If(given):
            m.d.sync += [out_first.eq(desc.last), out_end.eq(desc.base + desc.length)]
        invariant = props.checker(m, "invariants")
        present = dut.o.valid & (desc.length != 0)
        invariant(~present | out_first | (desc.base > out_end))
        invariant(~present | (desc.base + desc.length <= space))
        invariant(~(dut.o.valid & (desc.length == 0)) | (out_first & desc.last))

        props.cover(m, given & desc.last & ~out_first & seen_topk)
        props.cover(m, given & (desc.length > config.max_count))
        props.cover(m, given & desc.last & (desc.length == 0))
        props.cover(m, (problems_out == 2) & ~seen_topk & (tokens_out != 0))
        props.cover(m, waiting == bound - 1)
        if config.token_budget:
            props.cover(m, (problems_out == 1) & ~seen_topk & (tokens_out < tokens_in))


def harness(config, kind):
    """The harness of the retrieval buffer for ``config`` proving job kind ``kind``."""
    return BufferHarness(config, kind)
