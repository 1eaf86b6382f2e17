"""Seeded synthetic streaming-video KV workload with the shape of VideoLLM-online.

No public KV dumps of a streaming video LLM come with this project, so the golden model runs on a
generator whose statistics have what ReSV exploits (V-Rex, arXiv 2512.12284: iterative prefill of
frames, temporal and spatial redundancy of the keys), and users can swap in real dumps with
:mod:`model.stimulus.kvdump`.

Generative story (all Gaussian, all seeded):

* **One video, shared by all layers and heads.** A latent scene state ``z_f`` (``latent_dim``
  numbers per frame) evolves frame by frame: scene cuts happen with probability
  ``scene_cut_rate`` per frame (procedural videos such as COIN are sequences of steps); at a cut
  the state jumps to a fresh scene vector; inside a scene it moves along the scene's camera
  direction by ``camera_motion`` per frame (a pan) and drifts as a random walk of step ``drift``.
* **Spatial correlation inside a frame.** Token 0 is the CLS token (``z_f`` itself); the other
  visual tokens mix ``z_f`` with the scene's per-patch structure,
  ``sqrt(spatial_correlation) z_f + sqrt(1 - spatial_correlation) m_{scene, patch}``. The
  interval token(s) are the same embedding every frame.
* **Per (layer, KV head)** a random projection ``W`` (``head_dim x latent_dim``) maps the latents
  to pre-RoPE keys, plus a head-specific mean offset and key noise (``key_noise``). Channel
  energies grow towards the low-frequency RoPE pairs, as in real LLM keys, so the key of a scene
  stays recognisable after RoPE at distant positions. Values use a second projection.
* **RoPE** (Llama-3 convention: rotate-half pairs ``(j, j + d/2)``, base 500000) is applied to
  keys and queries at the token's position in the stream (``frame * tokens_per_frame + token``):
  keys and queries are post-RoPE, as ReSV hashes them.
* **Queries.** Row ``g * tokens_per_frame + t`` is query head ``g`` (of the ``gqa_group`` heads
  sharing the KV head) at token ``t`` of the frame. Its pre-RoPE query points at the current
  scene and at ``recall_targets`` tokens of randomly chosen past frames, scaled by
  ``attention_concentration``: attention concentrates on a few past tokens and scenes, so
  retrieval has something real to find.

Everything is deterministic given ``(seed, layer, kv_head, frame)``: per-head noise is drawn in
blocks of :data:`FRAMES_PER_BLOCK` frames from generators seeded with
``(seed, layer, kv_head, block, stream)``, so the keys of a frame never depend on how many frames
are requested, and keys are generated lazily per (layer, head) (a 40K-token cache never needs all
layers in memory at once).
"""

import dataclasses
import math

import numpy as np

__all__ = ["WorkloadConfig", "WORKLOADS", "StreamingWorkload", "Frame", "apply_rope",
           "FRAMES_PER_BLOCK", "ROPE_BASE"]

#: Frames of per-head noise drawn from one seeded generator.
FRAMES_PER_BLOCK = 64
#: RoPE base of Llama-3.
ROPE_BASE = 500000.0

# Stream tags of the seed sequences (any distinct integers).
_VIDEO, _PROJECTION, _KEY_NOISE, _VALUE_NOISE, _QUERY, _SCENE, _INTERVAL = range(7)


