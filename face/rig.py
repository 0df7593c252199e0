"""The face rig: ARKit-52 names and their VRM expression equivalents as one weight matrix.

VRM 1.0 avatars expose preset expressions (aa ih ou ee oh, happy angry sad relaxed surprised, blink,
blinkLeft/Right, lookUp/Down/Left/Right) instead of the 52 ARKit shapes. `to_vrm` reads a FaceMotion out in
those presets:

- Emotions (happy angry sad relaxed surprised), **one at a time**: the expression-only channels (brows, eyes,
  cheeks, nose, lip corners) are decomposed by least squares onto our expression model's face of each of the
  seven displayed categories (happy relaxed sad angry fearful surprised disgusted, face.expression at their
  canonical VAD points); the category with the largest score is the frame's emotion, and only its preset is
  set, to that score: happy, relaxed, sad, angry and surprised to their own presets, fearful to surprised
  (VRM has no fear preset; raised brows and wide eyes are what the two share) and disgusted to angry (lowered
  brows, tightened lids). Every other emotion preset is 0, so a VRM face never shows opposite emotions at once
  (a plain decomposition onto five presets exported a sad line as angry .67 + sad .47 + relaxed .42 +
  surprised .41). The same rule drives VRM avatars in the renderer and the VMC stream.
- Vowels (aa ih ou ee oh): the vowel targets of face.visemes (aa->aa, E->ee, ih->ih, oh->oh, ou->ou) read by
  one least-squares decomposition together with every label's face (its jaw drop left out, and AU12, AU15 and
  AU24 read apart: combine gates them under speech), over all the channels either moves. Read
  together because the expression model moves mouth channels that vowels use too (anger raises the upper lip,
  fear stretches the lips, surprise drops the jaw); read apart, an angry face at rest read as an open "aa"/"ih".
  Vowels are then scaled by the mouth's speech-only evidence (lower lip down, funnel, pucker: channels no
  expression moves; or the jaw opened wider than any expression opens it), so no emotion, at any VAD, opens a
  VRM avatar's mouth at rest. A pure viseme reads back as its vowel at 1 and the rest state as 0; speech never
  reads as emotion.
- Eyes: blink is what both lids share (min of the two), blinkLeft/Right the remainder (a wink); look* are
  the means of the matching ARKit eyeLook shapes (e.g. lookLeft = eyeLookOutLeft and eyeLookInRight: both
  eyes turned to the avatar's own left, as ARKit's Left/Right are the subject's own sides).

Everything except the emotion rule, the blink split and the vowels' speech gate is linear:
vrm = clip(VRM_MATRIX @ arkit, 0, 1).
"""

from __future__ import annotations

import numpy as np

from avatar.emotion.labels import LABEL_VAD
from avatar.errors import InputError
from avatar.face.blendshapes import ARKIT_INDEX
from avatar.face.expression import AU_MATRIX, AU_NAMES, AU_TO_ARKIT, CATEGORY_VAD, expression_weights
from avatar.face.visemes import VISEME_TARGETS
from avatar.types import ARKIT_BLENDSHAPES, VISEMES, FaceMotion

#: The 52 ARKit blendshapes (Apple's order), shared with avatar.types.
ARKIT: tuple[str, ...] = ARKIT_BLENDSHAPES
IDX = ARKIT_INDEX

#: VRM 1.0 preset expressions we drive, in output order.
VRM_EXPRESSIONS: tuple[str, ...] = (
    "aa", "ih", "ou", "ee", "oh", "happy", "angry", "sad", "relaxed", "surprised",
    "blink", "blinkLeft", "blinkRight", "lookUp", "lookDown", "lookLeft", "lookRight",
)
#: The same presets under their VRM 0.x names (BlendShapeProxy presets).
VRM0_NAMES: dict[str, str] = {
    "aa": "a", "ih": "i", "ou": "u", "ee": "e", "oh": "o", "happy": "joy", "angry": "angry", "sad": "sorrow",
    "relaxed": "fun", "surprised": "surprised", "blink": "blink", "blinkLeft": "blink_l",
    "blinkRight": "blink_r", "lookUp": "lookup", "lookDown": "lookdown", "lookLeft": "lookleft",
    "lookRight": "lookright",
}

