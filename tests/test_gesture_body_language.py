"""Body-language layer (issue 24): posture from VAD in the documented directions, continuous in VAD; weight
shifts with planted feet; arousal scaling; determinism; the teacher and the model path both carry it."""

from __future__ import annotations

import numpy as np
import pytest

from avatar.emotion.labels import LABEL_VAD
from avatar.gesture import checks
from avatar.gesture.body_language import body_language, scale_by_arousal, weight_shift
from avatar.gesture.generate import load_gesture_model, motion_from_features
from avatar.gesture.prosody import prosody_features
from avatar.gesture.sampling import generate
from avatar.gesture.signals import syllable_audio, syllable_times
from avatar.gesture.teacher import teacher_motion, vad_per_frame
from avatar.rig.kinematics import forward_kinematics, plant_feet, rotations_in_skeleton_order
from avatar.rig.skeleton import FOOT_JOINTS, HUMANOID
from avatar.types import VAD, BodyMotion

SR = 16000


@pytest.fixture(scope="module")
def feat():  # noqa: ANN201
    dur = 6.0
    return prosody_features(syllable_audio(syllable_times(7, dur), dur, SR, seed=3), SR, 30.0)


@pytest.fixture(scope="module")
def teacher_postures(feat) -> dict:  # noqa: ANN001
    return {e: checks.posture_measures(teacher_motion(feat, LABEL_VAD[e], seed=0))
            for e in ("neutral", "happy", "sad", "angry", "fearful")}


def _directions(m: dict) -> None:
    assert m["sad"]["head_pitch"] - m["happy"]["head_pitch"] >= 10  # sad: head down; joy: head up
    assert m["sad"]["head_pitch"] > m["neutral"]["head_pitch"] > m["happy"]["head_pitch"]
    assert m["sad"]["chest_flex"] > m["neutral"]["chest_flex"] > m["happy"]["chest_flex"]  # slumped vs lifted
    assert m["fearful"]["shoulder_cm"] > m["neutral"]["shoulder_cm"] > m["sad"]["shoulder_cm"]  # raised vs dropped
    assert m["angry"]["shoulder_cm"] > m["neutral"]["shoulder_cm"]
    assert m["angry"]["lean_cm"] > m["neutral"]["lean_cm"] > m["fearful"]["lean_cm"]  # leaning in vs back
    assert m["happy"]["elbow_spread_cm"] > m["neutral"]["elbow_spread_cm"] > m["sad"]["elbow_spread_cm"]


def test_teacher_posture_follows_the_documented_directions(teacher_postures: dict) -> None:
    _directions(teacher_postures)


def test_model_output_gets_the_posture_too(feat) -> None:  # noqa: ANN001
    net = load_gesture_model()
    meas = {e: checks.posture_measures(motion_from_features(net, feat, vad_per_frame(LABEL_VAD[e], feat.num_frames,
                                                                                      30.0), seed=0))
            for e in ("neutral", "happy", "sad", "angry", "fearful")}
    _directions(meas)
    # A model trained on the body-language teacher (config flag) gets no body-language layer: its samples get
    # the arousal scaling every model gets, then the feet are planted.
    net.config = net.config.model_copy(update={"body_language": True})
    vad = vad_per_frame(LABEL_VAD["sad"], feat.num_frames, 30.0)
    a = motion_from_features(net, feat, vad, seed=2, repertoire=False)
    b = generate(net, feat, vad, seed=2, plant=False)
    rot = scale_by_arousal(rotations_in_skeleton_order(b).astype(np.float64), (vad[:, 1] + 1.0) / 2.0, b.fps,
                           low=0.45, span=1.0)
    expected = plant_feet(BodyMotion(fps=b.fps, joints=HUMANOID.joints, rotations=rot.astype(np.float32),
                                     root_position=b.root_position))
    np.testing.assert_allclose(a.rotations, expected.rotations, atol=1e-6)


def _still(n: int = 300, fps: float = 30.0) -> BodyMotion:
    """A standing figure with the arms down that does not move (so every motion seen is the layer's)."""
    from avatar.rig.rotations import euler_to_quat, identity_quat, quat_mirror_x

    rot = identity_quat(n, len(HUMANOID.joints))
    arm = euler_to_quat(np.array([-75.0, 0.0, 0.0]), "ZXY")  # Z lowers the left arm
    rot[:, HUMANOID.index("leftUpperArm")] = arm
    rot[:, HUMANOID.index("rightUpperArm")] = quat_mirror_x(arm)
    root = np.broadcast_to(HUMANOID.rest_positions[0] - [0, 0.006, 0], (n, 3)).copy()
    return BodyMotion(fps=fps, joints=HUMANOID.joints, rotations=rot, root_position=root)


def test_posture_is_continuous_in_vad() -> None:
    m = _still(60)
    grid = np.linspace(-1.0, 1.0, 41)
    pitch = np.array([checks.posture_measures(body_language(m, np.tile([v, -0.3, -0.3], (60, 1)),
                                                            idle=False))["head_pitch"] for v in grid])
    steps = np.diff(pitch)
    assert (steps < 0).all()  # valence lifts the head all the way, step by step
    assert np.abs(steps).max() < 2.0  # no jump anywhere (a label-based posture would jump at a boundary)
    assert pitch[0] - pitch[-1] > 15
    # Dominance: taller and wider (head up, elbows out) at the same valence and arousal.
    lo, hi = (checks.posture_measures(body_language(m, np.tile([0.0, 0.0, d], (60, 1)), idle=False))
              for d in (-0.8, 0.8))
    assert hi["head_pitch"] < lo["head_pitch"] - 3 and hi["elbow_spread_cm"] > lo["elbow_spread_cm"] + 2


