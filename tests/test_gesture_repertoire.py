"""Gesture repertoire (issue 24): word-cued deictic and metaphoric gestures, beats, rest poses that change in
pauses, arousal scaling; poses where documented and inside the joint limits; deterministic; on the model path."""

from __future__ import annotations

import numpy as np
import pytest

from avatar.gesture import checks
from avatar.gesture.repertoire import (POSES, REST_POSES, apply_repertoire, is_question, plan_gestures,
                                       side_tracks)
from avatar.gesture.teacher import vad_per_frame
from avatar.rig.kinematics import fk, rotations_in_skeleton_order
from avatar.rig.rotations import euler_to_quat, identity_quat, quat_apply, quat_mirror_x
from avatar.rig.skeleton import HUMANOID
from avatar.types import VAD, BodyMotion, Phoneme, Timeline, Word

FPS = 30.0
CHANNELS = (("Shoulder", 1), ("Shoulder", 2), ("UpperArm", 0), ("UpperArm", 1), ("UpperArm", 2),
            ("LowerArm", 0), ("LowerArm", 1), ("Hand", 0), ("Hand", 1), ("Hand", 2))
#: Palm centres the module documents for its poses (left side, metres); IK error plus the clavicle cap < 4 cm.
TARGETS = {"loose": (0.20, 0.82, 0.04), "clasped": (0.03, 1.00, 0.17), "hip": (0.15, 1.00, 0.06),
           "self": (0.0, 1.31, 0.185), "point": (0.16, 1.30, 0.50), "offer": (0.22, 1.13, 0.38),
           "shrug": (0.33, 1.08, 0.22), "fear": (0.12, 1.34, 0.24), "wide": (0.58, 1.25, 0.20)}


def _timeline(sentences: list[str], word_s: float = 0.32, pause: float = 0.6) -> Timeline:
    """Words of `word_s` each, sentences apart by `pause`; every word gets a stressed vowel 0.05 s in."""
    words, phonemes, t = [], [], 0.3
    for sent in sentences:
        for w in sent.split():
            words.append(Word(word=w, start=t, end=t + word_s))
            phonemes.append(Phoneme(phoneme="ˈa", viseme="aa", start=t + 0.05, end=t + 0.2))
            t += word_s + 0.02
        t += pause
    return Timeline(sample_rate=16000, duration=t + 0.4, words=words, phonemes=phonemes)


def _speech(tl: Timeline) -> np.ndarray:
    n = int(round(tl.duration * FPS))
    t = np.arange(n) / FPS
    return np.any([(t >= w.start) & (t < w.end + 0.02) for w in tl.words], axis=0)


def _still(n: int) -> BodyMotion:
    rot = identity_quat(n, len(HUMANOID.joints))
    arm = euler_to_quat(np.array([-80.0, 0.0, 0.0]), "ZXY")
    rot[:, HUMANOID.index("leftUpperArm")] = arm
    rot[:, HUMANOID.index("rightUpperArm")] = quat_mirror_x(arm)
    root = np.broadcast_to(HUMANOID.rest_positions[0], (n, 3)).copy()
    return BodyMotion(fps=FPS, joints=HUMANOID.joints, rotations=rot, root_position=root)


def _pose_motion(name: str) -> BodyMotion:
    rot = identity_quat(1, len(HUMANOID.joints))
    ang = {b: np.zeros(3) for b in ("Shoulder", "UpperArm", "LowerArm", "Hand")}
    for v, (b, k) in zip(POSES[name], CHANNELS):
        ang[b][k] = v
    for b, a in ang.items():
        order = HUMANOID.limit_order("left" + b)
        q = euler_to_quat(np.array([a["XYZ".index(c)] for c in order])[None], order)
        rot[:, HUMANOID.index("left" + b)] = q
        rot[:, HUMANOID.index("right" + b)] = quat_mirror_x(q)
    return BodyMotion(fps=FPS, joints=HUMANOID.joints, rotations=rot, root_position=HUMANOID.rest_positions[:1])


def _palms(m: BodyMotion) -> np.ndarray:
    pos, glob = fk(rotations_in_skeleton_order(m), m.root_position)
    out = []
    for side, sign in (("left", 1.0), ("right", -1.0)):
        k = HUMANOID.index(side + "Hand")
        out.append(pos[:, k] + quat_apply(glob[:, k], np.array([sign * 0.08, 0.0, 0.0])))
    return np.stack(out, 1)  # [T, 2, 3]


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_poses_put_the_palms_where_documented(name: str) -> None:
    m = _pose_motion(name)
    palm = _palms(m)[0]
    target = np.array(TARGETS[name])
    assert np.linalg.norm(palm[0] - target) < 0.04
    assert np.linalg.norm(palm[1] - target * [-1, 1, 1]) < 0.04  # the right arm mirrors the left
    assert checks.joint_limit_violations(m) == {}
    assert checks.hand_in_torso(m) == 0.0


