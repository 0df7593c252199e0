"""Emotion on the face: VAD -> FACS action units -> ARKit blendshapes, and how it mixes with speech.

Three steps, each a table that can be read and checked:
1. `PROTOTYPES`: the EMFACS prototype of each emotion category as action-unit intensities at apex (Friesen &
   Ekman 1983, EMFACS-7; Ekman, Friesen & Hager 2002, FACS Investigator's Guide, table of prototypes):
   happy 6+12, sad 1+4+15+17 (with lowered lids), angry 4+5+7+23+24, fearful 1+2+4+5+20+26, surprised
   1+2+5+26, disgusted 9+10+15+17 (with 4+7); relaxed (no EMFACS prototype: a soft Duchenne smile, 6+12 at
   half strength with lowered lids) for the positive, calm quarter of the VAD space.
2. `category_weights` + `intensity`: a VAD point is a blend of the categories whose canonical VAD direction
   (`CATEGORY_VAD`, Russell & Mehrabian 1977 as tabulated in `avatar.emotion.labels`) is nearest to its own
   (a von Mises-like kernel on the cosine, so the face moves continuously through the space, never switched by
   a label), scaled by an intensity that grows with the distance from neutral and with arousal (Ekman 1993:
   stronger, more aroused emotion gives a more intense display). Opposite categories never share a frame: the
   kernel gives them ~0 weight.
3. `AU_TO_ARKIT`: each AU as ARKit blendshapes, after Apple's ARFaceAnchor.BlendShapeLocation descriptions and
   the published ARKit-to-FACS correspondences (M. Ozel, "ARKit to FACS: blendshape cheat sheet", 2021; Meta
   Movement SDK face-tracking blendshapes, which are named by AU), plus one interaction: AU1 with AU4 (sadness,
   fear) raises the inner brows and draws them together (FACS manual, 1+4: the oblique "grief" brow), so the
   brow lowerer's pull on the inner brow is reduced instead of cancelling the raise (`_brow_interaction`).

`expression_curves(vad_rows, envelope, seed, fps)` adds timing and life: the `envelope` (onset, apex, hold,
decay per sentence: `emotion_envelope`) scales the intensity, and with a seed each AU gets slow 1/f
micro-variation (+-8 %) and each side of the face a small fixed asymmetry (Ekman, Hager & Friesen 1981:
deliberate and spontaneous expressions are slightly asymmetric), so the face does not look stamped on.

`combine(mouth, expression, closure)` lays the expression over the speech mouth so the two do not fight:
visemes add to the emotional mouth (a smile or a frown stays while talking), the smile yields only partly to
rounding and to bilabial closure, lip pressing yields to an open mouth, and the expression's jaw drop shows
before and after the words (the jaw is speech's while a line is spoken). The upper face is the expression's alone.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from avatar.emotion.labels import LABEL_VAD
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

#: The 7 categories the engine names (plus relaxed), in order; neutral has no prototype (all AUs 0).
CATEGORIES: tuple[str, ...] = ("neutral", "happy", "sad", "angry", "fearful", "surprised", "disgusted")
#: Canonical VAD point of each category: Russell & Mehrabian (1977) via Gebhard (2005), as avatar.emotion.labels.
CATEGORY_VAD: dict[str, VAD] = {c: LABEL_VAD[c] for c in (*CATEGORIES, "relaxed")}

#: EMFACS prototypes: AU intensities at apex (1 = the FACS "E", maximum). Sources in the module docstring.
PROTOTYPES: dict[str, dict[str, float]] = {
    "happy": {"AU6": 0.8, "AU12": 0.8},
    "relaxed": {"AU6": 0.3, "AU12": 0.55, "AU43": 0.25},
    "sad": {"AU1": 1.0, "AU4": 0.55, "AU15": 1.0, "AU17": 0.25, "AU43": 0.25},
    "angry": {"AU4": 1.0, "AU5": 0.35, "AU7": 0.9, "AU10": 0.2, "AU17": 0.3, "AU23": 0.9, "AU24": 0.5},
    # FACS Investigator's Guide fear, 1+2+4+5+7+20+26: the upper lid raised hard and the lower lid tensed (a
    # fixed stare), the brows raised but drawn together and flatter than in surprise (less AU2), the lips
    # stretched sideways over a slightly dropped jaw.
    "fearful": {"AU1": 1.0, "AU2": 0.35, "AU4": 0.6, "AU5": 1.0, "AU7": 0.3, "AU20": 1.0, "AU26": 0.35},
    "surprised": {"AU1": 0.9, "AU2": 0.95, "AU5": 0.8, "AU26": 0.9},
    # FACS 9+10+15+17: the nose wrinkled and the upper lip raised; no brow lowerer or lid tightener of its own
    # (with them it read as anger: the Face Units nose wrinkle already pulls the inner brows down a little).
    "disgusted": {"AU9": 1.0, "AU10": 0.9, "AU15": 0.6, "AU17": 0.3},
}
_EMOTIONS: tuple[str, ...] = tuple(PROTOTYPES)
#: Kernel sharpness on the cosine between a VAD point and a category's direction, for how near a point is to
#: any category (its display fades between them): at 60 degrees apart a category has exp(-KAPPA/2) = 0.7 % of
#: the kernel of one straight ahead.
KAPPA = 10.0
#: Sharper kernel for how the display is shared among the categories near a point: at its canonical point a
#: category shows its own prototype (anger and disgust lie 20 degrees apart: at anger's point KAPPA alone gives
#: them 63 / 34 %, this 78 / 22 %), and the share still changes smoothly between them.
KAPPA_SHARE = 20.0
#: Kernel sum under which a VAD direction counts as between categories (its display fades).
KERNEL_FLOOR = 0.6
#: Distance from neutral at which a display reaches full intensity (before the arousal factor).
FULL_AT = 0.7


def _both(name: str, w: float) -> dict[str, float]:
    return {f"{name}Left": w, f"{name}Right": w}


#: Each AU at full intensity as ARKit weights (Apple's shape descriptions; Ozel 2021; Meta Movement SDK).
AU_TO_ARKIT: dict[str, dict[str, float]] = {
    "AU1": {"browInnerUp": 1.0},
    "AU2": _both("browOuterUp", 1.0),
    "AU4": {**_both("browDown", 1.0)},
    "AU5": _both("eyeWide", 1.0),
    "AU6": {**_both("cheekSquint", 1.0), **_both("eyeSquint", 0.35)},
    "AU7": _both("eyeSquint", 1.0),
    "AU9": {**_both("noseSneer", 1.0), **_both("mouthUpperUp", 0.3)},
    "AU10": {**_both("mouthUpperUp", 0.8), **_both("noseSneer", 0.2)},
    "AU12": _both("mouthSmile", 1.0),
    "AU14": _both("mouthDimple", 1.0),
    "AU15": _both("mouthFrown", 1.0),
    "AU17": {"mouthShrugLower": 1.0, "mouthShrugUpper": 0.3},
    "AU20": _both("mouthStretch", 1.0),
    # AU23 narrows the red of the lips: pressed and rolled in (a thin, hard mouth).
    # The Face Units mouthPress also lifts the corners (a closed smile): a little frown keeps them level.
    "AU23": {**_both("mouthPress", 0.6), "mouthRollLower": 0.8, "mouthRollUpper": 0.8, **_both("mouthFrown", 0.2)},
    "AU24": {**_both("mouthPress", 1.0), **_both("mouthFrown", 0.25)},
    "AU26": {"jawOpen": 0.5},  # jaw drop without speech: a parted, not a gaping, mouth
    "AU43": _both("eyeBlink", 1.0),
}


#: [n_AU, 52]: blendshapes = clip(AU intensities @ AU_MATRIX) (before the brow interaction).
AU_MATRIX: np.ndarray = blendshape_matrix(AU_NAMES, AU_TO_ARKIT)
#: [n_categories, n_AU]: the prototypes as rows, in _EMOTIONS order.
PROTOTYPE_MATRIX: np.ndarray = np.array([[PROTOTYPES[c].get(a, 0.0) for a in AU_NAMES] for c in _EMOTIONS])
PROTOTYPE_MATRIX.setflags(write=False)
_DIRECTIONS = np.stack([CATEGORY_VAD[c].as_array().astype(np.float64) for c in _EMOTIONS])
_DIRECTIONS /= np.linalg.norm(_DIRECTIONS, axis=1, keepdims=True)


def _pos(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0.0)


def _check_rows(vad: np.ndarray) -> np.ndarray:
    x = np.asarray(vad, dtype=np.float64)
    if x.ndim == 1:
        x = x[None]
    if x.ndim != 2 or x.shape[1] != 3:
        raise InputError(f"VAD rows must be [T, 3], got shape {x.shape}")
    if not np.isfinite(x).all():
        raise InputError("VAD values must be finite")
    if (np.abs(x) > 1.0 + 1e-6).any():
        raise InputError("VAD values must be in [-1, 1]")
    return np.clip(x, -1.0, 1.0)


def category_weights(vad: np.ndarray) -> np.ndarray:
    """How much of each emotion category (PROTOTYPES order) a VAD row is: [T, K], rows sum to <= 1 (0 at neutral)."""
    x = _check_rows(vad)
    r = np.linalg.norm(x, axis=1)
    cos = (x @ _DIRECTIONS.T) / np.maximum(r, 1e-9)[:, None]
    # Presence: full where a category is near; between categories (all kernels small) the display fades
    # instead of spreading over several (which would mix opposite faces). Share: which categories, sharper.
    presence = np.minimum(np.exp(KAPPA * (cos - 1.0)).sum(axis=1, keepdims=True) / KERNEL_FLOOR, 1.0)
    k = np.exp(KAPPA_SHARE * (cos - 1.0))
    w = presence * k / k.sum(axis=1, keepdims=True)
    return np.where(r[:, None] > 1e-9, w, 0.0)


def intensity(vad: np.ndarray) -> np.ndarray:
    """Display intensity per VAD row [T] in [0, 1.1]: grows with the distance from neutral and with arousal."""
    x = _check_rows(vad)
    r = np.linalg.norm(x, axis=1)
    return np.clip(np.clip(r / FULL_AT, 0.0, 1.25) ** 0.8 * np.clip(0.88 + 0.3 * x[:, 1], 0.6, 1.15), 0.0, 1.1)


def category_strengths(vad: np.ndarray) -> dict[str, np.ndarray]:
    """Each category's share times the intensity, per row: {category: [T]} (what gaze and posture follow)."""
    w = category_weights(vad) * intensity(vad)[:, None]
    return {c: w[:, k] for k, c in enumerate(_EMOTIONS)}


