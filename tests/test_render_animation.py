"""Head pose and gaze on the avatar, and the animated .glb export (face morph weights + body + eyes)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from avatar.types import FACE_CHANNELS, VAD, BodyMotion, FaceMotion

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT / "weights" / "avatars" / "default.glb"


def _face(n: int, **channels: float) -> FaceMotion:
    frames = np.zeros((n, len(FACE_CHANNELS)), dtype=np.float32)
    for name, v in channels.items():
        frames[:, FACE_CHANNELS.index(name)] = v
    return FaceMotion(fps=30.0, frames=frames)


def _body(n: int) -> BodyMotion:
    from avatar.rig.skeleton import HUMANOID

    rot = np.zeros((n, len(HUMANOID.joints), 4), dtype=np.float32)
    rot[..., 3] = 1.0
    return BodyMotion(fps=30.0, joints=HUMANOID.joints, rotations=rot, root_position=np.zeros((n, 3), np.float32))


def test_ypr_signs_follow_the_face_convention():
    from avatar.rig.rotations import quat_apply
    from avatar.render.animation import ypr_quat

    fwd = np.array([0.0, 0.0, 1.0])
    up = np.array([0.0, 1.0, 0.0])
    # yaw > 0 turns to the avatar's own left (+X), pitch > 0 tips down, roll > 0 tilts to its right (-X).
    assert quat_apply(ypr_quat(np.array(0.3), np.array(0.0)), fwd)[0] > 0.2
    assert quat_apply(ypr_quat(np.array(0.0), np.array(0.3)), fwd)[1] < -0.2
    assert quat_apply(ypr_quat(np.array(0.0), np.array(0.0), np.array(0.3)), up)[0] < -0.2


def test_head_pose_is_composed_onto_neck_and_head_only():
    from avatar.render.animation import with_face_pose

    body = _body(10)
    posed = with_face_pose(body, _face(10, headYaw=0.2))
    j, k = body.joints.index("head"), body.joints.index("neck")
    assert not np.allclose(posed.rotations[:, j], body.rotations[:, j])
    assert not np.allclose(posed.rotations[:, k], body.rotations[:, k])
    others = [i for i in range(len(body.joints)) if i not in (j, k)]
    np.testing.assert_array_equal(posed.rotations[:, others], body.rotations[:, others])
    assert np.allclose(np.linalg.norm(posed.rotations, axis=-1), 1.0, atol=1e-5)


def test_face_is_resampled_to_the_body_frames():
    from avatar.render.motion import resample_face

    face = _face(30)
    face.frames[:, 0] = np.linspace(0, 1, 30)
    out = resample_face(face, 60, 60.0)
    assert out.shape == (60, len(FACE_CHANNELS))
    assert out[0, 0] == pytest.approx(0.0) and out[-1, 0] == pytest.approx(1.0, abs=0.05)


def test_animated_glb_carries_morph_weights_gaze_and_bones(tmp_path):
    import pygltflib

    from avatar.render.animation import write_animated_avatar
    from avatar.render.avatar_file import load_avatar

    av = load_avatar(DEFAULT)
    n = 12
    face = _face(n, jawOpen=0.7, leftEyeYaw=0.2, rightEyeYaw=0.2)
    out = write_animated_avatar(av, face, _body(n), tmp_path / "anim.glb")
    g = pygltflib.GLTF2().load_binary(str(out))
    anim = g.animations[-1]
    paths = {c.target.path for c in anim.channels}
    assert {"rotation", "translation", "weights"} <= paths
    eye_nodes = {c.target.node for c in anim.channels if c.target.path == "rotation"}
    assert set(av.eyes.values()) <= eye_nodes
    wch = next(c for c in anim.channels if c.target.path == "weights")
    node = g.nodes[wch.target.node]
    targets = len(g.meshes[node.mesh].primitives[0].targets)
    acc = g.accessors[anim.samplers[wch.sampler].output]
    assert acc.count == n * targets
    # the jawOpen target is driven at 0.7 on every frame
    view = g.bufferViews[acc.bufferView]
    blob = g.binary_blob()
    w = np.frombuffer(blob, dtype=np.float32, count=acc.count,
                      offset=(view.byteOffset or 0) + (acc.byteOffset or 0)).reshape(n, targets)
    mesh, target, _ = av.arkit["jawOpen"][0]
    assert mesh == node.mesh
    assert np.allclose(w[:, target], 0.7, atol=1e-5)
    assert not list(tmp_path.glob(".*part"))  # atomic: no temporary left


def test_animated_glb_refuses_a_wrong_suffix(tmp_path):
    from avatar.errors import InputError
    from avatar.render.animation import write_animated_avatar
    from avatar.render.avatar_file import load_avatar

    with pytest.raises(InputError):
        write_animated_avatar(load_avatar(DEFAULT), _face(3), _body(3), tmp_path / "x.fbx")
    assert not list(tmp_path.iterdir())


def test_teacher_motion_exports_too(tmp_path):
    """Real motions from the two teachers (no trained weights needed) make a valid animated avatar."""
    import pygltflib

    from avatar.face.teacher import teacher_motion as face_teacher
    from avatar.gesture.prosody import prosody_features
    from avatar.gesture.teacher import teacher_motion as body_teacher
    from avatar.render.animation import write_animated_avatar
    from avatar.render.avatar_file import load_avatar
    from avatar.tts import get_backend

    speech = get_backend("espeak").synthesize("Hello there, friend.", VAD(0.5, 0.3, 0.0))
    face = face_teacher(speech.timeline, VAD(0.5, 0.3, 0.0), fps=30.0, seed=0)
    feats = prosody_features(speech.audio, speech.sample_rate, 30.0, timeline=speech.timeline)
    body = body_teacher(feats, VAD(0.5, 0.3, 0.0), seed=0, timeline=speech.timeline)
    out = write_animated_avatar(load_avatar(DEFAULT), face, body, tmp_path / "t.glb")
    g = pygltflib.GLTF2().load_binary(str(out))
    times = g.accessors[g.animations[-1].samplers[0].input]
    assert times.max[0] == pytest.approx((body.num_frames - 1) / 30.0, abs=1e-4)


@pytest.mark.parametrize("name", ["default-female", "default-male", "toon"])
def test_morph_weight_tracks_are_the_per_frame_weights_to_the_bit(name):
    # animated_gltf takes the whole performance's morph weights at once; they must be Avatar.morph_weights' numbers.
    from avatar.errors import InputError
    from avatar.render.animation import morph_weight_tracks
    from avatar.render.avatars import resolve_avatar

    av = resolve_avatar(name)
    rows = np.random.default_rng(7).uniform(-0.3, 1.4, (40, 52))  # clipped on both sides too
    rows[::5] = 0.0
    per_frame = [av.morph_weights(r) for r in rows]
    tracks = morph_weight_tracks(av, rows)
    assert sorted(tracks) == sorted({k for fr in per_frame for k in fr}) and len(tracks) >= 52
    for key, track in tracks.items():
        assert np.array_equal(track, [fr.get(key, 0.0) for fr in per_frame]), key
    rows[3, 7] = np.nan
    with pytest.raises(InputError, match="52 finite ARKit weights"):
        morph_weight_tracks(av, rows)
