"""Audio in and out for every stage: load any common file as float32 mono, resample, save WAV atomically."""

from __future__ import annotations

import contextlib
import logging
import math
import os
import sys
import threading
import types
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from typing import Iterator

import numpy as np

from avatar.errors import InputError
from avatar.io import atomic_path

log = logging.getLogger(__name__)

#: Audio longer than this is refused (one hour): the stages work in memory.
MAX_AUDIO_SECONDS = 3600.0
#: At most this many samples are decoded (mono float32, 4 bytes each: 691 MB): an hour at 48 kHz, less above it.
MAX_AUDIO_SAMPLES = int(MAX_AUDIO_SECONDS * 48000)
#: Below this the rate cannot carry speech detail; we still accept it and upsample (telephone audio).
MIN_SAMPLE_RATE = 4000
#: Above this a file is refused (studio audio goes to 384 kHz; nothing above it is speech we could use).
MAX_SAMPLE_RATE = 384000
#: Channels read (they are averaged to mono); more is not a recording of a voice.
MAX_CHANNELS = 64
#: Samples decoded at a time.
_BLOCK = 1 << 16


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


def max_frames(sr: int, max_seconds: float | None = None) -> int:
    """The most samples a file at `sr` Hz may hold: `max_seconds` (MAX_AUDIO_SECONDS at most), and never more
    than MAX_AUDIO_SAMPLES."""
    seconds = MAX_AUDIO_SECONDS if max_seconds is None else min(float(max_seconds), MAX_AUDIO_SECONDS)
    return min(int(seconds * sr), MAX_AUDIO_SAMPLES)


def _span(seconds: float) -> str:
    return f"{seconds / 60:.1f} minutes" if seconds >= 120 else f"{seconds:.1f} s"


def _too_long(name: str, frames: int | None, sr: int, max_seconds: float | None) -> None:
    """Refuse audio over the limit; frames None: counted while decoding, which stopped at the limit."""
    limit = max_frames(sr, max_seconds) / sr
    length = "it" if frames is None else _span(frames / sr)
    what = f"{limit / 60:.0f}-minute" if limit >= 120 and limit % 60 == 0 else f"{limit:g} s"
    seconds = MAX_AUDIO_SECONDS if max_seconds is None else min(float(max_seconds), MAX_AUDIO_SECONDS)
    rate = f" at {sr} Hz" if seconds * sr > MAX_AUDIO_SAMPLES else ""
    raise InputError(f"{name}: {length} is longer than the {what} limit{rate}; split it first")


def to_mono(audio: np.ndarray) -> np.ndarray:
    """Average channels ([N, C] as soundfile gives, or [C, N] as PyAV gives) to mono float32."""
    a = np.asarray(audio)
    if a.ndim == 2:
        a = a.mean(axis=1) if a.shape[0] >= a.shape[1] else a.mean(axis=0)
    elif a.ndim != 1:
        raise InputError(f"audio must be 1-D or 2-D, got shape {a.shape}")
    return a.astype(np.float32, copy=False)


@dataclass(frozen=True)
class AudioInfo:
    """What an audio file's header says, before anything is decoded."""

    path: Path
    sample_rate: int
    channels: int
    #: Samples per channel as the header gives them; None where it does not say (a streamed FLAC, MP3, WebM...).
    frames: int | None
    #: "soundfile" (WAV, FLAC, OGG: libsndfile) or "av" (anything FFmpeg reads).
    backend: str
    format: str = ""

    @property
    def duration(self) -> float | None:
        """Seconds, when the header says."""
        return None if self.frames is None else self.frames / self.sample_rate


