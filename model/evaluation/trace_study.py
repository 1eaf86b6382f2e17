"""The study of ReSV on a KV trace of a real model (printed by the main job on a ``--kv-dump``).

:func:`run_study` takes the main job's results (:func:`model.main.run_job`) and the trace, and
adds what the paper reports about real keys:

* **Hamming vs cosine**: for ``pairs`` random key pairs of every (layer, KV head), the Pearson
  correlation between the Hamming distance of their ``hash_bits``-bit SimHash (the main job's
  hyperplanes) and their cosine similarity (paper: about 0.8 in magnitude; the sign is negative,
  close keys differ in few bits);
* **clustering**: tokens per cluster and the HC-table overhead (paper: about 32 and 1.67%);
* **ReSV's retrieval per layer and KV head** (paper: 4.2% to 44% across layers);
* **ReSV against the baselines** at equal token counts (from the main job);
* **the WiCSum ratio and the score transform**: the paper's Thr_wics = 0.3 retrieves 32.7% of the
  tokens and does not say what score the weighted sum uses. The ratio is swept over
  :data:`RATIOS` for the two readings of :data:`TRANSFORMS`: the project's softmax-like scores
  (:func:`model.reference.resv.quantize_scores`) and raw dot products shifted to be
  non-negative (:func:`shifted_dot_scores`). Each sweep replays the trace with the same clusters
  as the main job and selects with the exact WiCSum rule at every ratio.

Retrieved shares count as the main job does: members of the selected clusters plus the
``recent_window`` most recent tokens, over the past cache; ``selected`` is the share of the
selected clusters' members alone.
"""

import json
import math
from pathlib import Path

import numpy as np

from model.evaluation.metrics import FrameAttention
from model.reference.resv import (ResvHead, check_score_inputs, hash_keys, make_hyperplanes,
                                  quantize_scores, wicsum_select)

__all__ = ["RATIOS", "TRANSFORMS", "PAPER", "shifted_dot_scores", "hamming_cosine_correlation",
           "wicsum_sweep", "run_study", "format_study", "write_study"]

#: WiCSum ratios of the sweep.
RATIOS = tuple(round(0.1 * step, 1) for step in range(1, 10))
#: The paper's figures the study compares with.
PAPER = {"hamming_cosine_correlation": -0.8, "tokens_per_cluster": 32.0,
         "hc_table_overhead": 0.0167, "retrieved_at_0.3": 0.327,
         "retrieval_per_layer": (0.042, 0.44)}
_PAIR_STREAM = 211


def shifted_dot_scores(logits, score_bits):
    """Unsigned WTU scores of raw dot products shifted to be non-negative, per row.

    ``s = floor((l - rowmin) / (rowmax - rowmin) * (2**score_bits - 1) + 0.5)``: the row's
    lowest logit scores 0, its highest the largest score, linearly in between (a row of equal
    logits scores the largest value everywhere). Rows are the last axis.

    Returns
    -------
    uint64 array, the shape of ``logits``
    """
    logits, top = check_score_inputs(logits, score_bits)
    if logits.shape[-1] == 0:
        return np.zeros(logits.shape, dtype=np.uint64)
    low = logits.min(axis=-1, keepdims=True)
    span = logits.max(axis=-1, keepdims=True) - low
    scaled = np.where(span > 0, (logits - low) / np.where(span > 0, span, 1.0), 1.0)
    return np.clip(np.floor(scaled * top + 0.5), 0, top).astype(np.uint64)


#: Score transforms of the sweep: name -> function(logits, score_bits, head_dim).
TRANSFORMS = {
    "softmax": quantize_scores,
    "shifted_dot": lambda logits, score_bits, head_dim: shifted_dot_scores(logits, score_bits),
}


def hamming_cosine_correlation(keys, hyperplanes, pairs, rng):
    """Pearson correlation of SimHash Hamming distance and cosine similarity of key pairs.

    Parameters
    ----------
    keys : float array (tokens, head_dim)
    hyperplanes : float array (hash_bits, head_dim)
    pairs : int
        Random pairs of distinct tokens.
    rng : numpy.random.Generator

    Returns
    -------
    float (NaN if either quantity is constant over the pairs)
    """
    keys = np.asarray(keys, dtype=np.float64)
    if len(keys) < 2:
        raise ValueError(f"keys must hold at least 2 tokens, not {len(keys)}")
    first = rng.integers(0, len(keys), pairs)
    second = (first + rng.integers(1, len(keys), pairs)) % len(keys)    # never the same token
    hashes = hash_keys(keys, hyperplanes)
    distance = np.bitwise_count(hashes[first] ^ hashes[second]).astype(np.float64)
    norms = np.maximum(np.linalg.norm(keys, axis=1), 1e-30)
    cosine = np.einsum("nd,nd->n", keys[first], keys[second]) / (norms[first] * norms[second])
    if distance.std() == 0 or cosine.std() == 0:
        return float("nan")
    return float(np.corrcoef(distance, cosine)[0, 1])


