"""A numpy Llama forward pass (RMSNorm, RoPE, grouped-query attention, SwiGLU) on GGUF weights.

The model is SmolLM2-135M-Instruct (:func:`model.stimulus.real_trace.assets.language_model_path`):
30 layers, hidden size 576, 9 query heads sharing 3 KV heads (GQA group 3), head_dim 64, RoPE
base 100,000, tied input/output embeddings. :meth:`LlamaModel.from_gguf` reads it with the
``gguf`` package and dequantises every tensor to float32.

RoPE convention. Hugging Face Llama rotates the pairs ``(x[i], x[i + d/2])`` of every head
("rotate half"). GGUF converters permute the rows of the Q and K projections so that llama.cpp can
rotate adjacent pairs ``(x[2i], x[2i + 1])`` instead; :func:`unpermute_rows` undoes that, so this
model and the keys it writes follow the Hugging Face layout: dimension ``i`` and ``i + d/2`` of a
post-RoPE key form the pair rotated by angle ``position * base**(-2i/d)``.

Prefill is causal and may run in chunks (:meth:`LlamaModel.prefill` with a :class:`KVCache`):
chunked prefill gives the same keys, values and queries as one pass over the whole sequence, as a
streaming video LLM's iterative prefill does.
"""

import numpy as np

__all__ = ["LlamaModel", "KVCache", "unpermute_rows", "apply_rope", "rope_angles"]


