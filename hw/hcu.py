"""Hash-bit cluster unit (HCU): Hamming-distance leader clustering of token hashes, in hardware.

For every token hash on ``i`` the unit finds the cluster of its on-chip table whose hash is
nearest in Hamming distance below ``hamming_threshold`` (ties to the lowest cluster id), or opens
a new cluster, and sends the assignment on ``o``. The behaviour, bit for bit and cycle for cycle,
is that of the twin :mod:`model.twins.hcu`, whose docstring is the contract ("Cycle model" gives the
schedule below as rules).

Microarchitecture: a pool of lanes fed from a banked table, several tokens in flight
-----------------------------------------------------------------------------------
The ``hash_mem_entries`` (E) cluster hashes live in ``hcu_dispatch_width`` (D) banks, one
:class:`amaranth.lib.memory.Memory` each with one synchronous read port and one write port
(cluster ``c`` in bank ``c mod D``, row ``(c mod E) // D``). The unit holds up to
``hcu_tokens_in_flight`` (K) tokens. A dispatcher starts up to D *jobs* (the compare of one
token with one cluster) per cycle: it reads the clusters' hashes and, in the next cycle, hands
``hash XOR token`` to the lowest-numbered free lanes of the ``hcu_lanes``
:class:`SimilarityLane` units. A lane compares ``hcu_bits_per_cycle`` bits per cycle and stops
as soon as the partial distance reaches the threshold (early exit), keeping its best match per
token. A lane that finishes in a cycle can be given the next job in that same cycle, so a lane
with work never idles.

Jobs come from the tokens in order. Each token first *walks* the table downwards from the newest
cluster it saw on arrival, D consecutive clusters (so D distinct banks) per cycle; meanwhile the
older tokens are decided, and every cluster one of them opens is compared with the younger
tokens by a *catch-up* job (one per cycle; catch-ups go first, oldest token first), so a token
sees exactly the table the leader rule gives it: clusters opened earlier in its own frame
(spatial) and in earlier frames (temporal). The walk of a younger token stops short of the
clusters an older one may still evict until that one is decided. The oldest token is decided,
its assignment sent and the table written, in the cycle after its last compare ends (argmin of
(distance, cluster id) over the lanes' best matches).

Why this organisation: a bit-serial lane spends several cycles on each compare (at least
``ceil(hamming_threshold / hcu_bits_per_cycle)``), so a few table reads per cycle feed many
lanes and no lane is tied to a part of the table. Early in a stream the table holds about as
many clusters as there are lanes, and the compare with the cluster a token joins runs to the
last bit; with a lane per bank (the previous organisation of this unit, two tokens in flight),
lanes idled whenever the clusters did not split evenly: lane utilisation on the edge preset's
streaming workload was 0.57-0.80 over the first 100 frames. Pooled lanes with K = 4 tokens in
flight and D = 2 reads per cycle keep them 0.98-0.99 busy there, over the whole workload and on
a full table, and take 15-30 cycles per token early in the stream instead of 27-38, with about
half the previous unit's logic gates and a sixth of its FPGA LUTs (``make bench``,
``make synth``). The dispatch width still caps the work when compares are shorter than
``hcu_lanes / D`` cycles on average (wide ``hcu_bits_per_cycle``): the lanes then wait for jobs.
The timing is a plain function of the compares' early-exit points, so the twin's cycle model is
exact.

Streams and frames
------------------
``i`` carries :func:`token_layout` (``hash``, ``last``), ``o`` :func:`assignment_layout`
(``cluster``, ``new``, ``distance``, ``overflow``, ``last``), one assignment per token in order.
``last`` marks the final token of a frame and is passed through unchanged: frames do not change
the clustering (the table is shared by all frames), they only delimit the output.

Too many clusters
-----------------
When a token would open cluster number ``max_clusters`` (its id would not fit
``cluster_id_bits``), the unit sends it with ``overflow = 1``, ``cluster = 0``, ``new = 0``,
``distance = 0``, leaves the table unchanged, keeps joining later tokens to existing clusters,
and raises the sticky ``overflow`` status output until reset (the twin's ``on_overflow="flag"``).
Reset empties the table (the counters are cleared; the memory keeps stale data that is never
read).
"""

from amaranth.hdl import Array, Cat, Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from model.config import DREConfig

__all__ = ["token_layout", "assignment_layout", "SimilarityLane", "HashClusterUnit"]


