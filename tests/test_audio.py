import numpy as np
import pytest

from avatar.audio import load_audio, resample, save_wav
from avatar.errors import InputError


def test_round_trip_stereo_and_resample(tmp_path):
    import soundfile as sf

    t = np.arange(8000) / 8000
    stereo = np.stack([np.sin(2 * np.pi * 220 * t), np.sin(2 * np.pi * 220 * t)], axis=1).astype(np.float32) * 0.5
    sf.write(tmp_path / "s.wav", stereo, 8000)
    a, sr = load_audio(tmp_path / "s.wav", target_sr=16000)
    assert sr == 16000 and a.ndim == 1 and abs(len(a) - 16000) <= 2
    save_wav(tmp_path / "o.wav", a, sr)
    b, sr2 = load_audio(tmp_path / "o.wav")
    assert sr2 == 16000 and np.allclose(a, b, atol=1e-3)


@pytest.mark.parametrize("content", [b"", b"this is not audio at all" * 10, b"RIFF\x00\x00\x00\x00WAVEfmt "])
def test_broken_audio_is_a_clear_error(tmp_path, content):
    p = tmp_path / "bad.wav"
    p.write_bytes(content)
    with pytest.raises(InputError):
        load_audio(p)


def test_missing_and_folder(tmp_path):
    with pytest.raises(InputError):
        load_audio(tmp_path / "nope.wav")
    with pytest.raises(InputError):
        load_audio(tmp_path)


def test_resample_identity():
    x = np.random.default_rng(0).standard_normal(100).astype(np.float32)
    assert resample(x, 16000, 16000) is not None and np.array_equal(resample(x, 16000, 16000), x)
