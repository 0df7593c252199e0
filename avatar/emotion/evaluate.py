"""Figures of an emotion model: dialogue classification, calibration, EmoBank correlation, intensity triples.

Shared by `bench/emotion_bench.py` (which prints them) and `avatar.emotion.export` (which records them in the
exported model's config and card). Torch-free: it runs the analyzer as users do.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from avatar.emotion import EmotionAnalyzer

NOT_VALENCED = ("neutral", "surprised")  # categories whose valence sign is not fixed: left out of the sign figure


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two 1-D arrays."""
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum() + 1e-12))


def load_emobank_dev(path: str | Path) -> tuple[list[str], np.ndarray]:
    """EmoBank's dev rows (texts with letters) and their V, A, D ratings; the test split is never read."""
    texts, ys = [], []
    with open(path, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            if row["split"] == "dev" and re.search(r"[A-Za-z]", row.get("text") or ""):
                texts.append(row["text"].strip())
                ys.append([float(row["V"]), float(row["A"]), float(row["D"])])
    return texts, np.asarray(ys)


def classification(gold: list[str], pred: list[str], cats: tuple[str, ...]) -> tuple[float, float, list, np.ndarray]:
    """(accuracy, macro-F1, per-class rows (name, precision, recall, F1, support), confusion [gold, pred])."""
    idx = {c: i for i, c in enumerate(cats)}
    conf = np.zeros((len(cats), len(cats)), dtype=int)
    for g, p in zip(gold, pred):
        conf[idx[g], idx[p]] += 1
    rows = []
    for i, c in enumerate(cats):
        tp = conf[i, i]
        prec = tp / max(1, conf[:, i].sum())
        rec = tp / max(1, conf[i].sum())
        f1 = 2 * prec * rec / max(1e-12, prec + rec)
        rows.append((c, float(prec), float(rec), float(f1), int(conf[i].sum())))
    return float(np.trace(conf) / max(1, conf.sum())), float(np.mean([r[3] for r in rows])), rows, conf


def reliability(confidence: np.ndarray, correct: np.ndarray, bins: int = 10) -> tuple[float, list]:
    """Expected calibration error and per-bin (range, count, mean confidence, accuracy)."""
    edges = np.linspace(0, 1, bins + 1)
    ece, table = 0.0, []
    for lo, hi in zip(edges[:-1], edges[1:]):
        m = (confidence > lo) & (confidence <= hi)
        if m.any():
            ece += m.mean() * abs(confidence[m].mean() - correct[m].mean())
            table.append((f"{lo:.1f}-{hi:.1f}", int(m.sum()), float(confidence[m].mean()), float(correct[m].mean())))
    return float(ece), table


def valence_sign(readings: list, rows: list) -> float:
    """Share of emotional lines (not neutral or surprised) whose valence has the sign of their label's."""
    pairs = [(o, r) for o, r in zip(readings, rows) if r.category not in NOT_VALENCED]
    return float(np.mean([np.sign(o.vad.valence) == np.sign(r.vad[0]) for o, r in pairs]))


def triples_ordered(analyzer: EmotionAnalyzer, triples: list) -> np.ndarray:
    """Per triple, whether the predicted intensity is ordered mild < plain < strong."""
    flat = [x for t in triples for x in t[1:]]
    inten = np.array([o.intensity for o in analyzer.readings(flat)]).reshape(-1, 3)
    return (inten[:, 0] < inten[:, 1]) & (inten[:, 1] < inten[:, 2])


def summary(analyzer: EmotionAnalyzer, emobank: str | Path) -> dict[str, float]:
    """The headline figures of `analyzer` (an EmotionAnalyzer): what the model card records."""
    from avatar.emotion.dialogue_data import load_dialogue, load_triples

    out: dict[str, float] = {}
    cats = analyzer.categories
    for split in ("dev", "test"):
        rows = load_dialogue(split)
        got = analyzer.readings([r.text for r in rows])
        acc, f1, _, _ = classification([r.category for r in rows], [o.label for o in got], cats)
        out.update({f"dialogue_{split}_n": len(rows), f"dialogue_{split}_accuracy": round(acc, 4),
                    f"dialogue_{split}_macro_f1": round(f1, 4)})
        hand = [(r, o) for r, o in zip(rows, got) if r.variant == "original"]
        acc_h, f1_h, _, _ = classification([r.category for r, _ in hand], [o.label for _, o in hand], cats)
        out.update({f"dialogue_{split}_handwritten_n": len(hand), f"dialogue_{split}_handwritten_accuracy": round(acc_h, 4),
                    f"dialogue_{split}_handwritten_macro_f1": round(f1_h, 4)})
        if split == "test":
            out["dialogue_test_valence_sign"] = round(valence_sign(got, rows), 4)
            out["dialogue_test_handwritten_valence_sign"] = round(valence_sign([o for _, o in hand], [r for r, _ in hand]), 4)
            correct = np.array([o.label == r.category for o, r in zip(got, rows)], dtype=float)
            out["dialogue_test_ece"] = round(reliability(np.array([o.confidence for o in got]), correct)[0], 4)
    texts, y = load_emobank_dev(emobank)
    reading = analyzer.read(texts)
    final = np.array([o.vad.as_array() for o in analyzer.readings(texts)])
    for i, k in enumerate(("valence", "arousal", "dominance")):
        out[f"emobank_{k}"] = round(pearson(reading.ratings[:, i], y[:, i]), 4)
        out[f"emobank_final_{k}"] = round(pearson(final[:, i], y[:, i]), 4)
    out["emobank_dev_n"] = len(texts)
    triples = load_triples()
    out["triples_n"] = len(triples)
    out["triples_ordered"] = round(float(triples_ordered(analyzer, triples).mean()), 4)
    return out
