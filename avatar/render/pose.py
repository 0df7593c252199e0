"""Pose an Avatar for one frame: node world matrices from BodyMotion + FaceMotion head pose and gaze.

Retargeting is the VRM "normalised bone" rule that avatar.gesture.gltf.add_animation_to_avatar uses for the
exported animation, so the video and the .glb agree: our joint rotations are changes from a T-pose with
world-aligned joint frames, so a humanoid node's animated world rotation is our joint's world rotation
(forward kinematics over avatar.rig.skeleton.HUMANOID) times the node's rest world rotation, with an A-pose
file's arm bones first aligned to the T-pose (avatar.rig.retarget.rest_alignment). Bones the
avatar lacks pass their rotation on to their mapped descendants; bones the motion lacks stay at rest.

The face's head pose (yaw > 0 to the avatar's left, pitch > 0 down, roll > 0 to its right shoulder, radians;
docs/face.md) is split 40 / 60 over the neck and head on top of the body's rotations, and the gaze turns the
eye nodes in the head's frame. An avatar facing -Z (VRM 0.x) gets every rotation conjugated by a half turn
about Y and the root displacement mirrored, as the exporter does.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from avatar.gltf.nodes import node_local
from avatar.rig.hands import FINGER_BONES, finger_parent
from avatar.rig.retarget import rest_alignment
from avatar.rig.rotations import quat_normalize, quat_to_matrix
from avatar.rig.skeleton import HUMANOID
from avatar.types import ARKIT_BLENDSHAPES, EYE_GAZE, FACE_CHANNELS, HEAD_POSE

from .avatar_file import Avatar, AvatarSkin, _topological

#: Share of the face's head rotation given to the neck (the rest goes to the head).
NECK_SHARE = 0.4
_FLIP = np.diag([-1.0, 1.0, -1.0])  # a half turn about Y
_HEAD = [FACE_CHANNELS.index(n) for n in HEAD_POSE]
_GAZE = [FACE_CHANNELS.index(n) for n in EYE_GAZE]

Body = tuple[tuple[str, ...] | list[str], np.ndarray, np.ndarray]  # (joint names, rotations [J, 4] xyzw, root [3])


@dataclass
class Rig:
    """What posing needs from an Avatar, precomputed once: rest transforms, the bone map, the order."""

    order: list[int]  # parents before children
    parent: np.ndarray  # [N]
    rest_local: np.ndarray  # [N, 4, 4]
    rest_world: np.ndarray  # [N, 4, 4]
    rest_rot: np.ndarray  # [N, 3, 3] rest world rotations, A-pose arm bones aligned to the T-pose (rig.retarget)
    node_joint: dict[int, int]  # node -> our skeleton joint index driving it
    eye_side: dict[int, int]  # eye node -> 0 (left) / 1 (right)
    hips: int | None
    hip_scale: float  # avatar hip height / ours: scales the root displacement
    minus_z: bool
    skins: tuple[AvatarSkin, ...]
    finger_node: dict[int, str] | None = None  # node -> VRM finger bone it shows (posed when the motion has it)


def build_rig(avatar: Avatar) -> Rig:
    """Precompute rest transforms and the humanoid mapping of an Avatar."""
    gltf = avatar.gltf
    n = len(avatar.nodes)
    order = _topological(avatar.nodes)
    parent = np.array([nd.parent for nd in avatar.nodes], dtype=np.int64)
    local = np.stack([node_local(nd) for nd in gltf.nodes]) if n else np.zeros((0, 4, 4))
    world = np.zeros_like(local)
    for i in order:
        world[i] = local[i] if parent[i] < 0 else world[parent[i]] @ local[i]
    node_joint = {node: HUMANOID.index(b) for b, node in avatar.bones.items() if b in HUMANOID.joints}
    eye_side = {node: (0 if name == "leftEye" else 1) for name, node in avatar.eyes.items()}
    for node in eye_side:  # an eye mapped as a humanoid bone is posed as an eye, not as the head
        node_joint.pop(node, None)
    rest_rot = world[:, :3, :3].copy()
    for node, align in rest_alignment(world[:, :3, 3], avatar.bones, bool(avatar.faces_minus_z)).items():
        rest_rot[node] = align.T @ rest_rot[node]
    hips = avatar.bones.get("hips")
    scale = 1.0
    if hips is not None and world[hips][1, 3] > 1e-3:
        scale = float(world[hips][1, 3]) / float(HUMANOID.rest_positions[0, 1])
    fingers = finger_nodes(gltf)
    for node, bone in fingers.items():  # a finger keeps its hand's A-pose alignment (its bones are not in it)
        hand = avatar.bones.get(("left" if bone.startswith("left") else "right") + "Hand")
        if hand is not None:
            rest_rot[node] = rest_rot[hand] @ world[hand][:3, :3].T @ rest_rot[node]
    return Rig(order=order, parent=parent, rest_local=local, rest_world=world, rest_rot=rest_rot, node_joint=node_joint,
               eye_side=eye_side, hips=hips, hip_scale=scale, minus_z=bool(avatar.faces_minus_z),
               skins=avatar.skins, finger_node=fingers)


def finger_nodes(gltf) -> dict[int, str]:  # noqa: ANN001 - pygltflib.GLTF2
    """Node -> VRM finger bone, from the VRM 1.0 / 0.x humanoid extension, else from nodes named as the bones."""
    ext = gltf.extensions or {}
    found: dict[str, int] = {}
    if "VRMC_vrm" in ext:
        found = {b: int(v["node"]) for b, v in ext["VRMC_vrm"].get("humanoid", {}).get("humanBones", {}).items()}
    elif "VRM" in ext:  # VRM 0.x names the thumb's segments Proximal, Intermediate, Distal
        thumb = {"ThumbProximal": "ThumbMetacarpal", "ThumbIntermediate": "ThumbProximal"}
        for v in ext["VRM"].get("humanoid", {}).get("humanBones", []):
            bone = str(v["bone"])
            for old, new in thumb.items():
                if bone.endswith(old):
                    bone = bone[: -len(old)] + new
            found[bone] = int(v["node"])
    if not found:
        found = {n.name: i for i, n in enumerate(gltf.nodes) if n.name}
    return {node: b for b, node in found.items() if b in FINGER_BONES and 0 <= node < len(gltf.nodes)}


def finger_world(gm: np.ndarray, body: Body | None) -> dict[str, np.ndarray]:
    """World rotation matrices [3, 3] of the finger bones the motion carries (the hand's world rotation times
    the finger chain's local rotations), for one frame."""
    if body is None:
        return {}
    names, r, _ = body
    r = np.asarray(r, dtype=np.float64).reshape(-1, 4)
    plan = _finger_plan(tuple(names), len(r))
    if not plan:
        return {}
    # One batched conversion for all fingers (per bone it cost ~0.13 ms: 4 ms a frame for 30 bones).
    q = r[[k for _, k, _ in plan]]
    mats = quat_to_matrix(quat_normalize(q))
    out: dict[str, np.ndarray] = {}
    for (bone, _, parent), m in zip(plan, mats):
        base = out.get(parent) if parent in out else gm[HUMANOID.index(parent)] if parent in HUMANOID.joints else None
        if base is not None:
            out[bone] = base @ m
    return out


@lru_cache(maxsize=16)
def _finger_plan(names: tuple[str, ...], n: int) -> tuple[tuple[str, int, str], ...]:
    """(finger bone, its row in the motion, the bone it hangs from) for the motion's finger bones, palm outwards."""
    row = {nm: k for k, nm in enumerate(names) if k < n}
    return tuple((bone, row[bone], finger_parent(bone)) for bone in FINGER_BONES if bone in row)


def _ypr(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Rotation matrix R = Ry(yaw) Rx(pitch) Rz(roll) (radians), the face's head / gaze convention."""
    cy, sy, cp, sp, cr, sr = np.cos(yaw), np.sin(yaw), np.cos(pitch), np.sin(pitch), np.cos(roll), np.sin(roll)
    ry = np.array([[cy, 0.0, sy], [0.0, 1.0, 0.0], [-sy, 0.0, cy]])
    rx = np.array([[1.0, 0.0, 0.0], [0.0, cp, -sp], [0.0, sp, cp]])
    rz = np.array([[cr, -sr, 0.0], [sr, cr, 0.0], [0.0, 0.0, 1.0]])
    return ry @ rx @ rz


def skeleton_pose(body: Body | None, face_row: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Our skeleton's world rotation matrices [J, 3, 3], root position [3] and the two in-head gaze rotations
    [2, 3, 3], for one frame (forward kinematics written out with 3x3 matrices: per frame this is ~50x faster
    than the batched quaternion FK of avatar.rig.kinematics, whose per-call overhead dominates at T = 1)."""
    J = len(HUMANOID.joints)
    local = np.tile(np.eye(3), (J, 1, 1))
    root = HUMANOID.rest_positions[0].copy()
    if body is not None:
        names, r, p = body
        r = np.asarray(r, dtype=np.float64).reshape(-1, 4)
        idx = [(HUMANOID.index(n), k) for k, n in enumerate(names) if n in HUMANOID.joints and k < len(r)]
        if idx:
            ours, theirs = zip(*idx)
            q = r[list(theirs)]
            local[list(ours)] = quat_to_matrix(q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12))
        root = np.asarray(p, dtype=np.float64).reshape(3)
    gaze = np.tile(np.eye(3), (2, 1, 1))
    if face_row is not None and len(face_row) >= len(FACE_CHANNELS):
        yaw, pitch, roll = (float(face_row[i]) for i in _HEAD)
        for idx_, share in ((HUMANOID.index("neck"), NECK_SHARE), (HUMANOID.index("head"), 1.0 - NECK_SHARE)):
            local[idx_] = local[idx_] @ _ypr(yaw * share, pitch * share, roll * share)
        g = [float(face_row[i]) for i in _GAZE]
        gaze = np.stack([_ypr(g[0], g[1], 0.0), _ypr(g[2], g[3], 0.0)])
    glob = np.empty_like(local)
    for k, p in enumerate(HUMANOID.parents):
        glob[k] = local[k] if p < 0 else glob[p] @ local[k]
    return glob, root, gaze


def node_matrices(rig: Rig, body: Body | None, face_row: np.ndarray | None) -> np.ndarray:
    """World matrices [N, 4, 4] of every node of the avatar for one frame."""
    gm, root, gaze = skeleton_pose(body, face_row)
    eye_m = gm[HUMANOID.index("head")] @ gaze  # [2, 3, 3]
    fingers = finger_world(gm, body) if rig.finger_node else {}
    if rig.minus_z:  # our +Z-facing rotations for a -Z-facing rig: conjugate by a half turn about Y
        gm, eye_m = _FLIP @ gm @ _FLIP, _FLIP @ eye_m @ _FLIP
        fingers = {b: _FLIP @ m @ _FLIP for b, m in fingers.items()}
    world = np.empty_like(rig.rest_world)
    for i in rig.order:
        p = rig.parent[i]
        w = rig.rest_local[i] if p < 0 else world[p] @ rig.rest_local[i]
        j = rig.node_joint.get(i)
        side = rig.eye_side.get(i)
        finger = fingers.get(rig.finger_node.get(i, "")) if fingers else None
        if j is not None or side is not None or finger is not None:
            delta = gm[j] if j is not None else eye_m[side] if side is not None else finger
            w = w.copy()
            w[:3, :3] = delta @ rig.rest_rot[i]  # world rotation = ours x (aligned) rest world rotation
        if i == rig.hips:
            d = (root - HUMANOID.rest_positions[0]) * rig.hip_scale
            if rig.minus_z:
                d = d * np.array([-1.0, 1.0, -1.0])
            w[:3, 3] = rig.rest_world[i][:3, 3] + d
        world[i] = w
    return world


def arkit_row(face_row: np.ndarray | None) -> np.ndarray | None:
    """The 52 ARKit weights of a FaceMotion row (59 channels) or of a bare 52-row, clipped to [0, 1]."""
    if face_row is None:
        return None
    a = np.asarray(face_row, dtype=np.float64).reshape(-1)
    if len(a) < len(ARKIT_BLENDSHAPES):
        raise ValueError(f"a face row needs at least {len(ARKIT_BLENDSHAPES)} values, got {len(a)}")
    return np.clip(a[: len(ARKIT_BLENDSHAPES)], 0.0, 1.0)
