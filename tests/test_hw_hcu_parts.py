# amaranth: UnusedElaboratable=no
"""Amaranth-simulator tests of the HCU's sub-components (``hw/hcu/``), one by one.

Each part is driven with seeded random inputs, cycle by cycle, and compared with a small Python
reference of its rule written here (not with the twin, which models the whole unit). Every
simulation has a cycle limit (:func:`sim.kit.amaranth_sim.simulate`).
"""

import random

import pytest

from hw.hcu import (ArgminTree, Dispatcher, FreeLanePicker, LaneIssue, SimilarityLane,
                    TokenRing)
from sim.kit.amaranth_sim import PERIOD, simulate
from tests.hcu_configs import small_config

CASES = 300


@pytest.mark.parametrize("lanes, width", [(1, 1), (5, 2), (16, 4), (16, 2)])
def test_free_lane_picker(lanes, width):
    config = small_config(hcu_lanes=lanes, hcu_dispatch_width=width)
    dut = FreeLanePicker(config)
    rng = random.Random(lanes * 10 + width)

    async def testbench(ctx):
        # Reference: after reset every lane is free; then the grants of a cycle are the
        # lowest lanes among those with ``available_next`` set in the previous cycle less the
        # grants taken there and in the cycle before.
        free = list(range(lanes))
        took = []                        # the lanes taken in the previous cycle
        for _ in range(CASES):
            for job in range(width):
                # Job j has the j-th lowest free lane.
                assert ctx.get(dut.found[job]) == (job < len(free)), (free, job)
                expected = free[job] if job < len(free) else 0
                assert ctx.get(dut.lane[job]) == expected, (free, job)
                assert ctx.get(dut.grant[job]) == (1 << expected if job < len(free) else 0)
            available = rng.getrandbits(lanes) if rng.random() < 0.8 else (1 << lanes) - 1
            taken = rng.randint(0, min(width, len(free)))
            ctx.set(dut.available_next, available)
            ctx.set(dut.taken, (1 << taken) - 1)
            await ctx.tick()
            # Its ``available_next`` does not know of the lanes taken in the previous cycle.
            free, took = ([lane for lane in range(lanes) if available >> lane & 1
                           and lane not in free[:taken] and lane not in took], free[:taken])

    simulate(dut, testbench, CASES + 2)


@pytest.mark.parametrize("lanes", [1, 2, 5, 16])
def test_argmin_tree(lanes):
    config = small_config(hcu_lanes=lanes, hcu_dispatch_width=1)
    dut = ArgminTree(config)
    rng = random.Random(lanes)

    assert dut.latency == 3

    async def testbench(ctx):
        history = [None, None, None]     # the candidates of three, two and one cycles ago
        for _ in range(CASES):
            # Few values, so equal distances and equal pairs are common; distances below the
            # threshold (4) and at it (a lane's "no match", the largest a lane holds).
            pairs = [(rng.choice((1, 3, 4)), rng.randrange(4)) for _ in range(lanes)]
            for index, (distance, cluster) in enumerate(pairs):
                ctx.set(dut.distance[index], distance)
                ctx.set(dut.cluster[index], cluster)
            if history[0] is not None:
                # Reference: the smallest (distance, cluster) pair of three cycles ago.
                assert (ctx.get(dut.best_distance), ctx.get(dut.best_cluster)) == \
                    min(history[0]), history[0]
                assert ctx.get(dut.best_found) == (min(history[0])[0] < 4), history[0]
            history = [*history[1:], pairs]
            await ctx.tick()

    simulate(dut, testbench, CASES + 2)


