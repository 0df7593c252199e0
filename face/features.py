"""Audio features for the face model: log-mel spectrogram, energy, voicing and F0, aligned to animation frames.

Audio (any rate, mono or stereo) is resampled to 16 kHz; feature frame k is centred at k / (fps * per_frame)
seconds, so with the defaults (30 fps, 2 per frame) animation frame i owns feature frames 2i and 2i+1, and
there is no drift however long the audio (the hop is 266.67 samples: each frame's start is rounded to the
nearest sample instead of using an integer hop). Each frame is a 32 ms Hann window, zero-padded to a
1024-point FFT; the mel filterbank has 80 bands on the Slaney scale, 20 Hz-8 kHz (as librosa's default).
Pitch is the normalised autocorrelation of the same frame divided by the window's own autocorrelation
(Boersma 1993, the method behind Praat's "To Pitch (ac)"), with Praat's octave cost; it reuses the FFT, so it
is nearly free. `f0_method="dio"` uses pyworld's DIO + StoneMask instead (slower, for training data).
(Hand-written STFT: torchaudio is not installable here, scipy's STFT needs an integer hop, and librosa is not
a dependency.)
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from avatar.audio import MIN_SAMPLE_RATE, import_pyworld, load_audio, resample, to_mono
from avatar.errors import InputError


@dataclass(frozen=True)
class FeatureConfig:
    """Settings of the feature extractor (the face model stores these in its config)."""

    sample_rate: int = 16000
    n_mels: int = 80
    per_frame: int = 2        # feature frames per animation frame
    win: int = 512            # analysis window, samples (32 ms at 16 kHz)
    n_fft: int = 1024         # zero-padded FFT: room for the autocorrelation without wrap-around
    fmin: float = 20.0
    fmax: float = 8000.0
    f0_min: float = 65.0
    f0_max: float = 400.0
    voicing_threshold: float = 0.45  # normalised autocorrelation peak above which a frame is voiced
    silence_db: float = -55.0        # frames quieter than this (dBFS RMS) are unvoiced


DEFAULT = FeatureConfig()
_LOG_FLOOR = 1e-6
_ENERGY_FLOOR_DB = -100.0


@dataclass
class AudioFeatures:
    """Per feature frame: log-mel [N, n_mels], energy (dBFS RMS) [N], voicing in [0, 1] [N], F0 Hz [N] (0: unvoiced)."""

    mel: np.ndarray
    energy_db: np.ndarray
    voicing: np.ndarray
    f0: np.ndarray
    fps: float
    per_frame: int

    @property
    def num_frames(self) -> int:
        """Animation frames covered."""
        return self.mel.shape[0] // self.per_frame

    @property
    def dim(self) -> int:
        """Features per feature frame in `matrix()`."""
        return self.mel.shape[1] + 3

    def matrix(self) -> np.ndarray:
        """Model input per feature frame [N, n_mels + 3]: log-mel, energy/20, voicing, voiced log2(F0/100)."""
        lf0 = np.where(self.f0 > 0, np.log2(np.maximum(self.f0, 1.0) / 100.0), 0.0)
        return np.concatenate([self.mel, (self.energy_db / 20.0)[:, None], self.voicing[:, None], lf0[:, None]],
                              axis=1).astype(np.float32)

    def by_frame(self) -> np.ndarray:
        """Model input per animation frame [T, per_frame * dim]."""
        m = self.matrix()
        return m.reshape(self.num_frames, self.per_frame * m.shape[1])

    def activity(self) -> np.ndarray:
        """Speaking (1) or silent (0) per animation frame, from energy with short gaps closed."""
        from scipy.ndimage import binary_closing, binary_opening

        e = self.energy_db.reshape(self.num_frames, self.per_frame).max(axis=1)
        if e.size == 0 or e.max() <= DEFAULT.silence_db:
            return np.zeros(e.size)
        thr = max(DEFAULT.silence_db, float(np.percentile(e, 95)) - 30.0)
        on = e > thr
        k = max(1, int(round(0.2 * self.fps)))  # bridge gaps under 200 ms (stop closures, short pauses)
        on = binary_closing(np.pad(on, k), structure=np.ones(k))[k:-k]
        on = binary_opening(on, structure=np.ones(max(1, int(round(0.05 * self.fps)))))
        return on.astype(np.float64)

    def emphasis(self) -> np.ndarray:
        """Where the voice stresses, per animation frame in [0, 1]: loud voiced frames above the local level."""
        from scipy.ndimage import gaussian_filter1d, median_filter

        e = self.energy_db.reshape(self.num_frames, self.per_frame).max(axis=1)
        v = self.voicing.reshape(self.num_frames, self.per_frame).max(axis=1)
        if e.size == 0:
            return np.zeros(0)
        local = median_filter(e, size=max(3, int(round(1.5 * self.fps))), mode="nearest")
        x = gaussian_filter1d(np.maximum(e - local, 0.0) * (v > 0.5), sigma=max(0.5, 0.05 * self.fps))
        return np.clip(x / 6.0, 0.0, 1.0)  # 6 dB above the local median reads as full emphasis


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    """Slaney's mel scale: linear below 1 kHz (3 mel per 200 Hz), logarithmic above."""
    f = np.asarray(f, dtype=np.float64)
    return np.where(f < 1000.0, 3.0 * f / 200.0, 15.0 + 27.0 * np.log(np.maximum(f, 1e-9) / 1000.0) / np.log(6.4))


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    return np.where(m < 15.0, 200.0 * m / 3.0, 1000.0 * np.exp(np.log(6.4) * (m - 15.0) / 27.0))


