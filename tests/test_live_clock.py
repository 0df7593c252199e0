"""The live frame clock: frames scheduled from one start time never drift, even over 10 simulated minutes."""

from __future__ import annotations

import numpy as np
import pytest

from avatar.errors import InputError
from avatar.live.clock import FrameClock


class FakeTime:
    """A monotonic clock whose sleeps overshoot by a random 0-3 ms, plus a per-frame work cost."""

    def __init__(self, seed: int = 0, overshoot: float = 0.003) -> None:
        self.t = 1000.0
        self.rng = np.random.default_rng(seed)
        self.overshoot = overshoot

    def now(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.t += s + self.rng.uniform(0.0, self.overshoot)


def test_no_drift_over_ten_simulated_minutes() -> None:
    fps, minutes = 60.0, 10
    ft = FakeTime(seed=1)
    clock = FrameClock(fps, now=ft.now, sleep=ft.sleep)
    starts = []
    n = int(minutes * 60 * fps)
    for _ in range(n):
        tick = clock.wait()
        starts.append(ft.now())
        ft.t += 0.004  # the frame's own work (compose + send)
    err = np.array(starts) - (clock.t0 + np.arange(n) / fps)
    assert tick.index == n - 1 and tick.time == pytest.approx((n - 1) / fps)
    assert err.min() >= 0.0 and err.max() < 0.004  # every frame within one oversleep of its due time
    assert abs(err[-600:].mean() - err[:600].mean()) < 0.001  # no trend: the last 10 s as on time as the first
    assert clock.skipped == 0


def test_naive_sleep_accumulation_would_drift() -> None:
    # The same oversleep with sleep(1 / fps) per frame is late by minutes: what the clock exists to avoid.
    ft = FakeTime(seed=1)
    start = ft.now()
    for _ in range(36000):
        ft.sleep(1 / 60)
        ft.t += 0.004
    assert ft.now() - start - 600.0 > 60.0


def test_far_behind_skips_stale_frames_instead_of_bursting() -> None:
    ft = FakeTime(seed=2, overshoot=0.0)
    clock = FrameClock(30.0, now=ft.now, sleep=ft.sleep, max_lag=0.25)
    clock.wait()
    ft.t += 2.0  # the process stalled for two seconds
    tick = clock.wait()
    assert tick.index == 60 and clock.skipped == 59  # frame 60 is the one due now
    nxt = clock.wait()
    assert nxt.index == 61 and nxt.late == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("fps", [0, -5, 1000, float("nan")])
def test_bad_fps_refused(fps: float) -> None:
    with pytest.raises(InputError):
        FrameClock(fps)
