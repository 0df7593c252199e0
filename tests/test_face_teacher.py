"""The teacher: mouth + expression + idle life as one FaceMotion, seeded, speech and smile in agreement."""

from __future__ import annotations

import numpy as np
import pytest

from avatar.errors import InputError
from avatar.face.features import compute_features
from avatar.face.teacher import speech_activity, stress_emphasis, teacher_motion
from avatar.types import FACE_CHANNELS, VAD, EmotionSegment, EmotionTrack, FaceMotion, Timeline

FPS = 30.0
SEQ = [("h", "sil", 0.05), ("e", "E", 0.1), ("l", "nn", 0.06), ("ˈoʊ", "oh", 0.16), ("p", "PP", 0.07),
       ("a", "aa", 0.14), ("b", "PP", 0.06), ("a", "aa", 0.12), ("m", "PP", 0.08), ("u", "ou", 0.14),
       ("s", "SS", 0.09), ("i", "ih", 0.1), ("k", "kk", 0.07), ("ˈa", "aa", 0.18), ("f", "FF", 0.08)]


def timeline(reps: int = 3, pause: float = 0.6) -> Timeline:
    t, ph = 0.4, []
    for _ in range(reps):
        for sym, vis, dur in SEQ:
            ph.append({"phoneme": sym, "viseme": vis, "start": round(t, 4), "end": round(t + dur, 4)})
            t += dur
        t += pause
    return Timeline(sample_rate=22050, duration=t + 0.4, phonemes=ph)


def ch(face: FaceMotion, name: str) -> np.ndarray:
    return face.channel(name)


def test_output_is_a_valid_face_motion_in_range() -> None:
    tl = timeline()
    f = teacher_motion(tl, VAD(0.4, 0.3, 0.1), fps=FPS, seed=0)
    assert isinstance(f, FaceMotion) and f.names == FACE_CHANNELS
    assert f.num_frames == int(round(tl.duration * FPS))
    bs = f.frames[:, :52]
    assert (bs >= 0).all() and (bs <= 1).all()
    assert np.abs(f.frames[:, 52:]).max() < np.deg2rad(40)
    assert np.array_equal(f.frames, teacher_motion(tl, VAD(0.4, 0.3, 0.1), fps=FPS, seed=0).frames)
    other = teacher_motion(tl, VAD(0.4, 0.3, 0.1), fps=FPS, seed=1)
    assert not np.array_equal(f.frames, other.frames)
    # The seed moves life (and the expression's micro-variation), not speech: with no emotion the jaw is the same.
    calm = [teacher_motion(tl, VAD(0.0, 0.0, 0.0), fps=FPS, seed=s) for s in (0, 1)]
    assert np.array_equal(ch(calm[0], "jawOpen"), ch(calm[1], "jawOpen"))


@pytest.mark.parametrize("vad", [VAD(0.9, 0.6, 0.3), VAD(-0.7, 0.7, 0.5), VAD(0.0, 0.0, 0.0)])
def test_lips_close_on_every_bilabial_whatever_the_emotion(vad: VAD) -> None:
    tl = timeline()
    f = teacher_motion(tl, vad, fps=FPS, seed=2)
    opn = ch(f, "jawOpen") - ch(f, "mouthClose")
    t = np.arange(f.num_frames) / FPS
    for p in tl.phonemes:
        if p.viseme == "PP":
            idx = np.nonzero((t >= p.start) & (t < p.end))[0]
            assert opn[idx].max() <= 0.02, (p, opn[idx])


def test_openness_follows_the_phonemes() -> None:
    tl = timeline()
    f = teacher_motion(tl, VAD(0.3, 0.2, 0.0), fps=FPS, seed=0)
    truth = np.zeros(f.num_frames)
    t = np.arange(f.num_frames) / FPS
    level = {"aa": 1.0, "oh": 0.7, "E": 0.6, "ih": 0.3, "ou": 0.2, "kk": 0.3, "nn": 0.2, "SS": 0.1}
    for p in tl.phonemes:
        truth[(t >= p.start) & (t < p.end)] = level.get(p.viseme, 0.0)
    opn = ch(f, "jawOpen") - ch(f, "mouthClose")
    assert np.corrcoef(opn, truth)[0, 1] > 0.7


