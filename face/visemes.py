"""Visemes to ARKit mouth shapes, with coarticulation (Cohen & Massaro 1993 dominance functions).

`mouth_curves(timeline, fps, num_frames)` turns a Timeline's phonemes (each carrying one of the 15 Oculus
viseme classes, avatar.types.VISEMES) into per-frame ARKit-52 weights: only the mouth, jaw and tongue
channels are set, everything else is 0. Each phoneme pulls every channel towards its viseme's target with a
dominance that is flat over the phoneme and decays exponentially outside it (anticipation before, carry-over
after); per channel group the output is the dominance-weighted mean of the targets (Cohen & Massaro 1993,
"Modeling coarticulation in synthetic visual speech"). Dominance differs per channel group, so e.g. a /s/ or
/k/ barely constrains lip rounding and a neighbouring /u/ rounds the lips through it (anticipatory rounding),
while /p b m/ dominate lip closure. After blending, bilabial closure is enforced: every p/b/m gets at least
one frame with the lips sealed (mouthClose = jawOpen, the ARKit way of closing the lips over an open jaw).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from avatar.errors import InputError
from avatar.face.blendshapes import ARKIT_INDEX, blendshape_matrix
from avatar.types import ARKIT_BLENDSHAPES, VISEMES, Timeline

IDX = ARKIT_INDEX


def _both(name: str, w: float) -> dict[str, float]:
    """A left/right pair at the same weight (speech is nearly symmetric)."""
    return {f"{name}Left": w, f"{name}Right": w}


# Targets per viseme, in ARKit weights. Chosen from the articulation of each class (Oculus OVR LipSync viseme
# reference images; Apple's ARFaceAnchor blend shape descriptions) and tuned so open vowels drop the jaw,
# rounded vowels pucker/funnel and bilabials seal the lips. Rest (sil) is the neutral face: all zeros.
# Spread vowels use mouthStretch, not mouthSmile: the smile belongs to emotion (face.expression), so a
# spoken /i/ never reads as happiness downstream (face.rig).
_TARGETS: dict[str, dict[str, float]] = {
    "sil": {},
    # p b m: lips pressed together; the jaw stays nearly closed. mouthClose equals jawOpen (sealed lips).
    "PP": {"jawOpen": 0.06, "mouthClose": 0.06, **_both("mouthPress", 0.55), "mouthRollLower": 0.15,
           "mouthRollUpper": 0.10},
    # f v: lower lip tucked under the upper teeth, upper lip raised a little to show them.
    "FF": {"jawOpen": 0.08, "mouthRollLower": 0.65, **_both("mouthUpperUp", 0.25), "mouthShrugUpper": 0.10},
    # th: tongue between the teeth, jaw a little open.
    "TH": {"jawOpen": 0.16, "tongueOut": 0.35, **_both("mouthLowerDown", 0.10), **_both("mouthStretch", 0.05)},
    # t d: tongue tip on the ridge; small jaw opening, relaxed lips.
    "DD": {"jawOpen": 0.18, **_both("mouthStretch", 0.10), **_both("mouthLowerDown", 0.08)},
    # k g: back of the tongue raised; slightly more open than t/d.
    "kk": {"jawOpen": 0.22, **_both("mouthStretch", 0.10), **_both("mouthLowerDown", 0.05)},
    # ch j sh zh: lips protruded and flared (funnel), teeth close.
    "CH": {"jawOpen": 0.12, "mouthFunnel": 0.50, "mouthPucker": 0.25, **_both("mouthUpperUp", 0.10)},
    # s z: teeth together, lips spread to show them.
    "SS": {"jawOpen": 0.06, **_both("mouthStretch", 0.30), **_both("mouthUpperUp", 0.12),
           **_both("mouthLowerDown", 0.12)},
    # n l: like t/d, tongue hidden.
    "nn": {"jawOpen": 0.14, **_both("mouthStretch", 0.06), **_both("mouthLowerDown", 0.05)},
    # r (English approximant): lips rounded and pushed forward a little.
    "RR": {"jawOpen": 0.14, "mouthFunnel": 0.30, "mouthPucker": 0.30},
    # open vowels (father, cat, but): jaw dropped, lower lip down.
    "aa": {"jawOpen": 0.65, **_both("mouthLowerDown", 0.25), **_both("mouthUpperUp", 0.08),
           **_both("mouthStretch", 0.08)},
    # mid front vowels (bed, say): half open, spread.
    "E": {"jawOpen": 0.35, **_both("mouthStretch", 0.40), **_both("mouthLowerDown", 0.20)},
    # close front vowels (tip, see): small opening, strongly spread.
    "ih": {"jawOpen": 0.20, **_both("mouthStretch", 0.55), **_both("mouthUpperUp", 0.08),
           **_both("mouthLowerDown", 0.10)},
    # mid back rounded (go, thought): open and rounded (funnel).
    "oh": {"jawOpen": 0.42, "mouthFunnel": 0.60, "mouthPucker": 0.20, **_both("mouthLowerDown", 0.08)},
    # close back rounded (you, food, w): tight pucker, little jaw.
    "ou": {"jawOpen": 0.12, "mouthPucker": 0.75, "mouthFunnel": 0.35},
}


#: [15, 52] ARKit target per viseme, rows in avatar.types.VISEMES order.
VISEME_TARGETS: np.ndarray = blendshape_matrix(VISEMES, _TARGETS)

# Channel groups: coarticulation dominance is set per group, as Cohen & Massaro set it per parameter.
GROUPS: dict[str, tuple[str, ...]] = {
    "jaw": ("jawOpen", "jawForward", "tongueOut"),
    "round": ("mouthFunnel", "mouthPucker"),
    "spread": ("mouthStretchLeft", "mouthStretchRight", "mouthSmileLeft", "mouthSmileRight"),
    "seal": ("mouthClose", "mouthPressLeft", "mouthPressRight", "mouthRollLower", "mouthRollUpper",
             "mouthShrugUpper"),
    "vertical": ("mouthLowerDownLeft", "mouthLowerDownRight", "mouthUpperUpLeft", "mouthUpperUpRight"),
}
#: Every channel the mouth model writes; the rest of the face is left to expression and idle motion.
MOUTH_CHANNELS: tuple[str, ...] = tuple(n for g in GROUPS.values() for n in g)

# Dominance magnitude per viseme and group (Cohen & Massaro's alpha). High where the sound needs that
# articulator (vowels the jaw, PP/FF the seal, CH/RR/ou/oh the rounding); low where it does not care, so the
# neighbours' shape carries through.
_DOM: dict[str, dict[str, float]] = {
    #        jaw   round spread seal  vertical
    "sil": dict(jaw=0.5, round=0.5, spread=0.5, seal=0.5, vertical=0.5),
    "PP": dict(jaw=0.5, round=0.4, spread=0.4, seal=1.0, vertical=0.9),
    "FF": dict(jaw=0.5, round=0.4, spread=0.4, seal=1.0, vertical=0.9),
    "TH": dict(jaw=0.7, round=0.2, spread=0.3, seal=0.5, vertical=0.5),
    "DD": dict(jaw=0.5, round=0.1, spread=0.2, seal=0.3, vertical=0.3),
    "kk": dict(jaw=0.4, round=0.1, spread=0.2, seal=0.3, vertical=0.3),
    "CH": dict(jaw=0.6, round=1.0, spread=0.8, seal=0.5, vertical=0.6),
    "SS": dict(jaw=0.8, round=0.3, spread=0.7, seal=0.4, vertical=0.5),
    "nn": dict(jaw=0.4, round=0.1, spread=0.2, seal=0.3, vertical=0.3),
    "RR": dict(jaw=0.5, round=0.8, spread=0.5, seal=0.3, vertical=0.4),
    "aa": dict(jaw=1.0, round=0.7, spread=0.7, seal=0.8, vertical=0.8),
    "E": dict(jaw=0.9, round=0.7, spread=0.8, seal=0.7, vertical=0.7),
    "ih": dict(jaw=0.8, round=0.7, spread=0.9, seal=0.7, vertical=0.7),
    "oh": dict(jaw=0.9, round=1.0, spread=0.8, seal=0.7, vertical=0.7),
    "ou": dict(jaw=0.8, round=1.0, spread=0.8, seal=0.7, vertical=0.7),
}
_GROUP_NAMES = tuple(GROUPS)
_DOM_MATRIX = np.array([[_DOM[v][g] for g in _GROUP_NAMES] for v in VISEMES], dtype=np.float64)  # [15, G]


@dataclass(frozen=True)
class Coarticulation:
    """Time constants of the dominance functions (seconds) and sampling settings."""

    #: Anticipation: how far ahead a phoneme's dominance reaches (e^-1 point). Lips anticipate more than the
    #: jaw (Cohen & Massaro's theta_anticipatory < theta_carryover in their fits; Benguerel & Cowan 1974
    #: report lip rounding starting up to ~4 consonants early).
    tau_before: float = 0.08
    #: Carry-over after the phoneme ends.
    tau_after: float = 0.06
    #: Exponent c of Cohen & Massaro's exp(-theta * |t|^c); 1 in their model, we use 1.5 for softer edges.
    power: float = 1.5
    #: Dominance of the implicit rest target (neutral face) that holds the mouth closed far from any speech.
    rest_dominance: float = 0.02
    #: Sub-samples per frame: the frame is the mean over its interval, so a 30 ms /p/ still leaves a trace.
    subsamples: int = 4
    #: Silences (gaps or 'sil' phonemes) shorter than this are left to coarticulation, not relaxed to rest.
    min_pause: float = 0.06


DEFAULT = Coarticulation()


def _segments(timeline: Timeline, cfg: Coarticulation) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Phoneme spans plus explicit rest spans for pauses: starts, ends, viseme indices."""
    starts: list[float] = []
    ends: list[float] = []
    vis: list[int] = []
    sil = VISEMES.index("sil")
    cursor = 0.0
    for p in sorted(timeline.phonemes, key=lambda p: (p.start, p.end)):
        if p.start - cursor >= cfg.min_pause:
            starts.append(cursor)
            ends.append(p.start)
            vis.append(sil)
        if p.viseme == "sil" and p.end - p.start < cfg.min_pause:
            cursor = max(cursor, p.end)
            continue
        starts.append(p.start)
        ends.append(max(p.end, p.start + 1e-3))
        vis.append(VISEMES.index(p.viseme))
        cursor = max(cursor, p.end)
    end_time = max(timeline.duration, cursor)
    starts.append(cursor)  # rest after the last phoneme
    ends.append(end_time + 10.0)
    vis.append(sil)
    return np.asarray(starts), np.asarray(ends), np.asarray(vis, dtype=np.int64)


