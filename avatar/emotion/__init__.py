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
from avatar.emotion.labels import (
    EKMAN_LABELS,
    LABEL_VAD,
    consistent_vad,
    fuse_categories,
    is_consistent,
    label_for,
    label_probabilities,
    vad_for_label,
)
from avatar.emotion.regressor import Reading
from avatar.emotion.sentences import Sentence, check_text, split_sentences
from avatar.errors import ModelError
from avatar.types import VAD, SentenceEmotion

__all__ = [
    "EmotionAnalyzer", "analyze", "text_vad", "default_analyzer", "split_sentences", "Sentence", "check_text",
    "label_for", "label_probabilities", "vad_for_label", "LABEL_VAD", "EKMAN_LABELS", "consistent_vad", "is_consistent",
    "Reading",
    "Personality", "EmotionDynamics", "Dialogue",
]

log = logging.getLogger(__name__)



def __getattr__(name: str) -> Path:
    if name == "DEFAULT_MODEL_DIR":  # older callers: the registry's folder, read when asked ($AVATAR_MODEL_EMOTION)
        from avatar.weights import model_dir

        return model_dir("emotion")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class EmotionAnalyzer:
    """Reads VAD, a category (with probabilities), an intensity and a confidence from each sentence of a text.

    One MiniLM encoder with two heads, run in onnxruntime: VAD regression (EmoBank) and categories + intensity
    (our dialogue lines); the VAD is then moved the least it must to agree with the category (`consistent_vad`).
    """

    def __init__(self, model_dir: str | os.PathLike[str] | None = None, num_threads: int | None = None) -> None:
        """Load the model from `model_dir` (default: the registry's emotion folder); its session runs on
        `num_threads` intra-op threads (default: avatar.runtime's, $AVATAR_ONNX_THREADS or 1)."""
        # onnxruntime inference: this path never imports torch (2-3 s of a cold start).
        from avatar.emotion.regressor import EmotionRegressor
        from avatar.weights import resolve

        folder = resolve("emotion", model_dir)
        if not (folder / "model.onnx").exists():
            raise ModelError(
                f"no emotion model at {folder}; train one with `python -m avatar.emotion.train` and export it with "
                "`python -m avatar.emotion.export` (see docs/emotion.md)"
            )
        self.model = EmotionRegressor.from_pretrained(folder, threads=num_threads)
        self.model_dir = folder
        self.num_threads = self.model.graph.threads
        self.categories = self.model.categories

    def read(self, texts: list[str], batch_size: int = 64) -> Reading:
        """The model's raw reading of each text (ratings, category probabilities, intensity), as one unit each."""
        return self.model.predict(list(texts), batch_size=batch_size)

    def ratings(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """EmoBank-scale (1..5) ratings for a list of texts, [N, 3] (the VAD head alone)."""
        return self.read(texts, batch_size=batch_size).ratings

    def readings(self, texts: list[str], batch_size: int = 64) -> list[SentenceEmotion]:
        """One SentenceEmotion per text (no sentence splitting): VAD consistent with the predicted category."""
        r = self.read(texts, batch_size=batch_size)
        vads = self.model.rating_to_vad(r.ratings)
        return [_emotion(t, VAD.clipped(*v), dict(zip(r.categories, p)), float(i))
                for t, v, p, i in zip(texts, vads, r.probs, r.intensity)]

    def vad_batch(self, texts: list[str], batch_size: int = 64) -> list[VAD]:
        """VAD in [-1, 1] for each text, scored as one unit each (no sentence splitting)."""
        return [e.vad for e in self.readings(texts, batch_size=batch_size)]

    def analyze(self, text: str, batch_size: int = 64) -> list[SentenceEmotion]:
        """Split text into sentences and read each one's emotion; InputError on empty or huge text."""
        sentences = split_sentences(text)
        found = self.readings([s.text for s in sentences], batch_size=batch_size)
        return [e.model_copy(update={"start_char": s.start, "end_char": s.end}) for s, e in zip(sentences, found)]

    def analyze_lines(self, lines: list[str], batch_size: int = 64) -> list[SentenceEmotion]:
        """One reading per line: its sentences' VADs, probabilities and intensities weighted by their length."""
        split = [split_sentences(line) for line in lines]
        found = iter(self.readings([s.text for ss in split for s in ss], batch_size=batch_size))
        out = []
        for line, ss in zip(lines, split):
            w = np.array([max(1, len(s.text)) for s in ss], dtype=np.float64)
            w /= w.sum()
            parts = [next(found) for _ in ss]
            v = VAD.clipped(*(w[:, None] * np.stack([e.vad.as_array() for e in parts])).sum(0))
            probs = {c: float(sum(wi * e.categories[c] for wi, e in zip(w, parts))) for c in self.categories}
            inten = float(sum(wi * e.intensity for wi, e in zip(w, parts)))
            out.append(_emotion(line.strip(), v, probs, inten).model_copy(update={"end_char": len(line)}))
        return out

    def text_vad(self, text: str) -> VAD:
        """One VAD for a whole text: its sentences' VADs weighted by their length."""
        return self.analyze_lines([text])[0].vad


def _emotion(text: str, vad: VAD, probs: dict[str, float], intensity: float) -> SentenceEmotion:
    """A SentenceEmotion from the model's outputs: the category probabilities weighed by the VAD's fit
    (`fuse_categories`), the top one as label, its probability (times the share of readable letters) as
    confidence, and the VAD moved to agree with the label and the probabilities' decisive valence evidence."""
    probs = fuse_categories(probs, vad)
    label = max(probs, key=probs.__getitem__)
    intensity = 0.0 if label == "neutral" else min(1.0, max(0.0, intensity))
    return SentenceEmotion(text=text, vad=consistent_vad(vad, label, probs), label=label,
                           confidence=min(1.0, probs[label] * _readability(text)),
                           categories={k: round(v, 4) for k, v in probs.items()}, intensity=round(intensity, 4))


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

