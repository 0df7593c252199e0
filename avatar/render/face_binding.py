"""Which FaceMotion channel drives each of an avatar's morph targets, read from the targets' names.

- ARKit names (`arkit_name`): case-insensitive, separators ignored, any leading segments dropped
  (`blendShape1.jawOpen`, `ARKit_jawOpen`, `Face:mouthSmile_L`, `A25_Jaw_Open`), `_L` / `.R` suffixes read as
  Left / Right.
- Fallback channels (`fallback_channel`) for faces without the ARKit shape that would drive them: few-shape faces
  (Ready Player Me's `mouthOpen` / `mouthSmile`), emotion and blink shapes named as VRM presets or glTF sample
  models name them (`Angry`, `Surprised`, `Sad`, `Joy`, `Blink`, `Blink_L`, `A`, `I`, ...), and Oculus / Ready
  Player Me viseme targets (`viseme_aa`, `viseme_PP`, ...). `fallback_weights` computes them from the 52 ARKit
  weights of a frame: jawOpen for `mouthOpen`, the mean smile for `mouthSmile`, `face.rig.to_vrm_array` for the
  VRM-named shapes, and for visemes the non-negative least-squares mix of our viseme prototypes
  (`face.visemes.VISEME_TARGETS`) that best explains the frame's mouth.
"""

from __future__ import annotations

import re
from functools import lru_cache

import numpy as np

from avatar.types import ARKIT_BLENDSHAPES, VISEMES

_ARKIT_KEYS = {n.lower(): n for n in ARKIT_BLENDSHAPES}
_SEP = re.compile(r"[._:|\- ]+")
_SIDE = re.compile(r"[._\- ]([LR])$", re.I)
_VISEME = re.compile(r"(?:^|[._:|\- ])viseme[_\- .]?([a-z]+)$", re.I)
#: Oculus viseme names (lower case) -> our viseme classes (avatar.types.VISEMES).
_OCULUS = {**{v.lower(): v for v in VISEMES}, "i": "ih", "o": "oh", "u": "ou", "e": "E"}

#: Few-shape channel -> the ARKit shapes it stands for (kept only where none of them is bound).
FEW_SHAPES: dict[str, tuple[str, ...]] = {
    "mouthOpen": ("jawOpen",),
    "mouthSmile": ("mouthSmileLeft", "mouthSmileRight"),
}
_FEW_KEYS = {"mouthopen": "mouthOpen", "openmouth": "mouthOpen", "mouthsmile": "mouthSmile", "smile": "mouthSmile"}
#: Emotion / blink / vowel shape names (normalised) -> the VRM expression that drives them (face.rig).
_VRM_KEYS = {
    "happy": "happy", "joy": "happy", "angry": "angry", "anger": "angry", "sad": "sad", "sorrow": "sad",
    "relaxed": "relaxed", "fun": "relaxed", "surprised": "surprised", "surprise": "surprised",
    "blink": "blink", "eyesclosed": "blink", "blinkl": "blinkLeft", "blinkleft": "blinkLeft",
    "blinkr": "blinkRight", "blinkright": "blinkRight",
    "a": "aa", "aa": "aa", "i": "ih", "ih": "ih", "u": "ou", "ou": "ou", "e": "ee", "ee": "ee", "o": "oh", "oh": "oh",
}


def _key(s: str) -> str:
    return re.sub(r"[^a-z0-9]", "", s.lower())


def _tails(s: str) -> list[str]:
    """The name, then the name without its first segment, and so on ("blendShape1.jaw_open" -> ..., "open")."""
    parts = [p for p in _SEP.split(s) if p]
    return ["".join(parts[i:]) for i in range(len(parts))]


def arkit_name(name: str) -> str | None:
    """The ARKit shape a morph target or expression name stands for, or None ("blendShape1.eyeBlink_L" ->
    "eyeBlinkLeft", "ARKit_JawOpen" -> "jawOpen")."""
    s = name.strip()
    side = ""
    m = _SIDE.search(s)
    if m:
        s, side = s[: m.start()], "left" if m.group(1).upper() == "L" else "right"
    for tail in _tails(s):
        hit = _ARKIT_KEYS.get(_key(tail) + side)
        if hit:
            return hit
    return None


def fallback_channel(name: str) -> str | None:
    """The fallback channel of a non-ARKit target name: "viseme_<class>", a FEW_SHAPES key or a VRM expression."""
    m = _VISEME.search(name.strip())
    if m and m.group(1).lower() in _OCULUS:
        return "viseme_" + _OCULUS[m.group(1).lower()]
    s = name.strip()
    side = ""
    sm = _SIDE.search(s)
    if sm:
        s, side = s[: sm.start()], sm.group(1).lower()
    for tail in _tails(s):
        k = _key(tail)
        if not side and k in _FEW_KEYS:
            return _FEW_KEYS[k]
        if k + side in _VRM_KEYS:
            return _VRM_KEYS[k + side]
    return None


def fallback_sources(channel: str) -> tuple[str, ...]:
    """The ARKit shapes a fallback channel stands in for: bound ones make it redundant."""
    if channel in FEW_SHAPES:
        return FEW_SHAPES[channel]
    if channel.startswith("viseme_"):
        return ("jawOpen",)  # a face whose jaw ARKit drives already speaks through its ARKit shapes
    return ()


@lru_cache(maxsize=1)
def _viseme_basis() -> tuple[np.ndarray, np.ndarray]:
    from avatar.face.visemes import VISEME_TARGETS

    cols = np.flatnonzero(np.abs(VISEME_TARGETS).sum(axis=0) > 0)  # the mouth, jaw and tongue channels
    return cols, np.asarray(VISEME_TARGETS[:, cols].T, dtype=np.float64)  # [C, 15]


def viseme_weights(arkit: np.ndarray) -> dict[str, float]:
    """Oculus viseme weights of one ARKit frame: the non-negative mix of our viseme prototypes nearest its mouth."""
    from scipy.optimize import nnls

    cols, basis = _viseme_basis()
    mouth = np.asarray(arkit, dtype=np.float64)[cols]
    if not np.any(mouth > 1e-4):
        return {"viseme_" + v: 1.0 if v == "sil" else 0.0 for v in VISEMES}
    w, _ = nnls(basis, mouth)
    w = np.clip(w, 0.0, 1.0)
    w[VISEMES.index("sil")] = max(0.0, 1.0 - float(w.sum()))
    return {"viseme_" + v: float(w[i]) for i, v in enumerate(VISEMES)}


def fallback_weights(arkit: np.ndarray, channels: set[str] | frozenset[str]) -> dict[str, float]:
    """The weights of the given fallback channels for one frame of the 52 ARKit weights."""
    a = np.asarray(arkit, dtype=np.float64).reshape(-1)
    idx = {n: i for i, n in enumerate(ARKIT_BLENDSHAPES)}
    out: dict[str, float] = {}
    for ch, src in FEW_SHAPES.items():
        if ch in channels:
            out[ch] = float(np.mean([a[idx[s]] for s in src]))
    if any(c.startswith("viseme_") for c in channels):
        out.update(viseme_weights(a))
    from avatar.face.rig import VRM_EXPRESSIONS

    if any(c in VRM_EXPRESSIONS for c in channels):
        from avatar.face.rig import to_vrm_array

        v = to_vrm_array(a[None])[0]
        out.update({n: float(v[i]) for i, n in enumerate(VRM_EXPRESSIONS)})
    return {k: v for k, v in out.items() if k in channels}
