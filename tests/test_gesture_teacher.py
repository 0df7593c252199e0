"""Prosody features, the procedural teacher and the physical-sanity checks, on synthetic speech-like audio."""

from __future__ import annotations

import numpy as np
import pytest

from avatar.errors import InputError
from avatar.gesture import checks
from avatar.gesture.prosody import FEATURE_NAMES, prosody_features
from avatar.rig.rotations import euler_to_quat
from avatar.gesture.signals import syllable_audio, syllable_times
from avatar.rig.hands import FINGER_BONES
from avatar.rig.skeleton import HUMANOID
from avatar.gesture.teacher import beat_candidates, minjerk_curve, teacher_motion
from avatar.types import VAD, BodyMotion, EmotionSegment, EmotionTrack, Phoneme, Timeline, Word

SR = 16000
DUR = 8.0


@pytest.fixture(scope="module")
def clips() -> dict:
    """Two clips with different, known syllable onsets, and their prosody at 30 fps."""
    out = {}
    for name, seed in (("a", 11), ("b", 22)):
        times = syllable_times(seed, DUR)
        audio = syllable_audio(times, DUR, SR, seed=seed)
        out[name] = {"times": times, "audio": audio, "feat": prosody_features(audio, SR, 30.0)}
    return out


@pytest.fixture(scope="module")
def motions(clips: dict) -> dict:
    """Teacher motion for clip a at low, neutral and high arousal (3 seeds each)."""
    feat = clips["a"]["feat"]
    return {a: [teacher_motion(feat, VAD(0.0, a, 0.0), seed=s) for s in range(3)] for a in (-0.8, 0.0, 0.8)}


def test_prosody_finds_the_onsets_and_accents(clips: dict) -> None:
    c = clips["a"]
    feat = c["feat"]
    assert feat.num_frames == round(DUR * 30)
    d = np.abs(c["times"][:, None] - feat.onsets[None]).min(axis=1)
    assert (d < 0.03).mean() > 0.9  # nearly every syllable found within 30 ms
    assert len(feat.onsets) <= len(c["times"]) * 1.2  # and few extra
    # Accents sit on the raised syllables (every third, starting with the first).
    accented = c["times"][::3]
    da = np.abs(feat.accents[:, None] - accented[None]).min(axis=1)
    assert len(feat.accents) >= len(accented) // 2 and (da < 0.25).mean() > 0.8
    assert feat.matrix().shape == (feat.num_frames, len(FEATURE_NAMES))
    assert np.isfinite(feat.matrix()).all()
    voiced_f0 = feat.f0[feat.voiced]
    assert voiced_f0.size and 120 < np.median(voiced_f0) < 200
    assert 0.2 < feat.speech.mean() < 0.95


def test_prosody_rejects_bad_audio() -> None:
    with pytest.raises(InputError):
        prosody_features(np.zeros(0, np.float32), SR)
    with pytest.raises(InputError):
        prosody_features(np.full(1000, np.nan, np.float32), SR)
    silent = prosody_features(np.zeros(SR, np.float32), SR)
    assert silent.onsets.size == 0 and not silent.voiced.any()


def test_teacher_is_physically_sane(motions: dict) -> None:
    for ms in motions.values():
        for m in ms:
            assert checks.nan_count(m) == 0
            assert checks.joint_limit_violations(m) == {}
            assert checks.foot_sliding(m) < 1.0  # cm/s
            assert checks.hand_in_torso(m) == 0.0
            mean_j, p95_j = checks.jerk(m)
            assert p95_j < 300.0  # m/s^3; white-noise jitter of 1 degree is far above (next test)


def test_checks_catch_bad_motion(motions: dict) -> None:
    m = motions[0.0][0]
    rng = np.random.default_rng(0)
    noisy_rot = euler_to_quat(rng.normal(0, 3, (m.num_frames, len(m.joints), 3)), "XYZ")
    from avatar.rig.rotations import quat_mul

    noisy = BodyMotion(m.fps, m.joints, quat_mul(m.rotations, noisy_rot), m.root_position)
    assert checks.jerk(noisy)[1] > 3 * checks.jerk(m)[1]
    # Sliding: the root walks 10 cm/s with the legs as they are -> the feet slide.
    walk = m.root_position + np.linspace(0, 0.1 * m.duration, m.num_frames)[:, None] * [1.0, 0.0, 0.0]
    assert checks.foot_sliding(BodyMotion(m.fps, m.joints, m.rotations, walk)) > 5.0
    # Elbows bent 150 degrees with the arms forward: the hands cross the chest.
    rot = m.rotations.copy()
    for side, s in (("left", 1), ("right", -1)):
        up = np.tile([0, s * -60.0, s * -70.0], (m.num_frames, 1))
        rot[:, HUMANOID.index(side + "UpperArm")] = euler_to_quat(up, "XYZ")
        rot[:, HUMANOID.index(side + "LowerArm")] = euler_to_quat(np.tile([0, s * -150.0, 0], (m.num_frames, 1)), "XYZ")
    crossed = BodyMotion(m.fps, m.joints, rot, m.root_position)
    assert checks.hand_in_torso(crossed) > 0.5
    # Limits: a head turned 120 degrees.
    rot2 = m.rotations.copy()
    rot2[:, HUMANOID.index("head")] = euler_to_quat(np.tile([0, 120.0, 0], (m.num_frames, 1)), "XYZ")
    assert "head" in checks.joint_limit_violations(BodyMotion(m.fps, m.joints, rot2, m.root_position))


