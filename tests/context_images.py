"""Helpers of the context-port tests: streams run with and without context switches, and
malformed images made from valid ones (each breaking one check of the block's format)."""

import numpy as np

from model.twins.context import WORD_BITS, item_words
from model.twins.hcu import HashClusterTwin, schedule
from model.twins.kvmu import cluster_word_fields, context_header_fields

__all__ = ["hcu_frames", "hcu_malformed", "kvmu_malformed"]


def hcu_frames(config, frames, *, switch_contexts):
    """Assignments and decision cycles of each frame of hashes through the HCU twin; with
    ``switch_contexts`` the context is saved after every frame and restored into a fresh twin.

    Returns
    -------
    tuple of (list of tuple, list of list of int)
        Per frame ``(cluster, new, distance, overflow, decided)`` lists; the images saved.
    """
    twin = HashClusterTwin(config, on_overflow="flag")
    results, images = [], []
    for hashes in frames:
        if switch_contexts and images:
            twin = HashClusterTwin(config, on_overflow="flag")
            assert twin.restore(images[-1])
        opened = twin.opened
        steps = [twin.step(int(value)) for value in hashes]
        decided = schedule(config, [s.first_id for s in steps], [s.beats for s in steps],
                           [s.new for s in steps], opened=opened)
        results.append(tuple([getattr(s, name) for s in steps]
                             for name in ("cluster", "new", "distance", "overflow"))
                       + (decided.tolist(),))
        images.append(twin.save())
    return results, images


def _with_item(words, first_word, bits, change):
    """``words`` with the item of ``bits`` bits starting at ``first_word`` replaced by
    ``change(value)``."""
    count = item_words(bits)
    value = sum(word << (WORD_BITS * k) for k, word in enumerate(words[first_word:
                                                                      first_word + count]))
    value = change(value)
    mask = (1 << WORD_BITS) - 1
    return (words[:first_word] + [(value >> (WORD_BITS * k)) & mask for k in range(count)]
            + words[first_word + count:])


def hcu_malformed(config, image):
    """Name -> a malformed HCU image made from ``image`` (a valid one with at least one hash)."""
    header_bits = config.cluster_id_bits + 1
    return {
        "too short": image[:-1],
        "too long": image + [0],
        "header only": image[:1],
        "opened above max_clusters": [config.max_clusters + 1] + image[1:],
        "header padding": _with_item(image, 0, header_bits, lambda v: v | (1 << header_bits))
        if header_bits < WORD_BITS else image + [0],
        "hash above hash_bits": _with_item(image, 1, config.hash_bits,
                                           lambda v: v | (1 << config.hash_bits))
        if config.hash_bits % WORD_BITS else image[:-1],
    }


def _field_change(fields, name, function):
    """A change of one field of an item laid out by ``fields`` (name -> bits, lowest first)."""
    offset = sum(list(fields.values())[:list(fields).index(name)])
    mask = (1 << fields[name]) - 1

    def change(value):
        return (value & ~(mask << offset)) | ((function((value >> offset) & mask) & mask)
                                              << offset)
    return change


def _fits(value, bits):
    return value < (1 << bits)


def kvmu_malformed(config, image):
    """Name -> a malformed KVMU image made from ``image`` (a valid one whose cluster 0 has a
    page, with window tokens), each breaking the check it names (the header's counts, when
    changed, also change the length the image should have). Checks a field's width cannot
    break on ``config`` are left out."""
    header = context_header_fields(config)
    header_bits = sum(header.values())
    word = cluster_word_fields(config)
    word_bits = sum(word.values())
    pages = (1 << config.kv_token_bits) // config.kvmu_page_tokens
    h, w = item_words(header_bits), item_words(word_bits)
    value = sum(x << (WORD_BITS * k) for k, x in enumerate(image[:h]))
    fields, offset = {}, 0
    for name, bits in header.items():
        fields[name] = (value >> offset) & ((1 << bits) - 1)
        offset += bits
    ring_start = h + fields["clusters"] * w + fields["next_page"]
    ring_size = config.recent_window + config.max_frame_tokens

    def set_header(name, new):
        return _with_item(image, 0, header_bits, _field_change(header, name, lambda v: new))

    def set_word(name, new):
        return _with_item(image, h, word_bits, _field_change(word, name, lambda v: new))

    cases = {
        "too short": image[:-1],
        "too long": image + [0],
        "window token of no cluster": _with_item(image, ring_start, config.cluster_id_bits,
                                                 lambda v: fields["clusters"]),
        "header padding": _with_item(image, 0, header_bits,
                                     lambda v: v | (1 << (WORD_BITS * h - 1))),
    }
    for name, new, bits, make in (
            ("clusters above max_clusters", config.max_clusters + 1, header["clusters"],
             lambda: set_header("clusters", config.max_clusters + 1)),
            ("next_page beyond the store", pages + 1, header["next_page"],
             lambda: set_header("next_page", pages + 1)),
            ("window_tokens above the ring", ring_size + 1, header["window_tokens"],
             lambda: set_header("window_tokens", ring_size + 1)),
            ("window_slot outside the window", max(config.recent_window, 1),
             header["window_slot"],
             lambda: set_header("window_slot", max(config.recent_window, 1))),
            ("fill above the page", config.kvmu_page_tokens + 1, word["fill"],
             lambda: set_word("fill", config.kvmu_page_tokens + 1)),
            ("head beyond next_page", fields["next_page"], word["head"],
             lambda: set_word("head", fields["next_page"]))):
        if _fits(new, bits):
            cases[name] = make()
    return cases