def test_all_poses_are_inside_the_joint_limits() -> None:
    for name in POSES:
        assert checks.joint_limit_violations(_pose_motion(name)) == {}, name


def _plan(sentences: list[str], vad: tuple = (0.3, 0.4, 0.1), seed: int = 0, pause: float = 0.6):  # noqa: ANN202
    tl = _timeline(sentences, pause=pause)
    sp = _speech(tl)
    return tl, plan_gestures(vad_per_frame(VAD(*vad), len(sp), FPS), sp, FPS, tl, seed=seed)


def _word_time(tl: Timeline, word: str) -> tuple[float, float]:
    w = next(w for w in tl.words if w.word == word)
    return w.start, w.end


def test_words_cue_their_gestures() -> None:
    tl, plan = _plan(["Well I made this myself", "So what do you think about it",
                      "Honestly that is not right", "Could you help everyone here"], vad=(0.3, 0.9, 0.1))
    kinds = [(ev.kind, ev.time) for ev in plan.events]
    near = lambda kind, word: any(k == kind and abs(t - _word_time(tl, word)[0] - 0.05) < 0.4  # noqa: E731
                                  for k, t in kinds)
    assert near("self", "I")  # self-touch on "I"
    assert near("flick", "not")  # a dismissive flick on the negation
    assert near("shrug", "it") or near("shrug", "about")  # the question ends in a shrug
    assert any(k == "point" for k, _ in kinds)  # "you"
    assert is_question("Could you help everyone here".split()) and is_question("So why is it".split())
    assert not is_question("Tell me what it is".split()) and not is_question("Do not go there".split())


def test_anger_chops_fear_raises_the_hands_joy_does_neither() -> None:
    lines = ["Somebody broke the window again", "Everybody heard the crash outside", "Nobody stopped them"]
    angry = [ev.kind for ev in _plan(lines, vad=(-0.6, 0.8, 0.6))[1].events]
    fear = [ev.kind for ev in _plan(lines, vad=(-0.6, 0.8, -0.6))[1].events]
    joy = [ev.kind for ev in _plan(lines, vad=(0.8, 0.5, 0.3))[1].events]
    assert "chop" in angry and "fear" not in angry
    assert "fear" in fear
    assert "fear" not in joy and joy.count("chop") < angry.count("chop")


def test_rest_poses_change_between_phrases_and_hold_in_pauses() -> None:
    tl, plan = _plan(["We went out"] * 6, pause=1.0)
    rests = [r.pose for r in plan.rests]
    assert len(rests) >= 5 and all(p in REST_POSES for p in rests)
    assert all(a != b for a, b in zip(rests, rests[1:]))  # never the same twice in a row
    assert len(set(rests)) >= 3
    n = len(_speech(tl))
    t = np.arange(n) / FPS
    ch, w, _, _ = side_tracks(plan, "L", t, np.full(n, 0.7), FPS)
    for r in plan.rests[1:-1]:  # the hands are at the rest pose in the middle of each inner pause
        k = int(0.5 * (r.start + r.end) * FPS)
        if r.end - r.start > 0.5:
            assert w[k] > 0.99
            want = POSES[r.pose] if "L" in r.hands else POSES["loose"]
            assert np.allclose(ch[k, :10], want, atol=3.0)


