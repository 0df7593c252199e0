"""WORLD analysis-resynthesis (pyworld) for what a synthesiser's own controls cannot do.

Reshapes the F0 contour (rise/fall across the sentence, final boundary, extra level and range), the spectral
tilt (vocal effort, brightness) and breathiness (aperiodicity), frame by frame on a fixed frame grid, so
the output has exactly as many samples as the input and every timeline event stays where it was.

Speed (the espeak backend must stay under a real-time factor of 0.05 on one core): DIO at speed 3 +
StoneMask for F0, CheapTrick for the envelope, and by default a fast parametric aperiodicity (periodic below
3 kHz in voiced frames, rising above, fully aperiodic in unvoiced frames) in place of D4C, which alone costs
about as much as the rest together; `aperiodicity="d4c"` uses WORLD's estimator instead.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from avatar.audio import import_pyworld
from avatar.tts.prosody import ProsodyParams

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorldEdit:
    """What to change: F0 level/range factors and contour, tilt, breathiness (neutral values do nothing)."""

    f0_factor: float = 1.0  # extra F0 level factor beyond what the engine reached
    range_factor: float = 1.0  # extra F0 excursion factor (log domain, about the median)
    contour_st: float = 0.0
    boundary_st: float = 0.0
    tilt_db_oct: float = 0.0
    breathiness: float = 0.0
    floor_st: float = 0.0  # >0: F0 pushed more than this many semitones below the input's median is compressed

    @classmethod
    def from_prosody(cls, p: ProsodyParams, f0_factor: float = 1.0, range_factor: float = 1.0) -> "WorldEdit":
        """The WORLD part of a prosody target (level and range residuals come from the engine mapping)."""
        return cls(f0_factor, range_factor, p.contour_st, p.boundary_st, p.tilt_db_oct, p.breathiness)

    def is_small(self, semitones: float = 1.0, tilt_db_oct: float = 1.0, breathiness: float = 0.1) -> bool:
        """True when every change is below these sizes (F0 level, range over a ~4-semitone span, contour and
        boundary in semitones; tilt in dB/octave; breathiness): too small to hear, not worth a resynthesis."""
        st = max(abs(12.0 * np.log2(max(self.f0_factor, 1e-6))), 4.0 * abs(self.range_factor - 1.0),
                 abs(self.contour_st), abs(self.boundary_st))
        return st < semitones and abs(self.tilt_db_oct) < tilt_db_oct and self.breathiness < breathiness

    def is_identity(self, tol: float = 1e-3) -> bool:
        """True when the edit would change nothing audible (then resynthesis is skipped)."""
        return (abs(self.f0_factor - 1) < tol and abs(self.range_factor - 1) < tol and abs(self.contour_st) < 0.05
                and abs(self.boundary_st) < 0.05 and abs(self.tilt_db_oct) < 0.05 and self.breathiness < 0.01)


FRAME_PERIOD_MS = 10.0
F0_FLOOR, F0_CEIL = 50.0, 700.0
BOUNDARY_SECONDS = 0.3
UNVOICED_PULSE_HZ = 100.0


@dataclass(frozen=True)
class WorldSettings:
    """How one voice's audio is analysed and resynthesised: the same path for every engine, tuned per voice."""

    frame_period_ms: float = FRAME_PERIOD_MS
    aperiodicity: str = "fast"  # 'fast' (parametric) or 'd4c' (WORLD's estimator)
    f0_method: str = "dio"  # see track_f0
    f0_range: tuple[float, float] = (F0_FLOOR, F0_CEIL)
    keep_unvoiced: bool = True  # the input's own samples in unvoiced frames (bursts, fricatives)
    envelope_floor: float = 0.0  # >0: the envelope is analysed at no less than this x the line's median F0
    min_st: float = 1.0  # edits below this (semitones; dB/octave of tilt; a tenth of it of breathiness) skip WORLD
    # >1: CheapTrick on slices of frames in threads (and Harvest on two pieces with split_f0); None: as many as
    # the engine's own model uses (the neural voice: $AVATAR_TTS_THREADS)
    threads: int | None = 1
    # with threads > 1, Harvest on two pieces cut at a pause (`harvest_pieces`): off, it moves some octave and
    # voicing choices (docs/tts.md)
    split_f0: bool = False