def test_smile_follows_valence_and_brows_follow_arousal() -> None:
    tl = timeline(reps=2)
    smiles = [ch(teacher_motion(tl, VAD(v, 0.2, 0.0), seed=0), "mouthSmileLeft").mean() for v in (-0.8, 0.0, 0.8)]
    assert smiles[0] <= smiles[1] < smiles[2] - 0.2
    wide = [ch(teacher_motion(tl, VAD(0.0, a, 0.0), seed=0), "browInnerUp").mean() for a in (-0.8, 0.0, 0.9)]
    assert wide[0] <= wide[1] + 0.02 and wide[1] < wide[2]


def test_emotion_track_and_per_frame_vad() -> None:
    tl = timeline(reps=2)
    track = EmotionTrack(segments=[EmotionSegment(start=0, end=2, vad=VAD(-0.6, 0, 0)),
                                   EmotionSegment(start=2, end=tl.duration, vad=VAD(0.8, 0.4, 0))])
    f = teacher_motion(tl, track, seed=0)
    smile = ch(f, "mouthSmileLeft")
    assert smile[: int(1.5 * FPS)].mean() < 0.05 < smile[-int(1.0 * FPS):].mean()
    rows = np.zeros((f.num_frames, 3))
    rows[:, 0] = 0.5
    assert teacher_motion(tl, rows, seed=0).num_frames == f.num_frames


def test_silence_only_keeps_the_face_alive() -> None:
    f = teacher_motion(None, VAD(0, 0, 0), duration=20.0, seed=5)
    assert f.num_frames == 600
    assert ch(f, "jawOpen").max() < 0.01
    assert ch(f, "eyeBlinkLeft").max() > 0.9  # blinks
    assert np.rad2deg(ch(f, "headYaw")).std() > 0.3  # head drift
    assert np.abs(np.diff(ch(f, "leftEyeYaw"))).max() > np.deg2rad(1.0)  # saccades


def test_with_audio_features() -> None:
    tl = timeline(reps=1)
    sr = 16000
    tt = np.arange(int(tl.duration * sr)) / sr
    audio = (0.3 * np.sin(2 * np.pi * 140 * tt) * (np.sin(2 * np.pi * 3 * tt) > 0)).astype(np.float32)
    n = int(round(tl.duration * FPS))
    feats = compute_features(audio, sr, fps=FPS, num_frames=n)
    f = teacher_motion(tl, VAD(0.2, 0.5, 0.0), features=feats, seed=0)
    assert f.num_frames == n
    g = teacher_motion(None, VAD(0.2, 0.5, 0.0), features=feats, seed=0)
    assert g.num_frames == n
    with pytest.raises(InputError):
        teacher_motion(tl, VAD(), features=compute_features(audio, sr, num_frames=n + 5))


def test_activity_and_stress() -> None:
    tl = timeline(reps=2, pause=1.0)
    n = int(round(tl.duration * FPS))
    act = speech_activity(tl, FPS, n)
    assert act[int(0.6 * FPS)] == 1 and act[0] == 0
    gap = int((tl.phonemes[len(SEQ) - 1].end + 0.5) * FPS)
    assert act[gap] == 0
    emph = stress_emphasis(tl, FPS, n)
    assert emph.max() <= 1.0 and emph.min() >= 0.0
    stressed = [p for p in tl.phonemes if "ˈ" in p.phoneme]
    plain = [p for p in tl.phonemes if p.viseme == "aa" and "ˈ" not in p.phoneme]
    at = lambda p: emph[int(round((p.start + p.end) / 2 * FPS))]  # noqa: E731
    assert min(at(p) for p in stressed) > max(at(p) for p in plain)


