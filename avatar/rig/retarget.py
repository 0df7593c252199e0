"""Rest-pose alignment for retargeting onto a file's own skeleton (T-pose or A-pose).

Our joint rotations are changes from a T-pose with world-aligned frames (avatar.rig.skeleton), so a humanoid
node's animated world rotation is our joint's world rotation times the node's rest world rotation (the VRM
"normalised bone" rule). That holds only when the file's rest is a T-pose too: an A-pose arm (40-45 degrees
down, as Blender, MakeHuman and many character exports have) would be lowered by its rest difference on top of
every gesture. `rest_alignment` measures, per arm bone, the swing that takes our T-pose bone direction (joint to
child joint) to the file's rest direction; the retargeters (avatar.render.pose, avatar.gesture.gltf) undo it:
world rotation = ours x alignment^-1 x rest, so an A-pose rig gestures as a T-pose rig does. Where the file's
rest already is a T-pose the alignment is (near) identity and nothing changes.
"""

from __future__ import annotations

import numpy as np

from avatar.rig.skeleton import HUMANOID, Skeleton

#: Bones aligned by their own direction: bone -> the child joint that gives it.
ALIGNED: dict[str, str] = {
    "leftUpperArm": "leftLowerArm", "leftLowerArm": "leftHand",
    "rightUpperArm": "rightLowerArm", "rightLowerArm": "rightHand",
}
#: Bones with no child joint here, aligned as their parent is (a hand lies along its forearm).
INHERITED: dict[str, str] = {"leftHand": "leftLowerArm", "rightHand": "rightLowerArm"}
_FLIP = np.diag([-1.0, 1.0, -1.0])  # a half turn about Y: our +Z-facing directions for a -Z-facing file


def swing(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The smallest rotation matrix [3, 3] taking direction `a` to direction `b`."""
    a = np.asarray(a, dtype=np.float64) / np.linalg.norm(a)
    b = np.asarray(b, dtype=np.float64) / np.linalg.norm(b)
    v, c = np.cross(a, b), float(np.dot(a, b))
    if c < -1.0 + 1e-9:  # opposite: half turn about any axis perpendicular to a
        axis = np.cross(a, [1.0, 0.0, 0.0] if abs(a[0]) < 0.9 else [0.0, 1.0, 0.0])
        axis /= np.linalg.norm(axis)
        return 2.0 * np.outer(axis, axis) - np.eye(3)
    k = np.array([[0.0, -v[2], v[1]], [v[2], 0.0, -v[0]], [-v[1], v[0], 0.0]])
    return np.eye(3) + k + k @ k / (1.0 + c)


def rest_alignment(world_positions: np.ndarray, bones: dict[str, int], minus_z: bool = False,
                   skeleton: Skeleton = HUMANOID) -> dict[int, np.ndarray]:
    """Node -> world rotation [3, 3] taking its bone's T-pose direction to the file's rest direction, for the arm
    bones (`ALIGNED`, `INHERITED`) whose joint and child joint are both mapped; `world_positions` [N, 3] are the
    nodes' rest world positions, `bones` our bone name -> node. Bones left out need no alignment."""
    rest = skeleton.rest_positions
    out: dict[int, np.ndarray] = {}
    by_bone: dict[str, np.ndarray] = {}
    for bone, child in ALIGNED.items():
        if bone not in bones or child not in bones or bone not in skeleton.joints:
            continue
        ours = rest[skeleton.index(child)] - rest[skeleton.index(bone)]
        if minus_z:
            ours = _FLIP @ ours
        theirs = world_positions[bones[child]] - world_positions[bones[bone]]
        if np.linalg.norm(theirs) < 1e-6:
            continue
        by_bone[bone] = out[bones[bone]] = swing(ours, theirs)
    for bone, source in INHERITED.items():
        if bone in bones and source in by_bone:
            out[bones[bone]] = by_bone[source]
    return out
