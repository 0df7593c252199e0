"""The rule-based "teacher": a full FaceMotion from a phoneme timeline and VAD (training targets for the model).

mouth (face.visemes, coarticulated, lips sealed on p/b/m) + expression (face.expression, FACS from VAD)
+ idle life (face.idle: blinks, gaze, head drift and nods), combined so that speech and emotion do not fight.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from avatar.errors import InputError
from avatar.types import ARKIT_BLENDSHAPES, FACE_CHANNELS, VAD, EmotionTrack, FaceMotion, Timeline
from avatar.face.expression import (category_strengths, combine, emotion_envelope, expression_curves, head_bias,
                                    vad_frames)
from avatar.face.features import AudioFeatures, frames_for
from avatar.face.idle import IdleParams, idle_motion
from avatar.face.visemes import closure_weights, enforce_closure, frame_times, mouth_curves

IDX = {n: i for i, n in enumerate(FACE_CHANNELS)}
_VOWELS = ("aa", "E", "ih", "oh", "ou")
#: Gaze angle (degrees) at which the ARKit eyeLook shapes reach 1 (horizontal, vertical).
EYE_LOOK_RANGE_DEG = (30.0, 25.0)
#: How far the eyes turn in the head (yaw, pitch; radians): the eyeLook shapes' full range.
EYE_RANGE = np.deg2rad(np.array(EYE_LOOK_RANGE_DEG))
#: Share of the head's turn by the body's posture that the neck takes back to face the partner.
ADDRESS_SHARE = 0.6


def _per_frame_rows(rows: np.ndarray, n: int) -> np.ndarray:
    """[T, 2] finite angles as n rows: cut, or held at the last row (a body motion a frame shorter or longer)."""
    a = np.asarray(rows, dtype=np.float64)
    if a.ndim != 2 or a.shape[1] != 2 or a.shape[0] == 0 or not np.isfinite(a).all():
        raise InputError(f"body_head must be [T, 2] finite angles, got shape {a.shape}")
    return a[:n] if a.shape[0] >= n else np.vstack([a, np.repeat(a[-1:], n - a.shape[0], axis=0)])


def speech_activity(timeline: Timeline, fps: float, num_frames: int) -> np.ndarray:
    """1 on frames inside speech (non-silent phonemes, gaps under 200 ms bridged), else 0."""
    t = frame_times(num_frames, fps)
    on = np.zeros(int(num_frames), dtype=bool)
    spans = sorted((p.start, p.end) for p in timeline.phonemes if p.viseme != "sil")
    merged: list[list[float]] = []
    for s, e in spans:
        if merged and s - merged[-1][1] < 0.2:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    for s, e in merged:
        on |= (t >= s) & (t < e)
    return on.astype(np.float64)


def stress_emphasis(timeline: Timeline, fps: float, num_frames: int) -> np.ndarray:
    """Where nods go, per frame in [0, 1]: a bump on each vowel, higher for long or stress-marked vowels.

    Stressed vowels are longer and louder (Fry 1955); eSpeak marks primary stress with U+02C8 before the
    syllable, so a vowel whose symbol or preceding phonemes in the word carry it counts as stressed.
    """
    n = int(num_frames)
    out = np.zeros(n)
    vowels = [p for p in timeline.phonemes if p.viseme in _VOWELS]
    if not vowels or n == 0:
        return out
    med = float(np.median([p.end - p.start for p in vowels])) or 0.08
    ph = list(timeline.phonemes)
    t = frame_times(n, fps)
    stressed_next = False
    for p in ph:
        if "ˈ" in p.phoneme:
            stressed_next = True
        if p.viseme not in _VOWELS:
            continue
        dur = p.end - p.start
        h = 0.25 + 0.35 * float(np.clip((dur - med) / med, 0.0, 1.0)) + (0.4 if stressed_next else 0.0)
        stressed_next = False
        c, sd = (p.start + p.end) / 2, max(dur / 2, 0.03)
        i0, i1 = np.searchsorted(t, [c - 4 * sd, c + 4 * sd])  # the bump is negligible beyond 4 sd
        out[i0:i1] = np.maximum(out[i0:i1], h * np.exp(-0.5 * ((t[i0:i1] - c) / sd) ** 2))
    return np.clip(out, 0.0, 1.0)


def eye_look_shapes(gaze: np.ndarray) -> np.ndarray:
    """ARKit eyeLook weights [T, 8] from gaze (yaw, pitch) radians, in the order of _LOOK below."""
    yaw = np.rad2deg(gaze[:, 0]) / EYE_LOOK_RANGE_DEG[0]
    pitch = np.rad2deg(gaze[:, 1]) / EYE_LOOK_RANGE_DEG[1]
    left, right = np.clip(yaw, 0, 1), np.clip(-yaw, 0, 1)  # yaw > 0: towards the avatar's left
    down, up = np.clip(pitch, 0, 1), np.clip(-pitch, 0, 1)
    # Looking to its left: the left eye turns out, the right eye turns in (and vice versa).
    return np.stack([down, right, left, up, down, left, right, up], axis=1)


_LOOK = ("eyeLookDownLeft", "eyeLookInLeft", "eyeLookOutLeft", "eyeLookUpLeft",
         "eyeLookDownRight", "eyeLookInRight", "eyeLookOutRight", "eyeLookUpRight")


def rest_at_edges(mouth: np.ndarray, fps: float, speech: tuple[float, float] | None) -> np.ndarray:
    """The mouth eased to rest on the first and last frames: from rest at frame 0 to the first sound, and back
    to rest after the last one, so a clip never starts or ends mid-phoneme (anticipatory coarticulation may
    still open the lips just before the first sound)."""
    n = mouth.shape[0]
    if n == 0 or speech is None:  # (no timeline: where the sound starts is a guess, so the mouth is left as read)
        return mouth
    t = frame_times(n, fps)
    first, last = speech
    end = (n - 1) / fps
    w = np.clip(t / max(first, 1.0 / fps), 0.0, 1.0)
    w = np.minimum(w, np.clip((end - t) / max(end - last, 1.0 / fps), 0.0, 1.0))
    return mouth * w[:, None]


def speech_span(activity: np.ndarray, fps: float) -> tuple[float, float] | None:
    """(first, last) second with speech in a per-frame activity, or None when silent."""
    on = np.flatnonzero(np.asarray(activity) > 0.5)
    return None if on.size == 0 else (on[0] / fps, (on[-1] + 1) / fps)


def compose_face(mouth: np.ndarray, closure: np.ndarray,
                 vad: VAD | EmotionTrack | np.ndarray | Sequence[float] | None, fps: float, seed: int = 0,
                 activity: np.ndarray | None = None, emphasis: np.ndarray | None = None,
                 head: np.ndarray | None = None, idle: IdleParams | None = None,
                 speech: tuple[float, float] | None = None, body_head: np.ndarray | None = None) -> FaceMotion:
    """One face from its parts: the speech mouth [T, 52] (unsealed) and where the lips seal [T], the emotion (its
    FACS expression with onset/apex/decay per sentence), blinks, gaze and nods from the idle model, and the
    emotion's posture. head [T, 3]: a head motion to use instead of the idle model's drift (the diffusion
    model's); the nods on `emphasis` and the posture are added to it. speech: (first, last) second of sound
    (default: from `activity`); the mouth is at rest outside it on the first and last frames. body_head [T, 2]:
    the yaw and pitch the body gives the head (its posture: a slump bows it), which the eyes also counter, so
    the gaze stays on its targets (`avatar.rig.kinematics.head_direction`).
    """
    n = int(mouth.shape[0])
    vad = VAD.neutral() if vad is None else vad
    vad_rows = vad_frames(vad, n, fps)
    arousal = vad_rows[:, 1]
    activity = np.zeros(n) if activity is None else np.asarray(activity, dtype=np.float64)
    env = emotion_envelope(vad, n, fps)
    # Aroused speech is hyperarticulated: bigger jaw and lip excursions (and calm speech smaller).
    mouth = np.asarray(mouth, dtype=np.float64) * np.clip(1.0 + 0.2 * arousal, 0.7, 1.3)[:, None]
    # With a known timeline the mouth is at rest on the first and last frames, eased to its first sound.
    mouth = rest_at_edges(mouth, fps, speech)
    expr = expression_curves(vad_rows, envelope=env, seed=seed, fps=fps).astype(np.float64)
    from avatar.signal import gaussian_smooth

    speaking = np.clip(gaussian_smooth(activity, 0.1 * fps) * 1.5, 0.0, 1.0) if activity.any() else None
    bs = combine(mouth, expr, closure, speaking)
    bs = enforce_closure(bs, closure)  # after the expression, so it cannot reopen sealed lips

    strengths = {k: v * env for k, v in category_strengths(vad_rows).items()}
    life = idle_motion(n, fps, arousal=arousal, activity=activity, emphasis=emphasis, seed=seed,
                       params=idle or IdleParams(), emotion=strengths)
    if head is None:
        head = life.head.copy()
    else:
        head = np.asarray(head, dtype=np.float64).copy()
        head[:, 1] += life.nods
    head = head + head_bias(vad_rows, env)
    bhead = None if body_head is None else _per_frame_rows(body_head, n)
    if bhead is not None:
        # A speaker addresses the partner: where the body's posture turns the head away (a slump bows it), the
        # neck brings it back part of the way and the eyes do the rest.
        head[:, :2] -= ADDRESS_SHARE * bhead
    # Gaze targets are in the world (the partner); the eyes counter-rotate against the head to hold them
    # (vestibulo-ocular reflex), so eye-in-head = gaze - head, the body's share of the head's turn included,
    # within the eyes' range.
    eyes = life.gaze - head[:, :2]
    if bhead is not None:
        eyes = eyes - bhead
    eyes = np.clip(eyes, -EYE_RANGE, EYE_RANGE)
    look = eye_look_shapes(eyes)
    for k, name in enumerate(_LOOK):
        bs[:, IDX[name]] = look[:, k]
    down = look[:, 0]
    for side in ("Left", "Right"):
        lid = IDX[f"eyeBlink{side}"]
        droop = np.clip(bs[:, lid] + 0.15 * down, 0.0, 1.0)  # the upper lid follows the eye down
        bs[:, lid] = droop + (1.0 - droop) * life.blink
        bs[:, IDX[f"eyeWide{side}"]] *= 1.0 - life.blink

    frames = np.zeros((n, len(FACE_CHANNELS)), dtype=np.float64)
    frames[:, :len(ARKIT_BLENDSHAPES)] = np.clip(bs, 0.0, 1.0)
    frames[:, IDX["headYaw"]] = head[:, 0]
    frames[:, IDX["headPitch"]] = head[:, 1]
    frames[:, IDX["headRoll"]] = head[:, 2]
    frames[:, IDX["leftEyeYaw"]] = frames[:, IDX["rightEyeYaw"]] = eyes[:, 0]
    frames[:, IDX["leftEyePitch"]] = frames[:, IDX["rightEyePitch"]] = eyes[:, 1]
    return FaceMotion(fps=fps, frames=frames.astype(np.float32))


def teacher_motion(timeline: Timeline | None, vad: VAD | EmotionTrack | np.ndarray | Sequence[float] | None = None,
                   duration: float | None = None, fps: float = 30.0, seed: int = 0,
                   features: AudioFeatures | None = None, idle: IdleParams | None = None) -> FaceMotion:
    """FaceMotion for a timeline and emotion: mouth + FACS expression + blinks, gaze and head motion.

    vad: a VAD, an EmotionTrack, a [3] or per-frame [T, 3] array, or None (neutral). duration defaults to
    the timeline's (or the features'). features (optional) add energy-driven nods and speech activity when the
    timeline is missing. Same inputs and seed give the same output.
    """
    fps = float(fps)
    if not math.isfinite(fps) or fps <= 0 or fps > 1000:
        raise InputError(f"fps must be in (0, 1000], got {fps!r}")
    if timeline is not None and not isinstance(timeline, Timeline):
        raise InputError(f"timeline must be a Timeline, got {type(timeline).__name__}")
    if duration is None:
        if timeline is not None:
            duration = timeline.duration
        elif features is not None:
            duration = features.num_frames / features.fps
        else:
            raise InputError("teacher_motion needs a timeline, features or a duration")
    duration = float(duration)
    if not math.isfinite(duration) or duration < 0 or duration > 3600:
        raise InputError(f"duration must be in [0, 3600] seconds, got {duration!r}")
    n = frames_for(duration, fps)
    vad_frames(VAD.neutral() if vad is None else vad, n, fps)  # validates the VAD before any work

    speech = None
    if timeline is not None:
        mouth = mouth_curves(timeline, fps, n, closure=False).astype(np.float64)  # sealed once, in compose_face
        closure = closure_weights(timeline, fps, n)
        activity = speech_activity(timeline, fps, n)
        emphasis = stress_emphasis(timeline, fps, n)
        speech = timeline_span(timeline)
    else:
        mouth = np.zeros((n, len(ARKIT_BLENDSHAPES)))
        closure = np.zeros(n)
        activity = np.zeros(n)
        emphasis = np.zeros(n)
    if features is not None:
        if features.num_frames != n or abs(features.fps - fps) > 1e-6:
            raise InputError(f"features cover {features.num_frames} frames at {features.fps:g} fps; "
                             f"the motion needs {n} at {fps:g}")
        if timeline is None:
            activity = features.activity()
        emphasis = np.maximum(emphasis, features.emphasis())
    return compose_face(mouth, closure, vad, fps, seed=seed, activity=activity, emphasis=emphasis, idle=idle,
                        speech=speech)


def timeline_span(timeline: Timeline) -> tuple[float, float] | None:
    """(start of the first sound, end of the last) in a timeline, or None when it has none."""
    spans = [(p.start, p.end) for p in timeline.phonemes if p.viseme != "sil"]
    return None if not spans else (min(s for s, _ in spans), max(e for _, e in spans))
