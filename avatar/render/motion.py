"""Motion resampling: FaceMotion and BodyMotion at the video's frame rate (linear for channels, slerp for joints)."""

from __future__ import annotations

import numpy as np

from avatar.types import BodyMotion, FaceMotion


def frame_count(face: FaceMotion | None, body: BodyMotion | None, fps: float = 30.0) -> int:
    """Frames of a video at `fps` covering the longer motion: round(duration * fps), at least 1."""
    dur = max([m.duration for m in (face, body) if m is not None] or [0.0])
    return max(1, int(round(dur * float(fps))))


def resample_face(face: FaceMotion, n: int, fps: float) -> np.ndarray:
    """FaceMotion frames [n, C] at `fps` (linear; the last frame is held past the end)."""
    t = np.arange(n) / float(fps) * face.fps
    i0 = np.clip(np.floor(t).astype(np.int64), 0, face.num_frames - 1)
    i1 = np.clip(i0 + 1, 0, face.num_frames - 1)
    a = np.clip(t - i0, 0.0, 1.0)[:, None]
    return (face.frames[i0] * (1 - a) + face.frames[i1] * a).astype(np.float64)


def resample_body(body: BodyMotion, n: int, fps: float) -> tuple[np.ndarray, np.ndarray]:
    """BodyMotion rotations [n, J, 4] (slerp) and root positions [n, 3] (linear) at `fps`."""
    from avatar.rig.rotations import quat_slerp

    t = np.arange(n) / float(fps) * body.fps
    i0 = np.clip(np.floor(t).astype(np.int64), 0, body.num_frames - 1)
    i1 = np.clip(i0 + 1, 0, body.num_frames - 1)
    a = np.clip(t - i0, 0.0, 1.0)
    rot = quat_slerp(body.rotations[i0].astype(np.float64), body.rotations[i1].astype(np.float64), a[:, None])
    root = body.root_position[i0] * (1 - a[:, None]) + body.root_position[i1] * a[:, None]
    return rot, root.astype(np.float64)
