"""Blinks, gaze and head motion: rates in range, seeded, alive through silence."""

from __future__ import annotations

import numpy as np
import pytest

from avatar.errors import InputError
from avatar.face.idle import idle_motion

FPS = 30.0


def count_blinks(blink: np.ndarray) -> int:
    closed = blink > 0.5
    return int(np.sum(closed[1:] & ~closed[:-1]) + closed[0])


def test_blink_rate_at_rest_is_in_range_and_rises_with_arousal() -> None:
    n = int(600 * FPS)  # ten minutes per run
    calm = [count_blinks(idle_motion(n, FPS, arousal=0.0, seed=s).blink) / 10 for s in range(3)]
    high = [count_blinks(idle_motion(n, FPS, arousal=0.9, seed=s).blink) / 10 for s in range(3)]
    assert 14.0 <= np.mean(calm) <= 21.0, calm
    assert all(11.0 <= c <= 24.0 for c in calm), calm
    assert np.mean(high) > np.mean(calm) * 1.05  # (the blink-free-stretch rule lifts the calm rate a little)


def test_no_clip_over_three_seconds_stares() -> None:
    """Every clip of 3-6 s has a full blink, whatever the seed; the rate over many short clips is 10-25/min."""
    blinks = seconds = 0.0
    for seed in range(150):
        dur = float(np.random.default_rng(seed).uniform(3.0, 6.0))
        n = int(dur * FPS)
        m = idle_motion(n, FPS, arousal=0.3, activity=np.ones(n), seed=seed)
        assert m.blink.max() >= 0.9, (seed, dur)
        blinks += count_blinks(m.blink)
        seconds += dur
    assert 10.0 <= blinks / seconds * 60 <= 25.0


def test_blinks_have_the_right_shape() -> None:
    m = idle_motion(int(120 * FPS), FPS, seed=4)
    assert m.blink.min() >= 0.0 and m.blink.max() <= 1.0
    closed = m.blink > 0.5
    starts = np.nonzero(closed[1:] & ~closed[:-1])[0] + 1
    ends = np.nonzero(~closed[1:] & closed[:-1])[0] + 1
    lengths = ends - starts[: len(ends)]
    assert lengths.max() <= 4  # under ~130 ms with the lid more than half closed
    for s in starts:  # every blink fully closes on at least one frame
        assert m.blink[s: s + 4].max() >= 0.9
    gaps = np.diff(m.blink_times)
    assert gaps.min() >= 0.6  # refractory period


def test_blinks_cluster_at_pauses() -> None:
    n = int(300 * FPS)
    activity = np.zeros(n)
    period = int(3.0 * FPS)
    for k in range(0, n, period):  # 2.4 s of speech then 0.6 s pause, repeated
        activity[k: k + int(2.4 * FPS)] = 1.0
    in_pause = np.zeros(n, dtype=bool)
    for k in range(int(2.4 * FPS), n, period):
        in_pause[k: k + int(0.4 * FPS)] = True
    hits = total = 0
    for seed in range(4):
        onsets = (idle_motion(n, FPS, activity=activity, seed=seed).blink_times * FPS).astype(int)
        hits += int(in_pause[onsets].sum())
        total += len(onsets)
    # 13 % of the time is "first 0.4 s of a pause"; blinks land there about twice as often (0.28).
    assert hits / total > 0.22  # chance level is 0.13


def test_same_seed_same_motion_different_seed_different() -> None:
    a = idle_motion(300, FPS, arousal=0.3, seed=7)
    b = idle_motion(300, FPS, arousal=0.3, seed=7)
    c = idle_motion(300, FPS, arousal=0.3, seed=8)
    for x, y in ((a.blink, b.blink), (a.gaze, b.gaze), (a.head, b.head)):
        assert np.array_equal(x, y)
    assert not np.array_equal(a.head, c.head) and not np.array_equal(a.gaze, c.gaze)


def test_gaze_and_head_stay_plausible_and_keep_moving_in_silence() -> None:
    m = idle_motion(int(60 * FPS), FPS, arousal=0.0, activity=np.zeros(int(60 * FPS)), seed=1)
    gaze_deg, head_deg = np.rad2deg(m.gaze), np.rad2deg(m.head)
    assert np.abs(gaze_deg).max() <= 30.0 and np.abs(head_deg).max() <= 15.0
    # Saccades: jumps between fixations, several per ten seconds.
    jumps = np.sum(np.abs(np.diff(gaze_deg[:, 0])) > 1.0)
    assert 5 <= jumps / 6 <= 60
    for k in range(3):  # each head axis drifts over the last 10 s of silence
        assert head_deg[-300:, k].std() > 0.05
    assert 0.5 < head_deg[:, 0].std() < 6.0


def test_head_motion_grows_with_arousal_and_speech_and_nods_on_emphasis() -> None:
    n = int(60 * FPS)
    calm = idle_motion(n, FPS, arousal=-0.8, seed=2).head.std(axis=0)
    aroused = idle_motion(n, FPS, arousal=0.9, activity=np.ones(n), seed=2).head.std(axis=0)
    assert np.all(aroused > 1.5 * calm)
    emphasis = np.zeros(n)
    peaks = np.arange(30, n - 30, 45)
    emphasis[peaks] = 1.0
    with_nods = idle_motion(n, FPS, emphasis=emphasis, seed=3).head[:, 1]
    without = idle_motion(n, FPS, seed=3).head[:, 1]
    assert np.mean(with_nods[peaks] - without[peaks]) > np.deg2rad(1.5)


def test_bad_arguments() -> None:
    with pytest.raises(InputError):
        idle_motion(10, 0.0)
    with pytest.raises(InputError):
        idle_motion(-1, FPS)
    with pytest.raises(InputError):
        idle_motion(10, FPS, arousal=np.zeros(5))
    with pytest.raises(InputError):
        idle_motion(10, FPS, activity=np.full(10, np.nan))
    empty = idle_motion(0, FPS)
    assert empty.blink.shape == (0,) and empty.head.shape == (0, 3)
