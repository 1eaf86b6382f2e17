"""One WTU lane's cluster memories: score, token count, max score over the rows, aggregate bit."""

from amaranth.hdl import Module, Mux, unsigned
from amaranth.lib import memory
from amaranth.lib.wiring import In, Out

from hw.component import ConfiguredComponent
from hw.wtu.layouts import WTULayouts

__all__ = ["LaneMemories"]


class LaneMemories(ConfiguredComponent):
    """The memories of lane ``l``: cluster ``chunk * wtu_lanes + l`` lives at address ``chunk``.

    Four memories of ``ceil(max_clusters / wtu_lanes)`` words, each with one asynchronous read
    port (``domain="comb"``: the refinement walk reads one cluster per cycle) and one write port:
    the row's scores, the problem's token counts, each cluster's max score over the rows so far
    and its aggregate bit (selected by some row so far). Writes take effect at the clock edge.

    Parameters
    ----------
    config : DREConfig
        Uses ``score_bits``, ``count_bits``, ``max_clusters`` and ``wtu_lanes``.

    Members
    -------
    address : In(chunk_bits)
        Read address of the score and count memories (a load beat's chunk, or the walked cluster).
    chunk : In(chunk_bits)
        Read address of the max-score and aggregate memories; write address of all four.
    write_counts : In(1)
        Store ``count`` (a counts beat).
    count : In(count_bits)
    write_scores : In(1)
        Store ``score`` and fold it into the max score: ``score`` replaces it on the first row
        (``first_row``), else the larger one stays (a scores beat).
    score : In(score_bits)
    first_row : In(1)
        The row being loaded or emitted is row 0 of the problem.
    write_aggregate : In(1)
        Store ``select`` OR the aggregate bit (``select`` alone on the first row): a row-mask beat.
    select : In(1)
    stored_score, stored_count : Out(score_bits), Out(count_bits)
        The words at ``address``.
    max_score : Out(score_bits)
    aggregate : Out(1)
        The words at ``chunk``.

    Raises
    ------
    TypeError
        If ``config`` is not a :class:`DREConfig`.
    """

    def _members(self, config):
        addr_bits = WTULayouts(config).chunk_bits
        return {
            "address": In(addr_bits),
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
        for name, width in (("score", config.score_bits), ("count", config.count_bits),
                            ("max_score", config.score_bits), ("aggregate", 1)):
            m.submodules[name] = mem = memory.Memory(shape=unsigned(width), depth=chunks,
                                                     init=[])
            ports[name] = (mem.read_port(domain="comb"), mem.write_port())
        (score_rd, score_wr), (count_rd, count_wr) = ports["score"], ports["count"]
        (max_rd, max_wr), (agg_rd, agg_wr) = ports["max_score"], ports["aggregate"]
        m.d.comb += [
            score_rd.addr.eq(self.address), count_rd.addr.eq(self.address),
            max_rd.addr.eq(self.chunk), agg_rd.addr.eq(self.chunk),
            self.stored_score.eq(score_rd.data), self.stored_count.eq(count_rd.data),
            self.max_score.eq(max_rd.data), self.aggregate.eq(agg_rd.data),
            score_wr.addr.eq(self.chunk), score_wr.data.eq(self.score),
            score_wr.en.eq(self.write_scores),
            count_wr.addr.eq(self.chunk), count_wr.data.eq(self.count),
            count_wr.en.eq(self.write_counts),
            max_wr.addr.eq(self.chunk), max_wr.en.eq(self.write_scores),
            max_wr.data.eq(Mux(self.first_row | (self.score > max_rd.data),
                               self.score, max_rd.data)),
            agg_wr.addr.eq(self.chunk), agg_wr.en.eq(self.write_aggregate),
            agg_wr.data.eq(self.select | (agg_rd.data & ~self.first_row)),
        ]
        return m
