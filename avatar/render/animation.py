"""Face + body motion on an avatar: head pose and gaze as joint rotations, and the animated .glb export.

FaceMotion carries head yaw/pitch/roll and eye-in-head gaze in radians (docs/face.md: yaw > 0 turns to the
avatar's own left, pitch > 0 tips down, roll > 0 tilts towards the right shoulder, right-handed about the
glTF axes of an avatar facing +Z). Those are rotations about +Y, +X and +Z, applied yaw, then pitch, then roll
in the head's own frame. The head pose is shared between neck and head (`avatar.render.pose.NECK_SHARE`), as
the renderer (avatar/render/pose.py) shares it, so what a game engine plays from the .glb is what the video shows.
"""

from __future__ import annotations

import copy
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from avatar.errors import InputError
from avatar.render.motion import resample_face
from avatar.types import BodyMotion, FaceMotion

if TYPE_CHECKING:
    from pygltflib import GLTF2

    from .avatar_file import Avatar

log = logging.getLogger(__name__)


def _axis_quat(axis: int, angle: np.ndarray) -> np.ndarray:
    q = np.zeros(angle.shape + (4,), dtype=np.float64)
    q[..., axis] = np.sin(angle / 2.0)
    q[..., 3] = np.cos(angle / 2.0)
    return q


def ypr_quat(yaw: np.ndarray, pitch: np.ndarray, roll: np.ndarray | float = 0.0) -> np.ndarray:
    """Quaternions (x, y, z, w) for yaw about +Y, then pitch about +X, then roll about +Z (intrinsic)."""
    from avatar.rig.rotations import quat_mul

    yaw = np.asarray(yaw, dtype=np.float64)
    pitch = np.broadcast_to(np.asarray(pitch, dtype=np.float64), yaw.shape)
    roll = np.broadcast_to(np.asarray(roll, dtype=np.float64), yaw.shape)
    return quat_mul(quat_mul(_axis_quat(1, yaw), _axis_quat(0, pitch)), _axis_quat(2, roll))


def with_face_pose(body: BodyMotion, face: FaceMotion) -> BodyMotion:
    """The body with the face's head yaw/pitch/roll composed onto its neck and head (after the body's own)."""
    from avatar.rig.rotations import quat_mul, quat_normalize

    from avatar.render.pose import NECK_SHARE

    if "head" not in body.joints:
        return body
    f = resample_face(face, body.num_frames, body.fps)
    ch = {n: i for i, n in enumerate(face.names)}
    ypr = f[:, [ch["headYaw"], ch["headPitch"], ch["headRoll"]]]
    rot = np.array(body.rotations, dtype=np.float64, copy=True)
    # Shared between neck and head as the renderer does, so the .glb moves as the video does.
    shares = (("neck", NECK_SHARE), ("head", 1.0 - NECK_SHARE)) if "neck" in body.joints else (("head", 1.0),)
    for joint, share in shares:
        j = body.joints.index(joint)
        q = ypr_quat(ypr[:, 0] * share, ypr[:, 1] * share, ypr[:, 2] * share)
        rot[:, j] = quat_normalize(quat_mul(rot[:, j], q))
    return BodyMotion(fps=body.fps, joints=body.joints, rotations=rot.astype(np.float32),
                      root_position=body.root_position)


def gaze_quats(face: FaceMotion, n: int, fps: float) -> dict[str, np.ndarray]:
    """Eye-in-head rotations [n, 4] for "leftEye" and "rightEye" from the face's gaze channels."""
    f = resample_face(face, n, fps)
    ch = {name: i for i, name in enumerate(face.names)}
    return {eye: ypr_quat(f[:, ch[f"{eye}Yaw"]], f[:, ch[f"{eye}Pitch"]]) for eye in ("leftEye", "rightEye")}


#: Root extensions that make a glTF a VRM (1.0, 0.x): a VRM player loading one rebuilds the raw bones and morph
#: weights from its normalised humanoid and expressions every frame, which would undo a raw-node animation.
VRM_ROOT_EXTENSIONS = ("VRMC_vrm", "VRM")


def undeclare_vrm(gltf) -> None:  # noqa: ANN001 - pygltflib.GLTF2
    """Drop the VRM declaration (VRMC_vrm / VRM) from a document whose animation targets raw nodes and morph
    weights, so VRM players (three-vrm) play it as the plain glTF animation it is; the .vrma carries the VRM
    form (avatar.render.vrm_animation)."""
    if gltf.extensions:
        gltf.extensions = {k: v for k, v in gltf.extensions.items() if k not in VRM_ROOT_EXTENSIONS}
    for attr in ("extensionsUsed", "extensionsRequired"):
        names = getattr(gltf, attr) or []
        setattr(gltf, attr, [e for e in names if e not in VRM_ROOT_EXTENSIONS])