@pytest.mark.parametrize("slots", [1, 3, 4])
def test_token_ring(slots):
    config = small_config(hcu_tokens_in_flight=slots)
    dut = TokenRing(config)
    rng = random.Random(slots)

    async def testbench(ctx):
        head, tokens = 0, []            # reference: tokens[a] = [hash, last, seen] of age a
        opened = 0                      # the unit's counter: a decision (pop) may open one
        for _ in range(CASES):
            held = len(tokens)
            pop = held > 0 and rng.random() < 0.4
            push = (held < slots or pop) and rng.random() < 0.6
            opens = pop and rng.random() < 0.7
            # As in the unit: a catch-up bumps a token that has not seen every cluster.
            behind = [age for age, token in enumerate(tokens) if token[2] < opened]
            bump = bool(behind) and rng.random() < 0.5
            bump_age = rng.choice(behind) if bump else 0
            token = [rng.getrandbits(config.hash_bits), rng.getrandbits(1), opened]
            for port, value in ((dut.push, push), (dut.pop, pop), (dut.bump, bump),
                                (dut.bump_slot, (head + bump_age) % slots),
                                (dut.push_hash, token[0]), (dut.push_last, token[1]),
                                (dut.push_seen, token[2]), (dut.opens, opens)):
                ctx.set(port, value)
            assert ctx.get(dut.head) == head and ctx.get(dut.held) == held
            assert ctx.get(dut.tail) == (head + held) % slots
            for age, (hash_, last, seen) in enumerate(tokens):
                slot = (head + age) % slots
                assert ctx.get(dut.hash[slot]) == hash_, (age, slot)
                assert ctx.get(dut.last[slot]) == last, (age, slot)
                assert ctx.get(dut.seen[slot]) == seen, (age, slot)
                assert ctx.get(dut.behind[slot]) == (seen < opened), (age, slot)
                assert ctx.get(dut.lag[slot]) == opened - seen, (age, slot)
            await ctx.tick()
            opened += opens
            if bump:
                tokens[bump_age][2] += 1
            if pop:
                tokens.pop(0)
                head = (head + 1) % slots
            if push:
                tokens.append(token)

    simulate(dut, testbench, CASES + 2)


def _popcount(value):
    return bin(value).count("1")


@pytest.mark.parametrize("bits, threshold, slots", [(4, 4, 4), (1, 3, 2), (16, 16, 1)])
def test_similarity_lane(bits, threshold, slots):
    config = small_config(hcu_bits_per_cycle=bits, hamming_threshold=threshold,
                          hcu_tokens_in_flight=slots)
    dut = SimilarityLane(config)
    rng = random.Random(bits)
    beats, mask = config.hcu_beats_per_hash, (1 << bits) - 1

    ahead = (1 << min(5 * bits, config.hash_bits)) - 1
    assert dut.min_job_cycles == 5
    assert dut.load_latency == 1

    async def testbench(ctx):
        job = None                      # reference: [difference, beat, partial, cluster, tag]
        best = [(0, 0)] * slots          # the reset value; the unit clears a slot before use
        finished = loads = 0
        reserves = [False, False]        # reserved two cycles ago, one cycle ago
        available_next = True            # the reset value
        free = True                      # the lane can be reserved (every lane after reset)
        for cycle in range(CASES):
            assert ctx.get(dut.available_next) == available_next
            # As in the unit, reserved only when free: ``available_next`` set in the previous
            # cycle and no reservation then.
            reserve = free and rng.random() < 0.7
            load = reserves[0]                          # a job loads two cycles after reserve
            # Differences of few set bits often match; random ones exit early.
            difference = (rng.getrandbits(config.hash_bits) if rng.random() < 0.5 else
                          (1 << rng.randrange(config.hash_bits)) * rng.randrange(2))
            new_job = [difference, 0, 0, rng.randrange(8), rng.randrange(slots)]
            clear = rng.getrandbits(slots) if rng.random() < 0.1 else 0
            # As in the unit, never the slot of a compare in progress or being loaded.
            for busy in ([job] if job is not None else []) + ([new_job] if load else []):
                clear &= ~(1 << busy[4])
            clear |= (1 << slots) - 1 if cycle == 0 else 0
            for port, value in ((dut.reserved, reserves[1]), (dut.load, load),
                                (dut.load_difference, difference),
                                (dut.load_cluster, new_job[3]), (dut.load_tag, new_job[4]),
                                (dut.clear, clear)):
                ctx.set(port, value)
            # Free in two cycles unless reserved now or in the next cycle: nothing reserved in
            # the two previous cycles (still to load, or loading now; the lane learns of a
            # reservation a cycle late), and the compare of this cycle, if any, ends in this
            # beat or one of the next four.
            ends_soon = job is None or job[1] + 4 >= beats - 1 or \
                job[2] + _popcount(job[0] & ahead) >= threshold
            loads += load
            free = available_next and not reserve and not reserves[1]
            available_next = not any(reserves) and ends_soon
            reserves = [reserves[1], reserve]
            assert ctx.get(dut.working) == (job is not None)
            if job is not None:
                assert ctx.get(dut.tag) == job[4]
            for slot in range(slots):
                assert (ctx.get(dut.best_distance[slot]), ctx.get(dut.best_cluster[slot])) == \
                    best[slot], slot
            await ctx.tick()
            current, job = job, None
            if current is not None:
                difference, beat, partial, cluster, tag = current
                distance = partial + _popcount(difference & mask)
                if distance < threshold and beat < beats - 1:
                    job = [difference >> bits, beat + 1, distance, cluster, tag]
                elif distance < threshold:                          # a match, at the last beat
                    best[tag] = min(best[tag], (distance, cluster))
                    finished += 1
            assert not (load and job is not None), "a job loads while a compare goes on"
            if load:                                            # its first beat is next cycle
                job = new_job
            best = [(threshold, 0) if clear >> slot & 1 else best[slot] for slot in range(slots)]
        assert finished > 0, "no compare ran to a match"
        assert loads > 0, "no job was reserved and loaded"

    simulate(dut, testbench, CASES + 2)