@lru_cache(maxsize=8)
def _filterbank(n_fft: int, n_mels: int, fmin: float, fmax: float, sr: int) -> np.ndarray:
    """[n_fft // 2 + 1, n_mels] triangular filters on Slaney's mel scale, Slaney (constant-area) normalised."""
    # The textbook construction (librosa's and transformers' audio_utils give the same numbers, a test checks the
    # latter); written out because importing transformers for it costs a second or more per process.
    fft_hz = np.linspace(0.0, sr / 2.0, n_fft // 2 + 1)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax), n_mels + 2))
    rise = (fft_hz[:, None] - edges[None, :-2]) / np.diff(edges)[None, :-1]
    fall = (edges[None, 2:] - fft_hz[:, None]) / np.diff(edges)[None, 1:]
    bank = np.maximum(0.0, np.minimum(rise, fall))
    return (bank * (2.0 / (edges[2:] - edges[:-2]))[None]).astype(np.float32)


@lru_cache(maxsize=8)
def _window(win: int, n_fft: int) -> tuple[np.ndarray, np.ndarray]:
    w = np.hanning(win + 2)[1:-1].astype(np.float64)  # periodic-like Hann without zero end points
    rw = np.fft.irfft(np.abs(np.fft.rfft(w, n=n_fft)) ** 2)[:win]
    return w, rw / rw[0]


def frames_for(duration: float, fps: float) -> int:
    """Animation frames for a duration: round(duration * fps), at least 1 (as EmotionTrack.sample counts)."""
    return max(1, int(round(float(duration) * float(fps))))


def compute_features(audio: np.ndarray, sample_rate: int, fps: float = 30.0, num_frames: int | None = None,
                     config: FeatureConfig = DEFAULT, f0_method: str = "acf") -> AudioFeatures:
    """Features of float audio (mono, or stereo as [N, C] / [C, N]) aligned to num_frames animation frames."""
    fps = float(fps)
    if not math.isfinite(fps) or fps <= 0 or fps > 1000:
        raise InputError(f"fps must be in (0, 1000], got {fps!r}")
    raw = np.asarray(audio)
    if not np.issubdtype(raw.dtype, np.floating):
        raise InputError(f"audio must be float samples in [-1, 1], got {raw.dtype}")
    a = to_mono(raw)
    sr = int(sample_rate)
    if sr < MIN_SAMPLE_RATE:
        raise InputError(f"sample rate {sr} Hz is too low (need >= {MIN_SAMPLE_RATE})")
    if a.size == 0:
        raise InputError("the audio is empty")
    if not np.isfinite(a).all():
        raise InputError("the audio contains NaN or infinite samples")
    if f0_method not in ("acf", "dio"):
        raise InputError(f"f0_method must be 'acf' or 'dio', got {f0_method!r}")
    x = resample(a, sr, config.sample_rate).astype(np.float64)
    csr = config.sample_rate
    t_frames = frames_for(x.size / csr, fps) if num_frames is None else int(num_frames)
    if t_frames < 0:
        raise InputError(f"num_frames must be >= 0, got {num_frames}")
    n = t_frames * config.per_frame
    rate = fps * config.per_frame
    win, n_fft = config.win, config.n_fft
    half = win // 2
    centres = np.rint(np.arange(n) / rate * csr).astype(np.int64)
    pad_end = max(0, int(centres[-1]) + half + 1 - x.size) if n else 0
    xp = np.concatenate([np.zeros(half), x, np.zeros(pad_end + half)])
    w, rw = _window(win, n_fft)
    fb = _filterbank(n_fft, config.n_mels, config.fmin, min(config.fmax, csr / 2), csr)
    lag_lo = max(2, int(csr / config.f0_max))
    lag_hi = min(win // 2, int(math.ceil(csr / config.f0_min)))
    mel = np.empty((n, config.n_mels), dtype=np.float32)
    energy = np.empty(n)
    voicing = np.zeros(n)
    f0 = np.zeros(n)
    offs = np.arange(win)
    block = 4096  # frames per block: bounded memory for hour-long audio
    for b0 in range(0, n, block):
        b1 = min(n, b0 + block)
        fr = xp[centres[b0:b1, None] + offs[None]]  # centre c sits at index c + half in xp
        fr = fr - fr.mean(axis=1, keepdims=True)  # DC offset would read as low-frequency energy and pitch
        # float32 FFTs (numpy >= 2 keeps the dtype): twice as fast as float64, ample precision here. numpy.fft, not
        # scipy.fft (a few % faster here): importing scipy costs a new process about 0.3 s, and every `avatar say`
        # computes these features.
        spec = np.fft.rfft((fr * w[None]).astype(np.float32), n=n_fft)
        power = spec.real ** 2 + spec.imag ** 2
        mel[b0:b1] = np.log(power @ fb + _LOG_FLOOR)
        ms = np.mean(fr * fr, axis=1)
        energy[b0:b1] = 10.0 * np.log10(np.maximum(ms, 10 ** (_ENERGY_FLOOR_DB / 10)))
        if f0_method == "acf":
            ac = np.fft.irfft(power, n=n_fft)[:, :win].astype(np.float64)
            r0 = ac[:, :1]
            ok = r0[:, 0] > 1e-12
            r = np.zeros_like(ac)
            r[ok] = ac[ok] / r0[ok] / np.maximum(rw[None], 1e-3)
            seg = r[:, lag_lo:lag_hi + 1]
            lags = np.arange(lag_lo, lag_hi + 1)
            # Praat's octave cost favours the shortest period among near-equal peaks (no subharmonic errors).
            score = seg - 0.01 * np.log2(config.f0_min * lags / csr)[None]
            k = np.argmax(score, axis=1)
            peak = seg[np.arange(seg.shape[0]), k]
            # Parabolic interpolation of the peak for sub-sample lag precision.
            km = np.clip(k, 1, seg.shape[1] - 2)
            y0, y1, y2 = (seg[np.arange(seg.shape[0]), km + d] for d in (-1, 0, 1))
            den = y0 - 2 * y1 + y2
            delta = np.where(np.abs(den) > 1e-12, 0.5 * (y0 - y2) / np.where(den == 0, 1, den), 0.0)
            lag = lags[km] + np.clip(delta, -1, 1)
            loud = energy[b0:b1] > config.silence_db
            v = np.clip(peak, 0.0, 1.0) * loud
            voicing[b0:b1] = v
            f0[b0:b1] = np.where(v > config.voicing_threshold, csr / lag, 0.0)
    if f0_method == "dio" and n:
        f0, voicing = _dio(x, csr, rate, n, energy, config)
    return AudioFeatures(mel=mel, energy_db=energy.astype(np.float32), voicing=voicing.astype(np.float32),
                         f0=f0.astype(np.float32), fps=fps, per_frame=config.per_frame)


def _dio(x: np.ndarray, sr: int, rate: float, n: int, energy: np.ndarray, cfg: FeatureConfig) -> tuple[np.ndarray, np.ndarray]:
    pw = import_pyworld()

    period_ms = 1000.0 / rate
    f0, t = pw.dio(np.ascontiguousarray(x), sr, f0_floor=cfg.f0_min, f0_ceil=cfg.f0_max, frame_period=period_ms)
    f0 = pw.stonemask(np.ascontiguousarray(x), f0, t, sr)
    out = np.zeros(n)
    m = min(n, f0.size)
    out[:m] = f0[:m]
    out[energy <= cfg.silence_db] = 0.0
    return out, (out > 0).astype(np.float64)


def features_from_file(path: str | os.PathLike[str], fps: float = 30.0, num_frames: int | None = None,
                       config: FeatureConfig = DEFAULT, f0_method: str = "acf") -> AudioFeatures:
    """Load any audio file (avatar.audio.load_audio) and compute its features."""
    audio, sr = load_audio(path)
    return compute_features(audio, sr, fps=fps, num_frames=num_frames, config=config, f0_method=f0_method)
