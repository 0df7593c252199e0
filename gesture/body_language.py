"""Body language layer: emotional posture from VAD and idle life (breathing, weight shifts, sway).

Applied on top of any BodyMotion, the diffusion model's output and the procedural teacher's alike, so the
final motion of `avatar say` / `avatar gesture` carries it and a model retrained on the teacher inherits it
(docs/gesture.md, "Body language", has the mapping and its sources). In short:
- Posture is a continuous function of per-frame VAD (no emotion labels): a *collapse* term (low valence at
  low arousal: sadness) flexes the spine, rounds the shoulders forward and drops the head; *uplift*
  (valence, dominance, a little arousal) lifts chest and head; signed *approach* (arousal times dominance)
  leans the trunk and the weight forward (anger) or back (fear); *tension* (arousal with low valence or
  dominance) raises the shoulders; *openness* (valence + dominance) spreads the shoulders and arms, and
  dominance widens the stance.
- Idle: breathing in chest and shoulders (12-20 breaths/min, faster and deeper with arousal); a weight shift
  from one leg to the other every few seconds (hips translate 1.5-3 cm, the pelvis drops on the free side
  and turns a little, the spine compensates); slow postural sway.
The offsets are rotations composed before the motion's own local rotations (in the parent's frame); the legs
are then re-solved by two-bone IK onto fixed ankle targets, so the feet stay planted.
Same inputs and seed give the same motion.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from avatar.types import BodyMotion

from avatar.rig.kinematics import plant_feet, rotations_in_skeleton_order, with_extra_joints
from avatar.rig.rotations import euler_to_quat, quat_mirror_x, quat_mul, quat_normalize
from avatar.rig.skeleton import HUMANOID, Skeleton

#: Extra seed material so the layer's random stream never coincides with the teacher's or the sampler's.
_SEED_SALT = 0xB0D7


def _relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0.0)


@dataclass(frozen=True)
class Posture:
    """Per-frame posture factors from VAD (arrays [T], each about -1..1): see the module docstring."""

    collapse: np.ndarray
    uplift: np.ndarray
    approach: np.ndarray
    tension: np.ndarray
    openness: np.ndarray
    dominance: np.ndarray
    energy: np.ndarray  # (arousal + 1) / 2


def posture_factors(vad: np.ndarray) -> Posture:
    """Continuous posture factors from per-frame VAD [T, 3] (valence, arousal, dominance in [-1, 1])."""
    vad = np.asarray(vad, dtype=np.float64).reshape(-1, 3)
    v, a, d = vad[:, 0], vad[:, 1], vad[:, 2]
    return Posture(
        # Sadness-like collapse: negative valence, fading as arousal rises (anger and fear do not slump).
        collapse=_relu(-v) * np.clip(0.6 - a, 0.0, 1.2),
        uplift=0.6 * v + 0.4 * d + 0.2 * a,
        # Approach (+, anger: lean in) vs avoidance (-, fear: weight back); joy leans in less.
        approach=2.0 * _relu(a) * d * (1.0 - 0.5 * _relu(v)),
        tension=_relu(a) * (0.5 * _relu(-v) + 0.6 * _relu(-d) + 0.3),
        openness=np.clip(0.5 * (v + d), -1.0, 1.0),
        dominance=d,
        energy=(a + 1.0) / 2.0,
    )


def posture_angles(p: Posture) -> dict[str, np.ndarray]:
    """Posture offsets per joint as [T, 3] (X, Y, Z) degrees in the limit order ZXY (left side for the arms).

    X > 0 flexes forward (head down); leftShoulder Z > 0 raises the clavicle, Y > 0 pulls it back;
    leftUpperArm Z > 0 spreads the arm away from the body.
    """
    c, u, ap, te, op = p.collapse, p.uplift, p.approach, p.tension, p.openness
    z = np.zeros_like(c)
    lean_in, lean_back = _relu(ap), _relu(-ap)
    return {
        "hips": np.stack([7.0 * ap, z, z], -1),  # the whole trunk leans from the hip joints
        "spine": np.stack([5.0 * c - 2.0 * u, z, z], -1),
        "chest": np.stack([4.0 * c - 2.5 * u - 3.0 * lean_in, z, z], -1),  # anger: chest forward (lifted)
        "upperChest": np.stack([3.0 * c - 1.5 * u, z, z], -1),
        "neck": np.stack([5.0 * c - 1.5 * u + 3.0 * lean_back, z, z], -1),  # fear: chin tucked, withdrawn
        "head": np.stack([5.0 * c - 4.0 * u - 2.0 * ap, z, z], -1),  # leaning in keeps the gaze level
        "leftShoulder": np.stack([z, 6.0 * op - 4.0 * c, 16.0 * te - 5.0 * c], -1),
        "leftUpperArm": np.stack([z, z, 6.0 * op - 4.0 * te], -1),
    }


def _minjerk(t: np.ndarray, keys_t: list[float], keys_v: list[float]) -> np.ndarray:
    from .teacher import minjerk_curve  # the teacher's curve; imported here to keep the import graph one-way

    return minjerk_curve(np.asarray(keys_t), np.asarray(keys_v), t)


def weight_shift(t: np.ndarray, energy: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Lateral hips offset [T] (m): the weight moves from one leg to the other every few seconds.

    Shifts come every 3.5-6 s (more often, wider and quicker with arousal), each a minimum-jerk transfer of
    1.5-3 cm to the other side; the first one within 0.8-2.5 s, so even a short line shifts once.
    """
    n = len(t)
    dur = float(t[-1]) if n else 0.0
    keys_t, keys_v = [-10.0, 0.0], [0.0, 0.0]
    side = float(rng.choice([-1.0, 1.0]))
    at = float(rng.uniform(0.8, 2.5))
    while at < dur + 6.0:
        e = float(energy[min(n - 1, int(at / max(dur, 1e-9) * (n - 1)))]) if n > 1 else 0.5
        move = 1.4 - 0.6 * e
        amp = (0.015 + 0.015 * e) * float(rng.uniform(0.85, 1.1))
        keys_t += [at, at + move]
        keys_v += [keys_v[-1], side * amp]
        side = -side
        at += move + (6.0 - 2.5 * e) * float(rng.uniform(0.7, 1.1))
    return _minjerk(t, keys_t, keys_v)


