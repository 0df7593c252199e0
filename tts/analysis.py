"""Independent measurement of speech audio: F0, loudness and active-speech time, from the samples alone.

Used by the benchmark and the tests to check what the backends claim (they never read the prosody targets):
F0 by WORLD's Harvest or DIO + StoneMask on the output, loudness as the RMS level of active speech, and active
speech as the 10 ms frames within 35 dB of the loudest frame (and above -60 dBFS), so pauses do not count.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from avatar.audio import import_pyworld


ACTIVE_RANGE_DB = 35.0
FLOOR_DBFS = -60.0
FRAME_S = 0.010


@dataclass(frozen=True)
class SpeechMeasures:
    """What the analysis found in one clip."""

    f0_median: float  # Hz over voiced frames
    f0_p10: float
    f0_p90: float
    voiced_seconds: float
    loudness_db: float  # RMS dBFS over active frames
    active_seconds: float  # time with speech energy (pauses excluded)
    speech_start: float  # first active frame (s)
    speech_end: float  # end of the last active frame (s)

    @property
    def f0_range_st(self) -> float:
        """F0 range (10th to 90th percentile) in semitones."""
        return float(12 * np.log2(self.f0_p90 / self.f0_p10)) if self.f0_p10 > 0 else 0.0

    def as_dict(self) -> dict[str, float]:
        """Rounded plain dict."""
        return {k: round(float(v), 4) for k, v in asdict(self).items()}


def active_frames(audio: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-10 ms-frame RMS in dBFS and the active-speech mask."""
    hop = max(1, int(round(sr * FRAME_S)))
    n = audio.size // hop
    if n == 0:
        return np.zeros(0), np.zeros(0, bool)
    frames = audio[: n * hop].astype(np.float64).reshape(n, hop)
    db = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-20)
    return db, (db > db.max() - ACTIVE_RANGE_DB) & (db > FLOOR_DBFS)


def measure(audio: np.ndarray, sr: int, f0_method: str = "dio") -> SpeechMeasures:
    """Measure F0 (dio or harvest), active-speech loudness and timing of a mono clip."""
    x = np.asarray(audio, dtype=np.float64)
    pw = import_pyworld()

    if f0_method == "harvest":
        f0, _ = pw.harvest(x, sr, f0_floor=50.0, f0_ceil=600.0, frame_period=5.0)
    elif f0_method == "dio":
        f0, t = pw.dio(x, sr, f0_floor=50.0, f0_ceil=600.0, frame_period=5.0)
        f0 = pw.stonemask(x, f0, t, sr)
    else:
        raise ValueError(f"f0_method must be 'dio' or 'harvest', got {f0_method!r}")
    v = f0[f0 > 0]
    db, mask = active_frames(x, sr)
    idx = np.flatnonzero(mask)
    hop = max(1, int(round(sr * FRAME_S)))
    frames = x[: db.size * hop].reshape(db.size, hop) if db.size else np.zeros((0, hop))
    act = frames[mask]
    loud = float(10 * np.log10(np.mean(act**2) + 1e-20)) if act.size else float("-inf")
    return SpeechMeasures(
        f0_median=float(np.median(v)) if v.size else 0.0,
        f0_p10=float(np.percentile(v, 10)) if v.size else 0.0,
        f0_p90=float(np.percentile(v, 90)) if v.size else 0.0,
        voiced_seconds=v.size * 0.005,
        loudness_db=loud,
        active_seconds=idx.size * hop / sr,
        speech_start=float(idx[0] * hop / sr) if idx.size else 0.0,
        speech_end=float((idx[-1] + 1) * hop / sr) if idx.size else 0.0,
    )
