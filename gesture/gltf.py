"""glTF 2.0 export of body motion (pygltflib): a skinned mannequin with one animation, or an animation written
into a given avatar .glb/.vrm whose nodes are matched by humanoid bone name.

The mannequin is one node per joint (named with the VRM bone name, translation = rest offset, identity rest
rotation), a skin over those nodes and a box per bone bound rigidly to it, so viewers (three.js, Blender,
Babylon) show the motion. The animation has a rotation channel per joint and a translation channel on the
hips, LINEAR samplers, times in seconds.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from avatar.errors import InputError
from avatar.gltf.nodes import node_local
from avatar.gltf.writer import BufferWriter, save_glb
from avatar.rig.kinematics import fk, rotations_in_skeleton_order
from avatar.rig.retarget import rest_alignment
from avatar.rig.rotations import identity_quat, matrix_to_quat, quat_inv, quat_mul, quat_normalize
from avatar.rig.skeleton import HUMANOID, UNITY_BONES, Skeleton
from avatar.types import BodyMotion

if TYPE_CHECKING:
    from pygltflib import GLTF2

log = logging.getLogger(__name__)

_FLOAT, _USHORT = 5126, 5123
_ARRAY, _ELEMENTS = 34962, 34963


def _box(a: np.ndarray, b: np.ndarray, r: float) -> tuple[np.ndarray, np.ndarray]:
    """8 corners and 12 triangles of a box of half-width r around segment a-b."""
    d = b - a
    n = np.linalg.norm(d)
    if n < 1e-6:
        d, n = np.array([0.0, 1.0, 0.0]), 1.0
        a, b = a - d * r, a + d * r
    u = d / n
    helper = np.array([0.0, 0.0, 1.0]) if abs(u[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    v = np.cross(u, helper)
    v /= np.linalg.norm(v)
    w = np.cross(u, v)
    corners = [p + sv * r * v + sw * r * w for p in (a, b) for sv in (-1, 1) for sw in (-1, 1)]
    quads = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    tris = [t for q in quads for t in ((q[0], q[1], q[2]), (q[0], q[2], q[3]))]
    return np.array(corners), np.array(tris)


def _add_animation(gltf: GLTF2, blob: BufferWriter, fps: float, frames: int, node_rot: dict[int, np.ndarray],
                   node_trans: dict[int, np.ndarray], name: str) -> None:
    import pygltflib as g

    times = (np.arange(frames, dtype=np.float32) / np.float32(fps)).astype(np.float32)
    t_acc = blob.add(times, _FLOAT, "SCALAR", minmax=True)
    samplers, channels = [], []
    for node, q in node_rot.items():
        out = blob.add(quat_normalize(q).astype(np.float32), _FLOAT, "VEC4")
        samplers.append(g.AnimationSampler(input=t_acc, output=out, interpolation="LINEAR"))
        target = g.AnimationChannelTarget(node=node, path="rotation")
        channels.append(g.AnimationChannel(sampler=len(samplers) - 1, target=target))
    for node, p in node_trans.items():
        out = blob.add(np.asarray(p, dtype=np.float32), _FLOAT, "VEC3")
        samplers.append(g.AnimationSampler(input=t_acc, output=out, interpolation="LINEAR"))
        target = g.AnimationChannelTarget(node=node, path="translation")
        channels.append(g.AnimationChannel(sampler=len(samplers) - 1, target=target))
    gltf.animations.append(g.Animation(name=name, samplers=samplers, channels=channels))


def motion_to_gltf(motion: BodyMotion, skeleton: Skeleton = HUMANOID, name: str = "gesture") -> GLTF2:
    """A pygltflib.GLTF2 with the skinned mannequin and the motion as one animation."""
    import pygltflib as g

    if motion.num_frames < 1:
        raise InputError("cannot export an empty motion")
    gltf = g.GLTF2(asset=g.Asset(generator="avatar-engine gesture", version="2.0"))
    blob = BufferWriter(gltf)
    J = len(skeleton.joints)
    kids = {j: [k for k, p in enumerate(skeleton.parents) if p == j] for j in range(J)}
    for j, jn in enumerate(skeleton.joints):
        gltf.nodes.append(g.Node(name=jn, translation=[float(v) for v in skeleton.offsets[j]],
                                 rotation=[0.0, 0.0, 0.0, 1.0], children=kids[j] or None))
    rest = skeleton.rest_positions
    # Mesh: a box per bone, from the joint to its child (or end site), bound to that joint only.
    verts, tris, joints_idx = [], [], []
    for j, jn in enumerate(skeleton.joints):
        ends = [rest[k] for k in kids[j]] if len(kids[j]) == 1 else []
        if jn in skeleton.end_sites:
            ends = [rest[j] + np.asarray(skeleton.end_sites[jn])]
        b = ends[0] if ends else rest[j]
        r = 0.06 if jn in ("hips", "spine", "chest", "upperChest") else 0.05 if jn == "head" else 0.025
        c, t = _box(rest[j], b, r)
        tris.append(t + len(verts) * 8)
        verts.append(c)
        joints_idx.append(np.full(8, j))
    pos = np.concatenate(verts).astype(np.float32)
    idx = np.concatenate(tris).astype(np.uint16).reshape(-1)
    jnt = np.zeros((len(pos), 4), dtype=np.uint16)
    jnt[:, 0] = np.concatenate(joints_idx)
    wts = np.zeros((len(pos), 4), dtype=np.float32)
    wts[:, 0] = 1.0
    a_pos = blob.add(pos, _FLOAT, "VEC3", _ARRAY, minmax=True)
    a_jnt = blob.add(jnt, _USHORT, "VEC4", _ARRAY)
    a_wts = blob.add(wts, _FLOAT, "VEC4", _ARRAY)
    a_idx = blob.add(idx, _USHORT, "SCALAR", _ELEMENTS)
    gltf.meshes.append(g.Mesh(name="mannequin", primitives=[g.Primitive(
        attributes=g.Attributes(POSITION=a_pos, JOINTS_0=a_jnt, WEIGHTS_0=a_wts), indices=a_idx)]))
    # Inverse bind matrices: the rest frames are translations only; glTF matrices are column-major.
    ibm = np.tile(np.eye(4, dtype=np.float32), (J, 1, 1))
    ibm[:, :3, 3] = -rest
    a_ibm = blob.add(np.transpose(ibm, (0, 2, 1)).reshape(J, 16).astype(np.float32), _FLOAT, "MAT4")
    gltf.skins.append(g.Skin(name="humanoid", joints=list(range(J)), skeleton=0, inverseBindMatrices=a_ibm))
    gltf.nodes.append(g.Node(name="mannequin", mesh=0, skin=0))
    gltf.scenes.append(g.Scene(name="avatar", nodes=[0, J]))
    gltf.scene = 0
    rot = rotations_in_skeleton_order(motion, skeleton)
    _add_animation(gltf, blob, motion.fps, motion.num_frames, {j: rot[:, j] for j in range(J)},
                   {0: motion.root_position}, name)
    blob.finish()
    return gltf


def write_gltf(path: str | os.PathLike[str], motion: BodyMotion, skeleton: Skeleton = HUMANOID) -> Path:
    """Write the mannequin and the motion as a binary glTF (.glb), atomically."""
    return save_glb(motion_to_gltf(motion, skeleton), path)


# --------------------------------------------------------------------------------------------------
# Writing into a given avatar
# --------------------------------------------------------------------------------------------------


def humanoid_nodes(gltf: GLTF2, skeleton: Skeleton = HUMANOID) -> dict[str, int]:
    """Our bone name -> node index, from the VRM 1.0 / 0.x humanoid extension, else from node names."""
    ext = gltf.extensions or {}
    out: dict[str, int] = {}
    if "VRMC_vrm" in ext:
        for bone, v in ext["VRMC_vrm"].get("humanoid", {}).get("humanBones", {}).items():
            out[bone] = int(v["node"])
    elif "VRM" in ext:
        for v in ext["VRM"].get("humanoid", {}).get("humanBones", []):
            out[v["bone"]] = int(v["node"])
    if not out:
        from .bvh import map_bone_names

        names = [n.name or f"node{i}" for i, n in enumerate(gltf.nodes)]
        parents = [-1] * len(names)
        for i, n in enumerate(gltf.nodes):
            for c in n.children or []:
                parents[c] = i
        lower = {nm.lower(): i for i, nm in enumerate(names)}
        for bone in skeleton.joints:  # exact VRM or Unity names first ...
            for cand in (bone, UNITY_BONES[bone]):
                if cand.lower() in lower:
                    out[bone] = lower[cand.lower()]
                    break
        used = set(out.values())
        for bone, node in map_bone_names(names, parents, skeleton).items():  # ... then the name heuristics
            if bone not in out and node not in used:  # (Mixamo, Blender, CC, Rigify: docs/render.md)
                out[bone] = node
                used.add(node)
    return {k: v for k, v in out.items() if k in skeleton.joints and 0 <= v < len(gltf.nodes)}


def avatar_faces_minus_z(gltf: GLTF2, mapping: dict[str, int], world: list[np.ndarray]) -> bool:
    """Whether the avatar faces -Z (VRM 0.x does; VRM 1.0 and our convention face +Z).

    Read from the toes (in front of the ankles) when both are mapped, else from the VRM version.
    """
    for side in ("left", "right"):
        if side + "Toes" in mapping and side + "Foot" in mapping:
            dz = world[mapping[side + "Toes"]][2, 3] - world[mapping[side + "Foot"]][2, 3]
            if abs(dz) > 1e-4:
                return bool(dz < 0)
    ext = gltf.extensions or {}
    return "VRM" in ext and "VRMC_vrm" not in ext


def add_animation_to_avatar(gltf: GLTF2, motion: BodyMotion, skeleton: Skeleton = HUMANOID,
                            name: str = "gesture") -> GLTF2:
    """Add the motion as an animation to a loaded avatar (pygltflib.GLTF2 with one embedded buffer).

    Our rotations are world-space changes from a T-pose, so each matched node gets its rest world rotation
    pre-multiplied by our joint's world rotation (the VRM "normalised bone" retargeting); an A-pose file's arm
    bones are first aligned to the T-pose (avatar.rig.retarget); one facing -Z (VRM 0.x) gets the motion turned by
    180 degrees about Y. The hips move by our root displacement scaled to the avatar's hip height. Unmatched
    nodes keep their rest pose.
    """
    mapping = humanoid_nodes(gltf, skeleton)
    if "hips" not in mapping:
        raise InputError("the avatar has no recognisable hips node (need a VRM humanoid or named bones)")
    if len(gltf.buffers) != 1 or gltf.buffers[0].uri:
        raise InputError("only binary glTF (.glb/.vrm) avatars with one embedded buffer are supported")
    n_nodes = len(gltf.nodes)
    parent = [-1] * n_nodes
    for i, nd in enumerate(gltf.nodes):
        for c in nd.children or []:
            parent[c] = i
    local = [node_local(nd) for nd in gltf.nodes]
    world: list[np.ndarray | None] = [None] * n_nodes

    def world_of(i: int) -> np.ndarray:
        if world[i] is None:
            world[i] = local[i] if parent[i] < 0 else world_of(parent[i]) @ local[i]
        return world[i]  # type: ignore[return-value]

    for i in range(n_nodes):
        world_of(i)
    turn = avatar_faces_minus_z(gltf, mapping, world)  # type: ignore[arg-type]
    align = rest_alignment(np.array([w[:3, 3] for w in world]), mapping, turn, skeleton)  # type: ignore[index]
    rest_world_rot = {i: matrix_to_quat(align[i].T @ _unscaled(world[i][:3, :3]) if i in align  # type: ignore[index]
                                        else _unscaled(world[i][:3, :3])) for i in range(n_nodes)}  # type: ignore[index]
    rot = rotations_in_skeleton_order(motion, skeleton)
    _, g_ours = fk(rot, motion.root_position, skeleton)
    T = motion.num_frames
    if turn:  # conjugate by a half turn about Y: our +Z-facing motion for a -Z-facing rig
        y180 = np.array([0.0, 1.0, 0.0, 0.0])
        g_ours = quat_mul(quat_mul(np.broadcast_to(y180, g_ours.shape), g_ours),
                          np.broadcast_to(quat_inv(y180), g_ours.shape))
    node_to_bone = {v: k for k, v in mapping.items()}
    # Animated world rotations, parents before children (visit order from the roots).
    order: list[int] = []
    stack = [i for i in range(n_nodes) if parent[i] < 0][::-1]
    while stack:
        i = stack.pop()
        order.append(i)
        stack.extend((gltf.nodes[i].children or [])[::-1])
    w_t: dict[int, np.ndarray] = {}
    node_rot: dict[int, np.ndarray] = {}
    for i in order:
        p = parent[i]
        wp = w_t[p] if p >= 0 else identity_quat(T)
        if i in node_to_bone:
            w = quat_mul(g_ours[:, skeleton.index(node_to_bone[i])], np.broadcast_to(rest_world_rot[i], (T, 4)))
            node_rot[i] = quat_mul(quat_inv(wp), w)
            w_t[i] = w
        else:
            w_t[i] = quat_mul(wp, np.broadcast_to(matrix_to_quat(_unscaled(local[i][:3, :3])), (T, 4)))
    hips = mapping["hips"]
    hw = world[hips]  # type: ignore[index]
    ours_h = skeleton.rest_positions[0, 1]
    k = float(hw[1, 3]) / ours_h if hw[1, 3] > 1e-3 else 1.0
    delta = (motion.root_position.astype(np.float64) - skeleton.rest_positions[0]) * k
    if turn:
        delta = delta * np.array([-1.0, 1.0, -1.0])
    new_world = hw[:3, 3][None] + delta
    pw = world[parent[hips]] if parent[hips] >= 0 else np.eye(4)
    inv = np.linalg.inv(pw)
    trans = (inv[:3, :3] @ new_world.T).T + inv[:3, 3]
    blob = BufferWriter(gltf, gltf.binary_blob() or b"")
    _add_animation(gltf, blob, motion.fps, T, node_rot, {hips: trans}, name)
    blob.finish()
    return gltf


def _unscaled(m: np.ndarray) -> np.ndarray:
    """The rotation part of a 3x3 matrix that may carry scale."""
    u, _, vt = np.linalg.svd(m)
    r = u @ vt
    if np.linalg.det(r) < 0:
        u[:, -1] *= -1
        r = u @ vt
    return r


def write_animation_into(avatar: str | os.PathLike[str], motion: BodyMotion, out: str | os.PathLike[str],
                         skeleton: Skeleton = HUMANOID) -> Path:
    """Read an avatar .glb/.vrm, add the motion as an animation and write the result to `out` atomically."""
    from avatar.gltf.document import load_glb  # pygltflib's own decoder takes 0.3 s for our avatar

    p = Path(avatar)
    if not p.is_file():
        raise InputError(f"avatar file not found: {p}")
    try:
        gltf = load_glb(p)
    except Exception as exc:  # noqa: BLE001 - pygltflib raises assorted errors on broken files
        raise InputError(f"{p.name} is not a readable binary glTF: {exc}") from None
    return save_glb(add_animation_to_avatar(gltf, motion, skeleton), out)
