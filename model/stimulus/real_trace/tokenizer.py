"""Byte-level BPE tokenizer (GPT-2 style) read from a GGUF file's ``tokenizer.ggml.*`` fields.

SmolLM2 uses GPT-2's byte-level BPE: text is split into pieces by a pre-tokenizer, each piece's
UTF-8 bytes are mapped to printable characters (:func:`byte_alphabet`), and merges are applied
in rank order. The pre-tokenizer follows llama.cpp's ``smollm`` rule (every digit is its own
piece; then GPT-2's contractions, letter runs, punctuation runs and whitespace) written with
Python's ``re``: letters are ``[^\\W\\d_]``, which matches the Unicode letter class for the
scripts tested here (English text); it is not a full ``\\p{L}`` implementation. Control tokens
such as ``<|im_start|>`` are matched whole before pre-tokenisation.
"""

import re

import numpy as np

__all__ = ["BPETokenizer", "byte_alphabet"]

_PIECES = re.compile(r"'s|'t|'re|'ve|'m|'ll|'d| ?[^\W\d_]+| ?\d|"
                     r" ?(?:[^\w\s]|_)+|\s+(?!\S)|\s+")
_CONTROL_TYPE = 3


def byte_alphabet():
    """GPT-2's map of the 256 byte values to printable characters (``0x20`` -> ``'Ġ'``)."""
    printable = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
                 + list(range(ord("®"), ord("ÿ") + 1)))
    chars = list(printable)
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            chars.append(256 + extra)
            extra += 1
    return {byte: chr(char) for byte, char in zip(printable, chars)}


class BPETokenizer:
    """Encode and decode text with a GGUF model's byte-level BPE vocabulary.

    Parameters
    ----------
    tokens : list of str
        ``tokenizer.ggml.tokens``: the vocabulary in byte-alphabet spelling.
    merges : list of str
        ``tokenizer.ggml.merges``: ``"left right"`` pairs, highest priority first.
    token_types : sequence of int
        ``tokenizer.ggml.token_type``; type 3 (control) tokens are matched whole in text.

    Raises
    ------
    ValueError
        If the vocabulary is empty or a merge is not two symbols.
    """

    def __init__(self, tokens, merges, token_types):
        if not tokens:
            raise ValueError("tokens must not be empty")
        self._ids = {token: index for index, token in enumerate(tokens)}
        self._tokens = list(tokens)
        self._ranks = {}
        for rank, merge in enumerate(merges):
            pair = tuple(merge.split(" "))
            if len(pair) != 2:
                raise ValueError(f"merge {rank} must be two symbols separated by a space, "
                                 f"not {merge!r}")
            self._ranks[pair] = rank
        self._to_char = byte_alphabet()
        self._to_byte = {char: byte for byte, char in self._to_char.items()}
        control = [tokens[i] for i in np.flatnonzero(np.asarray(token_types) == _CONTROL_TYPE)]
        control = sorted((t for t in control if t), key=len, reverse=True)
        self._control = re.compile("(" + "|".join(map(re.escape, control)) + ")") if control \
            else None
        self._cache = {}

    @property
    def vocab_size(self):
        """Number of tokens in the vocabulary."""
        return len(self._tokens)

    def token_id(self, token):
        """Id of a token given in its vocabulary spelling (e.g. ``"<|im_start|>"``, ``"Ġthe"``)."""
        if token not in self._ids:
            raise ValueError(f"token {token!r} is not in the vocabulary")
        return self._ids[token]

    def _bpe(self, piece):
        if piece in self._cache:
            return self._cache[piece]
        symbols = [self._to_char[byte] for byte in piece.encode("utf-8")]
        while len(symbols) > 1:
            ranked = [(self._ranks.get(pair, None), index)
                      for index, pair in enumerate(zip(symbols, symbols[1:]))]
            ranked = [(rank, index) for rank, index in ranked if rank is not None]
            if not ranked:
                break
            _, index = min(ranked)
            symbols[index:index + 2] = [symbols[index] + symbols[index + 1]]
        ids = [self._ids[symbol] for symbol in symbols]
        self._cache[piece] = ids
        return ids

    def encode(self, text):
        """Token ids of ``text`` (no BOS is added: SmolLM2's GGUF sets ``add_bos_token`` false).

        Returns
        -------
        list of int
        """
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, not {type(text).__name__}")
        parts = self._control.split(text) if self._control else [text]
        ids = []
        for part in parts:
            if part in self._ids and self._control and self._control.fullmatch(part):
                ids.append(self._ids[part])
                continue
            for piece in _PIECES.findall(part):
                ids += self._bpe(piece)
        return ids

    def decode(self, ids):
        """Text of token ids (control tokens are written as their names)."""
        data = bytearray()
        for index in ids:
            token = self._tokens[int(index)]
            if self._control and self._control.fullmatch(token):
                data += token.encode("utf-8")
            else:
                data += bytes(self._to_byte[char] for char in token)
        return data.decode("utf-8", errors="replace")
