# amaranth: UnusedElaboratable=no
"""Amaranth-simulator tests of the WTU's sub-components (``hw/wtu/``), one by one.

Each part is driven with seeded random inputs, cycle by cycle, and compared with a small Python
reference of its rule written here (not with the twin, which models the whole unit). Every
simulation has a cycle limit (:func:`sim.kit.amaranth_sim.simulate`).
"""

import random

import pytest
from amaranth.hdl import Cat, Module, unsigned
from amaranth.lib import memory
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth_boards.ulx3s import ULX3S_85F_Platform

from hw.wtu.pipeline import (broadcast_stages, buckets_per_copy, decide_cycles, gather_stages,
                             product_copies, threshold_in_halves, threshold_latency)
from hw.wtu import (AggregateEmitter, BucketLists, BucketMasses, Decision, Lane, LaneMemories,
                    RowStatistics, Sequencer, WTULayouts)
from hw.wtu.lane_links import broadcast, gather
from hw.wtu.read_ahead import NO_RW_CHECK, read_ahead
from model.config import PRESETS
from sim.kit.amaranth_sim import built_for, poisoning, simulate
from tests.yosys_cells import synthesized_cells

TINY = PRESETS["tiny"]
CASES = 300


def _set_all(ctx, pairs):
    for port, value in pairs:
        ctx.set(port, value)


@pytest.mark.parametrize("form", ["silicon", "fpga"])
def test_lane_memories(form):
    """Reads ahead: the words at a cycle's ``next_score_address``/``next_address``/
    ``next_chunk`` appear in the next cycle, including that cycle's writes to them
    (forwarded), except the score memory's (the unit never reads a score in the cycle after
    writing it); the max score and the aggregate bit of a beat are written at the end of the
    cycle after it. Both forms: the FPGA one declares its read ports transparent, except the
    score memory's, whose word at the address being written it leaves undefined (given
    inverted here), and compares the beat's score with both candidate words of the max
    score's update before picking one."""
    config = TINY
    dut = (LaneMemories if form == "silicon"
           else built_for(LaneMemories, poisoning(ULX3S_85F_Platform)))(config)
    depth = WTULayouts(config).chunks
    rng = random.Random(1)

    async def testbench(ctx):
        # Reference: four lists of words; reset contents are never read by the unit, so each
        # word is written before the first check that reads it.
        memory = {name: [0] * depth for name in ("score", "count", "max", "aggregate")}
        written = {name: set() for name in memory}
        # The previous cycle's read-ahead addresses (the memories and their output registers
        # start at 0, as the reference does).
        read_score = read_address = read_chunk = 0
        score_collision = False     # the previous cycle wrote the score read ahead in it
        pending = {}                # memory -> the update of the previous cycle's beat
        for _ in range(CASES):
            if score_collision:
                written["score"].discard(read_score)     # unspecified: not checked
            for port, name, at in ((dut.stored_score, "score", read_score),
                                   (dut.stored_count, "count", read_address),
                                   (dut.max_score, "max", read_chunk),
                                   (dut.aggregate, "aggregate", read_chunk)):
                if at in written[name]:
                    assert ctx.get(port) == memory[name][at], (name, at)
            # As in the unit, the write address is the previous cycle's read-ahead chunk (the
            # read-modify-writes use its words); writes hit the address read ahead in the same
            # cycle in about a third of the cycles.
            chunk = read_chunk
            read_address = chunk if rng.random() < 0.3 else rng.randrange(depth)
            read_chunk = chunk if rng.random() < 0.3 else rng.randrange(depth)
            ops = {name: rng.random() < 0.4 for name in ("counts", "scores", "aggregate")}
            if ops["counts"]:
                read_address = read_chunk   # a counts beat reads ahead at the next chunk
            # The score memory's own address: the count's, or (an FPGA build's emission)
            # another one.
            read_score = read_address if rng.random() < 0.5 else rng.randrange(depth)
            score, count = rng.randrange(config.max_score + 1), rng.randrange(256)
            first_row, select = rng.random() < 0.3, rng.getrandbits(1)
            _set_all(ctx, [(dut.next_address, read_address), (dut.next_chunk, read_chunk),
                           (dut.next_score_address, read_score),
                           (dut.chunk, chunk),
                           (dut.write_counts, ops["counts"]), (dut.count, count),
                           (dut.write_scores, ops["scores"]), (dut.score, score),
                           (dut.first_row, first_row), (dut.write_aggregate, ops["aggregate"]),
                           (dut.select, select)])
            await ctx.tick()
            score_collision = ops["scores"] and chunk == read_score
            if ops["counts"]:
                memory["count"][chunk] = count
            if ops["scores"]:
                memory["score"][chunk] = score
            # The max score and the aggregate bit are written at the end of the cycle after
            # their beat; the beat's read-modify-write sees a pending word of the same address.
            updates = {
                "max": (ops["scores"], lambda old: score if first_row or score > old else old),
                "aggregate": (ops["aggregate"], lambda old: select | (old & (not first_row))),
            }
            landed = {}
            for name, (op, update) in updates.items():
                if op:
                    current = pending[name][1] if pending.get(name, (None,))[0] == chunk \
                        else memory[name][chunk]
                    landed[name] = (chunk, update(current),
                                    first_row or chunk in written[name])
            for name, (at, word, known) in pending.items():
                memory[name][at] = word
                if known:
                    written[name].add(at)
            pending = landed
            for name, op in (("count", "counts"), ("score", "scores")):
                if ops[op]:
                    written[name].add(chunk)

    simulate(dut, testbench, CASES + 2)