def probe_audio(path: str | os.PathLike[str], max_seconds: float | None = None) -> AudioInfo:
    """Read an audio file's header only and refuse (InputError) what cannot load within the limits: missing,
    empty, unreadable, a sample rate out of range, or longer by its header than `max_seconds` (MAX_AUDIO_SECONDS
    at most).

    The one gate every reader of user audio goes through (load_audio): memory is bounded before decoding.
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"audio file not found: {p}")
    if not p.is_file():
        raise InputError(f"not a file: {p}")
    if p.stat().st_size == 0:
        raise InputError(f"{p.name}: the file is empty")
    try:
        import soundfile as sf

        with sf.SoundFile(str(p)) as f:
            # libsndfile gives SF_COUNT_MAX where the header does not say (a FLAC written as a stream).
            frames = int(f.frames) if 0 <= f.frames < 2**62 else None
            info = AudioInfo(p, int(f.samplerate), int(f.channels), frames, "soundfile", str(f.format))
        if frames is None:  # libsndfile fails at the end of such a stream ("psf_fseek() failed"); FFmpeg does not
            with contextlib.suppress(Exception):
                info = _probe_with_av(p)
    except Exception as sf_exc:  # noqa: BLE001 - not a libsndfile format: let FFmpeg try (mp3, m4a, webm, ...)
        try:
            info = _probe_with_av(p)
        except InputError:
            raise
        except Exception as av_exc:  # noqa: BLE001 - FFmpeg (PyAV) raises many error types; both reasons are reported
            raise InputError(f"{p.name} is not readable audio ({sf_exc}; {av_exc})") from None
    if info.sample_rate < MIN_SAMPLE_RATE:
        raise InputError(f"{p.name}: sample rate {info.sample_rate} Hz is too low (need >= {MIN_SAMPLE_RATE})")
    if info.sample_rate > MAX_SAMPLE_RATE:
        raise InputError(f"{p.name}: sample rate {info.sample_rate} Hz is too high (at most {MAX_SAMPLE_RATE})")
    if not 1 <= info.channels <= MAX_CHANNELS:
        raise InputError(f"{p.name}: {info.channels} channels (1 to {MAX_CHANNELS} are read)")
    if info.frames is not None and info.frames > max_frames(info.sample_rate, max_seconds):
        _too_long(p.name, info.frames, info.sample_rate, max_seconds)
    if info.format == "WAV":
        _warn_if_cut_short(p, info)
    return info


def _probe_with_av(p: Path) -> AudioInfo:
    import av

    with av.open(str(p)) as container:
        streams = [s for s in container.streams if s.type == "audio"]
        if not streams:
            raise InputError(f"{p.name} has no audio stream")
        stream = streams[0]
        sr = int(stream.rate or stream.codec_context.sample_rate or 0)
        channels = int(getattr(stream.codec_context, "channels", 0) or len(stream.layout.channels) or 1)
    # A container's duration is an estimate (an MP3's comes from its first frame's bit rate): the decoder counts.
    return AudioInfo(p, sr, channels, None, "av", container.format.name)


def _warn_if_cut_short(p: Path, info: AudioInfo) -> None:
    """Log a warning when a WAV's data chunk says more bytes than the file holds (a recording cut off)."""
    try:
        with open(p, "rb") as fh:
            head = fh.read(12)
            if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                return
            size = p.stat().st_size
            while True:
                chunk = fh.read(8)
                if len(chunk) < 8:
                    return
                cid, n = chunk[:4], int.from_bytes(chunk[4:8], "little")
                if cid == b"data":
                    have = size - fh.tell()
                    if 0 < n < 0xFFFFFFFF and have < n:  # 0 and 0xFFFFFFFF: written as a stream, size unknown
                        log.warning("%s: the WAV is cut short: its header says %d bytes of audio, the file holds %d "
                                    "(%.2f s kept); the end of the recording is missing", p.name, n, have,
                                    (info.frames or 0) / info.sample_rate)
                    return
                fh.seek(n + (n & 1), 1)
    except OSError:
        return


def _blocks(info: AudioInfo) -> Iterator[np.ndarray]:
    """The file decoded as float32 mono blocks of about _BLOCK samples, one at a time."""
    if info.backend == "soundfile":
        import soundfile as sf

        with sf.SoundFile(str(info.path)) as f:
            while True:
                block = f.read(_BLOCK, dtype="float32", always_2d=True)
                if not len(block):
                    return
                yield block[:, 0].copy() if block.shape[1] == 1 else block.mean(axis=1, dtype=np.float32)
    else:
        import av

        with av.open(str(info.path)) as container:
            stream = [s for s in container.streams if s.type == "audio"][0]
            resampler = av.AudioResampler(format="flt", layout="mono", rate=info.sample_rate)
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    yield out.to_ndarray().reshape(-1).astype(np.float32, copy=False)
            for out in resampler.resample(None):  # what the resampler still holds
                yield out.to_ndarray().reshape(-1).astype(np.float32, copy=False)


def _count_frames(info: AudioInfo, cap: int) -> int:
    """Samples per channel, counted by decoding (nothing kept); stops once past `cap`."""
    if info.backend == "soundfile":
        n = 0
        for block in _blocks(info):
            n += block.size
            if n > cap:
                break
        return n
    import av

    n = 0
    with av.open(str(info.path)) as container:
        stream = [s for s in container.streams if s.type == "audio"][0]
        for frame in container.decode(stream):
            # At the stream's own rate (what the decode pass resamples to): no conversion needed to count.
            n += int(frame.samples) * info.sample_rate // int(frame.sample_rate or info.sample_rate)
            if n > cap:
                break
    return n


def _decode(info: AudioInfo, max_seconds: float | None) -> np.ndarray:
    """Decode into one buffer sized from the header, or, where the header does not say, after a first pass that
    only counts (memory stays one block); both stop at the length limit (a header that lies gains nothing)."""
    cap = max_frames(info.sample_rate, max_seconds)
    frames = info.frames
    if frames is None:
        frames = _count_frames(info, cap)
        if frames > cap:  # the header did not say: counting stopped at the limit
            _too_long(info.path.name, None, info.sample_rate, max_seconds)
    out = np.empty(min(frames, cap), dtype=np.float32)
    pos = 0
    for block in _blocks(info):
        take = min(block.size, out.size - pos)
        out[pos:pos + take] = block[:take]
        pos += take
        if pos >= out.size:
            break
    return out[:pos] if pos < out.size else out


def load_audio(path: str | os.PathLike[str], target_sr: int | None = None,
               max_seconds: float | None = None) -> tuple[np.ndarray, int]:
    """Load WAV/FLAC/OGG (soundfile) or anything FFmpeg reads (PyAV) as float32 mono; optional resample.

    The header is read first (probe_audio) and the file is refused before decoding when it is too long; then it
    is decoded a block at a time into one buffer, so memory is the mono result and one block, whatever the file.
    `max_seconds` lowers the length limit (MAX_AUDIO_SECONDS) for a caller that takes less (the app: 120 s).
    """
    info = probe_audio(path, max_seconds)
    try:
        audio = _decode(info, max_seconds)
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 - libsndfile and FFmpeg raise assorted errors on broken data
        raise InputError(f"{info.path.name} is not readable audio ({exc})") from None
    _check(audio, info.sample_rate, info.path.name)  # the length is bounded by _decode
    sr = info.sample_rate
    if target_sr is not None and target_sr != sr:
        audio, sr = resample(audio, sr, target_sr), target_sr
    return audio, sr


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
