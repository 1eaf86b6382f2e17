"""Registered trees for the WTU's wide sums, and the latencies they give (one adder per cycle).

A 44-bit adder of the edge preset is about 15 gate levels in SG13G2 (a Brent-Kung carry tree),
so a 6.0 ns cycle holds one adder level and its register, not a chain: every wide sum of the
decision is a tree with a register after each level. The latencies are functions of the
configuration, used by the parts, the unit and the sequencer (and written independently in the
twin's cycle model, :mod:`model.twins.wtu`).
"""

from amaranth.hdl import Signal

__all__ = ["LANE_STAGES", "tree_levels", "registered_tree", "registered_suffix_sums",
           "threshold_terms", "threshold_latency", "suffix_latency", "decision_cycles",
           "decide_cycles"]

#: Pipeline registers of a lane between its cluster (a load beat or a walk step, with the
#: memories' words) and the bucket masses, lists and statistics: the words, then the product.
LANE_STAGES = 2


def tree_levels(count):
    """Levels of a balanced binary tree over ``count`` values: ``ceil(log2(count))``."""
    return max(0, (count - 1).bit_length())


def registered_tree(m, values, combine, width, name):
    """Reduce ``values`` pairwise with a register after each level (sync domain of ``m``).

    Returns the result signal (``width`` bits), valid :func:`tree_levels` ``(len(values))``
    cycles after the values (the values themselves when there is one).
    """
    level = 0
    values = list(values)
    while len(values) > 1:
        registered = []
        for i in range(0, len(values), 2):
            value = Signal(width, name=f"{name}_l{level}_{i // 2}")
            pair = values[i:i + 2]
            m.d.sync += value.eq(combine(*pair) if len(pair) == 2 else pair[0])
            registered.append(value)
        values, level = registered, level + 1
    result = Signal(width, name=name)
    m.d.comb += result.eq(values[0])
    return result


def registered_suffix_sums(m, values, width, name):
    """Suffix sums ``sum_{k >= j} values[k]`` of every ``j`` (Kogge-Stone, one register per level).

    Returns the list of sums (``width`` bits each, sums truncated to ``width``: the caller
    guarantees they fit), valid :func:`tree_levels` ``(len(values))`` cycles after the values.
    """
    sums, distance, level = list(values), 1, 0
    while distance < len(sums):
        registered = []
        for j, value in enumerate(sums):
            total = Signal(width, name=f"{name}_l{level}_{j}")
            if j + distance < len(sums):
                m.d.sync += total.eq((value + sums[j + distance])[:width])
            else:
                m.d.sync += total.eq(value)
            registered.append(total)
        sums, distance, level = registered, distance * 2, level + 1
    return sums


def threshold_terms(config):
    """The shifts of ``W`` that add up to ``W x wicsum_ratio_code`` (its set bits)."""
    code = config.wicsum_ratio_code
    return [bit for bit in range(code.bit_length()) if code >> bit & 1]


def threshold_latency(config):
    """Cycles from a stable ``W`` to its threshold: a registered tree over the shifted ``W``s
    of :func:`threshold_terms` and the rounding constant."""
    return tree_levels(len(threshold_terms(config)) + 1)


def suffix_latency(config):
    """Cycles from stable bucket masses to their suffix sums: ``ceil(log2(wtu_buckets))``."""
    return tree_levels(config.wtu_buckets)


def decision_cycles(config):
    """Cycles of one decision (:class:`hw.wtu.Decision`), from masses and ``W`` stable at its start.

    The suffix sums take :func:`suffix_latency` cycles; the threshold
    :func:`threshold_latency` and the rest of it ``threshold - mass_above`` one more (at least
    1); the comparisons of every bucket one more; the crossing bucket is taken in the cycle
    after: ``max(suffix, max(threshold, 1) + 1) + 2``.
    """
    return max(suffix_latency(config), max(threshold_latency(config), 1) + 1) + 2


def decide_cycles(config):
    """Cycles of the ``DECIDE`` state: the lanes' :data:`LANE_STAGES` drain (the last clusters
    reach the masses), then the decision (:func:`decision_cycles`)."""
    return LANE_STAGES + decision_cycles(config)
