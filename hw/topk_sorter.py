"""Sorter-based top-k: the straightforward baseline the WTU's area and cycles are compared with.

Without WiCSum, a designer would keep the ``k`` highest-scoring clusters of a row with sorting
hardware of the same throughput as the WTU: ``wtu_lanes`` scores per cycle. This block is that
design, made as plainly as possible so that its cost is a fair yardstick:

1. a **bitonic sorting network** orders the ``wtu_lanes`` scores of one input beat (registered);
2. a **bitonic merge** folds the sorted beat into a ``k``-entry sorted buffer in one cycle: the
   buffer (descending) and the beat (reversed, so ascending) are combined element-wise by
   ``max``, which gives a bitonic sequence holding the ``k`` best of both, and a bitonic merging
   network sorts it (padded to a power of two with empty entries that synthesis removes);
3. after the row's last beat the buffer shifts out one entry per cycle, best first, and is left
   empty (shifting in empty entries) for the next row.

Every entry is one unsigned key ``{valid, score, ~cluster}`` (most significant first), so a
single ``>`` orders entries by score and breaks ties towards the lower cluster index, and an
empty entry (key 0) ranks below every real one. The bit-exact contract and the cycle model are
in :mod:`model.twins.topk_sorter`.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from model.config import DREConfig

__all__ = ["TopKSorter", "input_layout", "output_layout"]


def input_layout(config):
    """Payload of one input beat: ``wtu_lanes`` scores and the ``last`` flag of the row."""
    return data.StructLayout({
        "scores": data.ArrayLayout(config.score_bits, config.wtu_lanes),
        "last": 1,
    })


def output_layout(config):
    """Payload of one output entry: cluster index, score, ``valid`` and the row's ``last``."""
    return data.StructLayout({
        "cluster": config.cluster_id_bits,
        "score": config.score_bits,
        "valid": 1,
        "last": 1,
    })


class _SortingNetwork:
    """Builds compare-and-swap networks in a module, one named signal per comparator output.

    Every comparator's outputs are signals (not nested expressions), so the generated netlist
    stays linear in the number of comparators.
    """

    def __init__(self, module, key_bits, prefix):
        self._module = module
        self._key_bits = key_bits
        self._prefix = prefix
        self._count = 0

    def compare_swap(self, first, second):
        """The larger and the smaller of two keys."""
        name = f"{self._prefix}{self._count}"
        self._count += 1
        larger = Signal(self._key_bits, name=f"{name}_hi")
        smaller = Signal(self._key_bits, name=f"{name}_lo")
        first_wins = first > second
        self._module.d.comb += [larger.eq(Mux(first_wins, first, second)),
                                smaller.eq(Mux(first_wins, second, first))]
        return larger, smaller

    def merge(self, keys, descending):
        """Sort a bitonic list of keys (length a power of two) with a merging network."""
        if len(keys) == 1:
            return list(keys)
        half = len(keys) // 2
        upper, lower = [], []
        for first, second in zip(keys[:half], keys[half:]):
            larger, smaller = self.compare_swap(first, second)
            upper.append(larger if descending else smaller)
            lower.append(smaller if descending else larger)
        return self.merge(upper, descending) + self.merge(lower, descending)

    def sort(self, keys, descending=True):
        """Sort a list of keys (length a power of two) with a bitonic sorting network."""
        if len(keys) == 1:
            return list(keys)
        half = len(keys) // 2
        first = self.sort(keys[:half], descending=True)
        second = self.sort(keys[half:], descending=False)
        return self.merge(first + second, descending)


def _next_power_of_two(value):
    return 1 << (value - 1).bit_length()


