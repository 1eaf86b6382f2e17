"""One WTU lane's cluster memories: score, token count, max score over the rows, aggregate bit."""

from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.lib import memory
from amaranth.lib.wiring import In, Out

from hw.component import (ConfiguredComponent, block_ram, builds_for_fpga,
                          poisons_undefined_reads)
from hw.wtu.fast_adders import carry_chains, fast_geq
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
    beat wrote it, so that word is the macro's output directly). The score and count
    writes take effect at the clock edge; the max score and the aggregate bit, which are
    read-modify-writes, are written at the end of the cycle after their beat (the beat's values
    and the old word registered first, so that no memory word goes through the update's logic
    in its own cycle); a beat's update sees the word of the beat before it even while that one
    is pending, and ``max_score`` and ``aggregate`` show a word once written.

    On an FPGA every memory asks for block RAM (:func:`hw.component.block_ram`): the FPGA flow
    would otherwise put the small aggregate-bit memory (256 x 1 on ``edge``) into LUT RAM,
    whose asynchronous read is a multiplexer tree behind the read-ahead address. The max
    score's and the aggregate bit's read ports are transparent. The score memory's word at the
    address being written nobody uses: that memory leaves it undefined
    (:data:`hw.wtu.read_ahead.NO_RW_CHECK`), so the block RAM has no bypass. The count memory
    does the same and keeps the silicon form's forwarding register, compared with
    ``next_chunk``, so no bypass compares the walk's multiplexer in ``next_address``. The max
    score's update compares the beat's score with both candidate words at once, on carry
    chains, and picks the result after.

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
        fpga = builds_for_fpga(platform)
        for name, width in (("score", config.score_bits), ("count", config.count_bits),
                            ("max_score", config.score_bits), ("aggregate", 1)):
            m.submodules[name] = mem = memory.Memory(shape=unsigned(width), depth=chunks,
                                                     init=[], attrs=block_ram(platform))
            # The score memory needs no forwarding: it is written only by load beats, and its
            # word is used only by walks and the emission, which start cycles after the load.
            # The count memory is written only by count beats, when the lane reads ahead at
            # its next chunk (no walk): its forwarding compares with ``next_chunk``, not
            # with the walk's multiplexer in ``next_address``.
            ports[name] = read_ahead(m, mem, name, forward=name != "score",
                                     forward_address=self.next_chunk if name == "count"
                                     else None, transparent=fpga,
                                     poison=poisons_undefined_reads(platform))
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
        ]
        # The max score and the aggregate bit are each updated a cycle after their beat
        # (``_update_a_cycle_later``): the larger score (the beat's alone on the first row)
        # and the row's selection OR the bit (the selection alone on the first row).
        chain = carry_chains(platform)

        def larger_score(after_same, last, old, score, first_row):
            kept = Mux(after_same, last, old)
            if chain:
                # Both words compared at once (carry chains), the comparison picked after:
                # the pick is not the first step of the comparison's path.
                larger = Mux(after_same,
                             ~fast_geq(m, last, score, "max_score_last_geq", chain=True),
                             ~fast_geq(m, old, score, "max_score_old_geq", chain=True))
            else:
                larger = score > kept
            return Mux(first_row | larger, score, kept)

        _update_a_cycle_later(
            m, "max_score", max_wr, self.write_scores, self.chunk, old_max,
            {"score": self.score, "first_row": self.first_row}, larger_score)
        _update_a_cycle_later(
            m, "aggregate", agg_wr, self.write_aggregate, self.chunk, old_aggregate,
            {"select": self.select, "first_row": self.first_row},
            lambda after_same, last, old, select, first_row:
                select | (Mux(after_same, last, old) & ~first_row))
        return m


def _update_a_cycle_later(m, name, write, enable, chunk, stored, beat, update):
    """A read-modify-write of one memory over two cycles, so that no memory word goes through
    logic into a register or a write port in its own cycle (a block RAM gives its word late:
    an ECP5 DP16KD 5.83 ns after the clock).

    * cycle of the beat (``enable``): the stored word at ``chunk`` (read ahead), the beat's
      values (``beat``, a dict of name -> value) and whether the beat before wrote the same
      chunk are registered (``name_update_*``);
    * the cycle after: ``update(after_same, last, old, **beat)`` is written at that chunk: the
      update of ``old``, the registered word, or, when ``after_same`` (the beat before wrote
      the same chunk: its write lands at the end of this beat's cycle, after the word was
      read), of ``last``, the word that beat wrote. ``update`` picks the word where its logic
      is fastest.
    """
    pending = Signal(name=f"{name}_update")
    pending_chunk = Signal.like(chunk, name=f"{name}_update_chunk")
    old = Signal.like(stored, name=f"{name}_update_old")
    after_same = Signal(name=f"{name}_update_after_same")
    last = Signal.like(write.data, name=f"{name}_update_last")
    registered = {}
    for key, value in beat.items():
        registered[key] = Signal.like(value, name=f"{name}_update_{key}")
        m.d.sync += registered[key].eq(value)
    m.d.sync += [pending.eq(enable), pending_chunk.eq(chunk), old.eq(stored),
                 after_same.eq(pending & (pending_chunk == chunk)), last.eq(write.data)]
    word = update(after_same, last, old, **registered)
    m.d.comb += [write.addr.eq(pending_chunk), write.en.eq(pending), write.data.eq(word)]
