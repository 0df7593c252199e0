"""The humanoid skeleton: VRM humanoid bone names, parents, T-pose rest offsets (metres), joint limits.

Conventions (glTF / VRM 1.0): Y up, the character faces +Z, its left is +X. The rest pose is a T-pose with
every joint frame aligned to the world axes (all rest rotations are identity), as VRM 1.0 normalised bones
are; a BodyMotion rotation is then directly the local rotation relative to that T-pose. Proportions are
those of a ~1.70 m adult (head joint 1.58 m, top of head 1.70 m, shoulder joints 0.36 m apart).

Joint limits are intrinsic Euler ranges in degrees for the order LIMIT_ORDER ("ZXY": R = Rz Rx Ry, the BVH
channel order we write; the elbows use "YXZ", flexion then pronation), given per axis (X, Y, Z) of the joint's
local frame. Ranges follow clinical
active range-of-motion tables (American Academy of Orthopaedic Surgeons, "Joint Motion: Method of Measuring
and Recording", 1965; Soucie et al. 2011, Haemophilia 17:500) mapped onto these axes, with the spine's total
range split over spine/chest/upperChest. Signs, for the left side (the right side mirrors Y and Z):
spine/neck/head X>0 bends forward; upper arm Z<0 lowers the arm from the T-pose, Y<0 swings it forward;
elbow Y<0 flexes; upper leg X<0 swings the leg forward; knee X>0 flexes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

#: Euler order in which joint limits are expressed (intrinsic, degrees), unless LIMIT_ORDERS says otherwise.
LIMIT_ORDER = "ZXY"
#: Per-joint exceptions: the elbow flexes first, then the forearm pronates about its own axis (R = Ry Rx Rz).
LIMIT_ORDERS: dict[str, str] = {"leftLowerArm": "YXZ", "rightLowerArm": "YXZ"}

Range = tuple[float, float]
Limit = tuple[Range, Range, Range]  # (X range, Y range, Z range) in degrees

# name, parent, offset from the parent joint in the T-pose (metres)
_BONES: tuple[tuple[str, str | None, tuple[float, float, float]], ...] = (
    ("hips", None, (0.0, 0.95, 0.0)),
    ("spine", "hips", (0.0, 0.10, -0.01)),
    ("chest", "spine", (0.0, 0.12, 0.0)),
    ("upperChest", "chest", (0.0, 0.12, 0.01)),
    ("neck", "upperChest", (0.0, 0.17, -0.01)),
    ("head", "neck", (0.0, 0.12, 0.01)),
    ("leftShoulder", "upperChest", (0.03, 0.11, 0.0)),
    ("leftUpperArm", "leftShoulder", (0.15, 0.0, 0.0)),
    ("leftLowerArm", "leftUpperArm", (0.28, 0.0, 0.0)),
    ("leftHand", "leftLowerArm", (0.25, 0.0, 0.0)),
    ("rightShoulder", "upperChest", (-0.03, 0.11, 0.0)),
    ("rightUpperArm", "rightShoulder", (-0.15, 0.0, 0.0)),
    ("rightLowerArm", "rightUpperArm", (-0.28, 0.0, 0.0)),
    ("rightHand", "rightLowerArm", (-0.25, 0.0, 0.0)),
    ("leftUpperLeg", "hips", (0.09, -0.05, 0.0)),
    ("leftLowerLeg", "leftUpperLeg", (0.0, -0.42, 0.0)),
    ("leftFoot", "leftLowerLeg", (0.0, -0.40, 0.0)),
    ("leftToes", "leftFoot", (0.0, -0.06, 0.12)),
    ("rightUpperLeg", "hips", (-0.09, -0.05, 0.0)),
    ("rightLowerLeg", "rightUpperLeg", (0.0, -0.42, 0.0)),
    ("rightFoot", "rightLowerLeg", (0.0, -0.40, 0.0)),
    ("rightToes", "rightFoot", (0.0, -0.06, 0.12)),
)

# Leaf ends (BVH "End Site", glTF leaf length): top of head, hand tip (middle finger), toe tip.
_END_SITES: dict[str, tuple[float, float, float]] = {
    "head": (0.0, 0.12, 0.0),
    "leftHand": (0.18, 0.0, 0.0),
    "rightHand": (-0.18, 0.0, 0.0),
    "leftToes": (0.0, 0.0, 0.06),
    "rightToes": (0.0, 0.0, 0.06),
}

# Limits for the centre line and the left side; the right side is the mirror image (Y, Z ranges negated).
_LIMITS_LEFT: dict[str, Limit] = {
    "hips": ((-30, 30), (-45, 45), (-20, 20)),  # whole-body orientation while standing/sitting
    "spine": ((-15, 35), (-20, 20), (-15, 15)),  # thoraco-lumbar flexion 80 / extension 25 split over 3
    "chest": ((-10, 25), (-15, 15), (-12, 12)),
    "upperChest": ((-8, 20), (-12, 12), (-10, 10)),
    "neck": ((-35, 40), (-50, 50), (-30, 30)),  # cervical flexion 45, extension 45, rotation 80, side 45
    "head": ((-25, 30), (-30, 30), (-20, 20)),
    "leftShoulder": ((-15, 15), (-25, 20), (-10, 35)),  # clavicle elevation 35, protraction/retraction ~25
    "leftUpperArm": ((-90, 90), (-110, 45), (-100, 95)),  # flexion 180 (split with clavicle), abduction
    "leftLowerArm": ((-90, 90), (-150, 0), (-10, 10)),  # elbow flexion 150; X is pronation/supination
    "leftHand": ((-25, 25), (-30, 30), (-80, 70)),  # wrist flexion 80 / extension 70, deviation 30
    "leftUpperLeg": ((-120, 30), (-45, 45), (-30, 45)),  # hip flexion 120, extension 30, abduction 45
    "leftLowerLeg": ((0, 150), (-10, 10), (-5, 5)),  # knee flexion 150
    "leftFoot": ((-45, 25), (-25, 25), (-25, 25)),  # plantar flexion 45, dorsiflexion 20-25
    "leftToes": ((-60, 40), (-5, 5), (-5, 5)),
}


def _mirror_limit(lim: Limit) -> Limit:
    (x, y, z) = lim
    return (x, (-y[1], -y[0]), (-z[1], -z[0]))


def _unity_name(vrm: str) -> str:
    return vrm[0].upper() + vrm[1:]


@dataclass(frozen=True)
class Skeleton:
    """A joint hierarchy with rest offsets (metres, T-pose, identity rest rotations) and joint limits."""

    joints: tuple[str, ...]
    parents: tuple[int, ...]  # index of the parent joint, -1 for the root; parents come before children
    offsets: np.ndarray = field(repr=False)  # [J, 3] offset of each joint from its parent (root: rest position)
    end_sites: dict[str, tuple[float, float, float]] = field(default_factory=dict, repr=False)
    limits: dict[str, Limit] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if len(self.joints) != len(self.parents) or np.asarray(self.offsets).shape != (len(self.joints), 3):
            raise ValueError("joints, parents and offsets [J, 3] must agree in length")
        for i, p in enumerate(self.parents):
            if (i == 0) != (p == -1) or p >= i:
                raise ValueError("the root must come first and every parent before its children")
        object.__setattr__(self, "offsets", np.asarray(self.offsets, dtype=np.float64))

    def index(self, name: str) -> int:
        """Index of a joint by name (KeyError when absent)."""
        try:
            return self.joints.index(name)
        except ValueError:
            raise KeyError(f"no joint {name!r} in the skeleton") from None

    def parent_of(self, name: str) -> str | None:
        """Name of the parent joint (None for the root)."""
        p = self.parents[self.index(name)]
        return None if p < 0 else self.joints[p]

    def children(self, name: str) -> list[str]:
        """Names of the direct children of a joint."""
        i = self.index(name)
        return [self.joints[k] for k, p in enumerate(self.parents) if p == i]

    @cached_property
    def rest_positions(self) -> np.ndarray:
        """World positions [J, 3] of every joint in the rest pose (rest rotations are identity)."""
        out = np.zeros((len(self.joints), 3))
        for j, p in enumerate(self.parents):
            out[j] = self.offsets[j] if p < 0 else out[p] + self.offsets[j]
        return out

    def limit(self, name: str) -> Limit:
        """(X, Y, Z) Euler ranges in degrees for a joint (LIMIT_ORDER); wide open when none is defined."""
        return self.limits.get(name, ((-180, 180), (-90, 90), (-180, 180)))

    def limit_order(self, name: str) -> str:
        """The intrinsic Euler order in which a joint's limits are given."""
        return LIMIT_ORDERS.get(name, LIMIT_ORDER)

    def limits_array(self) -> np.ndarray:
        """Limits as an array [J, 3 (X, Y, Z), 2 (min, max)] in degrees."""
        return np.array([self.limit(n) for n in self.joints], dtype=np.float64)

    def height(self) -> float:
        """Standing height: top of the head (end site) minus the lowest joint, metres."""
        pos = self.rest_positions
        top = pos[:, 1].max()
        if "head" in self.end_sites and "head" in self.joints:
            top = pos[self.index("head"), 1] + self.end_sites["head"][1]
        return float(top - min(0.0, pos[:, 1].min()))


