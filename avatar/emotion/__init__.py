"""Text emotion: sentences to VAD, labels and confidence; dialogue dynamics across a character's lines.

    >>> from avatar.emotion import analyze
    >>> [s.label for s in analyze("I love this! But I'm scared of the dark.")]
    ['happy', 'fearful']
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

import numpy as np

from avatar.emotion.dynamics import Dialogue, EmotionDynamics, Personality
from avatar.emotion.labels import EKMAN_LABELS, LABEL_VAD, label_for, label_probabilities, vad_for_label
from avatar.emotion.sentences import Sentence, check_text, split_sentences
from avatar.errors import ModelError
from avatar.types import VAD, SentenceEmotion

__all__ = [
    "EmotionAnalyzer", "analyze", "text_vad", "default_analyzer", "split_sentences", "Sentence", "check_text",
    "label_for", "label_probabilities", "vad_for_label", "LABEL_VAD", "EKMAN_LABELS",
    "Personality", "EmotionDynamics", "Dialogue",
]

log = logging.getLogger(__name__)



def __getattr__(name: str) -> Path:
    if name == "DEFAULT_MODEL_DIR":  # older callers: the registry's folder, read when asked ($AVATAR_MODEL_EMOTION)
        from avatar.weights import model_dir

        return model_dir("emotion")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class EmotionAnalyzer:
    """Reads VAD, a label and a confidence from each sentence of a text with the trained MiniLM model."""

    def __init__(self, model_dir: str | os.PathLike[str] | None = None, num_threads: int | None = None) -> None:
        """Load the model from `model_dir` (default: weights/emotion); it runs on `num_threads` cores (default:
        as many as NumPy's BLAS is set to use, which OMP_NUM_THREADS / OPENBLAS_NUM_THREADS lower)."""
        # NumPy inference: this path never imports torch (2-3 s of a cold start).
        from avatar.emotion.regressor import EmotionRegressor
        from avatar.npnn import blas_threads

        from avatar.weights import resolve

        folder = resolve("emotion", model_dir)
        if not (folder / "model.safetensors").exists():
            raise ModelError(
                f"no emotion model at {folder}; train one with `python -m avatar.emotion.train` (see docs/emotion.md)"
            )
        self.model = EmotionRegressor.from_pretrained(folder)
        self.model_dir = folder
        self.num_threads = num_threads or blas_threads()
        # One call at a time: predict_ratings caps BLAS threads process-wide (threadpoolctl) while it runs.
        self._lock = threading.Lock()

    def ratings(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """EmoBank-scale (1..5) ratings for a list of texts, [N, 3]."""
        if not texts:
            return np.zeros((0, 3))
        with self._lock:
            return self.model.predict_ratings(texts, batch_size=batch_size, threads=self.num_threads)

    def vad_batch(self, texts: list[str], batch_size: int = 64) -> list[VAD]:
        """VAD in [-1, 1] for each text, scored as one unit each (no sentence splitting)."""
        arr = self.model.rating_to_vad(self.ratings(texts, batch_size=batch_size))
        return [VAD.clipped(*row) for row in arr]

    def analyze(self, text: str, batch_size: int = 64) -> list[SentenceEmotion]:
        """Split text into sentences and read each one's emotion; InputError on empty or huge text."""
        sentences = split_sentences(text)
        vads = self.vad_batch([s.text for s in sentences], batch_size=batch_size)
        out = []
        for s, v in zip(sentences, vads):
            label, conf = label_for(v)
            conf *= _readability(s.text)
            out.append(SentenceEmotion(text=s.text, vad=v, label=label, confidence=conf,
                                       start_char=s.start, end_char=s.end))
        return out

    def analyze_lines(self, lines: list[str], batch_size: int = 64) -> list[SentenceEmotion]:
        """One reading per line (its sentences' VADs weighted by length), all lines batched together."""
        split = [split_sentences(line) for line in lines]
        flat = [s.text for ss in split for s in ss]
        vads = iter(self.vad_batch(flat, batch_size=batch_size))
        out = []
        for line, ss in zip(lines, split):
            w = np.array([max(1, len(s.text)) for s in ss], dtype=np.float64)
            arr = np.stack([next(vads).as_array() for _ in ss]).astype(np.float64)
            v = VAD.clipped(*(w[:, None] * arr).sum(0) / w.sum())
            label, conf = label_for(v)
            text = line.strip()
            out.append(SentenceEmotion(text=text, vad=v, label=label, confidence=conf * _readability(text),
                                       start_char=0, end_char=len(line)))
        return out

    def text_vad(self, text: str) -> VAD:
        """One VAD for a whole text: its sentences' VADs weighted by their length."""
        return self.analyze_lines([text])[0].vad


def _readability(text: str) -> float:
    """Share of letters the English encoder can read well; scales confidence for other scripts."""
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return 0.5  # punctuation, digits or emoji only: the reading is a guess
    latin = sum(1 for c in letters if c.isascii() or "\u00c0" <= c <= "\u024f")
    return 0.4 + 0.6 * latin / len(letters)


_default: EmotionAnalyzer | None = None
_default_lock = threading.Lock()


def default_analyzer() -> EmotionAnalyzer:
    """The process-wide analyzer on the shipped weights, loaded on first use."""
    global _default
    with _default_lock:
        if _default is None:
            _default = EmotionAnalyzer()
        return _default


def analyze(text: str) -> list[SentenceEmotion]:
    """Per-sentence emotion of `text` with the default model."""
    return default_analyzer().analyze(text)


def text_vad(text: str) -> VAD:
    """One VAD for the whole `text` with the default model."""
    return default_analyzer().text_vad(text)