_VOWELS = {"aa": "aa", "ih": "ih", "ou": "ou", "ee": "E", "oh": "oh"}  # VRM vowel -> our viseme class
_EXPRESSIVE = ("browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
               "eyeWideLeft", "eyeWideRight", "eyeSquintLeft", "eyeSquintRight", "cheekSquintLeft",
               "cheekSquintRight", "noseSneerLeft", "noseSneerRight", "mouthSmileLeft", "mouthSmileRight",
               "mouthFrownLeft", "mouthFrownRight", "mouthShrugLower")
#: VRM emotion preset -> the emotion label whose expression is its prototype.
EMOTION_PRESETS: dict[str, str] = {"happy": "happy", "angry": "angry", "sad": "sad", "relaxed": "relaxed",
                                   "surprised": "surprised"}
#: Displayed category -> the VRM preset it drives (the dominant-emotion rule in the module docstring).
CATEGORY_PRESETS: dict[str, str] = {"happy": "happy", "relaxed": "relaxed", "sad": "sad", "angry": "angry",
                                    "fearful": "surprised", "surprised": "surprised", "disgusted": "angry"}
#: Channels only speech moves (no expression does): the vowels' gate.
_SPEECH_ONLY = ("mouthLowerDownLeft", "mouthLowerDownRight", "mouthFunnel", "mouthPucker")


def emotion_prototypes() -> dict[str, np.ndarray]:
    """ARKit weights [52] of each VRM emotion preset: our expression model's face at its label's VAD point."""
    return {p: expression_weights(LABEL_VAD[lab]).astype(np.float64) for p, lab in EMOTION_PRESETS.items()}


def _decomposition(protos: np.ndarray, channels: tuple[str, ...], ridge: float = 1e-6) -> np.ndarray:
    """Rows that recover prototype weights from ARKit weights by (ridge) least squares: [K, 52]."""
    cols = [IDX[c] for c in channels]
    p = protos[:, cols]  # [K, C]
    w_c = np.linalg.solve(p @ p.T + ridge * np.eye(p.shape[0]), p)  # [K, C]
    w = np.zeros((protos.shape[0], len(ARKIT)))
    w[:, cols] = w_c
    return w


def _vrm_matrix() -> np.ndarray:
    rows: dict[str, np.ndarray] = {}
    vowels = np.stack([VISEME_TARGETS[VISEMES.index(v)] for v in _VOWELS.values()]).astype(np.float64)
    presets = np.stack(list(emotion_prototypes().values()))
    faces = np.stack([expression_weights(v) for lab, v in LABEL_VAD.items() if lab != "neutral"]).astype(np.float64)
    # While a vowel is spoken the jaw is speech's (expression.combine drops the expression's jaw drop), so the
    # faces' jaw is no part of what a vowel is read against (with it, "aa" under surprise read as "ee"); and
    # combine gates the smile and the lip press under speech, so those AUs are read apart from the faces too.
    faces[:, IDX["jawOpen"]] = 0.0
    gated = np.stack([AU_MATRIX[AU_NAMES.index(a)] for a in ("AU12", "AU15", "AU24")])
    protos = np.concatenate([vowels, faces, gated])
    channels = tuple(ARKIT[i] for i in np.flatnonzero(np.abs(protos).sum(0) > 0))
    vowel_rows = _decomposition(protos, channels)[: len(_VOWELS)]  # the faces' rows are dropped: a nuisance here
    emotion_rows = _decomposition(presets, _EXPRESSIVE)
    for name, row in zip((*_VOWELS, *EMOTION_PRESETS), np.concatenate([vowel_rows, emotion_rows])):
        rows[name] = row

    def mean(*names: str) -> np.ndarray:
        r = np.zeros(len(ARKIT))
        for n in names:
            r[IDX[n]] = 1.0 / len(names)
        return r

    # Blink rows are placeholders in the matrix (the shared part is a min, see to_vrm_array).
    rows["blink"] = mean("eyeBlinkLeft", "eyeBlinkRight")
    rows["blinkLeft"] = mean("eyeBlinkLeft")
    rows["blinkRight"] = mean("eyeBlinkRight")
    rows["lookUp"] = mean("eyeLookUpLeft", "eyeLookUpRight")
    rows["lookDown"] = mean("eyeLookDownLeft", "eyeLookDownRight")
    rows["lookLeft"] = mean("eyeLookOutLeft", "eyeLookInRight")
    rows["lookRight"] = mean("eyeLookInLeft", "eyeLookOutRight")
    return np.stack([rows[n] for n in VRM_EXPRESSIONS]).astype(np.float64)


