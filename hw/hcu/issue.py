"""The HCU's issue stages: the jobs dispatched in one cycle reach their lanes two cycles later."""

from amaranth.hdl import Array, Cat, Module, Signal
from amaranth.lib import data
from amaranth.lib.wiring import In, Out

from hw.component import ConfiguredComponent

__all__ = ["LaneIssue"]


class LaneIssue(ConfiguredComponent):
    """Carries the dispatched jobs through the table read to their lanes (two pipeline cycles).

    A job dispatched in cycle ``t`` reserves its lane in ``t`` (the lane learns it in ``t + 1``
    from ``reserved``, a register); the table banks
    read it synchronously at the clock edge ending ``t``. Per pipeline cycle:

    * ``t + 1`` (*read*): the job waits in the ``read_*`` registers while the banks' macros
      output the hashes, which are registered (``read_data``) before any logic uses them;
    * ``t + 2`` (*load*): job ``j`` takes the registered data of bank ``job_cluster[j] mod D``,
      XOR-ed with the hash of its token slot, and loads lane ``job_lane[j]`` (lanes given no
      job see ``load`` 0 and zero operands).

    Parameters
    ----------
    config : DREConfig
        Uses ``hash_bits``, ``hcu_lanes``, ``hcu_dispatch_width`` (D), ``hcu_tokens_in_flight``
        (K) and ``max_clusters``.

    Members
    -------
    job_valid : In(D)
    job_lane : In(ArrayLayout(range(hcu_lanes), D))
    job_cluster : In(ArrayLayout(cluster_id_bits, D))
    job_slot : In(range(K))
        This cycle's jobs (:class:`hw.hcu.Dispatcher`, :class:`hw.hcu.FreeLanePicker`).
    bank_data : In(ArrayLayout(hash_bits, D))
        The table banks' read data, for the jobs of the previous cycle.
    token : In(ArrayLayout(hash_bits, K))
        The hashes of the token slots (:class:`hw.hcu.TokenRing`).
    reserved : Out(hcu_lanes)
        Bit ``l``: lane ``l`` was given a job in the previous cycle (from the read stage's
        registers).
    read_valid : Out(1)
    read_slot : Out(range(K))
        A job dispatched in the previous cycle is in the read stage, and its token slot.
    load_valid : Out(1)
        A job dispatched two cycles before is in the load stage (its slot is ``load_tag``).
    load : Out(hcu_lanes)
        Bit ``l``: lane ``l`` starts a compare.
    load_difference : Out(ArrayLayout(hash_bits, hcu_lanes))
    load_cluster : Out(ArrayLayout(cluster_id_bits, hcu_lanes))
    load_tag : Out(range(K))
        The operands of each lane's compare (one token slot for all jobs of a cycle).

    Raises
    ------
    TypeError
        If ``config`` is not a :class:`DREConfig`.
    """

    def _members(self, config):
        lanes, width = config.hcu_lanes, config.hcu_dispatch_width
        slots = config.hcu_tokens_in_flight
        return {
            "job_valid": In(width),
            "job_lane": In(data.ArrayLayout(range(lanes), width)),
            "job_cluster": In(data.ArrayLayout(config.cluster_id_bits, width)),
            "job_slot": In(range(slots)),
            "bank_data": In(data.ArrayLayout(config.hash_bits, width)),
            "token": In(data.ArrayLayout(config.hash_bits, slots)),
            "reserved": Out(lanes),
            "read_valid": Out(1),
            "read_slot": Out(range(slots)),
            "load_valid": Out(1),
            "load": Out(lanes),
            "load_difference": Out(data.ArrayLayout(config.hash_bits, lanes)),
            "load_cluster": Out(data.ArrayLayout(config.cluster_id_bits, lanes)),
            "load_tag": Out(range(slots)),
        }

    @property
    def latency(self):
        """Cycles from a job's dispatch to its lane's ``load``."""
        return 2

    def elaborate(self, platform):
        config = self._config
        width = config.hcu_dispatch_width
        bank_bits = width.bit_length() - 1
        m = Module()
        # Cycle t + 1 (read): the job waits while the banks output their hashes.
        m.d.sync += [self.read_slot.eq(self.job_slot),
                     self.read_valid.eq(self.job_valid.any())]
        # Cycle t + 2 (load): the registered hashes, XOR-ed with the token's, reach the lanes.
        m.d.sync += [self.load_tag.eq(self.read_slot), self.load_valid.eq(self.read_valid)]
        read_data = []
        for bank in range(width):
            registered = Signal(config.hash_bits, name=f"read_data{bank}")
            m.d.sync += registered.eq(self.bank_data[bank])
            read_data.append(registered)
        read_data = Array(read_data)
        for job in range(width):
            read = Signal(name=f"read{job}")
            read_lane = Signal.like(self.job_lane[job], name=f"read{job}_lane")
            read_cluster = Signal(config.cluster_id_bits, name=f"read{job}_cluster")
            m.d.sync += [read.eq(self.job_valid[job]), read_lane.eq(self.job_lane[job]),
                         read_cluster.eq(self.job_cluster[job])]
            for index in range(config.hcu_lanes):
                with m.If(read & (read_lane == index)):
                    m.d.comb += self.reserved[index].eq(1)
            # The job's lane, one-hot, registered into the load stage: each lane's ``load``
            # and operand select come from flip-flops (no lane-number decode between the
            # load stage's registers and the 16 lanes).
            load_lanes = Signal(config.hcu_lanes, name=f"load{job}_lanes")
            cluster = Signal(config.cluster_id_bits, name=f"load{job}_cluster")
            m.d.sync += [load_lanes.eq(Cat(read & (read_lane == index)
                                           for index in range(config.hcu_lanes))),
                         cluster.eq(read_cluster)]
            bank_data = read_data[cluster[:bank_bits]] if width > 1 else read_data[0]
            difference = Signal(config.hash_bits, name=f"load{job}_difference")
            m.d.comb += difference.eq(bank_data ^ self.token[self.load_tag])
            for index in range(config.hcu_lanes):
                with m.If(load_lanes[index]):
                    m.d.comb += [self.load[index].eq(1),
                                 self.load_difference[index].eq(difference),
                                 self.load_cluster[index].eq(cluster)]
        return m
