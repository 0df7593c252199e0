"""The procedural gesture teacher: speech prosody + VAD -> BodyMotion (beat gestures, posture, sway, breath).

It makes the training data for the gesture model from our own speech (docs/gesture.md has the rules and
sources). In short:
- Beat gestures (McNeill 1992) run preparation -> stroke -> (soft) hold -> retraction; the stroke ends, and the
  hand's speed has its minimum, on a beat: an acoustic onset, boosted when it carries a pitch accent or starts
  a word of the timeline (Loehr 2004; Leonard & Cummins 2011 put the stroke apex on the stressed syllable).
  Strokes close in time form one phrase that stays in gesture space; a phrase uses the right, left or both
  hands.
- Laban efforts from VAD, after EMOTE (Chi et al. 2000): Time (sudden vs sustained) from arousal sets the
  stroke duration and the beat rate; Weight (strong vs light) from arousal and dominance sets the stroke
  depth; Space/Shape (expansive vs contained) from valence and dominance sets arm abduction and gesture
  height. Wallbott 1998 and Castillo & Neff 2019 report larger, faster, higher movement with arousal, an
  expanded upright chest with pride/dominance, and a collapsed, slow posture with sadness.
- Posture from VAD and idle life (breathing, weight shifts, sway) come from `body_language`, the layer the
  pipeline also puts on the model's output; its last step solves the legs by two-bone IK onto planted ankles.
Same inputs and seed give the same motion.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from avatar.errors import InputError
from avatar.rig.rotations import euler_to_quat, identity_quat, quat_mirror_x, quat_mul
from avatar.rig.skeleton import HUMANOID
from avatar.types import VAD, BodyMotion, EmotionTrack, Timeline, check_seed

from .body_language import body_language
from .prosody import ProsodyFeatures, prosody_features, stress_events
from .repertoire import apply_repertoire

log = logging.getLogger(__name__)

VadLike = VAD | EmotionTrack | np.ndarray | list | tuple | None


@dataclass(frozen=True)
class Stroke:
    """One beat gesture: the stroke ends at `time`; `depth` is its size (0..~1.3); `hands` 'L', 'R' or 'LR'."""

    time: float
    duration: float
    depth: float
    hands: str


# --------------------------------------------------------------------------------------------------
# VAD -> Laban-style parameters (vectorised over frames)
# --------------------------------------------------------------------------------------------------


def vad_per_frame(vad: VadLike, n: int, fps: float) -> np.ndarray:
    """VAD as a float array [n, 3] from a VAD, an EmotionTrack, a 3-vector or a per-frame [n, 3] array."""
    if vad is None:
        return np.zeros((n, 3))
    if isinstance(vad, VAD):
        return np.repeat(vad.as_array()[None].astype(np.float64), n, axis=0)
    if isinstance(vad, EmotionTrack):
        return vad.sample(fps, duration=n / fps).astype(np.float64)[:n]
    arr = np.asarray(vad, dtype=np.float64)
    if arr.shape == (3,):
        VAD.from_array(arr)  # range and NaN checks
        return np.repeat(arr[None], n, axis=0)
    if arr.ndim == 2 and arr.shape[1] == 3:
        if not np.isfinite(arr).all() or np.abs(arr).max() > 1.0:
            raise InputError("per-frame VAD must be finite and within [-1, 1]")
        if arr.shape[0] != n:  # resample to the animation frames
            src = np.linspace(0.0, 1.0, arr.shape[0])
            dst = np.linspace(0.0, 1.0, n)
            arr = np.stack([np.interp(dst, src, arr[:, k]) for k in range(3)], axis=1)
        return arr
    raise InputError(f"VAD must be a VAD, an EmotionTrack, 3 numbers or a [T, 3] array, got shape {arr.shape}")


@dataclass(frozen=True)
class Effort:
    """Per-frame motion qualities derived from VAD (arrays [T])."""

    energy: np.ndarray  # (arousal + 1) / 2
    stroke_s: np.ndarray  # stroke duration, s (Time effort)
    min_gap: np.ndarray  # shortest time between strokes, s
    p_stroke: np.ndarray  # chance that a candidate beat gets a stroke
    depth: np.ndarray  # stroke size (Weight effort)
    height: np.ndarray  # 0..1 gesture height
    width: np.ndarray  # extra arm abduction, degrees (Space / Shape)


def effort_from_vad(vad: np.ndarray) -> Effort:
    """Map per-frame VAD [T, 3] onto gesture qualities (the table in docs/gesture.md)."""
    v, a, d = vad[:, 0], vad[:, 1], vad[:, 2]
    e = (a + 1) / 2
    return Effort(
        energy=e,
        stroke_s=0.34 - 0.18 * e,
        min_gap=1.2 - 0.85 * e,
        p_stroke=np.clip(0.3 + 0.65 * e + 0.05 * d, 0.05, 1.0),
        depth=np.clip(0.3 + 0.7 * e + 0.15 * d, 0.15, 1.2),
        height=np.clip(0.45 + 0.3 * a + 0.2 * v, 0.0, 1.0),
        width=np.clip(6.0 + 6.0 * (v + d) + 5.0 * a, 0.0, 22.0),
    )


# --------------------------------------------------------------------------------------------------
# Curves
# --------------------------------------------------------------------------------------------------


def minjerk_curve(keys_t: np.ndarray, keys_v: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Piecewise minimum-jerk (quintic) interpolation through keys, at rest (zero velocity) on every key."""
    kt = np.asarray(keys_t, dtype=np.float64)
    kv = np.asarray(keys_v, dtype=np.float64)
    if kt.size == 0:
        return np.zeros_like(t)
    if kt.size == 1:
        return np.full_like(t, kv[0])
    i = np.clip(np.searchsorted(kt, t, side="right") - 1, 0, kt.size - 2)
    span = np.maximum(kt[i + 1] - kt[i], 1e-6)
    s = np.clip((t - kt[i]) / span, 0.0, 1.0)
    h = s * s * s * (10 - 15 * s + 6 * s * s)
    return kv[i] + (kv[i + 1] - kv[i]) * h