def _blend(times: np.ndarray, starts: np.ndarray, ends: np.ndarray, vis: np.ndarray,
           cfg: Coarticulation, weights: np.ndarray | None = None) -> np.ndarray:
    """Dominance-weighted mean of the targets at `times` -> [N, 52] (mouth channels only).

    weights scale each segment's dominance (its probability, for segments read from viseme posteriors).
    """
    out = np.zeros((times.size, len(ARKIT_BLENDSHAPES)), dtype=np.float64)
    if times.size == 0:
        return out
    # Only segments within reach matter: keep the arrays small for long audio.
    reach = 8.0 * max(cfg.tau_before, cfg.tau_after)
    keep = (ends >= times[0] - reach) & (starts <= times[-1] + reach)
    s, e, v = starts[keep], ends[keep], vis[keep]
    t = times[:, None]
    before = np.clip(s[None] - t, 0.0, None)  # time until the segment starts (anticipation)
    after = np.clip(t - e[None], 0.0, None)   # time since it ended (carry-over)
    decay = np.exp(-((before / cfg.tau_before) ** cfg.power) - ((after / cfg.tau_after) ** cfg.power))  # [N, S]
    if weights is not None:
        decay = decay * weights[keep][None]
    targets = VISEME_TARGETS[v]  # [S, 52]
    for gi, g in enumerate(_GROUP_NAMES):
        dom = decay * _DOM_MATRIX[v, gi][None]  # [N, S]
        cols = [IDX[n] for n in GROUPS[g]]
        num = dom @ targets[:, cols]
        den = dom.sum(axis=1, keepdims=True) + cfg.rest_dominance  # the rest target is all zeros
        out[:, cols] = num / den
    return out