def wicsum_sweep(source, config, layer, kv_head, eval_frames, seed, ratios=RATIOS):
    """Retrieved share, recall and output error per transform and ratio on one (layer, KV head).

    The stream is replayed through :class:`model.reference.resv.ResvHead` (clusters do not depend
    on the ratio); on every evaluated frame the logits ``q . k_c`` are turned into scores by each
    of :data:`TRANSFORMS` and selected by the exact WiCSum rule at each ratio.

    Returns
    -------
    dict transform -> dict of float arrays (ratios, frames): ``ratio``, ``selected``, ``recall``,
    ``output_error``
    """
    keys, values = source.keys(layer, kv_head), source.values(layer, kv_head)
    head = ResvHead(config, source.head_dim,
                    make_hyperplanes(config.hash_bits, source.head_dim, seed, layer, kv_head),
                    source.tokens)
    configs = [config.with_ratio(ratio) for ratio in ratios]
    shape = (len(ratios), len(eval_frames))
    sweep = {name: {metric: np.zeros(shape) for metric in ("ratio", "selected", "recall",
                                                            "output_error")}
             for name in TRANSFORMS}
    clustered = 0
    for column, frame in enumerate(eval_frames):
        past, end = int(source.frame_starts[frame]), int(source.frame_starts[frame + 1])
        if past > clustered:        # the frames before this one, in one call (same clusters)
            head.add_keys(keys[clustered:past])
        clustered = end
        queries = source.queries(layer, kv_head, frame)
        step = head.step(keys[past:end], queries)
        attention = FrameAttention(queries, keys[:past], values[:past], keys[past:end],
                                   values[past:end])
        members = head.token_cluster[:past]
        for name, transform in TRANSFORMS.items():
            scores = transform(step.logits, config.score_bits, source.head_dim)
            for row, ratio_config in enumerate(configs):
                retrieved = wicsum_select(scores, step.counts, ratio_config).any(axis=0)[members]
                sweep[name]["selected"][row, column] = retrieved.mean() if past else 0.0
                retrieved[max(0, past - config.recent_window):] = True
                metrics = attention.evaluate(retrieved, config.recent_window)
                for metric in ("ratio", "recall", "output_error"):
                    sweep[name][metric][row, column] = metrics[metric]
    return sweep


def _per_layer_head(source, frame_stats, key):
    table = np.full((source.layers, source.kv_heads), np.nan)
    for layer in range(source.layers):
        for kv_head in range(source.kv_heads):
            values = [s[key] for s in frame_stats
                      if s["layer"] == layer and s["kv_head"] == kv_head]
            if values:
                table[layer, kv_head] = np.mean(values)
    return table


def _conclusion(sweep, ratios):
    """Which score transform and ratio reproduce the paper's ~1/3 of the tokens, with recall.

    The share compared is the one WiCSum selects (``selected``, the recent window left out): the
    paper's caches hold 1K to 40K tokens, where a 64-token window is negligible, while on a trace
    of about a thousand tokens the window alone is a large part of the early frames' past.

    Rule: a transform whose share at ratio 0.3 is within 10 points of the paper's 32.7% is the
    paper's reading, and the default is that transform at 0.3 (the one with the higher recall if
    both are). Otherwise each transform is taken at the ratio whose share is nearest a third, and
    the default is the transform with the higher recall there (equal token counts), at that ratio.
    """
    at = ratios.index(0.3)
    lines, gaps, third = [], {}, {}
    for name, curves in sweep.items():
        share, recall = curves["selected"][at], curves["recall"][at]
        nearest = int(np.argmin(np.abs(np.asarray(curves["selected"]) - 1 / 3)))
        third[name] = (ratios[nearest], curves["selected"][nearest], curves["recall"][nearest])
        gaps[name] = abs(share - PAPER["retrieved_at_0.3"])
        lines.append(f"{name}: ratio 0.3 selects {100 * share:.1f}% of the past tokens "
                     f"({100 * curves['ratio'][at]:.1f}% with the recent window) at recall "
                     f"{recall:.3f}; ratio {third[name][0]} selects {100 * third[name][1]:.1f}% "
                     f"at recall {third[name][2]:.3f}")
    paper_share = f"{100 * PAPER['retrieved_at_0.3']:.1f}%"
    matching = [name for name in sweep if gaps[name] <= 0.10]
    if matching:
        best = max(matching, key=lambda name: sweep[name]["recall"][at])
        verdict = (f"{best} scores reproduce the paper's {paper_share} at Thr_wics = 0.3 "
                   f"(within {100 * gaps[best]:.1f} points)")
        default = {"score_transform": best, "wicsum_ratio": 0.3}
    else:
        best = max(third, key=lambda name: third[name][2])
        others = ", ".join(f"{name} {third[name][2]:.3f} at ratio {third[name][0]}"
                           for name in third if name != best)
        verdict = (f"neither reading reproduces {paper_share} at Thr_wics = 0.3 within 10 points "
                   + "(" + ", ".join(f"{name} {100 * sweep[name]['selected'][at]:.1f}%"
                                     for name in sweep) + "); "
                   f"at about a third of the tokens {best} keeps the higher recall "
                   f"({third[best][2]:.3f} at ratio {third[best][0]}; {others})")
        default = {"score_transform": best, "wicsum_ratio": third[best][0]}
    return {"lines": lines, "reproduces_at_0.3": matching, "verdict": verdict,
            "default": default}


