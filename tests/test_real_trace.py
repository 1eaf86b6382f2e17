"""Real traces (model/stimulus/real_trace): the numpy LM, the vision tokens, the projector, the
pipeline on a small slice, and every part of the project on the trace's shapes.

The optional group is installed by ``make test`` (the ``test`` target depends on its stamp), so
nothing here is skipped. One language model is loaded per module (about 5 s) and one small trace
(carphone, 3 frames at 5 fps, the first 2 layers) is built and shared.
"""

import json

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from model import main as main_job
from model.config import PRESETS
from model.evaluation.trace_study import (_conclusion, hamming_cosine_correlation, run_study,
                                          shifted_dot_scores)
from model.reference.resv import ResvHead, exact_wicsum, hash_keys, make_hyperplanes
from model.stimulus.kvdump import TOKEN_KINDS, load_kv_dump, save_kv_dump
from model.stimulus.real_trace import assets
from model.stimulus.real_trace.__main__ import main as trace_cli
from model.stimulus.real_trace.clip import decode_clip
from model.stimulus.real_trace.llama import LlamaModel, apply_rope, rope_angles, unpermute_rows
from model.stimulus.real_trace.pipeline import PROMPT, TraceOptions, build_trace
from model.stimulus.real_trace.projector import FixedProjector
from model.stimulus.real_trace.tokenizer import byte_alphabet
from model.stimulus.real_trace.vision import frame_tokens, normalize_pixels
from model.system.__main__ import main as system_main
from model.twins.hcu import hash_cluster
from model.twins.wtu import wtu_problem

SLICE = TraceOptions(clip="carphone", fps=5.0, frames=3, layers=2)
EDGE = PRESETS["edge"]


@pytest.fixture(scope="module", autouse=True)
def one_blas_thread():
    """One BLAS thread, as the entry points use (small products; xdist runs a worker per core)."""
    with threadpool_limits(limits=1, user_api="blas"):
        yield


@pytest.fixture(scope="module")
def lm():
    return LlamaModel.from_gguf(assets.language_model_path())


@pytest.fixture(scope="module")
def trace(lm, tmp_path_factory):
    path = tmp_path_factory.mktemp("trace") / "carphone.npz"
    info = build_trace(SLICE, path, model=lm)
    return path, info


# -- the language model ----------------------------------------------------------------------

def test_model_shape(lm):
    # the published SmolLM2-135M configuration: 30 layers, 576 hidden, 9 heads, 3 KV heads
    assert {k: lm.hparams[k] for k in ("layers", "hidden", "heads", "kv_heads", "head_dim")} == \
        {"layers": 30, "hidden": 576, "heads": 9, "kv_heads": 3, "head_dim": 64}
    assert lm.hparams["rope_base"] == 100000.0


def test_greedy_next_token(lm):
    assert lm.generate_greedy("The capital of France is", 1) == " Paris"


PARAGRAPH = ("The quick brown fox jumps over the lazy dog. It was a sunny day, and the children "
             "were playing in the park while their parents watched from the benches.")


