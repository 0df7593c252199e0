"""Forward kinematics over a Skeleton, and the analytic two-bone IK that keeps the feet planted."""

from __future__ import annotations

import logging

import numpy as np

from avatar.types import BodyMotion

from avatar.rig.rotations import identity_quat, quat_apply, quat_from_axis_angle, quat_inv, quat_mul, quat_normalize
from avatar.rig.skeleton import HUMANOID, Skeleton

log = logging.getLogger(__name__)


def rotations_in_skeleton_order(motion: BodyMotion, skeleton: Skeleton = HUMANOID) -> np.ndarray:
    """The motion's rotations [T, J, 4] re-ordered to the skeleton's joints (identity where a joint is absent)."""
    out = identity_quat(motion.num_frames, len(skeleton.joints))
    unknown = [n for n in motion.joints if n not in skeleton.joints]
    if unknown:
        log.debug("joints not in the skeleton are ignored: %s", unknown)
    for k, name in enumerate(motion.joints):
        if name in skeleton.joints:
            out[:, skeleton.index(name)] = motion.rotations[:, k]
    return out


def fk(rotations: np.ndarray, root_position: np.ndarray,
       skeleton: Skeleton = HUMANOID) -> tuple[np.ndarray, np.ndarray]:
    """World positions [T, J, 3] and world rotations [T, J, 4] from local rotations [T, J, 4] (skeleton order).

    The root joint sits at `root_position` (absolute, metres); every other joint at its parent's position plus
    the parent's world rotation applied to its rest offset.
    """
    rot = np.asarray(rotations, dtype=np.float64)
    root = np.asarray(root_position, dtype=np.float64)
    t, j = rot.shape[:2]
    if j != len(skeleton.joints):
        raise ValueError(f"rotations have {j} joints, the skeleton {len(skeleton.joints)}")
    pos = np.zeros((t, j, 3))
    glob = np.zeros((t, j, 4))
    for k, p in enumerate(skeleton.parents):
        if p < 0:
            glob[:, k] = rot[:, k]
            pos[:, k] = root
        else:
            glob[:, k] = quat_mul(glob[:, p], rot[:, k])
            pos[:, k] = pos[:, p] + quat_apply(glob[:, p], skeleton.offsets[k])
    return pos, glob


def forward_kinematics(motion: BodyMotion, skeleton: Skeleton = HUMANOID) -> np.ndarray:
    """World joint positions [T, J, 3] (metres, skeleton joint order) of a BodyMotion."""
    pos, _ = fk(rotations_in_skeleton_order(motion, skeleton), motion.root_position, skeleton)
    return pos


def head_direction(motion: BodyMotion, skeleton: Skeleton = HUMANOID) -> np.ndarray:
    """Where the body points the head: yaw and pitch [T, 2] (radians; yaw > 0 to the avatar's left, pitch > 0
    down, the face's convention) of the head joint's forward axis (+Z at rest) in the world."""
    _, glob = fk(rotations_in_skeleton_order(motion, skeleton), motion.root_position, skeleton)
    fwd = quat_apply(glob[:, skeleton.index("head")], np.array([0.0, 0.0, 1.0]))
    yaw = np.arctan2(fwd[:, 0], fwd[:, 2])
    pitch = np.arcsin(np.clip(-fwd[:, 1], -1.0, 1.0))
    return np.stack([yaw, pitch], axis=1)


def end_positions(glob: np.ndarray, pos: np.ndarray, skeleton: Skeleton, joint: str) -> np.ndarray:
    """World positions [T, 3] of a joint's end site (hand tip, top of head) given FK output."""
    k = skeleton.index(joint)
    return pos[:, k] + quat_apply(glob[:, k], np.asarray(skeleton.end_sites[joint], dtype=np.float64))


