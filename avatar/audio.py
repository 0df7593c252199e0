"""Audio in and out for every stage: load any common file as float32 mono, resample, save WAV atomically."""

from __future__ import annotations

import logging
import math
import os
import sys
import threading
import types
from fractions import Fraction
from functools import lru_cache
from pathlib import Path

import numpy as np

from avatar.errors import InputError
from avatar.io import atomic_path

log = logging.getLogger(__name__)

#: Audio longer than this is refused (one hour): the stages work in memory.
MAX_AUDIO_SECONDS = 3600.0
#: Below this the rate cannot carry speech detail; we still accept it and upsample (telephone audio).
MIN_SAMPLE_RATE = 4000


_PYWORLD_LOCK = threading.Lock()


def import_pyworld() -> types.ModuleType:
    """The pyworld module (WORLD vocoder), imported without importing pkg_resources.

    pyworld 0.3.5's __init__ imports pkg_resources only for `get_distribution("pyworld").version`, and importing
    pkg_resources scans every installed distribution: 0.25-0.45 s of each new process that speaks. While pyworld
    is imported, a stand-in answers that one call from importlib.metadata (the same version string); it is
    removed again right after, so a later `import pkg_resources` gets the real module.
    """
    with _PYWORLD_LOCK:
        if "pyworld" in sys.modules or "pkg_resources" in sys.modules:
            import pyworld

            return pyworld
        import importlib.metadata

        stand_in = types.ModuleType("pkg_resources")
        stand_in.get_distribution = (  # type: ignore[attr-defined]
            lambda name: types.SimpleNamespace(version=importlib.metadata.version(name)))
        sys.modules["pkg_resources"] = stand_in
        try:
            import pyworld
        except AttributeError:  # a pyworld that wants more of pkg_resources: the ordinary import
            sys.modules.pop("pkg_resources", None)
            import pyworld
        finally:
            if sys.modules.get("pkg_resources") is stand_in:
                del sys.modules["pkg_resources"]
        return pyworld


def resample(audio: np.ndarray, sr: int, target_sr: int) -> np.ndarray:
    """Polyphase resampling from sr to target_sr (scipy.signal.resample_poly's result); returns float32."""
    if sr == target_sr or audio.size == 0:
        return audio.astype(np.float32, copy=False)
    frac = Fraction(int(target_sr), int(sr)).limit_denominator(1000)
    return resample_poly(audio.astype(np.float64), frac.numerator, frac.denominator).astype(np.float32)


@lru_cache(maxsize=16)
def _lowpass(up: int, down: int) -> tuple[np.ndarray, int]:
    """resample_poly's default filter: firwin(20 * max_rate + 1, 1 / max_rate, window=("kaiser", 5.0)) * up."""
    rate = max(up, down)
    half = 10 * rate
    h = np.sinc(np.arange(-half, half + 1) / rate) / rate * np.kaiser(2 * half + 1, 5.0)
    return h / h.sum() * up, half


def resample_poly(x: np.ndarray, up: int, down: int) -> np.ndarray:
    """scipy.signal.resample_poly(x, up, down) for 1-D x with its defaults (Kaiser window, beta 5, zero padding).

    Written out because importing scipy.signal costs about 1 s of a new process and every `avatar say`
    resamples (tests/test_scipy_equivalents.py compares the two). Output i is sum_m x[m] h[half + i * down - m * up],
    h the filter at the upsampled rate. Outputs r * up + j (j < up) read inputs near r * down, each through its
    own taps of h, so a row of `up` outputs is one window of the input times a fixed [window, up] matrix.
    """
    x = np.asarray(x, dtype=np.float64)
    g = math.gcd(int(up), int(down))
    up, down = int(up) // g, int(down) // g
    if up == down == 1:
        return x.copy()
    mix, lo = _polyphase(up, down)
    width = mix.shape[0]
    n_out = -(-x.size * up // down)
    rows = -(-n_out // up)
    # Row r reads x[r * down + lo : r * down + lo + width] (zeros outside x).
    pad_left = max(0, -lo)
    xp = np.concatenate([np.zeros(pad_left), x, np.zeros(max(0, (rows - 1) * down + lo + width - x.size))])
    windows = np.lib.stride_tricks.sliding_window_view(xp, width)[lo + pad_left::down]
    out = np.empty((rows, up))
    step = max(1, (1 << 20) // width)  # rows per product: bounded memory for long audio
    for r0 in range(0, rows, step):
        out[r0:r0 + step] = windows[r0:r0 + step] @ mix
    return out.reshape(-1)[:n_out]


@lru_cache(maxsize=16)
def _polyphase(up: int, down: int) -> tuple[np.ndarray, int]:
    """[width, up] matrix taking a row's input window to its `up` outputs, and the window's offset."""
    h, half = _lowpass(up, down)
    t = np.arange(up) * down + half  # each output's position in the upsampled signal
    m = t[:, None] // up - np.arange(-(-h.size // up))[None]  # the inputs it reads: [up, taps]
    k = t[:, None] - m * up  # through these filter taps
    lo = int(m.min())
    mix = np.zeros((int(m.max()) - lo + 1, up))
    ok = k < h.size
    mix[(m - lo)[ok], np.broadcast_to(np.arange(up)[:, None], m.shape)[ok]] = h[k[ok]]
    return mix, lo


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