def fast_aperiodicity(f0: np.ndarray, n_bins: int, sr: int) -> np.ndarray:
    """Parametric band aperiodicity: near-periodic below 3 kHz in voiced frames, noise in unvoiced ones."""
    freqs = np.linspace(0.0, sr / 2.0, n_bins)
    voiced_ap = 0.001 + 0.999 * np.clip((freqs - 3000.0) / 5000.0, 0.0, 1.0) ** 1.5
    return np.where(f0[:, None] > 0, voiced_ap[None, :], 1.0)


def edit_f0(f0: np.ndarray, edit: WorldEdit, frame_period_ms: float = FRAME_PERIOD_MS,
            offsets_st: np.ndarray | None = None) -> np.ndarray:
    """Apply level, range, contour and boundary changes (and per-frame semitone offsets, e.g. pitch accents)
    to an F0 track (0 = unvoiced stays 0)."""
    out = f0.astype(np.float64).copy()
    voiced = np.flatnonzero(out > 0)
    if voiced.size < 2:
        return out
    lf = np.log2(out[voiced])
    med = float(np.median(lf))
    lf = med + (lf - med) * edit.range_factor + np.log2(edit.f0_factor)
    first, last = voiced[0], voiced[-1]
    pos = (voiced - first) / max(1, last - first)  # 0 at the first voiced frame, 1 at the last
    lf += edit.contour_st / 12.0 * (pos - 0.5)
    n_b = BOUNDARY_SECONDS * 1000.0 / frame_period_ms
    ramp = np.clip((voiced - (last - n_b)) / n_b, 0.0, 1.0)
    lf += edit.boundary_st / 12.0 * ramp
    if offsets_st is not None:
        off = np.zeros(out.size)
        n = min(out.size, np.asarray(offsets_st).size)
        off[:n] = np.asarray(offsets_st, dtype=np.float64)[:n]
        lf += off[voiced] / 12.0
    if edit.floor_st > 0:
        # A soft floor relative to the voice: what falls below keeps a third of its depth, so a lowered voice
        # keeps its shape without sinking into creak (vocal fry) on its low stretches.
        floor = med - edit.floor_st / 12.0
        lf = np.where(lf < floor, floor + (lf - floor) / 3.0, lf)
    out[voiced] = np.clip(2.0 ** lf, F0_FLOOR, F0_CEIL)
    return out


def tilt_gain(n_bins: int, sr: int, tilt_db_oct: float) -> np.ndarray:
    """Power gain per frequency bin for a tilt in dB/octave pivoting at 1 kHz (flat below 250 Hz)."""
    freqs = np.linspace(0.0, sr / 2.0, n_bins)
    octaves = np.log2(np.maximum(freqs, 250.0) / 1000.0)
    return 10.0 ** (np.clip(tilt_db_oct * octaves, -18.0, 12.0) / 10.0)


def track_f0(x: np.ndarray, sr: int, frame_period_ms: float = FRAME_PERIOD_MS, method: str = "dio",
             f0_range: tuple[float, float] = (F0_FLOOR, F0_CEIL)) -> tuple[np.ndarray, np.ndarray]:
    """F0 per frame (0 = unvoiced) and frame times: 'dio' (DIO + StoneMask, fast), 'dio-octave' (the same, with
    frames whose period is really twice DIO's halved: see `fix_octaves`) or 'harvest' (slower, steadier; its
    cost grows with the octaves of `f0_range`, the band searched)."""
    pw = import_pyworld()
    lo, hi = f0_range
    if method == "harvest":
        return pw.harvest(x, sr, f0_floor=lo, f0_ceil=hi, frame_period=frame_period_ms)
    if method not in ("dio", "dio-octave"):
        raise ValueError(f"f0 method must be 'dio', 'dio-octave' or 'harvest', got {method!r}")
    f0, t = pw.dio(x, sr, f0_floor=lo, f0_ceil=hi, frame_period=frame_period_ms, speed=3)
    f0 = pw.stonemask(x, f0, t, sr)
    if method == "dio-octave":
        f0 = pw.stonemask(x, fix_octaves(x, sr, f0, t), t, sr)
    return f0, t


