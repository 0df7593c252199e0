"""The packaged MiniLM encoder for inference: a plain BERT forward pass and its WordPiece tokenizer.

Why our own BERT here rather than transformers' `BertModel`: in a fresh process on the 2-core machine, importing
transformers' BERT and peft (to merge the adapter) takes about 5 s, more than everything else `avatar emotion`
does and most of `avatar say`'s start-up, while the forward pass is the textbook post-LayerNorm BERT below.
Training keeps transformers + peft (`avatar.emotion.model.EmotionModel`); tests check that both give the same
numbers. Module names follow transformers' BERT, so the package's safetensors and our LoRA keys load by name.
The tokenizer is the package's own `tokenizer.json` run by Hugging Face `tokenizers` (what transformers' fast
tokenizer wraps).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from avatar.errors import ModelError


class _SelfAttention(nn.Module):
    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.query = nn.Linear(hidden, hidden)
        self.key = nn.Linear(hidden, hidden)
        self.value = nn.Linear(hidden, hidden)


class _Dense(nn.Module):
    def __init__(self, d_in: int, d_out: int, eps: float | None) -> None:
        super().__init__()
        self.dense = nn.Linear(d_in, d_out)
        if eps is not None:
            self.LayerNorm = nn.LayerNorm(d_out, eps=eps)


class _Attention(nn.Module):
    def __init__(self, hidden: int, eps: float) -> None:
        super().__init__()
        self.self = _SelfAttention(hidden)
        self.output = _Dense(hidden, hidden, eps)


class _Layer(nn.Module):
    def __init__(self, hidden: int, inner: int, heads: int, eps: float) -> None:
        super().__init__()
        self.heads = heads
        self.attention = _Attention(hidden, eps)
        self.intermediate = _Dense(hidden, inner, None)
        self.output = _Dense(inner, hidden, eps)

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, t, d = h.shape
        att = self.attention.self

        def split(x: torch.Tensor) -> torch.Tensor:
            return x.view(b, t, self.heads, d // self.heads).transpose(1, 2)

        ctx = F.scaled_dot_product_attention(split(att.query(h)), split(att.key(h)), split(att.value(h)), attn_mask=mask)
        out = self.attention.output
        h = out.LayerNorm(out.dense(ctx.transpose(1, 2).reshape(b, t, d)) + h)
        ffn = self.output
        return ffn.LayerNorm(ffn.dense(F.gelu(self.intermediate.dense(h))) + h)


class _Embeddings(nn.Module):
    def __init__(self, vocab: int, positions: int, types: int, hidden: int, eps: float) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab, hidden)
        self.position_embeddings = nn.Embedding(positions, hidden)
        self.token_type_embeddings = nn.Embedding(types, hidden)
        self.LayerNorm = nn.LayerNorm(hidden, eps=eps)


class _Stack(nn.Module):
    def __init__(self, layers: list[_Layer]) -> None:
        super().__init__()
        self.layer = nn.ModuleList(layers)


class BertEncoder(nn.Module):
    """BERT forward pass (absolute positions, one token type): every layer's hidden states, for inference."""

    def __init__(self, config: dict) -> None:
        super().__init__()
        try:
            hid, heads, eps = int(config["hidden_size"]), int(config["num_attention_heads"]), float(config["layer_norm_eps"])
            if config.get("hidden_act", "gelu") != "gelu" or config.get("position_embedding_type", "absolute") != "absolute":
                raise ModelError("only BERT encoders with gelu and absolute positions are supported")
            self.embeddings = _Embeddings(int(config["vocab_size"]), int(config["max_position_embeddings"]),
                                          int(config["type_vocab_size"]), hid, eps)
            self.encoder = _Stack([_Layer(hid, int(config["intermediate_size"]), heads, eps)
                                   for _ in range(int(config["num_hidden_layers"]))])
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"not a BERT encoder config: {exc}") from exc

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> list[torch.Tensor]:
        """Hidden states [B, T, H] of the embeddings and of each layer (as transformers' hidden_states)."""
        e = self.embeddings
        pos = torch.arange(input_ids.shape[1], device=input_ids.device)
        h = e.LayerNorm(e.word_embeddings(input_ids) + e.position_embeddings(pos)[None] + e.token_type_embeddings.weight[0])
        mask = attention_mask.bool()[:, None, None, :]  # True where a real token may be attended to
        states = [h]
        for layer in self.encoder.layer:
            h = layer(h, mask)
            states.append(h)
        return states

    @classmethod
    def from_folder(cls, folder: Path) -> "BertEncoder":
        """The encoder in `folder` (config.json + model.safetensors), weights read with safetensors."""
        from safetensors.torch import load_file

        try:
            config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
            state = load_file(str(folder / "model.safetensors"))
        except (OSError, ValueError) as exc:
            raise ModelError(f"cannot read the encoder in {folder}: {exc}") from exc
        enc = cls(config)
        state = {k: v for k, v in state.items() if not k.startswith("pooler.") and k != "embeddings.position_ids"}
        missing, unexpected = enc.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise ModelError(f"the encoder weights in {folder} do not fit BERT: missing {missing[:3]}, unexpected {unexpected[:3]}")
        return enc.eval()

    def merge_lora(self, lora: dict[str, torch.Tensor], scale: float) -> None:
        """Add scale * B @ A to each adapted weight (peft's state-dict names), so inference costs no adapter."""
        prefix = "base_model.model."
        pairs: dict[str, dict[str, torch.Tensor]] = {}
        for key, value in lora.items():
            for part in ("lora_A", "lora_B"):
                tag = f".{part}.weight"
                if key.startswith(prefix) and key.endswith(tag):
                    pairs.setdefault(key[len(prefix):-len(tag)], {})[part] = value
        if not pairs:
            raise ModelError("the adapter holds no LoRA weights")
        params = dict(self.named_parameters())
        with torch.no_grad():
            for name, ab in pairs.items():
                w = params.get(f"{name}.weight")
                if w is None or set(ab) != {"lora_A", "lora_B"}:
                    raise ModelError(f"adapter weights do not fit the encoder: {name}")
                delta = ab["lora_B"].float() @ ab["lora_A"].float()
                if delta.shape != w.shape:
                    raise ModelError(f"adapter weights do not fit the encoder: {name} {tuple(delta.shape)}")
                w.add_(delta, alpha=scale)


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

    def pad(self, ids: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """(input_ids, attention_mask) [B, T] tensors, right-padded to the longest."""
        t = max(len(x) for x in ids)
        arr = np.full((len(ids), t), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(ids), t), dtype=np.int64)
        for i, x in enumerate(ids):
            arr[i, :len(x)] = x
            mask[i, :len(x)] = 1
        return torch.from_numpy(arr), torch.from_numpy(mask)