def token_layout(config):
    """Payload of the HCU input stream: one token hash and the end-of-frame flag."""
    return data.StructLayout({"hash": unsigned(config.hash_bits), "last": unsigned(1)})


def assignment_layout(config):
    """Payload of the HCU output stream: the token's cluster assignment."""
    return data.StructLayout({
        "cluster": unsigned(config.cluster_id_bits),
        "new": unsigned(1),
        "distance": unsigned(config.distance_bits),
        "overflow": unsigned(1),
        "last": unsigned(1),
    })


def _check_config(config):
    if not isinstance(config, DREConfig):
        raise TypeError(f"config must be a DREConfig, not {config!r}")


def _popcount(value):
    return sum(value[index] for index in range(len(value)))


def _modulo_sum(left, right, modulus):
    """``(left + right) mod modulus`` for operands below ``modulus``."""
    if modulus == 1:
        return 0
    total = left + right
    return Mux(total >= modulus, total - modulus, total)


def _better(distance, cluster, best_distance, best_cluster):
    """``(distance, cluster)`` is before ``(best_distance, best_cluster)`` in argmin order."""
    return (distance < best_distance) | ((distance == best_distance) & (cluster < best_cluster))


class SimilarityLane(wiring.Component):
    """One similarity lane of the HCU: one compare at a time, with early exit.

    A job arrives with ``load`` as the difference ``cluster hash XOR token hash``, the token's
    slot among the tokens in flight (``load_tag``) and the cluster id. The lane counts the
    differing bits ``hcu_bits_per_cycle`` at a time from the least significant end, the first
    beat in the cycle of ``load``, and stops after the beat at which the count reaches
    ``hamming_threshold`` or after the last beat. A compare that runs to the end below the
    threshold is a match; the lane keeps the best match of each token slot (smallest distance,
    then lowest cluster id) in ``best_distance`` / ``best_cluster`` (``hamming_threshold``:
    none), which ``clear`` resets when a new token takes the slot.

    Parameters
    ----------
    config : DREConfig

    Members
    -------
    load : In(1)
        A job starts this cycle (only when ``available``).
    load_difference, load_tag, load_cluster : In
        The job's bit difference, token slot and cluster id.
    clear : In(hcu_tokens_in_flight)
        Forget the best match of these token slots.
    working : Out(1)
        The lane compares in this cycle.
    available : Out(1)
        The lane can take a job this cycle: idle, or in the last beat of its compare.
    tag : Out(range(hcu_tokens_in_flight))
        Token slot of the compare in this cycle (when ``working``).
    best_distance, best_cluster : Out, one per token slot
        Best match so far of each token slot.
    """

    def __init__(self, config):
        _check_config(config)
        self._config = config
        slots = config.hcu_tokens_in_flight
        super().__init__({
            "load": In(1),
            "load_difference": In(config.hash_bits),
            "load_tag": In(range(slots)),
            "load_cluster": In(config.cluster_id_bits),
            "clear": In(slots),
            "working": Out(1),
            "available": Out(1),
            "tag": Out(range(slots)),
            "best_distance": Out(data.ArrayLayout(range(config.hash_bits + 1), slots)),
            "best_cluster": Out(data.ArrayLayout(config.cluster_id_bits, slots)),
        })

    def elaborate(self, platform):
        config = self._config
        m = Module()
        threshold = config.hamming_threshold
        width = config.hcu_bits_per_cycle
        beats = config.hcu_beats_per_hash

        active = Signal()
        difference = Signal(config.hash_bits)
        beat = Signal(range(beats))
        partial = Signal(range(threshold))
        tag = Signal.like(self.load_tag)
        cluster = Signal(config.cluster_id_bits)

        # The compare of this cycle: a job loaded now, or the one in progress.
        current_difference = Mux(self.load, self.load_difference, difference)
        current_beat = Mux(self.load, 0, beat)
        current_partial = Mux(self.load, 0, partial)
        current_cluster = Mux(self.load, self.load_cluster, cluster)
        distance = Signal(range(threshold + width))
        reached = Signal()
        last_beat = Signal()
        finishing = Signal()
        m.d.comb += [
            self.working.eq(active | self.load),
            self.tag.eq(Mux(self.load, self.load_tag, tag)),
            distance.eq(current_partial + _popcount(current_difference[:width])),
            reached.eq(distance >= threshold),
            last_beat.eq(current_beat == beats - 1),
            finishing.eq(self.working & (reached | last_beat)),
            self.available.eq(~self.working | finishing),
        ]
        with m.If(self.working & ~finishing):
            m.d.sync += [active.eq(1), difference.eq(current_difference >> width),
                         beat.eq(current_beat + 1), partial.eq(distance), tag.eq(self.tag),
                         cluster.eq(current_cluster)]
        with m.If(finishing):
            m.d.sync += active.eq(0)
            best_distance = self.best_distance[self.tag]
            best_cluster = self.best_cluster[self.tag]
            with m.If(~reached & _better(distance, current_cluster, best_distance,
                                         best_cluster)):
                m.d.sync += [best_distance.eq(distance), best_cluster.eq(current_cluster)]
        for slot in range(config.hcu_tokens_in_flight):
            with m.If(self.clear[slot]):
                m.d.sync += [self.best_distance[slot].eq(threshold),
                             self.best_cluster[slot].eq(0)]
        return m


