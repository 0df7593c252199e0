"""Skeleton, rotation conversions, forward kinematics and leg IK."""

from __future__ import annotations

import numpy as np
import pytest

from avatar.rig.kinematics import fk, forward_kinematics, leg_ik
from avatar.rig.rotations import (
    euler_to_quat, identity_quat, matrix_to_6d, matrix_to_quat, quat_angle, quat_apply, quat_canonical,
    quat_from_axis_angle, quat_inv, quat_mirror_x, quat_mul, quat_slerp, quat_to_6d, quat_to_euler, quat_to_matrix,
    sixd_to_matrix, sixd_to_quat,
)
from avatar.rig.skeleton import HUMANOID, UNITY_BONES, VRM_REQUIRED
from avatar.types import BodyMotion


def _random_quats(n: int, seed: int = 0) -> np.ndarray:
    q = np.random.default_rng(seed).normal(size=(n, 4))
    return q / np.linalg.norm(q, axis=1, keepdims=True)


def _same_rotation(a: np.ndarray, b: np.ndarray, tol: float = 1e-6) -> bool:
    return bool(np.abs(np.abs(np.sum(a * b, axis=-1)) - 1).max() < tol)


def test_rest_pose_heights() -> None:
    m = BodyMotion(30, HUMANOID.joints, identity_quat(1, len(HUMANOID.joints)), [[0.0, 0.95, 0.0]])
    pos = forward_kinematics(m)[0]
    from avatar.rig.rotations import forward_kinematics as fk_reexported

    assert np.array_equal(fk_reexported(m)[0], pos)
    at = {n: pos[HUMANOID.index(n)] for n in HUMANOID.joints}
    assert 1.5 < at["head"][1] < 1.65
    assert 1.6 < HUMANOID.height() < 1.8
    for foot in ("leftFoot", "rightFoot", "leftToes", "rightToes"):
        assert -0.01 <= at[foot][1] < 0.12
    assert at["leftHand"][0] > 0.5 and at["rightHand"][0] < -0.5  # T-pose, character's left is +X
    assert at["leftToes"][2] > 0.05  # toes point forward (+Z)
    assert set(VRM_REQUIRED) <= set(HUMANOID.joints)
    assert UNITY_BONES["leftUpperArm"] == "LeftUpperArm" and UNITY_BONES["hips"] == "Hips"


def test_limits_are_mirrored_and_contain_rest() -> None:
    lim = HUMANOID.limits_array()
    assert (lim[:, :, 0] <= 0).all() and (lim[:, :, 1] >= 0).all()  # the T-pose is inside every range
    left, right = HUMANOID.limit("leftUpperArm"), HUMANOID.limit("rightUpperArm")
    assert right[0] == left[0] and right[1] == (-left[1][1], -left[1][0]) and right[2] == (-left[2][1], -left[2][0])


def test_matrix_and_6d_round_trip() -> None:
    q = _random_quats(200)
    assert _same_rotation(matrix_to_quat(quat_to_matrix(q)), q)
    assert _same_rotation(sixd_to_quat(quat_to_6d(q)), q)
    m = quat_to_matrix(q)
    assert np.allclose(sixd_to_matrix(matrix_to_6d(m)), m, atol=1e-9)
    # Gram-Schmidt turns any non-degenerate 6 numbers into a proper rotation.
    r = sixd_to_matrix(np.random.default_rng(1).normal(size=(50, 6)))
    assert np.allclose(r @ np.swapaxes(r, -1, -2), np.eye(3), atol=1e-9)
    assert np.allclose(np.linalg.det(r), 1.0)


@pytest.mark.parametrize("order", ["ZXY", "XYZ", "ZYX", "YXZ"])
def test_euler_round_trip(order: str) -> None:
    q = _random_quats(100, 2)
    assert _same_rotation(euler_to_quat(quat_to_euler(q, order), order), q)


def test_euler_matches_bvh_convention() -> None:
    # ZXY intrinsic: R = Rz(a) Rx(b) Ry(c).
    a, b, c = 30.0, -20.0, 45.0
    rz = quat_from_axis_angle([0, 0, 1.0], a)
    rx = quat_from_axis_angle([1.0, 0, 0], b)
    ry = quat_from_axis_angle([0, 1.0, 0], c)
    assert _same_rotation(euler_to_quat([a, b, c], "ZXY"), quat_mul(rz, quat_mul(rx, ry)))


