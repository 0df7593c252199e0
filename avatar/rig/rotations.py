"""Rotation conversions (quaternion x,y,z,w <-> matrix <-> 6-D <-> Euler), slerp, quaternion product.

Everything is vectorised over leading axes ([..., 4] quaternions, [..., 3, 3] matrices, [..., 6] 6-D).
The product, rotating vectors, quaternion <-> matrix and the Euler conversions are written out in numpy to give
what scipy's Rotation gives (inputs normalised, Markley's method from matrices, non-orthogonal matrices
orthogonalised by SVD first, Euler angles in scipy's ranges and gimbal-lock convention): they are on the path of
every render and of `avatar say --keep`'s BVH, and importing scipy.spatial costs about 0.4-0.8 s of a new
process; tests/test_scipy_equivalents.py compares them with Rotation on random inputs. The 6-D form (Zhou et al. 2019,
"On the Continuity of Rotation Representations in Neural Networks") and pairwise slerp are written here
because scipy has neither (its Slerp interpolates one key sequence, not arrays of pairs).
"""

from __future__ import annotations

import numpy as np

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


def _unit(f: np.ndarray) -> np.ndarray:
    """Rows of [N, 4] normalised, refusing zero rows (as Rotation.from_quat does)."""
    norm = np.linalg.norm(f, axis=1, keepdims=True)
    if np.any(norm == 0):
        raise ValueError("Found zero norm quaternions in `quat`.")
    return f / norm


def _matrices(f: np.ndarray) -> np.ndarray:
    """[N, 4] unit quaternions (x, y, z, w) to [N, 3, 3] rotation matrices."""
    x, y, z, w = f.T
    xx, yy, zz, ww = x * x, y * y, z * z, w * w
    xy, zw, xz, yw, yz, xw = x * y, z * w, x * z, y * w, y * z, x * w
    m = np.empty((f.shape[0], 3, 3))
    m[:, 0, 0], m[:, 0, 1], m[:, 0, 2] = xx - yy - zz + ww, 2 * (xy - zw), 2 * (xz + yw)
    m[:, 1, 0], m[:, 1, 1], m[:, 1, 2] = 2 * (xy + zw), -xx + yy - zz + ww, 2 * (yz - xw)
    m[:, 2, 0], m[:, 2, 1], m[:, 2, 2] = 2 * (xz - yw), 2 * (yz + xw), -xx - yy + zz + ww
    return m


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
    fa, shape = _flat(a, 4)
    fb, _ = _flat(b, 4)
    if fa.shape[0] == 0:
        return np.zeros((*shape, 4))
    fa, fb = _unit(fa), _unit(fb)
    out = np.empty_like(fa)
    out[:, :3] = fa[:, 3:] * fb[:, :3] + fb[:, 3:] * fa[:, :3] + np.cross(fa[:, :3], fb[:, :3])
    out[:, 3] = fa[:, 3] * fb[:, 3] - np.sum(fa[:, :3] * fb[:, :3], axis=1)
    return out.reshape(*shape, 4)


def quat_inv(q: np.ndarray) -> np.ndarray:
    """Inverse (conjugate) of unit quaternions."""
    q = np.array(q, dtype=np.float64)
    q[..., :3] *= -1
    return q


