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
    with pytest.raises(Exception):  # noqa: B017, PT011
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


def _peak(fn):
    """Peak traced allocation while fn runs, and the exception it raised."""
    import tracemalloc

    tracemalloc.start()
    err = None
    try:
        fn()
    except Exception as exc:  # noqa: BLE001 - returned to the test
        err = exc
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak, err


def test_timeline_files_are_bounded_by_the_audio_before_parsing(tmp_path):
    """A timeline file's size and event count are checked against its audio's length before anything is built
    (issue 20 item 2: a 10 MB timeline cost 1 GB and a 323 MB one was killed at 23 GB)."""
    from avatar.types import MAX_TIMELINE_BYTES, timeline_byte_limit, timeline_event_limit

    huge = tmp_path / "huge.json"
    with open(huge, "wb") as fh:  # sparse: over the absolute limit, refused unread
        fh.truncate(MAX_TIMELINE_BYTES + 1)
    peak, err = _peak(lambda: Timeline.from_json(huge))
    assert isinstance(err, InputError) and "a timeline is at most" in str(err) and peak < 2**20
    # Many small events in a file the audio's byte limit allows: parsing stops at the event limit.
    n = timeline_event_limit(3.0) + 1
    events = ",".join('{"start":0,"end":0.1,"phoneme":"a"}' for _ in range(n))
    crowded = tmp_path / "crowded.json"
    crowded.write_text('{"sample_rate":22050,"duration":3,"phonemes":[' + events + '],"words":[]}')
    assert crowded.stat().st_size < timeline_byte_limit(3.0)
    with pytest.raises(InputError, match=f"more than {n - 1} events for 3.0 s of audio"):
        Timeline.from_json(crowded, audio_duration=3.0)
    assert Timeline.from_json(crowded, audio_duration=60.0).phonemes[0].phoneme == "a"  # fine for a minute
    big = tmp_path / "big.json"
    big.write_text(" " * timeline_byte_limit(3.0) + "{}")
    peak, err = _peak(lambda: Timeline.from_json(big, audio_duration=3.0))
    assert isinstance(err, InputError) and "a timeline for 3.0 s of audio is at most" in str(err)
    assert peak < 2**20
    # A real timeline of our voice is far inside both limits: 13 phonemes and 1.7 kB a second.
    tl = Timeline(sample_rate=22050, duration=3.0, phonemes=[
        Phoneme(start=i * 0.075, end=(i + 1) * 0.075, phoneme="a", viseme="aa") for i in range(40)])
    tl.to_json(tmp_path / "ours.json")
    assert Timeline.from_json(tmp_path / "ours.json", audio_duration=3.0) == tl


def test_cli_timeline_bomb_is_one_error_line(avatar_bin, tmp_path):
    """`avatar face|gesture --timeline` with a timeline far too large for the audio: exit 2, one `error:` line,
    before any model loads, no output."""
    import subprocess

    from avatar.audio import save_wav

    save_wav(tmp_path / "a.wav", np.zeros(16000, np.float32), 16000)
    events = ",".join('{"start":0,"end":0.1,"phoneme":"a"}' for _ in range(20000))
    (tmp_path / "t.json").write_text('{"sample_rate":16000,"duration":1,"phonemes":[' + events + ']}')
    for cmd, out in (("face", "o.json"), ("gesture", "o.bvh")):
        r = subprocess.run([avatar_bin, cmd, "--audio", str(tmp_path / "a.wav"), "--timeline",
                            str(tmp_path / "t.json"), "-o", str(tmp_path / out)], capture_output=True, text=True,
                           timeout=120)
        assert r.returncode == 2, (cmd, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:") and "for 1.0 s of audio" in lines[0], r.stderr
        assert not (tmp_path / out).exists()


def test_validation_errors_name_the_model_once():
    """Issue 20 item 19: pydantic runs a Strict model's own __init__ inside model_validate, which said
    'invalid VideoSettings: invalid VideoSettings: ...'."""
    from avatar.batch.plan import VideoSettings

    for call in (lambda: VideoSettings.model_validate({"width": 65}), lambda: VideoSettings(width=65)):
        with pytest.raises(InputError) as err:
            call()
        assert str(err.value).count("invalid VideoSettings") == 1 and "even" in str(err.value), str(err.value)
