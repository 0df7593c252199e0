"""Emotion (VAD) to prosody: a pure function grounded in the speech-emotion literature.

Each parameter is a linear rule over valence v, arousal a and dominance d (all in [-1, 1]); the rules and their
sources are in `RULES` (and docs/tts.md). The backbone is Schröder's dimensional prosody rules for the MARY
EmoSpeak system (Schröder 2004, "Dimensional emotion representation as a basis for speech synthesis with
non-extreme emotions", ADS 2004; also Schröder 2006, IEEE TASLP 14(4)), which express pitch, range, rate and
volume as linear functions of activation A, evaluation E and power P on a -100..100 scale; here A=100a etc.
Voice quality (spectral tilt, breathiness) and contour shape, which MARY's diphone voices could not change,
follow Juslin & Laukka (2003), Scherer (2003), Murray & Arnott (1993), Gobl & Ní Chasaide (2003),
Traunmüller & Eriksson (2000) and Ohala (1984).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from avatar.types import VAD

#: (parameter, rule, neutral value, sources). Kept as data so the docs and the code cannot disagree.
RULES: tuple[tuple[str, str, str, str], ...] = (
    ("rate", "1 + 0.5a + 0.2v, kept within 0.7..1.35 (x the voice's rate)", "1.0",
     "Schröder 2004 (rate +0.5A% +0.2E%); Juslin & Laukka 2003 (fast in anger/joy/fear, slow in sadness); the "
     "bounds keep strongly emotional lines intelligible (Schröder's rules are for non-extreme emotions)"),
    ("f0_scale", "1 + 0.3a + 0.1v - 0.1d (x the voice's F0 level)", "1.0",
     "Schröder 2004 (pitch +0.3A% +0.1E% -0.1P%); Ohala 1984 (dominance: lower pitch, the frequency code)"),
    ("range_st", "4 + 4a semitones (10th to 90th percentile of F0)", "4 st",
     "Schröder 2004 (range 4 + 0.04A semitones); Scherer 2003 (F0 variability rises with arousal)"),
    ("volume", "1 + 0.66a + 0.2d (amplitude factor, 0.3..1.8)", "1.0 (0 dB)",
     "Schröder 2004 (volume 50 + 0.33A on a 0..100 scale); Schröder et al. 2001 (power correlates with intensity)"),
    ("tilt_db_oct", "2.5a + 1.0v dB per octave above 1 kHz, energy kept", "0",
     "Juslin & Laukka 2003 (more high-frequency energy in high arousal); Traunmüller & Eriksson 2000 (vocal "
     "effort flattens the spectral slope); Tartter 1980 (smiled, positive speech is brighter)"),
    ("contour_st", "3v semitones from sentence start to end", "0",
     "Schröder 2004 (accent shape rising for positive, falling for negative evaluation); Murray & Arnott 1993 "
     "(upward inflections in happiness, downward in sadness)"),
    ("boundary_st", "-2d semitones over the last 0.3 s", "0",
     "Schröder 2004 (boundary low for high power, high for low power); Ohala 1984 (rising = submissive)"),
    ("breathiness", "0.5 max(0, -a) (aperiodic share added above 0.5 kHz)", "0",
     "Gobl & Ní Chasaide 2003 (breathy voice for low-arousal states: sad, relaxed, intimate)"),
)


@dataclass(frozen=True)
class ProsodyParams:
    """Prosody targets relative to the voice's neutral speech."""

    rate: float = 1.0  # speaking-rate factor
    f0_scale: float = 1.0  # F0 level factor
    range_st: float = 4.0  # F0 range (p10..p90) in semitones
    volume: float = 1.0  # amplitude factor
    tilt_db_oct: float = 0.0  # spectral tilt change, dB per octave (+ brighter)
    contour_st: float = 0.0  # F0 rise (+) or fall (-) across the sentence, semitones
    boundary_st: float = 0.0  # final F0 rise (+) or fall (-), semitones
    breathiness: float = 0.0  # 0..1

    @property
    def volume_db(self) -> float:
        """The volume factor in decibels."""
        return 20.0 * math.log10(self.volume)

    def as_dict(self) -> dict[str, float]:
        """Plain dict (for logs and the benchmark)."""
        return {k: round(v, 4) for k, v in asdict(self).items()}


NEUTRAL = ProsodyParams()


def _clip(x: float, lo: float, hi: float) -> float:
    return min(hi, max(lo, x))


def prosody_for(vad: VAD, strength: float = 1.0) -> ProsodyParams:
    """Map a VAD point to prosody targets (see RULES); `strength` scales the emotion (0 gives neutral)."""
    k = float(strength)
    if not math.isfinite(k) or k < 0:
        raise ValueError(f"strength must be a finite number >= 0, got {strength!r}")
    v, a, d = (k * float(x) for x in (vad.valence, vad.arousal, vad.dominance))
    return ProsodyParams(
        rate=_clip(1 + 0.5 * a + 0.2 * v, 0.7, 1.35),
        f0_scale=_clip(1 + 0.3 * a + 0.1 * v - 0.1 * d, 0.5, 1.8),
        range_st=_clip(4 + 4 * a, 0.5, 10.0),
        volume=_clip(1 + 0.66 * a + 0.2 * d, 0.3, 1.8),
        tilt_db_oct=_clip(2.5 * a + 1.0 * v, -4.0, 4.0),
        contour_st=_clip(3 * v, -4.0, 4.0),
        boundary_st=_clip(-2 * d, -3.0, 3.0),
        breathiness=_clip(0.5 * max(0.0, -a), 0.0, 1.0),
    )
