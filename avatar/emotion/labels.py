"""Categorical emotions as points in VAD space, and the way back from a VAD point to a label.

Source of the points: the pleasure-arousal-dominance ratings of emotion terms in Russell & Mehrabian
(1977), "Evidence for a three-factor theory of emotions", J. Research in Personality 11, as tabulated for
the Ekman categories by Gebhard (2005), "ALMA - A Layered Model of Affect", AAMAS. Both use [-1, 1].
See docs/emotion.md for the table and how the label's confidence is computed.
"""

from __future__ import annotations

import math

import numpy as np

from avatar.errors import InputError
from avatar.types import VAD

#: The Ekman six plus neutral (always present), then finer labels that users may ask for by name.
EKMAN_LABELS: tuple[str, ...] = ("neutral", "happy", "sad", "angry", "fearful", "disgusted", "surprised")

LABEL_VAD: dict[str, VAD] = {
    "neutral": VAD(0.00, 0.00, 0.00),
    "happy": VAD(0.76, 0.48, 0.35),  # R&M "joy"
    "sad": VAD(-0.63, -0.27, -0.33),
    "angry": VAD(-0.51, 0.59, 0.25),
    "fearful": VAD(-0.64, 0.60, -0.43),
    "disgusted": VAD(-0.60, 0.35, 0.11),
    "surprised": VAD(0.40, 0.67, -0.13),
    # finer labels (used by presets and by label_for when fine=True)
    "excited": VAD(0.62, 0.75, 0.38),
    "relaxed": VAD(0.68, -0.46, 0.06),
    "bored": VAD(-0.65, -0.62, -0.33),
    "proud": VAD(0.40, 0.30, 0.30),
    "anxious": VAD(-0.40, 0.40, -0.40),
}

#: Below this distance from the origin a point is called neutral whatever its direction.
NEUTRAL_RADIUS = 0.15
#: Width (in VAD units) of the soft assignment used for confidence.
_SIGMA = 0.22


def vad_for_label(label: str) -> VAD:
    """The VAD point of a label (case-insensitive; 'joy', 'anger', 'fear', 'sadness' also accepted)."""
    aliases = {"joy": "happy", "anger": "angry", "fear": "fearful", "sadness": "sad", "disgust": "disgusted",
               "surprise": "surprised", "calm": "relaxed", "content": "relaxed"}
    key = aliases.get(label.strip().lower(), label.strip().lower())
    if key not in LABEL_VAD:
        raise InputError(f"unknown emotion label {label!r}; known: {', '.join(LABEL_VAD)}")
    return LABEL_VAD[key]


def label_probabilities(vad: VAD, fine: bool = False) -> dict[str, float]:
    """Soft assignment of a VAD point to labels: Gaussian kernel on distance, normalised to sum 1."""
    names = list(LABEL_VAD) if fine else list(EKMAN_LABELS)
    protos = np.stack([LABEL_VAD[n].as_array() for n in names]).astype(np.float64)
    x = vad.as_array().astype(np.float64)
    # A prototype far out in one direction should still win for a weaker point in that direction, so
    # compare directions for non-neutral labels: project the point to the prototype's radius first.
    r = np.linalg.norm(x)
    d2 = np.empty(len(names))
    for i, (n, p) in enumerate(zip(names, protos)):
        if n == "neutral":
            d2[i] = max(0.0, r - NEUTRAL_RADIUS) ** 2 * 4.0
        else:
            pr = np.linalg.norm(p)
            scaled = x * (pr / r) if r > 1e-9 else x
            d2[i] = np.sum((scaled - p) ** 2) + max(0.0, NEUTRAL_RADIUS - r) * 2.0
    logits = -d2 / (2 * _SIGMA**2)
    logits -= logits.max()
    p = np.exp(logits)
    p /= p.sum()
    return {n: float(v) for n, v in zip(names, p)}


def label_for(vad: VAD, fine: bool = False) -> tuple[str, float]:
    """The most likely label of a VAD point and its probability (the label's confidence)."""
    probs = label_probabilities(vad, fine=fine)
    best = max(probs, key=probs.__getitem__)
    conf = probs[best]
    return best, float(conf if math.isfinite(conf) else 0.0)