#: [17, 52]: VRM expression weights = clip(VRM_MATRIX @ ARKit weights) (blink rows: see to_vrm_array).
VRM_MATRIX: np.ndarray = _vrm_matrix()
VRM_MATRIX.setflags(write=False)
#: [7, 52]: each displayed category's score from ARKit weights (least squares on the expressive channels).
CATEGORY_MATRIX: np.ndarray = _decomposition(
    np.stack([expression_weights(CATEGORY_VAD[c]).astype(np.float64) for c in CATEGORY_PRESETS]), _EXPRESSIVE)
CATEGORY_MATRIX.setflags(write=False)
_EMOTION_COLS = [VRM_EXPRESSIONS.index(p) for p in EMOTION_PRESETS]
_CATEGORY_COL = np.array([VRM_EXPRESSIONS.index(p) for p in CATEGORY_PRESETS.values()])
_GATE_COLS = [IDX[c] for c in _SPEECH_ONLY]
#: Speech-only evidence at which vowels pass in full: half the weakest vowel target's (ih's lower lip).
_GATE_FULL = 0.5 * float(min(VISEME_TARGETS[VISEMES.index(v)][_GATE_COLS].max() for v in _VOWELS.values()))
#: The widest any expression opens the jaw (surprise, fear): a jaw opened further is speech too (captured faces
#: that open the jaw alone, e.g. Live Link Face takes).
_JAW_EXPRESSION = float(AU_TO_ARKIT["AU26"]["jawOpen"])


def to_vrm_array(arkit: np.ndarray) -> np.ndarray:
    """ARKit weights [T, 52] -> VRM expression weights [T, 17] in [0, 1] (VRM_EXPRESSIONS order)."""
    a = np.asarray(arkit, dtype=np.float64)
    if a.ndim != 2 or a.shape[1] != len(ARKIT):
        raise InputError(f"ARKit weights must be [T, 52], got shape {a.shape}")
    out = a @ VRM_MATRIX.T
    # One emotion at a time: the dominant category's score on its preset, every other emotion preset 0.
    scores = a @ CATEGORY_MATRIX.T
    top = np.argmax(scores, axis=1)
    rows = np.arange(a.shape[0])
    out[:, _EMOTION_COLS] = 0.0
    out[rows, _CATEGORY_COL[top]] = scores[rows, top]
    evidence = np.maximum(a[:, _GATE_COLS].max(axis=1), a[:, IDX["jawOpen"]] - _JAW_EXPRESSION) / _GATE_FULL
    out[:, :len(_VOWELS)] *= np.clip(evidence, 0.0, 1.0)[:, None]
    left, right = a[:, IDX["eyeBlinkLeft"]], a[:, IDX["eyeBlinkRight"]]
    both = np.minimum(left, right)
    out[:, VRM_EXPRESSIONS.index("blink")] = both
    out[:, VRM_EXPRESSIONS.index("blinkLeft")] = left - both
    out[:, VRM_EXPRESSIONS.index("blinkRight")] = right - both
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def to_vrm(face: FaceMotion, vrm0: bool = False) -> dict[str, np.ndarray]:
    """VRM expression curves of a FaceMotion: {name: float32 [T]}; VRM 0.x preset names if vrm0."""
    missing = [n for n in ARKIT if n not in face.names]
    if missing:
        raise InputError(f"face motion lacks ARKit channels: {', '.join(missing[:5])}")
    cols = [face.names.index(n) for n in ARKIT]
    arr = to_vrm_array(face.frames[:, cols])
    return {(VRM0_NAMES[n] if vrm0 else n): arr[:, i].copy() for i, n in enumerate(VRM_EXPRESSIONS)}
