"""The frame clock: frame k is due at t0 + k / fps on a monotonic clock, so timing never drifts.

Sleeping 1/fps after each frame accumulates every oversleep and every frame's own work (a 60 fps loop that
oversleeps 1 ms a frame is 36 s late after 10 minutes). Scheduling each frame from the fixed start time
instead bounds the error to one frame's jitter however long the stream runs. When the sender falls more
than `max_lag` behind (a stalled process, a suspended laptop), the clock skips the missed frames rather
than sending a burst of stale ones; the stream time of a frame is always k / fps.

`lower_thread_priority` lets background workers (idle blocks, the diffusion models) yield the CPU to the
frame loop and the TTS on a busy machine (Linux keeps a nice value per thread).
"""

from __future__ import annotations

import logging
import math
import os
import sys
import threading
import time
from dataclasses import dataclass
from typing import Callable

from avatar.errors import InputError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Tick:
    """One frame: its index, its stream time k / fps (s), and how late it started (s, >= 0)."""

    index: int
    time: float
    late: float


class FrameClock:
    """Frames at a fixed rate scheduled from one monotonic start time (t0 + k / fps); `now`/`sleep` injectable."""

    def __init__(self, fps: float, now: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep, max_lag: float = 0.25) -> None:
        """Start the clock now; frame 0 is due at once."""
        f = float(fps)
        if not math.isfinite(f) or not 1.0 <= f <= 240.0:
            raise InputError(f"fps must be in [1, 240], got {fps!r}")
        self.fps = f
        self._now = now
        self._sleep = sleep
        self.max_lag = float(max_lag)
        self.t0 = now()
        self.next_index = 0
        self.skipped = 0

    def due(self, index: int) -> float:
        """Monotonic time at which frame `index` is due."""
        return self.t0 + index / self.fps

    def stream_time(self) -> float:
        """Seconds since the clock started (the stream's time axis)."""
        return self._now() - self.t0

    def wait(self) -> Tick:
        """Sleep until the next frame is due and return it (skipping frames when more than max_lag behind)."""
        k = self.next_index
        now = self._now()
        if now - self.due(k) > self.max_lag:
            # Far behind: jump to the frame due now instead of replaying a burst of stale frames.
            k2 = int(math.floor((now - self.t0) * self.fps))
            self.skipped += k2 - k
            k = k2
        while True:
            remaining = self.due(k) - now
            if remaining <= 0:
                break
            self._sleep(remaining)
            now = self._now()
        self.next_index = k + 1
        return Tick(index=k, time=k / self.fps, late=now - self.due(k))


def lower_thread_priority(steps: int) -> None:
    """Raise the calling thread's nice value by `steps` (Linux: per thread; elsewhere, or refused: no-op)."""
    if not hasattr(os, "setpriority") or not sys.platform.startswith("linux"):
        return
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + int(steps)))
    except OSError as exc:  # containers may refuse; the stream works the same, only less smoothly when busy
        log.debug("live: could not lower a worker thread's priority: %s", exc)
