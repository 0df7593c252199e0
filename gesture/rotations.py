"""Rotation conversions (quaternion x,y,z,w <-> matrix <-> 6-D <-> Euler), slerp, quaternion product.

Everything is vectorised over leading axes ([..., 4] quaternions, [..., 3, 3] matrices, [..., 6] 6-D).
Conversions that scipy.spatial.transform.Rotation offers are delegated to it; the 6-D form (Zhou et al.
2019, "On the Continuity of Rotation Representations in Neural Networks") and pairwise slerp are written
here because scipy has neither (its Slerp interpolates one key sequence, not arrays of pairs).
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

__all__ = [
    "identity_quat", "quat_normalize", "quat_mul", "quat_inv", "quat_apply", "quat_to_matrix", "matrix_to_quat",
    "matrix_to_6d", "sixd_to_matrix", "quat_to_6d", "sixd_to_quat", "quat_to_euler", "euler_to_quat",
    "quat_slerp", "quat_from_axis_angle", "quat_angle", "quat_canonical", "quat_mirror_x", "forward_kinematics",
]


def _flat(a: np.ndarray, k: int) -> tuple[np.ndarray, tuple[int, ...]]:
    a = np.asarray(a, dtype=np.float64)
    if a.shape[-1] != k:
        raise ValueError(f"expected a trailing axis of {k}, got shape {a.shape}")
    return a.reshape(-1, k), a.shape[:-1]


def identity_quat(*shape: int) -> np.ndarray:
    """Identity quaternions (0, 0, 0, 1) of the given leading shape, float64."""
    q = np.zeros((*shape, 4))
    q[..., 3] = 1.0
    return q


def quat_normalize(q: np.ndarray) -> np.ndarray:
    """Unit-length quaternions."""
    q = np.asarray(q, dtype=np.float64)
    return q / np.maximum(np.linalg.norm(q, axis=-1, keepdims=True), 1e-12)


def quat_canonical(q: np.ndarray) -> np.ndarray:
    """The representative with w >= 0 (q and -q are the same rotation)."""
    q = np.asarray(q, dtype=np.float64)
    return np.where(q[..., 3:4] < 0, -q, q)


def quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product a*b (apply b first, then a), broadcasting over leading axes."""
    a, b = np.broadcast_arrays(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64))
    fa, shape = _flat(np.array(a), 4)  # copies: broadcast views are read-only, scipy needs writable buffers
    fb, _ = _flat(np.array(b), 4)
    if fa.shape[0] == 0:
        return np.zeros((*shape, 4))
    return (Rotation.from_quat(fa) * Rotation.from_quat(fb)).as_quat().reshape(*shape, 4)


def quat_inv(q: np.ndarray) -> np.ndarray:
    """Inverse (conjugate) of unit quaternions."""
    q = np.array(q, dtype=np.float64)
    q[..., :3] *= -1
    return q


