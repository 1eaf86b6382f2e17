"""Hash-bit cluster unit (HCU): Hamming-distance leader clustering of token hashes, in hardware.

For every token hash on ``i`` the unit finds the cluster of its on-chip table whose hash is
nearest in Hamming distance below ``hamming_threshold`` (ties to the lowest cluster id), or opens
a new cluster, and sends the assignment on ``o``. The behaviour, bit for bit and cycle for cycle,
is that of the twin :mod:`model.hcu`, whose docstring is the contract.

Microarchitecture: banked table, rotating lanes, two tokens in flight
---------------------------------------------------------------------
The ``hash_mem_entries`` (E) cluster hashes are split over ``hcu_lanes`` (L) banks, one
:class:`amaranth.lib.memory.Memory` each: table slot ``s`` (cluster ``c`` lives in slot
``c mod E``) is row ``s // L`` of bank ``s mod L``. For token ``t`` (counted from reset), lane
``l`` walks the valid rows of bank ``(l + t) mod L``, ``hcu_bits_per_cycle`` (B) bits per cycle,
and abandons a row as soon as the partial distance reaches the threshold (early exit); its next
row is read in the same cycle, so a lane never idles between rows. The unit holds two tokens:
the oldest, decided (argmin of (distance, cluster id) over the lanes' best matches, table
write, output transfer) in the cycle after its last lane finishes, and the next one, which each
lane starts as soon as it has finished the oldest. Only the lane whose bank the oldest token
may write waits for its decision, so the next token sees a cluster the oldest one opens
(spatial clustering within a frame) and never a cluster it evicts; the table persists across
frames (temporal clustering). Each bank has one read port per token in flight, and crossbars
connect the lanes to the banks of their rotation.

Why this organisation: banks let lanes advance independently, without waiting for each other
row by row. Bank sizes differ and one cluster (the one most tokens join) is compared to the last
bit for almost every token, so with a fixed lane-to-bank mapping the same lane would be the
slowest for every token, and overlapping tokens would not help. Rotating the mapping gives that
work to a different lane for every token, and the second token in flight lets the other lanes
fill the gap meanwhile: lane utilisation on the edge preset rises from about 0.46-0.76 (fixed
banks, one token at a time) to 0.57-0.94 on the streaming workload and to 0.98 on a full table.
More tokens in flight would add little and would need more read ports. The timing is a plain
function of the per-row early-exit points and of which bank the oldest token may write, so the
twin's cycle model (:mod:`model.hcu`, "Cycle model") is exact.

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
Reset empties the table (the row counters are cleared; the memories keep stale data that is
never read).
"""

from amaranth.hdl import Array, Cat, Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from model.config import DREConfig
from model.hcu import TOKENS_IN_FLIGHT, bank_capacities

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


def _pick(parity, pair):
    """``pair[parity]`` for a 1-bit ``parity`` (a two-way multiplexer)."""
    return Mux(parity, pair[1], pair[0])


def _modulo_sum(left, right, modulus):
    """``(left + right) mod modulus`` for operands below ``modulus``."""
    total = left + right
    return Mux(total >= modulus, total - modulus, total)


