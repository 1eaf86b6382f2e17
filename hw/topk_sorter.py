"""Sorter-based top-k: the straightforward baseline the WTU's area and cycles are compared with.

Without WiCSum, a designer would keep the ``k`` highest-scoring clusters of a row with sorting
hardware of the same throughput as the WTU: ``wtu_lanes`` scores per cycle. This block is that
design, made as plainly as possible so that its cost is a fair yardstick, and pipelined so that
every register-to-register path crosses at most :data:`LEVELS_PER_STAGE` compare-and-swap
levels:

1. a **bitonic sorting network** orders the ``wtu_lanes`` scores of one input beat, registered
   every :data:`LEVELS_PER_STAGE` levels (the ``sort`` pipeline; its last register is the
   fold's ``operand``, which holds the held bank instead during a reduction merge);
2. a **bitonic merge** folds the sorted beat into a sorted bank of ``W = 2**ceil(log2(k))``
   keys: the bank (descending) and the beat (reversed, so ascending) are combined element-wise
   by ``max``, which gives a bitonic sequence holding the ``W`` best of both, and a bitonic
   merging network sorts it. That network is cut into ``S`` registered stages (the ``ring``),
   and its last stage feeds its first: ``S`` banks circulate, one leaves the ring every cycle
   and is folded with the beat arriving then (with nothing, between beats), so each bank's
   loop has ``S`` cycles while the ring takes one beat per cycle;
3. after the row's last beat the ring **reduces** its ``S`` banks to one with the same
   network: a leaving bank is held, the next one leaving is folded with it, in a schedule
   fixed by ``S`` (:func:`reduce_schedule`);
4. the last bank goes to the **output** register, which shifts out one entry per cycle, best
   first, through a two-entry skid buffer (so that the consumer's ``ready`` drives two
   entries' registers, not the shift of all ``k``), and is left empty for the next row.

Every flag that steers the keys of a bank (the fold's ``vacate``, the held bank's load, the
operand's choice, the output's load and shift) is decided a cycle ahead into one register per
:data:`POSITIONS_PER_FLAG` positions, so no control net reaches the whole bank.

Every entry is one unsigned key ``{valid, score, ~cluster}`` (most significant first), so a
single ``>`` orders entries by score and breaks ties towards the lower cluster index, and an
empty entry (key 0) ranks below every real one; so does a key whose valid bit is 0 (a cycle
without a beat), and the output shows such an entry as empty. The bit-exact contract and the
cycle model are in :mod:`model.twins.topk_sorter`.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream
from amaranth.lib.wiring import In, Out

from hw.carry_compare import carry_less_than
from hw.component import ConfiguredComponent, builds_for_fpga

__all__ = ["TopKSorter", "input_layout", "output_layout", "reduce_schedule", "LEVELS_PER_STAGE",
           "POSITIONS_PER_FLAG"]


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


#: Compare-and-swap levels between two registers of the sorting and merging networks. One: a
#: level is a carry chain over the whole key whose result steers both outputs of every bit; on
#: the ECP5 the sorter with ``topk_k`` 4 routes at 70.6 MHz with two levels (two sorting levels
#: bound it) and at 120.5 MHz with one (docs/pipelines.md, "Sorter").
LEVELS_PER_STAGE = 1

#: Bank positions (keys) steered by one copy of a control flag. On the ECP5 the edge sorter's
#: flags each reached the 64 keys of a bank (1,827 to 2,879 sinks per net) and its routing
#: congested; with a copy per 8 positions a flag drives 8 keys of 29 bits.
POSITIONS_PER_FLAG = 8


def _next_power_of_two(value):
    return 1 << (value - 1).bit_length()


def _sort_levels(width):
    """Levels of a bitonic sorting network of ``width`` keys (a power of two), descending.

    Each level is a list of ``(high, low)`` position pairs: ``high`` receives the larger key.
    """
    levels = []
    size = 2
    while size <= width:
        stride = size // 2
        while stride:
            levels.append([(i, i ^ stride) if not i & size else (i ^ stride, i)
                           for i in range(width) if i ^ stride > i])
            stride //= 2
        size *= 2
    return levels


def _merge_levels(width):
    """Levels of a bitonic merging network of ``width`` keys: a bitonic list to descending."""
    levels = []
    stride = width // 2
    while stride:
        levels.append([(i, i ^ stride) for i in range(width) if i ^ stride > i])
        stride //= 2
    return levels


def _stages(levels):
    """Registered stages of a network of ``levels`` levels."""
    return -(-levels // LEVELS_PER_STAGE)


def reduce_schedule(banks):
    """Actions of the ring's reduction, one per cycle, as the banks leave the ring.

    Every bank is occupied when the reduction starts. A leaving bank is ``"hold"`` (kept
    aside), ``"merge"`` (folded with the held one, the result enters the ring), ``"skip"``
    (empty) or ``"done"`` (the only occupied bank left: the row's result). The list ends with
    ``"done"``.
    """
    occupied = [True] * banks  # slot i leaves the ring in cycles i, i + banks, ...
    held, actions = False, []
    while True:
        slot = len(actions) % banks
        if not occupied[slot]:
            actions.append("skip")
        elif held:
            actions.append("merge")
            held = False
        elif sum(occupied) == 1:
            actions.append("done")
            return actions
        else:
            actions.append("hold")
            occupied[slot] = False
            held = True


class _Network:
    """Builds compare-and-swap levels in a module, one named signal per key and level.

    With ``chain`` (an FPGA build) each comparison is the borrow of a subtraction
    (:func:`hw.carry_compare.carry_less_than`, mapped onto the carry chain), else the plain
    ``>``."""

    def __init__(self, module, key_bits, prefix, *, chain=False):
        self._module = module
        self._key_bits = key_bits
        self._prefix = prefix
        self._chain = chain
        self._count = 0

    def greater(self, a, b, name):
        """``a > b`` of two keys (comb), as the network compares them."""
        if self._chain:
            return carry_less_than(self._module, b, a, name)
        return a > b

    def level(self, keys, pairs):
        """Apply one level of ``(high, low)`` compare-and-swaps to the list ``keys``."""
        keys = list(keys)
        for high, low in pairs:
            name = f"{self._prefix}{self._count}"
            self._count += 1
            larger = Signal(self._key_bits, name=f"{name}_hi")
            smaller = Signal(self._key_bits, name=f"{name}_lo")
            high_wins = self.greater(keys[high], keys[low], f"{name}_wins")
            self._module.d.comb += [larger.eq(Mux(high_wins, keys[high], keys[low])),
                                    smaller.eq(Mux(high_wins, keys[low], keys[high]))]
            keys[high], keys[low] = larger, smaller
        return keys


class TopKSorter(ConfiguredComponent):
    """The ``topk_k`` highest scores of each row, from a sorting network and a merge ring.

    Parameters
    ----------
    config : DREConfig
        Uses ``score_bits``, ``max_clusters`` (cluster index width), ``wtu_lanes`` and ``topk_k``.

    Members
    -------
    i : In(stream.Signature(input_layout(config)))
        Score beats; lane ``l`` of the ``b``-th beat of a row is cluster ``b * wtu_lanes + l``.
        Ready while a row is collected (from its first beat to its last), and between rows.
    o : Out(stream.Signature(output_layout(config)))
        ``topk_k`` entries per row, best first; ``last`` on the ``topk_k``-th.

    Raises
    ------
    TypeError
        If ``config`` is not a :class:`DREConfig`.
    """

    def _members(self, config):
        return {
            "i": In(stream.Signature(input_layout(config))),
            "o": Out(stream.Signature(output_layout(config))),
        }

    @property
    def sort_stages(self):
        """Registers of the beat's sorting pipeline (at least one: the fold's ``operand``)."""
        return max(1, _stages(len(_sort_levels(self._config.wtu_lanes))))

    @property
    def ring_stages(self):
        """Registered stages of the merge ring: the fold and the merging network's levels."""
        width = _next_power_of_two(self._config.topk_k)
        return _stages(1 + len(_merge_levels(width)))

    @property
    def reduce_cycles(self):
        """Cycles from the row's last fold into the ring to the cycle its result leaves it."""
        return len(reduce_schedule(self.ring_stages))

    @property
    def latency(self):
        """Cycles from a row's last input handshake to its first output entry (no stalls): the
        sorting pipeline, the reduction, the output register and the skid buffer's ``main``."""
        return self.sort_stages + self.reduce_cycles + 2

    def elaborate(self, platform):
        # The merge used to close one k-entry buffer's loop through the fold and every level of
        # the merging network in one cycle. Cut into S stages, the network holds S banks at
        # once; a bank only meets itself again S cycles later, so S partial top-k results are
        # kept for free in the pipeline registers and reduced to one after the row.
        #
        # Control reaches the W keys of a bank through copies: every flag that steers keys (the
        # fold's vacate, the held bank's load, the operand's choice, the output's load and
        # shift) is one register per group of POSITIONS_PER_FLAG positions, decoded from that
        # group's own step counter: copies decoded from one counter would be identical
        # flip-flops, which Yosys's opt_merge makes one net again. The counters count the same
        # steps from different offsets (different reset values), so not even a sequential
        # equivalence pass could merge them.
        config = self._config
        lanes, k = config.wtu_lanes, config.topk_k
        id_bits = config.cluster_id_bits
        key_bits = 1 + config.score_bits + id_bits
        beat_bits = max(1, id_bits - (lanes.bit_length() - 1))
        width = _next_power_of_two(k)
        m = Module()

        # Sort pipeline, cycles 1 .. sort_stages: the beat's keys sorted, a register every
        # LEVELS_PER_STAGE levels; the last register is the fold's operand (below). Cluster
        # indices come from the beat counter and the lane. A key's valid bit is the input
        # handshake, so a cycle without a beat carries keys that rank below every real one
        # and read as empty at the output: no gate stands between the network and the fold.
        beat = Signal(beat_bits)
        lane_bits = lanes.bit_length() - 1
        take = self.i.valid & self.i.ready
        keys = []
        for lane in range(lanes):
            cluster = Cat(Const(lane, lane_bits), beat)[:id_bits] if lane_bits else beat[:id_bits]
            keys.append(Cat(~cluster, self.i.payload.scores[lane], take))
        chain = builds_for_fpga(platform)
        sorter = _Network(m, key_bits, "sort", chain=chain)
        levels = _sort_levels(lanes)
        valid, last = take, self.i.payload.last
        for stage in range(self.sort_stages):
            keys = self._apply(sorter, keys,
                               levels[stage * LEVELS_PER_STAGE:(stage + 1) * LEVELS_PER_STAGE])
            if stage == self.sort_stages - 1:
                break
            registered = [Signal(key_bits, name=f"sort_s{stage}_{index}") for index in range(lanes)]
            stage_valid = Signal(name=f"sort_s{stage}_valid")
            stage_last = Signal(name=f"sort_s{stage}_last")
            m.d.sync += [dst.eq(src) for dst, src in zip(registered, keys)]
            m.d.sync += [stage_valid.eq(valid), stage_last.eq(last)]
            keys, valid, last = registered, stage_valid, stage_last
        sorted_beat = keys[:min(lanes, k)]
        batch_valid, batch_last = Signal(name="batch_valid"), Signal(name="batch_last")
        m.d.sync += [batch_valid.eq(valid), batch_last.eq(last)]
        # The row's last batch folds in the cycle ``starting``; ``starting_next`` is it a cycle
        # ahead (the sort pipeline's previous stage).
        starting, starting_next = batch_valid & batch_last, valid & last

        # Reduction control, decided a cycle ahead: ``ahead_g`` is the index of the next cycle's
        # action (valid while ``active_ahead``), plus the group's offset ``g``.
        stages = self.ring_stages
        schedule = reduce_schedule(stages)
        groups = -(-width // POSITIONS_PER_FLAG)
        count_bits = max(1, (len(schedule) - 1).bit_length(), (groups - 1).bit_length())
        active_ahead = Signal()
        flags = {name: [Signal(name=f"reduce_{name}_{group}") for group in range(groups)]
                 for name in ("hold", "merge_next", "vacate", "done")}
        emitting_copy = [Signal(name=f"emitting_{group}") for group in range(groups)]

        def decode(counter, offset, steps):
            codes = [(step + offset) % (1 << count_bits) for step in steps]
            return Cat([counter == code for code in codes]).any()

        def steps_of(*names, shift=0):
            return [index for index in range(len(schedule))
                    if index + shift < len(schedule) and schedule[index + shift] in names]

        for group in range(groups):
            ahead = Signal(count_bits, init=group, name=f"reduce_ahead_{group}")
            m.d.sync += ahead.eq(Mux(starting_next, group, ahead + 1))
            # vacate: hold or done (the leaving bank does not stay in the ring)
            for name, actions in (("hold", ("hold",)), ("vacate", ("hold", "done")),
                                  ("done", ("done",))):
                m.d.sync += flags[name][group].eq(
                    active_ahead & decode(ahead, group, steps_of(*actions)))
            # merge in two cycles: the step after the next one, or the first after a start
            m.d.sync += flags["merge_next"][group].eq(Mux(
                starting_next, int(schedule[0] == "merge"),
                active_ahead & decode(ahead, group, steps_of("merge", shift=1))))
            if group == 0:
                at_done = decode(ahead, group, steps_of("done"))
                m.d.sync += active_ahead.eq(starting_next | (active_ahead & ~at_done))

        def flag(name, position):
            return flags[name][position // POSITIONS_PER_FLAG]

        # The fold's operand, one register per bank position, chosen a cycle ahead: the held
        # bank for a reduction merge, else the sorted beat (positions beyond it: empty).
        bank = [Signal(key_bits, name=f"ring_out_{index}") for index in range(width)]
        held = [Signal(key_bits, name=f"held_{index}") for index in range(width)]
        operand = [Signal(key_bits, name=f"operand_{index}") for index in range(width)]
        for index in range(width):
            held_next = Signal(key_bits, name=f"held_next_{index}")
            m.d.comb += held_next.eq(Mux(flag("hold", index), bank[index], held[index]))
            m.d.sync += held[index].eq(held_next)
            from_beat = sorted_beat[index] if index < len(sorted_beat) else Const(0, key_bits)
            m.d.sync += operand[index].eq(Mux(flag("merge_next", index), held_next, from_beat))

        # Ring, stages 1 .. S: fold the leaving bank with the operand, then the merging
        # network, a register every LEVELS_PER_STAGE levels; the last stage's register is the
        # leaving bank.
        merger = _Network(m, key_bits, "merge", chain=chain)
        folded = []
        for position in range(width):
            other = operand[width - 1 - position]
            larger = Signal(key_bits, name=f"fold{position}")
            # A vacated bank folds as empty keys: max(0, other) is other. The comparator sees
            # the bank itself, and ``vacate`` steers only the last multiplexer.
            kept = bank[position]
            wins = merger.greater(other, kept, f"fold{position}_wins")
            m.d.comb += larger.eq(Mux(flag("vacate", position) | wins, other, kept))
            folded.append(larger)
        # Level 0 is the fold; the first stage takes what is left over from whole groups of
        # LEVELS_PER_STAGE (the fold alone when the groups leave it alone).
        ring_levels = [None] + _merge_levels(width)
        first = len(ring_levels) - LEVELS_PER_STAGE * (stages - 1)
        keys = folded
        for stage in range(stages):
            begin = 0 if stage == 0 else first + (stage - 1) * LEVELS_PER_STAGE
            end = first + stage * LEVELS_PER_STAGE
            group = [level for level in ring_levels[begin:end] if level]
            keys = self._apply(merger, keys, group)
            if stage == stages - 1:
                registered = bank
            else:
                registered = [Signal(key_bits, name=f"ring_s{stage}_{index}")
                              for index in range(width)]
            # positions at k and beyond never reach the top k: the leaving bank drops them
            m.d.sync += [dst.eq(src if stage < stages - 1 or index < k else 0)
                         for index, (dst, src) in enumerate(zip(registered, keys))]
            keys = registered

        # Output register, shifted out one entry per cycle, best first, leaving it empty; each
        # group of positions loads and shifts under its own copy of the flags. Its head goes
        # through a two-entry skid buffer (``main``, which drives ``o``, and ``skid``): the
        # register shifts while it is emitting and ``skid`` is empty, decided a cycle ahead into
        # one register per group (``shift_g``), so the consumer's ``o.ready`` reaches the two
        # entries' registers and one flag per group, not the shift enables of all k.
        out = [Signal(key_bits, name=f"top_{index}") for index in range(k)]
        shifted = Signal(range(k))
        main_valid, skid_valid, skid_valid_next = Signal(), Signal(), Signal()
        shift_copy = [Signal(name=f"shift_{group}") for group in range(groups)]
        shifting = shift_copy[0]
        ends = shifting & (shifted == k - 1)
        taking = self.o.ready | ~main_valid   # main takes the next entry, or empties
        m.d.comb += skid_valid_next.eq(~taking & (skid_valid | shifting))
        m.d.sync += skid_valid.eq(skid_valid_next)
        for group, copy in enumerate(emitting_copy):
            copy_next = Signal(name=f"emitting_next_{group}")
            m.d.comb += copy_next.eq(flags["done"][group] | (copy & ~ends))
            m.d.sync += [copy.eq(copy_next), shift_copy[group].eq(copy_next & ~skid_valid_next)]
        for index in range(k):
            following = out[index + 1] if index + 1 < k else Const(0, key_bits)
            with m.If(flag("done", index)):
                m.d.sync += out[index].eq(bank[index])
            with m.Elif(shift_copy[index // POSITIONS_PER_FLAG]):
                m.d.sync += out[index].eq(following)
        with m.If(shifting):
            m.d.sync += shifted.eq(Mux(shifted == k - 1, 0, shifted + 1))
        entry = Cat(out[0], shifted == k - 1)   # the key, then last
        main, skid = Signal(len(entry), name="main"), Signal(len(entry), name="skid")
        with m.If(taking):
            m.d.sync += [main_valid.eq(skid_valid | shifting),
                         main.eq(Mux(skid_valid, skid, entry))]
        with m.Elif(shifting):
            m.d.sync += skid.eq(entry)
        emitting = emitting_copy[0]

        # Phases: collect (input ready until the last beat), reduce, emit (until the last
        # entry has left the skid buffer).
        collecting_done = Signal()
        reducing = Signal()
        m.d.comb += self.i.ready.eq(~collecting_done & ~reducing & ~emitting & ~main_valid)
        with m.If(take):
            m.d.sync += beat.eq(Mux(self.i.payload.last, 0, beat + 1))
            with m.If(self.i.payload.last):
                m.d.sync += collecting_done.eq(1)
        with m.If(starting):
            m.d.sync += [reducing.eq(1), collecting_done.eq(0)]
        with m.If(flags["done"][0]):
            m.d.sync += reducing.eq(0)

        head = main[:key_bits]
        head_valid = head[-1]
        m.d.comb += [
            self.o.valid.eq(main_valid),
            self.o.payload.valid.eq(head_valid),
            self.o.payload.score.eq(Mux(head_valid, head[id_bits:id_bits + config.score_bits], 0)),
            self.o.payload.cluster.eq(Mux(head_valid, ~head[:id_bits], 0)),
            self.o.payload.last.eq(main[-1]),
        ]
        return m

    @staticmethod
    def _apply(network, keys, levels):
        for pairs in levels:
            keys = network.level(keys, pairs)
        return keys
