"""Bit-exact numpy twin of the KV management unit (KVMU): offload moves, counts, fetch descriptors.

The KVMU keeps the layout of one (layer, KV head) context of the streaming cache. Frames arrive
in order; per frame (one *problem*) it offloads the tokens that leave the recent window to the
external store, takes the frame's cluster assignments from the HCU, hands the WTU the token count
of every cluster, and turns the WTU's selected clusters into fetch descriptors of the store. This
module is the scoreboard of the RTL (:class:`hw.kvmu.KVManagementUnit`): outputs and cycle
counts per problem are equal. The design rationale (why pages) is in :mod:`hw.kvmu`.

Contract
--------
Store
    ``2**kv_token_bits`` token slots, in pages of ``P = kvmu_page_tokens`` slots; page ``g``
    holds the slots ``g * P .. g * P + P - 1``. Pages are handed out by a bump pointer from page
    0 upwards and never freed until a restart.
Context state
    ``past`` (tokens given since the restart), ``clusters`` (clusters opened), per cluster
    ``head``, ``tail`` (first and last page of its list), ``fill`` (0: no page yet; else
    1..P, the tokens in the tail page), ``count`` (members so far, saturated at ``max_count``);
    per page ``next`` (the following page of the same cluster; 0 for a cluster's tail page, whose
    entry the KVMU clears before it hands the page out). A cluster opens with ``head = tail =
    0``. A restart (the ``restart`` flag of a problem, always on a stream's first problem)
    empties the context.
Problem (frame) ``f`` with ``n`` new tokens, ``1 <= n <= max_frame_tokens``
    1. *Offload*: with ``W = recent_window``, the tokens ``t`` in
       ``[max(0, past_prev - W), max(0, past - W))`` (``past_prev``: ``past`` before the
       previous problem; in order) leave the window. Token ``t`` of cluster ``c`` takes the
       slot ``fill[c]`` of the tail page, or slot 0 of a new page (``next`` pointer bumped,
       ``head`` set on the cluster's first page, the old tail's ``next`` linked) when ``fill``
       is 0 or ``P``; its move goes from window slot ``src = t mod W`` (0 when ``W = 0``) to
       address ``dst = page * P + slot``. A move extends the previous one of the problem when
       ``src = prev_src + prev_len`` and ``dst = prev_dst + prev_len`` (no wrap-around).
       When no page is left (``next == 2**kv_token_bits / P``) the token is not stored: its
       move is flagged ``dropped`` (``dst = 0``; dropped moves merge with dropped moves when
       ``src`` continues) and ``store_full`` is set until the next restart (nothing is lost
       silently; the decoding of the layout skips dropped tokens).
    2. *Assign*: for each new token (cluster ``c``, ``new`` flag) in order: a new cluster (``c``
       equal to ``clusters``; ``clusters`` must stay at most ``max_clusters``) starts with
       ``count = 1``, ``fill = 0``; an old one (``c < clusters``) has ``count = min(count + 1,
       max_count)``. ``past`` grows by ``n``.
    3. *Counts*: ``count[0 .. clusters - 1]``.
    4. *Fetch*: for each selected cluster (ascending ids below ``clusters``) with ``fill > 0``,
       its pages from ``head`` to ``tail``: the range ``(page * P, P)``, the tail's ``(page *
       P, fill)``; a range that starts where the previous descriptor of the problem ends extends
       it (the merger of :mod:`model.twins.retrieval_buffer`).
    The fetched tokens are then exactly the offloaded members of the selected clusters,
    ``{t < past - W: cluster(t) selected}`` (unless ``store_full``); resident ones are never
    fetched.
Context port
    A command beat with ``context`` = save or restore (instead of a problem) moves the context
    through the ``save`` and ``restore`` streams of context words (:mod:`model.twins.context`:
    32-bit words, items lowest bits first, the cycles of a save and of a restore). The image, in
    this order (:meth:`KVMUContext.save`):

    1. the header item (:func:`context_header_fields`): ``clusters`` (N), ``next_page`` (G'),
       ``window_tokens`` (T, the tokens given and not yet offloaded, at most ``recent_window +
       max_frame_tokens``), ``window_slot`` (the window slot of the next leaving token),
       ``store_full``;
    2. the N cluster-table words of the opened clusters, in id order, each an item of
       :func:`cluster_word_fields` (``head``, ``tail``, ``fill``, ``count``);
    3. the G' ``next`` pointers of the allocated pages, in page order;
    4. the clusters of the T window tokens, oldest first.

    Its length, ``h + N * w + G' + T`` words (``h``, ``w``: words of a header and of a table
    item), is known from the header; it grows with the context (opened clusters, allocated
    pages), never with the maximum. A restored image is refused (the context left empty, as
    after a restart) unless it is exactly that long, with no padding bit set, ``N <=
    max_clusters``, ``G' <=`` the store's pages, ``T <= recent_window + max_frame_tokens``,
    ``window_slot < max(recent_window, 1)``, every table word's ``fill <= P`` and, when ``fill
    > 0``, its ``head`` and ``tail`` below ``G'``, and every window token's cluster below N.
    A save followed by a restore, into the same KVMU or another, continues the stream exactly:
    same moves (a move's ``src`` is the token's window slot, kept by ``window_slot``), counts,
    descriptors and cycles.
Cycle model
    One problem reaches the KVMU as one ``cmd`` beat, ``n`` ``assign`` beats and
    ``beats = max(1, selected)`` ``selected`` beats (an empty selection is one beat flagged
    empty). With every input offered when the KVMU is ready for it and every output always
    ready, counting from the cycle of the ``cmd`` transfer to the cycle of the last ``fetch``
    transfer, both included::

        cycles = 1 + [d > 0] + 4 d + 1 + 3 n + (N + 1)
                 + sum_b (3 + pages_b + max(0, pages_b - 1)) + 2

    ``1``: the command (the ring read of the first leaving token issued); ``[d > 0]``: one cycle
    when tokens leave, the first one's ring read registered; ``4 d``: per leaving token, a
    cluster-table read (the next token's ring read issued), its word registered, its decision
    registered (page, address, whether it continues the pending move) and its update (the move
    merged); ``1``: the move flush; ``3 n``: per new token, a cluster-table read, its
    word registered, and its update; ``N + 1``: ``N = clusters`` counts read one per cycle
    through a one-cycle read latency; per selected beat ``b``: its transfer and cluster-table
    read, its word registered, the start of its walk, one cycle per page of its list
    (``pages_b = 0`` for a cluster with nothing offloaded and for the empty beat) and one per
    link followed from a page to the next (the page's ``next`` pointer is registered before it
    addresses the page memory, so a link takes two cycles); ``2``: the
    merger's flush cycle and output register. The next command is taken in the cycle after the
    last fetch step, while the last descriptor is still being flushed. Stalls change the timing,
    never the outputs.
Streams
    The beats of the block's streams are the codec's (:class:`sim.payloads.KVMUCodec`).
"""

