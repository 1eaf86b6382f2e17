"""Payload layouts of the HCU's streams."""

from amaranth.hdl import unsigned
from amaranth.lib import data

from hw.context_port import ContextOp

__all__ = ["token_layout", "assignment_layout", "context_command_layout"]


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


def context_command_layout():
    """Payload of the HCU's ``ctx`` stream: ``op``, a :class:`hw.context_port.ContextOp`."""
    return data.StructLayout({"op": ContextOp})