class _ReadAhead(wiring.Component):
    """One 8-word memory behind :func:`hw.wtu.read_ahead.read_ahead` in one of its modes; the
    attributes named in ``drop`` are taken off the memory after ``read_ahead`` set them. With
    ``compared``, the forwarding compares the write with an input of its own, ``compared``
    (``forward_address``)."""

    def __init__(self, attrs=None, drop=(), compared=False, **mode):
        self._attrs, self._drop, self._compared, self._mode = attrs, drop, compared, mode
        super().__init__({"next_address": In(3), "write_address": In(3), "write": In(1),
                          "word": In(8), "data": Out(8)}
                         | ({"compared": In(3)} if compared else {}))

    def elaborate(self, platform):
        m = Module()
        m.submodules.memory = mem = memory.Memory(shape=unsigned(8), depth=8, init=[],
                                                  attrs=self._attrs)
        mode = dict(self._mode)
        if self._compared:
            mode["forward_address"] = self.compared
        read, write, data = read_ahead(m, mem, "words", **mode)
        for key in self._drop:
            del mem.attrs[key]
        m.d.comb += [read.addr.eq(self.next_address), write.addr.eq(self.write_address),
                     write.data.eq(self.word), write.en.eq(self.write), self.data.eq(data)]
        return m


@pytest.mark.parametrize("mode, collision", [
    ({}, "new"),                                            # forwarding register
    ({"compared": True}, "compared"),                       # forwarding, forward_address
    ({"transparent": True}, "new"),                         # an FPGA's transparent port
    ({"transparent": True, "compared": True}, "compared"),  # an FPGA's port, own forwarding
    ({"forward": False}, "old"),                            # the macro's own word
    ({"forward": False, "transparent": True}, "old"),       # an FPGA's port, NO_RW_CHECK
    ({"forward": False, "transparent": True, "poison": True}, "inverted"),
], ids=["forwarded", "forwarded-compared", "transparent", "fpga-forwarded-compared", "macro",
        "fpga-undefined", "fpga-undefined-poisoned"])
def test_read_ahead_modes(mode, collision):
    """Each mode gives the word at the address presented a cycle before; a read at the address
    written in that cycle gives the new word, the old one, or (poisoned) the old one inverted.
    With ``forward_address`` (``compared``, drawn apart from the read address too) the written
    word is given when the write's address is the compared one, whatever the read address, and
    otherwise the old word (both forms read the memory before the write lands)."""
    dut = _ReadAhead(**mode)
    rng = random.Random(3)

    async def testbench(ctx):
        words = [None] * 8
        for _ in range(CASES):
            address, write_address = rng.randrange(8), rng.randrange(8)
            compared = rng.choice([address, write_address, rng.randrange(8)])
            write, word = rng.random() < 0.5, rng.randrange(256)
            _set_all(ctx, [(dut.next_address, address), (dut.write_address, write_address),
                           (dut.write, write), (dut.word, word)]
                     + ([(dut.compared, compared)] if "compared" in mode else []))
            await ctx.tick()
            old = words[address]
            if write:
                words[write_address] = word
            if collision == "compared":
                expected = word if write and write_address == compared else old
            elif write and write_address == address:
                expected = {"new": word, "old": old,
                            "inverted": None if old is None else old ^ 0xFF}[collision]
            else:
                expected = words[address]
            if expected is not None:
                assert ctx.get(dut.data) == expected, (address, write, write_address, compared)

    simulate(dut, testbench, CASES + 2)


@pytest.mark.parametrize("mode, drop, bypass", [
    ({"transparent": True}, (), True),
    ({"forward": False, "transparent": True}, tuple(NO_RW_CHECK), True),
    ({"forward": False, "transparent": True}, (), False),
], ids=["transparent", "old-word", "undefined"])
def test_a_block_ram_read_port_has_a_bypass_unless_its_collisions_are_undefined(
        tmp_path, mode, drop, bypass):
    """The claim of :mod:`hw.wtu.read_ahead`: Yosys maps each FPGA read port onto an ECP5 block
    RAM, with flip-flops beside it for the bypass of a transparent port or of a port that keeps
    the old word (the undefined mode without the ``NO_RW_CHECK`` it sets), and none when the
    memory carries it."""
    port = _ReadAhead(attrs={"ram_style": "block"}, drop=drop, **mode)
    cells = synthesized_cells(tmp_path, port, "read_ahead", "synth_ecp5 -top read_ahead")
    assert cells.get("DP16KD") == 1, cells
    assert ("TRELLIS_FF" in cells) == bypass, cells


def test_a_block_ram_port_with_its_own_forwarding_has_no_bypass_of_yosys(tmp_path):
    """An FPGA port forwarding with ``forward_address`` leaves the collision undefined, so
    beside the block RAM are only the forwarding register's flip-flops: one for the comparison
    and eight for the written word."""
    port = _ReadAhead(attrs={"ram_style": "block"}, compared=True, transparent=True)
    cells = synthesized_cells(tmp_path, port, "read_ahead", "synth_ecp5 -top read_ahead")
    assert cells.get("DP16KD") == 1, cells
    assert cells.get("TRELLIS_FF") == 1 + 8, cells