def frame_times(num_frames: int, fps: float) -> np.ndarray:
    """Display time of each frame: frame i is shown at i / fps (as video and Live Link timecodes count)."""
    return np.arange(int(num_frames), dtype=np.float64) / float(fps)


def _check_args(fps: float, num_frames: int) -> tuple[float, int]:
    f = float(fps)
    if not math.isfinite(f) or f <= 0 or f > 1000:
        raise InputError(f"fps must be in (0, 1000], got {fps!r}")
    n = int(num_frames)
    if n < 0:
        raise InputError(f"num_frames must be >= 0, got {num_frames!r}")
    return f, n


def closure_weights(timeline: Timeline, fps: float, num_frames: int) -> np.ndarray:
    """Per frame, how strictly the lips must be sealed (1 during p/b/m, 0.5 on the frames beside them)."""
    fps, n = _check_args(fps, num_frames)
    w = np.zeros(n, dtype=np.float64)
    if n == 0:
        return w
    t = frame_times(n, fps)
    for p in timeline.phonemes:
        if p.viseme != "PP":
            continue
        inside = np.nonzero((t >= p.start) & (t < p.end))[0]
        if inside.size == 0:  # shorter than a frame: seal the frame nearest its middle
            inside = np.array([int(np.clip(round((p.start + p.end) / 2 * fps), 0, n - 1))])
        w[inside] = 1.0
        for j in (inside[0] - 1, inside[-1] + 1):
            if 0 <= j < n:
                w[j] = max(w[j], 0.5)
    return w


