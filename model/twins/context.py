"""Context images: how a block's state leaves and enters through its context port, as words.

One DRE serves every (layer, KV head) context of a stream by saving the state of the context on
chip to external memory and restoring another. The stateful blocks (the HCU,
:mod:`model.twins.hcu`, and the KVMU, :mod:`model.twins.kvmu`) each have a ``save`` output
stream and a ``restore`` input stream of *context words*; this module holds what their images
share, on the twin side (the RTL side is :mod:`hw.context_port`).

Words
    A context word is :data:`WORD_BITS` = 32 bits wide, a property of the format rather than of
    the configuration: images of two configurations have the same word, 32 bits is the width of
    the host's and the LXE's memory interfaces (and of a hash on every preset), and every
    counter and pointer of both blocks fits one word. A beat of either stream carries one word
    and ``last`` (set on the final word of the image).
Items
    An image is a sequence of *items*, each a field or a ``lib.data`` layout of ``b`` bits,
    carried in ``item_words(b) = ceil(b / 32)`` words, lowest bits first; the bits of the last
    word above ``b`` are zero.
Live part only
    An image starts with its block's header item (counters), from which the number of words
    that follow is known; then come only the live entries (opened clusters, allocated pages,
    tokens in the window), so an image grows with the context, not with the maximum.
Refusal
    A restored image is *refused* when its length is not the one its header gives (``last``
    early or late), a padding bit is set, or a field is out of range (each block's docstring
    lists its checks). A refused image leaves the block's context empty, as after a restart,
    and sets the block's ``context_refused`` flag: this is the defined behaviour of a context
    restored that was never saved. Every word up to the one with ``last`` is consumed either way.
Cycle model (no stall on either stream)
    A save or restore is started by a command beat of the block. Counting from the command's
    transfer (cycle 0) to the last cycle of the operation, both included, after which the block
    takes its next command or token::

        save:    words + SAVE_EXTRA_CYCLES     (command; one word issued a cycle; memory read,
                                                read data registered, output register)
        restore: words + RESTORE_EXTRA_CYCLES  (command; one word taken a cycle; the last
                                                word, registered, checked and written)

    The save's last cycle is its last word's transfer; the restore's is the cycle after its
    last word's transfer. Stalls delay the words, never change them.
"""

__all__ = ["WORD_BITS", "SAVE_EXTRA_CYCLES", "RESTORE_EXTRA_CYCLES", "ImageRefused",
           "ImageReader", "RestorableContext", "item_words", "words_of", "save_cycles",
           "restore_cycles"]

#: Bits of a context word.
WORD_BITS = 32
#: Cycles of a save beyond one per word: the command, then the read, the registered read data
#: and the output register of the last word.
SAVE_EXTRA_CYCLES = 4
#: Cycles of a restore beyond one per word: the command, then the check and write of the last
#: word (registered on its transfer).
RESTORE_EXTRA_CYCLES = 2


class ImageRefused(ValueError):
    """A restored image breaks its format (the twin then empties the context)."""


def item_words(bits):
    """Words of an item of ``bits`` bits, ``ceil(bits / WORD_BITS)``."""
    return -(-bits // WORD_BITS)


def words_of(value, bits):
    """The words of one item: ``value`` (below ``2**bits``) cut into words, lowest bits first."""
    value = int(value)
    if not 0 <= value < (1 << bits):
        raise ValueError(f"an item of {bits} bits must be from 0 to {(1 << bits) - 1}, "
                         f"not {value}")
    mask = (1 << WORD_BITS) - 1
    return [(value >> (WORD_BITS * index)) & mask for index in range(item_words(bits))]


def save_cycles(words):
    """Cycles of a save of ``words`` words (an int or the image), without stalls."""
    count = words if isinstance(words, int) else len(words)
    return count + SAVE_EXTRA_CYCLES


def restore_cycles(words):
    """Cycles of a restore of ``words`` words (an int or the image), without stalls."""
    count = words if isinstance(words, int) else len(words)
    return count + RESTORE_EXTRA_CYCLES


class ImageReader:
    """Reads the items of one restored image in order, refusing a malformed one.

    Parameters
    ----------
    words : sequence of int
        The image, at least one word, each from 0 to ``2**WORD_BITS - 1``.

    Raises
    ------
    ValueError
        If ``words`` is empty or holds a value that is not a word (a stream cannot carry
        either; this is a caller's error, not a refused image).
    """

    def __init__(self, words):
        words = [int(word) for word in words]
        if not words:
            raise ValueError("a context image must hold at least one word")
        for index, word in enumerate(words):
            if not 0 <= word < (1 << WORD_BITS):
                raise ValueError(f"word {index} of the context image must be from 0 to "
                                 f"{(1 << WORD_BITS) - 1}, not {word}")
        self._words = words
        self._next = 0

    def item(self, bits, name):
        """The next item of ``bits`` bits.

        Raises
        ------
        ImageRefused
            If the image ends before the item does, or a bit above ``bits`` is set.
        """
        count = item_words(bits)
        if self._next + count > len(self._words):
            raise ImageRefused(f"the image ends inside {name} (word {self._next} of "
                               f"{len(self._words)})")
        value = 0
        for index, word in enumerate(self._words[self._next:self._next + count]):
            value |= word << (WORD_BITS * index)
        self._next += count
        if value >> bits:
            raise ImageRefused(f"{name} has bits set above its {bits} bits")
        return value

    def require(self, condition, message):
        """Refuse the image unless ``condition``.

        Raises
        ------
        ImageRefused
        """
        if not condition:
            raise ImageRefused(message)

    def finish(self):
        """Refuse the image if words are left after its last item.

        Raises
        ------
        ImageRefused
        """
        if self._next != len(self._words):
            raise ImageRefused(f"the image has {len(self._words) - self._next} word(s) after "
                               f"its last item")


class RestorableContext:
    """What every twin with a context port shares: :meth:`restore` reads an image with the
    twin's ``_read_image(reader)`` (its items, checked; raises :class:`ImageRefused`), then
    either loads it with ``_load_image(state)`` or, when it is refused, empties the context
    with ``_empty_context()``."""

    #: Why the last restore was refused (None: accepted, or no restore yet).
    refusal = None

    def restore(self, words):
        """Load a context image; returns False (and empties the context, and says why in
        :attr:`refusal`) if it is refused.

        Raises
        ------
        ValueError
            If ``words`` is empty or holds a value that is not a 32-bit word.
        """
        reader = ImageReader(words)
        try:
            state = self._read_image(reader)
            reader.finish()
        except ImageRefused as error:
            self._empty_context()
            self.refusal = str(error)
            return False
        self._load_image(state)
        self.refusal = None
        return True