@pytest.mark.parametrize("form", ["silicon", "fpga"])
def test_bucket_lists(form):
    """Append to lists, walk one while relinking its members into new lists, walk those; the
    walk pauses in random cycles (``step`` 0). Both forms: the silicon one (the memory holds
    successors) and the FPGA one (it holds the cluster two ahead, :class:`BucketLists`, and
    leaves the word of a read at the address being written undefined: given inverted here)."""
    config = TINY
    part = (BucketLists if form == "silicon"
            else built_for(BucketLists, poisoning(ULX3S_85F_Platform)))
    dut = part(config)
    buckets, depth = config.wtu_buckets, WTULayouts(config).chunks
    rng = random.Random(2)
    walks = 40

    async def idle(ctx):
        _set_all(ctx, [(dut.append, 0), (dut.clear, 0), (dut.start, 0), (dut.step, 0)])

    async def testbench(ctx):
        lists = None                    # reference: the address lists of every bucket
        for _ in range(walks):
            if lists is None:           # a fresh row: clear, then append a row's addresses
                lists = {k: [] for k in range(buckets)}
                _set_all(ctx, [(dut.clear, 1)])
                await ctx.tick()
                await idle(ctx)
                for address in rng.sample(range(depth), rng.randint(0, depth)):
                    bucket = rng.randrange(buckets)
                    _set_all(ctx, [(dut.append, 1), (dut.bucket, bucket),
                                   (dut.address, address)])
                    lists[bucket].append(address)
                    await ctx.tick()
                await idle(ctx)
            # Name the list a cycle ahead, then start its walk (another select in that cycle
            # is ignored) and clear all of them in the same cycle (as a refine).
            walked_bucket = rng.randrange(buckets)
            expected = lists[walked_bucket]
            lists = {k: [] for k in range(buckets)}
            _set_all(ctx, [(dut.start_select, 1 << walked_bucket)])
            await ctx.tick()
            _set_all(ctx, [(dut.start, 1), (dut.start_select, 1 << rng.randrange(buckets)),
                           (dut.clear, 1)])
            await ctx.tick()
            await idle(ctx)
            walked = []
            for _ in range(3 * depth + 1):
                if rng.random() < 0.3:      # a pause: nothing steps, nothing is appended
                    await idle(ctx)
                    await ctx.tick()
                    continue
                active = ctx.get(dut.walk_active)
                done = ctx.get(dut.walk_done)
                bucket = rng.randrange(buckets)
                _set_all(ctx, [(dut.step, 1), (dut.append, active), (dut.bucket, bucket),
                               (dut.address, ctx.get(dut.walk_address))])
                if active:
                    walked.append(ctx.get(dut.walk_address))
                    lists[bucket].append(walked[-1])
                await ctx.tick()
                if done:
                    break
            else:
                raise AssertionError(f"the walk of bucket {walked_bucket} did not end")
            await idle(ctx)
            assert walked == expected, walked_bucket
            assert not ctx.get(dut.walk_active)
            if rng.random() < 0.3:
                lists = None

    simulate(dut, testbench, walks * (4 * depth + 7))


@pytest.mark.parametrize("form", ["silicon", "fpga"])
@pytest.mark.parametrize("lanes, buckets", [(4, 4), (16, 4), (4, 16)])
def test_bucket_masses(lanes, buckets, form):
    """Four lanes are one group of the first compression, sixteen two (ACCUMULATE_GROUP), in
    both forms (the FPGA one's sums on carry chains). A lane's copies of its product for the
    groups of buckets its hit is not in carry random values, which must not count."""
    # 16 buckets resolve 4 of tiny's 8 score bits a pass: at most one refinement.
    config = TINY.replace(wtu_lanes=lanes, wtu_buckets=buckets,
                          wtu_refine_depth=min(TINY.wtu_refine_depth, 1))
    dut = (BucketMasses if form == "silicon"
           else built_for(BucketMasses, ULX3S_85F_Platform()))(config)
    lanes, buckets = config.wtu_lanes, config.wtu_buckets
    copy_count, group = product_copies(config), buckets_per_copy(config)
    rng = random.Random(3)

    async def testbench(ctx):
        mass, members = [0] * buckets, [0] * buckets      # reference, cleared first
        history = []                                      # reference after each cycle
        _set_all(ctx, [(dut.clear, 1)])
        await ctx.tick()
        for cycle in range(CASES):
            active = rng.getrandbits(lanes)
            bucket = [rng.randrange(buckets) for _ in range(lanes)]
            product = [rng.randrange(1 << 16) for _ in range(lanes)]
            accumulate, clear = rng.random() < 0.8, rng.random() < 0.05
            _set_all(ctx, [(dut.accumulate, accumulate), (dut.clear, clear)])
            for lane in range(lanes):
                hits = (1 << bucket[lane]) if active >> lane & 1 else 0   # one-hot or 0
                copies = [product[lane] if hits and g == bucket[lane] // group
                          else rng.randrange(1 << 16) for g in range(copy_count)]
                _set_all(ctx, [(dut.hits[lane], hits)]
                         + [(dut.product[lane][g], copies[g]) for g in range(copy_count)])
            await ctx.tick()
            if clear:
                mass, members = [0] * buckets, [0] * buckets
            elif accumulate:
                for lane in range(lanes):
                    if active >> lane & 1:
                        mass[bucket[lane]] += product[lane]
                        members[bucket[lane]] += 1
            # The outputs show the inputs dut.latency cycles after they were given.
            history.append((list(mass), list(members)))
            if cycle >= dut.latency - 1:
                shown_mass, shown_members = history[cycle - (dut.latency - 1)]
                for k in range(buckets):
                    # Modulo the widths: over hundreds of cycles without a clear the random
                    # inputs run past a problem's totals (which fit weight_bits and
                    # cluster_id_bits + 1).
                    assert ctx.get(dut.mass[k]) == shown_mass[k] % (1 << config.weight_bits), k
                    assert ctx.get(dut.members[k]) == \
                        shown_members[k] % (1 << (config.cluster_id_bits + 1)), k

    simulate(dut, testbench, CASES + 3)


