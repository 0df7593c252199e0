"""Audio features: frame alignment at any rate, stereo, silence, pitch, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from avatar.errors import InputError
from avatar.face.features import AudioFeatures, compute_features, features_from_file, frames_for


def voice(sr: int, seconds: float = 2.0, f0: float = 150.0, start: float = 0.5, stop: float = 1.5) -> np.ndarray:
    """A harmonic 'vowel' at f0 between start and stop, silence around it."""
    t = np.arange(int(sr * seconds)) / sr
    x = sum(0.3 / k * np.sin(2 * np.pi * k * f0 * t) for k in range(1, 10 if sr > 8000 else 5))
    x[(t < start) | (t >= stop)] = 0.0
    return x.astype(np.float32)


@pytest.mark.parametrize("sr", [8000, 16000, 44100])
def test_shapes_and_alignment_at_any_rate(sr: int) -> None:
    f = compute_features(voice(sr), sr, fps=30)
    assert isinstance(f, AudioFeatures)
    assert f.num_frames == frames_for(2.0, 30) == 60
    assert f.mel.shape == (120, 80) and f.energy_db.shape == f.voicing.shape == f.f0.shape == (120,)
    assert f.by_frame().shape == (60, 2 * 83) and f.matrix().dtype == np.float32
    assert np.isfinite(f.matrix()).all()
    # Onset at 0.5 s = feature frame 30 (60 per second), offset at 1.5 s = frame 90, within a frame.
    loud = np.nonzero(f.energy_db > -40)[0]
    assert abs(loud[0] - 30) <= 1 and abs(loud[-1] - 90) <= 1  # a 32 ms window reaches one frame either side
    mid = (loud[0] + loud[-1]) // 2
    assert f.f0[mid] == pytest.approx(150.0, rel=0.02)
    assert f.voicing[mid] > 0.8
    act = f.activity()
    assert act[20:40].all() and not act[:10].any() and not act[-10:].any()


def test_alignment_does_not_drift_over_long_audio() -> None:
    sr, fps = 22050, 30.0
    x = np.zeros(sr * 60, dtype=np.float32)
    clicks = [5.0, 30.0, 59.0]
    for c in clicks:
        i = int(c * sr)
        x[i: i + 64] = 0.8
    f = compute_features(x, sr, fps=fps)
    assert f.num_frames == 1800
    for c in clicks:  # feature frame k is centred at k / 60 s
        k = int(round(c * 60))
        assert int(np.argmax(f.energy_db[k - 10: k + 10])) + k - 10 in (k, k + 1)


def test_stereo_equals_mono_and_any_layout() -> None:
    x = voice(16000)
    mono = compute_features(x, 16000)
    nc = compute_features(np.stack([x, x], axis=1), 16000)  # [N, C] as soundfile gives
    cn = compute_features(np.stack([x, x], axis=0), 16000)  # [C, N] as PyAV gives
    assert np.allclose(mono.mel, nc.mel, atol=1e-4) and np.allclose(mono.mel, cn.mel, atol=1e-4)


def test_silence_is_finite_unvoiced_and_inactive() -> None:
    f = compute_features(np.zeros(16000, dtype=np.float32), 16000)
    assert np.isfinite(f.matrix()).all()
    assert not f.voicing.any() and not f.f0.any()
    assert not f.activity().any() and not f.emphasis().any()
    assert f.mel.max() == f.mel.min()


def test_num_frames_pads_or_cuts() -> None:
    x = voice(16000, seconds=1.0)
    assert compute_features(x, 16000, num_frames=45).mel.shape == (90, 80)
    assert compute_features(x, 16000, num_frames=10).mel.shape == (20, 80)
    assert compute_features(x, 16000, fps=25).num_frames == 25


def test_reads_files_through_load_audio(tmp_path) -> None:
    x = voice(44100)
    path = tmp_path / "stereo.wav"
    sf.write(str(path), np.stack([x, 0.5 * x], axis=1), 44100)
    f = features_from_file(path)
    assert f.num_frames == 60 and np.isfinite(f.matrix()).all()


def test_bad_input_is_refused() -> None:
    with pytest.raises(InputError):
        compute_features(np.zeros(0, dtype=np.float32), 16000)
    with pytest.raises(InputError):
        compute_features(np.array([0.0, np.nan], dtype=np.float32), 16000)
    with pytest.raises(InputError):
        compute_features(np.zeros(100, dtype=np.float32), 1000)
    with pytest.raises(InputError):
        compute_features(np.zeros(100, dtype=np.int16), 16000)
    with pytest.raises(InputError):
        compute_features(np.zeros(1600, dtype=np.float32), 16000, fps=0)
    with pytest.raises(InputError):
        compute_features(np.zeros(1600, dtype=np.float32), 16000, f0_method="yin")


def test_mel_filterbank_matches_transformers() -> None:
    """Our Slaney filterbank gives transformers.audio_utils' numbers (it replaced that import)."""
    from transformers.audio_utils import mel_filter_bank

    from avatar.face.features import _filterbank

    for n_fft, n_mels, fmin, fmax, sr in ((1024, 80, 20.0, 8000.0, 16000), (512, 40, 0.0, 4000.0, 8000)):
        ref = mel_filter_bank(num_frequency_bins=n_fft // 2 + 1, num_mel_filters=n_mels, min_frequency=fmin,
                              max_frequency=fmax, sampling_rate=sr, norm="slaney", mel_scale="slaney")
        np.testing.assert_allclose(_filterbank(n_fft, n_mels, fmin, fmax, sr), ref, atol=1e-7)