def harvest_grid(sr: int, frame_period_ms: float) -> int:
    """The smallest cut step in samples that keeps Harvest's grids in place (its 1 ms internal frames, the output
    frames and its decimation by round(sr / 8000)), or 0 when none under 0.1 s exists: 441 (20 ms) at 22.05 kHz."""
    step = max(1, round(sr / 8000.0))
    for g in range(step, sr // 10 + 1, step):
        ms = g * 1000.0 / sr
        if abs(ms - round(ms)) < 1e-9 and abs(ms / frame_period_ms - round(ms / frame_period_ms)) < 1e-9:
            return g
    return 0


def pause_cut(n: int, sr: int, gaps: Sequence[tuple[int, int]], min_gap_s: float = 0.06, min_piece_s: float = 0.8,
              silence_cost: float = 0.35) -> tuple[int, int] | None:
    """The silent gap (a sample span at least `min_gap_s` long) to cut a line's F0 analysis in two at, leaving both
    pieces at least `min_piece_s` long, or None. The first piece also runs over silence to the line's end
    (`harvest_pieces`), which costs `silence_cost` of speech per second, so the pieces cost the same with the cut at
    (1 - silence_cost) / (2 - silence_cost) of the length (39 %): the gap nearest that point."""
    target = n * (1.0 - silence_cost) / (2.0 - silence_cost)
    ok = [(int(a), int(b)) for a, b in gaps if b - a >= min_gap_s * sr and 0 < a < b < n
          and min((a + b) / 2, n - (a + b) / 2) >= min_piece_s * sr]
    return min(ok, key=lambda g: abs((g[0] + g[1]) / 2 - target)) if ok else None


def harvest_pieces(x: np.ndarray, sr: int, frame_period_ms: float, f0_range: tuple[float, float],
                   cuts: Sequence[tuple[int, int]], pool: ThreadPoolExecutor) -> tuple[np.ndarray, np.ndarray]:
    """Harvest on the pieces of `x` between the silent gaps `cuts`, in `pool`'s threads (pyworld releases the GIL).

    Each piece runs over the whole gaps at its ends (cut on `harvest_grid`, so its frames fall on the full line's
    frame times) and on to the line's end in silence (Harvest's choices depend on where its input ends), and each
    gap's frames are split at its middle: close to one pass (the same frames but for a few at voicing edges), not
    bit-equal to it."""
    grid = harvest_grid(sr, frame_period_ms)
    n = x.size
    n_frames = int(1000.0 * n / sr / frame_period_ms) + 1
    t = np.arange(n_frames) * frame_period_ms / 1000.0
    spans, bounds = [], [0]
    for a, b in cuts:
        bounds.append(int(round((a + b) / 2.0 / sr * 1000.0 / frame_period_ms)))
    bounds.append(n_frames)
    edges = [0] + [a // grid * grid for a, _ in cuts]
    ends = [min(n, -(-b // grid) * grid) for _, b in cuts] + [n]
    spans = list(zip(edges, ends))
    lo, hi = f0_range
    pw = import_pyworld()
    jobs = []
    for s, e in spans:
        # Harvest's choices depend on where the signal ends (on joe, cutting a line at a pause moved 5-35 % of the
        # voiced frames before the cut); run on in silence to the line's own end, 0-1.9 % change voicing (docs/tts.md),
        # and the silence costs about a third of what speech does per second.
        piece = np.zeros(n - s)
        piece[: e - s] = x[s:e]
        jobs.append(pool.submit(pw.harvest, piece, sr, f0_floor=lo, f0_ceil=hi, frame_period=frame_period_ms))
    f0 = np.zeros(n_frames)
    for (s, _), (k0, k1), job in zip(spans, zip(bounds[:-1], bounds[1:]), jobs):
        piece = job.result()[0]
        first = int(round(s / sr * 1000.0 / frame_period_ms))  # the piece's frame 0 is this frame of the line
        k1 = min(k1, first + piece.size)
        f0[k0:k1] = piece[k0 - first:k1 - first]
    return f0, t


def cheaptrick_threads(x: np.ndarray, f0: np.ndarray, t: np.ndarray, sr: int, pool: ThreadPoolExecutor,
                       parts: int, f0_floor: float = 71.0) -> np.ndarray:
    """CheapTrick over slices of the frames in `pool`'s threads: each frame reads only its own window of `x`, so the
    result equals one call's."""
    pw = import_pyworld()
    cut = np.linspace(0, f0.size, parts + 1).astype(int)
    jobs = [pool.submit(pw.cheaptrick, x, np.ascontiguousarray(f0[a:b]), np.ascontiguousarray(t[a:b]), sr,
                        f0_floor=f0_floor) for a, b in zip(cut[:-1], cut[1:]) if b > a]
    return np.concatenate([j.result() for j in jobs], axis=0)


def subharmonic_ratio(x: np.ndarray, sr: int, f0: np.ndarray, t: np.ndarray, harmonics: int = 6,
                      window_s: float = 0.04) -> np.ndarray:
    """Per frame, the compressed spectrum's level at the odd multiples of f0/2 over its level at the multiples of f0
    (a subharmonic-to-harmonic ratio, after Sun 2002); 0 in unvoiced frames."""
    out = np.zeros(f0.size)
    voiced = np.flatnonzero(f0 > 0)
    if voiced.size == 0:
        return out
    n = int(window_s * sr)
    nfft = 1 << int(np.ceil(np.log2(2 * n)))
    centre = np.round(t[voiced] * sr).astype(int)
    idx = np.clip(centre[:, None] - n // 2 + np.arange(n)[None, :], 0, x.size - 1)
    spec = np.abs(np.fft.rfft(x[idx] * np.hanning(n)[None, :], nfft, axis=1))
    # Log-compressed so the weak odd subharmonics of a creaky voice count, not only the strongest peaks.
    spec = np.log1p(1000.0 * spec / max(float(spec.max()), 1e-12))
    top = nfft // 2
    hz = sr / nfft
    harm = np.zeros(voiced.size)
    sub = np.zeros(voiced.size)
    for k in range(1, harmonics + 1):
        for mult, acc in ((k, harm), (k - 0.5, sub)):
            b = np.round(mult * f0[voiced] / hz).astype(int)
            acc += np.max([spec[np.arange(voiced.size), np.clip(b + d, 0, top)] for d in (-1, 0, 1)], axis=0)
    out[voiced] = sub / np.maximum(harm, 1e-12)
    return out


def fix_octaves(x: np.ndarray, sr: int, f0: np.ndarray, t: np.ndarray, threshold: float = 0.8) -> np.ndarray:
    """Halve F0 in frames with strong subharmonics (DIO read the pulse rate of a creaky voice, not its period).

    On the Piper voice joe, DIO read about half of the voiced frames an octave above Harvest (median 169 Hz against
    ~110), so a WORLD edit would resynthesise them an octave up; with this check 1 % stay above (7 bench
    sentences). The voice's pitch is truly ambiguous in creaky stretches (Harvest itself reads some of them high),
    so the rule prefers the lower, steadier reading."""
    out = np.asarray(f0, dtype=np.float64).copy()
    halve = (subharmonic_ratio(x, sr, out, t) > threshold) & (out / 2.0 >= F0_FLOOR)
    out[halve] /= 2.0
    return out


def reshape(audio: np.ndarray, sr: int, edit: WorldEdit, aperiodicity: str = "fast",
            frame_period_ms: float = FRAME_PERIOD_MS, f0_offsets_st: np.ndarray | None = None,
            f0_method: str = "dio", f0_range: tuple[float, float] = (F0_FLOOR, F0_CEIL),
            keep_unvoiced: bool = False, envelope_floor: float = 0.0, threads: int = 1,
            gaps: Sequence[tuple[int, int]] = (), split_f0: bool = False) -> np.ndarray:
    """Resynthesise `audio` with the edit applied; same length, float32. Silence or no voicing passes through.

    f0_offsets_st: optional semitone offsets per analysis frame (frame i at i * frame_period_ms), added to
    the voiced frames after the other F0 changes (pitch accents on chosen syllables). f0_method and f0_range:
    the tracker (`track_f0`) and the band it searches. keep_unvoiced: the input's own samples stay in unvoiced
    frames (crossfaded over 5 ms), where WORLD's noise excitation would only smear the bursts and fricatives.
    envelope_floor > 0: CheapTrick smooths each voiced frame's spectrum over at least this x the line's median F0,
    so a stretch the tracker read an octave low (a creaky voice's alternate pulses) keeps no harmonic ripple at the
    true pitch in its envelope, which the resynthesis would sound an octave above the edited F0. threads > 1: the
    analysis uses that many threads (pyworld releases the GIL): CheapTrick on slices of frames, and with `split_f0`
    Harvest on two pieces cut in the middle of one of the silent `gaps` (sample spans, e.g. the pauses at commas;
    `pause_cut`, `harvest_pieces`)."""
    x = np.asarray(audio, dtype=np.float64)
    no_offsets = f0_offsets_st is None or not np.any(np.abs(f0_offsets_st) > 0.01)
    if (edit.is_identity() and no_offsets) or x.size < sr * 0.05 or not np.any(x):
        return np.asarray(audio, dtype=np.float32)
    if threads <= 1:
        return _reshape(x, sr, edit, aperiodicity, frame_period_ms, f0_offsets_st, f0_method, f0_range,
                        keep_unvoiced, envelope_floor, None, 1, gaps, False)
    with ThreadPoolExecutor(threads, thread_name_prefix="world") as pool:
        return _reshape(x, sr, edit, aperiodicity, frame_period_ms, f0_offsets_st, f0_method, f0_range,
                        keep_unvoiced, envelope_floor, pool, threads, gaps, split_f0)


def _reshape(x: np.ndarray, sr: int, edit: WorldEdit, aperiodicity: str, frame_period_ms: float,
             f0_offsets_st: np.ndarray | None, f0_method: str, f0_range: tuple[float, float], keep_unvoiced: bool,
             envelope_floor: float, pool: ThreadPoolExecutor | None, threads: int,
             gaps: Sequence[tuple[int, int]], split_f0: bool) -> np.ndarray:
    """`reshape`'s work on float64 input, with `pool` (threads workers) for the analysis when given."""
    pw = import_pyworld()
    cut = None
    if split_f0 and pool is not None and f0_method == "harvest" and harvest_grid(sr, frame_period_ms):
        cut = pause_cut(x.size, sr, gaps)
    if cut is not None:
        f0, t = harvest_pieces(x, sr, frame_period_ms, f0_range, [cut], pool)
    else:
        f0, t = track_f0(x, sr, frame_period_ms, f0_method, f0_range)
    if not np.any(f0 > 0):
        return np.asarray(x, dtype=np.float32)
    # CheapTrick's FFT size follows its F0 floor; 71 Hz (its default) keeps 1024 points at 22 kHz, half the
    # cost of a 50 Hz floor. Lower F0 frames still analyse, with a slightly smoother envelope.
    f0_env = f0
    if envelope_floor > 0:
        voiced = f0 > 0
        f0_env = np.where(voiced, np.maximum(f0, envelope_floor * float(np.median(f0[voiced]))), 0.0)
    if pool is not None:
        sp = cheaptrick_threads(x, f0_env, t, sr, pool, threads, f0_floor=71.0)
    else:
        sp = pw.cheaptrick(x, f0_env, t, sr, f0_floor=71.0)
    if aperiodicity == "d4c":
        ap = pw.d4c(x, f0, t, sr)
    elif aperiodicity == "fast":
        ap = fast_aperiodicity(f0, sp.shape[1], sr)
    else:
        raise ValueError(f"aperiodicity must be 'fast' or 'd4c', got {aperiodicity!r}")
    if abs(edit.tilt_db_oct) >= 0.05:
        # Tilt changes timbre, not level: keep each frame's energy so loudness stays with the volume control.
        before = sp.sum(axis=1, keepdims=True)
        sp = sp * tilt_gain(sp.shape[1], sr, edit.tilt_db_oct)[None, :]
        sp *= before / np.maximum(sp.sum(axis=1, keepdims=True), 1e-30)
    if edit.breathiness >= 0.01:
        freqs = np.linspace(0.0, sr / 2.0, sp.shape[1])
        w = edit.breathiness * np.clip((freqs - 500.0) / 2500.0, 0.0, 1.0)
        ap = np.where(f0[:, None] > 0, ap + (1.0 - ap) * w[None, :], ap)
    f0 = edit_f0(f0, edit, frame_period_ms, offsets_st=f0_offsets_st)
    # WORLD excites unvoiced frames with noise bursts at 500 Hz; fully aperiodic frames at 100 Hz give the same
    # noise (same spectrum and level, measured) with a fifth of the pulses, which halves the synthesis time.
    unvoiced = f0 <= 0
    ap[unvoiced] = 1.0
    f0 = np.where(unvoiced, UNVOICED_PULSE_HZ, f0)
    y = pw.synthesize(f0, np.ascontiguousarray(sp), np.ascontiguousarray(ap), sr, frame_period=frame_period_ms)
    # WORLD's output length is set by the frame count; match the input exactly so the timeline holds.
    if y.size >= x.size:
        y = y[: x.size]
    else:
        y = np.concatenate([y, np.zeros(x.size - y.size)])
    if keep_unvoiced:
        y = _splice_unvoiced(x, y, ~unvoiced, t, sr)
    return y.astype(np.float32)


def express(audio: np.ndarray, sr: int, edit: WorldEdit, settings: WorldSettings,
            f0_offsets_st: np.ndarray | None = None, gaps: Sequence[tuple[int, int]] = ()) -> np.ndarray:
    """Every engine's WORLD step: an edit too small to hear (`settings.min_st`) leaves the audio as it is,
    anything else is `reshape`d with the voice's settings; same length, float32. `gaps`: the line's silent sample
    spans (pauses), where a threaded analysis may cut it."""
    no_offsets = f0_offsets_st is None or not np.any(np.abs(f0_offsets_st) > 0.01)
    m = settings.min_st
    if no_offsets and m > 0 and edit.is_small(m, m, 0.1 * m):
        return np.asarray(audio, dtype=np.float32)
    return reshape(audio, sr, edit, aperiodicity=settings.aperiodicity, frame_period_ms=settings.frame_period_ms,
                   f0_offsets_st=f0_offsets_st, f0_method=settings.f0_method, f0_range=settings.f0_range,
                   keep_unvoiced=settings.keep_unvoiced, envelope_floor=settings.envelope_floor,
                   threads=settings.threads or 1, gaps=gaps, split_f0=settings.split_f0)


def _splice_unvoiced(x: np.ndarray, y: np.ndarray, voiced: np.ndarray, t: np.ndarray, sr: int,
                     fade_s: float = 0.005) -> np.ndarray:
    """y in voiced frames, x elsewhere, with raised-cosine crossfades of `fade_s` at each voicing change."""
    n = x.size
    centres = np.round(t * sr).astype(int)
    # Frame k owns the samples from the midpoint before its centre to the one after (clipped to the signal).
    edges = np.clip(np.concatenate([[0], (centres[1:] + centres[:-1]) // 2, [n]]), 0, n)
    mask = np.repeat(voiced.astype(np.float64), np.diff(edges))
    w = max(1, int(fade_s * sr))
    ramp = np.hanning(2 * w + 1)
    mask = np.convolve(mask, ramp / ramp.sum(), mode="same")
    return mask * y + (1.0 - mask) * x