@pytest.mark.parametrize("form", ["silicon", "fpga"])
@pytest.mark.parametrize("buckets", [4, 16])
@pytest.mark.parametrize("code", [77, 0, 256])
def test_row_statistics(code, buckets, form):
    """With 16 buckets the threshold's adders are in halves (no cycle of the decision lost).
    The FPGA form runs with 16 lanes: two groups of ACCUMULATE_GROUP products in the weighted
    sum's first cycle, its carry chains and its comparisons as subtractions."""
    config = TINY.replace(wicsum_ratio_code=code, wtu_buckets=buckets,
                          wtu_refine_depth=min(TINY.wtu_refine_depth,
                                               TINY.replace(wtu_buckets=buckets,
                                                            wtu_refine_depth=0).full_refine_depth))
    if code == 77:  # five terms: three adder levels, in halves only where 16 buckets hide it
        assert threshold_in_halves(config) == (buckets == 16)
    if form == "fpga":
        config = config.replace(wtu_lanes=16)
    dut = (RowStatistics if form == "silicon"
           else built_for(RowStatistics, ULX3S_85F_Platform()))(config)
    lanes, bits = config.wtu_lanes, config.wicsum_ratio_bits
    rng = random.Random(code)

    async def testbench(ctx):
        total, low, high = 0, 0, 0                          # reference (reset values)
        totals, extremes = [], []                           # W, (min, max) after each cycle
        thresholds_checked = 0
        for cycle in range(CASES):
            # Loads in bursts (6 cycles of every 14), so that W also stays unchanged long
            # enough for its threshold.
            clear = cycle == 0 or rng.random() < 0.05
            load = cycle % 14 < 6 and rng.random() < 0.7
            valid = rng.getrandbits(lanes)
            scores = [rng.randrange(config.max_score + 1) for _ in range(lanes)]
            counts = [rng.randrange(config.max_count + 1) for _ in range(lanes)]
            _set_all(ctx, [(dut.clear, clear), (dut.load, load), (dut.valid, valid)])
            for lane in range(lanes):
                _set_all(ctx, [(dut.score[lane], scores[lane]),
                               (dut.product[lane], scores[lane] * counts[lane])])
            await ctx.tick()
            taken = [lane for lane in range(lanes) if valid >> lane & 1]
            if clear:
                total, low, high = 0, config.max_score, 0
            elif load:
                total += sum(scores[lane] * counts[lane] for lane in taken)
                low = min([low] + [scores[lane] for lane in taken])
                high = max([high] + [scores[lane] for lane in taken])
            # W shows a beat dut.latency cycles after it, min and max dut.extremes_latency
            # cycles after it, the threshold (model.reference.resv.wicsum_threshold, round
            # half up) of W threshold_latency cycles after W when W stayed unchanged in them (a
            # registered adder tree whose adders are cut in halves, a skewed pipeline).
            # Modulo weight_bits: the 16-lane runs add past a problem's totals between clears.
            totals.append(total % (1 << config.weight_bits))
            extremes.append((low, high))
            if cycle >= dut.latency - 1:
                assert ctx.get(dut.weighted_sum) == totals[cycle - (dut.latency - 1)]
            if cycle >= dut.extremes_latency - 1:
                assert (ctx.get(dut.min_score), ctx.get(dut.max_score)) == \
                    extremes[cycle - (dut.extremes_latency - 1)]
            delay = dut.latency - 1 + dut.threshold_latency
            if cycle >= delay and len(set(totals[cycle - delay:cycle - dut.latency + 2])) == 1:
                earlier = totals[cycle - delay]
                assert ctx.get(dut.threshold) == (earlier * code + (1 << (bits - 1))) >> bits
                thresholds_checked += 1
        assert thresholds_checked > CASES // 4, thresholds_checked

    simulate(dut, testbench, CASES + 2)


