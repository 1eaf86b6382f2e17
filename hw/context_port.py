"""The parts of a block's context port: the stream of context words, its walk and its pipeline.

A stateful block of the DRE (the HCU, :class:`hw.hcu.HashClusterUnit`; the KVMU,
:class:`hw.kvmu.KVManagementUnit`) saves its context through a ``save`` output stream and
restores one through a ``restore`` input stream, both of :func:`context_word_layout`, started by
a :class:`ContextOp` command. The format (32-bit words, items lowest bits first, the live part
only, refusal of a malformed image) and the cycle model are those of :mod:`model.twins.context`;
each block's image is in its twin's docstring.

The parts shared by both blocks:

* :class:`ImageWalker`: the position (section, item, word of the item) of the word being
  saved or restored, from the counts of items of each section, and whether it is the last;
* :class:`SavePipeline`: the three registered stages between the block's reads of its memories
  and the ``save`` stream (read, read data registered, output register), stalled together;
* :class:`RestoreRegister`: a ``restore`` word registered on its transfer, so the block checks
  and writes it from a flip-flop.
"""

from amaranth.hdl import Module, Signal, unsigned
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["WORD_BITS", "item_words", "ContextOp", "context_word_layout", "ImageWalker",
           "SavePipeline", "RestoreRegister"]

#: Bits of a context word (the format's, not the configuration's: see
#: :mod:`model.twins.context`, whose own constant the tests compare with this one's words).
WORD_BITS = 32


