"""The HCU's issue stage: the jobs dispatched in one cycle reach their lanes in the next."""

from amaranth.hdl import Module, Signal
from amaranth.lib import data
from amaranth.lib.wiring import In, Out

from hw.component import ConfiguredComponent

__all__ = ["LaneIssue"]


class LaneIssue(ConfiguredComponent):
    """Registers the dispatched jobs for one cycle and loads them into their lanes.

    The table is read synchronously, so a job dispatched in cycle ``t`` reaches its lane in
    cycle ``t + 1``, together with the hash its bank read: job ``j`` takes the data of bank
    ``job_cluster[j] mod D``, XOR-ed with the hash of its token slot, and loads lane
    ``job_lane[j]`` (lanes given no job see ``load`` 0 and zero operands).

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
            "load": Out(lanes),
            "load_difference": Out(data.ArrayLayout(config.hash_bits, lanes)),
            "load_cluster": Out(data.ArrayLayout(config.cluster_id_bits, lanes)),
            "load_tag": Out(range(slots)),
        }

    def elaborate(self, platform):
        config = self._config
        width = config.hcu_dispatch_width
        bank_bits = width.bit_length() - 1
        m = Module()
        m.d.sync += self.load_tag.eq(self.job_slot)
        for job in range(width):
            load = Signal(name=f"load{job}")
            lane = Signal.like(self.job_lane[job], name=f"load{job}_lane")
            cluster = Signal(config.cluster_id_bits, name=f"load{job}_cluster")
            m.d.sync += [load.eq(self.job_valid[job]), lane.eq(self.job_lane[job]),
                         cluster.eq(self.job_cluster[job])]
            bank_data = self.bank_data[cluster[:bank_bits]] if width > 1 else self.bank_data[0]
            difference = Signal(config.hash_bits, name=f"load{job}_difference")
            m.d.comb += difference.eq(bank_data ^ self.token[self.load_tag])
            for index in range(config.hcu_lanes):
                with m.If(load & (lane == index)):
                    m.d.comb += [self.load[index].eq(1),
                                 self.load_difference[index].eq(difference),
                                 self.load_cluster[index].eq(cluster)]
        return m