def _decision_reference(config, state, mass, members, threshold):
    """The expected ``(crossing, refine)`` of one decision; applies the step to ``state``
    (``[mass_above, cutoff, pass_index, visited, touched]``)."""
    weight_mask = (1 << config.weight_bits) - 1
    above, cutoff, pass_index, visited, touched = state
    shift, bits = config.wtu_bucket_shifts[pass_index], config.wtu_pass_bits[pass_index]
    remaining = (threshold - above) & weight_mask
    suffix = [sum(mass[k:]) for k in range(len(mass))] + [0]
    crossing = max((k for k in range(len(mass)) if members[k] and suffix[k] >= remaining),
                   default=None)
    crossing_members = members[crossing] if crossing is not None else 0
    mass_over = suffix[crossing + 1] if crossing is not None else 0
    crossing = crossing or 0
    refine = (threshold != 0 and pass_index < config.wtu_refine_depth and shift > 0
              and crossing_members >= 2)
    visited_mask = (1 << WTULayouts(config).stats["buckets_visited"].shape.width) - 1
    new_cutoff = cutoff | (crossing << shift)
    state[:] = [(above + mass_over) & weight_mask, new_cutoff & ((2 << config.score_bits) - 1),
                pass_index, (visited + (1 << bits) - crossing) & visited_mask, touched]
    if threshold == 0:
        state[1], state[3] = 1 << config.score_bits, 0
    elif refine:
        state[2], state[4] = pass_index + 1, touched + crossing_members
    elif new_cutoff == 0:
        state[1] = 1
    return crossing, refine


@pytest.mark.parametrize("form", ["silicon", "fpga"])
def test_decision(form):
    # The FPGA form finds the highest bucket reached at the edge of the comparisons
    # (Decision._highest_at_the_edge), the silicon form through a priority of LUTs.
    config = TINY
    dut = (Decision if form == "silicon" else built_for(Decision, ULX3S_85F_Platform()))(config)
    buckets = config.wtu_buckets
    stable_from = threshold_latency(config)
    rng = random.Random(4)

    async def testbench(ctx):
        state = None
        refinements = 0
        for _ in range(CASES):
            if state is None or rng.random() < 0.2:        # a new row
                _set_all(ctx, [(dut.clear, 1), (dut.step, 0)])
                await ctx.tick()
                state = [0, 0, 0, 0, 0]
                threshold = 0 if rng.random() < 0.1 else rng.randrange(1 << 14)
            # Masses whose sum fits weight_bits; few members, so 0, 1 and >= 2 all occur. As
            # in the unit (BucketMasses), a bucket without members has no mass; one with
            # members may have none (scores of 0).
            members = [rng.choice([0, 1, 2, 5]) for _ in range(buckets)]
            mass = [rng.randrange(1 << 13) if members[k] and rng.random() < 0.9 else 0
                    for k in range(buckets)]
            exact = rng.randrange(buckets)         # often, a suffix that reaches T exactly
            need = threshold - state[0] - sum(mass[exact + 1:])
            if rng.random() < 0.3 and 0 <= need < 1 << 13:
                mass[exact], members[exact] = need, max(1, members[exact])
            # The inputs stay for decide_cycles cycles, the decision is taken in the last. As in
            # the unit, the threshold is the row's only from cycle threshold_latency on (it
            # follows W); before, another value: not 0 when the row's is 0, else 0 or not.
            stale = rng.randrange(1, 1 << 14) if threshold == 0 or rng.random() < 0.5 else 0
            _set_all(ctx, [(dut.clear, 0), (dut.step, 0),
                           (dut.threshold, stale if stable_from else threshold)])
            for k in range(buckets):
                _set_all(ctx, [(dut.mass[k], mass[k]), (dut.members[k], members[k])])
            crossing, refine = _decision_reference(config, state, mass, members, threshold)
            for cycle in range(1, dut.decide_cycles):
                await ctx.tick()
                if cycle == stable_from:
                    ctx.set(dut.threshold, threshold)
                if cycle >= dut.decide_cycles - 2:     # the last two cycles: the one-hot
                    assert ctx.get(dut.crossing_select) == 1 << crossing, cycle
            ctx.set(dut.step, 1)
            assert (ctx.get(dut.crossing), ctx.get(dut.refine)) == (crossing, refine), \
                (mass, members, threshold)
            refinements += refine
            await ctx.tick()
            assert [ctx.get(dut.cutoff), ctx.get(dut.pass_index), ctx.get(dut.visited),
                    ctx.get(dut.touched)] == state[1:], (mass, members, threshold)
            if state[2] == config.wtu_refine_depth or not refine:
                state = None                               # the row is decided
        assert refinements > 0, "no refinement was exercised"

    simulate(dut, testbench, CASES * (dut.decide_cycles + 2))   # a clear and a decision each


