"""The context ports of the HCU and KVMU twins: images, continuity across a save and a restore,
and the refusal of malformed images (model/twins/context.py, hcu.py, kvmu.py)."""

import numpy as np
import pytest

from model.config import PRESETS
from model.stimulus.hashes import synthetic_hashes
from model.stimulus.kvmu_streams import random_stream, workload_stream
from model.twins.context import (ImageReader, ImageRefused, item_words, restore_cycles,
                                 save_cycles, words_of)
from model.twins.hcu import HashClusterTwin
from model.twins.kvmu import OUTPUTS, KVMUContext, run_stream
from tests.context_images import hcu_frames, hcu_malformed, kvmu_malformed
from tests.hcu_configs import small_config

TINY = PRESETS["tiny"]


def test_words_of_and_reader():
    # 40-bit item 0x12_3456_789a: low word 0x3456789a, then 0x12
    assert words_of(0x123456789A, 40) == [0x3456789A, 0x12]
    assert item_words(32) == 1 and item_words(33) == 2
    assert ImageReader([0x3456789A, 0x12]).item(40, "x") == 0x123456789A
    with pytest.raises(ImageRefused, match="x has bits set above its 36 bits"):
        ImageReader([0x3456789A, 0x12]).item(36, "x")
    with pytest.raises(ImageRefused, match="the image ends inside x"):
        ImageReader([1]).item(40, "x")
    with pytest.raises(ValueError, match="at least one word"):
        ImageReader([])
    with pytest.raises(ValueError, match="word 1 of the context image must be from 0 to"):
        ImageReader([0, 1 << 32])
    with pytest.raises(ValueError, match="an item of 4 bits must be from 0 to 15, not 16"):
        words_of(16, 4)
    # save: command + a word a cycle + read, registered data, output register
    assert (save_cycles(3), restore_cycles([0, 0, 0])) == (7, 5)


def test_hcu_hand_worked_image():
    # tiny: 16-bit hashes, threshold 4. 0x0000 opens 0, 0xffff opens 1, 0x0001 joins 0.
    # Image: header O = 2, then slots 0 and 1: [2, 0x0000, 0xffff].
    twin = HashClusterTwin(TINY)
    for value in (0x0000, 0xFFFF, 0x0001):
        twin.step(value)
    assert twin.save() == [2, 0x0000, 0xFFFF]
    assert HashClusterTwin(TINY).save() == [0]


@pytest.mark.parametrize("entries, every", [(16, 3), (32, 7)])
def test_hcu_switched_stream_equals_straight(entries, every):
    # the table wraps (more clusters than entries): the image then holds every slot
    config = small_config(hash_mem_entries=entries)
    hashes = synthetic_hashes(config, 4 * entries, np.random.default_rng(entries),
                              centres=3 * entries)
    frames = [hashes[start:start + every] for start in range(0, len(hashes), every)]
    straight, images = hcu_frames(config, frames, switch_contexts=False)
    switched, switched_images = hcu_frames(config, frames, switch_contexts=True)
    assert straight == switched
    assert images == switched_images
    opened = np.cumsum([sum(frame[1]) for frame in straight])
    assert opened[-1] > entries
    # the image grows with the opened clusters, up to the table
    assert [len(image) for image in images] == [1 + min(o, entries) for o in opened]


def test_hcu_refused_images_empty_the_table():
    config = small_config()
    twin = HashClusterTwin(config)
    for value in synthetic_hashes(config, 20, np.random.default_rng(1)):
        twin.step(int(value))
    image = twin.save()
    for name, bad in hcu_malformed(config, image).items():
        target = HashClusterTwin(config)
        target.step(0x1234)
        assert not target.restore(bad), name
        assert target.opened == 0 and target.save() == [0], name
        assert target.refusal, name
    target = HashClusterTwin(config)
    assert target.restore(image) and target.refusal is None and target.save() == image