class SimilarityLane(wiring.Component):
    """One similarity lane of the HCU: walks one table bank per token with early exit.

    The unit holds up to two tokens, one per *parity* (0 and 1, alternating with the token
    index). The lane processes them in order: for the token of parity ``p`` it walks the valid
    rows of bank ``(lane + rotation[p]) mod hcu_lanes``, ``hcu_bits_per_cycle`` bits per cycle,
    abandoning a row once the partial distance reaches the threshold, keeps the best match
    (smallest distance, then lowest cluster id), then reports it in ``result_*[p]``, raises
    ``done[p]`` and moves to the other parity. It waits while the token is not in flight, while
    ``done[p]`` is still set (the older token of that parity is not yet decided), and, for the
    younger token, while its bank is the one the older token may write (``write_bank``).

    Parameters
    ----------
    config : DREConfig
    lane : int
        Index of the lane, 0 to ``hcu_lanes - 1``.

    Members
    -------
    in_flight, token, rotation, bank_rows, read_data : In, one per parity
        Whether a token of the parity is held, its hash, its index mod ``hcu_lanes``, and the
        valid rows and read data of the bank this lane walks for it.
    oldest : In(1)
        Parity of the oldest token (the one decided next).
    release : In(1)
        The oldest token is decided: clear ``done[oldest]``.
    write_bank, epoch, write_slot : In
        Bank of the next table write; ``opened // hash_mem_entries`` and
        ``opened mod hash_mem_entries``, from which the cluster id of a slot follows.
    read_addr : Out, one per parity
        Row the lane reads, on its port of that parity, for the next cycle.
    done, result_distance, result_cluster : Out, one per parity
        The lane's walk for the token of that parity is finished, with its best match
        (``result_distance == hamming_threshold``: none).
    """

    def __init__(self, config, *, lane):
        _check_config(config)
        if not isinstance(lane, int) or not 0 <= lane < config.hcu_lanes:
            raise ValueError(f"lane must be from 0 to {config.hcu_lanes - 1}, not {lane!r}")
        self._config = config
        self._lane = lane
        depth = -(-config.hash_mem_entries // config.hcu_lanes)
        lanes = config.hcu_lanes
        pair = lambda member: data.ArrayLayout(member, 2)
        super().__init__({
            "in_flight": In(2),
            "token": In(pair(unsigned(config.hash_bits))),
            "rotation": In(pair(range(lanes))),
            "bank_rows": In(pair(range(depth + 1))),
            "read_data": In(pair(unsigned(config.hash_bits))),
            "oldest": In(1),
            "release": In(1),
            "write_bank": In(range(lanes)),
            "epoch": In(range((config.max_clusters // config.hash_mem_entries) + 1)),
            "write_slot": In(range(config.hash_mem_entries)),
            "read_addr": Out(pair(range(depth))),
            "done": Out(2),
            "result_distance": Out(pair(range(config.hash_bits + 1))),
            "result_cluster": Out(pair(unsigned(config.cluster_id_bits))),
        })

    def bank_for(self, parity):
        """Bank index the lane walks for the token of ``parity`` (a value)."""
        return _modulo_sum(self._lane, self.rotation[parity], self._config.hcu_lanes)

    def elaborate(self, platform):
        config = self._config
        m = Module()
        lanes = config.hcu_lanes
        threshold = config.hamming_threshold
        beats = config.hcu_beats_per_hash
        depth = -(-config.hash_mem_entries // lanes)

        parity = Signal()                              # parity of the token being walked
        row = Signal(range(depth + 1))
        beat = Signal(range(beats))
        partial = Signal(range(threshold + 1))
        best_distance = Signal(range(config.hash_bits + 1), init=threshold)
        best_cluster = Signal(config.cluster_id_bits)

        bank = Signal(range(lanes))
        rows = Signal(range(depth + 1))
        m.d.comb += [bank.eq(_pick(parity, [self.bank_for(0), self.bank_for(1)])),
                     rows.eq(_pick(parity, [self.bank_rows[0], self.bank_rows[1]]))]
        younger = parity != self.oldest
        ready = Signal()
        m.d.comb += ready.eq(_pick(parity, self.in_flight) & ~_pick(parity, self.done)
                             & ~(younger & (bank == self.write_bank)))
        empty = row == rows
        active = Signal()
        m.d.comb += active.eq(ready & ~empty)

        difference = (_pick(parity, [self.read_data[0], self.read_data[1]])
                      ^ _pick(parity, [self.token[0], self.token[1]]))
        if beats > 1:
            difference = difference.word_select(beat, config.hcu_bits_per_cycle)
        distance = Signal(range(threshold + config.hcu_bits_per_cycle + 1))
        reached = Signal()
        last_beat = Signal()
        advance = Signal()
        match = Signal()
        finish = Signal()
        m.d.comb += [
            distance.eq(partial + _popcount(difference)),
            last_beat.eq(beat == beats - 1),
            reached.eq(distance >= threshold),
            advance.eq(active & (reached | last_beat)),
            match.eq(active & last_beat & ~reached),
            finish.eq(ready & (empty | (advance & (row + 1 == rows)))),
        ]

        # Cluster id of the row's slot: slots below the write pointer hold the current epoch.
        slot = Signal(range(depth * lanes + lanes))
        m.d.comb += slot.eq(row * lanes + bank)
        epoch = Signal.like(self.epoch)
        m.d.comb += epoch.eq(Mux(slot[:config.hash_slot_bits] >= self.write_slot,
                                 self.epoch - 1, self.epoch))
        cluster = Signal(config.cluster_id_bits)
        m.d.comb += cluster.eq(Cat(slot[:config.hash_slot_bits], epoch))
        better = Signal()
        m.d.comb += better.eq(match & ((distance < best_distance) | (
            (distance == best_distance) & (cluster < best_cluster))))
        final_distance = Mux(better, distance, best_distance)
        final_cluster = Mux(better, cluster, best_cluster)

        next_row = Mux(finish, 0, row + advance)
        for index in range(2):
            m.d.comb += self.read_addr[index].eq(Mux(parity == index, next_row, 0))
        with m.If(self.release):
            m.d.sync += self.done.bit_select(self.oldest, 1).eq(0)
        with m.If(finish):
            m.d.sync += [
                self.done.bit_select(parity, 1).eq(1),
                self.result_distance[parity].eq(final_distance),
                self.result_cluster[parity].eq(final_cluster),
                parity.eq(~parity), row.eq(0), beat.eq(0), partial.eq(0),
                best_distance.eq(threshold), best_cluster.eq(0),
            ]
        with m.Elif(advance):
            m.d.sync += [row.eq(row + 1), beat.eq(0), partial.eq(0),
                         best_distance.eq(final_distance), best_cluster.eq(final_cluster)]
        with m.Elif(active):
            m.d.sync += [beat.eq(beat + 1), partial.eq(distance)]
        return m


class HashClusterUnit(wiring.Component):
    """The hash-bit cluster unit: token hashes in, cluster assignments out.

    Parameters
    ----------
    config : DREConfig
        Uses ``hash_bits``, ``hamming_threshold``, ``hcu_lanes``, ``hcu_bits_per_cycle``,
        ``hash_mem_entries`` and ``max_clusters``.

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
    def bank_depth(self):
        """Rows of each bank, ``ceil(hash_mem_entries / hcu_lanes)``."""
        return -(-self._config.hash_mem_entries // self._config.hcu_lanes)

    @property
    def tokens_in_flight(self):
        """Tokens the unit holds at once (the oldest being decided, the next being compared)."""
        return TOKENS_IN_FLIGHT

    @property
    def min_latency(self):
        """Fewest cycles from a token's input transfer to its assignment: the lanes need one
        cycle even for an empty table, and the assignment follows in the next."""
        return 2

    @property
    def min_token_cycles(self):
        """Fewest cycles between two assignments: one decision per cycle at most."""
        return 1

    @property
    def max_token_cycles(self):
        """Most cycles between two assignments without stalls: a lane that waits for the previous
        decision walks a full bank without early exit."""
        return 1 + self.bank_depth * self._config.hcu_beats_per_hash

    @property
    def peak_throughput(self):
        """Assignments per cycle at best; the twin gives the exact cycles of every token."""
        return 1 / self.min_token_cycles

    def elaborate(self, platform):
        config = self._config
        m = Module()
        lanes = config.hcu_lanes
        entries = config.hash_mem_entries
        threshold = config.hamming_threshold

        # Tokens in flight, one register set per parity.
        token = [Signal(config.hash_bits, name=f"token{index}") for index in range(2)]
        last = [Signal(name=f"last{index}") for index in range(2)]
        rotation = [Signal(range(lanes), name=f"rotation{index}") for index in range(2)]
        in_flight = Signal(2)
        oldest = Signal()
        next_rotation = Signal(range(lanes))

        opened = Signal(range(config.max_clusters + 1))
        write_bank = Signal(range(lanes))
        write_row = Signal(range(self.bank_depth))
        write_slot = Signal(range(entries))
        bank_rows = [Signal(range(self.bank_depth + 1), name=f"bank{index}_rows")
                     for index in range(lanes)]
        capacities = [int(capacity) for capacity in bank_capacities(config)]

        lane_units = []
        for index in range(lanes):
            lane = SimilarityLane(config, lane=index)
            m.submodules[f"lane{index}"] = lane
            lane_units.append(lane)

        # The banks: one write port, one read port per parity (each driven by the lane that
        # walks the bank for that parity's token), transparent so a write is seen at once.
        write_en = Signal()
        read_data = [[None, None] for _ in range(lanes)]
        read_addr = [[None, None] for _ in range(lanes)]
        for index in range(lanes):
            memory = Memory(shape=unsigned(config.hash_bits), depth=self.bank_depth, init=[])
            m.submodules[f"bank{index}"] = memory
            write = memory.write_port()
            m.d.comb += [write.en.eq(write_en & (write_bank == index)), write.addr.eq(write_row),
                         write.data.eq(_pick(oldest, token))]
            for parity in range(2):
                read = memory.read_port(transparent_for=(write,))
                read_data[index][parity] = read.data
                read_addr[index][parity] = read.addr
            with m.If(write_en & (write_bank == index) & (bank_rows[index] < capacities[index])):
                m.d.sync += bank_rows[index].eq(bank_rows[index] + 1)

        release = Signal()
        for lane in lane_units:
            m.d.comb += [
                lane.in_flight.eq(in_flight),
                lane.oldest.eq(oldest),
                lane.release.eq(release),
                lane.write_bank.eq(write_bank),
                lane.epoch.eq(opened >> config.hash_slot_bits),
                lane.write_slot.eq(write_slot),
            ]
            for parity in range(2):
                bank = lane.bank_for(parity)
                m.d.comb += [
                    lane.token[parity].eq(token[parity]),
                    lane.rotation[parity].eq(rotation[parity]),
                    lane.bank_rows[parity].eq(Array(bank_rows)[bank]),
                    lane.read_data[parity].eq(
                        Array(read_data[index][parity] for index in range(lanes))[bank]),
                ]
        for index in range(lanes):
            for parity in range(2):
                walker = _modulo_sum(index, lanes - rotation[parity], lanes) if lanes > 1 else 0
                m.d.comb += read_addr[index][parity].eq(
                    Array(lane.read_addr[parity] for lane in lane_units)[walker])

        # Argmin over the lanes' results for the oldest token: a balanced comparator tree.
        candidates = [(_pick(oldest, lane.result_distance), _pick(oldest, lane.result_cluster))
                      for lane in lane_units]
        while len(candidates) > 1:
            paired = []
            for left, right in zip(candidates[0::2], candidates[1::2]):
                take_right = (right[0] < left[0]) | ((right[0] == left[0]) & (right[1] < left[1]))
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
        m.d.comb += [found.eq(best_distance < threshold), full.eq(opened == config.max_clusters)]
        all_done = Cat(_pick(oldest, [lane.done[0], lane.done[1]]) for lane in lane_units).all()
        m.d.comb += [
            self.o.valid.eq(_pick(oldest, in_flight) & all_done),
            self.o.payload.last.eq(_pick(oldest, last)),
            self.o.payload.cluster.eq(Mux(found, best_cluster,
                                          Mux(full, 0, opened[:config.cluster_id_bits]))),
            self.o.payload.new.eq(~found & ~full),
            self.o.payload.distance.eq(Mux(found, best_distance, 0)),
            self.o.payload.overflow.eq(~found & full),
        ]

        # Decide: transfer the oldest token's assignment and update the table.
        decide = Signal()
        m.d.comb += decide.eq(self.o.valid & self.o.ready)
        with m.If(decide):
            m.d.comb += release.eq(1)
            m.d.sync += [in_flight.bit_select(oldest, 1).eq(0), oldest.eq(~oldest)]
            with m.If(~found & ~full):
                m.d.comb += write_en.eq(1)
                m.d.sync += opened.eq(opened + 1)
                with m.If(write_slot == entries - 1):
                    m.d.sync += [write_slot.eq(0), write_bank.eq(0), write_row.eq(0)]
                with m.Elif(write_bank == lanes - 1):
                    m.d.sync += [write_slot.eq(write_slot + 1), write_bank.eq(0),
                                 write_row.eq(write_row + 1)]
                with m.Else():
                    m.d.sync += [write_slot.eq(write_slot + 1), write_bank.eq(write_bank + 1)]
            with m.If(~found & full):
                m.d.sync += self.overflow.eq(1)

        # Accept: into the free parity; at most two tokens in flight.
        youngest_after = Signal()
        m.d.comb += [
            self.i.ready.eq(~in_flight.all() | decide),
            youngest_after.eq(Mux(decide,
                                  Mux(_pick(~oldest, in_flight), oldest, ~oldest),
                                  Mux(_pick(oldest, in_flight), ~oldest, oldest))),
        ]
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [in_flight.bit_select(youngest_after, 1).eq(1),
                         next_rotation.eq(_modulo_sum(next_rotation, 1, lanes)
                                          if lanes > 1 else 0)]
            for parity in range(2):
                with m.If(youngest_after == parity):
                    m.d.sync += [token[parity].eq(self.i.payload.hash),
                                 last[parity].eq(self.i.payload.last),
                                 rotation[parity].eq(next_rotation)]
        return m