def action_units_array(vad: np.ndarray) -> np.ndarray:
    """AU intensities for VAD rows: [T, 3] (valence, arousal, dominance) -> [T, n_AU] in [0, 1]."""
    x = _check_rows(vad)
    strength = intensity(x)
    au = (category_weights(x) @ PROTOTYPE_MATRIX) * strength[:, None]
    # The jaw drop is the last part of surprise and fear to appear (1+2+5 first; EMFACS lists 26 with the
    # stronger variants), so it grows with the square of the intensity: mild lines keep their lips together.
    au[:, AU_NAMES.index("AU26")] *= np.clip(strength, 0.0, 1.0)
    # Valence is the face's most reliable axis (Russell 1980; smile and frown read even without a category):
    # between the categories' directions, the smile (AU12, with AU6 when aroused) follows pleasure and the
    # lip-corner depressor and brow lowerer follow displeasure.
    pv, nv = _pos(x[:, 0]), _pos(-x[:, 0])
    col = {k: AU_NAMES.index(k) for k in ("AU4", "AU6", "AU12", "AU15")}
    au[:, col["AU12"]] = np.maximum(au[:, col["AU12"]], 0.6 * pv)
    au[:, col["AU6"]] = np.maximum(au[:, col["AU6"]], 0.4 * pv * _pos(x[:, 1]))
    au[:, col["AU15"]] = np.maximum(au[:, col["AU15"]], 0.4 * nv)
    au[:, col["AU4"]] = np.maximum(au[:, col["AU4"]], 0.3 * nv)
    return np.clip(au, 0.0, 1.0)