def unpermute_rows(weight, heads):
    """Undo GGUF's Q/K row permutation: interleaved RoPE pairs back to the rotate-half layout.

    Parameters
    ----------
    weight : array (heads * head_dim, in_features)
        A Q or K projection as stored in GGUF.
    heads : int
        Heads the rows belong to (query heads for Q, KV heads for K).
    """
    rows = weight.shape[0]
    if heads < 1 or rows % (2 * heads):
        raise ValueError(f"rows ({rows}) must split into {heads} heads of even size")
    return (weight.reshape(heads, rows // heads // 2, 2, *weight.shape[1:])
            .swapaxes(1, 2).reshape(weight.shape))


def rope_angles(positions, head_dim, base):
    """Angles ``position * base**(-2i/head_dim)``: float64 (positions, head_dim // 2)."""
    inverse = base ** (-np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)
    return np.asarray(positions, dtype=np.float64)[:, None] * inverse[None, :]


def apply_rope(x, angles):
    """Rotate-half RoPE of ``x`` (..., positions, head_dim) by ``angles`` (positions, head_dim/2).

    Pairs ``(x[i], x[i + d/2])`` are rotated by ``angles[:, i]``.
    """
    half = x.shape[-1] // 2
    cos, sin = np.cos(angles).astype(x.dtype), np.sin(angles).astype(x.dtype)
    first, second = x[..., :half], x[..., half:]
    return np.concatenate([first * cos - second * sin, second * cos + first * sin], axis=-1)


class KVCache:
    """Post-RoPE keys and values of every layer, appended chunk by chunk.

    Parameters
    ----------
    layers, kv_heads, head_dim : int
    capacity : int
        Tokens preallocated (grows by doubling when exceeded).
    """

    def __init__(self, layers, kv_heads, head_dim, capacity=1024):
        shape = (layers, kv_heads, max(1, int(capacity)), head_dim)
        self._keys = np.zeros(shape, np.float32)
        self._values = np.zeros(shape, np.float32)
        self.length = 0

    def append(self, layer, keys, values):
        """Store ``keys``/``values`` (kv_heads, n, head_dim) of ``layer`` at the current end;
        returns all keys and values of the layer so far (views). The last layer of a chunk
        advances :attr:`length` through :meth:`advance`."""
        n = keys.shape[1]
        end = self.length + n
        if end > self._keys.shape[2]:
            grow = max(end, 2 * self._keys.shape[2])
            for name in ("_keys", "_values"):
                old = getattr(self, name)
                new = np.zeros(old.shape[:2] + (grow,) + old.shape[3:], np.float32)
                new[:, :, :self.length] = old[:, :, :self.length]
                setattr(self, name, new)
        self._keys[layer, :, self.length:end] = keys
        self._values[layer, :, self.length:end] = values
        return self._keys[layer, :, :end], self._values[layer, :, :end]

    @property
    def keys(self):
        """Stored post-RoPE keys: float32 (layers, kv_heads, length, head_dim), a view."""
        return self._keys[:, :, :self.length]

    @property
    def values(self):
        """Stored values: float32 (layers, kv_heads, length, head_dim), a view."""
        return self._values[:, :, :self.length]

    def advance(self, n):
        """Mark ``n`` more tokens as stored in every layer."""
        self.length += int(n)


def _rms_norm(x, weight, eps):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * weight


class LlamaModel:
    """Llama-architecture decoder in float32 numpy.

    Parameters
    ----------
    hparams : dict
        ``layers``, ``hidden``, ``heads``, ``kv_heads``, ``head_dim``, ``rope_base``, ``eps``.
    weights : dict of str -> float32 array
        GGUF tensor names (``token_embd.weight``, ``blk.N.attn_q.weight``, ...), rows = outputs,
        Q and K rows already in rotate-half order.
    tokenizer : model.stimulus.real_trace.tokenizer.BPETokenizer or None
    """

    def __init__(self, hparams, weights, tokenizer=None):
        self.hparams = dict(hparams)
        for name in ("layers", "hidden", "heads", "kv_heads", "head_dim"):
            value = self.hparams[name]
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, not {value!r}")
        if self.hparams["heads"] % self.hparams["kv_heads"]:
            raise ValueError(f"heads ({self.hparams['heads']}) must be a multiple of kv_heads "
                             f"({self.hparams['kv_heads']})")
        self._w = weights
        self.tokenizer = tokenizer

    @classmethod
    def from_gguf(cls, path):
        """Load a Llama GGUF file: hyperparameters, dequantised float32 weights, tokenizer.

        Raises
        ------
        ValueError
            If the file is not a Llama model (naming the file and the field).
        """
        from gguf import GGUFReader
        from gguf.quants import dequantize

        from model.stimulus.real_trace.tokenizer import BPETokenizer

        reader = GGUFReader(str(path))

        def field(name):
            if name not in reader.fields:
                raise ValueError(f"{path}: GGUF field {name!r} is missing")
            return reader.fields[name].contents()

        if field("general.architecture") != "llama":
            raise ValueError(f"{path}: GGUF field 'general.architecture' must be 'llama', not "
                             f"{field('general.architecture')!r}")
        heads, kv_heads = int(field("llama.attention.head_count")), \
            int(field("llama.attention.head_count_kv"))
        hidden = int(field("llama.embedding_length"))
        hparams = {"layers": int(field("llama.block_count")), "hidden": hidden, "heads": heads,
                   "kv_heads": kv_heads, "head_dim": hidden // heads,
                   "rope_base": float(field("llama.rope.freq_base")),
                   "eps": float(field("llama.attention.layer_norm_rms_epsilon"))}
        weights = {}
        for tensor in reader.tensors:
            array = dequantize(tensor.data, tensor.tensor_type).astype(np.float32)
            if tensor.name.endswith("attn_q.weight"):
                array = unpermute_rows(array, heads)
            elif tensor.name.endswith("attn_k.weight"):
                array = unpermute_rows(array, kv_heads)
            weights[tensor.name] = np.ascontiguousarray(array)
        tokenizer = BPETokenizer(field("tokenizer.ggml.tokens"), field("tokenizer.ggml.merges"),
                                 field("tokenizer.ggml.token_type"))
        return cls(hparams, weights, tokenizer)

    @property
    def weights(self):
        """The weights by GGUF tensor name (float32, Q/K rows in rotate-half order), a copy of
        the mapping (the arrays are shared)."""
        return dict(self._w)

    @property
    def layers(self):
        """Number of decoder layers."""
        return self.hparams["layers"]

    def new_cache(self, capacity=1024, layers=None):
        """An empty :class:`KVCache` for this model (or for its first ``layers`` layers)."""
        return KVCache(self.layers if layers is None else layers, self.hparams["kv_heads"],
                       self.hparams["head_dim"], capacity)

    @property
    def embedding_table(self):
        """Token embeddings: float32 (vocab, hidden)."""
        return self._w["token_embd.weight"]

    def embed(self, ids):
        """Input embeddings of token ids: float32 (n, hidden)."""
        return self.embedding_table[np.asarray(ids, dtype=np.int64)]

    def prefill(self, embeddings, cache, record=None, layers=None):
        """Causal forward of a chunk of input embeddings after the tokens already in ``cache``.

        Parameters
        ----------
        embeddings : float array (n, hidden)
        cache : KVCache
            Extended by the chunk's keys and values.
        record : callable or None
            Called per layer as ``record(layer, queries, keys, values)`` with the chunk's
            post-RoPE queries (heads, n, head_dim), post-RoPE keys and values
            (kv_heads, n, head_dim), float32.

        Returns
        -------
        float32 (n, hidden): the final hidden states (after the output norm).
        """
        hp = self.hparams
        heads, kv_heads, dim, eps = hp["heads"], hp["kv_heads"], hp["head_dim"], hp["eps"]
        group = heads // kv_heads
        x = np.asarray(embeddings, dtype=np.float32)
        n, past = x.shape[0], cache.length
        angles = rope_angles(np.arange(past, past + n), dim, hp["rope_base"])
        allowed = np.arange(past + n)[None, :] <= (past + np.arange(n))[:, None]   # causal
        depth = self.layers if layers is None else layers
        if not isinstance(depth, int) or not 1 <= depth <= self.layers:
            raise ValueError(f"layers must be an integer from 1 to {self.layers}, not {layers!r}")
        for layer in range(depth):
            w = lambda name: self._w[f"blk.{layer}.{name}.weight"]   # noqa: E731
            h = _rms_norm(x, w("attn_norm"), eps)
            q = apply_rope((h @ w("attn_q").T).reshape(n, heads, dim).transpose(1, 0, 2), angles)
            k = apply_rope((h @ w("attn_k").T).reshape(n, kv_heads, dim).transpose(1, 0, 2),
                           angles)
            v = (h @ w("attn_v").T).reshape(n, kv_heads, dim).transpose(1, 0, 2)
            if record is not None:
                record(layer, q, k, v)
            keys, values = cache.append(layer, k, v)
            # query head h reads KV head h // group: (kv_heads, group * n, dim) @ (.., dim, t)
            logits = q.reshape(kv_heads, group * n, dim) @ keys.transpose(0, 2, 1)
            logits = logits.reshape(kv_heads, group, n, -1) * np.float32(1.0 / np.sqrt(dim))
            logits = np.where(allowed, logits, -np.inf)
            logits -= logits.max(axis=-1, keepdims=True)
            weights = np.exp(logits)
            weights /= weights.sum(axis=-1, keepdims=True)
            out = (weights.reshape(kv_heads, group * n, -1) @ values).reshape(heads, n, dim)
            x = x + out.transpose(1, 0, 2).reshape(n, heads * dim) @ w("attn_output").T
            h = _rms_norm(x, w("ffn_norm"), eps)
            gate = h @ w("ffn_gate").T
            x = x + ((gate / (1 + np.exp(-gate))) * (h @ w("ffn_up").T)) @ w("ffn_down").T
        cache.advance(n)
        if depth < self.layers:
            return x
        return _rms_norm(x, self._w["output_norm.weight"], eps)

    def logits(self, hidden):
        """Next-token logits of final hidden states (tied output embedding): float32 (n, vocab)."""
        table = self._w.get("output.weight", self.embedding_table)
        return np.asarray(hidden, dtype=np.float32) @ table.T

    def generate_greedy(self, text, steps=1):
        """Greedy continuation of ``text`` by ``steps`` tokens; returns the new text."""
        cache = self.new_cache()
        hidden = self.prefill(self.embed(self.tokenizer.encode(text)), cache)
        new = []
        for _ in range(steps):
            token = int(np.argmax(self.logits(hidden[-1:])[0]))
            new.append(token)
            hidden = self.prefill(self.embed([token]), cache)
        return self.tokenizer.decode(new)

    def perplexity(self, text):
        """Perplexity of ``text`` under the model: exp of the mean negative log-likelihood of
        every token after the first."""
        ids = self.tokenizer.encode(text)
        if len(ids) < 2:
            raise ValueError("text must have at least two tokens")
        logits = self.logits(self.prefill(self.embed(ids), self.new_cache(len(ids))))
        logits = logits[:-1].astype(np.float64)
        logits -= logits.max(axis=-1, keepdims=True)
        log_probs = logits - np.log(np.exp(logits).sum(axis=-1, keepdims=True))
        nll = -log_probs[np.arange(len(ids) - 1), ids[1:]]
        return float(np.exp(nll.mean()))