@dataclasses.dataclass(frozen=True)
class WorkloadConfig:
    """Shape and statistics of a streaming video KV workload, validated on construction.

    Parameters
    ----------
    layers : int
        Transformer layers, at least 1.
    frames : int
        Frames in the stream, at least 1.
    kv_heads : int
        KV heads per layer (8 for Llama-3-8B).
    gqa_group : int
        Query heads per KV head (4 for Llama-3-8B).
    head_dim : int
        Head dimension, an even number (128 for Llama-3-8B).
    visual_tokens_per_frame : int
        Visual tokens per frame (10 for VideoLLM-online's 1+3x3: CLS + 9 pooled patches).
    interval_tokens : int
        Interval tokens appended after each frame's visual tokens (1 for VideoLLM-online).
    fps : float
        Frames per second (only used to report stream durations).
    seed : int
        Seed of every generator, non-negative.
    latent_dim : int
        Size of the latent scene state.
    drift : float
        Per-frame random-walk step of the scene state, 0 or more.
    camera_motion : float
        Per-frame pan of the scene state along the scene's camera direction, 0 or more.
    scene_cut_rate : float
        Probability of a scene cut at each frame, from 0 to 1.
    spatial_correlation : float
        Share of the frame latent in each patch token, from 0 to 1.
    attention_concentration : float
        Scale of the queries: larger values concentrate attention on fewer tokens, more than 0.
    recall_targets : int
        Past tokens each query row points at besides the current scene, 0 or more.
    key_noise : float
        Standard deviation of the per-token key and value noise, relative to the signal, 0 or more.

    Raises
    ------
    TypeError
        If a parameter has the wrong type.
    ValueError
        If a parameter is out of range.
    """

    layers: int
    frames: int
    kv_heads: int = 8
    gqa_group: int = 4
    head_dim: int = 128
    visual_tokens_per_frame: int = 10
    interval_tokens: int = 1
    fps: float = 2.0
    seed: int = 0
    latent_dim: int = 32
    drift: float = 0.05
    camera_motion: float = 0.04
    scene_cut_rate: float = 0.02
    spatial_correlation: float = 0.7
    attention_concentration: float = 3.0
    recall_targets: int = 2
    key_noise: float = 0.15

    def __post_init__(self):
        positive = ["layers", "frames", "kv_heads", "gqa_group", "head_dim",
                    "visual_tokens_per_frame", "latent_dim"]
        non_negative = ["interval_tokens", "seed", "recall_targets"]
        for name in positive + non_negative:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"{name} must be an integer, not {value!r}")
            lowest = 1 if name in positive else 0
            if value < lowest:
                kind = "a positive" if lowest else "a non-negative"
                raise ValueError(f"{name} must be {kind} integer, not {value!r}")
        if self.head_dim % 2:
            raise ValueError(f"head_dim must be even (RoPE rotates pairs), not {self.head_dim!r}")
        ranges = {"fps": (0.0, None, False), "drift": (0.0, None, True),
                  "camera_motion": (0.0, None, True), "scene_cut_rate": (0.0, 1.0, True),
                  "spatial_correlation": (0.0, 1.0, True),
                  "attention_concentration": (0.0, None, False), "key_noise": (0.0, None, True)}
        for name, (lowest, highest, closed) in ranges.items():
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) \
                    or not math.isfinite(value):
                raise TypeError(f"{name} must be a finite number, not {value!r}")
            too_low = value < lowest if closed else value <= lowest
            if too_low or (highest is not None and value > highest):
                low = f"{'at least' if closed else 'more than'} {lowest}"
                high = "" if highest is None else f" and at most {highest}"
                raise ValueError(f"{name} must be {low}{high}, not {value!r}")

    @property
    def tokens_per_frame(self):
        """Visual plus interval tokens per frame."""
        return self.visual_tokens_per_frame + self.interval_tokens

    @property
    def query_rows(self):
        """Query rows per (layer, KV head, frame): ``gqa_group * tokens_per_frame``."""
        return self.gqa_group * self.tokens_per_frame

    @property
    def tokens(self):
        """Tokens in the whole stream."""
        return self.frames * self.tokens_per_frame

    @property
    def seconds(self):
        """Duration of the stream in seconds."""
        return self.frames / self.fps

    def replace(self, **changes):
        """A copy with ``changes`` applied, validated again."""
        return dataclasses.replace(self, **changes)


WORKLOADS = {
    # Full VideoLLM-online shape (Llama-3-8B: 32 layers, 8 KV heads, GQA 4, head_dim 128;
    # 10 visual + 1 interval tokens per frame at 2 fps); 3637 frames = 40K tokens, about 30 min.
    "videollm": WorkloadConfig(layers=32, frames=3637),
    # The main job: all 8 KV heads of 4 layers, 480 frames (4 minutes at 2 fps, 5280 tokens).
    "default": WorkloadConfig(layers=4, frames=480),
    # Fast tests: 2 layers, 2 KV heads, GQA 2, head_dim 32, 40 frames of 3 + 1 tokens
    # (8 query rows per frame: the tiny DRE configuration's max_rows); frequent scene cuts and
    # noisier keys give a few tens of clusters.
    "tiny": WorkloadConfig(layers=2, frames=40, kv_heads=2, gqa_group=2, head_dim=32,
                           visual_tokens_per_frame=3, interval_tokens=1, latent_dim=8,
                           scene_cut_rate=0.15, key_noise=0.3),
}