def test_mul_slerp_inverse_mirror() -> None:
    a, b = _random_quats(50, 3), _random_quats(50, 4)
    assert np.allclose(quat_to_matrix(quat_mul(a, b)), quat_to_matrix(a) @ quat_to_matrix(b), atol=1e-9)
    assert _same_rotation(quat_slerp(a, b, 0.0), a) and _same_rotation(quat_slerp(a, b, 1.0), b)
    mid = quat_slerp(a, b, 0.5)
    d_am = quat_angle(quat_mul(quat_inv(a), mid))
    d_mb = quat_angle(quat_mul(quat_inv(mid), b))
    assert np.allclose(d_am, d_mb, atol=1e-6)
    assert np.allclose(quat_angle(quat_mul(quat_inv(a), a)), 0.0, atol=1e-5)
    # Mirroring twice is the identity, and a mirrored rotation moves a mirrored vector to the mirrored place.
    v = np.random.default_rng(5).normal(size=(50, 3))
    mv = quat_apply(quat_mirror_x(a), v * [-1, 1, 1])
    assert np.allclose(mv * [-1, 1, 1], quat_apply(a, v), atol=1e-9)
    assert np.allclose(quat_canonical(quat_mirror_x(quat_mirror_x(a))), quat_canonical(a))


def test_fk_chain_and_bad_input() -> None:
    J = len(HUMANOID.joints)
    rot = identity_quat(1, J)
    rot[0, HUMANOID.index("leftUpperArm")] = quat_from_axis_angle([0, 0, 1.0], -90)  # arm straight down
    pos, _ = fk(rot, np.array([[0.0, 0.95, 0.0]]))
    sh, hand = pos[0, HUMANOID.index("leftUpperArm")], pos[0, HUMANOID.index("leftHand")]
    assert np.allclose(hand - sh, [0.0, -0.53, 0.0], atol=1e-9)
    with pytest.raises(ValueError):  # noqa: PT011
        fk(identity_quat(1, J - 1), np.zeros((1, 3)))
    # Joints missing from a motion stay at rest; unknown ones are ignored.
    m = BodyMotion(30, ("hips", "tail"), identity_quat(2, 2), np.tile([0.0, 0.95, 0.0], (2, 1)))
    assert np.allclose(forward_kinematics(m)[0], HUMANOID.rest_positions)


def test_leg_ik_reaches_and_keeps_foot_flat() -> None:
    t = 40
    sk = HUMANOID
    ju, jl, jf = (sk.index(n) for n in ("leftUpperLeg", "leftLowerLeg", "leftFoot"))
    hips = np.stack([0.03 * np.sin(np.linspace(0, 6, t)), np.full(t, 0.93), np.zeros(t)], 1)
    hq = quat_from_axis_angle(np.tile([0.0, 0.0, 1.0], (t, 1)), np.linspace(-3, 3, t))
    target = np.tile(sk.rest_positions[jf], (t, 1))
    qu, ql, qf = leg_ik(hips + quat_apply(hq, sk.offsets[ju]), hq, target, sk.offsets[jl], sk.offsets[jf])
    rot = identity_quat(t, len(sk.joints))
    rot[:, 0], rot[:, ju], rot[:, jl], rot[:, jf] = hq, qu, ql, qf
    pos, glob = fk(rot, hips)
    assert np.abs(pos[:, jf] - target).max() < 1e-6
    assert np.abs(pos[:, sk.index("leftToes")] - sk.rest_positions[sk.index("leftToes")]).max() < 1e-6
    assert quat_angle(glob[:, jf]).max() < 1e-4  # sole flat
    assert (pos[:, jl, 2] > 0).all()  # knee bends forward


def test_head_direction_follows_the_chain() -> None:
    """The head's facing in the world: a spine bent forward and a neck turned left add up (face conventions)."""
    from avatar.rig.kinematics import head_direction

    joints = ("spine", "neck")
    rot = np.zeros((3, 2, 4))
    rot[..., 3] = 1.0
    rot[1, 0] = quat_from_axis_angle(np.array([1.0, 0.0, 0.0]), 10.0)  # spine forward: the head tips down
    rot[2, 0] = quat_from_axis_angle(np.array([1.0, 0.0, 0.0]), 10.0)
    rot[2, 1] = quat_from_axis_angle(np.array([0.0, 1.0, 0.0]), 20.0)  # neck towards the avatar's left
    m = BodyMotion(fps=30.0, joints=joints, rotations=rot, root_position=np.zeros((3, 3)))
    yp = np.rad2deg(head_direction(m))
    assert np.allclose(yp[0], 0.0, atol=1e-6)
    assert yp[1, 0] == pytest.approx(0.0, abs=1e-6) and yp[1, 1] == pytest.approx(10.0, abs=1e-4)
    assert yp[2, 0] > 15.0 and yp[2, 1] > 5.0