def test_arousal_speeds_up_motion(motions: dict) -> None:
    hi = np.mean([checks.mean_joint_speed(m) for m in motions[0.8]])
    lo = np.mean([checks.mean_joint_speed(m) for m in motions[-0.8]])
    assert hi >= 1.5 * lo


def test_strokes_land_on_the_true_audio_beats(clips: dict, motions: dict) -> None:
    for a in (0.0, 0.8):
        true = np.mean([checks.beat_alignment(m, clips["a"]["feat"].onsets) for m in motions[a]])
        other = np.mean([checks.beat_alignment(m, clips["b"]["feat"].onsets) for m in motions[a]])
        assert true > other + 0.05, (a, true, other)


def test_length_seed_and_inputs(clips: dict) -> None:
    c = clips["a"]
    m1 = teacher_motion(c["audio"], VAD(0.3, 0.2, 0.1), sr=SR, seed=5)
    assert abs(m1.duration - DUR) < 0.1
    assert m1.joints == HUMANOID.joints + FINGER_BONES  # body bones, then the hand shapes' finger bones
    m2 = teacher_motion(c["audio"], VAD(0.3, 0.2, 0.1), sr=SR, seed=5)
    assert np.array_equal(m1.rotations, m2.rotations) and np.array_equal(m1.root_position, m2.root_position)
    m3 = teacher_motion(c["audio"], VAD(0.3, 0.2, 0.1), sr=SR, seed=6)
    assert np.abs(m1.rotations - m3.rotations).max() > 0.05
    # Other audio lengths and fps; an emotion track; a per-frame VAD; a timeline.
    short = teacher_motion(c["audio"][: int(2.345 * SR)], None, sr=SR, fps=25.0)
    assert abs(short.duration - 2.345) < 0.1 and short.fps == 25.0
    track = EmotionTrack(segments=[EmotionSegment(start=0, end=4, vad=VAD(-0.8, -0.8, -0.5)),
                                   EmotionSegment(start=4, end=DUR, vad=VAD(0.8, 0.8, 0.5))])
    mt = teacher_motion(c["feat"], track, seed=1)
    half = mt.num_frames // 2
    spine_x = checks.joint_angles(mt)[:, HUMANOID.index("spine"), 0]
    assert spine_x[: half - 15].mean() > spine_x[half + 15:].mean() + 3  # slumped, then upright
    per_frame = np.tile([0.1, 0.2, 0.3], (c["feat"].num_frames, 1))
    assert teacher_motion(c["feat"], per_frame).num_frames == c["feat"].num_frames
    tl = Timeline(sample_rate=SR, duration=DUR, words=[Word(word="hello", start=float(t), end=float(t) + 0.2)
                                                      for t in c["times"][::2]])
    assert checks.nan_count(teacher_motion(c["feat"], None, timeline=tl)) == 0
    with pytest.raises(InputError):
        teacher_motion(c["audio"], None)  # raw audio needs sr
    with pytest.raises(InputError):
        teacher_motion(c["feat"], [0.0, 2.0, 0.0])
    with pytest.raises(InputError):
        teacher_motion(c["feat"], [0.0, float("nan"), 0.0])
    with pytest.raises(InputError):
        teacher_motion(c["feat"], None, seed=-1)


def test_minjerk_curve_rests_on_keys() -> None:
    t = np.linspace(0, 2, 201)
    y = minjerk_curve(np.array([0.5, 1.0, 1.5]), np.array([0.0, 1.0, 0.2]), t)
    assert y[0] == 0.0 and y[-1] == pytest.approx(0.2)
    assert y[100] == pytest.approx(1.0)
    v = np.gradient(y, t)
    assert abs(v[100]) < 1e-2 and abs(v[50]) < 1e-2  # zero velocity on the keys
    assert y.max() <= 1.0 + 1e-9  # no overshoot


def test_timeline_stress_marks_boost_beats(clips: dict) -> None:
    feat, times = clips["a"]["feat"], clips["a"]["times"]
    base_t, base_w = beat_candidates(feat)
    k = int(np.argmax(np.diff(base_t)))
    lone = float(base_t[k] + base_t[k + 1]) / 2  # mid-way in the longest gap between onsets
    # Primary stress on the 2nd syllable, secondary on the 4th, and one stressed vowel where audio has no onset.
    phon = [Phoneme(phoneme="ˈa", start=float(times[1]), end=float(times[1]) + 0.1, viseme="aa"),
            Phoneme(phoneme="ˌo", start=float(times[3]), end=float(times[3]) + 0.1, viseme="oh"),
            Phoneme(phoneme="t", start=float(times[3]) + 0.1, end=float(times[3]) + 0.15, viseme="DD"),
            Phoneme(phoneme="ˈe", start=lone, end=lone + 0.1, viseme="E")]
    tl = Timeline(sample_rate=SR, duration=DUR, phonemes=phon)
    t, w = beat_candidates(feat, tl)
    assert len(t) == len(base_t) + 1  # the unmatched stressed vowel becomes a candidate
    near = lambda arr, x: int(np.argmin(np.abs(arr - x)))  # noqa: E731
    assert w[near(t, times[1])] == pytest.approx(base_w[near(base_t, times[1])] + 1.0)
    assert w[near(t, times[3])] == pytest.approx(base_w[near(base_t, times[3])] + 0.4)
    assert np.min(np.abs(t - lone)) < 1e-9