class TopKSorter(wiring.Component):
    """The ``topk_k`` highest scores of each row, from a sorting network and a merge buffer.

    Parameters
    ----------
    config : DREConfig
        Uses ``score_bits``, ``max_clusters`` (cluster index width), ``wtu_lanes`` and ``topk_k``.

    Members
    -------
    i : In(stream.Signature(input_layout(config)))
        Score beats; lane ``l`` of the ``b``-th beat of a row is cluster ``b * wtu_lanes + l``.
    o : Out(stream.Signature(output_layout(config)))
        ``topk_k`` entries per row, best first; ``last`` on the ``topk_k``-th.

    Raises
    ------
    TypeError
        If ``config`` is not a :class:`DREConfig`.
    """

    #: Cycles from a row's last input handshake to its first output entry (no stalls): the
    #: registered sorting network, then the merge into the buffer register.
    latency = 2

    def __init__(self, config):
        if not isinstance(config, DREConfig):
            raise TypeError(f"config must be a DREConfig, not {config!r}")
        self._config = config
        super().__init__({
            "i": In(stream.Signature(input_layout(config))),
            "o": Out(stream.Signature(output_layout(config))),
        })

    @property
    def config(self):
        """The :class:`DREConfig` this sorter was built for."""
        return self._config

    def elaborate(self, platform):
        config = self._config
        lanes, k = config.wtu_lanes, config.topk_k
        id_bits = config.cluster_id_bits
        key_bits = 1 + config.score_bits + id_bits
        beat_bits = max(1, id_bits - (lanes.bit_length() - 1))
        m = Module()

        # Stage 1: sort the beat. Cluster indices come from the beat counter and the lane.
        beat = Signal(beat_bits)
        lane_bits = lanes.bit_length() - 1
        beat_keys = []
        for lane in range(lanes):
            cluster = Cat(Const(lane, lane_bits), beat)[:id_bits] if lane_bits else beat[:id_bits]
            beat_keys.append(Cat(~cluster, self.i.payload.scores[lane], Const(1, 1)))
        kept = min(lanes, k)
        sorted_beat = _SortingNetwork(m, key_bits, "sort").sort(beat_keys)[:kept]
        batch = [Signal(key_bits, name=f"batch_{index}") for index in range(kept)]
        batch_valid = Signal()
        batch_last = Signal()

        # Stage 2: merge the sorted beat into the k-entry buffer (empty entries are key 0).
        buffer = [Signal(key_bits, name=f"top_{index}") for index in range(k)]
        width = _next_power_of_two(k)
        padded = buffer + [Const(0, key_bits)] * (width - k)
        merger = _SortingNetwork(m, key_bits, "merge")
        combined = list(padded)
        for index, key in enumerate(batch):
            position = width - 1 - index
            larger = Signal(key_bits, name=f"fold{index}")
            m.d.comb += larger.eq(Mux(padded[position] > key, padded[position], key))
            combined[position] = larger
        merged = merger.merge(combined, descending=True)[:k]

        emitting = Signal()
        sent = Signal(range(k))
        with m.If(~emitting):
            m.d.comb += self.i.ready.eq(~(batch_valid & batch_last))
        m.d.sync += batch_valid.eq(0)
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [batch[index].eq(sorted_beat[index]) for index in range(kept)]
            m.d.sync += [batch_valid.eq(1), batch_last.eq(self.i.payload.last)]
            m.d.sync += beat.eq(Mux(self.i.payload.last, 0, beat + 1))
        with m.If(batch_valid):
            m.d.sync += [buffer[index].eq(merged[index]) for index in range(k)]
            with m.If(batch_last):
                m.d.sync += emitting.eq(1)

        # Stage 3: shift the buffer out, best first, leaving it empty.
        head = buffer[0]
        head_valid = head[-1]
        m.d.comb += [
            self.o.valid.eq(emitting),
            self.o.payload.valid.eq(head_valid),
            self.o.payload.score.eq(Mux(head_valid, head[id_bits:id_bits + config.score_bits], 0)),
            self.o.payload.cluster.eq(Mux(head_valid, ~head[:id_bits], 0)),
            self.o.payload.last.eq(sent == k - 1),
        ]
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += [buffer[index].eq(buffer[index + 1]) for index in range(k - 1)]
            m.d.sync += buffer[k - 1].eq(0)
            m.d.sync += sent.eq(Mux(sent == k - 1, 0, sent + 1))
            with m.If(sent == k - 1):
                m.d.sync += emitting.eq(0)
        return m
