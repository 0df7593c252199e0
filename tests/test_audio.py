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


# --- memory bombs: small files that decode to a lot of audio (issue 20 item 1) ----------------------------------


def _silent_flac(path, seconds: float, sr: int = 8000, streamed: bool = False):
    """A FLAC of silence (about 25 kB a minute); `streamed`: its header's sample count is zeroed, as an encoder
    writing to a pipe leaves it (the length is then unknown until decoded)."""
    import soundfile as sf

    with sf.SoundFile(path, "w", sr, 1, subtype="PCM_16", format="FLAC") as f:
        block = np.zeros(sr * 60, np.int16)
        for _ in range(int(seconds // 60)):
            f.write(block)
    if streamed:
        b = bytearray(path.read_bytes())
        assert b[:4] == b"fLaC" and b[4] & 0x7F == 0  # STREAMINFO first: total samples are its bits 108..143
        bits = int.from_bytes(b[18:26], "big") & ~((1 << 36) - 1)
        b[18:26] = bits.to_bytes(8, "big")
        path.write_bytes(bytes(b))
    return path


def _sparse_wav(path, seconds: float, sr: int = 48000, channels: int = 2):
    """A 16-bit PCM WAV of `seconds` of zeros as a sparse file: gigabytes on paper, nothing on disk."""
    import struct

    n = int(seconds * sr) * channels * 2
    with open(path, "wb") as fh:
        fh.write(b"RIFF" + struct.pack("<I", 36 + n) + b"WAVEfmt "
                 + struct.pack("<IHHIIHH", 16, 1, channels, sr, sr * channels * 2, channels * 2, 16)
                 + b"data" + struct.pack("<I", n))
        fh.truncate(44 + n)
    return path


def _peak_bytes(fn) -> tuple[int, BaseException | None]:
    """Peak traced allocation (NumPy's buffers included) while fn runs, and what it raised."""
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


@pytest.mark.parametrize("make", [
    lambda p: _silent_flac(p / "two_hours.flac", 7200),                 # the header says 2 h
    lambda p: _silent_flac(p / "streamed.flac", 3660, 4000, True),      # the header does not say: counted
    lambda p: _sparse_wav(p / "huge.wav", 7200),                        # 1.38 GB of WAV
], ids=["flac-2h", "flac-no-length", "wav-1.4GB"])
def test_over_long_audio_is_refused_in_bounded_memory(tmp_path, make):
    """Over the hour limit: refused with a clear InputError before the audio is held (was: decoded whole, 1.6 GB
    for a 1 MB FLAC); where the header gives no length, decoding counts one block at a time."""
    path = make(tmp_path)
    peak, err = _peak_bytes(lambda: load_audio(path))
    assert isinstance(err, InputError) and "60-minute limit" in str(err), err
    assert peak < 20 * 2**20, f"{peak / 2**20:.0f} MiB held while refusing {path.name}"


def test_length_limit_is_the_callers_and_in_samples_above_48k(tmp_path):
    """`max_seconds` lowers the limit (the app: 120 s) from the header; above 48 kHz the limit is in samples."""
    from avatar.audio import MAX_AUDIO_SAMPLES, max_frames, probe_audio

    flac = _silent_flac(tmp_path / "three_minutes.flac", 180)
    assert probe_audio(flac).duration == pytest.approx(180)
    peak, err = _peak_bytes(lambda: load_audio(flac, max_seconds=120))
    assert isinstance(err, InputError) and "3.0 minutes is longer than the 2-minute limit" in str(err)
    assert peak < 2**20  # nothing decoded
    streamed = _silent_flac(tmp_path / "streamed.flac", 180, streamed=True)
    with pytest.raises(InputError, match="it is longer than the 2-minute limit"):
        load_audio(streamed, max_seconds=120)
    assert load_audio(streamed)[0].size == 180 * 8000  # the counting pass, then the audio itself
    assert max_frames(192000) == MAX_AUDIO_SAMPLES < 3600 * 192000
    with pytest.raises(InputError, match="at 192000 Hz"):
        load_audio(_sparse_wav(tmp_path / "hi_rate.wav", 16 * 60, sr=192000, channels=1))


def test_decoding_in_blocks_matches_reading_whole(tmp_path):
    """The block decoder gives what soundfile's one-shot read and a channel average give, sample for sample."""
    import soundfile as sf

    from avatar.audio import to_mono

    rng = np.random.default_rng(1)
    x = (rng.standard_normal((200_003, 3)) * 0.2).astype(np.float32)  # blocks of 65536 and a ragged end
    sf.write(tmp_path / "three.flac", x, 22050, subtype="PCM_24")
    a, sr = load_audio(tmp_path / "three.flac")
    assert sr == 22050 and np.array_equal(a, to_mono(sf.read(tmp_path / "three.flac", dtype="float32")[0]))


def test_sample_rate_and_channels_are_checked_from_the_header(tmp_path):
    import soundfile as sf

    sf.write(tmp_path / "low.wav", np.zeros(100, np.float32), 2000)
    with pytest.raises(InputError, match="too low"):
        load_audio(tmp_path / "low.wav")
    _sparse_wav(tmp_path / "high.wav", 0.01, sr=768000, channels=1)
    with pytest.raises(InputError, match="too high"):
        load_audio(tmp_path / "high.wav")


def test_a_wav_cut_short_loads_with_a_warning(tmp_path, caplog):
    """A WAV whose data chunk says more than the file holds (a recording cut off) loads what is there and says so
    (issue 20 item 17); a streamed WAV (size 0xFFFFFFFF) and a whole one load without a word."""
    import logging

    save_wav(tmp_path / "whole.wav", np.full(16000, 0.1, np.float32), 16000)
    raw = (tmp_path / "whole.wav").read_bytes()
    (tmp_path / "cut.wav").write_bytes(raw[: 44 + 16000])  # half the samples
    streamed = bytearray(raw)
    streamed[4:8] = streamed[40:44] = b"\xff\xff\xff\xff"
    (tmp_path / "streamed.wav").write_bytes(bytes(streamed))
    with caplog.at_level(logging.WARNING, logger="avatar.audio"):
        for name in ("whole.wav", "streamed.wav"):
            assert load_audio(tmp_path / name)[0].size == 16000
        assert not caplog.records
        a, _ = load_audio(tmp_path / "cut.wav")
    assert a.size == 8000
    (rec,) = caplog.records
    assert "cut short" in rec.getMessage() and "cut.wav" in rec.getMessage()
