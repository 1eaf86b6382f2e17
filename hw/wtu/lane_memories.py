"""One WTU lane's cluster memories: score, token count, max score over the rows, aggregate bit."""

from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.lib import memory
from amaranth.lib.wiring import In, Out

from hw.component import ConfiguredComponent, block_ram, builds_for_fpga
from hw.wtu.layouts import WTULayouts
from hw.wtu.read_ahead import read_ahead

__all__ = ["LaneMemories"]


class LaneMemories(ConfiguredComponent):
    """The memories of lane ``l``: cluster ``chunk * wtu_lanes + l`` lives at address ``chunk``.

    Four memories of ``ceil(max_clusters / wtu_lanes)`` words, each with one synchronous read
    port (so each is an SRAM macro, a block RAM, or when too small for a macro a clocked
    register file) and one write port: the row's scores, the problem's token counts, each
    cluster's max score over the rows so far and its aggregate bit (selected by some row so
    far). The aggregate bit has a memory of its own: beside the max score it would widen a
    16-bit word to 17 and take a 32-bit macro (measured with IHP SG13G2: a 2P 256x32 macro is
    96,267 um^2, a 256x16 one 57,521 um^2, while 256 bits of flip-flops are far smaller). Reads
    are read-ahead (:mod:`hw.wtu.read_ahead`): the words of the addresses given in
    ``next_address`` and ``next_chunk`` appear in the next cycle, with any write of this cycle
    to them, except the score memory's (the unit never reads a score in the cycle after a load
    beat wrote it, so that word is the macro's output directly). Writes take effect at the
    clock edge, except the aggregate bit's: it is registered in the cycle of its row-mask beat
    and written at the end of the cycle after (a beat's read-modify-write sees the bit of the
    beat before it even while that one is pending; ``aggregate`` shows it once written).

    On an FPGA every memory asks for block RAM (:func:`hw.component.block_ram`): the FPGA flow
    would otherwise put the small aggregate-bit memory (256 x 1 on ``edge``) into LUT RAM,
    whose asynchronous read is a multiplexer tree behind the read-ahead address.

    Parameters
    ----------
    config : DREConfig
        Uses ``score_bits``, ``count_bits``, ``max_clusters`` and ``wtu_lanes``.

    Members
    -------
    next_address : In(chunk_bits)
        Read address of the count memory in the next cycle (a load beat's chunk, or the
        walked cluster).
    next_score_address : In(chunk_bits)
        Read address of the score memory in the next cycle: ``next_address``, except in an
        FPGA build's emission, which reads the scores a chunk ahead (:mod:`hw.wtu.unit`).
    next_chunk : In(chunk_bits)
        Read address of the max-score and aggregate words in the next cycle.
    chunk : In(chunk_bits)
        Write address of all four memories.
    write_counts : In(1)
        Store ``count`` (a counts beat; ``next_address`` must equal ``next_chunk`` in that
        cycle: the forwarding of the count word compares the write with ``next_chunk``).
    count : In(count_bits)
    write_scores : In(1)
        Store ``score`` and fold it into the max score: ``score`` replaces it on the first row
        (``first_row``), else the larger one stays (a scores beat).
    score : In(score_bits)
    first_row : In(1)
        The row being loaded or emitted is row 0 of the problem.
    write_aggregate : In(1)
        Store ``select`` OR the aggregate bit (``select`` alone on the first row): a row-mask
        beat; written at the end of the next cycle.
    select : In(1)
    stored_score, stored_count : Out(score_bits), Out(count_bits)
        The words at the previous cycle's ``next_score_address`` and ``next_address``.
    max_score : Out(score_bits)
    aggregate : Out(1)
        The words at the previous cycle's ``next_chunk``.

    Raises
    ------
    TypeError
        If ``config`` is not a :class:`DREConfig`.
    """

    def _members(self, config):
        addr_bits = WTULayouts(config).chunk_bits
        return {
            "next_address": In(addr_bits),
            "next_score_address": In(addr_bits),
            "next_chunk": In(addr_bits),
            "chunk": In(addr_bits),
            "write_counts": In(1),
            "count": In(config.count_bits),
            "write_scores": In(1),
            "score": In(config.score_bits),
            "first_row": In(1),
            "write_aggregate": In(1),
            "select": In(1),
            "stored_score": Out(config.score_bits),
            "stored_count": Out(config.count_bits),
            "max_score": Out(config.score_bits),
            "aggregate": Out(1),
        }

    def elaborate(self, platform):
        config = self._config
        chunks = WTULayouts(config).chunks
        m = Module()
        ports = {}
        attrs = block_ram(platform)
        for name, width in (("score", config.score_bits), ("count", config.count_bits),
                            ("max_score", config.score_bits), ("aggregate", 1)):
            m.submodules[name] = mem = memory.Memory(shape=unsigned(width), depth=chunks,
                                                     init=[], attrs=attrs)
            # The score memory needs no forwarding: it is written only by load beats, and its
            # word is used only by walks and the emission, which start cycles after the load.
            # The count memory is written only by count beats, when the lane reads ahead at
            # its next chunk (no walk): its forwarding compares with ``next_chunk``, not
            # with the walk's multiplexer in ``next_address``.
            ports[name] = read_ahead(m, mem, name, forward=name != "score",
                                     forward_address=self.next_chunk if name == "count"
                                     else None, transparent=builds_for_fpga(platform))
        (score_rd, score_wr, score), (count_rd, count_wr, count) = ports["score"], ports["count"]
        (max_rd, max_wr, old_max), (agg_rd, agg_wr, old_aggregate) = (ports["max_score"],
                                                                      ports["aggregate"])
        m.d.comb += [
            score_rd.addr.eq(self.next_score_address), count_rd.addr.eq(self.next_address),
            max_rd.addr.eq(self.next_chunk), agg_rd.addr.eq(self.next_chunk),
            self.stored_score.eq(score), self.stored_count.eq(count),
            self.max_score.eq(old_max), self.aggregate.eq(old_aggregate),
            score_wr.addr.eq(self.chunk), score_wr.data.eq(self.score),
            score_wr.en.eq(self.write_scores),
            count_wr.addr.eq(self.chunk), count_wr.data.eq(self.count),
            count_wr.en.eq(self.write_counts),
            max_wr.addr.eq(self.chunk), max_wr.en.eq(self.write_scores),
            max_wr.data.eq(Mux(self.first_row | (self.score > old_max), self.score, old_max)),
        ]
        # The aggregate bit, one cycle late: a score word's comparison with the cutoff
        # (``select``) would otherwise reach the register file's write data in the cycle of
        # its beat (its modelled setup is 1.4 ns).
        #   cycle of the row-mask beat: the new bit registered (``aggregate_pending*``), from
        #            the stored one or, when the beat before wrote the same address and is
        #            still pending, from that one;
        #   the cycle after: the bit written.
        pending = Signal(name="aggregate_pending")
        pending_chunk = Signal.like(self.chunk, name="aggregate_pending_chunk")
        pending_bit = Signal(name="aggregate_pending_bit")
        current = Mux(pending & (pending_chunk == self.chunk), pending_bit, old_aggregate)
        m.d.sync += [pending.eq(self.write_aggregate), pending_chunk.eq(self.chunk),
                     pending_bit.eq(self.select | (current & ~self.first_row))]
        m.d.comb += [agg_wr.addr.eq(pending_chunk), agg_wr.en.eq(pending),
                     agg_wr.data.eq(pending_bit)]
        return m