def run_study(source, config, results, eval_frames, seed=0, pairs=4000, progress=None,
              ratios=RATIOS):
    """The study of a trace (see the module docstring).

    Parameters
    ----------
    source : model.stimulus.kvdump.KVDump
    config : model.config.DREConfig
    results : dict
        :func:`model.main.run_job` on the same ``source``, ``config`` and ``seed``.
    eval_frames : sequence of int
        The frames the main job evaluated (``results["evaluated_frames"]``).
    pairs : int
        Key pairs per (layer, KV head) of the correlation.
    progress : callable or None
        Called with a text line after each layer.

    Returns
    -------
    dict (JSON-ready)
    """
    ratios = tuple(ratios)
    if 0.3 not in ratios:
        raise ValueError(f"ratios must include 0.3 (the paper's Thr_wics), not {ratios}")
    correlation = np.zeros((source.layers, source.kv_heads))
    sweeps = []
    for layer in range(source.layers):
        for kv_head in range(source.kv_heads):
            planes = make_hyperplanes(config.hash_bits, source.head_dim, seed, layer, kv_head)
            rng = np.random.default_rng([seed, _PAIR_STREAM, layer, kv_head])
            correlation[layer, kv_head] = hamming_cosine_correlation(
                source.keys(layer, kv_head), planes, pairs, rng)
            sweeps.append(wicsum_sweep(source, config, layer, kv_head, eval_frames, seed,
                                       ratios))
        if progress:
            progress(f"study: layer {layer + 1}/{source.layers}")
    sweep = {name: {metric: np.mean([s[name][metric] for s in sweeps], axis=(0, 2)).tolist()
                    for metric in sweeps[0][name]} for name in TRANSFORMS}
    retrieval = _per_layer_head(source, results["resv_frames"], "ratio")
    clustering = results["clustering"]
    layer_means = np.nanmean(retrieval, axis=1)
    return {
        "source": results["source"],
        "paper": {k: list(v) if isinstance(v, tuple) else v for k, v in PAPER.items()},
        "hamming_cosine": {"pairs_per_head": pairs, "hash_bits": config.hash_bits,
                           "per_layer_head": correlation.tolist(),
                           "mean": float(np.nanmean(correlation)),
                           "min": float(np.nanmin(correlation)),
                           "max": float(np.nanmax(correlation))},
        "clustering": {"tokens_per_cluster_mean": clustering["tokens_per_cluster_mean"],
                       "tokens_per_cluster_per_head": [h["tokens"] / max(1, h["clusters"])
                                                       for h in results["heads"]],
                       "hc_table_overhead": clustering["hc_table_overhead"]},
        "resv_retrieval": {"per_layer_head": retrieval.tolist(),
                           "per_layer": layer_means.tolist(),
                           "layer_min": float(np.nanmin(layer_means)),
                           "layer_max": float(np.nanmax(layer_means))},
        "methods": {method: {k: row[k] for k in ("ratio", "recall", "output_error")}
                    for method, row in results["methods"].items()},
        "wicsum_sweep": {"ratios": list(ratios), "wicsum_ratio_bits": config.wicsum_ratio_bits,
                         **sweep},
        "conclusion": _conclusion(sweep, list(ratios)),
    }