def _rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Shortest-arc quaternions turning unit vectors a onto b ([..., 3] each)."""
    a = a / np.linalg.norm(a, axis=-1, keepdims=True)
    b = b / np.linalg.norm(b, axis=-1, keepdims=True)
    axis = np.cross(a, b)
    s = np.linalg.norm(axis, axis=-1)
    c = np.sum(a * b, axis=-1)
    ang = np.arctan2(s, c)
    # Parallel vectors: any perpendicular axis works (only reached for exactly opposite vectors).
    fallback = np.cross(a, np.array([1.0, 0.0, 0.0]))
    fallback = np.where(np.linalg.norm(fallback, axis=-1, keepdims=True) < 1e-6, np.cross(a, [0.0, 0.0, 1.0]), fallback)
    axis = np.where(s[..., None] < 1e-9, fallback, axis)
    return quat_from_axis_angle(axis, ang, degrees=False)


def leg_ik(
    hip_pos: np.ndarray, hip_glob_parent: np.ndarray, ankle_target: np.ndarray, upper: np.ndarray, lower: np.ndarray,
    pole: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Analytic two-bone IK: local rotations (upper leg, lower leg, foot) [T, 4] putting the ankle on its target.

    hip_pos [T, 3]: world position of the upper-leg joint; hip_glob_parent [T, 4]: world rotation of the hips;
    upper/lower: rest offsets of the knee (from the hip joint) and of the ankle (from the knee); the knee bends
    towards `pole` (default +Z, forward). The foot's world rotation is kept at identity so the sole stays flat and planted.
    Targets beyond reach are pulled in to 99.9 % of the leg length, so the result is always finite.
    """
    t = hip_pos.shape[0]
    l1, l2 = float(np.linalg.norm(upper)), float(np.linalg.norm(lower))
    d_vec = ankle_target - hip_pos
    d = np.linalg.norm(d_vec, axis=-1)
    d_c = np.clip(d, abs(l1 - l2) + 1e-4, (l1 + l2) * 0.999)
    # Knee interior angle by the law of cosines; 180 degrees is a straight leg.
    cos_knee = np.clip((l1 * l1 + l2 * l2 - d_c * d_c) / (2 * l1 * l2), -1.0, 1.0)
    knee_flex = np.pi - np.arccos(cos_knee)
    # In the rest frame the leg points down (-Y); flex the knee about +X (shin goes back, knee forward).
    q_knee = quat_from_axis_angle(np.broadcast_to([1.0, 0.0, 0.0], (t, 3)), knee_flex, degrees=False)
    # Hip-to-ankle vector with the bent knee, in the thigh's (rest-aligned) frame.
    chain = upper[None] + quat_apply(q_knee, np.broadcast_to(lower, (t, 3)))
    # World rotation of the thigh: first turn the chain onto the target direction...
    q_aim = _rotation_between(chain, d_vec)
    # ...then twist about that direction so the knee points along the pole vector.
    knee_world = quat_apply(q_aim, np.broadcast_to(upper, (t, 3)))
    axis = d_vec / np.maximum(d[:, None], 1e-9)
    def _perp(v: np.ndarray) -> np.ndarray:
        v = v - np.sum(v * axis, axis=-1, keepdims=True) * axis
        return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-9)
    pole = np.array([0.0, 0.0, 1.0]) if pole is None else pole
    kp, pp = _perp(knee_world), _perp(np.broadcast_to(pole, (t, 3)))
    twist = np.arctan2(np.sum(np.cross(kp, pp) * axis, axis=-1), np.sum(kp * pp, axis=-1))
    q_thigh_world = quat_mul(quat_from_axis_angle(axis, twist, degrees=False), q_aim)
    q_upper_local = quat_mul(quat_inv(hip_glob_parent), q_thigh_world)
    q_shin_world = quat_mul(q_thigh_world, q_knee)
    q_foot_local = quat_inv(q_shin_world)  # foot world rotation = identity
    return quat_normalize(q_upper_local), quat_normalize(q_knee), quat_normalize(q_foot_local)