def _build_default() -> Skeleton:
    names = tuple(b[0] for b in _BONES)
    parents = tuple(-1 if b[1] is None else names.index(b[1]) for b in _BONES)
    offsets = np.array([b[2] for b in _BONES], dtype=np.float64)
    limits: dict[str, Limit] = {}
    for n in names:
        if n.startswith("right"):
            limits[n] = _mirror_limit(_LIMITS_LEFT["left" + n[len("right"):]])
        else:
            limits[n] = _LIMITS_LEFT[n]
    return Skeleton(joints=names, parents=parents, offsets=offsets, end_sites=dict(_END_SITES), limits=limits)


#: The default skeleton every stage uses.
HUMANOID: Skeleton = _build_default()
#: VRM humanoid bone names in skeleton order.
VRM_BONES: tuple[str, ...] = HUMANOID.joints
#: VRM humanoid bone -> Unity HumanBodyBones name (what the VMC protocol's /VMC/Ext/Bone/Pos sends).
UNITY_BONES: dict[str, str] = {n: _unity_name(n) for n in VRM_BONES}
#: The bones VRM requires (the others here are optional in VRM: upperChest, shoulders, toes).
VRM_REQUIRED: tuple[str, ...] = tuple(
    n for n in VRM_BONES if n not in {"upperChest", "leftShoulder", "rightShoulder", "leftToes", "rightToes"}
)
#: Foot joints that must stay planted.
FOOT_JOINTS: tuple[str, ...] = ("leftFoot", "rightFoot", "leftToes", "rightToes")


def default_skeleton() -> Skeleton:
    """The default humanoid skeleton (HUMANOID)."""
    return HUMANOID