def _dispatch_reference(config, state, inputs):
    """One cycle of the dispatcher's rule (:class:`hw.hcu.Dispatcher` docstring).

    ``state`` is ``[walk_age, walk_begun, walk_top]``, updated in place; returns the expected
    outputs ``(jobs, slot, bump)``, ``jobs`` a list of ``(valid, cluster)``.
    """
    slots, width = config.hcu_tokens_in_flight, config.hcu_dispatch_width
    entries = config.hash_mem_entries
    head, held, seen, opened, found, pop = inputs
    walk_age, walk_begun, walk_top = state
    catch = None
    for age in range(held):                                 # oldest eligible token first
        slot = (head + age) % slots
        if (age < walk_age or (age == walk_age and walk_begun)) and seen[slot] < opened:
            catch = slot
            break
    walk_slot = (head + walk_age) % slots
    walk_token = walk_age < held
    top = walk_top if walk_begun else seen[walk_slot]
    if catch is not None:
        jobs = [(found > 0, seen[catch])] + [(False, 0)] * (width - 1)
    else:
        jobs = [(job < found and walk_token and top >= job + 1
                 and top + entries >= opened + walk_age + job + 1, top - 1 - job)
                for job in range(width)]
    walked = 0 if catch is not None else sum(valid for valid, _ in jobs)
    after = top - walked
    advance = walk_token and (after == 0 or (walk_age == 0 and after + entries <= opened))
    if advance:
        state[1] = False
    elif walked:
        state[1:] = [True, after]
    state[0] = walk_age + advance - pop
    return jobs, catch if catch is not None else walk_slot, catch is not None and found > 0


@pytest.mark.parametrize("slots, width, entries", [(4, 2, 16), (3, 4, 16), (1, 1, 16),
                                                   (2, 8, 16)])