def plant_feet(motion: BodyMotion, skeleton: Skeleton = HUMANOID, max_shift: float = 0.08,
               foot_targets: dict[str, np.ndarray] | None = None) -> BodyMotion:
    """The same motion with the legs re-solved by IK so both ankles stay on their first-frame positions
    (or on `foot_targets`: world ankle positions by foot joint name, e.g. a wider stance).

    Used after a learned model, whose legs may drift: the upper body is kept, the soles stay flat, and the
    hips are kept within reach of the planted feet (horizontally within `max_shift` m of the first frame,
    and low enough that neither leg has to stretch beyond 99.5 % of its length).
    """
    rot = rotations_in_skeleton_order(motion, skeleton)
    root = motion.root_position.astype(np.float64).copy()
    root[:, [0, 2]] = root[0, [0, 2]] + np.clip(root[:, [0, 2]] - root[0, [0, 2]], -max_shift, max_shift)
    pos, _ = fk(rot[:1], root[:1], skeleton)
    hips_q = rot[:, 0]
    legs = []
    for prefix in ("left", "right"):
        try:
            ju, jl, jf = (skeleton.index(prefix + p) for p in ("UpperLeg", "LowerLeg", "Foot"))
        except KeyError:
            continue
        if foot_targets is not None and prefix + "Foot" in foot_targets:
            target = np.asarray(foot_targets[prefix + "Foot"], dtype=np.float64).reshape(3)
        else:
            target = np.array([pos[0, jf, 0], skeleton.rest_positions[jf, 1], pos[0, jf, 2]])
        legs.append((ju, jl, jf, target))
        reach = 0.995 * (np.linalg.norm(skeleton.offsets[jl]) + np.linalg.norm(skeleton.offsets[jf]))
        off = quat_apply(hips_q, skeleton.offsets[ju])
        horiz = np.linalg.norm(root[:, [0, 2]] + off[:, [0, 2]] - target[[0, 2]], axis=1)
        top = target[1] + np.sqrt(np.maximum(reach * reach - horiz * horiz, 1e-6)) - off[:, 1]
        root[:, 1] = np.minimum(root[:, 1], top)
    for ju, jl, jf, target in legs:
        hip_world = root + quat_apply(hips_q, skeleton.offsets[ju])
        qu, ql, qf = leg_ik(hip_world, hips_q, np.broadcast_to(target, hip_world.shape), skeleton.offsets[jl],
                            skeleton.offsets[jf])
        rot[:, ju], rot[:, jl], rot[:, jf] = qu, ql, qf
        for k in (k for k, p in enumerate(skeleton.parents) if p == jf):
            rot[:, k] = identity_quat(len(rot))
    return with_extra_joints(BodyMotion(fps=motion.fps, joints=skeleton.joints, rotations=rot.astype(np.float32),
                                        root_position=root.astype(np.float32)), motion, skeleton)


def with_extra_joints(out: BodyMotion, src: BodyMotion, skeleton: Skeleton = HUMANOID) -> BodyMotion:
    """`out` (in skeleton order) with `src`'s joints that the skeleton lacks (fingers) appended unchanged."""
    extra = [k for k, n in enumerate(src.joints) if n not in skeleton.joints]
    if not extra or len(out.joints) != len(skeleton.joints):
        return out
    return BodyMotion(fps=out.fps, joints=out.joints + tuple(src.joints[k] for k in extra),
                      rotations=np.concatenate([out.rotations, src.rotations[:, extra]], axis=1),
                      root_position=out.root_position)


def resample_motion(motion: BodyMotion, fps: float) -> BodyMotion:
    """The motion at another frame rate: rotations by slerp, root by linear interpolation, same duration."""
    from avatar.rig.rotations import quat_slerp

    if abs(motion.fps - fps) < 1e-9 or motion.num_frames < 2:
        return motion
    n = max(1, int(round(motion.duration * fps)))
    src = np.arange(n) * motion.fps / fps
    i0 = np.clip(np.floor(src).astype(int), 0, motion.num_frames - 1)
    i1 = np.clip(i0 + 1, 0, motion.num_frames - 1)
    w = np.clip(src - i0, 0.0, 1.0)
    rot = motion.rotations.astype(np.float64)
    q = quat_slerp(rot[i0], rot[i1], np.broadcast_to(w[:, None], rot[i0].shape[:2]))
    root = motion.root_position[i0] * (1 - w[:, None]) + motion.root_position[i1] * w[:, None]
    return BodyMotion(fps=fps, joints=motion.joints, rotations=q.astype(np.float32), root_position=root)
