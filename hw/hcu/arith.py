"""Small combinational helpers of the HCU: ring-index sums, the argmin order, late selection."""

import functools
import operator

from amaranth.hdl import Mux

__all__ = ["modulo_sum", "better", "select"]


def modulo_sum(left, right, modulus):
    """``(left + right) mod modulus`` for operands below ``modulus`` (an unsigned value)."""
    if modulus == 1:
        return 0
    total = left + right
    return Mux(total >= modulus, total - modulus, total).as_unsigned()


def better(distance, cluster, best_distance, best_cluster):
    """``(distance, cluster)`` is before ``(best_distance, best_cluster)`` in argmin order."""
    return (distance < best_distance) | ((distance == best_distance) & (cluster < best_cluster))


def select(choices):
    """The value of the one choice whose condition holds, from ``(condition, value)`` pairs.

    The conditions must be mutually exclusive and one must hold. Each value is gated by its
    condition and the results OR-ed (a flat AND-OR, no priority chain), so values made
    beforehand from registers pass a single selection after the cycle's late conditions.
    """
    return functools.reduce(operator.or_, (Mux(condition, value, 0)
                                           for condition, value in choices))