def _clean_keys(keys: list[tuple[float, float]]) -> tuple[np.ndarray, np.ndarray]:
    keys = sorted(keys)
    out: list[tuple[float, float]] = []
    for k in keys:
        if out and k[0] - out[-1][0] < 1e-3:
            out[-1] = k  # a later key at the same time wins
        else:
            out.append(k)
    arr = np.array(out, dtype=np.float64).reshape(-1, 2)
    return arr[:, 0], arr[:, 1]


def smooth_noise(rng: np.random.Generator, t: np.ndarray, n: int, f_lo: float = 0.08, f_hi: float = 0.4) -> np.ndarray:
    """n channels of smooth band-limited noise [T, n] in about [-1, 1] (sum of 3 random sines each)."""
    f = rng.uniform(f_lo, f_hi, (3, n))
    ph = rng.uniform(0, 2 * np.pi, (3, n))
    amp = rng.uniform(0.5, 1.0, (3, n))
    out = (amp[None] * np.sin(2 * np.pi * f[None] * t[:, None, None] + ph[None])).sum(axis=1)
    return out / amp.sum(axis=0)[None]


# --------------------------------------------------------------------------------------------------
# Beat placement
# --------------------------------------------------------------------------------------------------


def beat_candidates(feat: ProsodyFeatures, timeline: Timeline | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Candidate beat times (s) and weights: onsets, boosted by a pitch accent or a stressed syllable near them."""
    times = list(feat.onsets)
    weights = [0.5 + 0.5 * float(w) for w in feat.onset_weights]
    for ta, wa in zip(feat.accents, feat.accent_weights):
        # An accent's F0 peak falls inside its syllable: credit the onset that starts it (within 0.25 s).
        k = [i for i, to in enumerate(times) if 0.0 <= ta - to <= 0.25]
        if k:
            weights[k[-1]] += min(1.0, wa / 3.0)
        else:
            times.append(float(ta))
            weights.append(0.5 + min(1.0, wa / 3.0))
    if timeline is not None:
        for te, boost in zip(*stress_events(timeline)):
            k = [i for i, to in enumerate(times) if abs(to - te) <= 0.08]
            if k:
                i = min(k, key=lambda i: abs(times[i] - te))
                weights[i] += boost
            else:
                times.append(float(te))
                weights.append(0.2 + boost)
    order = np.argsort(times)
    return np.asarray(times, dtype=np.float64)[order], np.asarray(weights, dtype=np.float64)[order]


def place_strokes(times: np.ndarray, weights: np.ndarray, eff: Effort, fps: float, duration: float,
                  rng: np.random.Generator) -> list[Stroke]:
    """Choose which candidate beats get a stroke: strongest first, spaced by the Time effort, thinned by chance."""
    n = len(eff.energy)
    fr = np.clip((times * fps).astype(int), 0, n - 1)
    jitter = rng.uniform(0.0, 0.3, len(times))
    chosen: list[int] = []
    for i in np.argsort(-(weights + jitter), kind="stable"):
        f = fr[i]
        if times[i] < eff.stroke_s[f] + 0.1 or times[i] > duration - 0.05:
            continue  # no room for the preparation, or after the end
        if rng.random() > min(1.0, eff.p_stroke[f] * (0.6 + 0.4 * weights[i])):
            continue
        if any(abs(times[i] - times[j]) < eff.min_gap[f] for j in chosen):
            continue
        chosen.append(int(i))
    chosen.sort(key=lambda j: times[j])
    strokes = []
    for i in chosen:
        f = fr[i]
        depth = float(eff.depth[f] * min(1.3, 0.7 + 0.3 * weights[i]) * rng.uniform(0.85, 1.15))
        strokes.append(Stroke(float(times[i]), float(eff.stroke_s[f]), depth, ""))
    return strokes


def assign_hands(strokes: list[Stroke], eff: Effort, fps: float, rng: np.random.Generator,
                 phrase_gap: float = 1.6) -> list[list[Stroke]]:
    """Group strokes into phrases (gaps < phrase_gap s) and give each phrase its hands."""
    phrases: list[list[Stroke]] = []
    for s in strokes:
        if phrases and s.time - phrases[-1][-1].time < phrase_gap:
            phrases[-1].append(s)
        else:
            phrases.append([s])
    out = []
    n = len(eff.energy)
    for ph in phrases:
        e = float(eff.energy[min(n - 1, int(ph[0].time * fps))])
        p_both = 0.15 + 0.35 * e  # two-handed beats grow with energy
        r = rng.random()
        hands = "LR" if r < p_both else ("R" if r < p_both + (1 - p_both) * 0.65 else "L")
        out.append([Stroke(s.time, s.duration, s.depth, hands) for s in ph])
    return out


# --------------------------------------------------------------------------------------------------
# The teacher
# --------------------------------------------------------------------------------------------------


def _arm_curves(phrases: list[list[Stroke]], side: str, t: np.ndarray, eff: Effort, fps: float
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Curves for one arm: raise (0 rest .. 1 in gesture space), beat (0 prep top .. depth at the stroke's end)
    and loop (the recovery's out-and-up swing between strokes).

    Every curve has a key, hence zero velocity, at each stroke's end, so the hand's speed minimum falls on the
    beat; elsewhere the keys of the three curves are staggered so the hand keeps moving (no spurious minima
    at the top of the preparation: the path loops, as recorded beats do).
    """
    r_keys: list[tuple[float, float]] = [(-10.0, 0.0)]
    b_keys: list[tuple[float, float]] = [(-10.0, 0.0)]
    c_keys: list[tuple[float, float]] = [(-10.0, 0.0)]
    n = len(t)
    for ph in phrases:
        if side not in ph[0].hands:
            continue
        first, last = ph[0], ph[-1]
        e = float(eff.energy[min(n - 1, int(first.time * fps))])
        prep = 0.45 - 0.2 * e
        retract = 0.8 - 0.35 * e
        r_keys += [(first.time - first.duration - prep, 0.0), (first.time - 0.5 * first.duration, 1.0),
                   (last.time + 0.35, 1.0), (last.time + 0.35 + retract, 0.0)]
        for k, s in enumerate(ph):
            b_keys += [(s.time - s.duration, 0.0), (s.time, s.depth)]
            c_keys.append((s.time, 0.0))
            nxt = ph[k + 1] if k + 1 < len(ph) else None
            b_keys.append((nxt.time - nxt.duration if nxt else s.time + 0.35 + retract, 0.0))
            if nxt is not None:
                c_keys.append((0.5 * (s.time + nxt.time - nxt.duration), 0.6 * s.depth))
    rk, rv = _clean_keys(r_keys)
    bk, bv = _clean_keys(b_keys)
    ck, cv = _clean_keys(c_keys)
    return minjerk_curve(rk, rv, t), minjerk_curve(bk, bv, t), minjerk_curve(ck, cv, t)


def _rx(deg: np.ndarray) -> np.ndarray:
    return euler_to_quat(np.stack([deg, 0 * deg, 0 * deg], -1), "XYZ")


def _ry(deg: np.ndarray) -> np.ndarray:
    return euler_to_quat(np.stack([deg, 0 * deg, 0 * deg], -1), "YXZ")


def _rz(deg: np.ndarray) -> np.ndarray:
    return euler_to_quat(np.stack([deg, 0 * deg, 0 * deg], -1), "ZXY")


def _xyz(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Local rotation from (X, Y, Z) degrees in the limit order ZXY (R = Rz Rx Ry)."""
    return euler_to_quat(np.stack([z, x, y], -1), "ZXY")


def teacher_motion(
    audio: np.ndarray | ProsodyFeatures,
    vad: VadLike = None,
    duration: float | None = None,
    fps: float = 30.0,
    seed: int = 0,
    timeline: Timeline | None = None,
    sr: int | None = None,
) -> BodyMotion:
    """Procedural body motion for speech: `audio` (+ `sr`) or precomputed ProsodyFeatures, VAD, seed."""
    if isinstance(audio, ProsodyFeatures):
        feat = audio
        if duration is None:
            duration = feat.duration
    else:
        if sr is None:
            raise InputError("teacher_motion needs `sr` with raw audio")
        feat = prosody_features(np.asarray(audio), int(sr), fps, duration)
        duration = feat.duration if duration is None else duration
    fps = float(fps)
    if feat.fps != fps:
        raise InputError(f"prosody features are at {feat.fps} fps, asked for {fps}")
    if not np.isfinite(duration) or duration <= 0:
        raise InputError(f"duration must be positive, got {duration}")
    seed = check_seed(seed)
    n = max(1, int(round(duration * fps)))
    t = np.arange(n) / fps
    rng = np.random.default_rng(int(seed))
    vad_f = vad_per_frame(vad, n, fps)
    eff = effort_from_vad(vad_f)

    cand_t, cand_w = beat_candidates(feat, timeline)
    strokes = place_strokes(cand_t, cand_w, eff, fps, duration, rng)
    phrases = assign_hands(strokes, eff, fps, rng)
    log.debug("teacher: %d candidates, %d strokes in %d phrases", len(cand_t), len(strokes), len(phrases))

    sk = HUMANOID
    J = len(sk.joints)
    rot = identity_quat(n, J)
    # Idle micro-motion grows with arousal (low arousal is still, not frozen).
    noise = smooth_noise(rng, t, 16) * (0.3 + 0.9 * eff.energy)[:, None]
    slow = smooth_noise(rng, t, 4, 0.05, 0.15)
    # Global beat curve (any hand) drives head nods and a little torso emphasis.
    both = [[Stroke(s.time, s.duration, s.depth, "LR") for s in ph] for ph in phrases]
    _, beat_any, _ = _arm_curves(both, "L", t, eff, fps)

    # Posture, breathing, weight shifts and sway come from the body-language layer applied at the end (the
    # same layer the pipeline applies to a model trained before it existed); here only speech-driven motion.
    hips_pos = np.broadcast_to(sk.offsets[0], (n, 3)).copy()
    hips_pos[:, 1] -= 0.006  # soft knees, so leg IK never locks
    hips_yaw = 2.0 * slow[:, 3] * (0.5 + eff.energy)
    rot[:, sk.index("hips")] = _xyz(0.5 * noise[:, 0], hips_yaw, 0 * t)
    rot[:, sk.index("spine")] = _xyz(0.8 * beat_any, -0.5 * hips_yaw, 1.0 * noise[:, 1])
    rot[:, sk.index("chest")] = _xyz(0 * t, 1.5 * noise[:, 2], 0 * t)
    rot[:, sk.index("neck")] = _xyz(0 * t, 3 * noise[:, 3], 1.5 * noise[:, 4])
    nod = (2.0 + 3.0 * eff.energy) * beat_any
    rot[:, sk.index("head")] = _xyz(nod + 2 * noise[:, 5], 4 * noise[:, 6] * (0.6 + eff.energy), 2 * noise[:, 7])

    # Arms: left computed in its own frame; the right arm is the mirror image with its own curves.
    for side, prefix in (("L", "left"), ("R", "right")):
        raise_, beat, loop = _arm_curves(phrases, side, t, eff, fps)
        k = 8 if side == "L" else 12
        abd = 8 + 0.5 * eff.width + raise_ * (4 + 0.3 * eff.width) + 8 * loop + 1.5 * noise[:, k]
        flex = 3 + raise_ * (22 + 22 * eff.height) - 6 * beat + 6 * loop + 2 * noise[:, k + 1]
        elbow = 10 + raise_ * (45 + 30 * eff.height) - 28 * beat + 3 * noise[:, k + 2]
        twist = raise_ * (25 + 20 * vad_f[:, 0]) + 4 * noise[:, k + 3]
        wrist = -(4 + 6 * raise_ + 18 * beat)
        q_sh = _xyz(0 * t, 0 * t, 2 * raise_ * eff.energy)
        q_up = quat_mul(_rx(-flex), _rz(-(90 - abd)))
        q_lo = quat_mul(_ry(-elbow), _rx(twist))
        q_ha = _xyz(0 * t, 0 * t, wrist)
        for name, q in (("Shoulder", q_sh), ("UpperArm", q_up), ("LowerArm", q_lo), ("Hand", q_ha)):
            rot[:, sk.index(prefix + name)] = q if side == "L" else quat_mirror_x(q)

    motion = BodyMotion(fps=fps, joints=sk.joints, rotations=rot.astype(np.float32),
                        root_position=hips_pos.astype(np.float32))
    # Word-cued gestures, beats in held gestures and rest poses in the pauses (avatar.gesture.repertoire).
    motion = apply_repertoire(motion, vad_f, feat.speech, timeline, feat.accents, seed=int(seed),
                              onsets=feat.onsets)
    # Posture from VAD and idle life; the legs are solved by IK onto planted ankles there.
    return body_language(motion, vad_f, seed=int(seed))
