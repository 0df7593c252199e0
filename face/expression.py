"""Emotion on the face: VAD -> FACS action units -> ARKit blendshapes, and how it mixes with speech.

Two steps, each a table that can be read and checked:
1. `action_units(vad)`: intensities in [0, 1] of the FACS action units (Ekman & Friesen 1978) that the
   EMFACS emotion prototypes use (Friesen & Ekman 1983; as tabulated in Ekman, Friesen & Hager 2002):
   happiness 6+12, sadness 1+4+15(+17), surprise 1+2+5+26, fear 1+2+4+5+7+20+26, anger 4+5+7+23(+24),
   disgust 9+10+15(+17). Each AU is a smooth, monotone function of the VAD coordinates, laid out so that the
   VAD points of those emotions (Russell & Mehrabian 1977, avatar.emotion.labels) light up their prototype:
   valence drives the smile (AU6+12) and, negative, the brow lowerer and lip-corner depressor (AU4, AU15);
   arousal drives brow raise and upper-lid raise (AU1+2+5) and the jaw drop of surprise/fear (AU26);
   dominance separates anger (high: AU4+7+23, brows down) from fear and surprise (low: brows up, AU20).
   Low arousal lowers the upper lids a little (AU43 partial: tired, relaxed, sad faces).
2. `AU_TO_ARKIT`: each AU as ARKit blendshapes, after Apple's ARFaceAnchor.BlendShapeLocation descriptions and
   the published ARKit-to-FACS correspondences (M. Ozel, "ARKit to FACS: blendshape cheat sheet", 2021; Meta
   Movement SDK face-tracking blendshapes, which are named by AU).

`combine(mouth, expression, closure)` lays the expression over the speech mouth so the two do not fight:
the smile yields to rounding and to bilabial closure, lip pressing yields to an open mouth, and the
expression's jaw drop yields to the speech jaw.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from avatar.errors import InputError
from avatar.face.blendshapes import ARKIT_INDEX, blendshape_matrix
from avatar.types import ARKIT_BLENDSHAPES, VAD, EmotionTrack

IDX = ARKIT_INDEX

#: Action units used, with their FACS names.
ACTION_UNITS: dict[str, str] = {
    "AU1": "inner brow raiser", "AU2": "outer brow raiser", "AU4": "brow lowerer", "AU5": "upper lid raiser",
    "AU6": "cheek raiser", "AU7": "lid tightener", "AU9": "nose wrinkler", "AU10": "upper lip raiser",
    "AU12": "lip corner puller", "AU14": "dimpler", "AU15": "lip corner depressor", "AU17": "chin raiser",
    "AU20": "lip stretcher", "AU23": "lip tightener", "AU24": "lip pressor", "AU26": "jaw drop",
    "AU43": "eyes closed (partial: lowered lids)",
}
AU_NAMES: tuple[str, ...] = tuple(ACTION_UNITS)


def _both(name: str, w: float) -> dict[str, float]:
    return {f"{name}Left": w, f"{name}Right": w}


#: Each AU at full intensity as ARKit weights (Apple's shape descriptions; Ozel 2021; Meta Movement SDK).
AU_TO_ARKIT: dict[str, dict[str, float]] = {
    "AU1": {"browInnerUp": 1.0},
    "AU2": _both("browOuterUp", 1.0),
    "AU4": {**_both("browDown", 1.0)},
    "AU5": _both("eyeWide", 1.0),
    "AU6": {**_both("cheekSquint", 1.0), **_both("eyeSquint", 0.4)},
    "AU7": _both("eyeSquint", 1.0),
    "AU9": {**_both("noseSneer", 1.0), **_both("mouthUpperUp", 0.2)},
    "AU10": {**_both("mouthUpperUp", 0.8), **_both("noseSneer", 0.25)},
    "AU12": _both("mouthSmile", 1.0),
    "AU14": _both("mouthDimple", 1.0),
    "AU15": _both("mouthFrown", 1.0),
    "AU17": {"mouthShrugLower": 1.0, "mouthShrugUpper": 0.3},
    "AU20": _both("mouthStretch", 1.0),
    "AU23": {**_both("mouthPress", 0.5), "mouthRollLower": 0.2, "mouthRollUpper": 0.2},
    "AU24": _both("mouthPress", 1.0),
    "AU26": {"jawOpen": 0.5},  # jaw drop without speech: a parted, not a gaping, mouth
    "AU43": _both("eyeBlink", 1.0),
}


#: [n_AU, 52]: blendshapes = clip(AU intensities @ AU_MATRIX).
AU_MATRIX: np.ndarray = blendshape_matrix(AU_NAMES, AU_TO_ARKIT)


def _pos(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0.0)


def action_units_array(vad: np.ndarray) -> np.ndarray:
    """AU intensities for VAD rows: [T, 3] (valence, arousal, dominance) -> [T, n_AU] in [0, 1]."""
    x = np.asarray(vad, dtype=np.float64)
    if x.ndim == 1:
        x = x[None]
    if x.ndim != 2 or x.shape[1] != 3:
        raise InputError(f"VAD rows must be [T, 3], got shape {x.shape}")
    if not np.isfinite(x).all():
        raise InputError("VAD values must be finite")
    if (np.abs(x) > 1.0 + 1e-6).any():
        raise InputError("VAD values must be in [-1, 1]")
    v, a, d = x[:, 0], x[:, 1], x[:, 2]
    pv, nv, pa, na, pd, nd = _pos(v), _pos(-v), _pos(a), _pos(-a), _pos(d), _pos(-d)
    brows_up = 1.0 - 0.8 * nv * (1.0 - nd)  # 1 when pleased or submissive, ~0.6 in anger
    # Every formula is non-decreasing in the direction named in the module docstring; coefficients were set
    # so the Russell & Mehrabian points give the EMFACS prototypes at intensities 0.3-0.8 (docs/face.md).
    au = {
        # smile: valence, stronger when aroused (joy > contentment)
        "AU12": 0.85 * pv * (0.75 + 0.25 * a),
        # Duchenne cheek raise: positive valence with some arousal
        "AU6": 0.8 * pv * (0.1 + 0.9 * (a + 1) / 2),
        # brows up: arousal (surprise, fear) and, for the inner brow, sadness. Aroused displeasure without
        # submission is anger or disgust, whose brows go down (AU4), so `brows_up` damps the arousal share there.
        "AU1": 0.55 * pa * (0.35 + 0.65 * nd) * brows_up + 0.35 * nv * (1.0 - 0.5 * pd),
        "AU2": pa * np.clip(0.5 - 0.9 * d, 0.05, 1.0) * brows_up,
        # eyes wide: arousal, more when not dominant (fear, surprise) than in anger
        "AU5": pa * (0.45 + 0.35 * nd - 0.2 * pv),
        # brow lowerer: negative valence, more with arousal and dominance (anger), some in sadness and fear
        "AU4": 1.3 * nv * (0.3 + 0.6 * pa + 0.7 * pd),
        # lid tightener: anger, disgust
        "AU7": 1.2 * nv * (0.15 + 0.6 * pa) * (0.6 + 0.4 * pd),
        # nose wrinkle and upper lip raise: disgust (negative valence, moderate arousal)
        "AU9": 0.6 * nv * (0.2 + 0.6 * pa) * (1.0 - 0.5 * nd),
        "AU10": 0.5 * nv * (0.2 + 0.6 * pa),
        # dimpler: contempt (slightly negative valence with dominance)
        "AU14": 0.5 * pd * np.clip(0.3 - np.abs(v + 0.3), 0.0, None) / 0.3,
        # lip corner depressor: sadness and disgust, less when aroused
        "AU15": 1.1 * nv * (0.35 + 0.5 * na + 0.3 * nd),
        # chin raiser (pout): sadness
        "AU17": 0.8 * nv * na,
        # lip stretcher: fear (negative valence, arousal, submission)
        "AU20": 1.6 * nv * pa * nd,
        # lip tightener / pressor: anger (negative valence, arousal, dominance)
        "AU23": 2.2 * nv * pa * pd,
        "AU24": 1.2 * nv * pa * pd,
        # jaw drop: surprise and fear
        "AU26": 0.9 * pa * _pos(0.2 - d),
        # lowered lids: low arousal
        "AU43": 0.3 * na,
    }
    return np.clip(np.stack([au[k] for k in AU_NAMES], axis=1), 0.0, 1.0)


def action_units(vad: VAD) -> dict[str, float]:
    """AU intensities in [0, 1] for one VAD point."""
    row = action_units_array(vad.as_array()[None])[0]
    return {k: float(row[i]) for i, k in enumerate(AU_NAMES)}


def vad_frames(vad: VAD | EmotionTrack | np.ndarray | Sequence[float], num_frames: int, fps: float) -> np.ndarray:
    """Any VAD form (a VAD, an EmotionTrack, a [3] or [T, 3] array) as per-frame rows [num_frames, 3]."""
    n = int(num_frames)
    if isinstance(vad, VAD):
        return np.repeat(vad.as_array()[None].astype(np.float64), n, axis=0)
    if isinstance(vad, EmotionTrack):
        rows = vad.sample(fps, duration=n / fps).astype(np.float64)
        if rows.shape[0] != n:  # rounding of duration * fps: pad with the last value or cut
            rows = rows[:n] if rows.shape[0] > n else np.vstack([rows, np.repeat(rows[-1:], n - rows.shape[0], 0)])
        return rows
    arr = np.asarray(vad, dtype=np.float64)
    if arr.shape == (3,):
        arr = np.repeat(arr[None], n, axis=0)
    if arr.ndim != 2 or arr.shape != (n, 3):
        raise InputError(f"per-frame VAD must be [3] or [{n}, 3], got shape {arr.shape}")
    if not np.isfinite(arr).all() or (np.abs(arr) > 1.0 + 1e-6).any():
        raise InputError("VAD values must be finite and in [-1, 1]")
    return np.clip(arr, -1.0, 1.0)


def expression_weights(vad: VAD | Sequence[float] | np.ndarray) -> np.ndarray:
    """ARKit-52 weights in [0, 1] of the facial expression for one VAD point: float32 [52]."""
    x = vad.as_array() if isinstance(vad, VAD) else np.asarray(vad, dtype=np.float64).reshape(-1)
    if x.shape != (3,):
        raise InputError(f"a VAD point needs 3 values, got shape {x.shape}")
    return expression_curves(x[None])[0]


def expression_curves(vad_rows: np.ndarray) -> np.ndarray:
    """Expression weights per frame from per-frame VAD [T, 3]: float32 [T, 52] in [0, 1]."""
    au = action_units_array(vad_rows)
    return np.clip(au @ AU_MATRIX, 0.0, 1.0).astype(np.float32)


def head_bias(vad_rows: np.ndarray) -> np.ndarray:
    """Mean head posture from emotion, radians [T, 3] (yaw, pitch, roll; pitch > 0 is chin down).

    Sadness and submission lower the head (Wallbott 1998, "Bodily expression of emotion"); dominance and
    pride raise the chin (Tracy & Robins 2004); the amounts are a few degrees.
    """
    x = np.asarray(vad_rows, dtype=np.float64)
    v, a, d = x[:, 0], x[:, 1], x[:, 2]
    pitch = np.deg2rad(6.0) * _pos(-v) * (0.5 + 0.5 * _pos(-a)) + np.deg2rad(4.0) * _pos(-d) - np.deg2rad(5.0) * _pos(d)
    return np.stack([np.zeros_like(pitch), pitch, np.zeros_like(pitch)], axis=1)


def combine(mouth: np.ndarray, expression: np.ndarray, closure: np.ndarray | None = None) -> np.ndarray:
    """Lay the expression over the speech mouth ([T, 52] each) without the two fighting: [T, 52] in [0, 1]."""
    m = np.asarray(mouth, dtype=np.float64)
    e = np.asarray(expression, dtype=np.float64)
    if m.shape != e.shape or m.ndim != 2 or m.shape[1] != len(ARKIT_BLENDSHAPES):
        raise InputError(f"mouth and expression must both be [T, 52], got {m.shape} and {e.shape}")
    c = np.zeros(m.shape[0]) if closure is None else np.clip(np.asarray(closure, dtype=np.float64), 0, 1)
    out = e.copy()
    rounding = np.maximum(m[:, IDX["mouthPucker"]], m[:, IDX["mouthFunnel"]])
    openness = m[:, IDX["jawOpen"]] - m[:, IDX["mouthClose"]]
    # Additive mouth channels: speech first, expression on top.
    for n in ("mouthStretchLeft", "mouthStretchRight", "mouthLowerDownLeft", "mouthLowerDownRight",
              "mouthUpperUpLeft", "mouthUpperUpRight", "mouthRollLower", "mouthRollUpper", "mouthShrugUpper",
              "mouthShrugLower", "mouthFunnel", "mouthPucker", "tongueOut", "jawForward", "mouthClose"):
        out[:, IDX[n]] = m[:, IDX[n]] + e[:, IDX[n]]
    # A smile cannot pull the corners out while the lips round or seal: it yields to both.
    for n in ("mouthSmileLeft", "mouthSmileRight", "mouthDimpleLeft", "mouthDimpleRight"):
        gate = (1 - 0.7 * np.clip(rounding / 0.6, 0, 1)) * (1 - 0.5 * c)
        out[:, IDX[n]] = m[:, IDX[n]] + e[:, IDX[n]] * gate
    # Pressing the lips only makes sense while they are together.
    for n in ("mouthPressLeft", "mouthPressRight"):
        out[:, IDX[n]] = np.maximum(m[:, IDX[n]], e[:, IDX[n]] * (1 - np.clip(openness / 0.3, 0, 1)))
    # The expression's jaw drop only shows where speech leaves the jaw at rest.
    jaw = IDX["jawOpen"]
    out[:, jaw] = m[:, jaw] + e[:, jaw] * (1 - np.clip(m[:, jaw] / 0.2, 0, 1))
    return np.clip(out, 0.0, 1.0)
