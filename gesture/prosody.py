"""Audio prosody features for gesture: onsets, energy, F0, pitch accents and speech/silence, at the animation fps.

Analysis runs at 16 kHz with 10 ms hops: onsets are peaks of the half-wave rectified log-spectral flux
(Bello et al. 2005, "A Tutorial on Onset Detection in Music Signals") picked against a moving median;
F0 is WORLD's DIO with StoneMask refinement (Morise et al. 2016) through pyworld; pitch accents are local
F0 maxima on voiced, loud (stressed) stretches that rise at least one semitone above their surroundings
(the acoustic correlate of a ToBI H* accent); speech is energy within 35 dB of the clip's loud level.
Per-frame tracks are then sampled at frame times i / fps. When the speech's timeline is known (our TTS writes
one), a `stress` track adds impulses on the stressed vowels (`stress_events`), which the teacher uses for
beats and the model takes as its seventh conditioning channel (zero when there is no timeline).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import numpy as np

from avatar.audio import import_pyworld, resample
from avatar.errors import InputError
from avatar.signal import find_peaks
from avatar.types import Timeline

log = logging.getLogger(__name__)

ANALYSIS_SR = 16000
HOP_S = 0.010
#: Names of the columns of ProsodyFeatures.matrix(), the model's audio conditioning.
FEATURE_NAMES: tuple[str, ...] = ("energy", "onset", "logf0", "voiced", "speech", "accent", "stress")
#: A timeline may end this much after the audio (backends round event times); more means it is another clip's.
TIMELINE_SLACK_S = 0.5


@dataclass
class ProsodyFeatures:
    """Prosody of one clip: per-frame tracks at `fps` (length num_frames) and event times in seconds."""

    fps: float
    duration: float
    energy: np.ndarray  # [T] loudness mapped to 0..1 (0 = 60 dB below the clip's loud level)
    onset_strength: np.ndarray  # [T] spectral flux, 0..1
    f0: np.ndarray  # [T] Hz, 0 where unvoiced
    voiced: np.ndarray  # [T] bool
    speech: np.ndarray  # [T] bool
    onsets: np.ndarray  # [K] seconds
    onset_weights: np.ndarray  # [K] peak strength 0..1
    accents: np.ndarray  # [A] seconds
    accent_weights: np.ndarray  # [A] prominence in semitones
    stress: np.ndarray | None = None  # [T] stressed-vowel impulses 0..1 from the timeline; None without one

    @property
    def num_frames(self) -> int:
        """Number of animation frames."""
        return int(self.energy.shape[0])

    def logf0_norm(self) -> np.ndarray:
        """log-F0 z-scored over the voiced frames (0 where unvoiced)."""
        out = np.zeros(self.num_frames, dtype=np.float32)
        v = self.voiced & (self.f0 > 0)
        if v.sum() >= 2:
            lf = np.log(self.f0[v])
            out[v] = (lf - lf.mean()) / max(lf.std(), 1e-3)
        return out

    def matrix(self) -> np.ndarray:
        """Per-frame features [T, len(FEATURE_NAMES)] (float32), the model's audio conditioning."""
        acc = np.zeros(self.num_frames, dtype=np.float32)
        idx = np.clip(np.round(self.accents * self.fps).astype(int), 0, max(0, self.num_frames - 1))
        if self.num_frames:
            acc[idx] = np.minimum(1.0, self.accent_weights / 3.0)
        stress = self.stress if self.stress is not None else np.zeros(self.num_frames, dtype=np.float32)
        return np.stack([self.energy, self.onset_strength, self.logf0_norm(), self.voiced.astype(np.float32),
                         self.speech.astype(np.float32), acc, stress], axis=1).astype(np.float32)

    def with_timeline(self, timeline: Timeline | None) -> "ProsodyFeatures":
        """A copy whose `stress` track comes from `timeline` (None removes it); refuses another clip's timeline."""
        if timeline is None:
            return replace(self, stress=None)
        if timeline.duration > self.duration + TIMELINE_SLACK_S:
            raise InputError(f"the timeline lasts {timeline.duration:.2f} s but the audio {self.duration:.2f} s;"
                             " is it the timeline of another clip?")
        if timeline.duration + TIMELINE_SLACK_S < self.duration:
            log.warning("the timeline covers %.2f s of %.2f s of audio; the rest has no stress marks",
                        timeline.duration, self.duration)
        stress = np.zeros(self.num_frames, dtype=np.float32)
        times, weights = stress_events(timeline)
        if self.num_frames and len(times):
            idx = np.round(times * self.fps).astype(int)
            keep = (idx >= 0) & (idx < self.num_frames)
            np.maximum.at(stress, idx[keep], weights[keep].astype(np.float32))
        return replace(self, stress=stress)


