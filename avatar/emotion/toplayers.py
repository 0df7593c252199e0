"""Fine-tune only the top encoder layers on a CPU: the frozen lower layers run once per text, their output cached.

`LowerStates.encode(model, texts, train_layers)` runs the embeddings and the lower `n - train_layers` layers of an
`EmotionModel` (adapter as loaded, eval mode, no gradients, batches of similar length) and keeps, per text, the
token states the first trained layer reads plus the mean-pools of the lower layers that the pooling mixes in.
`top_pooled(model, states, idx)` then runs only the top layers on a padded batch of those states and gives the
sentence vector the heads read: the same as `model.pooled` when nothing has changed (tests check it), at a small
share of a full training step's cost. Training code only (imports torch).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from avatar.emotion.model import EmotionModel, length_batches, prepare_text
from avatar.io import atomic_path

log = logging.getLogger(__name__)


def _bert(model: EmotionModel):  # noqa: ANN202 - transformers' BertModel
    """The plain BertModel under the peft wrapper (or the model itself when fine-tuned fully)."""
    enc = model.encoder
    return enc.get_base_model() if hasattr(enc, "get_base_model") else enc


def _additive_mask(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """[B, L] 0/1 -> [B, 1, 1, L] additive attention mask (0 where attended, a large negative number on padding)."""
    return (1.0 - mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min


def _mean_pool(h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.unsqueeze(-1).to(h.dtype)
    return (h * m).sum(1) / m.sum(1).clamp(min=1.0)


def split_layer(model: EmotionModel, train_layers: int) -> int:
    """Index of the first trained layer (SystemExit when `train_layers` is not 1..n)."""
    n = _bert(model).config.num_hidden_layers
    if not 0 < train_layers <= n:
        raise SystemExit(f"--train-layers takes 1..{n}, got {train_layers}")
    return n - train_layers


@dataclass
class LowerStates:
    """Per text: the token states entering the first trained layer ([L_i, H], float16, flat with offsets) and the
    mean-pools of the lower hidden states the pooling mixes in ([P_low, N, H])."""

    texts: list[str]
    states: torch.Tensor  # [sum L_i, H] float16
    offsets: torch.Tensor  # [N + 1] int64
    pools: torch.Tensor  # [P_low, N, H] float32 (P_low may be 0)
    key: str  # which model and split made them: a cache made for another is refused

    @property
    def lengths(self) -> list[int]:
        """Token count of each text."""
        return (self.offsets[1:] - self.offsets[:-1]).tolist()

    def batch(self, idx: list[int] | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(states [B, L, H] float32 padded to the longest in the batch, mask [B, L], pools [P_low, B, H])."""
        idx = [int(i) for i in idx]
        lens = [int(self.offsets[i + 1] - self.offsets[i]) for i in idx]
        h = torch.zeros(len(idx), max(lens), self.states.shape[1])
        mask = torch.zeros(len(idx), max(lens), dtype=torch.long)
        for row, (i, n) in enumerate(zip(idx, lens)):
            h[row, :n] = self.states[self.offsets[i]: self.offsets[i] + n].float()
            mask[row, :n] = 1
        return h, mask, self.pools[:, idx]

    def subset(self, texts: list[str]) -> "LowerStates":
        """The states of `texts` (each must be in this cache), in that order."""
        where = {t: i for i, t in enumerate(self.texts)}
        idx = [where[t] for t in texts]
        lens = self.offsets[1:] - self.offsets[:-1]
        offsets = torch.zeros(len(idx) + 1, dtype=torch.long)
        offsets[1:] = torch.cumsum(lens[idx], 0)
        states = torch.cat([self.states[self.offsets[i]: self.offsets[i + 1]] for i in idx]) if idx else self.states[:0]
        return LowerStates(list(texts), states, offsets, self.pools[:, idx], self.key)

    def save(self, path: Path) -> None:
        """Write the cache as safetensors (texts and key in the metadata)."""
        from safetensors.torch import save_file

        with atomic_path(path) as tmp:
            save_file({"states": self.states.contiguous(), "offsets": self.offsets, "pools": self.pools.contiguous()},
                      str(tmp), metadata={"texts": json.dumps(self.texts), "key": self.key})

    @classmethod
    def load(cls, path: Path) -> "LowerStates":
        """Read a cache `save` wrote."""
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            if not {"states", "offsets", "pools"} <= set(f.keys()) or not {"texts", "key"} <= set(meta):
                raise SystemExit(f"{path} is not a lower-layer cache of --train-layers (a --freeze-encoder cache?); "
                                 "remove it or pick another")
            t = {k: f.get_tensor(k) for k in ("states", "offsets", "pools")}
        return cls(json.loads(meta["texts"]), t["states"], t["offsets"], t["pools"], meta["key"])

    @classmethod
    def merge(cls, parts: list["LowerStates"]) -> "LowerStates":
        """One cache holding every part's texts (parts made by the same model and split)."""
        texts = [t for p in parts for t in p.texts]
        lens = torch.cat([p.offsets[1:] - p.offsets[:-1] for p in parts])
        offsets = torch.zeros(len(texts) + 1, dtype=torch.long)
        offsets[1:] = torch.cumsum(lens, 0)
        return cls(texts, torch.cat([p.states for p in parts]), offsets, torch.cat([p.pools for p in parts], 1),
                   parts[0].key)

    @classmethod
    @torch.inference_mode()
    def encode(cls, model: EmotionModel, texts: list[str], train_layers: int, key: str = "",
               batch_size: int = 64) -> "LowerStates":
        """Run the embeddings and the frozen lower layers over `texts` (prepared as inference prepares them)."""
        bert = _bert(model)
        first = split_layer(model, train_layers)
        n = bert.config.num_hidden_layers
        k = max(1, model.config.pool_layers)
        low_pools = [j for j in range(n + 1 - k, n + 1) if j <= first]  # hidden-state indices (0 = embeddings)
        was_training = model.training
        model.eval()
        ids = model.token_ids([prepare_text(t) for t in texts])
        per_text: list[torch.Tensor | None] = [None] * len(texts)
        pools = torch.zeros(len(low_pools), len(texts), bert.config.hidden_size)
        for step, idx in enumerate(length_batches(ids, batch_size)):
            input_ids, mask = model._pad([ids[j] for j in idx])
            h = bert.embeddings(input_ids=input_ids)
            add = _additive_mask(mask, h.dtype)
            hidden = [h]
            for layer in bert.encoder.layer[:first]:
                h = layer(h, add)
                h = h[0] if isinstance(h, tuple) else h
                hidden.append(h)
            for p, j in enumerate(low_pools):
                pools[p, idx] = _mean_pool(hidden[j], mask)
            for row, j in enumerate(idx):
                per_text[j] = h[row, : int(mask[row].sum())].half()
            if step % 20 == 0:
                log.info("lower layers: batch %d / %d", step, -(-len(ids) // batch_size))
        model.train(was_training)
        lens = torch.tensor([len(x) for x in per_text], dtype=torch.long)
        offsets = torch.zeros(len(texts) + 1, dtype=torch.long)
        offsets[1:] = torch.cumsum(lens, 0)
        states = torch.cat(per_text) if per_text else torch.zeros(0, bert.config.hidden_size, dtype=torch.float16)
        return cls(list(texts), states, offsets, pools, key)


def cache_key(init: Path | None, train_layers: int, pool_layers: int) -> str:
    """What a cache depends on: the --init weights (hashed), the split layer and the pooled layers."""
    digest = "none"
    if init is not None and (Path(init) / "model.safetensors").exists():
        digest = hashlib.sha256((Path(init) / "model.safetensors").read_bytes()).hexdigest()[:16]
    return f"init={digest};train_layers={train_layers};pool_layers={pool_layers}"


def cached_states(model: EmotionModel, texts: list[str], train_layers: int, key: str,
                  path: Path | None = None) -> LowerStates:
    """The lower layers' states of `texts`: read from `path` where it holds them (same key), the rest encoded and
    added to it."""
    have = None
    if path is not None and path.exists():
        have = LowerStates.load(path)
        if have.key != key:
            raise SystemExit(f"{path} was made for another model or split ({have.key}); remove it or pick another")
    known = set(have.texts) if have is not None else set()
    missing = list(dict.fromkeys(t for t in texts if t not in known))
    if missing:
        log.info("encoding %d texts through the lower layers (%d cached)", len(missing), len(known))
        new = LowerStates.encode(model, missing, train_layers, key)
        have = new if have is None else LowerStates.merge([have, new])
        if path is not None:
            have.save(path)
    return have.subset(texts)


def top_pooled(model: EmotionModel, lower: LowerStates, idx: list[int] | torch.Tensor,
               train_layers: int) -> torch.Tensor:
    """The sentence vector [B, pooled_size] of texts `idx`: the top layers run on their cached states (with
    gradients when the model is in training mode), then the model's own pooling."""
    bert = _bert(model)
    first = split_layer(model, train_layers)
    n = bert.config.num_hidden_layers
    k = max(1, model.config.pool_layers)
    h, mask, low = lower.batch(idx)
    add = _additive_mask(mask, h.dtype)
    pools = list(low)
    for j, layer in enumerate(bert.encoder.layer[first:], start=first + 1):
        h = layer(h, add)
        h = h[0] if isinstance(h, tuple) else h
        if j >= n + 1 - k:
            pools.append(_mean_pool(h, mask))
    stacked = torch.stack(pools, 0)  # [k, B, H]
    if model.concat:
        return torch.cat(list(stacked), dim=-1)
    w = torch.softmax(model.layer_mix, dim=0)
    return (w[:, None, None] * stacked).sum(0)