def test_dispatcher(slots, width, entries):
    config = small_config(hcu_tokens_in_flight=slots, hcu_dispatch_width=width,
                          hcu_lanes=max(width, 2), hash_mem_entries=entries)
    dut = Dispatcher(config)
    rng = random.Random(slots * 10 + width)
    bank_bits = width.bit_length() - 1

    async def testbench(ctx):
        # The ring around the dispatcher, kept consistent as the unit keeps it: tokens enter
        # with ``seen`` = opened, catch-ups bump ``seen``, decisions (pops) of walked tokens
        # open clusters; an empty ring sometimes jumps to another count (a restore).
        state = [0, False, 0]
        jobs_seen = catch_ups = 0
        head = held = 0
        seen = [0] * slots
        opened = rng.randrange(config.max_clusters // 2)
        for _ in range(CASES):
            walk_age = state[0]
            if held == 0 and rng.random() < 0.05:
                opened = rng.randrange(config.max_clusters - slots)
            pop = walk_age > 0 and rng.random() < 0.3
            push = (held < slots or pop) and rng.random() < 0.6
            opens = pop and rng.random() < 0.7 and opened < config.max_clusters
            inputs = (head, held, list(seen), opened, rng.randint(0, width), pop)
            found = inputs[4]
            for port, value in ((dut.head, head), (dut.held, held), (dut.opened, opened),
                                (dut.found, (1 << found) - 1), (dut.pop, pop),
                                (dut.push, push), (dut.opens, opens)):
                ctx.set(port, value)
            ctx.set(dut.tail, (head + held) % slots)
            for slot in range(slots):
                ctx.set(dut.seen[slot], seen[slot])
                ctx.set(dut.lag[slot], min(opened - seen[slot], slots))
            assert ctx.get(dut.walk_age) == walk_age
            jobs, slot, bump = _dispatch_reference(config, state, inputs)
            assert ctx.get(dut.bump) == bump
            if bump:
                assert ctx.get(dut.bump_slot) == slot
            # The ring's ``behind`` of the next cycle, after this cycle's bump, push and opens.
            seen_next = list(seen)
            if bump:
                seen_next[slot] += 1
            if push:
                seen_next[(head + held) % slots] = opened
            for index in range(slots):
                ctx.set(dut.behind_next[index], seen_next[index] < opened + opens)
            for job, (valid, cluster) in enumerate(jobs):
                assert ctx.get(dut.job_valid[job]) == valid, (inputs, job)
                if valid:
                    assert ctx.get(dut.job_cluster[job]) == cluster, (inputs, job)
                    # The job's bank reads the cluster's row.
                    bank = cluster % width
                    assert ctx.get(dut.read_row[bank]) == (cluster % entries) >> bank_bits
                    assert ctx.get(dut.job_slot) == slot
                    jobs_seen += 1
            catch_ups += bump
            seen = seen_next
            held += push - pop
            head = (head + pop) % slots
            opened += opens
            await ctx.tick()
        assert jobs_seen > 0 and catch_ups > 0, "no walk or no catch-up job was exercised"

    simulate(dut, testbench, CASES + 2)


@pytest.mark.parametrize("lanes, width, slots", [(5, 2, 3), (4, 4, 4), (1, 1, 1)])
def test_lane_issue(lanes, width, slots):
    config = small_config(hcu_lanes=lanes, hcu_dispatch_width=width,
                          hcu_tokens_in_flight=slots)
    dut = LaneIssue(config)
    rng = random.Random(lanes)
    assert dut.latency == 2

    async def testbench(ctx):
        # Reference: the jobs (lane, cluster) and slot of the two previous cycles, and the
        # bank data of the previous cycle (the macros' output for the jobs of two cycles ago).
        history = [([], 0), ([], 0)]
        reserved_before = []             # the lanes chosen in the previous cycle
        previous_data = [0] * width
        loads = 0
        for _ in range(CASES):
            chosen = rng.sample(range(lanes), rng.randint(0, width))
            jobs = [(lane, rng.randrange(config.max_clusters)) for lane in chosen]
            job_slot = rng.randrange(slots)
            bank_data = [rng.getrandbits(config.hash_bits) for _ in range(width)]
            tokens = [rng.getrandbits(config.hash_bits) for _ in range(slots)]
            ctx.set(dut.job_valid, (1 << len(jobs)) - 1)
            ctx.set(dut.job_slot, job_slot)
            for job in range(width):
                lane, cluster = jobs[job] if job < len(jobs) else (0, 0)
                ctx.set(dut.job_lane[job], lane)
                ctx.set(dut.job_cluster[job], cluster)
                ctx.set(dut.bank_data[job], bank_data[job])
            for slot in range(slots):
                ctx.set(dut.token[slot], tokens[slot])
            # The lanes of last cycle's jobs learn of their reservation.
            for lane in range(lanes):
                assert ctx.get(dut.reserved[lane]) == (lane in reserved_before), lane
            # Last cycle's jobs are in the read stage.
            assert ctx.get(dut.read_valid) == bool(history[1][0])
            if history[1][0]:
                assert ctx.get(dut.read_slot) == history[1][1]
            # The jobs of two cycles ago load their lanes with the bank data of the last cycle.
            loaded = {lane: cluster for lane, cluster in history[0][0]}
            assert ctx.get(dut.load_valid) == bool(history[0][0])
            assert ctx.get(dut.load_tag) == history[0][1]
            for lane in range(lanes):
                assert ctx.get(dut.load[lane]) == (lane in loaded), lane
                if lane in loaded:
                    cluster = loaded[lane]
                    assert ctx.get(dut.load_cluster[lane]) == cluster
                    assert ctx.get(dut.load_difference[lane]) == \
                        previous_data[cluster % width] ^ tokens[history[0][1]]
                    loads += 1
            history = [history[1], (jobs, job_slot)]
            reserved_before = chosen
            previous_data = bank_data
            await ctx.tick()
        assert loads > 0, "no job reached a lane"

    simulate(dut, testbench, CASES + 2)


@pytest.mark.parametrize("part", [TokenRing, Dispatcher, FreeLanePicker, LaneIssue,
                                  SimilarityLane, ArgminTree])
def test_parts_reject_a_config_that_is_not_a_dreconfig(part):
    with pytest.raises(TypeError, match=r"config must be a DREConfig, not \{'hcu_lanes': 2\}"):
        part({"hcu_lanes": 2})


def test_part_latencies_are_the_twins_cycle_model():
    # The twin's "Cycle model" names these delays; the parts declare them as properties.
    from model.twins.hcu import DECIDE_DELAY, FIRST_BEAT_DELAY, LANE_MIN_CYCLES

    config = small_config()
    assert LaneIssue(config).latency + SimilarityLane(config).load_latency == FIRST_BEAT_DELAY
    assert SimilarityLane(config).min_job_cycles == LANE_MIN_CYCLES
    assert ArgminTree(config).latency == DECIDE_DELAY