def action_units(vad: VAD) -> dict[str, float]:
    """AU intensities in [0, 1] for one VAD point."""
    row = action_units_array(vad.as_array()[None])[0]
    return {k: float(row[i]) for i, k in enumerate(AU_NAMES)}


def _brow_interaction(au: np.ndarray, bs: np.ndarray) -> np.ndarray:
    """AU1+4 and AU2+4: the brow lowerer draws the brows together without pulling the raised inner brow down,
    and holds the outer brow lower (1+2+4, fear: raised but flattened, not surprise's arch);
    AU4+5 without AU1: the lowered brow covers the raised upper lid (a glare, not a startled stare)."""
    a1, a2, a4, a5 = (au[:, AU_NAMES.index(k)] for k in ("AU1", "AU2", "AU4", "AU5"))
    out = bs.copy()
    for side in ("Left", "Right"):
        out[:, IDX[f"browDown{side}"]] = a4 * (1.0 - 0.7 * a1)
        out[:, IDX[f"browOuterUp{side}"]] = a2 * (1.0 - 0.6 * a4)
        # A lowered brow (not lifted by AU1) pushes the upper lid's fold down: AU4+5 is a glare, not wide eyes.
        out[:, IDX[f"eyeWide{side}"]] = a5 * (1.0 - 0.8 * a4 * np.clip(1.0 - 2.0 * a1, 0.0, 1.0))
    out[:, IDX["browInnerUp"]] = a1 * (1.0 + 0.25 * a4)
    return out


