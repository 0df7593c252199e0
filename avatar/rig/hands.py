"""Finger bones (VRM humanoid names) and hand shapes as finger curls.

The fingers are optional joints of a `BodyMotion`, appended after the body bones of `HUMANOID`; their
rotations follow the same rule as every other bone (local rotations relative to a T-pose whose joint frames
are aligned with the world axes, the VRM normalised-bone convention), so a renderer or exporter that knows
VRM finger bones can apply them as they are, and one that does not ignores them.

In the T-pose the left hand points along +X with the palm down (-Y) and the thumb forward (+Z); finger
flexion turns each segment about +Z towards the palm (a negative angle for the left hand), spreading about
Y; the thumb folds across the palm about (1, 0, -1)/sqrt(2). The right hand mirrors the left
(`quat_mirror_x`).
"""

from __future__ import annotations

import numpy as np

from .rotations import quat_from_axis_angle, quat_mirror_x, quat_mul

FINGERS: tuple[str, ...] = ("Thumb", "Index", "Middle", "Ring", "Little")
SEGMENTS: dict[str, tuple[str, str, str]] = {
    "Thumb": ("Metacarpal", "Proximal", "Distal"),
    **{f: ("Proximal", "Intermediate", "Distal") for f in FINGERS[1:]},
}
#: The 30 VRM finger bones, left hand first, each finger from the palm outwards.
FINGER_BONES: tuple[str, ...] = tuple(f"{side}{f}{seg}" for side in ("left", "right") for f in FINGERS
                                      for seg in SEGMENTS[f])


def finger_parent(bone: str) -> str:
    """The bone a finger bone hangs from: the previous segment, or the hand for the first."""
    side = "left" if bone.startswith("left") else "right"
    rest = bone[len(side):]
    for f in FINGERS:
        if rest.startswith(f):
            segs = SEGMENTS[f]
            k = segs.index(rest[len(f):])
            return f"{side}Hand" if k == 0 else f"{side}{f}{segs[k - 1]}"
    raise KeyError(f"not a finger bone: {bone}")


#: Hand shapes: (thumb, index, middle, ring, little) curl, 0 straight .. 1 a closed fist, and spread 0..1.
HAND_SHAPES: dict[str, tuple[float, float, float, float, float, float]] = {
    "relaxed": (0.1, 0.08, 0.12, 0.15, 0.18, 0.1),  # the resting cascade (on top of the avatar's own rest curl)
    "flat": (0.05, 0.02, 0.02, 0.04, 0.05, 0.1),
    "spread": (0.05, 0.0, 0.0, 0.02, 0.04, 1.0),
    "cupped": (0.12, 0.1, 0.12, 0.15, 0.18, 0.2),
    "point": (0.7, 0.0, 0.95, 0.97, 1.0, 0.0),
    "fist": (0.6, 1.0, 1.0, 1.0, 1.0, 0.0),
    "pinch": (0.5, 0.5, 0.6, 0.65, 0.7, 0.0),
}
#: Joint flexion at curl 1 (degrees) for the three segments of the fingers and of the thumb.
_FLEX = np.array([80.0, 95.0, 65.0])
_THUMB_FLEX = np.array([30.0, 45.0, 60.0])
#: Spread at 1 (degrees) of each finger's first segment, index towards the thumb, little away from it.
_SPREAD = {"Index": -10.0, "Middle": 0.0, "Ring": 8.0, "Little": 16.0}


def finger_rotations(shape: np.ndarray) -> dict[str, np.ndarray]:
    """Local rotations [T, 4] of all 30 finger bones from hand shapes [T, 2, 6] (left, right; HAND_SHAPES
    layout)."""
    shape = np.asarray(shape, dtype=np.float64)
    z = np.array([0.0, 0.0, 1.0])
    y = np.array([0.0, 1.0, 0.0])
    thumb_axis = np.array([1.0, 0.0, -1.0]) / np.sqrt(2.0)
    out: dict[str, np.ndarray] = {}
    for s, side in enumerate(("left", "right")):
        for k, f in enumerate(FINGERS):
            curl = shape[:, s, k]
            for j, seg in enumerate(SEGMENTS[f]):
                if f == "Thumb":
                    q = quat_from_axis_angle(thumb_axis, _THUMB_FLEX[j] * curl)
                else:
                    q = quat_from_axis_angle(z, -_FLEX[j] * curl)
                    if j == 0:
                        q = quat_mul(quat_from_axis_angle(y, _SPREAD[f] * shape[:, s, 5]), q)
                out[f"{side}{f}{seg}"] = q if side == "left" else quat_mirror_x(q)
    return out