def test_kvmu_hand_worked_image():
    # W = 2, P = 2, 16 slots (8 pages), frames: f0 t0 c0 (new), t1 c1 (new); f1 t2 c0, t3 c0;
    # f2 t4 c1, t5 c0. f2 offloads t0 (c0 -> page 0) and t1 (c1 -> page 1).
    # Header (clusters 7 bits, next_page 4, window_tokens 3, window_slot 1, full 1):
    #   clusters 2, next_page 2, window_tokens 4 (t2..t5), window_slot 2 % 2 = 0:
    #   2 + (2 << 7) + (4 << 11) = 8450.
    # Table words (head 3, tail 3, fill 2, count 8 bits): c0 head 0 tail 0 fill 1 count 4:
    #   (1 << 6) + (4 << 8) = 1088; c1 head 1 tail 1 fill 1 count 2: 1 + 8 + 64 + 512 = 585.
    # Pages 0 and 1: next 0 (tails). Window: t2..t5 clusters 0, 0, 1, 0.
    config = TINY.replace(recent_window=2, kvmu_page_tokens=2, kv_token_bits=4,
                          max_frame_tokens=4)
    context = KVMUContext(config)
    for cluster, new in (([0, 1], [1, 1]), ([0, 0], [0, 0]), ([1, 0], [0, 0])):
        context.offload()
        context.assign(cluster, new)
    image = context.save()
    assert image == [8450, 1088, 585, 0, 0, 0, 0, 1, 0]
    restored = KVMUContext(config)
    assert restored.restore(image) and restored.save() == image
    assert KVMUContext(config).save() == [0]


@pytest.mark.parametrize("changes", [
    {}, {"kvmu_page_tokens": 1}, {"recent_window": 0}, {"recent_window": 3},
    {"kv_token_bits": 5}, {"count_bits": 2}, {"max_frame_tokens": 1, "recent_window": 1},
    {"count_bits": 30},     # a table word of 8 + 8 + 3 + 30 bits: two words per cluster
])
def test_kvmu_switched_stream_equals_straight(changes):
    config = TINY.replace(**changes)
    for seed in range(3):
        arrays = random_stream(config, np.random.default_rng(seed), 14)
        straight = run_stream(config, arrays)
        switched = run_stream(config, arrays, switch_contexts=True)
        for spec in OUTPUTS:
            assert straight[spec.name].tolist() == switched[spec.name].tolist(), spec.name
        for image in switched["images"]:
            context = KVMUContext(config)
            assert context.restore(image)
            assert context.save() == image


def test_kvmu_image_grows_with_the_context():
    # tiny workload stream: the image holds the header, the opened clusters' words, the
    # allocated pages and the window tokens, so it grows as the stream goes on
    arrays, _ = workload_stream(TINY, 40)
    result = run_stream(TINY, arrays, switch_contexts=True)
    context = result["context"]
    tokens = context.past - context.offloaded
    assert len(result["images"][-1]) == 1 + context.clusters + context.next_page + tokens
    lengths = [len(image) for image in result["images"]]
    assert lengths[-1] > lengths[0]


def test_kvmu_refused_images_empty_the_context():
    config = TINY.replace(recent_window=3)
    arrays = random_stream(config, np.random.default_rng(4), 8, new_probability=0.1)
    image = run_stream(config, arrays, switch_contexts=True)["images"][-1]
    cases = kvmu_malformed(config, image)
    assert len(cases) >= 9
    for name, bad in cases.items():
        context = KVMUContext(config)
        context.offload()
        context.assign([0, 0], [1, 0])
        assert not context.restore(bad), name
        assert context.save() == [0], name
        assert context.refusal, name


def test_dre_context_image_and_traffic():
    from model.twins.dre import CONTEXT_MAGIC, DRETwin, context_image, context_traffic

    # word 0: magic 0xd2e1 in bits 16-31, kv_head 5 above the 5 layer bits, layer 17:
    # 0xd2e1 << 16 | 5 << 5 | 17 = 0xd2e100b1
    assert CONTEXT_MAGIC == 0xD2E1
    assert context_image(17, 5, 300, [2, 7, 9], [0]) == [0xD2E100B1, 300, 3, 1, 2, 7, 9, 0]
    with pytest.raises(ValueError, match="kv_head must be from 0 to 7, not 8"):
        context_image(0, 8, 0, [0], [0])
    # a DRE with no context yet: the HCU's and the KVMU's images are one header word each;
    # the top's save: command 1 + start 1 + 6 words + status 1 = 9; its restore adds
    # 6 words + the blocks' last check and write 2 + the decision 1 = 9
    traffic = context_traffic(DRETwin(TINY))
    assert traffic == {"hcu_words": 1, "kvmu_words": 1, "words": 6, "bytes": 24,
                       "hcu_save_cycles": 5, "kvmu_save_cycles": 5, "hcu_restore_cycles": 3,
                       "kvmu_restore_cycles": 3, "save_cycles": 9, "restore_cycles": 9}