def animated_gltf(avatar: Avatar, face: FaceMotion, body: BodyMotion, name: str = "performance") -> GLTF2:
    """A copy of the avatar's glTF (pygltflib.GLTF2) with one animation of its raw nodes and morph weights (body,
    head pose, gaze, face), declared as plain glTF: the VRM extension is dropped (undeclare_vrm)."""
    import pygltflib as g

    from avatar.gesture.gltf import add_animation_to_avatar
    from avatar.gltf.writer import BufferWriter
    from avatar.rig.rotations import quat_mul, quat_normalize

    gltf = copy.deepcopy(avatar.gltf)
    if not gltf.buffers:
        raise InputError(f"{avatar.path.name} has no buffers to animate")
    posed = with_face_pose(body, face)
    if "hips" in avatar.bones:
        gltf = add_animation_to_avatar(gltf, posed, name=name)
        undeclare_vrm(gltf)  # after the mapping, which reads the VRM humanoid
        anim = gltf.animations[-1]
    else:
        undeclare_vrm(gltf)
        log.warning("%s has no humanoid bones: the .glb carries the face animation only", avatar.path.name)
        anim = g.Animation(name=name, samplers=[], channels=[])
        gltf.animations.append(anim)
    n, fps = body.num_frames, body.fps
    blob = BufferWriter(gltf, gltf.binary_blob() or b"")
    times = blob.add((np.arange(n) / fps).astype(np.float32), g.FLOAT, "SCALAR", minmax=True)

    def channel(node: int, path: str, values: np.ndarray, kind: str) -> None:
        out = blob.add(np.ascontiguousarray(values, dtype=np.float32), g.FLOAT, kind)
        anim.samplers.append(g.AnimationSampler(input=times, output=out, interpolation="LINEAR"))
        anim.channels.append(g.AnimationChannel(sampler=len(anim.samplers) - 1,
                                                target=g.AnimationChannelTarget(node=node, path=path)))

    for eye, q in gaze_quats(face, n, fps).items():
        node = avatar.eyes.get(eye)
        if node is None:
            continue
        if avatar.faces_minus_z:  # our +Z-facing rotation for a -Z-facing avatar: a half turn about Y
            q = q * np.array([-1.0, 1.0, -1.0, 1.0])
        rest = np.asarray(avatar.nodes[node].rotation, dtype=np.float64)
        channel(node, "rotation", quat_normalize(quat_mul(np.broadcast_to(rest, q.shape), q)), "VEC4")
    # Morph weights: glTF animates a mesh's weights through the node that instantiates it, all targets at once.
    weights = morph_weight_tracks(avatar, resample_face(face, n, fps)[:, :52])
    meshes = sorted({m for (m, _) in weights})
    for node_index, node in enumerate(avatar.nodes):
        if node.mesh is None or node.mesh not in meshes:
            continue
        prim = gltf.meshes[node.mesh].primitives[0]
        count = len(prim.targets or [])
        if count == 0:
            continue
        w = np.zeros((n, count), dtype=np.float32)
        for (m, k), track in weights.items():
            if m == node.mesh and k < count:
                w[:, k] = track
        channel(node_index, "weights", w.reshape(-1), "SCALAR")
    blob.finish()
    return gltf


def morph_weight_tracks(avatar: Avatar, arkit: np.ndarray) -> dict[tuple[int, int], np.ndarray]:
    """Avatar.morph_weights of every frame of `arkit` [n, 52] at once: {(mesh, target): weights [n]} (0 where a
    frame does not drive the target). For an ARKit-driven face the same sums in the same order over whole columns,
    so the numbers are Avatar.morph_weights' to the bit (it was 0.12 s of `say --keep` frame by frame); other faces
    go frame by frame."""
    from avatar.types import ARKIT_BLENDSHAPES

    a = np.asarray(arkit, dtype=np.float64)
    n = len(a)
    if avatar.face_mode != "arkit" or avatar.fallback:
        per_frame = [avatar.morph_weights(row) for row in a]
        tracks = {k: np.zeros(n) for k in sorted({k for fr in per_frame for k in fr})}
        for t, fr in enumerate(per_frame):
            for k, v in fr.items():
                tracks[k][t] = v
        return tracks
    if a.shape != (n, len(ARKIT_BLENDSHAPES)) or not np.isfinite(a).all():
        raise InputError(f"need 52 finite ARKit weights a frame, got shape {a.shape}")
    column = {name: i for i, name in enumerate(ARKIT_BLENDSHAPES)}
    zero = np.zeros(n)
    sums: dict[tuple[int, int], np.ndarray] = {}
    for name, binds in avatar.arkit.items():
        drive = a[:, column[name]] if name in column else zero
        for mesh, target, w in binds:
            sums[(mesh, target)] = sums.get((mesh, target), 0.0) + w * drive
    return {k: np.clip(v, 0.0, 1.0) for k, v in sums.items()}


def write_animated_avatar(avatar: Avatar, face: FaceMotion, body: BodyMotion, out: str | os.PathLike[str]) -> Path:
    """Write the avatar with the performance's animation to a .glb, atomically."""
    from avatar.gltf.writer import save_glb

    return save_glb(animated_gltf(avatar, face, body), out)