def quat_apply(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate vectors v [..., 3] by quaternions q [..., 4] (broadcasting)."""
    q, v = np.asarray(q, dtype=np.float64), np.asarray(v, dtype=np.float64)
    shape = np.broadcast_shapes(q.shape[:-1], v.shape[:-1])
    fq = np.array(np.broadcast_to(q, (*shape, 4)).reshape(-1, 4))  # scipy needs writable buffers
    fv = np.array(np.broadcast_to(v, (*shape, 3)).reshape(-1, 3))
    if fq.shape[0] == 0:
        return np.zeros((*shape, 3))
    return Rotation.from_quat(fq).apply(fv).reshape(*shape, 3)


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    """Quaternions [..., 4] (x, y, z, w) to rotation matrices [..., 3, 3]."""
    f, shape = _flat(q, 4)
    if f.shape[0] == 0:
        return np.zeros((*shape, 3, 3))
    return Rotation.from_quat(f).as_matrix().reshape(*shape, 3, 3)


def matrix_to_quat(m: np.ndarray) -> np.ndarray:
    """Rotation matrices [..., 3, 3] to unit quaternions [..., 4] with w >= 0."""
    m = np.asarray(m, dtype=np.float64)
    shape = m.shape[:-2]
    f = m.reshape(-1, 3, 3)
    if f.shape[0] == 0:
        return np.zeros((*shape, 4))
    return quat_canonical(Rotation.from_matrix(f).as_quat()).reshape(*shape, 4)


def matrix_to_6d(m: np.ndarray) -> np.ndarray:
    """The 6-D form of Zhou et al. 2019: the first two columns of the matrix, [c1 (3), c2 (3)]."""
    m = np.asarray(m, dtype=np.float64)
    return np.concatenate([m[..., :, 0], m[..., :, 1]], axis=-1)


def sixd_to_matrix(d6: np.ndarray) -> np.ndarray:
    """Back from 6-D by Gram-Schmidt (any 6 numbers with independent halves give a rotation)."""
    d6 = np.asarray(d6, dtype=np.float64)
    a1, a2 = d6[..., :3], d6[..., 3:6]
    b1 = a1 / np.maximum(np.linalg.norm(a1, axis=-1, keepdims=True), 1e-12)
    a2 = a2 - np.sum(b1 * a2, axis=-1, keepdims=True) * b1
    b2 = a2 / np.maximum(np.linalg.norm(a2, axis=-1, keepdims=True), 1e-12)
    b3 = np.cross(b1, b2)
    return np.stack([b1, b2, b3], axis=-1)


def quat_to_6d(q: np.ndarray) -> np.ndarray:
    """Quaternions [..., 4] to the 6-D form [..., 6]."""
    return matrix_to_6d(quat_to_matrix(q))


def sixd_to_quat(d6: np.ndarray) -> np.ndarray:
    """6-D form [..., 6] to unit quaternions [..., 4]."""
    return matrix_to_quat(sixd_to_matrix(d6))


def _check_order(order: str) -> str:
    if len(order) != 3 or set(order.upper()) - set("XYZ") or len(set(order.upper())) != 3:
        raise ValueError(f"Euler order must be a permutation of XYZ (e.g. 'ZXY'), got {order!r}")
    return order.upper()


def quat_to_euler(q: np.ndarray, order: str = "ZXY", degrees: bool = True) -> np.ndarray:
    """Intrinsic Euler angles [..., 3] in the given axis order (R = R_a0 R_a1 R_a2, as BVH channels read)."""
    order = _check_order(order)
    f, shape = _flat(q, 4)
    if f.shape[0] == 0:
        return np.zeros((*shape, 3))
    import warnings

    with warnings.catch_warnings():  # gimbal lock is reported by scipy as a warning; the angles are still valid
        warnings.simplefilter("ignore", UserWarning)
        return Rotation.from_quat(f).as_euler(order, degrees=degrees).reshape(*shape, 3)


def euler_to_quat(angles: np.ndarray, order: str = "ZXY", degrees: bool = True) -> np.ndarray:
    """Quaternions from intrinsic Euler angles [..., 3] given in `order` (first angle about order[0])."""
    order = _check_order(order)
    f, shape = _flat(angles, 3)
    if f.shape[0] == 0:
        return np.zeros((*shape, 4))
    return Rotation.from_euler(order, f, degrees=degrees).as_quat().reshape(*shape, 4)


def quat_from_axis_angle(axis: np.ndarray, angle: np.ndarray, degrees: bool = True) -> np.ndarray:
    """Quaternions rotating by `angle` about unit `axis` (broadcasting)."""
    axis = np.asarray(axis, dtype=np.float64)
    angle = np.asarray(angle, dtype=np.float64)
    if degrees:
        angle = np.deg2rad(angle)
    axis = axis / np.maximum(np.linalg.norm(axis, axis=-1, keepdims=True), 1e-12)
    half = angle[..., None] / 2
    return np.concatenate([axis * np.sin(half), np.cos(half)], axis=-1)


def quat_angle(q: np.ndarray, degrees: bool = True) -> np.ndarray:
    """Rotation angle of each quaternion (0..180 degrees)."""
    q = quat_normalize(q)
    a = 2 * np.arccos(np.clip(np.abs(q[..., 3]), 0.0, 1.0))
    return np.rad2deg(a) if degrees else a


def quat_slerp(a: np.ndarray, b: np.ndarray, t: np.ndarray | float) -> np.ndarray:
    """Spherical interpolation between quaternion arrays a and b at t (0 gives a, 1 gives b), shortest path."""
    a = quat_normalize(a)
    b = quat_normalize(b)
    t = np.asarray(t, dtype=np.float64)[..., None]
    dot = np.sum(a * b, axis=-1, keepdims=True)
    b = np.where(dot < 0, -b, b)
    dot = np.abs(dot)
    theta = np.arccos(np.clip(dot, -1.0, 1.0))
    sin = np.sin(theta)
    near = sin < 1e-6  # nearly equal: fall back to normalised lerp to avoid 0/0
    safe = np.where(near, 1.0, sin)
    wa = np.where(near, 1 - t, np.sin((1 - t) * theta) / safe)
    wb = np.where(near, t, np.sin(t * theta) / safe)
    return quat_normalize(wa * a + wb * b)


def quat_mirror_x(q: np.ndarray) -> np.ndarray:
    """Mirror rotations across the YZ plane (character's left <-> right): (x, y, z, w) -> (x, -y, -z, w)."""
    q = np.array(q, dtype=np.float64)
    q[..., 1:3] *= -1
    return q


def forward_kinematics(motion, skeleton=None):  # noqa: ANN001, ANN201 - typed in kinematics.forward_kinematics
    """World joint positions [T, J, 3] of a BodyMotion (kinematics.forward_kinematics, re-exported here)."""
    from .kinematics import forward_kinematics as _fk  # imported late: kinematics imports this module
    from .skeleton import HUMANOID

    return _fk(motion, skeleton or HUMANOID)
