import json
import math

import numpy as np
import pytest

from avatar.errors import InputError
from avatar.types import (ARKIT_BLENDSHAPES, FACE_CHANNELS, VAD, BodyMotion, EmotionSegment, EmotionTrack,
                          FaceMotion, Phoneme, Speech, Timeline, Word)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), 1.5, -1.01, "x", None])
def test_vad_refuses_nan_and_out_of_range(bad):
    with pytest.raises(InputError) as e:
        VAD(bad, 0.0, 0.0)
    assert "valence" in str(e.value)


def test_vad_accepts_bounds_and_clips_on_request():
    assert VAD(1, -1, 0).as_array().tolist() == [1.0, -1.0, 0.0]
    assert VAD.clipped(3, -2, 0.5).as_array().tolist() == [1.0, -1.0, 0.5]
    with pytest.raises(InputError):
        VAD.clipped(float("nan"), 0, 0)
    assert VAD(0.5, 0.5, 0.5).scaled(-1).valence == -0.5
    assert VAD(0, 0, 0).lerp(VAD(1, 1, 1), 0.25).arousal == pytest.approx(0.25)


def test_vad_is_frozen():
    v = VAD(0.1, 0.2, 0.3)
    with pytest.raises(Exception):
        v.valence = 0.5  # type: ignore[misc]


def test_emotion_track_eases_between_segments():
    tr = EmotionTrack(segments=[EmotionSegment(start=0, end=1, vad=VAD(-1, 0, 0)),
                                EmotionSegment(start=1, end=2, vad=VAD(1, 0, 0))], transition=0.4)
    arr = tr.sample(fps=100)
    assert arr.shape == (200, 3)
    assert arr[0, 0] == pytest.approx(-1) and arr[-1, 0] == pytest.approx(1)
    assert abs(arr[100, 0]) < 0.1  # the middle of the crossfade sits at the boundary
    assert np.all(np.diff(arr[:, 0]) >= -1e-6)  # monotone, no overshoot
    assert tr.at(0.2).valence == pytest.approx(-1)
    with pytest.raises(InputError):
        EmotionTrack(segments=[])


def test_timeline_json_round_trip_and_concat(tmp_path):
    a = Timeline(sample_rate=22050, duration=1.0, phonemes=[Phoneme(phoneme="h", start=0.0, end=0.1, viseme="sil")],
                 words=[Word(word="hi", start=0.0, end=0.5)])
    b = Timeline(sample_rate=22050, duration=0.5, phonemes=[Phoneme(phoneme="a", start=0.1, end=0.3, viseme="aa")])
    joined = Timeline.concat([a, b], durations=[1.2, 0.5])
    assert joined.duration == pytest.approx(1.7)
    assert joined.phonemes[1].start == pytest.approx(1.3)
    path = tmp_path / "t.json"
    joined.to_json(path)
    back = Timeline.from_json(path)
    assert back == joined
    d = json.loads(path.read_text())
    assert set(d) == {"sample_rate", "duration", "phonemes", "words"}
    assert set(d["phonemes"][0]) == {"phoneme", "start", "end", "viseme"}


@pytest.mark.parametrize("payload", ['{"sample_rate": 0, "duration": 1}', "not json",
                                     '{"sample_rate": 8000, "duration": 1, "phonemes": [{"phoneme": "a", "start": 0.5, "end": 0.2}]}'])
def test_timeline_rejects_malformed(payload):
    with pytest.raises(InputError):
        Timeline.from_json(payload)


def test_speech_validates_audio():
    s = Speech(np.zeros(800, dtype=np.float64), 8000)
    assert s.audio.dtype == np.float32 and s.duration == pytest.approx(0.1)
    with pytest.raises(InputError):
        Speech(np.zeros((10, 2), dtype=np.float32), 8000)
    with pytest.raises(InputError):
        Speech(np.array([0.0, math.nan], dtype=np.float32), 8000)
    with pytest.raises(InputError):
        Speech(np.zeros(10, dtype=np.int16), 8000)


def test_face_motion_shape_and_json(tmp_path):
    assert len(ARKIT_BLENDSHAPES) == 52 and FACE_CHANNELS[52:55] == ("headYaw", "headPitch", "headRoll")
    fm = FaceMotion(fps=30, frames=np.random.default_rng(0).random((10, len(FACE_CHANNELS))))
    p = tmp_path / "f.json"
    fm.to_json(p)
    back = FaceMotion.from_json(p)
    assert back.frames.shape == (10, len(FACE_CHANNELS))
    assert np.allclose(back.channel("jawOpen"), fm.channel("jawOpen"), atol=1e-4)
    with pytest.raises(InputError):
        FaceMotion(fps=30, frames=np.zeros((3, 5)))
    with pytest.raises(InputError):
        FaceMotion(fps=float("nan"), frames=np.zeros((3, len(FACE_CHANNELS))))


def test_body_motion_normalises_quaternions():
    rot = np.zeros((4, 2, 4), dtype=np.float32)
    rot[..., 3] = 2.0
    bm = BodyMotion(fps=30, joints=("hips", "spine"), rotations=rot, root_position=np.zeros((4, 3)))
    assert np.allclose(np.linalg.norm(bm.rotations, axis=-1), 1.0)
    with pytest.raises(InputError):
        BodyMotion(fps=30, joints=("hips",), rotations=np.zeros((4, 1, 4)), root_position=np.zeros((4, 3)))
    with pytest.raises(InputError):
        BodyMotion(fps=30, joints=("hips",), rotations=rot[:, :1], root_position=np.zeros((3, 3)))
