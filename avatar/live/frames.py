"""One live frame (face channels + body pose at one stream time) and its wire forms (VMC values, JSON).

A LiveFrame keeps our own conventions (glTF axes, VRM humanoid joint order of avatar.rig.skeleton,
FaceMotion channels: 52 ARKit weights, head yaw/pitch/roll, eye gaze); the VMC sender converts to Unity's
axes, the WebSocket JSON keeps glTF's (what three.js and Babylon.js use).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from avatar.face.rig import VRM_EXPRESSIONS, to_vrm_array
from avatar.rig.skeleton import HUMANOID
from avatar.types import ARKIT_BLENDSHAPES, FACE_CHANNELS

NB = len(ARKIT_BLENDSHAPES)
_CH = {n: i for i, n in enumerate(FACE_CHANNELS)}


def _axis_quat(axis: int, angle: float) -> np.ndarray:
    q = np.zeros(4)
    q[axis] = np.sin(angle / 2.0)
    q[3] = np.cos(angle / 2.0)
    return q


def quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product of quaternions (x, y, z, w), broadcasting over leading axes."""
    ax, ay, az, aw = np.moveaxis(np.asarray(a, dtype=np.float64), -1, 0)
    bx, by, bz, bw = np.moveaxis(np.asarray(b, dtype=np.float64), -1, 0)
    return np.stack([aw * bx + ax * bw + ay * bz - az * by, aw * by - ax * bz + ay * bw + az * bx,
                     aw * bz + ax * by - ay * bx + az * bw, aw * bw - ax * bx - ay * by - az * bz], axis=-1)


def ypr(yaw: float, pitch: float, roll: float = 0.0) -> np.ndarray:
    """Yaw about +Y, then pitch about +X, then roll about +Z (docs/face.md's head and gaze convention)."""
    return quat_mul(quat_mul(_axis_quat(1, yaw), _axis_quat(0, pitch)), _axis_quat(2, roll))


def nlerp(a: np.ndarray, b: np.ndarray, w: float | np.ndarray) -> np.ndarray:
    """Normalised linear blend of quaternions [..., 4] (shortest arc); close to slerp for the small steps here."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    sign = np.where((a * b).sum(-1, keepdims=True) < 0, -1.0, 1.0)
    w = np.asarray(w, dtype=np.float64)
    q = a * (1.0 - w) + b * sign * w
    return q / np.maximum(np.linalg.norm(q, axis=-1, keepdims=True), 1e-12)


def sample_track(frames: np.ndarray, fps: float, t: float) -> np.ndarray:
    """Linear interpolation of a per-frame array [T, ...] at time t (s); ends held."""
    n = frames.shape[0]
    x = min(max(t * fps, 0.0), n - 1.0)
    i = int(x)
    j = min(i + 1, n - 1)
    f = x - i
    return frames[i] * (1.0 - f) + frames[j] * f


def sample_rotations(rot: np.ndarray, fps: float, t: float) -> np.ndarray:
    """Quaternions [T, J, 4] at time t (s), nlerp between neighbouring frames; ends held."""
    n = rot.shape[0]
    x = min(max(t * fps, 0.0), n - 1.0)
    i = int(x)
    return nlerp(rot[i], rot[min(i + 1, n - 1)], x - i)


@dataclass
class LiveFrame:
    """The avatar at one stream time: face channels [59], local joint rotations [J, 4] (x, y, z, w), root [3]."""

    index: int
    time: float
    face: np.ndarray
    rotations: np.ndarray
    root: np.ndarray
    vad: np.ndarray = field(default_factory=lambda: np.zeros(3))
    speaking: bool = False
    line: int | None = None

    @cached_property
    def arkit(self) -> np.ndarray:
        """The 52 ARKit weights in [0, 1]."""
        return np.clip(self.face[:NB], 0.0, 1.0)

    @cached_property
    def vrm(self) -> np.ndarray:
        """VRM expression weights in VRM_EXPRESSIONS order (avatar.face.rig)."""
        return to_vrm_array(self.arkit[None])[0]

    def local_rotations(self) -> np.ndarray:
        """[J + 2, 4]: the skeleton's joints (head with the face's head pose on top), then left and right eye."""
        rot = np.array(self.rotations, dtype=np.float64, copy=True)
        f = self.face
        h = HUMANOID.index("head")
        rot[h] = quat_mul(rot[h], ypr(f[_CH["headYaw"]], f[_CH["headPitch"]], f[_CH["headRoll"]]))
        eyes = np.stack([ypr(f[_CH["leftEyeYaw"]], f[_CH["leftEyePitch"]]),
                         ypr(f[_CH["rightEyeYaw"]], f[_CH["rightEyePitch"]])])
        return np.concatenate([rot, eyes])

    def local_positions(self) -> np.ndarray:
        """[J + 2, 3] metres: each joint's offset from its parent (hips: the root position), then the eyes."""
        from avatar.live.vmc import EYE_OFFSETS

        pos = np.array(HUMANOID.offsets, dtype=np.float64, copy=True)
        pos[0] = self.root
        return np.concatenate([pos, np.array([EYE_OFFSETS["leftEye"], EYE_OFFSETS["rightEye"]])])

    def to_json(self) -> dict:
        """The WebSocket frame message (docs/live.md): glTF axes, rounded to 4 decimals."""
        def r(a: np.ndarray) -> list:
            return np.round(np.asarray(a, dtype=np.float64), 4).tolist()

        rot = self.local_rotations()
        return {
            "type": "frame", "i": self.index, "t": round(self.time, 4), "speaking": self.speaking,
            "line": self.line, "vad": r(self.vad), "arkit": r(self.arkit),
            "vrm": dict(zip(VRM_EXPRESSIONS, r(self.vrm))),
            "head": r(self.face[NB:NB + 3]), "gaze": r(self.face[NB + 3:NB + 7]),
            "bones": dict(zip(HUMANOID.joints, r(rot[:len(HUMANOID.joints)]))),
            "eyes": {"leftEye": r(rot[-2]), "rightEye": r(rot[-1])},
            "root": r(self.root),
        }
