"""The projector from vision features into the language model's embedding space (untrained).

VideoLLM-online learns a projector (an MLP) from SigLIP features into Llama-3's embedding space.
No trained projector exists for the backbone and language model that packages ship here, so this
one is **fixed and untrained**: a seeded random isometry followed by a norm match.

``y = (x @ P) * (m / ||x||)`` where ``P`` (in_dims x out_dims, ``in_dims <= out_dims``) has
orthonormal rows (QR of a Gaussian matrix from ``np.random.default_rng(seed)``) and ``m`` is the
median norm of the language model's token embeddings.

What that means: the geometry of the visual tokens is kept exactly (cosine similarities between
any two projected tokens equal those of the vision features, so similar patches stay similar and
scene changes stay visible), and every token has the size of a typical word embedding. But the
directions mean nothing to the language model: it never learned to read them. Keys and attention
patterns on the trace are therefore those of a real model on real, structured, yet
semantically unaligned inputs, not those of a trained video LLM.
"""

import numpy as np

__all__ = ["FixedProjector"]


class FixedProjector:
    """Seeded random isometry ``in_dims -> out_dims`` scaled to a target norm.

    Parameters
    ----------
    in_dims, out_dims : int
        ``in_dims <= out_dims``.
    target_norm : float
        Norm of every projected token.
    seed : int
    """

    def __init__(self, in_dims, out_dims, target_norm, seed=0):
        for name, value in (("in_dims", in_dims), ("out_dims", out_dims), ("seed", seed + 1)):
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be a positive integer, not {value!r}")
        if in_dims > out_dims:
            raise ValueError(f"in_dims ({in_dims}) must not exceed out_dims ({out_dims})")
        if not target_norm > 0:
            raise ValueError(f"target_norm must be positive, not {target_norm!r}")
        gaussian = np.random.default_rng(seed).standard_normal((out_dims, in_dims))
        orthonormal, _ = np.linalg.qr(gaussian)          # (out_dims, in_dims), orthonormal columns
        self.matrix = orthonormal.T.astype(np.float32)   # (in_dims, out_dims), orthonormal rows
        self.target_norm = float(target_norm)
        self.seed = int(seed)

    @classmethod
    def for_embeddings(cls, in_dims, embedding_table, seed=0):
        """A projector into the space of ``embedding_table`` (vocab, hidden), its median norm."""
        norms = np.linalg.norm(np.asarray(embedding_table, dtype=np.float32), axis=1)
        return cls(in_dims, embedding_table.shape[1], float(np.median(norms)), seed)

    def __call__(self, features):
        """Project float (..., in_dims) features: float32 (..., out_dims)."""
        features = np.asarray(features, dtype=np.float32)
        norms = np.linalg.norm(features, axis=-1, keepdims=True)
        return (features @ self.matrix) * (self.target_norm / np.maximum(norms, 1e-12))