import numpy as np

from model.npzio import ArraySpec, check_arrays
from model.twins.context import RestorableContext, words_of

__all__ = ["INPUTS", "OUTPUTS", "OFFLOAD_CYCLES", "FLUSH_CYCLES", "SELECT_CYCLES", "PAGE_CYCLES", "LINK_CYCLES",
           "context_header_fields",
           "cluster_word_fields", "page_bits", "KVMUContext", "check_stream", "select_cycles",
           "problem_cycles",
           "layout_from_moves", "fetched_tokens", "decoded_fetch_tokens", "collect", "run_stream",
           "run_arrays"]

#: Cycles per token leaving the window: its cluster-table read, its word registered, its
#: decision registered, its update.
OFFLOAD_CYCLES = 4
#: Cycles from the last fetch step to the last descriptor's transfer: the merger's flush cycle
#: and its output register.
FLUSH_CYCLES = 2
#: Cycles of a ``selected`` beat before its page walk: its transfer and cluster-table read, its
#: word registered, the start of its walk.
SELECT_CYCLES = 3
#: Cycles per page of a walk (the page handed to the merger).
PAGE_CYCLES = 1
#: Cycles per link of a walk followed from a page to the next (its registered ``next`` pointer
#: reads the next page's pointer).
LINK_CYCLES = 1