def test_perplexity_in_range_and_needs_the_unpermuted_rows(lm):
    # Measured: 18.7 with this implementation, 40.3 with GGUF's Q/K rows left interleaved
    # (rotate-half RoPE applied to the wrong pairs). Range 5-30: below 5 would mean leaked
    # targets, above 30 a damaged forward pass such as that wrong convention.
    good = lm.perplexity(PARAGRAPH)
    assert 5.0 < good < 30.0
    weights = lm.weights
    for layer in range(lm.layers):
        for name, heads in (("attn_q", 9), ("attn_k", 3)):
            key = f"blk.{layer}.{name}.weight"
            rows = weights[key]
            weights[key] = rows.reshape(heads, 2, rows.shape[0] // heads // 2, -1) \
                .swapaxes(1, 2).reshape(rows.shape)       # llama.cpp's permute(): back to GGUF
    wrong = LlamaModel(lm.hparams, weights, lm.tokenizer).perplexity(PARAGRAPH)
    assert wrong > 30.0


def test_unpermute_inverts_the_gguf_converter_permutation():
    # convert_hf_to_gguf.py permute(): w.reshape(n_head, 2, rows // n_head // 2, cols)
    #                                   .swapaxes(1, 2).reshape(w.shape)
    hf = np.arange(2 * 8 * 3).reshape(16, 3)      # 2 heads of head_dim 8
    gguf = hf.reshape(2, 2, 4, 3).swapaxes(1, 2).reshape(16, 3)
    assert gguf[:4, 0].tolist() == [0, 12, 3, 15]  # rows 0, 4, 1, 5 of head 0 interleaved
    assert np.array_equal(unpermute_rows(gguf, 2), hf)
    with pytest.raises(ValueError, match=r"rows \(16\) must split into 3 heads"):
        unpermute_rows(gguf, 3)


def layer0_keys(lm, ids):
    captured = {}
    lm.prefill(lm.embed(ids), lm.new_cache(len(ids), 1),
               record=lambda layer, q, k, v: captured.update(k=k), layers=1)
    return captured["k"]                              # (kv_heads, n, head_dim)


def test_keys_at_two_positions_relate_by_the_rotation(lm):
    # A layer-0 key depends only on its token and its position: the key of " video" at
    # position 5 is the one at position 0 rotated by 5 steps, pairs (i, i + 32).
    ids = lm.tokenizer.encode("A cat sat on the video")
    alone = layer0_keys(lm, ids[-1:])[:, 0]
    later = layer0_keys(lm, ids)[:, -1]
    position = len(ids) - 1
    assert position == 5
    rotated = apply_rope(alone[:, None], rope_angles([position], 64, 100000.0))[:, 0]
    np.testing.assert_allclose(later, rotated, rtol=1e-4, atol=1e-4)
    # the interleaved convention (pairs 2i, 2i+1) does not relate them
    angles = rope_angles([position], 64, 100000.0)[0]
    pairs = alone.reshape(3, 32, 2)
    interleaved = np.stack([pairs[..., 0] * np.cos(angles) - pairs[..., 1] * np.sin(angles),
                            pairs[..., 1] * np.cos(angles) + pairs[..., 0] * np.sin(angles)],
                           axis=-1).reshape(3, 64)
    assert not np.allclose(later, interleaved, atol=1e-2)


def test_chunked_prefill_equals_one_pass(lm):
    ids = lm.tokenizer.encode("Frames arrive one at a time and are prefilled as they come.")
    whole = lm.new_cache(len(ids))
    lm.prefill(lm.embed(ids), whole, layers=4)
    chunked = lm.new_cache(4)                         # also exercises the cache growing
    for first in range(0, len(ids), 5):
        lm.prefill(lm.embed(ids[first:first + 5]), chunked, layers=4)
    assert chunked.length == whole.length == len(ids)
    np.testing.assert_allclose(chunked.keys, whole.keys, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(chunked.values, whole.values, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="layers must be an integer from 1 to 30"):
        lm.prefill(lm.embed(ids), lm.new_cache(), layers=31)


def test_tokenizer_round_trip_and_control_tokens(lm):
    tok = lm.tokenizer
    text = "<|im_start|>user\nIt's 2024: naïve café, 3.14 — ok?<|im_end|>"
    ids = tok.encode(text)
    assert tok.decode(ids) == text
    assert ids[0] == tok.token_id("<|im_start|>")
    assert tok.encode(" Paris") == [tok.token_id("ĠParis")]
    # digits are single pieces in the smollm pre-tokenizer
    assert [tok.decode([i]) for i in tok.encode("2024")] == ["2", "0", "2", "4"]
    with pytest.raises(TypeError, match="text must be a str"):
        tok.encode(b"bytes")
    assert byte_alphabet()[0x20] == "Ġ" and len(set(byte_alphabet().values())) == 256


# -- vision tokens, projector, clip -----------------------------------------------------------

def test_frame_tokens_pool_like_adaptive_avg_pool():
    side = 16
    patches = np.arange(side * side, dtype=np.float32).reshape(side, side)   # value 16 r + c
    features = np.concatenate([[[-1.0]], patches.reshape(-1, 1)])[None]      # (1, 257, 1)
    tokens = frame_tokens(features)
    assert tokens.shape == (1, 10, 1) and tokens[0, 0, 0] == -1.0
    # bins of 16 into 3: [0, 6), [5, 11), [10, 16): centres 2.5, 7.5, 12.5 rows and columns
    centres = [2.5, 7.5, 12.5]
    expected = [16 * r + c for r in centres for c in centres]
    np.testing.assert_allclose(tokens[0, 1:, 0], expected)
    with pytest.raises(ValueError, match=r"features must be \(frames, 1 \+ side\*\*2, dims\)"):
        frame_tokens(np.zeros((1, 20, 4)))


def test_normalize_pixels_checks_input():
    out = normalize_pixels(np.full((1, 2, 2, 3), 255, np.uint8))
    # (1 - 0.485) / 0.229 for the red channel
    assert out.shape == (1, 3, 2, 2) and out[0, 0, 0, 0] == pytest.approx(0.515 / 0.229, 1e-5)
    with pytest.raises(ValueError, match="pixels must be uint8"):
        normalize_pixels(np.zeros((1, 2, 2, 3), np.float32))


def test_projector_is_a_deterministic_isometry_to_the_target_norm():
    rng = np.random.default_rng(3)
    features = rng.standard_normal((5, 384))
    projector = FixedProjector(384, 576, 2.5, seed=7)
    projected = projector(features)
    np.testing.assert_allclose(np.linalg.norm(projected, axis=1), 2.5, rtol=1e-5)
    cosine = lambda x: (x @ x.T) / np.outer(np.linalg.norm(x, axis=1),   # noqa: E731
                                            np.linalg.norm(x, axis=1))
    np.testing.assert_allclose(cosine(projected), cosine(features), atol=1e-5)
    np.testing.assert_array_equal(FixedProjector(384, 576, 2.5, seed=7)(features), projected)
    with pytest.raises(ValueError, match=r"in_dims \(600\) must not exceed out_dims \(576\)"):
        FixedProjector(600, 576, 1.0)
    with pytest.raises(ValueError, match="target_norm must be positive"):
        FixedProjector(384, 576, 0.0)


def test_decode_clip_samples_the_requested_rate():
    clip = decode_clip(assets.clip_path("carphone"), 5, max_frames=4, size=32)
    assert clip.pixels.shape == (4, 32, 32, 3) and clip.pixels.dtype == np.uint8
    assert clip.source_size == (176, 144)
    # one frame per 0.2 s tick: each kept frame is the first at or after k / 5 s (30 fps source)
    assert np.all(np.abs(clip.times - np.arange(4) / 5) < 1 / 29.97 + 1e-6)
    with pytest.raises(ValueError, match="fps must be a positive number"):
        decode_clip(assets.clip_path("carphone"), 0)
    with pytest.raises(ValueError, match="clip must be one of bigbuckbunny, bikes, carphone"):
        assets.clip_path("cartoon")


# -- the pipeline on a small slice ------------------------------------------------------------

def test_trace_slice_is_a_valid_kv_dump(trace, lm):
    path, info = trace
    dump = load_kv_dump(path)
    prompt = info["shape"]["prompt_tokens"]
    assert (dump.layers, dump.kv_heads, dump.head_dim, dump.frames) == (2, 3, 64, 3)
    assert dump.tokens == prompt + 3 * 11 and dump.query_rows == 33
    kinds = dump.token_kind
    assert (kinds == TOKEN_KINDS["text"]).sum() == prompt
    assert (kinds == TOKEN_KINDS["visual"]).sum() == 30
    assert (kinds == TOKEN_KINDS["interval"]).sum() == 3
    assert np.array_equal(np.bincount(dump.frame_of_token), [prompt + 11, 11, 11])
    # the last token of every frame is its interval token
    assert np.all(kinds[np.cumsum(np.bincount(dump.frame_of_token)) - 1] == 2)
    assert np.all(np.isfinite(dump.queries(1, 2, 2)))
    sidecar = json.loads(path.with_suffix(".json").read_text())
    assert sidecar["shape"]["tokens"] == dump.tokens
    assert sidecar["projector"]["kind"].startswith("fixed, untrained")


def test_trace_prompt_keys_are_the_model_keys(trace, lm):
    path, _ = trace
    dump = load_kv_dump(path)
    captured = {}
    keys = dump.keys(0, 1)
    # layer-0 keys of the prompt depend on the prompt alone: recompute them from the text
    prompt_ids = lm.tokenizer.encode(PROMPT)
    lm.prefill(lm.embed(prompt_ids), lm.new_cache(len(prompt_ids), 1),
               record=lambda layer, q, k, v: captured.update(k=k), layers=1)
    np.testing.assert_allclose(keys[:len(prompt_ids)], captured["k"][1], rtol=1e-4, atol=1e-4)


def test_cli_errors_name_the_parameter(capsys):
    assert trace_cli(["--fps", "0"]) == 2
    assert "fps must be a number above 0 and at most 60" in capsys.readouterr().err
    with pytest.raises(ValueError, match="layers must be an integer of at least 0"):
        TraceOptions(layers=-1)


def test_token_kind_is_validated(tmp_path):
    arrays = {"keys": np.zeros((1, 1, 4, 2)), "values": np.zeros((1, 1, 4, 2)),
              "frame_of_token": np.array([0, 0, 1, 1]), "queries": np.ones((1, 1, 2, 1, 2))}
    with pytest.raises(ValueError, match=r"key 'token_kind' must have shape \(4,\) and hold "
                                         r"only \[0, 1, 2\]"):
        save_kv_dump(tmp_path / "bad.npz", token_kind=np.array([0, 1, 2, 3]), **arrays)
    assert not list(tmp_path.iterdir())               # nothing half-written
    save_kv_dump(tmp_path / "good.npz", token_kind=np.array([0, 1, 1, 2]), **arrays)
    assert load_kv_dump(tmp_path / "good.npz").token_kind.tolist() == [0, 1, 1, 2]
    assert [p.name for p in tmp_path.iterdir()] == ["good.npz"]


# -- every part of the project on the trace's shapes -----------------------------------------

@pytest.mark.parametrize("hash_bits,threshold", [(16, 4), (32, 7), (64, 14)])
def test_main_job_and_study_accept_the_trace(trace, hash_bits, threshold):
    path, _ = trace
    dump = load_kv_dump(path)
    config = EDGE.replace(hash_bits=hash_bits, hamming_threshold=threshold)
    results = main_job.run_job(dump, config, eval_count=2)
    assert results["shape"] == {"layers": 2, "kv_heads": 3, "head_dim": 64, "frames": 3,
                                "tokens": dump.tokens, "query_rows": 33}
    assert results["methods"]["resv"]["count"] == 2 * 2 * 3     # frames x layers x KV heads
    study = run_study(dump, config, results, results["evaluated_frames"], pairs=200)
    assert np.asarray(study["hamming_cosine"]["per_layer_head"]).shape == (2, 3)
    assert np.asarray(study["resv_retrieval"]["per_layer_head"]).shape == (2, 3)
    for name in ("softmax", "shifted_dot"):
        shares = study["wicsum_sweep"][name]["ratio"]
        assert len(shares) == 9 and np.all(np.diff(shares) >= -1e-12)   # monotone in the ratio
    # the sweep's softmax row at 0.3 (code 77 of 256, edge's own) replays the main job's ReSV
    assert config.wicsum_ratio_code == config.with_ratio(0.3).wicsum_ratio_code == 77
    resv = results["methods"]["resv"]
    assert study["wicsum_sweep"]["softmax"]["ratio"][2] == pytest.approx(resv["ratio"])
    assert study["wicsum_sweep"]["softmax"]["recall"][2] == pytest.approx(resv["recall"])


def test_main_cli_on_the_trace_writes_the_study(trace, tmp_path, capsys):
    path, _ = trace
    assert main_job.main(["--kv-dump", str(path), "--out", str(tmp_path), "--eval-frames",
                          "2"]) == 0
    out = capsys.readouterr().out
    assert "Hamming vs cosine correlation" in out and "conclusion:" in out
    study = json.loads((tmp_path / "study.json").read_text())
    assert set(study["wicsum_sweep"]) == {"ratios", "wicsum_ratio_bits", "softmax",
                                          "shifted_dot"}
    assert (tmp_path / "study.png").read_bytes()[:4] == b"\x89PNG"


def test_system_model_accepts_the_trace(trace, tmp_path):
    path, _ = trace
    args = ["--kv-dump", str(path), "--cache-tokens", "60", "--layers", "2", "--kv-heads", "3",
            "--frames-per-size", "1", "--out", str(tmp_path)]
    assert system_main(args) == 0
    assert (tmp_path / "system.json").is_file()


def test_block_twins_accept_the_trace(trace):
    path, _ = trace
    dump = load_kv_dump(path)
    keys = dump.keys(1, 2)
    planes = make_hyperplanes(EDGE.hash_bits, 64, 0, 1, 2)
    hcu = hash_cluster(EDGE, hash_keys(keys, planes))
    head = ResvHead(EDGE, 64, planes, dump.tokens)
    last = int(dump.frame_starts[2])
    head.add_keys(keys[:last])
    step = head.step(keys[last:], dump.queries(1, 2, 2))
    assert np.array_equal(hcu["cluster"], head.token_cluster)    # HCU twin = reference
    wtu = wtu_problem(EDGE, step.scores, step.counts)
    exact = np.array([exact_wicsum(row, step.counts, EDGE) for row in step.scores])
    assert np.all(wtu["row_selected"] >= exact)                   # coarse WTU: a superset


# -- the study's pieces -----------------------------------------------------------------------

def test_shifted_dot_scores_hand_computed():
    # row [-2, 0, 2]: (l + 2) / 4 * 255 + 0.5 -> floor: 0, 128 (127.5 + 0.5), 255
    assert shifted_dot_scores(np.array([[-2.0, 0.0, 2.0]]), 8).tolist() == [[0, 128, 255]]
    assert shifted_dot_scores(np.array([1.0, 1.0]), 4).tolist() == [15, 15]
    with pytest.raises(ValueError, match="score_bits must be an integer from 1 to 63"):
        shifted_dot_scores(np.zeros(2), 0)


def test_hamming_distance_falls_as_cosine_rises():
    rng = np.random.default_rng(11)
    centres = rng.standard_normal((4, 64))
    keys = centres[rng.integers(0, 4, 300)] + 0.3 * rng.standard_normal((300, 64))
    planes = make_hyperplanes(32, 64, 0, 0, 0)
    assert hamming_cosine_correlation(keys, planes, 2000, np.random.default_rng(0)) < -0.8
    same = np.ones((10, 64))                          # every pair at distance 0, cosine 1
    assert np.isnan(hamming_cosine_correlation(same, planes, 50, np.random.default_rng(0)))
    with pytest.raises(ValueError, match="keys must hold at least 2 tokens"):
        hamming_cosine_correlation(same[:1], planes, 5, np.random.default_rng(0))


def test_conclusion_picks_the_transform_near_a_third():
    ratios = [0.1, 0.2, 0.3, 0.4]
    # softmax selects 15% at 0.3 (17.7 points off 32.7%), shifted_dot 35% (2.3 points off)
    sweep = {"softmax": {"selected": [0.05, 0.1, 0.15, 0.2], "ratio": [0.1, 0.2, 0.3, 0.4],
                         "recall": [0.5, 0.6, 0.7, 0.8]},
             "shifted_dot": {"selected": [0.2, 0.27, 0.35, 0.5], "ratio": [0.3, 0.4, 0.5, 0.6],
                             "recall": [0.8, 0.9, 0.95, 0.97]}}
    conclusion = _conclusion(sweep, ratios)
    assert conclusion["reproduces_at_0.3"] == ["shifted_dot"]
    assert conclusion["default"] == {"score_transform": "shifted_dot", "wicsum_ratio": 0.3}


def test_conclusion_without_a_match_compares_recall_at_a_third():
    ratios = [0.1, 0.2, 0.3, 0.4]
    # at 0.3: softmax 10% and shifted_dot 60%, both more than 10 points off 32.7%; nearest a
    # third: softmax 30% at 0.4 (recall 0.93), shifted_dot 35% at 0.1 (recall 0.90)
    sweep = {"softmax": {"selected": [0.04, 0.07, 0.10, 0.30], "ratio": [0.2, 0.25, 0.3, 0.4],
                         "recall": [0.85, 0.87, 0.88, 0.93]},
             "shifted_dot": {"selected": [0.35, 0.45, 0.60, 0.70], "ratio": [0.4, 0.5, 0.65, 0.7],
                             "recall": [0.90, 0.94, 0.96, 0.97]}}
    conclusion = _conclusion(sweep, ratios)
    assert conclusion["reproduces_at_0.3"] == []
    assert conclusion["default"] == {"score_transform": "softmax", "wicsum_ratio": 0.4}
    assert conclusion["verdict"].startswith("neither reading reproduces 32.7%")
