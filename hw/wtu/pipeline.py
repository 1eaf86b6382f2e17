"""Registered trees for the WTU's wide sums, and the latencies they give (one adder per cycle).

A 44-bit adder of the edge preset takes 5.31 ns in SG13G2 typical even as a prefix adder
(:mod:`hw.wtu.fast_adders`; 8.13 ns when the flow may map it as it likes), so a 6.0 ns cycle
holds one adder level and its register, not a chain: every wide sum of the decision is a tree
with a register after each level, a lane's product ``s x n`` is cut into partial products
added by such a tree, and the masses of a beat are accumulated in carry-save form over two
cycles (:func:`registered_accumulation`). The latencies are functions of the
configuration, used by the parts, the unit and the sequencer (and written independently in the
twin's cycle model, :mod:`model.twins.wtu`).
"""

from amaranth.hdl import Cat, Const, Signal, Value

from hw.wtu.fast_adders import carry_save, fast_add, fast_add_carry

__all__ = ["PRODUCT_SLICE_BITS", "ACCUMULATE_GROUP", "ACCUMULATE_LATENCY", "PRODUCT_COPIES",
           "product_copies", "buckets_per_copy", "product_latency",
           "lane_stages", "delayed", "registered_accumulation",
           "registered_product", "tree_levels", "registered_tree", "registered_split_tree",
           "registered_suffix_sums", "suffix_tree_latency",
           "threshold_terms", "threshold_in_halves", "threshold_latency", "suffix_latency",
           "decision_cycles", "decide_cycles", "broadcast_stages", "gather_stages",
           "queue_depth", "aggregate_queue_depth"]

#: Bits of the count in one partial product of a lane's ``s x n`` (a registered 16 x 4-bit
#: product measured 4.19 ns in SG13G2 typical with the project's flow, a 16 x 8 one 5.45 ns,
#: a 16 x 16 one 7.55 ns: too slow for a 6.0 ns cycle).
PRODUCT_SLICE_BITS = 4

#: Operands a running carry-save sum compresses together in its first cycle
#: (:func:`registered_accumulation`): 8 operands are four levels of full adders. The edge
#: preset's 16 products and the saved pair in one cycle (six levels) placed and routed at
#: 57 MHz estimated on the ECP5-85F; in groups of 8, then with the saved pair, at 114.92 MHz.
ACCUMULATE_GROUP = 8

#: Cycles from the operands of a :func:`registered_accumulation` to its sum counting them: the
#: groups' carry-save pairs, the saved pair, the resolved sum.
ACCUMULATE_LATENCY = 3

#: On an FPGA, the registers that hold a lane's product for the bucket masses
#: (:func:`registered_product`, :func:`product_copies`): one per group of buckets. With one
#: register, each product bit drove the first carry-save groups of all sixteen buckets of the
#: edge preset, spread over the die, and every routed run of the ECP5-85F ended there (a lane's
#: product over 3.5 to 4.6 ns of wire into a bucket's group: 92.55 to 97.36 MHz); with four,
#: each copy is placed between its lane and its four buckets.
PRODUCT_COPIES = 4


def product_copies(config):
    """Registers of a lane's product the bucket masses take, on an FPGA: :data:`PRODUCT_COPIES`,
    at most one per bucket; bucket ``k`` takes copy ``k // buckets_per_copy(config)``."""
    return min(PRODUCT_COPIES, config.wtu_buckets)


def buckets_per_copy(config):
    """Buckets that take one copy of a lane's product (:func:`product_copies`): copy ``g``
    serves buckets ``g * B`` to ``(g + 1) * B - 1``."""
    return config.wtu_buckets // product_copies(config)


