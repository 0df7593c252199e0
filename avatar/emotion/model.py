"""The text-to-VAD model for training: the packaged MiniLM encoder with a LoRA adapter and a small regression head.

Saved like a diffusers component: `save_pretrained(dir)` writes config.json, model.safetensors (only the
adapter and head, a few MB) and the model card README.md. `EmotionModel` is the training model (torch,
transformers' BERT + peft's LoRA). `python -m avatar.emotion.export` turns the same folder into one ONNX graph
(adapter merged, pooling, both heads) that inference runs in onnxruntime (`regressor.py`), so a process that only
reads emotions imports neither torch nor transformers. The config, `encoder_dir`, `prepare_text` and
`soft_saturate` live there and are re-exported here. Nothing here touches the network.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from pathlib import Path
from typing import Iterator

# The encoder ships inside a pip package; never let transformers try a hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np
import torch
from torch import nn

from avatar.emotion.regressor import (
    LORA_TARGETS,
    SATURATION_KNEE,
    EmotionModelConfig,
    encoder_dir,
    length_batches,
    prepare_text,
    rating_to_vad,
    soft_saturate,
    z_to_rating,
)
from avatar.errors import ModelError
from avatar.pretrained import load_folder, save_folder

__all__ = [
    "EmotionModel", "EmotionModelConfig", "LORA_TARGETS", "SATURATION_KNEE", "encoder_dir",
    "prepare_text", "soft_saturate",
]

log = logging.getLogger(__name__)


class EmotionModel(nn.Module):
    """MiniLM encoder (+ LoRA, through transformers and peft) -> mean pooling -> MLP -> VAD z-scores: for training.

    Inference runs its ONNX export (`avatar.emotion.export`, `avatar.emotion.regressor.EmotionRegressor`); the two
    share the config, text preparation, length batching and rating conversions, and the export checks its numbers.
    """

    def __init__(self, config: EmotionModelConfig) -> None:
        super().__init__()
        from transformers import AutoModel, AutoTokenizer

        self.config = config
        src = encoder_dir()
        self.tokenizer = AutoTokenizer.from_pretrained(str(src), local_files_only=True)
        encoder = AutoModel.from_pretrained(str(src), local_files_only=True)
        if config.finetune not in ("lora", "full"):
            raise ModelError(f"unknown finetune mode {config.finetune!r} (lora or full)")
        if config.finetune == "lora":
            from peft import LoraConfig, get_peft_model

            lcfg = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                              target_modules=config.lora_targets, bias="none")
            encoder = get_peft_model(encoder, lcfg)
        self.encoder = encoder
        hidden = self.encoder.config.hidden_size
        self.layer_mix = nn.Parameter(torch.zeros(max(1, config.pool_layers)))
        if config.pool_mode not in ("mix", "concat"):
            raise ModelError(f"unknown pool_mode {config.pool_mode!r} (mix or concat)")
        self.concat = config.pool_mode == "concat" and config.pool_layers > 1
        self.pooled_size = hidden * (config.pool_layers if self.concat else 1)
        if self.concat:
            self.layer_mix.requires_grad_(False)  # unused: the head reads every layer
        self.head = nn.Sequential(nn.Dropout(0.1), nn.Linear(self.pooled_size, config.head_hidden), nn.GELU(),
                                  nn.Linear(config.head_hidden, 3))
        # The second head on the same sentence vector: category logits and intensity (0..1, a sigmoid outside).
        n_cat = len(config.categories)
        self.cat_head = (nn.Sequential(nn.Dropout(0.1), nn.Linear(self.pooled_size, config.head_hidden), nn.GELU(),
                                       nn.Linear(config.head_hidden, n_cat + 1)) if n_cat else None)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **_: torch.Tensor) -> torch.Tensor:
        """Predicted z-scores [B, 3]."""
        return self.head(self.pooled(input_ids, attention_mask))

    def heads(self, pooled: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(VAD z-scores [B, 3], category logits [B, C], intensity logit [B]) from the sentence vector."""
        out = self.cat_head(pooled)
        return self.head(pooled), out[:, :-1], out[:, -1]

    @torch.inference_mode()
    def predict_all(self, texts: list[str], batch_size: int = 64) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(ratings [N, 3], category logits [N, C], intensity 0..1 [N]) for raw texts (call eval() first)."""
        ids = self.token_ids([prepare_text(t) for t in texts])
        n_cat = len(self.config.categories)
        r, c, i = np.zeros((len(texts), 3)), np.zeros((len(texts), n_cat)), np.zeros(len(texts))
        for idx in length_batches(ids, batch_size):
            z, logits, inten = self.heads(self.pooled(*self._pad([ids[j] for j in idx])))
            r[idx] = self.z_to_rating(z.float().numpy())
            c[idx] = logits.float().numpy()
            i[idx] = torch.sigmoid(inten).float().numpy()
        return r, c, i

    def pooled(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """The sentence vector [B, H] the head reads (training also distils a teacher's features into it)."""
        k = max(1, self.config.pool_layers)
        res = self.encoder(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=k > 1)
        layers = res.hidden_states[-k:] if k > 1 else (res.last_hidden_state,)
        m = attention_mask.unsqueeze(-1).to(layers[0].dtype)
        denom = m.sum(1).clamp(min=1.0)
        pooled = torch.stack([(h * m).sum(1) / denom for h in layers], dim=0)  # [k, B, H]
        if self.concat:
            return torch.cat(list(pooled), dim=-1)
        w = torch.softmax(self.layer_mix, dim=0)
        return (w[:, None, None] * pooled).sum(0)

    def token_ids(self, texts: list[str]) -> list[list[int]]:
        """Token ids of each text ([CLS] ... [SEP], truncated to max_length)."""
        return self.tokenizer(texts, truncation=True, max_length=self.config.max_length)["input_ids"]

    def _pad(self, ids: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        enc = self.tokenizer.pad({"input_ids": ids}, return_tensors="pt")
        return enc["input_ids"], enc["attention_mask"]

    def z_to_rating(self, z: np.ndarray) -> np.ndarray:
        """z-scores -> EmoBank 1..5 ratings."""
        return z_to_rating(self.config, z)

    def rating_to_vad(self, r: np.ndarray) -> np.ndarray:
        """EmoBank ratings -> engine VAD in (-1, 1)."""
        return rating_to_vad(self.config, r)

    @torch.inference_mode()
    def predict_ratings(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """EmoBank-scale ratings [N, 3] for raw texts, batched by length for speed (call eval() first)."""
        ids = self.token_ids([prepare_text(t) for t in texts])
        out = np.zeros((len(texts), 3), dtype=np.float64)
        for idx in length_batches(ids, batch_size):
            input_ids, mask = self._pad([ids[j] for j in idx])
            out[idx] = self.z_to_rating(self(input_ids, mask).float().numpy())
        return out

    # ---- persistence ---------------------------------------------------------------------------------
    def trainable_state(self) -> dict[str, torch.Tensor]:
        """Only what training changed: the LoRA matrices (or the transformer layers, float16), head, layer mix."""
        if self.config.finetune == "lora":
            from peft import get_peft_model_state_dict

            state = {f"lora.{k}": v.float() for k, v in get_peft_model_state_dict(self.encoder).items()}
        else:
            state = {f"enc.{k}": v.half() for k, v in self.encoder.state_dict().items() if k.startswith("encoder.")}
        state.update({f"head.{k}": v.float() for k, v in self.head.state_dict().items()})
        if self.cat_head is not None:
            state.update({f"cat.{k}": v.float() for k, v in self.cat_head.state_dict().items()})
        if self.config.pool_layers > 1 and not self.concat:
            state["mix.weight"] = self.layer_mix.float()
        return {k: v.detach().contiguous() for k, v in state.items()}

    def load_trainable_state(self, state: dict[str, torch.Tensor], source: str = "state") -> None:
        """Put back what `trainable_state` returned (ModelError when it does not fit this model)."""
        head = {k[5:]: v for k, v in state.items() if k.startswith("head.")}
        if not head:
            raise ModelError(f"{source} holds no regression head")
        if self.config.finetune == "lora":
            from peft import set_peft_model_state_dict

            lora = {k[5:]: v for k, v in state.items() if k.startswith("lora.")}
            if not lora:
                raise ModelError(f"{source} holds no adapter weights")
            res = set_peft_model_state_dict(self.encoder, lora)
            if getattr(res, "unexpected_keys", None):
                raise ModelError(f"adapter weights do not fit the encoder: {res.unexpected_keys[:3]}")
        else:
            enc = {k[4:]: v.float() for k, v in state.items() if k.startswith("enc.")}
            res = self.encoder.load_state_dict(enc, strict=False)
            if res.unexpected_keys or any(k.startswith("encoder.") for k in res.missing_keys):
                raise ModelError(f"{source}: encoder weights do not fit the encoder")
        self.head.load_state_dict(head)
        cat = {k[4:]: v for k, v in state.items() if k.startswith("cat.")}
        if self.cat_head is not None and cat:  # a VAD-only model may seed a two-head one: its cat head starts new
            self.cat_head.load_state_dict(cat)
        if self.config.pool_layers > 1 and not self.concat:
            if "mix.weight" not in state or state["mix.weight"].shape != self.layer_mix.shape:
                raise ModelError(f"{source} lacks the layer-mix weights its config asks for")
            self.layer_mix.data.copy_(state["mix.weight"])

    def save_pretrained(self, folder: str | os.PathLike[str], card: str | None = None) -> Path:
        """Write config.json, model.safetensors (adapter and head only) and, when given, the model card."""
        return save_folder(folder, self.trainable_state(), self.config, card)

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike[str]) -> "EmotionModel":
        """Load a saved adapter + head onto the packaged encoder and merge the adapter for inference."""
        config, state = load_folder(folder, EmotionModelConfig, "emotion")
        with _quiet_loading():
            model = cls(config)
            model.load_trainable_state(state, source=str(Path(folder) / "model.safetensors"))
            if config.finetune == "lora":
                model.encoder = model.encoder.merge_and_unload()  # plain BERT again: no adapter cost at run time
        model.eval()
        return model


@contextlib.contextmanager
def _quiet_loading() -> Iterator[None]:
    """Keep a routine model load off the user's terminal: no weight-loading bar, no deprecation notes
    that transformers and peft raise at each other (they are theirs to fix, not our users')."""
    from transformers.utils import logging as hf_logging

    bar_was_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=FutureWarning, module=r"transformers\..*")
            yield
    finally:
        if bar_was_on:
            hf_logging.enable_progress_bar()
