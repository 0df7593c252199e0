"""The performance as a VRM Animation (`.vrma`, the VRMC_vrm_animation 1.0 extension), what VRM players retarget.

A VRM player (three-vrm, UniVRM) drives an avatar through its normalised humanoid bones and its expressions and
recomputes the raw nodes and morph weights from them every frame (three-vrm's `vrm.update()`), so an animation
of raw nodes and morph weights is overwritten there. A `.vrma` carries what those players read instead:

- a humanoid skeleton: one node per VRM bone (avatar.rig.skeleton.HUMANOID, T-pose, identity rest rotations,
  world-aligned frames), one rotation channel per bone (our BodyMotion rotations are already local changes from
  that T-pose, with the face's head pose shared over neck and head as in the video) and the hips' translation;
- expressions: one node per VRM 1.0 preset (aa ih ou ee oh, happy angry sad relaxed surprised, blink blinkLeft
  blinkRight), its translation's x is the weight (the spec's encoding), from avatar.face.rig.to_vrm;
- lookAt: a node under the head whose rotation is the gaze (yaw about +Y, then pitch about +X; mean of both
  eyes), which three-vrm turns into the avatar's own lookAt yaw/pitch.

The file holds no mesh: a player applies it to any VRM 1.0 or 0.x avatar (three-vrm's createVRMAnimationClip).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from avatar.errors import InputError
from avatar.types import BodyMotion, FaceMotion

#: VRM 1.0 presets the .vrma carries (the look* presets are the lookAt's job, not tracks).
VRMA_EXPRESSIONS: tuple[str, ...] = (
    "aa", "ih", "ou", "ee", "oh", "happy", "angry", "sad", "relaxed", "surprised", "blink", "blinkLeft", "blinkRight",
)


def vrma_gltf(face: FaceMotion, body: BodyMotion, name: str = "performance"):  # noqa: ANN201 - pygltflib.GLTF2
    """A pygltflib.GLTF2 holding the performance as VRMC_vrm_animation 1.0: humanoid rotations, hips translation,
    expression weights and gaze, sampled at the body's frame rate."""
    import pygltflib as g

    from avatar.face.rig import to_vrm
    from avatar.gltf.writer import FLOAT, BufferWriter
    from avatar.render.animation import with_face_pose, ypr_quat
    from avatar.render.motion import resample_face
    from avatar.rig.kinematics import rotations_in_skeleton_order
    from avatar.rig.rotations import quat_normalize
    from avatar.rig.skeleton import HUMANOID

    n, fps = body.num_frames, body.fps
    if n < 1:
        raise InputError("cannot export an empty motion")
    posed = with_face_pose(body, face)
    rot = quat_normalize(rotations_in_skeleton_order(posed, HUMANOID))
    gltf = g.GLTF2(asset=g.Asset(generator="avatar-engine", version="2.0"))
    blob = BufferWriter(gltf)
    J = len(HUMANOID.joints)
    kids = {j: [k for k, p in enumerate(HUMANOID.parents) if p == j] for j in range(J)}
    for j, bone in enumerate(HUMANOID.joints):
        gltf.nodes.append(g.Node(name=bone, translation=[float(v) for v in HUMANOID.offsets[j]],
                                 children=kids[j] or None))
    head = HUMANOID.index("head")
    look = len(gltf.nodes)
    gltf.nodes.append(g.Node(name="lookAt"))
    gltf.nodes[head].children = (gltf.nodes[head].children or []) + [look]
    # Expressions: face motion resampled to the body's frames, then the VRM presets (one emotion at a time).
    f = resample_face(face, n, fps)
    curves = to_vrm(FaceMotion(fps=fps, names=face.names, frames=f))
    expr_nodes: dict[str, int] = {}
    for e in VRMA_EXPRESSIONS:
        expr_nodes[e] = len(gltf.nodes)
        gltf.nodes.append(g.Node(name=f"expression_{e}"))
    gltf.scenes.append(g.Scene(name="vrma", nodes=[0, *expr_nodes.values()]))
    gltf.scene = 0
    times = blob.add((np.arange(n) / fps).astype(np.float32), FLOAT, "SCALAR", minmax=True)
    anim = g.Animation(name=name, samplers=[], channels=[])

    def channel(node: int, path: str, values: np.ndarray, kind: str) -> None:
        out = blob.add(np.ascontiguousarray(values, dtype=np.float32), FLOAT, kind)
        anim.samplers.append(g.AnimationSampler(input=times, output=out, interpolation="LINEAR"))
        anim.channels.append(g.AnimationChannel(sampler=len(anim.samplers) - 1,
                                                target=g.AnimationChannelTarget(node=node, path=path)))

    for j in range(J):
        channel(j, "rotation", rot[:, j], "VEC4")
    channel(0, "translation", posed.root_position, "VEC3")  # the hips' parent is the scene root
    ch = {c: i for i, c in enumerate(face.names)}
    yaw = (f[:, ch["leftEyeYaw"]] + f[:, ch["rightEyeYaw"]]) / 2.0  # one gaze for both eyes, as VRM's lookAt has
    pitch = (f[:, ch["leftEyePitch"]] + f[:, ch["rightEyePitch"]]) / 2.0
    channel(look, "rotation", quat_normalize(ypr_quat(yaw, pitch)), "VEC4")
    for e, node in expr_nodes.items():
        w = np.zeros((n, 3), dtype=np.float32)
        w[:, 0] = np.clip(curves[e], 0.0, 1.0)
        channel(node, "translation", w, "VEC3")
    gltf.animations.append(anim)
    gltf.extensionsUsed = ["VRMC_vrm_animation"]
    gltf.extensions = {"VRMC_vrm_animation": {
        "specVersion": "1.0",
        "humanoid": {"humanBones": {bone: {"node": j} for j, bone in enumerate(HUMANOID.joints)}},
        "expressions": {"preset": {e: {"node": node} for e, node in expr_nodes.items()}},
        "lookAt": {"node": look},
    }}
    blob.finish()
    return gltf


def write_vrma(face: FaceMotion, body: BodyMotion, out: str | os.PathLike[str]) -> Path:
    """Write the performance as a VRM Animation (.vrma, binary glTF), atomically."""
    from avatar.gltf.writer import save_glb

    return save_glb(vrma_gltf(face, body), out)