def test_aggregate_emitter():
    config = TINY
    dut = AggregateEmitter(config)
    lanes, chunks = config.wtu_lanes, WTULayouts(config).chunks
    id_mask = (1 << config.cluster_id_bits) - 1
    rng = random.Random(5)

    async def testbench(ctx):
        last, any_, pending = 0, False, 0                 # reference (reset values)
        held_scores = [0] * lanes       # the max scores taken by the last fetch
        selected_chunks = 0             # bit c: chunk c (from the head) holds a selection
        # A beat's (highest selected cluster, chunk), folded in a cycle later; its highest
        # cluster reaches ``last`` a cycle after that.
        emitted, candidate = None, None
        advances = 0                    # advances of the head so far
        stream_chunk = 0                # the aggregate stream's chunk (0 after a clear)
        chunk_mask = (1 << WTULayouts(config).chunk_bits) - 1
        for _ in range(CASES):
            chunk, row_select = rng.randrange(chunks), rng.getrandbits(lanes)
            aggregate = rng.getrandbits(lanes)
            scores = [rng.randrange(config.max_score + 1) for _ in range(lanes)]
            ops = ["clear", "emit", "emit", "fetch", "send", "send", "send", "none"]
            if emitted is None:         # the contract: no advance while a beat is folded in
                ops += ["advance"] * 2
            op = rng.choice(ops)
            _set_all(ctx, [(dut.emit_chunk, chunk), (dut.row_select, row_select),
                           (dut.aggregate, aggregate)] +
                     [(getattr(dut, name), op == name) for name in ("clear", "emit", "fetch",
                                                                     "send", "advance")])
            for lane in range(lanes):
                ctx.set(dut.max_score[lane], scores[lane])
            first = (pending & -pending).bit_length() - 1 if pending else 0
            cluster = (stream_chunk * lanes + first) & id_mask
            assert ctx.get(dut.chunk) == stream_chunk
            assert ctx.get(dut.cluster) == cluster
            assert ctx.get(dut.score) == held_scores[first]
            final = pending != 0 and cluster == last   # nothing pending: not final
            assert ctx.get(dut.final) == final
            assert ctx.get(dut.last) == (final or not any_)
            assert ctx.get(dut.empty) == (not any_)
            assert ctx.get(dut.any_selected) == (any_ or emitted is not None)
            assert ctx.get(dut.chunk_empty) == (not selected_chunks & 1)
            assert ctx.get(dut.chunk_done) == (pending & ~(1 << first) == 0)
            await ctx.tick()
            if op == "advance":
                selected_chunks >>= 1
                advances += 1
                stream_chunk = (stream_chunk + 1) & chunk_mask
            if candidate is not None:
                last = max(last, candidate)
            candidate = None
            if emitted is not None:
                any_, candidate = True, emitted[0]
                selected_chunks |= 1 << emitted[1]
            emitted = None
            if op == "clear":
                last, any_, selected_chunks, candidate = 0, False, 0, None
                stream_chunk = 0
            elif op == "emit" and row_select:
                emitted = (chunk * lanes + row_select.bit_length() - 1, chunk)
            elif op == "fetch":
                pending, held_scores = aggregate, scores
            elif op == "send":
                pending &= ~(1 << first)
        assert advances > 0

    simulate(dut, testbench, CASES + 2)


def test_aggregate_emitter_counts_the_highest_cluster_from_the_third_cycle_after_its_beat():
    """Directed: cluster 6 (chunk 1, lane 2) pending, then a beat selecting it: ``final`` is
    0 in the two cycles after the beat and 1 in the third (the docstring's latency)."""
    config = TINY
    dut = AggregateEmitter(config)

    async def testbench(ctx):
        _set_all(ctx, [(dut.clear, 1)])
        await ctx.tick()
        _set_all(ctx, [(dut.clear, 0), (dut.advance, 1)])     # the stream at chunk 1
        await ctx.tick()
        _set_all(ctx, [(dut.advance, 0), (dut.aggregate, 0b0100), (dut.fetch, 1)])
        await ctx.tick()
        _set_all(ctx, [(dut.fetch, 0), (dut.row_select, 0b0100), (dut.emit_chunk, 1),
                       (dut.emit, 1)])
        assert ctx.get(dut.cluster) == 6 and not ctx.get(dut.final)
        await ctx.tick()                                  # the beat
        _set_all(ctx, [(dut.emit, 0), (dut.row_select, 0)])
        for cycle in (1, 2, 3):
            assert ctx.get(dut.final) == (cycle == 3), cycle
            assert ctx.get(dut.any_selected)
            await ctx.tick()

    simulate(dut, testbench, 8)


