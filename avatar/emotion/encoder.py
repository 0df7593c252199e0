"""The packaged MiniLM encoder for inference: a plain BERT forward pass in NumPy and its WordPiece tokenizer.

Why our own BERT here rather than transformers' `BertModel`: in a fresh process on the 2-core machine, importing
transformers' BERT and peft (to merge the adapter) takes about 5 s, more than everything else `avatar emotion`
does and most of `avatar say`'s start-up, while the forward pass is the textbook post-LayerNorm BERT below.
Why NumPy rather than torch: importing torch alone costs another 2-3 s of a cold start, and a 6-layer MiniLM on
a CPU is a few matrix products per layer, which NumPy's BLAS runs as fast (float32 throughout). Training keeps
torch + transformers + peft (`avatar.emotion.model.EmotionModel`); tests check that both give the same numbers.
Weight names follow transformers' BERT, so the package's safetensors (read with `safetensors.numpy`, never
pickle) and our LoRA keys load by name. The tokenizer is the package's own `tokenizer.json` run by Hugging Face
`tokenizers` (what transformers' fast tokenizer wraps).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import NamedTuple

import numpy as np

from avatar.errors import ModelError
from avatar.npnn import gelu_

def _layer_norm_(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float) -> np.ndarray:
    """LayerNorm over the last axis of a 2-D array, in place (biased variance, as torch); returns x."""
    x -= x.mean(axis=-1, keepdims=True)
    var = np.einsum("ij,ij->i", x, x)[:, None]  # sum of squares without an [N, H] temporary
    var *= 1.0 / x.shape[-1]
    var += eps
    np.sqrt(var, out=var)
    x /= var
    x *= gamma
    x += beta
    return x


def merged_lora(weights: dict[str, np.ndarray], lora: dict[str, np.ndarray], scale: float) -> dict[str, np.ndarray]:
    """`weights` with scale * B @ A added to each weight a LoRA adapter (peft's state-dict names) adapts.

    Returns a new dict; the adapted weights are new arrays and the given ones are left as they were."""
    prefix = "base_model.model."
    pairs: dict[str, dict[str, np.ndarray]] = {}
    for key, value in lora.items():
        for part in ("lora_A", "lora_B"):
            tag = f".{part}.weight"
            if key.startswith(prefix) and key.endswith(tag):
                pairs.setdefault(key[len(prefix):-len(tag)], {})[part] = value
    if not pairs:
        raise ModelError("the adapter holds no LoRA weights")
    deltas = {}
    for name, ab in pairs.items():  # check every pair before changing any weight
        w = weights.get(f"{name}.weight")
        if w is None or set(ab) != {"lora_A", "lora_B"}:
            raise ModelError(f"adapter weights do not fit the encoder: {name}")
        a, b = np.asarray(ab["lora_A"], dtype=np.float32), np.asarray(ab["lora_B"], dtype=np.float32)
        if a.ndim != 2 or b.ndim != 2 or b.shape[1] != a.shape[0] or (b.shape[0], a.shape[1]) != w.shape:
            raise ModelError(f"adapter weights do not fit the encoder: {name} {tuple(b.shape)} @ {tuple(a.shape)}")
        deltas[f"{name}.weight"] = (b * np.float32(scale)) @ a  # scaling B: r x fewer multiplies than scaling BA
    out = dict(weights)
    for key, delta in deltas.items():
        delta += weights[key]  # into the fresh product, not into `weights` (read-only when memory-mapped)
        out[key] = delta
    return out


class _Layer(NamedTuple):
    """One transformer layer's weights laid out for `x @ w` (inputs on the left, [in, out] matrices)."""

    qkv_w: np.ndarray  # [H, 3H]: query (pre-scaled by 1/sqrt(head dim)), key, value side by side: one product
    qkv_b: np.ndarray
    out_w: np.ndarray
    out_b: np.ndarray
    ln1_g: np.ndarray
    ln1_b: np.ndarray
    inter_w: np.ndarray
    inter_b: np.ndarray
    ffn_w: np.ndarray
    ffn_b: np.ndarray
    ln2_g: np.ndarray
    ln2_b: np.ndarray


class BertEncoder:
    """BERT forward pass (absolute positions, one token type) in NumPy float32: every layer's hidden states."""

    def __init__(self, config: dict, weights: dict[str, np.ndarray], where: str = "") -> None:
        """Check `config` and the weights (transformers' BERT names) against each other; ModelError if not BERT."""
        try:
            act, pos = config.get("hidden_act", "gelu"), config.get("position_embedding_type", "absolute")
            if act != "gelu" or pos != "absolute":
                raise ModelError("only BERT encoders with gelu and absolute positions are supported")
            self.hidden_size, self.heads = int(config["hidden_size"]), int(config["num_attention_heads"])
            self.eps = float(config["layer_norm_eps"])
            self.num_layers, inner = int(config["num_hidden_layers"]), int(config["intermediate_size"])
            shapes = _bert_shapes(self.hidden_size, inner, self.num_layers, int(config["vocab_size"]),
                                  int(config["max_position_embeddings"]), int(config["type_vocab_size"]))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ModelError(f"not a BERT encoder config: {exc}") from exc
        if self.hidden_size % self.heads:
            raise ModelError(f"not a BERT encoder config: hidden_size {self.hidden_size} is not a multiple of "
                             f"{self.heads} heads")
        weights = {k: v for k, v in weights.items() if not k.startswith("pooler.") and k != "embeddings.position_ids"}
        missing = sorted(set(shapes) - set(weights))
        unexpected = sorted(set(weights) - set(shapes))
        wrong = sorted(k for k in set(shapes) & set(weights) if tuple(weights[k].shape) != shapes[k])
        if missing or unexpected or wrong:
            raise ModelError(f"the encoder weights{' in ' + where if where else ''} do not fit BERT: missing "
                             f"{missing[:3]}, unexpected {unexpected[:3]}, wrong shape {wrong[:3]}")
        self._shapes = shapes
        self.weights = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in weights.items()}
        self._layers = self._fuse()

    @classmethod
    def from_folder(cls, folder: Path, lora: dict[str, np.ndarray] | None = None,
                    lora_scale: float = 1.0) -> "BertEncoder":
        """The encoder in `folder` (config.json + model.safetensors, memory-mapped), with a LoRA adapter merged."""
        from avatar.pretrained import map_safetensors

        try:
            config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ModelError(f"cannot read the encoder in {folder}: {exc}") from exc
        try:
            weights = map_safetensors(folder / "model.safetensors")
        except ModelError as exc:
            raise ModelError(f"cannot read the encoder in {folder}: {exc}") from None
        if lora is not None:  # merged before the layers are laid out, which then happens once
            weights = merged_lora(weights, lora, lora_scale)
        return cls(config, weights, where=str(folder))

    # ---- changing the weights ------------------------------------------------------------------------
    def merge_lora(self, lora: dict[str, np.ndarray], scale: float) -> None:
        """Add scale * B @ A to each adapted weight (peft's state-dict names), so inference costs no adapter."""
        self.weights = merged_lora(self.weights, lora, scale)
        self._layers = self._fuse()

    def load_layers(self, layers: dict[str, np.ndarray]) -> None:
        """Replace every transformer layer's weights (a "full" fine-tune's `encoder.*` tensors, any float dtype)."""
        wanted = {k for k in self._shapes if k.startswith("encoder.")}
        missing, unexpected = sorted(wanted - set(layers)), sorted(set(layers) - wanted)
        wrong = sorted(k for k in wanted & set(layers) if tuple(layers[k].shape) != self._shapes[k])
        if missing or unexpected or wrong:
            raise ModelError(f"encoder weights do not fit the encoder: missing {missing[:3]}, unexpected "
                             f"{unexpected[:3]}, wrong shape {wrong[:3]}")
        for k in wanted:
            self.weights[k] = np.ascontiguousarray(layers[k], dtype=np.float32)  # float16 as stored -> float32
        self._layers = self._fuse()

    def _fuse(self) -> list[_Layer]:
        """Per-layer weights for the forward: fused QKV (query pre-scaled), the rest as transposed views.

        Rebuilt after every change to `weights`, never during a forward, so threads may share the encoder.
        """
        w, d = self.weights, self.hidden_size // self.heads
        scale = np.float32(1.0 / math.sqrt(d))  # folded into the query projection: one multiply less per layer
        layers = []
        for i in range(self.num_layers):
            p = f"encoder.layer.{i}."
            s = f"{p}attention.self."
            qkv_w = np.concatenate([w[s + "query.weight"] * scale, w[s + "key.weight"], w[s + "value.weight"]])
            qkv_b = np.concatenate([w[s + "query.bias"] * scale, w[s + "key.bias"], w[s + "value.bias"]])
            layers.append(_Layer(
                np.ascontiguousarray(qkv_w.T), qkv_b,
                w[p + "attention.output.dense.weight"].T, w[p + "attention.output.dense.bias"],
                w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"],
                w[p + "intermediate.dense.weight"].T, w[p + "intermediate.dense.bias"],
                w[p + "output.dense.weight"].T, w[p + "output.dense.bias"],
                w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"]))
        return layers

    # ---- the forward pass ----------------------------------------------------------------------------
    def __call__(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> list[np.ndarray]:
        """Hidden states [B, T, H] float32 of the embeddings and of each layer (as transformers' hidden_states)."""
        input_ids = np.asarray(input_ids)
        b, t = input_ids.shape
        positions = self._shapes["embeddings.position_embeddings.weight"][0]
        if t > positions:
            raise ModelError(f"{t} tokens exceed the encoder's {positions} positions")
        w = self.weights
        h = w["embeddings.word_embeddings.weight"][input_ids]  # [B, T, H], a fresh array
        h += w["embeddings.position_embeddings.weight"][:t]
        h += w["embeddings.token_type_embeddings.weight"][0]
        h = _layer_norm_(h.reshape(b * t, self.hidden_size), w["embeddings.LayerNorm.weight"],
                         w["embeddings.LayerNorm.bias"], self.eps)
        # Additive key mask [B, 1, 1, T]: -inf on padding, so those keys get exactly zero weight (as torch's SDPA).
        bias = np.where(np.asarray(attention_mask)[:, None, None, :] > 0, np.float32(0.0), np.float32(-np.inf))
        states = [h.reshape(b, t, -1)]
        for layer in self._layers:
            h = self._layer(h, layer, b, t, bias)
            states.append(h.reshape(b, t, -1))
        return states

    forward = __call__

    def _layer(self, x: np.ndarray, p: _Layer, b: int, t: int, bias: np.ndarray) -> np.ndarray:
        """One post-LayerNorm transformer layer on x [B*T, H]; returns a new array (x is left as it was)."""
        hid, heads = self.hidden_size, self.heads
        qkv = x @ p.qkv_w
        qkv += p.qkv_b
        q, k, v = qkv.reshape(b, t, 3, heads, hid // heads).transpose(2, 0, 3, 1, 4)  # views [B, heads, T, d]
        scores = q @ k.transpose(0, 1, 3, 2)  # [B, heads, T, T]
        scores += bias
        scores -= scores.max(axis=-1, keepdims=True)  # the [CLS] key is never masked: every row has a finite max
        np.exp(scores, out=scores)
        scores /= scores.sum(axis=-1, keepdims=True)
        ctx = np.empty((b, t, heads, hid // heads), dtype=np.float32)
        np.matmul(scores, v, out=ctx.transpose(0, 2, 1, 3))  # written straight into [B, T, heads, d]: no copy
        a = ctx.reshape(b * t, hid) @ p.out_w
        a += p.out_b
        a += x
        _layer_norm_(a, p.ln1_g, p.ln1_b, self.eps)
        inner = gelu_(a @ p.inter_w, p.inter_b)
        out = inner @ p.ffn_w
        out += p.ffn_b
        out += a
        return _layer_norm_(out, p.ln2_g, p.ln2_b, self.eps)


def _bert_shapes(hid: int, inner: int, layers: int, vocab: int, positions: int,
                 types: int) -> dict[str, tuple[int, ...]]:
    """Every weight of a BERT encoder (transformers' names, pooler left out) and its shape."""
    shapes: dict[str, tuple[int, ...]] = {
        "embeddings.word_embeddings.weight": (vocab, hid),
        "embeddings.position_embeddings.weight": (positions, hid),
        "embeddings.token_type_embeddings.weight": (types, hid),
        "embeddings.LayerNorm.weight": (hid,), "embeddings.LayerNorm.bias": (hid,),
    }
    for i in range(layers):
        p = f"encoder.layer.{i}."
        dense = {"attention.self.query": (hid, hid), "attention.self.key": (hid, hid),
                 "attention.self.value": (hid, hid), "attention.output.dense": (hid, hid),
                 "intermediate.dense": (inner, hid), "output.dense": (hid, inner)}
        for name, shape in dense.items():
            shapes[f"{p}{name}.weight"] = shape
            shapes[f"{p}{name}.bias"] = shape[:1]
        for name in ("attention.output.LayerNorm", "output.LayerNorm"):
            shapes[f"{p}{name}.weight"] = shapes[f"{p}{name}.bias"] = (hid,)
    return shapes


class WordPieceTokenizer:
    """The package's tokenizer.json through Hugging Face `tokenizers`: ids with [CLS]/[SEP], truncated."""

    def __init__(self, folder: Path, max_length: int) -> None:
        from tokenizers import Tokenizer

        try:
            self._tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
        except Exception as exc:  # tokenizers raises its own Exception type for unreadable files
            raise ModelError(f"cannot read {folder / 'tokenizer.json'}: {exc}") from exc
        self._tok.no_padding()
        self._tok.enable_truncation(max_length=max_length)
        self.pad_id = int(self._tok.token_to_id("[PAD]") or 0)

    def ids(self, texts: list[str]) -> list[list[int]]:
        """Token ids of each text."""
        return [e.ids for e in self._tok.encode_batch(texts)]

    def pad(self, ids: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
        """(input_ids, attention_mask) [B, T] int64 arrays, right-padded to the longest."""
        t = max(len(x) for x in ids)
        arr = np.full((len(ids), t), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(ids), t), dtype=np.int64)
        for i, x in enumerate(ids):
            arr[i, :len(x)] = x
            mask[i, :len(x)] = 1
        return arr, mask
