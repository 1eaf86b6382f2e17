"""Balanced trees over a vector of bits: the lowest / highest set bit and "at most one set".

Written as a loop of ``m.If`` (the last true branch wins), a priority encoder over ``n`` bits is
a chain of ``n`` multiplexers, and a test after it ("no bit left once the lowest is cleared")
adds its depth to the chain's. These functions build the same functions as trees of depth
``log2(n)``: each node combines the results of its two halves, so the logic depth grows with the
logarithm of the width on an FPGA (LUT levels) and in standard cells (gate levels) alike.
"""

from amaranth.hdl import Cat, Const, Mux

__all__ = ["lowest_set", "highest_set", "at_most_one_set", "clear_lowest_set", "highest_one_hot",
           "one_hot_select"]


def _padded(bits):
    """The bits of ``bits`` as a list, padded with zeros to a power-of-two length."""
    items = [bits[i] for i in range(len(bits))]
    size = 1
    while size < len(items):
        size *= 2
    return items + [Const(0, 1)] * (size - len(items))


def _set_bit_tree(items, prefer_high):
    """(any bit set, index of the preferred set bit) of ``items`` (power-of-two length)."""
    if len(items) == 1:
        return items[0], Const(0, 0)
    half = len(items) // 2
    low_any, low_index = _set_bit_tree(items[:half], prefer_high)
    high_any, high_index = _set_bit_tree(items[half:], prefer_high)
    take_high = high_any if prefer_high else ~low_any & high_any
    index = Mux(take_high, Cat(high_index, Const(1, 1)), Cat(low_index, Const(0, 1)))
    return low_any | high_any, index


def lowest_set(bits):
    """The index of the lowest set bit of ``bits`` (0 when none is set), as a balanced tree.

    Parameters
    ----------
    bits : Value
        The bit vector (any width of at least 1).

    Returns
    -------
    Value
        ``ceil(log2(len(bits)))`` bits wide (0 bits for a one-bit vector).
    """
    return _set_bit_tree(_padded(bits), prefer_high=False)[1]


def highest_set(bits):
    """The index of the highest set bit of ``bits`` (0 when none is set), as a balanced tree.

    Parameters
    ----------
    bits : Value
        The bit vector (any width of at least 1).

    Returns
    -------
    Value
        ``ceil(log2(len(bits)))`` bits wide (0 bits for a one-bit vector).
    """
    return _set_bit_tree(_padded(bits), prefer_high=True)[1]


def _count_tree(items):
    """(at least one set, at least two set) of ``items``."""
    if len(items) == 1:
        return items[0], Const(0, 1)
    half = len(items) // 2
    low_any, low_many = _count_tree(items[:half])
    high_any, high_many = _count_tree(items[half:])
    return low_any | high_any, low_many | high_many | (low_any & high_any)


def at_most_one_set(bits):
    """1 when at most one bit of ``bits`` is set, as a balanced tree (no priority chain).

    Parameters
    ----------
    bits : Value
        The bit vector (any width of at least 1).

    Returns
    -------
    Value
        One bit.
    """
    return ~_count_tree(_padded(bits))[1]


def clear_lowest_set(bits):
    """``bits`` with its lowest set bit cleared, from a prefix OR of depth ``log2(n)``.

    Bit ``i`` stays set when some bit below it is set (Sklansky's prefix network over OR).

    Parameters
    ----------
    bits : Value
        The bit vector (any width of at least 1).

    Returns
    -------
    Value
        ``len(bits)`` bits wide.
    """
    items = [bits[i] for i in range(len(bits))]
    below = [Const(0, 1)] + items[:-1]  # below[i]: the OR of bits[:i], built in place
    span = 1
    while span < len(below):
        for i in range(len(below)):
            if (i // span) % 2 == 1:
                below[i] = below[i] | below[(i // span) * span - 1]
        span *= 2
    return Cat(*[items[i] & below[i] for i in range(len(items))])


def highest_one_hot(bits):
    """The highest set bit of ``bits`` alone (0 when none is set), from a prefix OR.

    Bit ``i`` is set when ``bits[i]`` is and no bit above it is (:func:`clear_lowest_set` of the
    reversed vector marks the bits with a set bit above them).

    Parameters
    ----------
    bits : Value
        The bit vector (any width of at least 1).

    Returns
    -------
    Value
        ``len(bits)`` bits wide.
    """
    width = len(bits)
    reversed_bits = Cat(*[bits[width - 1 - i] for i in range(width)])
    above = clear_lowest_set(reversed_bits)
    return Cat(*[bits[i] & ~above[width - 1 - i] for i in range(width)])


def one_hot_select(one_hot, values):
    """The OR of the ``values`` whose bit of ``one_hot`` is set: a flat AND-OR, no priority.

    With at most one bit set, this is the value of that bit (0 when none is); the OR over the
    values is a balanced tree of depth ``log2(len(values))``.

    Parameters
    ----------
    one_hot : Value
        One bit per value.
    values : list of Value
        The candidates, of equal width.

    Returns
    -------
    Value
        The selected value.
    """
    terms = [Mux(one_hot[i], values[i], 0) for i in range(len(values))]
    while len(terms) > 1:
        terms = [terms[i] | terms[i + 1] if i + 1 < len(terms) else terms[i]
                 for i in range(0, len(terms), 2)]
    return terms[0]