def _xyz(a: np.ndarray) -> np.ndarray:
    """Quaternions from [T, 3] (X, Y, Z) degrees in ZXY order (R = Rz Rx Ry)."""
    return euler_to_quat(np.stack([a[:, 2], a[:, 0], a[:, 1]], -1), "ZXY")


def _smooth_noise(rng: np.random.Generator, t: np.ndarray, n: int, f_lo: float, f_hi: float) -> np.ndarray:
    from .teacher import smooth_noise

    return smooth_noise(rng, t, n, f_lo, f_hi)


#: Joints whose movement `scale_by_arousal` enlarges or damps (the gesturing arms and the head's nods).
GESTURE_JOINTS: tuple[str, ...] = tuple(f"{s}{b}" for s in ("left", "right")
                                        for b in ("Shoulder", "UpperArm", "LowerArm", "Hand")) + ("head",)


def smooth_quat(q: np.ndarray, frames: int) -> np.ndarray:
    """Normalised centred moving average [T, 4] of a quaternion track over `frames` (odd; signs aligned first)."""
    return _moving_average_quat(q, frames)


def _moving_average_quat(q: np.ndarray, frames: int) -> np.ndarray:
    """Normalised moving average [T, 4] of a quaternion track over `frames` (signs aligned first)."""
    q = q.copy()
    q[np.sum(q * q[:1], axis=-1) < 0] *= -1
    k = max(1, int(frames)) | 1
    pad = np.pad(q, ((k // 2, k // 2), (0, 0)), mode="edge")
    kernel = np.ones(k) / k
    avg = np.stack([np.convolve(pad[:, c], kernel, mode="valid") for c in range(4)], -1)
    return quat_normalize(avg)


def scale_by_arousal(rot: np.ndarray, energy: np.ndarray, fps: float, skeleton: Skeleton = HUMANOID,
                     low: float = 0.6, span: float = 0.8) -> np.ndarray:
    """Local rotations [T, J, 4] with the gesture joints' movement around their 1.2 s moving average scaled by
    low + span * (arousal + 1) / 2 per frame: larger and faster with arousal, smaller and slower without it."""
    from avatar.rig.rotations import quat_slerp

    out = rot.copy()
    gain = low + span * np.asarray(energy, dtype=np.float64)
    for name in GESTURE_JOINTS:
        k = skeleton.index(name)
        ref = _moving_average_quat(rot[:, k], int(round(1.2 * fps)))
        # Enlarging (gain > 1) may carry a pose held at a limit past it: clip back to the joint's range.
        out[:, k] = clamp_to_limits(quat_slerp(ref, rot[:, k], gain), name, skeleton)
    return out


def clamp_to_limits(q: np.ndarray, joint: str, skeleton: Skeleton = HUMANOID) -> np.ndarray:
    """Local rotations [T, 4] of `joint` with their Euler angles (the joint's limit order) clipped to its limits."""
    from avatar.rig.rotations import quat_to_euler

    order = skeleton.limit_order(joint)
    lim = np.asarray(skeleton.limit(joint), dtype=np.float64)  # [3, 2] for X, Y, Z
    e = quat_to_euler(q, order)
    for i, axis in enumerate(order):
        lo, hi = lim["XYZ".index(axis)]
        e[..., i] = np.clip(e[..., i], lo, hi)
    return euler_to_quat(e, order)


def body_language(motion: BodyMotion, vad: np.ndarray, seed: int = 0, skeleton: Skeleton = HUMANOID,
                  posture: bool = True, idle: bool = True, arousal_gain: bool = False,
                  slump_gain: float = 1.0) -> BodyMotion:
    """The motion with emotional posture (per-frame VAD [T, 3]) and idle life layered on, feet planted.

    `arousal_gain` also scales the gesture joints' movement by arousal (`scale_by_arousal`), for motion whose
    source does not already do it (the teacher does; the current model only weakly). `slump_gain` scales the
    collapse and uplift terms, for motion that already carries a slump and lift of its own."""
    n = motion.num_frames
    vad = np.asarray(vad, dtype=np.float64).reshape(-1, 3)
    if len(vad) != n:
        raise ValueError(f"VAD has {len(vad)} frames, the motion {n}")
    fps = float(motion.fps)
    t = np.arange(n) / fps
    rng = np.random.default_rng([int(seed), _SEED_SALT])
    p = posture_factors(vad)
    if slump_gain != 1.0:
        p = replace(p, collapse=slump_gain * p.collapse, uplift=slump_gain * p.uplift)
    z = np.zeros(n)
    offsets = posture_angles(p) if posture else {k: np.zeros((n, 3)) for k in posture_angles(p)}
    root = motion.root_position.astype(np.float64).copy()
    shift = np.zeros(n)
    if idle:
        # Breathing: phase integrates the (possibly changing) rate; inhaling lifts chest and shoulders.
        rate = 0.2 + 0.13 * p.energy
        phase = 2 * np.pi * np.cumsum(rate) / fps + rng.uniform(0, 2 * np.pi)
        breath = (0.5 - 0.5 * np.cos(phase)) * (1.0 + 0.8 * p.energy)  # degrees of chest extension
        offsets["chest"] = offsets["chest"] + np.stack([-0.5 * breath, z, z], -1)
        offsets["upperChest"] = offsets["upperChest"] + np.stack([-0.7 * breath, z, z], -1)
        offsets["neck"] = offsets["neck"] + np.stack([0.9 * breath, z, z], -1)  # the head stays level
        offsets["leftShoulder"] = offsets["leftShoulder"] + np.stack([z, z, 0.6 * breath], -1)
        # Weight shifts: the pelvis drops on the free side and turns a little; the spine rights the trunk.
        shift = weight_shift(t, p.energy, rng)
        roll = -shift / 0.02 * 1.5
        sway = _smooth_noise(rng, t, 3, 0.05, 0.2)
        yaw = 40.0 * shift + 1.0 * sway[:, 2]
        offsets["hips"] = offsets["hips"] + np.stack([z, yaw, roll], -1)
        offsets["spine"] = offsets["spine"] + np.stack([z, -0.5 * yaw, -0.8 * roll], -1)
        offsets["chest"] = offsets["chest"] + np.stack([z, z, -0.3 * roll], -1)
        root[:, 0] += shift + 0.003 * (0.5 + p.energy) * sway[:, 0]
        root[:, 2] += 0.003 * (0.5 + p.energy) * sway[:, 1]
    if posture:
        root[:, 2] += 0.012 * p.approach  # weight forward when leaning in, back when withdrawing
    rot = rotations_in_skeleton_order(motion, skeleton).astype(np.float64)
    if arousal_gain:
        rot = scale_by_arousal(rot, p.energy, fps, skeleton)
    for name, ang in offsets.items():
        q = _xyz(ang)
        # A pose held near a limit (a shrug's arm) plus an offset may pass it: clip back into the range.
        rot[:, skeleton.index(name)] = clamp_to_limits(quat_mul(q, rot[:, skeleton.index(name)]), name, skeleton)
        if name.startswith("left"):
            right = "right" + name[len("left"):]
            k = skeleton.index(right)
            rot[:, k] = clamp_to_limits(quat_mul(quat_mirror_x(q), rot[:, k]), right, skeleton)
    layered = with_extra_joints(BodyMotion(fps=fps, joints=skeleton.joints,
                                           rotations=quat_normalize(rot).astype(np.float32),
                                           root_position=root.astype(np.float32)), motion, skeleton)
    # Stance: wider with dominance, fixed for the clip (changing it would need a step); feet on the floor.
    half_width = 0.02 * float(np.clip(np.mean(p.dominance), -1.0, 1.0)) if posture else 0.0
    targets = {}
    for side, sign in (("left", 1.0), ("right", -1.0)):
        k = skeleton.index(side + "Foot")
        targets[side + "Foot"] = skeleton.rest_positions[k] + np.array([sign * half_width, 0.0, 0.0])
    return plant_feet(layered, skeleton, foot_targets=targets)