def stress_events(timeline: Timeline) -> tuple[np.ndarray, np.ndarray]:
    """Stressed-syllable times (s) and weights: IPA-marked stressed vowels, else content-word starts."""
    # eSpeak NG marks stress on the vowel: "ˈaʊ" primary, "ˌoʊ" secondary (ASCII ' and , too). The beat
    # lands on the stressed vowel's onset (Loehr 2004; Leonard & Cummins 2011).
    events = [(p.start, 1.0 if p.phoneme[0] in "ˈ'" else 0.4) for p in timeline.phonemes
              if p.phoneme and p.phoneme[0] in "ˈˌ',"]
    if not events:  # no stress marks: content words' starts (3+ letters; function words rarely carry beats)
        events = [(w.start, 0.4) for w in timeline.words if len(w.word.strip()) >= 3]
    if not events:
        return np.zeros(0), np.zeros(0)
    t, w = np.asarray(events, dtype=np.float64).T
    order = np.argsort(t, kind="stable")
    return t[order], w[order]


def _frames(x: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    pad = np.pad(x, (n_fft // 2, n_fft // 2))
    n = 1 + (len(pad) - n_fft) // hop
    idx = np.arange(n_fft)[None] + hop * np.arange(n)[:, None]
    return pad[idx]


def _resample_track(track: np.ndarray, hop_s: float, fps: float, n: int, how: str = "linear") -> np.ndarray:
    t_src = np.arange(len(track)) * hop_s
    t_dst = np.arange(n) / fps
    if how == "max":  # events: keep the strongest value within each animation frame
        out = np.zeros(n)
        k = np.clip(np.round(t_src * fps).astype(int), 0, n - 1)
        np.maximum.at(out, k, track)
        return out
    return np.interp(t_dst, t_src, track)


# scipy.signal and scipy.ndimage would cost this analysis about 1.5 s of a new process (every `avatar say` runs it),
# so the few functions it needs are written out below, step for step as scipy computes them;
# tests/test_scipy_equivalents.py compares each with scipy's on random inputs.


def binary_closing(x: np.ndarray, size: int) -> np.ndarray:
    """scipy.ndimage.binary_closing(x, np.ones(size)) for 1-D x: dilation, then erosion (outside x counts as 0)."""
    return _erode(_dilate(np.asarray(x, dtype=bool), size), size)


def binary_opening(x: np.ndarray, size: int) -> np.ndarray:
    """scipy.ndimage.binary_opening(x, np.ones(size)) for 1-D x: erosion, then dilation."""
    return _dilate(_erode(np.asarray(x, dtype=bool), size), size)


def _count(x: np.ndarray, size: int, back: int) -> np.ndarray:
    """True samples among x[i - back : i - back + size] for each i (outside x counts as false)."""
    c = np.concatenate([[0], np.cumsum(x, dtype=np.int64)])
    i = np.arange(x.size) - back
    return c[np.clip(i + size, 0, x.size)] - c[np.clip(i, 0, x.size)]


def _erode(x: np.ndarray, size: int) -> np.ndarray:
    return _count(x, size, size // 2) == size


def _dilate(x: np.ndarray, size: int) -> np.ndarray:
    return _count(x, size, (size - 1) // 2) > 0  # scipy mirrors the structure: even sizes lean the other way


def median_filter(x: np.ndarray, size: int) -> np.ndarray:
    """scipy.ndimage.median_filter(x, size, mode="nearest") for 1-D x and an odd size."""
    if size % 2 != 1:
        raise ValueError(f"size must be odd, got {size}")
    x = np.asarray(x, dtype=np.float64)
    windows = np.lib.stride_tricks.sliding_window_view(np.pad(x, size // 2, mode="edge"), size)
    out = np.empty(x.size)
    for s in range(0, x.size, 1 << 14):  # bounded memory for long audio
        out[s:s + (1 << 14)] = np.median(windows[s:s + (1 << 14)], axis=1)
    return out


def prosody_features(audio: np.ndarray, sr: int, fps: float = 30.0, duration: float | None = None,
                     timeline: Timeline | None = None) -> ProsodyFeatures:
    """Analyse mono float audio: onsets, energy, F0, pitch accents, speech/silence (+ timeline stress) at `fps`."""
    a = np.asarray(audio)
    if a.ndim != 1 or a.size == 0:
        raise InputError(f"prosody needs non-empty mono audio, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise InputError("audio contains NaN or infinite samples")
    if not np.isfinite(fps) or fps <= 0:
        raise InputError(f"fps must be positive, got {fps}")
    dur = len(a) / sr if duration is None else float(duration)
    n = max(1, int(round(dur * fps)))
    x = resample(a.astype(np.float32), int(sr), ANALYSIS_SR).astype(np.float64)
    hop = int(ANALYSIS_SR * HOP_S)
    fr = _frames(x, 512, hop)
    # Energy (RMS dB) relative to the loud level (95th percentile) of the clip.
    rms_db = 10 * np.log10(np.mean(fr * fr, axis=1) + 1e-10)
    loud = np.percentile(rms_db, 95)
    energy = np.clip((rms_db - (loud - 60.0)) / 60.0, 0.0, 1.0)
    speech = (rms_db > loud - 35.0) & (rms_db > -60.0)
    gap = max(1, int(0.15 / HOP_S))
    speech = binary_closing(speech, gap) if speech.any() else speech  # bridge short pauses
    speech = binary_opening(speech, max(1, int(0.05 / HOP_S))) if speech.any() else speech
    # Spectral flux on a log-compressed magnitude spectrum.
    mag = np.abs(np.fft.rfft(fr * np.hanning(512)[None], axis=1))
    logmag = np.log1p(100.0 * mag)
    flux = np.maximum(0.0, np.diff(logmag, axis=0, prepend=logmag[:1])).sum(axis=1)
    flux = flux / max(np.percentile(flux, 99), 1e-9)
    base = median_filter(flux, int(0.5 / HOP_S) | 1)
    peaks, props = find_peaks(flux - base, height=0.15, distance=max(1, int(0.08 / HOP_S)), prominence=0.1)
    peaks = peaks[speech[np.minimum(peaks + 2, len(speech) - 1)] | speech[peaks]]
    onsets = peaks * HOP_S
    onset_w = np.clip(flux[peaks], 0.0, 1.0)
    # F0 with DIO + StoneMask (fast; harvest is ~70x slower for little gain on clean speech).
    pw = import_pyworld()

    f0, t = pw.dio(x, ANALYSIS_SR, f0_floor=60.0, f0_ceil=500.0, frame_period=HOP_S * 1000, speed=4)
    f0 = pw.stonemask(x, f0, t, ANALYSIS_SR)
    m = min(len(f0), len(rms_db))
    f0, voiced_h = f0[:m], (f0[:m] > 0) & speech[:m]
    # Pitch accents: peaks of smoothed semitone F0 on voiced, stressed (louder than median speech) frames.
    accents = np.zeros(0)
    acc_w = np.zeros(0)
    if voiced_h.sum() > 5:
        st = np.zeros(m)
        st[voiced_h] = 12 * np.log2(f0[voiced_h] / np.median(f0[voiced_h]))
        # Fill unvoiced gaps by interpolation so peaks are measured against the surrounding contour.
        vi = np.flatnonzero(voiced_h)
        st_f = np.interp(np.arange(m), vi, st[vi])
        k = max(1, int(0.05 / HOP_S))
        st_s = np.convolve(st_f, np.ones(k) / k, mode="same")
        stressed = voiced_h & (rms_db[:m] > np.median(rms_db[:m][speech[:m]]) - 3.0)
        pk, pp = find_peaks(st_s, prominence=1.0, distance=max(1, int(0.2 / HOP_S)), wlen=int(1.0 / HOP_S))
        keep = stressed[pk]
        accents, acc_w = pk[keep] * HOP_S, pp["prominences"][keep]
    f0_t = _resample_track(np.where(voiced_h, f0, 0.0), HOP_S, fps, n)
    voiced = _resample_track(voiced_h.astype(float), HOP_S, fps, n) > 0.5
    f0_t = np.where(voiced, f0_t, 0.0)
    feat = ProsodyFeatures(
        fps=float(fps), duration=dur,
        energy=_resample_track(energy, HOP_S, fps, n).astype(np.float32),
        onset_strength=np.clip(_resample_track(flux, HOP_S, fps, n, "max"), 0, 1).astype(np.float32),
        f0=f0_t.astype(np.float32), voiced=voiced,
        speech=_resample_track(speech.astype(float), HOP_S, fps, n) > 0.5,
        onsets=onsets[onsets < dur], onset_weights=onset_w[onsets < dur],
        accents=accents[accents < dur], accent_weights=acc_w[accents < dur],
    )
    return feat.with_timeline(timeline) if timeline is not None else feat