class HashClusterUnit(wiring.Component):
    """The hash-bit cluster unit: token hashes in, cluster assignments out.

    Parameters
    ----------
    config : DREConfig
        Uses ``hash_bits``, ``hamming_threshold``, ``hcu_lanes``, ``hcu_bits_per_cycle``,
        ``hcu_tokens_in_flight``, ``hash_mem_entries`` and ``max_clusters``.

    Members
    -------
    i : In(stream.Signature(token_layout(config)))
        Token hashes in arrival order.
    o : Out(stream.Signature(assignment_layout(config)))
        One assignment per token, in order.
    overflow : Out(1)
        Sticky: a token needed cluster number ``max_clusters`` (see the module docstring).

    Raises
    ------
    TypeError
        If ``config`` is not a :class:`DREConfig`.
    """

    def __init__(self, config):
        _check_config(config)
        self._config = config
        super().__init__({
            "i": In(stream.Signature(token_layout(config))),
            "o": Out(stream.Signature(assignment_layout(config))),
            "overflow": Out(1),
        })

    @property
    def config(self):
        """The configuration the unit was built for."""
        return self._config

    @property
    def tokens_in_flight(self):
        """Tokens the unit holds at once, ``hcu_tokens_in_flight``."""
        return self._config.hcu_tokens_in_flight

    @property
    def min_latency(self):
        """Fewest cycles from a token's input transfer to its assignment: the token is held
        from the next cycle, its (empty) walk ends there, and it is decided in the one after."""
        return 2

    @property
    def min_token_cycles(self):
        """Fewest cycles between two assignments: one decision per cycle at most."""
        return 1

    @property
    def max_token_cycles(self):
        """Most cycles between two assignments without stalls. Once a token is the oldest its
        jobs go first; each of its at most ``hash_mem_entries`` compares waits at most one
        compare (``hcu_beats_per_hash`` cycles) for a lane, the last runs as long, and the
        decision takes one more cycle."""
        return (self._config.hash_mem_entries + 1) * self._config.hcu_beats_per_hash + 1

    @property
    def peak_throughput(self):
        """Assignments per cycle at best; the twin gives the exact cycles of every token."""
        return 1 / self.min_token_cycles

    def elaborate(self, platform):
        config = self._config
        m = Module()
        slots = config.hcu_tokens_in_flight
        entries = config.hash_mem_entries
        threshold = config.hamming_threshold
        cluster_range = range(config.max_clusters + 1)

        # Tokens in flight, in a ring of slots: ``head`` holds the oldest, age ``a`` the slot
        # (head + a) mod K. ``seen`` is the next cluster id the token has not yet been compared
        # with by a catch-up job.
        token = Array(Signal(config.hash_bits, name=f"token{slot}") for slot in range(slots))
        last = Array(Signal(name=f"last{slot}") for slot in range(slots))
        seen = Array(Signal(cluster_range, name=f"seen{slot}") for slot in range(slots))
        head = Signal(range(slots))
        held = Signal(range(slots + 1))
        opened = Signal(cluster_range)
        walk_age = Signal(range(slots + 1))        # age of the token walking the table
        walk_begun = Signal()
        walk_top = Signal(cluster_range)           # its next walk cluster is walk_top - 1
        slot_of_age = [_modulo_sum(head, age, slots) for age in range(slots)]

        lanes = []
        for index in range(config.hcu_lanes):
            lane = SimilarityLane(config)
            m.submodules[f"lane{index}"] = lane
            lanes.append(lane)

        # The table: ``hcu_dispatch_width`` (D) banks, cluster c in bank c mod D at row
        # (c mod E) // D, each with one read and one write port.
        width = config.hcu_dispatch_width
        bank_bits = width.bit_length() - 1
        rows = entries // width
        writes, reads = [], []
        for bank in range(width):
            memory = Memory(shape=unsigned(config.hash_bits), depth=rows, init=[])
            m.submodules[f"table{bank}"] = memory
            writes.append(memory.write_port())
            reads.append(memory.read_port())

        # Decide: the oldest token, once its walk is done, every cluster opened before it has
        # been compared and no lane still works on it.
        busy = Cat(lane.working & (lane.tag == head) for lane in lanes).any()
        candidates = [(lane.best_distance[head], lane.best_cluster[head]) for lane in lanes]
        while len(candidates) > 1:
            paired = []
            for left, right in zip(candidates[0::2], candidates[1::2]):
                take_right = _better(right[0], right[1], left[0], left[1])
                distance = Signal(range(config.hash_bits + 1))
                cluster = Signal(config.cluster_id_bits)
                m.d.comb += [distance.eq(Mux(take_right, right[0], left[0])),
                             cluster.eq(Mux(take_right, right[1], left[1]))]
                paired.append((distance, cluster))
            if len(candidates) % 2:
                paired.append(candidates[-1])
            candidates = paired
        best_distance, best_cluster = candidates[0]
        found = Signal()
        full = Signal()
        decide = Signal()
        m.d.comb += [
            found.eq(best_distance < threshold),
            full.eq(opened == config.max_clusters),
            self.o.valid.eq((held != 0) & (walk_age != 0) & (seen[head] == opened) & ~busy),
            self.o.payload.last.eq(last[head]),
            self.o.payload.cluster.eq(Mux(found, best_cluster,
                                          Mux(full, 0, opened[:config.cluster_id_bits]))),
            self.o.payload.new.eq(~found & ~full),
            self.o.payload.distance.eq(Mux(found, best_distance, 0)),
            self.o.payload.overflow.eq(~found & full),
            decide.eq(self.o.valid & self.o.ready),
        ]
        for bank, write in enumerate(writes):
            m.d.comb += [write.addr.eq(opened[bank_bits:config.hash_slot_bits]),
                         write.data.eq(token[head])]
        with m.If(decide):
            with m.If(~found & ~full):
                for bank, write in enumerate(writes):
                    m.d.comb += write.en.eq(opened[:bank_bits] == bank if width > 1 else 1)
                m.d.sync += opened.eq(opened + 1)
            with m.If(~found & full):
                m.d.sync += self.overflow.eq(1)

        # Dispatch: the catch-up of the oldest eligible token, else the walk token's next cluster.
        catch_up = Signal()
        catch_slot = Signal(range(slots))
        for age in reversed(range(slots)):
            walked_past = (age < walk_age) | ((age == walk_age) & walk_begun)
            with m.If((age < held) & walked_past & (seen[slot_of_age[age]] < opened)):
                m.d.comb += [catch_up.eq(1), catch_slot.eq(slot_of_age[age])]
        walk_slot = Signal(range(slots))
        walk_token = Signal()
        top = Signal(cluster_range)
        m.d.comb += [
            walk_slot.eq(_modulo_sum(head, walk_age[:len(head)], slots)),
            walk_token.eq(walk_age < held),
            top.eq(Mux(walk_begun, walk_top, seen[walk_slot])),
        ]

        # Free lanes, lowest-numbered first: job j goes to the j-th free lane.
        free = [lane.available for lane in lanes]
        free_lane, free_enough = [], []
        for job in range(width):
            chosen = Signal(range(config.hcu_lanes), name=f"free_lane{job}")
            found_lane = Signal(name=f"free_enough{job}")
            for index in reversed(range(config.hcu_lanes)):
                with m.If(free[index]):
                    m.d.comb += [found_lane.eq(1), chosen.eq(index)]
            free = [available & (chosen != index) for index, available in enumerate(free)]
            free_lane.append(chosen)
            free_enough.append(found_lane)

        # Jobs of this cycle: one catch-up, else walk clusters top - 1, top - 2, ... that exist,
        # that the older tokens cannot evict, and that have a free lane.
        job_valid, job_cluster = [], []
        for job in range(width):
            valid = Signal(name=f"job{job}_valid")
            cluster = Signal(config.cluster_id_bits, name=f"job{job}_cluster")
            walk_ok = (walk_token & ~catch_up & (top >= job + 1)
                       & (top + entries >= opened + walk_age + job + 1))
            m.d.comb += [
                valid.eq(free_enough[job] & (walk_ok | (catch_up if job == 0 else 0))),
                cluster.eq(Mux(catch_up, seen[catch_slot], top - 1 - job)),
            ]
            job_valid.append(valid)
            job_cluster.append(cluster)
        job_slot = Signal(range(slots))
        m.d.comb += job_slot.eq(Mux(catch_up, catch_slot, walk_slot))
        for bank, read in enumerate(reads):
            # The walk's clusters in this cycle sit in distinct banks: bank b reads the one of
            # top - D .. top - 1 that is b mod D (or the catch-up cluster).
            offset = (top - 1 - bank)[:bank_bits] if width > 1 else 0
            walk_cluster = (top - 1 - offset)[:config.cluster_id_bits]
            cluster = Mux(catch_up, seen[catch_slot], walk_cluster)
            m.d.comb += read.addr.eq(cluster[bank_bits:config.hash_slot_bits])
        with m.If(catch_up & job_valid[0]):
            m.d.sync += seen[catch_slot].eq(seen[catch_slot] + 1)

        # The jobs reach their lanes in the next cycle, with the table hashes just read.
        load_tag = Signal(range(slots))
        m.d.sync += load_tag.eq(job_slot)
        loads = []
        for job in range(width):
            load = Signal(name=f"load{job}")
            lane_index = Signal.like(free_lane[job], name=f"load{job}_lane")
            cluster = Signal(config.cluster_id_bits, name=f"load{job}_cluster")
            m.d.sync += [load.eq(job_valid[job]), lane_index.eq(free_lane[job]),
                         cluster.eq(job_cluster[job])]
            bank_data = Array(read.data for read in reads)[cluster[:bank_bits]] \
                if width > 1 else reads[0].data
            difference = Signal(config.hash_bits, name=f"load{job}_difference")
            m.d.comb += difference.eq(bank_data ^ token[load_tag])
            loads.append((load, lane_index, cluster, difference))
        for index, lane in enumerate(lanes):
            m.d.comb += lane.load_tag.eq(load_tag)
            for load, lane_index, cluster, difference in loads:
                with m.If(load & (lane_index == index)):
                    m.d.comb += [lane.load.eq(1), lane.load_difference.eq(difference),
                                 lane.load_cluster.eq(cluster)]

        # The walk: done when nothing is left below it, or (for the oldest token) the rest has
        # been evicted; the next token walks from the next cycle.
        walked = Signal(range(width + 1))
        after = Signal(cluster_range)
        advance = Signal()
        m.d.comb += [
            walked.eq(Mux(catch_up, 0, sum(job_valid))),
            after.eq(top - walked),
            advance.eq(walk_token & ((after == 0)
                                     | ((walk_age == 0) & (after + entries <= opened)))),
        ]
        with m.If(advance):
            m.d.sync += walk_begun.eq(0)
        with m.Elif(walked != 0):
            m.d.sync += [walk_begun.eq(1), walk_top.eq(after)]

        # Accept into the slot after the youngest; the oldest leaves on its decision.
        accept = Signal()
        tail = Signal(range(slots))
        m.d.comb += [
            self.i.ready.eq((held < slots) | decide),
            accept.eq(self.i.valid & self.i.ready),
            tail.eq(_modulo_sum(head, held[:len(head)], slots) if slots > 1 else 0),
        ]
        with m.If(accept):
            m.d.sync += [token[tail].eq(self.i.payload.hash), last[tail].eq(self.i.payload.last),
                         seen[tail].eq(opened)]
            for lane in lanes:
                m.d.comb += lane.clear.bit_select(tail, 1).eq(1)
        m.d.sync += [held.eq(held + accept - decide), walk_age.eq(walk_age + advance - decide)]
        with m.If(decide):
            m.d.sync += head.eq(_modulo_sum(head, 1, slots))
        return m