class _SequencerReference:
    """The sequencer's rule (:class:`hw.wtu.Sequencer` docstring), one cycle at a time: the lanes
    act ``B`` cycles after a strobe and answer ``G`` cycles after that (both 2 here, from
    :mod:`hw.wtu.pipeline`), the row-mask beats and the aggregate stream's reads are issued
    against credits of queues of ``B + G + 2`` entries (``B + G + 3`` for the reads, whose
    credits come back a cycle after the chunk's ``fetch``)."""

    def __init__(self, config):
        self.config = config
        self.layouts = WTULayouts(config)
        self.state, self.chunk, self.row, self.cycles = "IDLE", 0, 0, 0
        self.clusters_m1 = self.rows_m1 = 0
        self.decide_count = 0           # cycles spent in DECIDE
        self.decide_cycles = decide_cycles(config)
        self.settle = broadcast_stages(config) + gather_stages(config)
        self.walk_age = 0               # cycles spent in WALK
        self.wait_cycles = self.settle + 2
        self.wait_count = 0             # cycles spent in AGG_WAIT
        self.depth = self.settle + 2
        self.emit_credits = self.depth
        self.read_credits = self.depth + 1
        self.fetched = False            # the previous cycle's fetch (its credit comes back)
        self.reading = False

    def queued_reads(self):
        """Aggregate reads issued and not yet fetched (the words in the aggregate queue, or
        on their way to it)."""
        return self.depth + 1 - self.read_credits - self.fetched

    def outputs(self, i):
        """The expected outputs of this cycle for inputs ``i`` (a dict)."""
        state, lane_bits = self.state, self.config.wtu_lanes.bit_length() - 1
        last = self.chunk == self.clusters_m1 >> lane_bits
        o = dict.fromkeys(("problem_ready", "counts_ready", "scores_ready", "stats_valid",
                           "emitting", "selected_valid", "start_problem", "write_counts",
                           "start_row", "load", "decide", "start_walk", "walking", "emit",
                           "read", "fetch", "send", "advance"), 0)
        o.update(chunk=self.chunk, row=self.row, cycles=self.cycles, last_chunk=last,
                 clusters_minus_one=self.clusters_m1,
                 read=self.reading and self.read_credits > 0)
        if state == "IDLE":
            o.update(problem_ready=1, start_problem=i["problem_valid"])
        elif state == "COUNTS":
            o.update(counts_ready=1, write_counts=i["counts_valid"],
                     start_row=i["counts_valid"] and last)
        elif state == "LOAD":
            o.update(scores_ready=1, load=i["scores_valid"])
        elif state == "DECIDE":
            if self.decide_count == self.decide_cycles - 1:
                o.update(decide=1, start_walk=i["refine"])
        elif state == "WALK":
            o.update(walking=1)
        elif state == "STATS":
            o.update(stats_valid=self.emit_credits == self.depth)
        elif state == "EMIT":
            credit = self.emit_credits > 0
            o.update(emitting=1, emit=credit,
                     start_row=credit and last and self.row != self.rows_m1)
        elif state == "AGG_FETCH":
            o.update(fetch=i["aggregate_ready"],
                     advance=i["aggregate_ready"] and i["chunk_empty"])
        elif state == "AGG_SEND":
            o.update(selected_valid=1, send=i["selected_ready"],
                     advance=i["selected_ready"] and i["chunk_done"])
        elif state == "AGG_EMPTY":
            o.update(selected_valid=1)
        return o

    def step(self, i, o):
        """Advance one cycle with inputs ``i`` and this cycle's outputs ``o``."""
        chunk_mask = (1 << self.layouts.chunk_bits) - 1
        cycles_mask = (1 << self.layouts.cycles_bits) - 1
        state, next_chunk = self.state, (self.chunk + 1) & chunk_mask
        drained = self.emit_credits == self.depth    # the register, before this cycle's move
        self.emit_credits += i["row_mask_taken"] - o["emit"]
        self.read_credits += self.fetched - o["read"]
        self.fetched = bool(o["fetch"])
        if o["read"]:
            if self.chunk == i["final_chunk"]:
                self.reading = False
            else:
                self.chunk = next_chunk
        if o["start_row"]:
            self.cycles, self.chunk = 0, 0
        if state == "IDLE" and i["problem_valid"]:
            self.clusters_m1, self.rows_m1 = i["clusters_minus_one"], i["rows_minus_one"]
            self.chunk, self.row, self.state = 0, 0, "COUNTS"
        elif state == "COUNTS" and i["counts_valid"]:
            if o["last_chunk"]:
                self.state = "LOAD"
            else:
                self.chunk = next_chunk
        elif state == "LOAD" and i["scores_valid"]:
            self.cycles, self.chunk = self.cycles + 1, next_chunk
            self.state = "DECIDE" if o["last_chunk"] else "LOAD"
        elif state == "DECIDE":
            # The counter is cycles_bits wide; random refine/walk_done inputs can run rows longer
            # than the unit's (WiCSumThresholdUnit.max_row_cycles), so it wraps here.
            self.cycles = (self.cycles + 1) & cycles_mask
            self.decide_count += 1
            if self.decide_count == self.decide_cycles:
                self.decide_count, self.walk_age = 0, 0
                self.state = "WALK" if i["refine"] else "STATS"
        elif state == "WALK":
            # walk_done counts from the walk's cycle settle + 1 on (it answers the first step).
            self.cycles = (self.cycles + 1) & cycles_mask
            if self.walk_age >= self.settle and i["walk_done"]:
                self.state = "DECIDE"
            self.walk_age += 1
        elif state == "STATS" and i["stats_ready"] and o["stats_valid"]:
            self.chunk, self.state = 0, "EMIT"
        elif state == "EMIT" and o["emit"]:
            if not o["last_chunk"]:
                self.chunk = next_chunk
            elif self.row == self.rows_m1:
                self.chunk, self.state, self.wait_count = 0, "AGG_WAIT", 0
            else:
                self.row, self.state = self.row + 1, "LOAD"
        elif state == "AGG_WAIT":
            self.wait_count = min(self.wait_count + 1, self.wait_cycles)
            if self.wait_count == self.wait_cycles and drained:
                self.reading = bool(i["any_selected"])
                self.state = "AGG_FETCH" if i["any_selected"] else "AGG_EMPTY"
        elif state == "AGG_FETCH":
            if i["aggregate_ready"] and not i["chunk_empty"]:
                self.state = "AGG_SEND"
        elif state == "AGG_SEND" and i["selected_ready"]:
            if i["final"]:
                self.state = "IDLE"
            elif i["chunk_done"]:
                self.state = "AGG_FETCH"
        elif state == "AGG_EMPTY" and i["selected_ready"]:
            self.state = "IDLE"


