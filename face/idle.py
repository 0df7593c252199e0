"""Life between words: blinks, gaze saccades and fixations, head motion; seeded, continuing through silence.

Statistics and their sources (docs/face.md has the full table):
- Blinks: about 17 per minute at rest and more in conversation (Bentivoglio et al. 1997, "Analysis of blink
  rate patterns in normal subjects", Movement Disorders 12: 17/min rest, 26/min talking); more with arousal
  and stress; blinks cluster at speech pauses and phrase ends (Nakano & Kitazawa 2010; Cummins 2012).
  A blink is a fast close and a slower open: the down-phase is about half as long as the up-phase
  (Evinger, Manning & Sibony 1991, "Eyelid movements"); total about 100-200 ms. Inter-blink intervals follow
  a gamma-like distribution with a refractory gap, so we draw from a gamma renewal process (shape 2).
- Gaze: alternating fixations and saccades, after Lee, Badler & Badler 2002 ("Eyes Alive"): speakers look
  away more than listeners (Argyle & Cook 1976: about 40 % vs 75 % of the time on the partner), aversion
  amplitudes are roughly exponential (mean ~8 deg), mostly horizontal; saccade duration follows the main
  sequence, D = 21 + 2.2 A ms (Carpenter 1988; Bahill, Clark & Stark 1975), with a smooth, velocity-bell
  profile. Small fixational jitter (microsaccades, < 0.5 deg) keeps the eyes alive.
- Head: a slow 1/f-like drift (power spectrum ~ 1/f between 0.05 and 2 Hz) of a few degrees, larger while
  speaking (Hadar et al. 1983, "Head movement during listening turns in conversation" / "... correlates of
  juncture and stress") and with arousal; nods (pitch down and back, ~0.4 s, 2-5 deg) on stressed syllables
  and energy peaks (Graf et al. 2002, "Visual prosody"; Munhall et al. 2004).

Angles are radians, right-handed about the glTF axes of an avatar facing +Z: yaw > 0 turns to the avatar's
left, pitch > 0 tips the head/eyes down, roll > 0 tilts the head towards its right shoulder.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from avatar.errors import InputError


@dataclass(frozen=True)
class IdleParams:
    """The statistics behind idle motion (defaults from the sources in the module docstring)."""

    blink_rate_rest: float = 15.0        # blinks per minute, silent and calm
    blink_rate_talking: float = 19.0     # blinks per minute while speaking
    blink_arousal_gain: float = 0.25     # rate x (1 + gain * arousal)
    blink_max_gap: float = 8.0           # seconds: a longer blink-free stretch gets a blink (at its pause)
    blink_min_clip: float = 2.5          # seconds: a longer clip without a blink gets one
    blink_pause_gain: float = 3.0        # hazard x (1 + gain) in the first 0.4 s of a pause
    blink_refractory: float = 0.6        # seconds: no blink this soon after another
    blink_close: tuple[float, float] = (0.035, 0.055)  # down-phase duration range, s
    blink_hold: tuple[float, float] = (0.0, 0.025)     # fully closed, s
    blink_open: tuple[float, float] = (0.07, 0.11)     # up-phase duration range, s
    gaze_aversion_mean_deg: float = 8.0
    gaze_on_partner_listening: float = 0.75
    gaze_on_partner_speaking: float = 0.45
    gaze_fixation_median: float = 0.9    # seconds, lognormal median of a fixation
    microsaccade_deg: float = 0.3
    head_drift_deg: tuple[float, float, float] = (2.0, 1.5, 0.8)  # yaw, pitch, roll std at rest
    head_speaking_gain: float = 0.5      # drift std x (1 + gain) while speaking
    head_arousal_gain: float = 0.6       # drift and nod amplitude x (1 + gain * arousal)
    nod_deg: float = 3.0
    nod_duration: float = 0.45
    nod_min_gap: float = 0.5


DEFAULT = IdleParams()


@dataclass
class IdleMotion:
    """Idle channels per frame: blink [T] in [0, 1], gaze [T, 2] (yaw, pitch), head [T, 3] (yaw, pitch, roll)."""

    blink: np.ndarray
    gaze: np.ndarray
    head: np.ndarray
    blink_times: np.ndarray  # seconds: onset of each blink
    nods: np.ndarray | None = None  # [T] head pitch of the nods alone (radians; included in head)


def _per_frame(x: float | np.ndarray | None, n: int, name: str, default: float = 0.0) -> np.ndarray:
    if x is None:
        return np.full(n, default, dtype=np.float64)
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 0:
        arr = np.full(n, float(arr))
    if arr.shape != (n,):
        raise InputError(f"{name} must be a number or [{n}] per frame, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise InputError(f"{name} must be finite")
    return arr


def _pause_onsets(activity: np.ndarray, fps: float) -> np.ndarray:
    """1 during the first 0.4 s after speech stops, else 0."""
    talk = activity > 0.5
    out = np.zeros(activity.size)
    ends = np.nonzero(talk[:-1] & ~talk[1:])[0] + 1
    span = max(1, int(round(0.4 * fps)))
    for e in ends:
        out[e:e + span] = 1.0
    return out


def blink_onsets(num_frames: int, fps: float, rng: np.random.Generator, arousal: np.ndarray,
                 activity: np.ndarray, p: IdleParams = DEFAULT) -> np.ndarray:
    """Blink onset times (s): a gamma(2) renewal process, time-warped by a per-frame rate (thinning-free)."""
    n = int(num_frames)
    if n == 0:
        return np.zeros(0)
    rate = (p.blink_rate_rest + (p.blink_rate_talking - p.blink_rate_rest) * np.clip(activity, 0, 1)) / 60.0
    rate = rate * np.clip(1.0 + p.blink_arousal_gain * arousal, 0.3, None)
    rate = rate * (1.0 + p.blink_pause_gain * _pause_onsets(activity, fps))
    # Operational time: integrate the rate; intervals of 1 unit on average there are ~1/rate seconds here.
    cum = np.concatenate([[0.0], np.cumsum(rate / fps)])
    total = cum[-1]
    times: list[float] = []
    u = rng.uniform(0.0, 1.0)  # random phase so clips do not all start with a blink at the same moment
    last = -np.inf
    while True:
        u += rng.gamma(3.0, 1.0 / 3.0)  # mean 1 in operational time, coefficient of variation 0.58
        if u >= total:
            break
        t = float(np.interp(u, cum, np.arange(n + 1) / fps))
        if t - last >= p.blink_refractory:
            times.append(t)
            last = t
    return _fill_gaps(np.asarray(times), n / fps, _pause_onsets(activity, fps), fps, p, rng)


def _fill_gaps(times: np.ndarray, duration: float, pause: np.ndarray, fps: float, p: IdleParams,
               rng: np.random.Generator) -> np.ndarray:
    """Add a blink to a clip longer than blink_min_clip that has none, and to every blink-free stretch longer
    than blink_max_gap: at the stretch's first pause if it has one, else at a random moment in its middle half.
    So no clip over 3 s stares, while the renewal process still sets the rate of longer ones."""
    out = sorted(float(t) for t in times if t < duration - 0.15)  # one cut off by the clip's end is no blink
    while True:
        if not out and duration > p.blink_min_clip:
            a, b = -p.blink_refractory, duration + p.blink_refractory
        else:
            edges = [-p.blink_refractory, *out, duration + p.blink_refractory]
            size, a, b = max((y - x, x, y) for x, y in zip(edges[:-1], edges[1:]))
            if size <= p.blink_max_gap:
                return np.asarray(out)
        lo, hi = max(a + p.blink_refractory, 0.1), min(b - p.blink_refractory, duration - 0.3)
        if hi <= lo:
            return np.asarray(out)
        i0, i1 = int(math.ceil(lo * fps)), int(math.floor(hi * fps))
        cand = np.nonzero(pause[i0:i1 + 1] > 0)[0]
        mid, half = (lo + hi) / 2, (hi - lo) / 4
        t = (i0 + cand[0]) / fps + 0.1 if cand.size else float(rng.uniform(mid - half, mid + half))
        out = sorted([*out, float(min(t, hi))])


def blink_curve(num_frames: int, fps: float, onsets: np.ndarray, rng: np.random.Generator,
                p: IdleParams = DEFAULT) -> np.ndarray:
    """Eyelid closure per frame for given blink onsets; each blink is fully closed on at least one frame."""
    n = int(num_frames)
    out = np.zeros(n)
    t_frames = np.arange(n) / fps
    for t0 in onsets:
        close = rng.uniform(*p.blink_close)
        hold = rng.uniform(*p.blink_hold)
        opn = rng.uniform(*p.blink_open)
        amp = rng.uniform(0.9, 1.0)
        # Snap the closed phase onto a frame time so frame sampling never misses the lid's lowest point.
        peak = round((t0 + close) * fps) / fps
        start, end_hold, end = peak - close, peak + hold, peak + hold + opn
        i0, i1 = max(0, int(math.floor(start * fps))), min(n, int(math.ceil(end * fps)) + 1)
        t = t_frames[i0:i1]
        x = np.zeros_like(t)
        down = (t >= start) & (t < peak)
        x[down] = 0.5 - 0.5 * np.cos(np.pi * (t[down] - start) / close)
        x[(t >= peak) & (t <= end_hold)] = 1.0
        up = (t > end_hold) & (t < end)
        x[up] = 0.5 + 0.5 * np.cos(np.pi * (t[up] - end_hold) / opn)
        out[i0:i1] = np.maximum(out[i0:i1], amp * x)
    return out


def _min_jerk(s: np.ndarray) -> np.ndarray:
    """Minimum-jerk position profile on [0, 1]: a bell-shaped velocity, as saccades have."""
    s = np.clip(s, 0.0, 1.0)
    return s ** 3 * (10 - 15 * s + 6 * s * s)


def gaze_curves(num_frames: int, fps: float, rng: np.random.Generator, arousal: np.ndarray,
                activity: np.ndarray, p: IdleParams = DEFAULT, fix: np.ndarray | None = None,
                avert: np.ndarray | None = None, down_deg: np.ndarray | None = None) -> np.ndarray:
    """Eye gaze [T, 2] (yaw, pitch) radians: fixations on the partner or averted, joined by saccades.

    fix [T] in [0, 1]: a fixed stare (anger: on the partner more and longer); avert [T] in [0, 1]: more and
    downward aversion (sadness, fear, shame; Argyle & Cook 1976); down_deg [T]: the eyes lowered by that much
    (sadness looks down, Wallbott 1998).
    """
    fix = np.zeros(int(num_frames)) if fix is None else np.clip(fix, 0.0, 1.0)
    avert = np.zeros(int(num_frames)) if avert is None else np.clip(avert, 0.0, 1.0)
    n = int(num_frames)
    out = np.zeros((n, 2))
    if n == 0:
        return out
    dur = n / fps
    t = 0.0
    pos = np.zeros(2)  # degrees: yaw, pitch
    events: list[tuple[float, float, np.ndarray, np.ndarray]] = []  # start, duration, from, to
    while t < dur:
        i = min(n - 1, int(t * fps))
        speaking = activity[i] > 0.5
        on_partner = p.gaze_on_partner_speaking if speaking else p.gaze_on_partner_listening
        on_partner = on_partner + 0.45 * fix[i] * (1 - on_partner) - 0.4 * avert[i] * on_partner
        if rng.uniform() < on_partner:
            target = rng.normal(0.0, p.microsaccade_deg * 2, size=2)  # on the partner's face
        else:
            amp = min(25.0, rng.exponential(p.gaze_aversion_mean_deg) + 2.0)
            # Aversions are mostly sideways and, while thinking/speaking, more often downwards.
            ang = rng.normal(0.0, 0.5) + (np.pi if rng.uniform() < 0.5 else 0.0)
            down = 0.7 + 0.3 * avert[i]
            target = np.array([amp * np.cos(ang), abs(amp * np.sin(ang)) * (1 if rng.uniform() < down else -1)])
        amp = float(np.hypot(*(target - pos)))
        sdur = (21.0 + 2.2 * amp) / 1000.0  # main sequence
        events.append((t, sdur, pos.copy(), target.copy()))
        pos = target
        # Fixation length: lognormal; arousal shortens it (more scanning).
        hold = p.gaze_fixation_median * math.exp(rng.normal(0.0, 0.5)) / (1.0 + 0.4 * max(0.0, float(arousal[i])))
        t += sdur + max(0.15, hold * (1.0 + 1.5 * float(fix[i])))
    tf = np.arange(n) / fps
    cur = np.zeros((n, 2))
    bounds = np.searchsorted(tf, [e[0] for e in events] + [np.inf])
    for k, (start, sdur, a, b) in enumerate(events):
        i0, i1 = bounds[k], bounds[k + 1]  # frames until the next saccade starts
        s = _min_jerk((tf[i0:i1] - start) / sdur)[:, None]
        cur[i0:i1] = a[None] * (1 - s) + b[None] * s
    # Fixational drift/tremor: small, slow noise so the eyes are never frozen.
    cur += pink_noise(n, fps, rng, (0.1, 2.0))[:, None] * np.array([p.microsaccade_deg, p.microsaccade_deg * 0.7])
    if down_deg is not None:
        cur[:, 1] += np.asarray(down_deg, dtype=np.float64)
    out[:] = np.deg2rad(cur)
    return out


def pink_noise(n: int, fps: float, rng: np.random.Generator, band: tuple[float, float]) -> np.ndarray:
    """Unit-variance noise with a 1/f power spectrum inside `band` (Hz), via FFT shaping."""
    if n < 2:
        return np.zeros(n)
    m = 1 << int(math.ceil(math.log2(max(n, 16))))
    spec = rng.normal(size=m // 2 + 1) + 1j * rng.normal(size=m // 2 + 1)
    f = np.fft.rfftfreq(m, 1.0 / fps)
    lo, hi = band
    gain = np.zeros_like(f)
    ok = f > 0
    gain[ok] = 1.0 / np.sqrt(f[ok])
    # Soft band edges (first-order roll-offs) avoid ringing.
    gain *= 1.0 / np.sqrt(1.0 + (lo / np.maximum(f, 1e-9)) ** 4) / np.sqrt(1.0 + (f / hi) ** 4)
    x = np.fft.irfft(spec * gain, n=m)[:n]
    sd = x.std()
    return x / sd if sd > 0 else x


def _nods(n: int, fps: float, rng: np.random.Generator, arousal: np.ndarray, emphasis: np.ndarray | None,
          p: IdleParams) -> np.ndarray:
    """Nod pitch in degrees [n]: pitch down and back on each emphasis peak, at least nod_min_gap apart."""
    nods = np.zeros(n)
    if emphasis is None or not np.any(emphasis > 0):
        return nods
    from avatar.signal import find_peaks  # scipy's, without importing scipy on the `avatar say` path

    peaks, props = find_peaks(emphasis, height=0.3, distance=max(1, int(p.nod_min_gap * fps)))
    half = p.nod_duration / 2
    tf = np.arange(n) / fps
    for i, h in zip(peaks, props["peak_heights"]):
        amp = p.nod_deg * min(1.0, float(h)) * max(0.3, 1.0 + p.head_arousal_gain * float(arousal[i]))
        amp *= rng.uniform(0.7, 1.3)
        # The nod lands slightly before the peak (head leads the voice, Hadar et al. 1983).
        c = i / fps - 0.05
        x = np.clip((tf - (c - half)) / p.nod_duration, 0.0, 1.0)
        nods += amp * np.sin(np.pi * x) ** 2
    return nods


def head_curves(num_frames: int, fps: float, rng: np.random.Generator, arousal: np.ndarray,
                activity: np.ndarray, emphasis: np.ndarray | None, p: IdleParams = DEFAULT) -> np.ndarray:
    """Head rotation [T, 3] (yaw, pitch, roll) radians: 1/f drift plus nods on emphasis peaks."""
    n = int(num_frames)
    out = np.zeros((n, 3))
    if n == 0:
        return out
    gain = (1.0 + p.head_speaking_gain * _smooth(np.clip(activity, 0, 1), fps, 0.5))
    gain = gain * np.clip(1.0 + p.head_arousal_gain * arousal, 0.3, None)
    for k, sd in enumerate(p.head_drift_deg):
        out[:, k] = pink_noise(n, fps, rng, (0.05, 2.0)) * sd * gain
    out[:, 1] += _nods(n, fps, rng, arousal, emphasis, p)
    return np.deg2rad(out)


def _smooth(x: np.ndarray, fps: float, seconds: float) -> np.ndarray:
    from avatar.signal import gaussian_smooth

    return gaussian_smooth(x.astype(np.float64), sigma=max(0.5, seconds * fps / 2))


def idle_motion(num_frames: int, fps: float = 30.0, arousal: float | np.ndarray = 0.0,
                activity: np.ndarray | None = None, emphasis: np.ndarray | None = None, seed: int = 0,
                params: IdleParams = DEFAULT, emotion: dict[str, np.ndarray] | None = None) -> IdleMotion:
    """Blinks, gaze and head motion for num_frames frames; same inputs and seed give the same output.

    arousal: a number or [T] in [-1, 1]; activity: [T] speaking (1) or silent (0), default silent;
    emphasis: [T] in [0, 1] where nods should land (stressed syllables, energy peaks), optional;
    emotion: per-frame category strengths (face.expression.category_strengths), optional: anger fixes the gaze,
    sadness lowers it and, with fear and disgust, makes it avert more.
    """
    n = int(num_frames)
    if n < 0:
        raise InputError(f"num_frames must be >= 0, got {num_frames}")
    fps = float(fps)
    if not math.isfinite(fps) or fps <= 0 or fps > 1000:
        raise InputError(f"fps must be in (0, 1000], got {fps!r}")
    ar = np.clip(_per_frame(arousal, n, "arousal"), -1.0, 1.0)
    act = _per_frame(activity, n, "activity")
    emph = None if emphasis is None else _per_frame(emphasis, n, "emphasis")
    fix = avert = down = None
    if emotion:
        z = np.zeros(n)
        sad, fear, dis = (_per_frame(emotion.get(k, z), n, k) for k in ("sad", "fearful", "disgusted"))
        fix = _per_frame(emotion.get("angry", z), n, "angry")
        avert = 0.7 * sad + 0.5 * fear + 0.4 * dis
        down = 12.0 * np.clip(sad, 0.0, 1.0)
    # One child stream per component: changing how gaze is drawn does not move the blinks.
    s_blink, s_blink_shape, s_gaze, s_head = (np.random.default_rng(s) for s in np.random.SeedSequence(int(seed)).spawn(4))
    onsets = blink_onsets(n, fps, s_blink, ar, act, params)
    blink = blink_curve(n, fps, onsets, s_blink_shape, params)
    gaze = gaze_curves(n, fps, s_gaze, ar, act, params, fix=fix, avert=avert, down_deg=down)
    head_rng_state = s_head.bit_generator.state
    head = head_curves(n, fps, s_head, ar, act, emph, params)
    s_head.bit_generator.state = head_rng_state
    drift_only = head_curves(n, fps, s_head, ar, act, None, params)
    return IdleMotion(blink=blink, gaze=gaze, head=head, blink_times=onsets, nods=head[:, 1] - drift_only[:, 1])
