"""bench/gesture_clip_sheet.py: stressed-vowel times and the frozen-pose measure it prints."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import SimpleNamespace

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("gesture_clip_sheet", ROOT / "bench" / "gesture_clip_sheet.py")
sheet = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sheet)


def test_stressed_times_are_the_stress_channel_peaks() -> None:
    stress = np.zeros(60, np.float32)
    stress[[9, 10, 11]] = [0.6, 1.0, 0.6]  # one impulse, peak at frame 10
    stress[40] = 0.8
    stress[50] = 0.3  # too weak to count
    feat = SimpleNamespace(stress=stress, fps=30.0)
    np.testing.assert_allclose(sheet.stressed_times(feat), [10 / 30, 40 / 30])
    assert sheet.stressed_times(SimpleNamespace(stress=None, fps=30.0)).size == 0


def test_longest_still_counts_only_speech_frames_below_the_threshold() -> None:
    speed = np.array([0.0, 0.0, 0.0, 0.5, 0.01, 0.01, 0.01, 0.01, 0.2, 0.0])
    speech = np.array([0, 0, 0, 1, 1, 1, 1, 1, 1, 1], bool)  # the first three still frames are a pause
    assert sheet.longest_still(speed, speech, 10.0) == 0.4