def test_sequencer():
    config = TINY.replace(max_clusters=16, max_rows=4)
    dut = Sequencer(config)
    rng = random.Random(6)
    cycles = 3000

    async def testbench(ctx):
        reference = _SequencerReference(config)
        visited, problems, reads = set(), 0, 0
        for _ in range(cycles):
            i = {name: rng.random() < 0.7 for name in (
                "problem_valid", "counts_valid", "scores_valid", "stats_ready",
                "selected_ready", "any_selected", "chunk_done")}
            # The queues' contract: a row-mask beat leaves, and the aggregate queue's head is
            # there, only for a beat or a read issued before (credits taken and not given
            # back); the emitter's contract: the last chunk read (the final one) is not empty,
            # and its last selected cluster (there only) is the final one.
            queued = reference.queued_reads()
            i["final"] = i["chunk_done"] and not reference.reading and queued == 0
            i.update(refine=rng.random() < 0.4, walk_done=rng.random() < 0.5,
                     chunk_empty=rng.random() < 0.3 and (reference.reading or queued > 1),
                     row_mask_taken=reference.emit_credits < reference.depth
                     and rng.random() < 0.5,
                     aggregate_ready=queued > 0 and rng.random() < 0.6,
                     final_chunk=rng.randrange(WTULayouts(config).chunks),
                     clusters_minus_one=rng.randrange(config.max_clusters),
                     rows_minus_one=rng.randrange(config.max_rows))
            for name, value in i.items():
                port = f"problem_{name}" if name.endswith("minus_one") else name
                ctx.set(getattr(dut, port), value)
            expected = reference.outputs(i)
            for name, value in expected.items():
                assert ctx.get(getattr(dut, name)) == value, (reference.state, name)
            visited.add(reference.state)
            problems += expected["start_problem"]
            reads += expected["read"]
            next_chunk = ctx.get(dut.next_chunk)
            reference.step(i, expected)
            # The memories' read-ahead address: the next cycle's chunk.
            assert next_chunk == reference.chunk
            await ctx.tick()
        assert len(visited) == 11 and problems > 5 and reads > 10, \
            (visited, problems, reads, reference.state)

    simulate(dut, testbench, cycles + 2)


@pytest.mark.parametrize("part", [LaneMemories, BucketLists, BucketMasses, RowStatistics,
                                  Decision, AggregateEmitter, Sequencer])
def test_parts_reject_a_config_that_is_not_a_dreconfig(part):
    with pytest.raises(TypeError, match=r"config must be a DREConfig, not None"):
        part(None)


def test_lane_rejects_a_config_that_is_not_a_dreconfig():
    with pytest.raises(TypeError, match=r"config must be a DREConfig, not None"):
        Lane(None, 0)


@pytest.mark.parametrize("index", [-1, 4, 1.0, None, True])
def test_lane_rejects_an_index_outside_the_lanes(index):
    """The tiny preset has 4 lanes: a lane's number is an int from 0 to 3."""
    with pytest.raises(ValueError, match=r"index must be an int from 0 to 3 \(wtu_lanes - 1\)"):
        Lane(TINY, index)


class _LaneLinks(wiring.Component):
    """Three lanes' copies of a 3-bit value through :func:`broadcast`, and their 2-bit answers
    through :func:`gather` (stages as the unit's: :mod:`hw.wtu.pipeline`)."""

    value: In(3)
    answers: In(6)
    copies: Out(9)
    gathered: Out(6)

    def elaborate(self, platform):
        m = Module()
        copies = broadcast(m, self.value, 3, broadcast_stages(TINY), "value")
        m.d.comb += [self.copies.eq(Cat(copies)),
                     self.gathered.eq(gather(m, [self.answers[2 * l:2 * l + 2]
                                                 for l in range(3)],
                                             gather_stages(TINY), "answer"))]
        return m


def test_lane_links_delay_every_value_by_their_stages():
    """Each lane's copy is the value of ``broadcast_stages`` cycles before, and the gathered
    answers those of ``gather_stages`` cycles before (random values, a Python reference)."""
    dut = _LaneLinks()
    rng = random.Random(11)
    behind, back = broadcast_stages(TINY), gather_stages(TINY)

    async def testbench(ctx):
        values, answers = [0] * behind, [0] * back
        for _ in range(CASES):
            values.append(rng.getrandbits(3))
            answers.append(rng.getrandbits(6))
            _set_all(ctx, [(dut.value, values[-1]), (dut.answers, answers[-1])])
            assert ctx.get(dut.copies) == values[-1 - behind] * 0b001001001
            assert ctx.get(dut.gathered) == answers[-1 - back]
            await ctx.tick()

    simulate(dut, testbench, CASES + 2)


def test_lane_copies_are_not_merged_by_synthesis(tmp_path):
    """The claim of :mod:`hw.wtu.lane_links`: after Yosys' generic synthesis (``opt_merge``
    included) each lane keeps its own flip-flops: 3 bits x (1 shared + 3 lanes') of the
    broadcast and 6 x 2 of the answers, 24 in all."""
    cells = synthesized_cells(tmp_path, _LaneLinks(), "links", "synth -flatten -top links")
    flops = sum(count for kind, count in cells.items() if "DFF" in kind)
    assert flops == 3 * (1 + 3) + 6 * 2, cells
