"""Frames of a whole performance, from one `FrameSource`: in this process (`LocalFrames`) or in worker processes
(avatar.render.pool.RenderPool); the pipeline chooses which.

    for rgb in render_frames(avatar, face, body, fps=30): ...

A FrameSource is made for one avatar and one RenderSettings and serves video after video: `frames(face_rows, joints,
pose, n)` yields n RGB frames (uint8 [H, W, 3]) of motion already at the video's rate (avatar.render.motion).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from typing import Protocol, runtime_checkable

import numpy as np

from avatar.errors import InputError
from avatar.types import BodyMotion, FaceMotion

from .avatar_file import Avatar
from .motion import frame_count, resample_body, resample_face
from .settings import DEFAULT_ANTIALIAS, RenderSettings

log = logging.getLogger(__name__)

#: (rotations [n, J, 4], root positions [n, 3]) of a body at the video's rate.
Pose = tuple[np.ndarray, np.ndarray]


@runtime_checkable
class FrameSource(Protocol):
    """Renders the frames of performances with one avatar and one RenderSettings."""

    settings: RenderSettings

    def check(self) -> None:
        """Raise now what setting up found wrong (e.g. a worker that could not read the avatar)."""

    def frames(self, face_rows: np.ndarray | None, joints: tuple[str, ...], pose: Pose | None,
               n: int) -> Iterator[np.ndarray]:
        """n RGB frames of face rows [n, C] and a pose, both at the video's rate (None: that part at rest)."""

    def close(self) -> None:
        """Release what the source holds (idempotent)."""


class LocalFrames:
    """A FrameSource in this process: one Renderer per video, its GL context opened on the first frame.

    ahead > 0: a worker thread renders up to that many frames ahead of the consumer (the GL context lives and dies in
    that thread), so encoding overlaps rendering. progress(fraction) is called after each frame."""

    def __init__(self, avatar: Avatar | str | os.PathLike[str] | None, settings: RenderSettings, *, ahead: int = 0,
                 progress: Callable[[float], None] | None = None) -> None:
        """Resolve the avatar now (a broken file fails here, before any frame)."""
        from .avatars import resolve_avatar

        if isinstance(ahead, bool) or not isinstance(ahead, (int, np.integer)) or not 0 <= ahead <= 64:
            raise InputError(f"ahead must be an integer in [0, 64], got {ahead!r}")
        self.avatar = resolve_avatar(avatar)
        self.settings = settings
        self.ahead = int(ahead)
        self.progress = progress

    def check(self) -> None:
        """Nothing to check: the avatar was read when this source was made."""

    def frames(self, face_rows: np.ndarray | None, joints: tuple[str, ...], pose: Pose | None,
               n: int) -> Iterator[np.ndarray]:
        """n frames rendered here (read ahead in a thread when `ahead`)."""
        frames = self._frames(face_rows, joints, pose, n)
        return read_ahead(frames, self.ahead) if self.ahead else frames

    def _frames(self, face_rows: np.ndarray | None, joints: tuple[str, ...], pose: Pose | None,
                n: int) -> Iterator[np.ndarray]:
        from .renderer import Renderer

        with Renderer(self.avatar, settings=self.settings) as r:
            for i in range(n):
                b = (joints, pose[0][i], pose[1][i]) if pose is not None else None
                yield r.render(face_rows[i] if face_rows is not None else None, b)
                if self.progress is not None:
                    self.progress((i + 1) / n)

    def close(self) -> None:
        """Nothing held between videos (each video's renderer closes with its iterator)."""


def render_frames(avatar: Avatar | str | os.PathLike[str] | None, face: FaceMotion | None,
                  body: BodyMotion | None, fps: float = 30.0, width: int = 512, height: int = 512,
                  framing: str = "portrait", progress: Callable[[float], None] | None = None,
                  samples: int = 4, antialias: str = DEFAULT_ANTIALIAS, ahead: int = 0,
                  pool: FrameSource | None = None, settings: RenderSettings | None = None) -> Iterator[np.ndarray]:
    """Render a performance: both motions resampled to `fps`, frame_count(face, body, fps) RGB frames.

    Arguments are checked at once (InputError); `settings`, when given, replaces width, height, framing, samples
    and antialias. Without `pool` the frames are made in this process (LocalFrames: the GL context opens on the
    first frame and closes when the iterator is exhausted or closed; `ahead` frames read ahead in a thread). With
    `pool` (a FrameSource made for this avatar and settings, e.g. avatar.render.pool.RenderPool) it makes them."""
    fps = float(fps)
    if not np.isfinite(fps) or not 1.0 <= fps <= 120.0:
        raise InputError(f"fps must be in [1, 120], got {fps!r}")
    if face is None and body is None:
        raise InputError("render_frames needs a face motion, a body motion or both")
    if settings is None:
        settings = RenderSettings.make(width=width, height=height, framing=framing, samples=samples,
                                       antialias=antialias)
    if pool is not None and pool.settings != settings:
        s, p = settings, pool.settings
        raise InputError(f"the render pool renders {p.width}x{p.height} {p.framing} {p.antialias}, "
                         f"not {s.width}x{s.height} {s.framing} {s.antialias}")
    source = pool if pool is not None else LocalFrames(avatar, settings, ahead=ahead, progress=progress)
    n = frame_count(face, body, fps)
    face_rows = resample_face(face, n, fps) if face is not None else None
    pose = resample_body(body, n, fps) if body is not None else None
    return source.frames(face_rows, body.joints if body is not None else (), pose, n)


_END = object()


def read_ahead(source: Iterator[np.ndarray], depth: int) -> Iterator[np.ndarray]:
    """`source` run in a worker thread, at most `depth` items ahead; its errors are re-raised here, and closing
    this iterator stops the worker and closes `source` in the worker's own thread (where its GL context is)."""
    import queue
    import threading

    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for item in source:
                if not put((item, None)):
                    break
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which re-raises it
            put((None, exc))
        finally:
            source.close()
            put((_END, None))

    worker = threading.Thread(target=work, name="avatar-render", daemon=True)
    worker.start()
    try:
        while True:
            item, exc = q.get()
            if exc is not None:
                raise exc
            if item is _END:
                return
            yield item
    finally:
        stop.set()
        worker.join()