def product_latency(config):
    """Cycles of a lane's product ``s x n`` (:func:`registered_product`): the partial products
    of ``ceil(count_bits / PRODUCT_SLICE_BITS)`` slices of the count, then their registered
    adder tree: ``1 + ceil(log2(slices))`` (3 for the presets' 16-bit counts)."""
    slices = -(-config.count_bits // PRODUCT_SLICE_BITS)
    return 1 + tree_levels(slices)


def lane_stages(config):
    """Registers from a lane's cluster (a load beat or a walk step, with the memories' words) to
    the stable bucket masses and ``W``: the words (1), the product (:func:`product_latency`),
    the carry-save sums (:data:`ACCUMULATE_LATENCY` - 1: the groups' pairs, the saved pair).
    The resolved masses follow one cycle later, when the decision starts."""
    return 1 + product_latency(config) + ACCUMULATE_LATENCY - 1


def delayed(m, value, cycles, name):
    """``value`` through ``cycles`` registers (``name_1``, ``name_2``, ...); returns the last."""
    for stage in range(cycles):
        registered = Signal.like(value, name=f"{name}_{stage + 1}")
        m.d.sync += registered.eq(value)
        value = registered
    return value


def registered_accumulation(m, operands, clear, enable, width, name, *, chain=False):
    """A running sum of ``operands`` over the cycles with ``enable``, kept in carry-save form.

    Pipeline, one line per cycle (cycle 0: the operands, ``clear`` and ``enable``):

    * cycle 0: the operands compressed in groups of :data:`ACCUMULATE_GROUP` into carry-save
      pairs (:func:`hw.wtu.fast_adders.carry_save`), registered with ``clear`` and ``enable``;
    * cycle 1: the pairs and the saved pair compressed into the new saved pair, and the new
      pair's low half resolved (a prefix adder, :func:`hw.wtu.fast_adders.fast_add_carry`;
      the plain operator with ``chain``) with its carry out; ``clear`` sets them to 0 (and
      wins over ``enable``), without either they hold;
    * cycle 2: the saved pair's high half resolved with that carry in, and the result (the
      low half resolved, the high half) registered.

    No cycle resolves the whole width: the edge preset's 44-bit resolution in one cycle was
    the WTU's critical path in SG13G2 typical (5.8 to 6.1 ns, the mapper rebuilding the prefix
    network as a chain).

    Returns the result (``width`` bits, the sum modulo ``2**width``): it counts the operands
    of a cycle, and shows a ``clear``, :data:`ACCUMULATE_LATENCY` cycles after it.
    """
    operands = list(operands)
    pairs = []
    for group in range(0, len(operands), ACCUMULATE_GROUP):
        for half, value in enumerate(carry_save(m, operands[group:group + ACCUMULATE_GROUP],
                                                width, f"{name}_g{group}")):
            pair = Signal(width, name=f"{name}_g{group}_{half}")
            m.d.sync += pair.eq(value)
            pairs.append(pair)
    clear_pairs, enable_pairs = Signal(name=f"{name}_clear"), Signal(name=f"{name}_enable")
    m.d.sync += [clear_pairs.eq(clear), enable_pairs.eq(enable)]
    saved_sum, saved_carry = Signal(width, name=f"{name}_sum"), Signal(width, name=f"{name}_carry")
    new_sum, new_carry = carry_save(m, pairs + [saved_sum, saved_carry], width, f"{name}_csa")
    low = width // 2
    low_sum, low_carry = Signal(low, name=f"{name}_low"), Signal(name=f"{name}_low_carry")
    new_low_sum, new_low_carry = fast_add_carry(m, new_sum[:low], new_carry[:low], 0,
                                                f"{name}_low_add", low, chain=chain)
    with m.If(clear_pairs):
        m.d.sync += [saved_sum.eq(0), saved_carry.eq(0), low_sum.eq(0), low_carry.eq(0)]
    with m.Elif(enable_pairs):
        m.d.sync += [saved_sum.eq(new_sum), saved_carry.eq(new_carry),
                     low_sum.eq(new_low_sum), low_carry.eq(new_low_carry)]
    high_sum, _ = fast_add_carry(m, saved_sum[low:], saved_carry[low:], low_carry,
                                 f"{name}_high_add", width - low, chain=chain)
    result = Signal(width, name=name)
    m.d.sync += result.eq(Cat(low_sum, high_sum))
    return result


def registered_product(m, a, b, width, name, *, chain=False, copy_enables=()):
    """``a x b`` (``width`` bits) after :func:`product_latency` cycles: the partial products of
    ``a`` with :data:`PRODUCT_SLICE_BITS`-bit slices of ``b`` registered, then added by a
    registered tree of prefix adders.

    With ``chain`` (an FPGA, :func:`hw.wtu.fast_adders.carry_chains`) the product is one
    multiplication (a multiplier block: an ECP5 MULT18X18D takes 18 x 18 bits) registered,
    then delayed to the same latency.

    Returns
    -------
    product : Value
    copies : list of Value
        One per value of ``copy_enables``. With ``chain``, a register of its own beside the
        product's last one, written like it only in the cycles that enable is set (given a
        cycle before the product shows: ``latency - 1`` cycles after the operands), and
        holding its value otherwise; the different enables keep Yosys from merging the
        copies. Without ``chain``, the product itself. Either way a copy equals the product
        in every cycle whose cycle before had its enable set.
    """
    latency = 1 + tree_levels(-(-len(b) // PRODUCT_SLICE_BITS))
    if chain:
        before_last = a * b
        if latency > 1:
            block = Signal(width, name=f"{name}_block")
            m.d.sync += block.eq(before_last)
            before_last = delayed(m, block, latency - 2, name)
        result = Signal(width, name=name)
        m.d.sync += result.eq(before_last)
        copies = []
        for index, enable in enumerate(copy_enables):
            copy = Signal(width, name=f"{name}_copy{index}")
            with m.If(enable):
                m.d.sync += copy.eq(before_last)
            copies.append(copy)
        return result, copies
    partials = []
    for index, low in enumerate(range(0, len(b), PRODUCT_SLICE_BITS)):
        partial = Signal(width, name=f"{name}_p{index}")
        m.d.sync += partial.eq((a * b[low:low + PRODUCT_SLICE_BITS]) << low)
        partials.append(partial)
    product = registered_tree(m, partials,
                              lambda x, y, sum_name: fast_add(m, x, y, sum_name, width), width,
                              name)
    return product, [product for _ in copy_enables]


def tree_levels(count):
    """Levels of a balanced binary tree over ``count`` values: ``ceil(log2(count))``."""
    return max(0, (count - 1).bit_length())


def registered_tree(m, values, combine, width, name):
    """Reduce ``values`` pairwise with a register after each level (sync domain of ``m``);
    ``combine(a, b, name)`` gets a name for the signals it adds to ``m``.

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
            m.d.sync += value.eq(combine(*pair, f"{value.name}_c") if len(pair) == 2
                                 else pair[0])
            registered.append(value)
        values, level = registered, level + 1
    result = Signal(width, name=name)
    m.d.comb += result.eq(values[0])
    return result


def registered_suffix_sums(m, values, width, name, *, chain=False):
    """Suffix sums ``sum_{k >= j} values[k]`` of every ``j`` (Kogge-Stone, skewed halves).

    Each level of the tree adds at distance ``d = 2**level``. Its adders are cut into a low
    half (``ceil(width / 2)`` bits) and a high half with a registered carry between them, as a
    skewed pipeline (one adder of half the width per cycle; a whole 44-bit adder per cycle
    measured 6.08 ns on the edge preset), with ``L = tree_levels(len(values))``:

    * cycle ``level`` (0 to ``L - 1``): the low halves of the level and their carries out,
      registered (``name_l<level>_<j>_low``, ``name_l<level>_<j>_carry``);
    * cycle ``level + 1``: the high halves of the level, from the high halves of the level
      before (registered in this cycle's start) and the carry, registered
      (``name_l<level>_<j>_high``).

    Returns the list of sums (``width`` bits each, sums truncated to ``width``: the caller
    guarantees they fit; prefix adders, :mod:`hw.wtu.fast_adders`, or carry chains with
    ``chain``), valid
    :func:`suffix_tree_latency` ``(len(values))`` cycles after the values when the values stay
    unchanged.
    """
    low_bits = (width + 1) // 2
    words = [Value.cast(value).as_unsigned() for value in values]
    words = [Cat(word, Const(0, max(0, width - len(word))))[:width] for word in words]
    lows = [word[:low_bits] for word in words]
    highs = [word[low_bits:] for word in words]
    count, distance, level = len(words), 1, 0
    while distance < count:
        next_lows, next_highs = [], []
        for j in range(count):
            stage = f"{name}_l{level}_{j}"
            low = Signal(low_bits, name=f"{stage}_low")
            high = Signal(width - low_bits, name=f"{stage}_high")
            if j + distance < count:
                _split_add(m, stage, (lows[j], lows[j + distance]),
                           (highs[j], highs[j + distance]), low, high, chain)
            else:
                m.d.sync += [low.eq(lows[j]), high.eq(highs[j])]
            next_lows.append(low)
            next_highs.append(high)
        lows, highs, distance, level = next_lows, next_highs, distance * 2, level + 1
    sums = []
    for j in range(count):
        total = Signal(width, name=f"{name}_{j}")
        m.d.comb += total.eq(Cat(lows[j], highs[j]))
        sums.append(total)
    return sums


def _split_add(m, stage, low_pair, high_pair, low, high, chain):
    """One adder in halves: ``low`` gets the sum of ``low_pair`` and its carry goes into a
    register (``stage_carry``); ``high`` gets the sum of ``high_pair`` and that register
    (the previous cycle's carry: the high halves run a cycle behind the low ones)."""
    carry = Signal(name=f"{stage}_carry")
    low_sum, low_carry = fast_add_carry(m, *low_pair, 0, f"{stage}_add_low", len(low),
                                        chain=chain)
    high_sum, _ = fast_add_carry(m, *high_pair, carry, f"{stage}_add_high", len(high),
                                 chain=chain)
    m.d.sync += [low.eq(low_sum), carry.eq(low_carry), high.eq(high_sum)]


def registered_split_tree(m, values, width, name, *, chain=False):
    """``sum(values) mod 2**width`` by a registered binary adder tree whose adders are cut into
    halves with a registered carry, as :func:`registered_suffix_sums` cuts its own: each
    level's low halves (``ceil(width / 2)`` bits) in one cycle, its high halves in the next.

    Returns the sum (``width`` bits), valid :func:`suffix_tree_latency` ``(len(values))``
    cycles after the values when the values stay unchanged (the values themselves when
    there is one).
    """
    low_bits = (width + 1) // 2
    words = [Value.cast(value).as_unsigned() for value in values]
    words = [Cat(word, Const(0, max(0, width - len(word))))[:width] for word in words]
    lows = [word[:low_bits] for word in words]
    highs = [word[low_bits:] for word in words]
    level = 0
    while len(lows) > 1:
        next_lows, next_highs = [], []
        for i in range(0, len(lows), 2):
            stage = f"{name}_l{level}_{i // 2}"
            low = Signal(low_bits, name=f"{stage}_low")
            high = Signal(width - low_bits, name=f"{stage}_high")
            if i + 1 < len(lows):
                _split_add(m, stage, lows[i:i + 2], highs[i:i + 2], low, high, chain)
            else:
                m.d.sync += [low.eq(lows[i]), high.eq(highs[i])]
            next_lows.append(low)
            next_highs.append(high)
        lows, highs, level = next_lows, next_highs, level + 1
    total = Signal(width, name=name)
    m.d.comb += total.eq(Cat(lows[0], highs[0]))
    return total


def suffix_tree_latency(count):
    """Cycles from stable values to their suffix sums (:func:`registered_suffix_sums`):
    ``tree_levels(count)`` levels of low halves, and one more for the last level's high
    halves (0 for a single value)."""
    levels = tree_levels(count)
    return levels + 1 if levels else 0


def threshold_terms(config):
    """The shifts of ``W`` that add up to ``W x wicsum_ratio_code`` (its set bits)."""
    code = config.wicsum_ratio_code
    return [bit for bit in range(code.bit_length()) if code >> bit & 1]


def threshold_in_halves(config):
    """Whether the threshold's adders are cut into halves (:func:`registered_split_tree`):
    where that costs no cycle, i.e. where the threshold and ``threshold - mass_above``
    (``suffix_tree_latency + 1`` cycles) are still ready no later than the suffix masses
    (:func:`suffix_latency`; the presets with 16 buckets). A whole 53-bit adder in a cycle
    measured 6.30 ns in SG13G2 typical inside the edge DRE top (the mapper made it a ripple
    of about 30 cells); where the halves would lengthen the decision (4 buckets: ``tiny``)
    the adders stay whole, and the decision's cycle count is the same either way."""
    return suffix_tree_latency(len(threshold_terms(config)) + 1) + 1 <= suffix_latency(config)


def threshold_latency(config):
    """Cycles from a stable ``W`` to its threshold: a registered tree over the shifted ``W``s
    of :func:`threshold_terms` and the rounding constant, one adder level per cycle, or with
    its adders in halves (:func:`threshold_in_halves`) one cycle more."""
    count = len(threshold_terms(config)) + 1
    return suffix_tree_latency(count) if threshold_in_halves(config) else tree_levels(count)


def suffix_latency(config):
    """Cycles from stable bucket masses to their suffix sums: ``ceil(log2(wtu_buckets)) + 1``
    (:func:`suffix_tree_latency`: the high halves of the last level a cycle after its low
    halves)."""
    return suffix_tree_latency(config.wtu_buckets)


def decision_cycles(config):
    """Cycles of one decision (:class:`hw.wtu.Decision`), from masses and ``W`` stable at its start.

    The suffix sums take :func:`suffix_latency` cycles (``ceil(log2 wtu_buckets) + 1``); the threshold
    :func:`threshold_latency` and the rest of it ``threshold - mass_above`` one more (at least
    1); the comparisons of every bucket one more; the crossing bucket is registered in the
    cycle after and taken in the next: ``max(suffix, max(threshold, 1) + 1) + 3``.
    """
    return max(suffix_latency(config), max(threshold_latency(config), 1) + 1) + 3


def broadcast_stages(config):
    """Registers between the sequencer (and the decision) and each lane: every strobe, field
    and beat a lane takes reaches it this many cycles later (:mod:`hw.wtu.lane_links`): one
    shared register, then one of the lane's own, so that no wire across the die carries logic
    on either side (2)."""
    return 2


def gather_stages(config):
    """Registers between what each lane returns (``walk_done``, the row-mask bit, the
    aggregate bit and max score) and the part that takes it: one of the lane's own, then one
    shared (2)."""
    return 2


def queue_depth(config):
    """Entries of the queues the lanes fill ahead of the ``row_mask`` stream and of the
    aggregate stream: the round trip of a credit, from a beat's issue through the lanes and
    back (:func:`broadcast_stages` + :func:`gather_stages`), the queue's write and a credit
    returned, so that an always-ready consumer is never kept waiting."""
    return broadcast_stages(config) + gather_stages(config) + 2


def aggregate_queue_depth(config):
    """Entries of the queue ahead of the aggregate stream: :func:`queue_depth` and one more,
    because a chunk's credit comes back a cycle after the emitter takes the chunk's words from
    the queue (from a register: the take does not reach the credit counter in its own
    cycle)."""
    return queue_depth(config) + 1


def decide_cycles(config):
    """Cycles of the ``DECIDE`` state: the lanes' inputs (:func:`broadcast_stages`) and
    :func:`lane_stages` drain (the last clusters reach the masses and ``W``), then the decision
    (:func:`decision_cycles`)."""
    return broadcast_stages(config) + lane_stages(config) + decision_cycles(config)
