"""The face rig: ARKit-52 names and their VRM expression equivalents as one weight matrix.

VRM 1.0 avatars expose preset expressions (aa ih ou ee oh, happy angry sad relaxed surprised, blink,
blinkLeft/Right, lookUp/Down/Left/Right) instead of the 52 ARKit shapes. `to_vrm` reads a FaceMotion out in
those presets:

- Vowels (aa ih ou ee oh): a least-squares decomposition of the mouth-articulation channels onto the vowel
  targets of face.visemes (aa->aa, E->ee, ih->ih, oh->oh, ou->ou), so a pure viseme shape reads back as
  that one vowel at weight 1 and the rest state as 0.
- Emotions (happy angry sad relaxed surprised): the same decomposition of the expression-only channels
  (brows, eyes, cheeks, nose, lip corners) onto EMFACS prototypes built from face.expression's AU table:
  happy 6+12 (Duchenne), relaxed 12 alone (a gentle, non-Duchenne smile), sad 1+4+15+17, angry 4+5+7+23,
  surprised 1+2+5. Vowel and emotion rows read disjoint channels, so speech never reads as emotion.
- Eyes: blink is what both lids share (min of the two), blinkLeft/Right the remainder (a wink); look* are
  the means of the matching ARKit eyeLook shapes (e.g. lookLeft = eyeLookOutLeft and eyeLookInRight: both
  eyes turned to the avatar's own left, as ARKit's Left/Right are the subject's own sides).

Everything except the blink split is linear: vrm = clip(VRM_MATRIX @ arkit, 0, 1).
"""

from __future__ import annotations

import numpy as np

from avatar.errors import InputError
from avatar.types import ARKIT_BLENDSHAPES, FaceMotion, VISEMES
from avatar.face.blendshapes import ARKIT_INDEX
from avatar.face.expression import AU_MATRIX, AU_NAMES
from avatar.face.visemes import VISEME_TARGETS

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
_ARTICULATION = ("jawOpen", "mouthClose", "mouthFunnel", "mouthPucker", "mouthStretchLeft", "mouthStretchRight",
                 "mouthLowerDownLeft", "mouthLowerDownRight", "mouthUpperUpLeft", "mouthUpperUpRight")
_EXPRESSIVE = ("browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
               "eyeWideLeft", "eyeWideRight", "eyeSquintLeft", "eyeSquintRight", "cheekSquintLeft",
               "cheekSquintRight", "noseSneerLeft", "noseSneerRight", "mouthSmileLeft", "mouthSmileRight",
               "mouthFrownLeft", "mouthFrownRight", "mouthShrugLower")
#: EMFACS prototypes (AU: intensity) of the VRM emotion presets.
EMOTION_PROTOTYPES: dict[str, dict[str, float]] = {
    "happy": {"AU6": 0.7, "AU12": 0.8},
    "angry": {"AU4": 0.8, "AU5": 0.3, "AU7": 0.5, "AU23": 0.5},
    "sad": {"AU1": 0.6, "AU4": 0.3, "AU15": 0.6, "AU17": 0.3},
    "relaxed": {"AU12": 0.45},
    "surprised": {"AU1": 0.7, "AU2": 0.7, "AU5": 0.7},
}


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
    vowel_protos = np.stack([VISEME_TARGETS[VISEMES.index(v)] for v in _VOWELS.values()])
    for name, row in zip(_VOWELS, _decomposition(vowel_protos, _ARTICULATION)):
        rows[name] = row
    emo_protos = np.stack([
        sum(w * AU_MATRIX[AU_NAMES.index(au)] for au, w in EMOTION_PROTOTYPES[e].items())
        for e in EMOTION_PROTOTYPES])
    for name, row in zip(EMOTION_PROTOTYPES, _decomposition(emo_protos, _EXPRESSIVE)):
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


def to_vrm_array(arkit: np.ndarray) -> np.ndarray:
    """ARKit weights [T, 52] -> VRM expression weights [T, 17] in [0, 1] (VRM_EXPRESSIONS order)."""
    a = np.asarray(arkit, dtype=np.float64)
    if a.ndim != 2 or a.shape[1] != len(ARKIT):
        raise InputError(f"ARKit weights must be [T, 52], got shape {a.shape}")
    out = a @ VRM_MATRIX.T
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