def test_bad_input() -> None:
    with pytest.raises(InputError):
        teacher_motion(None, VAD())
    with pytest.raises(InputError):
        teacher_motion(timeline(1), VAD(), fps=-3)
    with pytest.raises(InputError):
        teacher_motion(timeline(1), [0.0, float("nan"), 0.0])
    with pytest.raises(InputError):
        teacher_motion(None, VAD(), duration=float("inf"))
    with pytest.raises(InputError):
        teacher_motion("not a timeline", VAD())  # type: ignore[arg-type]


def test_mouth_at_rest_on_the_first_frame_and_in_the_emotion_already() -> None:
    tl = Timeline(sample_rate=22050, duration=1.2, phonemes=[
        {"phoneme": "a", "viseme": "aa", "start": 0.01, "end": 0.3},
        {"phoneme": "m", "viseme": "PP", "start": 0.3, "end": 0.4},
        {"phoneme": "a", "viseme": "aa", "start": 0.4, "end": 1.19}])
    f = teacher_motion(tl, VAD(0.76, 0.48, 0.35), fps=FPS, seed=0)
    # Speech starts 10 ms in, yet frame 0 has no speech shape (only joy's slight jaw drop, 0.03), nor the last.
    for i in (0, -1):
        assert ch(f, "jawOpen")[i] < 0.05 and ch(f, "mouthLowerDownLeft")[i] < 0.01, i
    assert ch(f, "mouthSmileLeft")[0] > 0.4  # smiling from the first frame


def test_sadness_looks_down_and_anger_holds_the_gaze() -> None:
    tl = timeline(reps=4)
    sad = teacher_motion(tl, VAD(-0.63, -0.27, -0.33), fps=FPS, seed=2)
    calm = teacher_motion(tl, VAD(0.0, 0.0, 0.0), fps=FPS, seed=2)
    # world gaze = eye-in-head + head; pitch > 0 is down
    down = lambda f: float(np.mean(ch(f, "leftEyePitch") + ch(f, "headPitch")))  # noqa: E731
    assert down(sad) > down(calm) + np.deg2rad(6)
    angry = [teacher_motion(tl, VAD(-0.51, 0.59, 0.25), fps=FPS, seed=s) for s in range(4)]
    calm = [teacher_motion(tl, VAD(0.0, 0.0, 0.0), fps=FPS, seed=s) for s in range(4)]
    spread = lambda fs: float(np.mean([np.abs(ch(f, "leftEyeYaw") + ch(f, "headYaw")).mean() for f in fs]))  # noqa: E731
    assert spread(angry) < spread(calm)


def test_the_eyes_hold_their_target_when_the_body_bows_the_head() -> None:
    """VOR through the whole body: a posture that bows the head is countered by the neck (a share) and the eyes
    (the rest), so the world gaze is unchanged and the face comes back towards the partner."""
    from avatar.face.teacher import ADDRESS_SHARE, compose_face
    from avatar.face.visemes import closure_weights, mouth_curves

    tl = timeline(reps=2)
    n = int(round(tl.duration * FPS))
    mouth, closure = mouth_curves(tl, FPS, n), closure_weights(tl, FPS, n)
    vad = VAD(-0.63, -0.27, -0.33)
    plain = compose_face(mouth, closure, vad, FPS, seed=4)
    bow = np.zeros((n, 2))
    bow[:, 1] = np.deg2rad(15.0)  # the slump bows the head 15 degrees
    bowed = compose_face(mouth, closure, vad, FPS, seed=4, body_head=bow)
    world = lambda f, b: ch(f, "leftEyePitch") + ch(f, "headPitch") + b  # noqa: E731
    assert np.allclose(world(bowed, bow[:, 1]), world(plain, 0.0), atol=1e-6)
    assert np.allclose(ch(bowed, "headPitch"), ch(plain, "headPitch") - ADDRESS_SHARE * bow[:, 1])
    assert 0.2 < ADDRESS_SHARE < 1.0  # the head stays bowed a little: the posture still shows
    with pytest.raises(InputError):
        compose_face(mouth, closure, vad, FPS, body_head=np.zeros((n, 3)))