def arkit_from_action_units(au: np.ndarray) -> np.ndarray:
    """ARKit-52 weights [T, 52] in [0, 1] for AU intensities [T, n_AU] (AU_NAMES order): table plus brow interaction."""
    a = np.asarray(au, dtype=np.float64)
    if a.ndim != 2 or a.shape[1] != len(AU_NAMES):
        raise InputError(f"action units must be [T, {len(AU_NAMES)}], got shape {a.shape}")
    a = np.clip(a, 0.0, 1.0)
    return np.clip(_brow_interaction(a, a @ AU_MATRIX), 0.0, 1.0)


def _pink(n: int, fps: float, rng: np.random.Generator, band: tuple[float, float]) -> np.ndarray:
    from avatar.face.idle import pink_noise

    return pink_noise(n, fps, rng, band)


def _sides() -> tuple[np.ndarray, np.ndarray]:
    left = np.array([n.endswith("Left") for n in ARKIT_BLENDSHAPES])
    right = np.array([n.endswith("Right") for n in ARKIT_BLENDSHAPES])
    return left, right


_LEFT, _RIGHT = _sides()


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
    """ARKit-52 weights in [0, 1] of the facial expression for one VAD point at apex: float32 [52]."""
    x = vad.as_array() if isinstance(vad, VAD) else np.asarray(vad, dtype=np.float64).reshape(-1)
    if x.shape != (3,):
        raise InputError(f"a VAD point needs 3 values, got shape {x.shape}")
    return expression_curves(x[None])[0]


def expression_curves(vad_rows: np.ndarray, envelope: np.ndarray | None = None, seed: int | None = None,
                      fps: float = 30.0) -> np.ndarray:
    """Expression weights per frame from per-frame VAD [T, 3]: float32 [T, 52] in [0, 1].

    envelope: [T] scale of the display over time (`emotion_envelope`; None: apex throughout). seed: with one,
    slow micro-variation per AU and a fixed left/right asymmetry (None: the exact, symmetric prototype blend).
    """
    au = action_units_array(vad_rows)
    n = au.shape[0]
    if envelope is not None:
        env = np.asarray(envelope, dtype=np.float64)
        if env.shape != (n,) or not np.isfinite(env).all():
            raise InputError(f"the envelope must be [{n}] finite values, got shape {env.shape}")
        au = au * np.clip(env, 0.0, 1.5)[:, None]
    rng = None if seed is None else np.random.default_rng(np.random.SeedSequence([int(seed), 0xFACE]))
    if rng is not None and n > 1:
        wobble = np.stack([_pink(n, fps, rng, (0.1, 1.5)) for _ in AU_NAMES], axis=1)
        wobble[:, AU_NAMES.index("AU26")] = 0.0  # the jaw is speech's: no drift of its own under the words
        au = au * (1.0 + 0.08 * np.clip(wobble, -2.5, 2.5))
    bs = arkit_from_action_units(au)
    if rng is not None:
        # One side a little stronger for the whole clip (about 6 %), as real faces are.
        tilt = float(np.clip(rng.normal(0.0, 0.06), -0.12, 0.12))
        bs[:, _LEFT] *= 1.0 + tilt
        bs[:, _RIGHT] *= 1.0 - tilt
    return np.clip(bs, 0.0, 1.0).astype(np.float32)


