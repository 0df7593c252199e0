"""Audio in and out for every stage: load any common file as float32 mono, resample, save WAV atomically."""

from __future__ import annotations

import logging
import math
import os
from fractions import Fraction
from pathlib import Path

import numpy as np

from avatar.errors import InputError
from avatar.io import atomic_path

log = logging.getLogger(__name__)

#: Audio longer than this is refused (one hour): the stages work in memory.
MAX_AUDIO_SECONDS = 3600.0
#: Below this the rate cannot carry speech detail; we still accept it and upsample (telephone audio).
MIN_SAMPLE_RATE = 4000


def resample(audio: np.ndarray, sr: int, target_sr: int) -> np.ndarray:
    """Polyphase resampling (scipy) from sr to target_sr; returns float32."""
    if sr == target_sr or audio.size == 0:
        return audio.astype(np.float32, copy=False)
    from scipy.signal import resample_poly

    frac = Fraction(int(target_sr), int(sr)).limit_denominator(1000)
    return resample_poly(audio.astype(np.float64), frac.numerator, frac.denominator).astype(np.float32)


def _check(audio: np.ndarray, sr: int, name: str) -> None:
    if sr < MIN_SAMPLE_RATE:
        raise InputError(f"{name}: sample rate {sr} Hz is too low (need >= {MIN_SAMPLE_RATE})")
    if audio.size == 0:
        raise InputError(f"{name}: the audio is empty")
    if not np.isfinite(audio).all():
        raise InputError(f"{name}: the audio contains NaN or infinite samples")
    if audio.size / sr > MAX_AUDIO_SECONDS:
        raise InputError(f"{name}: {audio.size / sr / 60:.1f} minutes is longer than the {MAX_AUDIO_SECONDS / 60:.0f}-minute limit;"
                         " split it first")


def to_mono(audio: np.ndarray) -> np.ndarray:
    """Average channels ([N, C] as soundfile gives, or [C, N] as PyAV gives) to mono float32."""
    a = np.asarray(audio)
    if a.ndim == 2:
        a = a.mean(axis=1) if a.shape[0] >= a.shape[1] else a.mean(axis=0)
    elif a.ndim != 1:
        raise InputError(f"audio must be 1-D or 2-D, got shape {a.shape}")
    return a.astype(np.float32, copy=False)


def load_audio(path: str | os.PathLike[str], target_sr: int | None = None) -> tuple[np.ndarray, int]:
    """Load WAV/FLAC/OGG (soundfile) or anything FFmpeg reads (PyAV) as float32 mono; optional resample."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"audio file not found: {p}")
    if not p.is_file():
        raise InputError(f"not a file: {p}")
    if p.stat().st_size == 0:
        raise InputError(f"{p.name}: the file is empty")
    audio: np.ndarray | None = None
    sr = 0
    try:
        import soundfile as sf

        data, sr = sf.read(str(p), dtype="float32", always_2d=False)
        audio = to_mono(data)
    except Exception as sf_exc:  # not a libsndfile format: let FFmpeg try (mp3, m4a, webm, ...)
        try:
            audio, sr = _load_with_av(p)
        except InputError:
            raise
        except Exception as av_exc:
            raise InputError(f"{p.name} is not readable audio ({sf_exc}; {av_exc})") from None
    _check(audio, sr, p.name)
    if target_sr is not None and target_sr != sr:
        audio, sr = resample(audio, sr, target_sr), target_sr
    return audio, sr


def _load_with_av(p: Path) -> tuple[np.ndarray, int]:
    import av

    chunks: list[np.ndarray] = []
    with av.open(str(p)) as container:
        streams = [s for s in container.streams if s.type == "audio"]
        if not streams:
            raise InputError(f"{p.name} has no audio stream")
        stream = streams[0]
        sr = int(stream.rate or stream.codec_context.sample_rate or 0)
        resampler = av.AudioResampler(format="flt", layout="mono", rate=sr)
        total = 0
        for frame in container.decode(stream):
            for out in resampler.resample(frame):
                arr = out.to_ndarray().reshape(-1)
                chunks.append(arr)
                total += arr.size
                if total > (MAX_AUDIO_SECONDS + 1) * sr:
                    raise InputError(f"{p.name}: longer than the {MAX_AUDIO_SECONDS / 60:.0f}-minute limit")
    if not chunks:
        raise InputError(f"{p.name}: the audio is empty")
    return np.concatenate(chunks).astype(np.float32), sr


def save_wav(path: str | os.PathLike[str], audio: np.ndarray, sample_rate: int) -> Path:
    """Write 16-bit PCM WAV atomically (clipping to [-1, 1])."""
    import soundfile as sf

    a = np.clip(np.asarray(audio, dtype=np.float32), -1.0, 1.0)
    with atomic_path(path, suffix=".part.wav") as tmp:
        sf.write(str(tmp), a, int(sample_rate), subtype="PCM_16", format="WAV")
    return Path(path)


def rms_db(audio: np.ndarray) -> float:
    """Loudness as RMS in dBFS (-inf for silence)."""
    r = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))) if audio.size else 0.0
    return 20 * math.log10(r) if r > 0 else float("-inf")
