"""Small combinational helpers of the HCU: ring-index sums and the argmin order."""

from amaranth.hdl import Mux

__all__ = ["modulo_sum", "better"]


def modulo_sum(left, right, modulus):
    """``(left + right) mod modulus`` for operands below ``modulus`` (an unsigned value)."""
    if modulus == 1:
        return 0
    total = left + right
    return Mux(total >= modulus, total - modulus, total).as_unsigned()


def better(distance, cluster, best_distance, best_cluster):
    """``(distance, cluster)`` is before ``(best_distance, best_cluster)`` in argmin order."""
    return (distance < best_distance) | ((distance == best_distance) & (cluster < best_cluster))