INPUTS = [
    ArraySpec("new_tokens", "u", 1, "per problem (frame): new tokens, 1 to max_frame_tokens"),
    ArraySpec("cluster", "u", 1, "per new token, problems in order: its cluster id (from the HCU)"),
    ArraySpec("new", "b", 1, "per new token: 1 when it opened its cluster (id = clusters so far)"),
    ArraySpec("selected_offsets", "u", 1,
              "problems + 1 offsets into selected_ids (0, ..., len(selected_ids))"),
    ArraySpec("selected_ids", "u", 1, "per problem: selected cluster ids, strictly ascending"),
    ArraySpec("restart", "b", 1,
              "per problem: empty the context first (implied on the first problem)", optional=True),
]

OUTPUTS = [
    ArraySpec("count_offsets", "u", 1, "problems + 1 offsets into counts"),
    ArraySpec("counts", "u", 1, "per problem: token count of clusters 0..N-1, <= max_count"),
    ArraySpec("move_offsets", "u", 1, "problems + 1 offsets into the move descriptors"),
    ArraySpec("move_src", "u", 1, "offload moves: first recent-window slot (token mod W)"),
    ArraySpec("move_dst", "u", 1, "offload moves: first store address"),
    ArraySpec("move_len", "u", 1, "offload moves: tokens"),
    ArraySpec("move_dropped", "b", 1, "offload moves: the tokens found no page (dst 0, not stored)"),
    ArraySpec("desc_offsets", "u", 1, "problems + 1 offsets into the fetch descriptors"),
    ArraySpec("desc_base", "u", 1, "fetch descriptors: first store address"),
    ArraySpec("desc_len", "u", 1, "fetch descriptors: tokens"),
    ArraySpec("fetch_offsets", "u", 1, "problems + 1 offsets into fetch_token"),
    ArraySpec("fetch_token", "u", 1,
              "per problem: ascending token indices the descriptors cover (decoded via the moves)"),
    ArraySpec("store_full", "b", 1, "per problem: a token found no page (sticky until restart)"),
    ArraySpec("cycles", "u", 1, "per problem: cycles from its command to its last descriptor"),
]


def _offsets_check(name, offsets, problems, total):
    offsets = np.asarray(offsets).astype(np.int64)
    if (offsets.shape != (problems + 1,) or offsets[0] != 0 or offsets[-1] != total
            or np.any(np.diff(offsets) < 0)):
        raise ValueError(f"{name} must be {problems + 1} non-decreasing offsets from 0 to "
                         f"{total}, not {offsets.tolist()}")
    return offsets


def check_stream(config, arrays):
    """Validate one stream of problems; return it as plain integer arrays and lists.

    Raises
    ------
    ValueError
        Naming the key, the problem and the allowed range.
    """
    new_tokens = np.asarray(arrays["new_tokens"]).astype(np.int64)
    problems = new_tokens.size
    if problems < 1 or new_tokens.ndim != 1:
        raise ValueError("new_tokens must be a 1-D array of at least one problem")
    if new_tokens.min() < 1 or new_tokens.max() > config.max_frame_tokens:
        raise ValueError(f"new_tokens must be from 1 to {config.max_frame_tokens} "
                         f"(max_frame_tokens), found {new_tokens.min()} to {new_tokens.max()}")
    cluster = np.asarray(arrays["cluster"]).astype(np.int64)
    new = np.asarray(arrays["new"]).astype(bool)
    tokens = int(new_tokens.sum())
    for name, array in (("cluster", cluster), ("new", new)):
        if array.shape != (tokens,):
            raise ValueError(f"{name} must hold one value per new token (the sum of "
                             f"new_tokens, {tokens}), not shape {array.shape}")
    restart = np.zeros(problems, dtype=bool)
    if arrays.get("restart") is not None:
        restart = np.asarray(arrays["restart"]).astype(bool)
        if restart.shape != (problems,):
            raise ValueError(f"restart must hold one flag per problem ({problems}), "
                             f"not shape {restart.shape}")
    restart = restart.copy()
    restart[0] = True
    selected_ids = np.asarray(arrays["selected_ids"]).astype(np.int64)
    offsets = _offsets_check("selected_offsets", arrays["selected_offsets"], problems,
                             selected_ids.size)
    clusters, token = 0, 0
    for problem in range(problems):
        clusters = 0 if restart[problem] else clusters
        for _ in range(new_tokens[problem]):
            c, opened = int(cluster[token]), bool(new[token])
            if opened and c != clusters:
                raise ValueError(f"cluster of token {token} is flagged new, so it must be "
                                 f"{clusters} (the clusters opened so far), not {c}")
            if not opened and not 0 <= c < clusters:
                raise ValueError(f"cluster of token {token} must be an opened cluster, 0 to "
                                 f"{clusters - 1}, not {c}")
            clusters += opened
            if clusters > config.max_clusters:
                raise ValueError(f"new opens cluster {clusters - 1} at token {token}, beyond "
                                 f"max_clusters {config.max_clusters}")
            token += 1
        ids = selected_ids[offsets[problem]:offsets[problem + 1]]
        if ids.size and (np.any(np.diff(ids) <= 0) or ids[0] < 0 or ids[-1] >= clusters):
            raise ValueError(f"selected_ids of problem {problem} must be strictly ascending "
                             f"cluster ids from 0 to {clusters - 1}, not {ids.tolist()}")
    return {"new_tokens": new_tokens, "cluster": cluster, "new": new, "restart": restart,
            "selected": [selected_ids[offsets[p]:offsets[p + 1]] for p in range(problems)]}