@dataclasses.dataclass(frozen=True)
class Frame:
    """One frame of one (layer, KV head) stream.

    Members
    -------
    index : int
        Frame number.
    first_token : int
        Stream position of the frame's first token.
    keys, values : float64 arrays (tokens_per_frame, head_dim)
        Post-RoPE keys and the values of the frame's tokens.
    queries : float64 array (query_rows, head_dim)
        Post-RoPE queries, row ``g * tokens_per_frame + t``.
    """

    index: int
    first_token: int
    keys: np.ndarray
    values: np.ndarray
    queries: np.ndarray


def _normal_cdf(x):
    return 0.5 * (1.0 + np.vectorize(math.erf)(np.asarray(x) / math.sqrt(2.0)))


def _rng(*words):
    return np.random.default_rng(np.random.SeedSequence([int(word) for word in words]))


def apply_rope(vectors, positions, base=ROPE_BASE):
    """Rotary position embedding, rotate-half convention (pairs ``(j, j + d/2)``).

    Parameters
    ----------
    vectors : float array (n, d), d even
    positions : int array (n,)

    Returns
    -------
    float64 array (n, d)
    """
    vectors = np.asarray(vectors, dtype=np.float64)
    half = vectors.shape[-1] // 2
    inv_freq = base ** (-np.arange(half) * 2.0 / vectors.shape[-1])
    angle = np.asarray(positions, dtype=np.float64)[:, None] * inv_freq[None, :]
    cos, sin = np.cos(angle), np.sin(angle)
    first, second = vectors[:, :half], vectors[:, half:]
    return np.concatenate([first * cos - second * sin, second * cos + first * sin], axis=1)