def enforce_closure(frames: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Seal the lips where weights > 0: mouthClose follows jawOpen, lip-parting shapes fade, press rises."""
    f = np.array(frames, dtype=np.float64, copy=True)
    w = np.clip(np.asarray(weights, dtype=np.float64), 0.0, 1.0)[:, None]
    if f.shape[0] != w.shape[0]:
        raise InputError(f"closure weights have {w.shape[0]} frames, the motion {f.shape[0]}")
    jaw = IDX["jawOpen"]
    # The jaw cannot stay wide on a bilabial: cap it, then close the lips over what is left.
    f[:, jaw] = f[:, jaw] * (1 - w[:, 0]) + np.minimum(f[:, jaw], 0.12) * w[:, 0]
    f[:, IDX["mouthClose"]] = np.maximum(f[:, IDX["mouthClose"]], w[:, 0] * f[:, jaw])
    part = [IDX[n] for n in ("mouthFunnel", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthUpperUpLeft",
                             "mouthUpperUpRight", "tongueOut")]
    f[:, part] *= 1 - 0.85 * w
    f[:, IDX["mouthPucker"]] *= 1 - 0.5 * w[:, 0]  # lips may stay protruded (/b/ before /u/), but together
    for n in ("mouthPressLeft", "mouthPressRight"):
        f[:, IDX[n]] = np.maximum(f[:, IDX[n]], 0.4 * w[:, 0])
    return f


def mouth_curves(timeline: Timeline, fps: float, num_frames: int, cfg: Coarticulation = DEFAULT,
                 closure: bool = True) -> np.ndarray:
    """Coarticulated mouth shapes for a timeline: float32 [num_frames, 52] ARKit weights in [0, 1].

    closure=False skips sealing the lips on p/b/m, for callers that add more shapes and seal once at the end.
    """
    fps, n = _check_args(fps, num_frames)
    if not isinstance(timeline, Timeline):
        raise InputError(f"mouth_curves needs a Timeline, got {type(timeline).__name__}")
    out = np.zeros((n, len(ARKIT_BLENDSHAPES)), dtype=np.float64)
    if n == 0:
        return out.astype(np.float32)
    starts, ends, vis = _segments(timeline, cfg)
    k = max(1, int(cfg.subsamples))
    offsets = (np.arange(k) + 0.5) / k - 0.5  # box filter over the frame interval, centred on i / fps
    chunk = 256  # frames per block: few segments in reach, bounded memory for hour-long audio
    for a in range(0, n, chunk):
        b = min(n, a + chunk)
        t = ((np.arange(a, b)[:, None] + offsets[None]) / fps).reshape(-1)
        out[a:b] = _blend(t, starts, ends, vis, cfg).reshape(b - a, k, -1).mean(axis=1)
    if closure:
        out = enforce_closure(out, closure_weights(timeline, fps, n))
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def posterior_mouth_curves(probs: np.ndarray, fps: float, num_frames: int, cfg: Coarticulation = DEFAULT,
                           min_prob: float = 0.03) -> np.ndarray:
    """Coarticulated mouth shapes from per-frame viseme probabilities [T, 15]: float32 [num_frames, 52].

    Each frame counts as a segment of every viseme, its dominance scaled by that viseme's probability, so an
    uncertain frame gets the mix of its likely shapes instead of the single most likely one (a soft decoding of
    the viseme network: held-out openness r 0.58 against 0.52 for per-frame argmax runs, docs/face.md). No
    lip sealing: take closure_weights from a timeline. Probabilities below min_prob are dropped (speed).
    """
    fps, n = _check_args(fps, num_frames)
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != len(VISEMES) or not np.all(np.isfinite(p)):
        raise InputError(f"viseme probabilities must be finite [T, {len(VISEMES)}], got shape {p.shape}")
    out = np.zeros((n, len(ARKIT_BLENDSHAPES)), dtype=np.float64)
    frame, vis = np.nonzero(p > min_prob)
    if n == 0 or frame.size == 0:
        return out.astype(np.float32)
    starts, ends, weights = frame / fps, (frame + 1) / fps, p[frame, vis]
    k = max(1, int(cfg.subsamples))
    offsets = (np.arange(k) + 0.5) / k - 0.5
    chunk = 128  # many more segments than a timeline has: smaller blocks keep the matrices small
    for a in range(0, n, chunk):
        b = min(n, a + chunk)
        t = ((np.arange(a, b)[:, None] + offsets[None]) / fps).reshape(-1)
        out[a:b] = _blend(t, starts, ends, vis, cfg, weights).reshape(b - a, k, -1).mean(axis=1)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def mouth_openness(frames: np.ndarray) -> np.ndarray:
    """jawOpen minus mouthClose per frame: how far the lips are apart (the acceptance metric's signal)."""
    f = np.asarray(frames)
    return f[:, IDX["jawOpen"]] - f[:, IDX["mouthClose"]]