#: The sign of valence each category implies (0: either), and which need positive arousal.
CATEGORY_VALENCE_SIGN: dict[str, int] = {"neutral": 0, "happy": 1, "sad": -1, "angry": -1, "fearful": -1,
                                         "disgusted": -1, "surprised": 0}
_AROUSED = ("surprised", "angry", "fearful")
#: How far past zero a corrected coordinate is put. Kept small on purpose: a larger margin (0.05 + 0.25 x
#: intensity) cost 0.034 of EmoBank dev valence r, since the category head mislabels some news sentences; this one
#: costs 0.0026 and keeps every label's sign.
CONSISTENCY_MARGIN = 0.02


#: How decisive the category probabilities' valence evidence (`category_valence`) must be before a neutral or
#: surprised reading, whose label fixes no sign, takes its sign. Chosen on our dialogue dev split: 0.4 raised its
#: valence sign 92.0 -> 92.6 % and left EmoBank dev valence r as it was (0.3 cost 0.001 of it, 0.2 0.0025).
VALENCE_EVIDENCE = 0.4


def category_valence(probs: dict[str, float]) -> float:
    """The categories' valence evidence: the probability of the positive ones minus that of the negative ones."""
    return float(sum(CATEGORY_VALENCE_SIGN.get(c, 0) * p for c, p in probs.items()))


def consistent_vad(vad: VAD, label: str, probs: dict[str, float] | None = None) -> VAD:
    """`vad` moved the least it must to agree with `label`: a sad, angry, fearful or disgusted label gets negative
    valence, happy positive, and surprised, angry and fearful positive arousal (at least CONSISTENCY_MARGIN past
    zero). With the category probabilities `probs`, a neutral or surprised label takes the valence sign of their
    evidence when it is decisive (|category_valence| >= VALENCE_EVIDENCE: "Bank's sending a man out Tuesday.",
    neutral .46 / negative .51). A point that already agrees is returned unchanged."""
    v, a, d = vad.valence, vad.arousal, vad.dominance
    s = CATEGORY_VALENCE_SIGN.get(label, 0)
    if not s and probs is not None:
        evidence = category_valence(probs)
        s = int(np.sign(evidence)) if abs(evidence) >= VALENCE_EVIDENCE else 0
    if s and s * v < CONSISTENCY_MARGIN:
        v = s * CONSISTENCY_MARGIN
    if label in _AROUSED and a < CONSISTENCY_MARGIN:
        a = CONSISTENCY_MARGIN
    return VAD.clipped(v, a, d)


#: How strongly a category is discounted per unit of VAD that contradicts its signs (`fuse_categories`).
SIGN_MISMATCH_PENALTY = 1.5


def fuse_categories(probs: dict[str, float], vad: VAD) -> dict[str, float]:
    """The category head's probabilities weighed by how well the VAD head's reading fits each category's signs.

    Each category is discounted by exp(-SIGN_MISMATCH_PENALTY x how far the VAD lies on the wrong side of its
    valence sign, plus below zero arousal for the aroused ones), then renormalised. It decides between
    categories the text head finds close using the VAD head's evidence, so "We did it!" (angry .42 / happy .40,
    valence +0.42) reads happy instead of dragging its valence below zero.
    """
    def fit(label: str) -> float:
        s = CATEGORY_VALENCE_SIGN.get(label, 0)
        miss = max(0.0, -s * vad.valence) if s else 0.0
        if label in _AROUSED:
            miss += max(0.0, -vad.arousal)
        return math.exp(-SIGN_MISMATCH_PENALTY * miss)

    weighed = {c: p * fit(c) for c, p in probs.items()}
    total = sum(weighed.values())
    return {c: w / total for c, w in weighed.items()} if total > 0 else dict(probs)


def is_consistent(vad: VAD, label: str, probs: dict[str, float] | None = None) -> bool:
    """Whether a VAD point agrees with its label, and with decisive category evidence `probs` where the label fixes
    no valence sign (the signs `consistent_vad` enforces)."""
    s = CATEGORY_VALENCE_SIGN.get(label, 0)
    if not s and probs is not None:
        evidence = category_valence(probs)  # a hair of slack: output probabilities are rounded to 4 decimals
        s = int(np.sign(evidence)) if abs(evidence) >= VALENCE_EVIDENCE + 1e-3 else 0
    if s and s * vad.valence <= 0:
        return False
    return not (label in _AROUSED and vad.arousal <= 0)