def item_words(bits):
    """Context words of an item of ``bits`` bits, ``ceil(bits / WORD_BITS)``."""
    return -(-bits // WORD_BITS)


class ContextOp(enum.Enum, shape=2):
    """What a block's command does with its context: ``NONE`` (nothing: the KVMU's problem),
    ``SAVE`` (send the image on ``save``), ``RESTORE`` (take an image from ``restore``)."""

    NONE = 0
    SAVE = 1
    RESTORE = 2


def context_word_layout():
    """Payload of ``save`` and ``restore``: one 32-bit ``word``, ``last`` on the image's final
    word."""
    return data.StructLayout({"word": unsigned(WORD_BITS), "last": unsigned(1)})


class ImageWalker(wiring.Component):
    """The position of the current word in an image of sections of items.

    Section ``s`` holds ``count{s}`` items of ``sections[s][1]`` words each; section 0 is the
    header (one item, always present). ``start`` puts the walk at the header's first word;
    ``step`` moves it to the next word, skipping empty sections. ``final`` says the current word
    is the image's last (the counts of the later sections must be valid in that cycle).

    Which later sections have items comes from the counts (``count{s} != 0``), or, with
    ``nonzero_inputs``, from the block's ``nonzero{s}`` flags: a block whose counts in the
    header's last word are the header being restored can check them a cycle ahead, and give
    ``count{s}`` from its registers, which hold the header from then on.

    Parameters
    ----------
    sections : list of (int, int)
        Per section, the most items and the words per item.
    nonzero_inputs : bool
        Take ``nonzero{s}`` flags instead of comparing the counts with zero.

    Members
    -------
    count{s} : In(range(max_items + 1))
        Items of section ``s`` (unused for the header, which has one); with
        ``nonzero_inputs``, read only in section ``s`` itself.
    nonzero{s} : In(1)
        With ``nonzero_inputs`` (``s`` from 1): section ``s`` has items, valid whenever
        ``count{s} != 0`` would have to be without them.
    start, step : In(1)
    section : Out(range(len(sections)))
    index : Out(range(most items))
    chunk : Out(range(most words per item))
    final : Out(1)

    Raises
    ------
    ValueError
        If ``sections`` is empty or its header is not one item.
    """

    def __init__(self, sections, nonzero_inputs=False):
        sections = [(int(items), int(words)) for items, words in sections]
        if not sections or sections[0][0] != 1:
            raise ValueError(f"sections must start with a header of one item, not {sections!r}")
        self._sections, self._nonzero_inputs = sections, bool(nonzero_inputs)
        most_items = max(items for items, _ in sections)
        most_words = max(words for _, words in sections)
        members = {f"count{s}": In(range(items + 1)) for s, (items, _) in enumerate(sections)}
        if nonzero_inputs:
            members.update({f"nonzero{s}": In(1) for s in range(1, len(sections))})
        members.update({"start": In(1), "step": In(1),
                        "section": Out(range(max(len(sections), 2))),
                        "index": Out(range(max(most_items, 2))),
                        "chunk": Out(range(max(most_words, 2))), "final": Out(1)})
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        sections = self._sections
        counts = [getattr(self, f"count{s}") for s in range(len(sections))]
        nonzero = [None] + [getattr(self, f"nonzero{s}") if self._nonzero_inputs
                            else counts[s] != 0 for s in range(1, len(sections))]
        chunk_last = Signal()
        item_last = Signal()
        # later[s]: some section after s has items (the next one is the first such).
        later = [Signal(name=f"later{s}") for s in range(len(sections))]
        for s in range(len(sections)):
            m.d.comb += later[s].eq(0 if s == len(sections) - 1
                                    else nonzero[s + 1] | later[s + 1])
        # ``index + 1 == count`` rather than ``index == count - 1``, with ``index + 1`` a register
        # of its own kept beside ``index``: the count (which a block may compute late in the
        # cycle) meets one equality compare and no carry chain, and the compare starts at
        # flip-flops.
        index_next = Signal(len(self.index) + 1, init=1)
        with m.Switch(self.section):
            for s, (items, words) in enumerate(sections):
                with m.Case(s):
                    m.d.comb += [chunk_last.eq(self.chunk == words - 1),
                                 item_last.eq((self.index == items - 1) if s == 0
                                              else (index_next == counts[s])),
                                 self.final.eq(chunk_last & item_last & ~later[s])]
        with m.If(self.start):
            m.d.sync += [self.section.eq(0), self.index.eq(0), index_next.eq(1), self.chunk.eq(0)]
        with m.Elif(self.step):
            with m.If(~chunk_last):
                m.d.sync += self.chunk.eq(self.chunk + 1)
            with m.Elif(~item_last):
                m.d.sync += [self.chunk.eq(0), self.index.eq(index_next),
                             index_next.eq(index_next + 1)]
            with m.Else():
                m.d.sync += [self.chunk.eq(0), self.index.eq(0), index_next.eq(1)]
                # The first later section with items (priority to the nearest).
                with m.Switch(self.section):
                    for s in range(len(sections) - 1):
                        with m.Case(s):
                            for t in reversed(range(s + 1, len(sections))):
                                with m.If(nonzero[t]):
                                    m.d.sync += self.section.eq(t)
        return m


class SavePipeline(wiring.Component):
    """The registered stages from a block's memory reads to its ``save`` stream.

    Cycle ``c``: the block *issues* a word (``issue``, its ``issue_tag`` and ``issue_last``)
    and presents its memories' read addresses. ``c + 1``: the memories output the data, the
    tag waits in stage 1. ``c + 2``: the block's data registers (loaded when ``advance``) hold
    it, ``tag`` is the word's tag, and the block's ``word`` (a function of ``tag`` and its data
    registers) is loaded into the output register. ``c + 3``: the word is on ``o``. All stages
    move together when the output register is free (``advance``); the block holds its
    memories' read ports with ``advance`` low (read enable) and issues only when ``advance``.

    Parameters
    ----------
    tag_shape : shape-castable
        What the block needs to pick the word from its data registers.

    Members
    -------
    advance : Out(1)
    issue, issue_last : In(1)
    issue_tag : In(tag_shape)
    tag : Out(tag_shape)
        The tag of the word in stage 2.
    word : In(32)
    o : Out(stream.Signature(context_word_layout()))
    """

    #: Cycles from a word's issue to its transfer without stalls.
    latency = 3

    def __init__(self, tag_shape):
        super().__init__({
            "advance": Out(1), "issue": In(1), "issue_last": In(1),
            "issue_tag": In(tag_shape), "tag": Out(tag_shape), "word": In(WORD_BITS),
            "o": Out(stream.Signature(context_word_layout())),
        })

    def elaborate(self, platform):
        m = Module()
        valid_1, last_1 = Signal(), Signal()
        tag_1 = Signal.like(self.issue_tag)
        valid_2, last_2 = Signal(), Signal()
        m.d.comb += self.advance.eq(~self.o.valid | self.o.ready)
        with m.If(self.advance):
            m.d.sync += [valid_1.eq(self.issue), last_1.eq(self.issue_last),
                         tag_1.eq(self.issue_tag),
                         valid_2.eq(valid_1), last_2.eq(last_1), self.tag.eq(tag_1),
                         self.o.valid.eq(valid_2), self.o.payload.word.eq(self.word),
                         self.o.payload.last.eq(last_2)]
        return m


class RestoreRegister(wiring.Component):
    """A ``restore`` word registered on its transfer.

    Members
    -------
    i : In(stream.Signature(context_word_layout()))
        The block's ``restore`` stream; ready when ``accept``.
    accept : In(1)
    valid : Out(1)
        A word was taken in the previous cycle; ``word`` and ``last`` are its.
    word : Out(32)
    last : Out(1)
    """

    def __init__(self):
        super().__init__({
            "i": In(stream.Signature(context_word_layout())), "accept": In(1),
            "valid": Out(1), "word": Out(WORD_BITS), "last": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.i.ready.eq(self.accept)
        m.d.sync += [self.valid.eq(self.i.valid & self.accept),
                     self.word.eq(self.i.payload.word), self.last.eq(self.i.payload.last)]
        return m
