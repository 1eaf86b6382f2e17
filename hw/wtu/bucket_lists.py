"""One WTU lane's bucket sorter: a linked list of the lane's clusters per bucket, and its walk."""

from amaranth.hdl import Array, Module, Mux, Signal, unsigned
from amaranth.lib import memory
from amaranth.lib.wiring import In, Out

from hw.component import (ConfiguredComponent, block_ram, builds_for_fpga,
                          poisons_undefined_reads)
from hw.wtu.layouts import WTULayouts, one_hot_select
from hw.wtu.read_ahead import read_ahead

__all__ = ["BucketLists"]


class BucketLists(ConfiguredComponent):
    """Per bucket, the list of one lane's cluster addresses in the order they were appended.

    Each bucket has a head, a tail and a non-empty flag; the next pointers live in one memory
    (one synchronous read port, so an SRAM macro or a block RAM, and one write per cycle), so
    appending costs one cycle and no pass over the row. A *walk* follows the list of one bucket,
    one address per cycle: the memory is read ahead (:mod:`hw.wtu.read_ahead`) at the walk's
    next address (``next_walk_address``), so the pointer that follows ``walk_address`` is there
    in the cycle ``walk_address`` is; the path of a step is the macro's output through the
    address multiplexer back into its address. While a walk runs the same clusters can be
    appended to new lists (after ``clear``), which relinks the next pointers of the walked ones
    only after the walk has read them.

    On an FPGA the memory asks for block RAM (:func:`hw.component.block_ram`), and the walk
    reads *two ahead*: a block RAM's word comes late in its cycle (an ECP5 DP16KD's 5.83 ns
    after the clock), too late to go through the walk's address multiplexer into the
    memory's read address again. The memory then holds, for each cluster, the cluster two
    after it in its list; each bucket also keeps its second cluster and the one before its
    tail (an append writes the word of that one), and the walk keeps the address after its
    own in a register, which the word read ahead at the walk's address refills at each step.
    The same addresses in the same cycles, for a register per bucket more of each kind
    (which the silicon form, whose macros deliver their words early enough, does without).

    Parameters
    ----------
    config : DREConfig
        Uses ``wtu_buckets``, ``max_clusters`` and ``wtu_lanes``.

    Members
    -------
    append : In(1)
        Append ``address`` to the list of ``bucket``.
    bucket : In(range(wtu_buckets))
    address : In(chunk_bits)
    clear : In(1)
        Empty every list (the heads, tails and next pointers keep stale values).
    start : In(1)
        Begin a walk of the list that ``start_select`` named in the cycle before (taken before
        this cycle's ``clear``; an append in that cycle before is not seen by the walk).
    start_select : In(wtu_buckets)
        The bucket of a walk that ``start`` may begin in the next cycle, one-hot.
    step : In(1)
        Move the walk to the next address, or end it after the list's tail.
    walk_address : Out(chunk_bits)
        The walk's address this cycle.
    next_walk_address : Out(chunk_bits)
        The walk's address in the next cycle (for reading other memories ahead).
    walk_active : Out(1)
        The walk has not passed the tail (0 also for a walk of an empty list).
    walk_done : Out(1)
        This step ends the walk: not active, or at the tail.

    Raises
    ------
    TypeError
        If ``config`` is not a :class:`DREConfig`.
    """

    def _members(self, config):
        addr_bits = WTULayouts(config).chunk_bits
        buckets = range(config.wtu_buckets)
        return {
            "append": In(1),
            "bucket": In(buckets),
            "address": In(addr_bits),
            "clear": In(1),
            "start": In(1),
            "start_select": In(len(buckets)),
            "step": In(1),
            "walk_address": Out(addr_bits),
            "next_walk_address": Out(addr_bits),
            "walk_active": Out(1),
            "walk_done": Out(1),
        }

    def elaborate(self, platform):
        layouts = WTULayouts(self._config)
        buckets, addr_bits = self._config.wtu_buckets, layouts.chunk_bits
        two_ahead = builds_for_fpga(platform)
        m = Module()
        m.submodules.next = mem = memory.Memory(shape=unsigned(addr_bits), depth=layouts.chunks,
                                                init=[], attrs=block_ram(platform))
        next_rd, next_wr, next_data = read_ahead(m, mem, "next", forward=not two_ahead,
                                                 transparent=two_ahead,
                                                 poison=poisons_undefined_reads(platform))
        head = [Signal(addr_bits, name=f"head{k}") for k in range(buckets)]
        tail = [Signal(addr_bits, name=f"tail{k}") for k in range(buckets)]
        nonempty = [Signal(name=f"nonempty{k}") for k in range(buckets)]
        # The memory's word for a cluster: its successor, or with ``two_ahead`` the cluster
        # after its successor. An append writes it for the bucket's tail (or for the cluster
        # before the tail), picked with its flag by balanced multiplexers over the buckets
        # (not a chain of one per bucket).
        if two_ahead:
            second = [Signal(addr_bits, name=f"second{k}") for k in range(buckets)]
            before_tail = [Signal(addr_bits, name=f"before_tail{k}") for k in range(buckets)]
            several = [Signal(name=f"several{k}") for k in range(buckets)]
            linked, linked_exists = before_tail, several
        else:
            linked, linked_exists = tail, nonempty
        # Whether the walk's address is its bucket's tail, a register (at reset both are 0)
        # set from the values both take at the clock edge: no comparison stands between the
        # walk's address and the memories' read addresses behind ``next_walk_address``.
        walk_end, next_walk_end = Signal(addr_bits), Signal(addr_bits)
        at_tail = Signal(init=1)
        m.d.comb += [next_rd.addr.eq(self.next_walk_address),
                     self.walk_done.eq(~self.walk_active | at_tail),
                     next_wr.addr.eq(Array(linked)[self.bucket]), next_wr.data.eq(self.address),
                     next_wr.en.eq(self.append & Array(linked_exists)[self.bucket])]
        for k in range(buckets):
            with m.If(self.append & (self.bucket == k)):
                with m.If(~nonempty[k]):
                    m.d.sync += head[k].eq(self.address)
                m.d.sync += [tail[k].eq(self.address), nonempty[k].eq(1)]
                if two_ahead:
                    with m.If(nonempty[k] & ~several[k]):
                        m.d.sync += second[k].eq(self.address)
                    m.d.sync += [before_tail[k].eq(tail[k]), several[k].eq(nonempty[k])]
        with m.If(self.clear):
            m.d.sync += [flag.eq(0) for flag in nonempty + (several if two_ahead else [])]
        m.d.comb += self.next_walk_address.eq(self.walk_address)
        m.d.sync += self.walk_address.eq(self.next_walk_address)
        # The walk's start: the selected bucket's head, tail and flag, picked a cycle ahead by
        # an AND-OR over the buckets into registers of the lane, so that ``start`` (late,
        # fanned out to every lane) only selects registers: neither the wire from the
        # decision nor the buckets' multiplexer stands before the memory's read address.
        start_head, start_tail = Signal(addr_bits), Signal(addr_bits)
        start_nonempty = Signal()
        select = self.start_select
        m.d.sync += [start_head.eq(one_hot_select(select, head)),
                     start_tail.eq(one_hot_select(select, tail)),
                     start_nonempty.eq(one_hot_select(select, nonempty))]
        m.d.comb += next_walk_end.eq(Mux(self.start, start_tail, walk_end))
        m.d.sync += [walk_end.eq(next_walk_end),
                     at_tail.eq(self.next_walk_address == next_walk_end)]
        # The address after the walk's: the word read ahead at it, or with ``two_ahead`` a
        # register (the bucket's second cluster at the start; at each step the word read
        # ahead at the walk's address, which is two clusters after it), so that a step's next
        # address comes from registers, not from the memory's output.
        if two_ahead:
            start_second = Signal(addr_bits)
            m.d.sync += start_second.eq(one_hot_select(select, second))
            successor = Signal(addr_bits, name="walk_successor")
            with m.If(self.start):
                m.d.sync += successor.eq(start_second)
            with m.Elif(self.step):
                m.d.sync += successor.eq(next_data)
        else:
            successor = next_data
        with m.If(self.start):
            m.d.comb += self.next_walk_address.eq(start_head)
            m.d.sync += self.walk_active.eq(start_nonempty)
        with m.If(self.step):
            with m.If(at_tail):
                m.d.sync += self.walk_active.eq(0)
            with m.Else():
                m.d.comb += self.next_walk_address.eq(successor)
        return m