def emotion_envelope(vad: VAD | EmotionTrack | np.ndarray | Sequence[float], num_frames: int, fps: float,
                     start_level: float = 0.75, apex: float = 0.45, end_level: float = 0.7,
                     decay: float = 0.35) -> np.ndarray:
    """Display strength per frame [T] in [0, 1]: onset to apex, hold, decay at each sentence's end.

    Each EmotionTrack segment (a sentence) starts at `start_level` of its apex (so the face is already in the
    line's emotion on the first frame), reaches the apex `apex` s in (clamped to 0.3-0.8 s and to 40 % of a
    short sentence), holds, and eases to `end_level` over the last `decay` s; after the last sentence the face
    relaxes further, to 0.6, over 0.6 s. Timing after Ekman & Friesen's onset-apex-offset description and
    Hess & Kleck (1990): spontaneous onsets about 0.5 s. A VAD or an array is one segment over the clip.
    """
    n = int(num_frames)
    t = np.arange(n, dtype=np.float64) / float(fps)
    if isinstance(vad, EmotionTrack):
        spans = [(s.start, s.end) for s in vad.segments]
    else:
        spans = [(0.0, n / float(fps))]
    out = np.full(n, start_level, dtype=np.float64)

    def ease(x: np.ndarray) -> np.ndarray:
        x = np.clip(x, 0.0, 1.0)
        return x * x * (3 - 2 * x)

    for k, (s, e) in enumerate(spans):
        e = max(e, s + 1.0 / fps)
        last = k == len(spans) - 1
        end = n / float(fps) if last else spans[k + 1][0]
        on = (t >= s - 1e-9) & (t < end) if k else (t < end)
        rise_t = float(np.clip(min(apex, 0.4 * (e - s)), 0.3, 0.8))
        level = start_level + (1.0 - start_level) * ease((t - s) / rise_t)
        fall = ease((t - (e - decay)) / decay)
        level = level * (1 - fall) + end_level * fall
        if last:
            level = np.where(t > e, end_level + (0.6 - end_level) * ease((t - e) / 0.6), level)
        out[on] = level[on]
    return np.clip(out, 0.0, 1.0)


def head_bias(vad_rows: np.ndarray, envelope: np.ndarray | None = None) -> np.ndarray:
    """Mean head posture from emotion, radians [T, 3] (yaw, pitch, roll; pitch > 0 is chin down).

    Sadness drops the head (about 3 degrees at apex, the body slumps too; the eyes look down further, face.idle) and submission lowers it, dominance and pride raise the
    chin (Wallbott 1998, "Bodily expression of emotion"; Tracy & Robins 2004); anger lowers the chin a little
    so the eyes glare from under the brows; surprise and fear pull the head back, disgust turns it aside and
    up (Wallbott 1998). The envelope (if given) scales it with the display.
    """
    x = _check_rows(vad_rows)
    d = x[:, 2]
    st = category_strengths(x)
    pitch = (np.deg2rad(3.0) * st["sad"] + np.deg2rad(4.0) * st["angry"] - np.deg2rad(4.0) * st["surprised"]
             - np.deg2rad(2.0) * st["fearful"] - np.deg2rad(3.0) * st["disgusted"] - np.deg2rad(2.0) * st["happy"]
             + np.deg2rad(3.0) * _pos(-d) - np.deg2rad(3.0) * _pos(d))
    yaw = -np.deg2rad(5.0) * st["disgusted"]
    roll = np.deg2rad(3.0) * st["happy"] + np.deg2rad(2.0) * st["sad"]
    out = np.stack([yaw, pitch, roll], axis=1)
    if envelope is not None:
        out = out * np.asarray(envelope, dtype=np.float64)[:, None]
    return out


def combine(mouth: np.ndarray, expression: np.ndarray, closure: np.ndarray | None = None,
            speaking: np.ndarray | None = None) -> np.ndarray:
    """Lay the expression over the speech mouth ([T, 52] each) without the two fighting: [T, 52] in [0, 1].

    speaking [T] in [0, 1] (optional): where a line is being spoken the jaw is speech's alone, so the
    expression's jaw drop shows before and after the words, not in the gaps between them."""
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
        gate = (1 - 0.6 * np.clip(rounding / 0.6, 0, 1)) * (1 - 0.4 * c)
        out[:, IDX[n]] = m[:, IDX[n]] + e[:, IDX[n]] * gate
    # Pressing the lips only makes sense while they are together.
    for n in ("mouthPressLeft", "mouthPressRight"):
        out[:, IDX[n]] = np.maximum(m[:, IDX[n]], e[:, IDX[n]] * (1 - np.clip(openness / 0.3, 0, 1)))
    # The expression's jaw drop shows where speech leaves the jaw at rest (speech moves the jaw on its own).
    jaw = IDX["jawOpen"]
    talk = np.zeros(m.shape[0]) if speaking is None else np.clip(np.asarray(speaking, dtype=np.float64), 0, 1)
    out[:, jaw] = m[:, jaw] + e[:, jaw] * (1 - np.clip(m[:, jaw] / 0.3, 0, 1)) * (1 - c) * (1 - talk)
    return np.clip(out, 0.0, 1.0)