def quat_apply(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate vectors v [..., 3] by quaternions q [..., 4] (broadcasting)."""
    q, v = np.asarray(q, dtype=np.float64), np.asarray(v, dtype=np.float64)
    shape = np.broadcast_shapes(q.shape[:-1], v.shape[:-1])
    fq = np.broadcast_to(q, (*shape, 4)).reshape(-1, 4)
    fv = np.broadcast_to(v, (*shape, 3)).reshape(-1, 3)
    if fq.shape[0] == 0:
        return np.zeros((*shape, 3))
    return np.einsum("nij,nj->ni", _matrices(_unit(fq)), fv).reshape(*shape, 3)


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    """Quaternions [..., 4] (x, y, z, w) to rotation matrices [..., 3, 3]."""
    f, shape = _flat(q, 4)
    if f.shape[0] == 0:
        return np.zeros((*shape, 3, 3))
    return _matrices(_unit(f)).reshape(*shape, 3, 3)


def matrix_to_quat(m: np.ndarray) -> np.ndarray:
    """Rotation matrices [..., 3, 3] to unit quaternions [..., 4] with w >= 0."""
    m = np.asarray(m, dtype=np.float64)
    shape = m.shape[:-2]
    f = m.reshape(-1, 3, 3)
    if f.shape[0] == 0:
        return np.zeros((*shape, 4))
    bad = np.flatnonzero(np.linalg.det(f) <= 0)
    if bad.size:
        raise ValueError(f"Non-positive determinant (left-handed or null coordinate frame) in rotation matrix "
                         f"{bad[0]}: {f[bad[0]]}.")
    skew = ~np.all(np.isclose(f @ np.swapaxes(f, -1, -2), np.eye(3), rtol=1e-5, atol=1e-12), axis=(-2, -1))
    if np.any(skew):  # the nearest rotation (orthogonal Procrustes), as scipy does
        u, _, vt = np.linalg.svd(f[skew], full_matrices=False)
        f = f.copy()
        f[skew] = u @ vt
    # Markley 2008: build the quaternion from the largest of the diagonal and the trace (stable everywhere).
    tr = np.trace(f, axis1=1, axis2=2)
    choice = np.argmax(np.stack([f[:, 0, 0], f[:, 1, 1], f[:, 2, 2], tr], axis=1), axis=1)
    q = np.stack([f[:, 2, 1] - f[:, 1, 2], f[:, 0, 2] - f[:, 2, 0], f[:, 1, 0] - f[:, 0, 1], 1 + tr], axis=1)
    for i in range(3):
        j, k = (i + 1) % 3, (i + 2) % 3
        rows = choice == i
        g = f[rows]
        q[rows, i] = 1 - tr[rows] + 2 * g[:, i, i]
        q[rows, j] = g[:, j, i] + g[:, i, j]
        q[rows, k] = g[:, k, i] + g[:, i, k]
        q[rows, 3] = g[:, k, j] - g[:, j, k]
    return quat_canonical(q / np.linalg.norm(q, axis=1, keepdims=True)).reshape(*shape, 4)


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
    """Intrinsic Euler angles [..., 3] in the given axis order (R = R_a0 R_a1 R_a2, as BVH channels read).

    Ranges as scipy's `Rotation.as_euler` (first and last in (-180, 180], middle in [-90, 90]); at gimbal lock
    (middle angle +-90) the last angle is 0 and the first carries the turn, as scipy does. Written out here
    because importing scipy.spatial costs 0.4-0.8 s of a new process (`avatar say --keep` writes a BVH);
    tests/test_scipy_equivalents.py compares both."""
    order = _check_order(order)
    f, shape = _flat(q, 4)
    if f.shape[0] == 0:
        return np.zeros((*shape, 3))
    m = _matrices(_unit(f))
    i, j, k = ("XYZ".index(a) for a in order)
    e = 1.0 if (j - i) % 3 == 1 else -1.0  # +1 for the cyclic orders (XYZ, YZX, ZXY)
    # R = R_i(a) R_j(b) R_k(c): R[i, k] = e sin b; R[j, k], R[k, k] carry a, R[i, j], R[i, i] carry c (times cos b).
    cb = np.hypot(m[:, j, k], m[:, k, k])
    b = np.arctan2(e * m[:, i, k], cb)
    a = np.arctan2(-e * m[:, j, k], m[:, k, k])
    c = np.arctan2(-e * m[:, i, j], m[:, i, i])
    lock = cb < 1e-7
    if np.any(lock):  # a and c turn about the same axis: c = 0, and a from R R_j(b)^T = R_i(a)
        rj = _matrices(quat_from_axis_angle(np.eye(3)[j], b[lock], degrees=False))
        ri = m[lock] @ rj.transpose(0, 2, 1)
        i1, i2 = (i + 1) % 3, (i + 2) % 3
        a[lock] = np.arctan2(ri[:, i2, i1], ri[:, i1, i1])
        c[lock] = 0.0
    out = np.stack([a, b, c], axis=-1)
    return (np.rad2deg(out) if degrees else out).reshape(*shape, 3)


def euler_to_quat(angles: np.ndarray, order: str = "ZXY", degrees: bool = True) -> np.ndarray:
    """Quaternions from intrinsic Euler angles [..., 3] given in `order` (first angle about order[0])."""
    order = _check_order(order)
    f, shape = _flat(angles, 3)
    if f.shape[0] == 0:
        return np.zeros((*shape, 4))
    turns = [quat_from_axis_angle(np.eye(3)["XYZ".index(axis)], f[:, n], degrees=degrees)
             for n, axis in enumerate(order)]
    return quat_mul(turns[0], quat_mul(turns[1], turns[2])).reshape(*shape, 4)  # R_a0 R_a1 R_a2


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
    from avatar.rig.kinematics import forward_kinematics as _fk  # imported late: kinematics imports this module
    from avatar.rig.skeleton import HUMANOID

    return _fk(motion, skeleton or HUMANOID)