def test_weight_shifts_move_the_hips_with_the_feet_planted() -> None:
    m = _still(600)  # 20 s
    out = body_language(m, np.zeros((600, 3)), seed=4)
    x = out.root_position[:, 0]
    assert np.ptp(x) >= 0.02  # at least 2 cm of lateral weight shift over 20 s
    # Several shifts, from one side to the other, not one drift.
    crossings = np.sum(np.diff(np.sign(x - HUMANOID.rest_positions[0, 0] + 1e-9)) != 0)
    assert crossings >= 2
    hips_roll = checks.joint_angles(out)[:, HUMANOID.index("hips"), 2]
    assert np.ptp(hips_roll) > 2.0  # the pelvis tilts with the weight
    pos = forward_kinematics(out)
    feet = pos[:, [HUMANOID.index(j) for j in FOOT_JOINTS]]
    assert np.abs(feet - feet[:1]).max() < 1e-3  # the feet do not move at all
    assert checks.foot_sliding(out) < 0.01
    assert checks.nan_count(out) == 0 and not checks.joint_limit_violations(out)
    # Breathing: the chest keeps moving even when nothing else does.
    chest = checks.joint_angles(out)[:, HUMANOID.index("upperChest"), 0]
    assert np.ptp(chest[:150]) > 0.5


def test_weight_shifts_scale_with_arousal() -> None:
    t = np.arange(900) / 30.0
    calm = weight_shift(t, np.full(900, 0.1), np.random.default_rng(0))
    excited = weight_shift(t, np.full(900, 0.9), np.random.default_rng(0))
    speed = [np.abs(np.diff(c)).sum() for c in (calm, excited)]
    assert speed[1] > 1.5 * speed[0]


def test_arousal_gain_scales_gesture_speed(feat) -> None:  # noqa: ANN001
    base = teacher_motion(feat, VAD(0.0, 0.0, 0.0), seed=1)
    n = base.num_frames
    lo = body_language(base, np.tile([0.0, -0.8, 0.0], (n, 1)), seed=1, arousal_gain=True)
    hi = body_language(base, np.tile([0.0, 0.8, 0.0], (n, 1)), seed=1, arousal_gain=True)
    assert checks.mean_joint_speed(hi) > 1.3 * checks.mean_joint_speed(lo)
    assert checks.foot_sliding(hi) < 0.01 and checks.nan_count(hi) == 0


def test_determinism_with_a_seed(feat) -> None:  # noqa: ANN001
    m = _still(300)
    vad = np.tile(LABEL_VAD["angry"].as_array(), (300, 1))
    a, b, c = body_language(m, vad, seed=9), body_language(m, vad, seed=9), body_language(m, vad, seed=10)
    assert np.array_equal(a.rotations, b.rotations) and np.array_equal(a.root_position, b.root_position)
    assert np.abs(a.root_position - c.root_position).max() > 0.002  # another seed shifts at other times
    t1, t2 = teacher_motion(feat, LABEL_VAD["sad"], seed=3), teacher_motion(feat, LABEL_VAD["sad"], seed=3)
    assert np.array_equal(t1.rotations, t2.rotations) and np.array_equal(t1.root_position, t2.root_position)


def test_bad_vad_length_is_refused() -> None:
    with pytest.raises(ValueError, match="VAD has 10 frames, the motion 30"):
        body_language(_still(30), np.zeros((10, 3)))


def _waving(n: int, fps: float = 30.0) -> BodyMotion:
    """The still figure with both elbows flexing 20 degrees at 1.5 Hz: a motion that ignores VAD."""
    from avatar.rig.rotations import euler_to_quat, quat_mirror_x

    m = _still(n, fps)
    rot = m.rotations.copy()
    flex = -40.0 + 20.0 * np.sin(2 * np.pi * 1.5 * np.arange(n) / fps)
    elbow = euler_to_quat(np.stack([flex, np.zeros(n), np.zeros(n)], -1), "YXZ")  # Y < 0 flexes the elbow
    rot[:, HUMANOID.index("leftLowerArm")] = elbow
    rot[:, HUMANOID.index("rightLowerArm")] = quat_mirror_x(elbow)
    return BodyMotion(fps=fps, joints=HUMANOID.joints, rotations=rot, root_position=m.root_position)


@pytest.mark.parametrize("body_language_model", [False, True])
def test_every_model_gets_the_arousal_scaling(feat, monkeypatch, body_language_model: bool) -> None:  # noqa: ANN001
    # The sampler is replaced by a motion that does not change with VAD: what speeds it up is the path's scaling,
    # the same for weights that learned the body-language teacher and for older ones.
    import avatar.gesture.sampling as sampling

    monkeypatch.setattr(sampling, "generate", lambda net, f, vad, **kw: _waving(f.num_frames))
    net = load_gesture_model()
    net.config = net.config.model_copy(update={"body_language": body_language_model})
    speed = {a: checks.mean_joint_speed(motion_from_features(
        net, feat, vad_per_frame(VAD(0.0, a, 0.0), feat.num_frames, 30.0), seed=0, repertoire=False, smooth=1))
        for a in (-0.8, 0.8)}
    assert speed[0.8] / speed[-0.8] > 1.8  # gain 0.45 + 1.0 e: 1.35 at +0.8 against 0.55 at -0.8
