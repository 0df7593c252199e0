"""Training pairs: teacher examples from speech, Live Link takes with audio, windows, normalisation."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from avatar.errors import InputError
from avatar.face.data import Example, livelink_example, motion_stats, resample_motion, teacher_example, windows
from avatar.face.livelink import write_livelink_csv
from avatar.face.teacher import teacher_motion
from avatar.types import FACE_CHANNELS, VAD, FaceMotion, Speech, Timeline

SR = 16000


def speech(seconds: float = 2.0) -> Speech:
    t = np.arange(int(seconds * SR)) / SR
    audio = (0.3 * np.sin(2 * np.pi * 140 * t) * (t > 0.3) * (t < 1.6)).astype(np.float32)
    ph, s = [], 0.3
    for vis, dur in [("aa", 0.2), ("PP", 0.08), ("ou", 0.2), ("SS", 0.1), ("E", 0.2), ("PP", 0.07), ("aa", 0.3)]:
        ph.append({"phoneme": vis.lower(), "viseme": vis, "start": round(s, 4), "end": round(s + dur, 4)})
        s += dur
    return Speech(audio=audio, sample_rate=SR, timeline=Timeline(sample_rate=SR, duration=seconds, phonemes=ph))


def test_teacher_example_is_aligned() -> None:
    ex = teacher_example(speech(), VAD(0.5, 0.2, 0.0), fps=30, seed=1)
    assert ex.num_frames == 60 and ex.features.shape == (60, 166) and ex.motion.shape == (60, len(FACE_CHANNELS))
    assert np.allclose(ex.vad, [0.5, 0.2, 0.0])
    jaw = ex.motion[:, FACE_CHANNELS.index("jawOpen")]
    assert jaw[int(0.4 * 30)] > 0.3 and jaw[:3].max() < 0.05  # open on /a/, at rest before speech
    with pytest.raises(InputError):
        teacher_example(Speech(audio=np.zeros(SR, np.float32), sample_rate=SR))


def test_livelink_example_from_csv_and_wav(tmp_path) -> None:
    sp = speech()
    face60 = teacher_motion(sp.timeline, VAD(), fps=60, seed=0)
    csv = write_livelink_csv(face60, tmp_path / "take.csv")
    wav = tmp_path / "take.wav"
    sf.write(str(wav), np.stack([sp.audio, sp.audio], axis=1), SR)
    ex = livelink_example(csv, wav, VAD(0.1, 0.1, 0.1), fps=30)
    assert ex.num_frames == 60 and ex.features.shape == (60, 166)
    jaw30 = ex.motion[:, FACE_CHANNELS.index("jawOpen")]
    assert np.allclose(jaw30, face60.channel("jawOpen")[::2][:60], atol=1e-4)  # 60 -> 30 fps, same times
    short = tmp_path / "short.wav"
    sf.write(str(short), sp.audio[: SR // 4], SR)
    with pytest.raises(InputError):
        livelink_example(csv, short)


def test_resample_motion() -> None:
    frames = np.zeros((61, len(FACE_CHANNELS)), dtype=np.float32)
    frames[:, 0] = np.linspace(0, 1, 61)
    f = resample_motion(FaceMotion(fps=60, frames=frames), 30)
    assert f.num_frames == 30  # round(61 / 60 * 30)
    assert np.allclose(f.frames[:, 0], np.arange(f.num_frames) / 30)
    with pytest.raises(InputError):
        resample_motion(FaceMotion(fps=60, frames=frames), 0)


def test_windows_and_stats() -> None:
    ex = Example(features=np.zeros((100, 166), np.float32), motion=np.random.default_rng(0).uniform(
        size=(100, len(FACE_CHANNELS))).astype(np.float32), vad=np.zeros((100, 3), np.float32), fps=30)
    w = list(windows(ex, 40, 20))
    assert len(w) == 4 and all(f.shape == (40, 166) and m.shape == (40, len(FACE_CHANNELS)) for f, m, _ in w)
    assert np.array_equal(w[-1][1], ex.motion[60:])
    short = Example(features=ex.features[:10], motion=ex.motion[:10], vad=ex.vad[:10], fps=30)
    (f, m, v), = list(windows(short, 40))
    assert m.shape == (40, len(FACE_CHANNELS)) and np.array_equal(m[-1], ex.motion[9])
    mean, std = motion_stats([ex, short])
    assert mean.shape == std.shape == (len(FACE_CHANNELS),) and (std >= 1e-3).all()
    with pytest.raises(InputError):
        motion_stats([])
    with pytest.raises(InputError):
        list(windows(ex, 0))
    with pytest.raises(InputError):
        Example(features=ex.features[:5], motion=ex.motion, vad=ex.vad, fps=30)