def select_cycles(pages):
    """Cycles from a ``selected`` beat's transfer to the cycle the KVMU is ready for the next
    one, ``SELECT_CYCLES + PAGE_CYCLES pages + LINK_CYCLES max(0, pages - 1)`` (``pages``
    walked for the beat)."""
    return SELECT_CYCLES + PAGE_CYCLES * pages + LINK_CYCLES * max(0, pages - 1)


def _bits(value):
    """Bits of an unsigned field holding 0 .. ``value`` (at least 1)."""
    return max(1, int(value).bit_length())


def page_bits(config):
    """Bits of a page number, ``log2(2**kv_token_bits / kvmu_page_tokens)`` (at least 1)."""
    return _bits((1 << config.kv_token_bits) // config.kvmu_page_tokens - 1)


def cluster_word_fields(config):
    """The fields of a cluster-table word and their bits, lowest first: ``head``, ``tail``
    (pages), ``fill`` (0 to P), ``count`` (``count_bits``)."""
    return {"head": page_bits(config), "tail": page_bits(config),
            "fill": _bits(config.kvmu_page_tokens), "count": config.count_bits}


def context_header_fields(config):
    """The fields of the context image's header and their bits, lowest first: the KVMU's
    context registers ``clusters``, ``next_page``, ``window_tokens``, ``window_slot``,
    ``store_full``."""
    pages = (1 << config.kv_token_bits) // config.kvmu_page_tokens
    return {"clusters": _bits(config.max_clusters), "next_page": _bits(pages),
            "window_tokens": _bits(config.recent_window + config.max_frame_tokens),
            "window_slot": _bits(max(config.recent_window, 1) - 1), "store_full": 1}


def _pack(fields, values):
    """One item's value from its fields (``fields``: name -> bits, lowest first)."""
    value, offset = 0, 0
    for name, bits in fields.items():
        value |= int(values[name]) << offset
        offset += bits
    return value, offset


def _unpack(fields, value):
    """The fields of one item's value."""
    values, offset = {}, 0
    for name, bits in fields.items():
        values[name] = (value >> offset) & ((1 << bits) - 1)
        offset += bits
    return values


def problem_cycles(config, departing, new_tokens, clusters, pages_per_beat):
    """Cycles of one problem (the module's cycle model).

    Parameters
    ----------
    departing, new_tokens, clusters : int
        Tokens leaving the window (``d``), new tokens (``n``), clusters after the frame (``N``).
    pages_per_beat : list of int
        Pages walked for each ``selected`` beat (one 0 for an empty selection).
    """
    fetch = sum(select_cycles(pages) for pages in pages_per_beat)
    first_ring_read = 1 if departing else 0
    return (1 + first_ring_read + OFFLOAD_CYCLES * departing + 1 + 3 * new_tokens + clusters + 1 + fetch
            + FLUSH_CYCLES)


class KVMUContext(RestorableContext):
    """The state of one (layer, KV head) context and the KVMU's steps on it.

    Parameters
    ----------
    config : DREConfig
        Supplies ``kvmu_page_tokens``, ``kv_token_bits``, ``recent_window``, ``max_count``.
    """

    def __init__(self, config):
        self._config = config
        self.pages = (1 << config.kv_token_bits) // config.kvmu_page_tokens
        self.restart()

    def restart(self):
        """Empty the context (a new stream)."""
        self.past = 0
        self.past_prev = 0
        self.offloaded = 0
        self.clusters = 0
        self.next_page = 0
        self.store_full = False
        self.head, self.tail, self.fill, self.count = {}, {}, {}, {}
        self.page_next = {}
        self.token_cluster = []

    def offload(self):
        """Offload the tokens leaving the window; returns ``(moves, departing)``.

        ``moves`` is a list of ``[src, dst, length, dropped]`` (merged).
        """
        window, page_tokens = self._config.recent_window, self._config.kvmu_page_tokens
        first = self.offloaded
        stop = max(first, self.past - window)
        self.offloaded = stop
        moves = []
        for token in range(first, stop):
            c = self.token_cluster[token]
            fill = self.fill[c]
            src = token % window if window else 0
            dropped = fill in (0, page_tokens) and self.next_page == self.pages
            if dropped:
                self.store_full = True
                page, slot = 0, 0
            elif fill in (0, page_tokens):
                page, slot = self.next_page, 0
                self.next_page += 1
                if fill == 0:
                    self.head[c] = page
                else:
                    self.page_next[self.tail[c]] = page
                self.tail[c], self.fill[c] = page, 1
            else:
                page, slot = self.tail[c], fill
                self.fill[c] = fill + 1
            dst = page * page_tokens + slot
            if moves and self._continues(moves[-1], src, dst, dropped):
                moves[-1][2] += 1
            else:
                moves.append([src, dst, 1, dropped])
        return moves, stop - first

    @staticmethod
    def _continues(move, src, dst, dropped):
        """Whether a token's move extends ``move`` (same kind, ``src`` and ``dst`` continue)."""
        previous_src, previous_dst, length, previous_dropped = move
        return (dropped == previous_dropped and src == previous_src + length
                and (dropped or dst == previous_dst + length))

    def assign(self, cluster, new):
        """Take the frame's cluster assignments (the past moves on by their number)."""
        for c, opened in zip(cluster, new):
            c = int(c)
            if opened:
                self.clusters += 1
                self.count[c], self.fill[c] = 1, 0
                self.head[c], self.tail[c] = 0, 0
            else:
                self.count[c] = min(self.count[c] + 1, self._config.max_count)
            self.token_cluster.append(c)
        self.past_prev, self.past = self.past, self.past + len(cluster)

    def save(self):
        """The context image (see "Context port") as a list of words."""
        config = self._config
        window = config.recent_window
        header, header_bits = _pack(context_header_fields(config), {
            "clusters": self.clusters, "next_page": self.next_page,
            "window_tokens": self.past - self.offloaded,
            "window_slot": self.offloaded % window if window else 0,
            "store_full": self.store_full})
        words = words_of(header, header_bits)
        word_fields = cluster_word_fields(config)
        for c in range(self.clusters):
            words += words_of(*_pack(word_fields, {"head": self.head[c], "tail": self.tail[c],
                                                   "fill": self.fill[c],
                                                   "count": self.count[c]}))
        for page in range(self.next_page):
            words += words_of(self.page_next.get(page, 0), page_bits(config))
        for token in range(self.offloaded, self.past):
            words += words_of(self.token_cluster[token], config.cluster_id_bits)
        return words

    def _empty_context(self):
        self.restart()

    def _load_image(self, state):
        config = self._config
        self.restart()
        header = state["header"]
        self.clusters, self.next_page = header["clusters"], header["next_page"]
        self.store_full = bool(header["store_full"])
        for c, word in enumerate(state["table"]):
            self.head[c], self.tail[c] = word["head"], word["tail"]
            self.fill[c], self.count[c] = word["fill"], word["count"]
        self.page_next = {page: value for page, value in enumerate(state["pages"]) if value}
        # Token indices only matter modulo the window (a move's ``src``): the first token of
        # the window is given the index ``window_slot``.
        self.offloaded = header["window_slot"]
        self.token_cluster = [0] * self.offloaded + state["ring"]
        self.past = self.offloaded + len(state["ring"])
        self.past_prev = self.offloaded + config.recent_window if self.offloaded else 0

    def _read_image(self, reader):
        """The items of an image, checked (raises :class:`model.twins.context.ImageRefused`)."""
        config = self._config
        header_fields = context_header_fields(config)
        header = _unpack(header_fields, reader.item(sum(header_fields.values()), "the header"))
        clusters, next_page = header["clusters"], header["next_page"]
        reader.require(clusters <= config.max_clusters, "clusters above max_clusters")
        reader.require(next_page <= self.pages, "next_page beyond the store")
        reader.require(header["window_tokens"] <= config.recent_window + config.max_frame_tokens,
                       "window_tokens above recent_window + max_frame_tokens")
        reader.require(header["window_slot"] < max(config.recent_window, 1),
                       "window_slot outside the window")
        word_fields = cluster_word_fields(config)
        table = []
        for c in range(clusters):
            word = _unpack(word_fields, reader.item(sum(word_fields.values()), f"cluster {c}"))
            reader.require(word["fill"] <= config.kvmu_page_tokens, f"fill of cluster {c}")
            reader.require(word["fill"] == 0 or max(word["head"], word["tail"]) < next_page,
                           f"pages of cluster {c} beyond next_page")
            table.append(word)
        pages = [reader.item(page_bits(config), f"page {page}") for page in range(next_page)]
        ring = [reader.item(config.cluster_id_bits, f"window token {token}")
                for token in range(header["window_tokens"])]
        reader.require(all(c < clusters for c in ring), "a window token's cluster not opened")
        return {"header": header, "table": table, "pages": pages, "ring": ring}

    def counts(self):
        """Token counts of clusters ``0 .. clusters - 1``."""
        return [self.count[c] for c in range(self.clusters)]

    def pages_of(self, c):
        """The page list of cluster ``c``, head first (empty if nothing was offloaded)."""
        if self.fill.get(c, 0) == 0:
            return []
        pages = [self.head[c]]
        while pages[-1] != self.tail[c]:
            pages.append(self.page_next[pages[-1]])
        return pages

    def fetch(self, selected):
        """Fetch descriptors ``[base, length]`` of the selected clusters and the pages per beat."""
        page_tokens = self._config.kvmu_page_tokens
        descriptors, pages_per_beat = [], []
        for c in selected:
            pages = self.pages_of(int(c))
            pages_per_beat.append(len(pages))
            for page in pages:
                base = page * page_tokens
                length = self.fill[int(c)] if page == self.tail[int(c)] else page_tokens
                if descriptors and descriptors[-1][0] + descriptors[-1][1] == base:
                    descriptors[-1][1] += length
                else:
                    descriptors.append([base, length])
        return descriptors, pages_per_beat or [0]


def layout_from_moves(move_dst, move_len, move_dropped=None):
    """Store address -> token index, from a stream's moves in order (token ``k`` is the ``k``-th
    leaving the window, stored or dropped; a restart starts a new stream)."""
    dropped = np.zeros(len(move_dst), bool) if move_dropped is None else move_dropped
    addresses = [None if lost else int(dst) + k
                 for dst, length, lost in zip(move_dst, move_len, dropped)
                 for k in range(int(length))]
    return {address: token for token, address in enumerate(addresses) if address is not None}


def fetched_tokens(desc_base, desc_len, address_token):
    """Ascending token indices the descriptors cover, decoded through ``address_token``.

    Raises
    ------
    ValueError
        If a descriptor covers an address no move has written.
    """
    tokens = []
    for base, length in zip(desc_base, desc_len):
        for address in range(int(base), int(base) + int(length)):
            if address not in address_token:
                raise ValueError(f"fetch descriptor ({base}, {length}) covers address {address}, "
                                 f"which holds no offloaded token")
            tokens.append(address_token[address])
    return np.array(sorted(tokens), dtype=np.uint64)


def _flatten(groups, dtype=np.uint64):
    offsets = np.zeros(len(groups) + 1, dtype=np.uint64)
    offsets[1:] = np.cumsum([len(group) for group in groups])
    values = [value for group in groups for value in group]
    return offsets, np.array(values, dtype=dtype).reshape(len(values), *np.shape(values)[1:])


def decoded_fetch_tokens(restart, moves, descriptors):
    """Per problem, the fetched token indices, decoding its descriptors through the moves of
    its stream so far (``moves``, ``descriptors``: per problem lists of tuples)."""
    fetched, dst, length, dropped = [], [], [], []
    for problem, (own_moves, own_descriptors) in enumerate(zip(moves, descriptors)):
        if restart[problem]:
            dst, length, dropped = [], [], []
        dst += [move[1] for move in own_moves]
        length += [move[2] for move in own_moves]
        dropped += [bool(move[3]) for move in own_moves]
        address_token = layout_from_moves(dst, length, dropped)
        fetched.append(fetched_tokens([d[0] for d in own_descriptors],
                                      [d[1] for d in own_descriptors], address_token).tolist())
    return fetched


def collect(restart, counts, moves, descriptors, store_full, cycles):
    """The file interface's output arrays from per-problem lists (shared by the twin and the
    RTL decoder, so both flatten alike)."""
    count_offsets, count_values = _flatten(counts)
    move_offsets, move_values = _flatten(moves)
    desc_offsets, desc_values = _flatten(descriptors)
    fetch_offsets, fetch_values = _flatten(decoded_fetch_tokens(restart, moves, descriptors))
    move_values = move_values.reshape(-1, 4)
    desc_values = desc_values.reshape(-1, 2)
    return {"count_offsets": count_offsets, "counts": count_values,
            "move_offsets": move_offsets, "move_src": move_values[:, 0],
            "move_dst": move_values[:, 1], "move_len": move_values[:, 2],
            "move_dropped": move_values[:, 3].astype(bool),
            "desc_offsets": desc_offsets, "desc_base": desc_values[:, 0],
            "desc_len": desc_values[:, 1],
            "fetch_offsets": fetch_offsets, "fetch_token": fetch_values,
            "store_full": np.array(store_full, dtype=bool),
            "cycles": np.array(cycles, dtype=np.uint64)}


def run_stream(config, arrays, *, switch_contexts=False):
    """Run the KVMU on one stream of problems.

    Parameters
    ----------
    config : DREConfig
    arrays : dict
        The :data:`INPUTS` keys (``restart`` optional).
    switch_contexts : bool
        Save the context after every problem and restore the image into a fresh context
        before the next (not before a restart), as a KVMU serving several contexts does; the
        outputs are the same.

    Returns
    -------
    dict
        The :data:`OUTPUTS` arrays, plus ``departing``, ``pages_per_beat`` (per problem lists)
        and ``context`` (the final :class:`KVMUContext`) for the benchmarks; with
        ``switch_contexts``, also ``images``, the context image saved after each problem.

    Raises
    ------
    ValueError
        If the stream breaks the contract (see :func:`check_stream`).
    """
    stream = check_stream(config, arrays)
    context = KVMUContext(config)
    counts, moves, descriptors, store_full, cycles, departing, walked = [], [], [], [], [], [], []
    token, images = 0, []
    for problem, new_tokens in enumerate(stream["new_tokens"]):
        if stream["restart"][problem]:
            context.restart()
        elif switch_contexts:
            context = KVMUContext(config)
            context.restore(images[-1])
        own_moves, leaving = context.offload()
        context.assign(stream["cluster"][token:token + new_tokens],
                       stream["new"][token:token + new_tokens])
        token += new_tokens
        counts.append(context.counts())
        own_descriptors, pages_per_beat = context.fetch(stream["selected"][problem])
        moves.append([tuple(move) for move in own_moves])
        descriptors.append([tuple(descriptor) for descriptor in own_descriptors])
        store_full.append(context.store_full)
        departing.append(leaving)
        walked.append(pages_per_beat)
        cycles.append(problem_cycles(config, leaving, int(new_tokens), context.clusters,
                                     pages_per_beat))
        if switch_contexts:
            images.append(context.save())
    result = collect(stream["restart"], counts, moves, descriptors, store_full, cycles)
    extra = {"images": images} if switch_contexts else {}
    return {**result, "departing": departing, "pages_per_beat": walked, "context": context,
            **extra}


def run_arrays(config, arrays):
    """File interface (``python -m sim.run kvmu``): validated arrays in, output arrays out."""
    arrays = check_arrays("kvmu input", INPUTS, arrays)
    result = run_stream(config, arrays)
    return {spec.name: result[spec.name] for spec in OUTPUTS}