class StreamingWorkload:
    """Seeded generator of post-RoPE K, V and Q per (layer, KV head), frame by frame.

    Parameters
    ----------
    wcfg : WorkloadConfig

    Raises
    ------
    TypeError
        If ``wcfg`` is not a :class:`WorkloadConfig`.
    """

    def __init__(self, wcfg):
        if not isinstance(wcfg, WorkloadConfig):
            raise TypeError(f"wcfg must be a WorkloadConfig, not {type(wcfg).__name__}")
        self._cfg = wcfg
        self._latents, self._scene = self._video_latents()
        self._projection_cache = {}

    @property
    def config(self):
        return self._cfg

    @property
    def tokens_per_frame(self):
        return self._cfg.tokens_per_frame

    @property
    def frames(self):
        return self._cfg.frames

    @property
    def scene_of_frame(self):
        """Scene number of every frame (int64 array), for analysis."""
        return self._scene.copy()

    def frame_of_token(self, tokens=None):
        """Frame number of every token of the first ``tokens`` tokens (default: all)."""
        count = self._cfg.tokens if tokens is None else int(tokens)
        return np.arange(count, dtype=np.int64) // self.tokens_per_frame

    # Video-level latents --------------------------------------------------------------------

    def _video_latents(self):
        cfg = self._cfg
        dim, frames, visual = cfg.latent_dim, cfg.frames, cfg.visual_tokens_per_frame
        blocks = -(-frames // FRAMES_PER_BLOCK)
        draws = [_rng(cfg.seed, _VIDEO, block).standard_normal((FRAMES_PER_BLOCK, dim + 1))
                 for block in range(blocks)]
        draws = np.concatenate(draws)[:frames]
        # a cut when a standard normal falls below the scene_cut_rate quantile
        cuts = _normal_cdf(draws[:, 0]) < cfg.scene_cut_rate
        cuts[0] = True
        scene = np.cumsum(cuts) - 1
        scenes = int(scene[-1]) + 1
        centre, direction, patches = [], [], []
        for index in range(scenes):
            rng = _rng(cfg.seed, _SCENE, index)
            centre.append(rng.standard_normal(dim))
            direction.append(rng.standard_normal(dim) / math.sqrt(dim))
            patches.append(rng.standard_normal((visual, dim)))
        centre, direction, patches = np.array(centre), np.array(direction), np.array(patches)
        interval = _rng(cfg.seed, _INTERVAL).standard_normal(dim)
        steps = draws[:, 1:] * cfg.drift
        start = np.flatnonzero(cuts)
        age = np.arange(frames) - start[scene]
        walk = np.cumsum(steps, axis=0)
        walk -= walk[start[scene]]                  # the random walk restarts at each cut
        state = centre[scene] + cfg.camera_motion * age[:, None] * direction[scene] * \
            math.sqrt(dim) + walk
        state /= np.linalg.norm(state, axis=1, keepdims=True) / math.sqrt(dim)
        rho = cfg.spatial_correlation
        tokens = np.empty((frames, cfg.tokens_per_frame, dim))
        tokens[:, 0] = state
        tokens[:, 1:visual] = math.sqrt(rho) * state[:, None, :] + \
            math.sqrt(1.0 - rho) * patches[scene][:, 1:visual]
        tokens[:, visual:] = interval
        return tokens, scene

    # Per (layer, head) projections -------------------------------------------------------------

    def _check_head(self, layer, kv_head):
        cfg = self._cfg
        limits = (("layer", layer, cfg.layers), ("kv_head", kv_head, cfg.kv_heads))
        for name, value, count in limits:
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) \
                    or not 0 <= value < count:
                raise ValueError(f"{name} must be an integer from 0 to {count - 1}, not {value!r}")

    def _projections(self, layer, kv_head):
        key = (layer, kv_head)
        if key not in self._projection_cache:
            cfg = self._cfg
            rng = _rng(cfg.seed, _PROJECTION, layer, kv_head)
            d, half = cfg.head_dim, cfg.head_dim // 2
            # channel energy grows towards the low-frequency RoPE pairs (high pair index)
            pair = np.arange(half) / max(1, half - 1)
            profile = np.tile(0.25 + 1.5 * pair ** 2, 2)
            profile *= math.sqrt(d / np.sum(profile ** 2))
            key_map = rng.standard_normal((d, cfg.latent_dim)) / math.sqrt(cfg.latent_dim)
            key_map *= profile[:, None]
            offset = rng.standard_normal(d) * profile * 0.5
            value_map = rng.standard_normal((d, cfg.latent_dim)) / math.sqrt(cfg.latent_dim)
            if len(self._projection_cache) > 64:
                self._projection_cache.clear()
            self._projection_cache[key] = (key_map, offset, value_map)
        return self._projection_cache[key]

    def _frame_range(self, frames):
        total = self._cfg.frames
        if isinstance(frames, (int, np.integer)) and not isinstance(frames, bool):
            frames = range(int(frames))
        elif isinstance(frames, slice):
            frames = range(*frames.indices(total))
        if not isinstance(frames, range) or frames.step != 1:
            raise TypeError(f"frames must be a count, a slice or a range of step 1, not {frames!r}")
        if frames.start < 0 or frames.stop > total or frames.start > frames.stop:
            raise ValueError(f"frames must lie within 0 to {total}, not {frames!r}")
        return frames

    def _noise(self, layer, kv_head, frames, stream):
        cfg = self._cfg
        shape = (cfg.tokens_per_frame, cfg.head_dim)
        parts = []
        first_block = frames.start // FRAMES_PER_BLOCK
        last_block = (frames.stop - 1) // FRAMES_PER_BLOCK if len(frames) else first_block - 1
        for block in range(first_block, last_block + 1):
            rng = _rng(cfg.seed, stream, layer, kv_head, block)
            noise = rng.standard_normal((FRAMES_PER_BLOCK,) + shape)
            low = max(frames.start - block * FRAMES_PER_BLOCK, 0)
            high = min(frames.stop - block * FRAMES_PER_BLOCK, FRAMES_PER_BLOCK)
            parts.append(noise[low:high])
        if not parts:
            return np.zeros((0,) + shape)
        return np.concatenate(parts)

    def positions(self, frames):
        """Stream positions of the tokens of ``frames`` (a count, slice or range)."""
        frames = self._frame_range(frames)
        tpf = self.tokens_per_frame
        return np.arange(frames.start * tpf, frames.stop * tpf, dtype=np.int64)

    def keys(self, layer, kv_head, frames):
        """Post-RoPE keys of ``frames`` (a count, slice or range): float64 (tokens, head_dim)."""
        self._check_head(layer, kv_head)
        frames = self._frame_range(frames)
        key_map, offset, _ = self._projections(layer, kv_head)
        latents = self._latents[frames.start:frames.stop]
        noise = self._noise(layer, kv_head, frames, _KEY_NOISE)
        raw = latents @ key_map.T + offset + \
            self._cfg.key_noise * noise * np.linalg.norm(key_map, axis=1)
        raw = raw.reshape(-1, self._cfg.head_dim)
        return apply_rope(raw, self.positions(frames))

    def values(self, layer, kv_head, frames):
        """Values of ``frames`` (a count, slice or range): float64 (tokens, head_dim)."""
        self._check_head(layer, kv_head)
        frames = self._frame_range(frames)
        _, _, value_map = self._projections(layer, kv_head)
        latents = self._latents[frames.start:frames.stop]
        noise = self._noise(layer, kv_head, frames, _VALUE_NOISE)
        raw = latents @ value_map.T + self._cfg.key_noise * noise
        return raw.reshape(-1, self._cfg.head_dim)

    def queries(self, layer, kv_head, frame):
        """Post-RoPE queries of one frame: float64 (gqa_group * tokens_per_frame, head_dim).

        Row ``g * tokens_per_frame + t`` is query head ``g`` at token ``t`` of the frame.
        """
        self._check_head(layer, kv_head)
        cfg = self._cfg
        if not isinstance(frame, (int, np.integer)) or not 0 <= frame < cfg.frames:
            raise ValueError(f"frame must be an integer from 0 to {cfg.frames - 1}, not {frame!r}")
        frame = int(frame)
        rng = _rng(cfg.seed, _QUERY, layer, kv_head, frame)
        key_map, _, _ = self._projections(layer, kv_head)
        tpf, group, dim = cfg.tokens_per_frame, cfg.gqa_group, cfg.latent_dim
        current = self._latents[frame]                                # (tpf, latent)
        pointer = np.repeat(current[None, :, :], group, axis=0)       # (group, tpf, latent)
        if cfg.recall_targets and frame > 0:
            # each query head recalls its own few past tokens (shared by the frame's tokens)
            past_frames = rng.integers(0, frame, (group, cfg.recall_targets))
            past_tokens = rng.integers(0, cfg.visual_tokens_per_frame,
                                       (group, cfg.recall_targets))
            recalled = self._latents[past_frames, past_tokens].sum(axis=1)   # (group, latent)
            pointer = pointer + recalled[:, None, :]
        pointer = pointer + 0.3 * rng.standard_normal((group, tpf, dim))
        raw = pointer.reshape(-1, dim) @ key_map.T
        raw /= np.linalg.norm(raw, axis=1, keepdims=True)
        raw *= cfg.attention_concentration * math.sqrt(cfg.head_dim)
        positions = np.tile(np.arange(frame * tpf, (frame + 1) * tpf), group)
        return apply_rope(raw, positions)

    def stream(self, layer, kv_head, frames=None):
        """Iterate over the :class:`Frame` objects of one (layer, KV head), in order.

        Parameters
        ----------
        frames : int, slice or range, optional
            Frames to visit (default: all).
        """
        frames = self._frame_range(self._cfg.frames if frames is None else frames)
        tpf = self.tokens_per_frame
        for start in range(frames.start, frames.stop, FRAMES_PER_BLOCK):
            block = range(start, min(start + FRAMES_PER_BLOCK, frames.stop))
            keys = self.keys(layer, kv_head, block).reshape(len(block), tpf, -1)
            values = self.values(layer, kv_head, block).reshape(len(block), tpf, -1)
            for offset, index in enumerate(block):
                yield Frame(index, index * tpf, keys[offset], values[offset],
                            self.queries(layer, kv_head, index))