def format_study(study, trace_info=None):
    """The study as text: one line per finding beside the paper's figure, then the sweep and the
    conclusion; ``trace_info`` (the trace's JSON sidecar) adds its provenance and costs."""
    h, c, r = study["hamming_cosine"], study["clustering"], study["resv_retrieval"]
    paper = study["paper"]
    lines = [f"study of {study['source']}:",
             f"  Hamming vs cosine correlation: mean {h['mean']:.2f} over (layer, KV head), "
             f"from {h['min']:.2f} to {h['max']:.2f} (paper: about "
             f"{paper['hamming_cosine_correlation']:.1f})",
             f"  tokens per cluster: {c['tokens_per_cluster_mean']:.1f} (paper: about "
             f"{paper['tokens_per_cluster']:.0f}); HC table overhead "
             f"{100 * c['hc_table_overhead']:.2f}% (paper: {100 * paper['hc_table_overhead']:.2f}%)",
             f"  ReSV retrieval per layer: {100 * r['layer_min']:.1f}% to "
             f"{100 * r['layer_max']:.1f}% (paper: {100 * paper['retrieval_per_layer'][0]:.1f}% "
             f"to {100 * paper['retrieval_per_layer'][1]:.0f}%)",
             "  at ReSV's token count: " + ", ".join(
                 f"{m} recall {row['recall']:.3f} err {row['output_error']:.3f}"
                 for m, row in study["methods"].items() if m != "full"),
             "  WiCSum ratio sweep (selected % without the recent window / with it / recall):",
             "    ratio        " + "".join(f"{ratio:>16}" for ratio in
                                          study["wicsum_sweep"]["ratios"])]
    for name in TRANSFORMS:
        curves = study["wicsum_sweep"][name]
        lines.append(f"    {name:<13}" + "".join(
            f"{100 * alone:>5.1f}/{100 * share:4.1f}/{recall:.3f}"
            for alone, share, recall in zip(curves["selected"], curves["ratio"],
                                            curves["recall"])))
    conclusion = study["conclusion"]
    lines += ["  " + line for line in conclusion["lines"]]
    lines.append(f"  conclusion: {conclusion['verdict']}")
    lines.append(f"  default it leads to: score transform "
                 f"{conclusion['default']['score_transform']}, wicsum_ratio "
                 f"{conclusion['default']['wicsum_ratio']}")
    if trace_info:
        group = trace_info.get("optional_group", {})
        took = trace_info.get("timings_s", {}).get("total_s")
        lines.append(f"  trace: {trace_info.get('clip', {}).get('name')} through "
                     f"{trace_info.get('language_model', {}).get('model')}, written in "
                     f"{took} s; optional group: {group.get('packages')} packages, "
                     f"{group.get('disk_mb')} MB on disk, last install step "
                     f"{group.get('install_s')} s")
    return "\n".join(lines)


def _plot(study, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(2, 2, figsize=(11, 8))
    corr = np.asarray(study["hamming_cosine"]["per_layer_head"])
    image = axes[0, 0].imshow(corr.T, aspect="auto", cmap="viridis")
    figure.colorbar(image, ax=axes[0, 0])
    axes[0, 0].set(xlabel="layer", ylabel="KV head", title="Hamming vs cosine correlation",
                   yticks=range(corr.shape[1]))
    retrieval = 100 * np.asarray(study["resv_retrieval"]["per_layer_head"])
    for kv_head in range(retrieval.shape[1]):
        axes[0, 1].plot(retrieval[:, kv_head], marker=".", label=f"KV head {kv_head}")
    axes[0, 1].set(xlabel="layer", ylabel="past tokens retrieved (%)",
                   title="ReSV retrieval per layer and KV head")
    axes[0, 1].legend(fontsize=7)
    sweep = study["wicsum_sweep"]
    for name in TRANSFORMS:
        line, = axes[1, 0].plot(sweep["ratios"], 100 * np.asarray(sweep[name]["selected"]),
                                marker="o", label=f"{name}: selected")
        axes[1, 0].plot(sweep["ratios"], 100 * np.asarray(sweep[name]["ratio"]), ls="--",
                        color=line.get_color(), label=f"{name}: with the recent window")
        axes[1, 1].plot(100 * np.asarray(sweep[name]["ratio"]), sweep[name]["recall"],
                        marker="o", label=f"{name} (ratios 0.1-0.9)")
    axes[1, 0].axhline(100 * study["paper"]["retrieved_at_0.3"], color="grey", ls="--",
                       label="paper: 32.7% at 0.3")
    axes[1, 0].axvline(0.3, color="grey", ls=":")
    axes[1, 0].set(xlabel="WiCSum ratio", ylabel="past tokens retrieved (%)",
                   title="WiCSum ratio sweep")
    axes[1, 0].legend(fontsize=8)
    for method, row in study["methods"].items():
        axes[1, 1].scatter(100 * row["ratio"], row["recall"], s=25, label=method)
    axes[1, 1].set(xlabel="past tokens retrieved (%)", ylabel="attention-mass recall",
                   title="recall vs tokens")
    axes[1, 1].legend(fontsize=7)
    for axis in axes.flat[1:]:
        axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _finite(value):
    """``value`` with NaN floats (a head whose pairs all hash alike) replaced by None."""
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def write_study(study, out_dir):
    """Write ``study.json`` and ``study.png`` into ``out_dir``; returns their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, png_path = out_dir / "study.json", out_dir / "study.png"
    json_path.write_text(json.dumps(_finite(study), indent=2, allow_nan=False))
    _plot(study, png_path)
    return json_path, png_path