def test_layer_reaches_the_gesture_and_leaves_the_source_alone_elsewhere() -> None:
    tl, plan = _plan(["I am here", "and that is all"], vad=(0.3, 0.9, 0.1))
    sp = _speech(tl)
    src = _still(len(sp))
    out = apply_repertoire(src, vad_per_frame(VAD(0.3, 0.9, 0.1), len(sp), FPS), sp, tl, plan=plan)
    ev = next(ev for ev in plan.events if ev.kind == "self")
    k = int(min(ev.time + 0.15, ev.hold_end - 0.05) * FPS)
    side = 0 if "L" in ev.hands else 1
    assert np.linalg.norm(_palms(out)[k, side] - np.array(TARGETS["self"]) * [1 - 2 * side, 1, 1]) < 0.06
    t = np.arange(len(sp)) / FPS
    wl = side_tracks(plan, "L", t, np.full(len(sp), 0.95), FPS)[1]
    wr = side_tracks(plan, "R", t, np.full(len(sp), 0.95), FPS)[1]
    free = (wl < 1e-9) & (wr < 1e-9)
    arms = [HUMANOID.index(s + b) for s in ("left", "right") for b in ("UpperArm", "LowerArm", "Hand")]
    if free.any():
        assert np.allclose(np.abs(np.sum(out.rotations[free][:, arms] * src.rotations[free][:, arms], -1)), 1.0,
                           atol=1e-5)
    r = checks.sanity_report(out)
    assert r["limit_violations"] == {} and r["hand_in_torso"] == 0.0


def test_arousal_makes_more_and_larger_gestures() -> None:
    lines = ["The garden looks lovely in the morning", "with a little dew on every leaf",
             "and the birds start singing early"]
    hi = _plan(lines, vad=(0.3, 0.8, 0.1))[1]
    lo = _plan(lines, vad=(0.3, -0.8, 0.1))[1]
    assert len(hi.events) >= len(lo.events)
    assert np.mean([ev.size for ev in hi.events]) > np.mean([ev.size for ev in lo.events]) + 0.2


def test_deterministic_and_different_lines_differ() -> None:
    a = _plan(["She pointed at the sky", "all pink and gold"])[1]
    b = _plan(["She pointed at the sky", "all pink and gold"])[1]
    c = _plan(["My brother moved away", "to the coast last spring"])[1]
    assert a == b
    assert a != c
    assert _plan(["She pointed at the sky", "all pink and gold"], seed=1)[1] != a


def test_model_path_carries_the_repertoire() -> None:
    from avatar.gesture.generate import load_gesture_model, motion_from_features
    from avatar.gesture.prosody import prosody_features
    from avatar.gesture.signals import syllable_audio

    tl = _timeline(["I think you know", "that is not all"])
    audio = syllable_audio(np.array([p.start for p in tl.phonemes]), tl.duration, 16000, seed=1)
    feat = prosody_features(audio, 16000, FPS, timeline=tl)
    net = load_gesture_model()
    vad = vad_per_frame(VAD(0.3, 0.5, 0.1), feat.num_frames, FPS)
    with_rep = motion_from_features(net, feat, vad, seed=0, timeline=tl)
    without = motion_from_features(net, feat, vad, seed=0, timeline=tl, repertoire=False)
    d = np.linalg.norm(_palms(with_rep) - _palms(without), axis=-1).max()
    assert d > 0.15  # the word-cued gestures move the hands far from where the model put them
    r = checks.sanity_report(with_rep)
    assert r["limit_violations"] == {} and r["foot_sliding_cm_s"] < 0.05 and r["nan"] == 0


def test_hand_shapes_pose_the_default_avatars_fingers() -> None:
    """The layer's finger bones reach the renderer: a fist brings the default avatar's index fingertip about
    the length of a finger closer to its wrist than a flat hand; without finger bones the hand stays as built."""
    from avatar.render.pose import build_rig, node_matrices
    from avatar.render.renderer import resolve_avatar
    from avatar.rig.hands import FINGER_BONES, HAND_SHAPES, finger_rotations

    av = resolve_avatar(None)
    rig = build_rig(av)
    assert rig.finger_node and set(rig.finger_node.values()) == set(FINGER_BONES)
    tip = next(n for n, b in rig.finger_node.items() if b == "leftIndexDistal")
    wrist = av.bones["leftHand"]
    m = _pose_motion("offer")

    def span(shape: str | None) -> float:
        names, rot = m.joints, m.rotations[0].astype(np.float64)
        if shape is not None:
            f = finger_rotations(np.tile(np.asarray(HAND_SHAPES[shape])[None, None], (1, 2, 1)))
            names, rot = names + FINGER_BONES, np.concatenate([rot, np.stack([f[b][0] for b in FINGER_BONES])])
        w = node_matrices(rig, (names, rot, m.root_position[0].astype(np.float64)), None)
        return float(np.linalg.norm(w[tip][:3, 3] - w[wrist][:3, 3]))

    flat, fist, bare = span("flat"), span("fist"), span(None)
    assert flat - fist > 0.03
    assert abs(bare - span("flat")) < 0.03  # flat is close to the avatar's own rest hand
    assert len(finger_rotations(np.zeros((4, 2, 6)))) == 30
