"""bench/gesture_clip_sheet.py: stressed-vowel times, the frozen-pose measure it prints, atomic outputs."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from avatar.types import Phoneme, Timeline, Word

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("gesture_clip_sheet", ROOT / "bench" / "gesture_clip_sheet.py")
sheet = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sheet)


def _timeline(phonemes: list[tuple[str, float]], words: list[tuple[str, float]]) -> Timeline:
    return Timeline(sample_rate=22050, duration=3.0,
                    phonemes=[Phoneme(phoneme=p, start=t, end=t + 0.1) for p, t in phonemes],
                    words=[Word(word=w, start=t, end=t + 0.3) for w, t in words])


def test_stressed_times_are_the_primary_stress_events_of_the_timeline() -> None:
    tl = _timeline([("h", 0.10), ("ˈɛ", 0.20), ("l", 0.3), ("ˌoʊ", 0.40), ("ˈwɜː", 1.30), ("ˈa", 2.90)],
                   [("hello", 0.1), ("world", 1.2)])
    np.testing.assert_allclose(sheet.stressed_times(tl, 2.5), [0.20, 1.30])  # secondary and past-the-end left out
    assert sheet.stressed_times(None, 2.5).size == 0


def test_stressed_times_without_stress_marks_are_content_word_starts() -> None:
    tl = _timeline([("h", 0.1), ("a", 0.2)], [("a", 0.1), ("house", 0.5), ("on", 1.0), ("fire", 1.2)])
    np.testing.assert_allclose(sheet.stressed_times(tl, 3.0), [0.5, 1.2])


def test_plot_is_written_atomically(tmp_path: Path, monkeypatch) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from avatar.gesture.teacher import teacher_motion
    from avatar.types import VAD

    feat = SimpleNamespace(num_frames=30, fps=30.0, speech=np.ones(30, bool))
    motion = teacher_motion(np.zeros(16000, np.float32), VAD(0.0, 0.5, 0.0), sr=16000, seed=0)
    feat.num_frames = motion.num_frames
    feat.speech = np.ones(motion.num_frames, bool)
    out = tmp_path / "speed.png"
    sheet._plot(str(out), [("teacher", motion)], np.array([0.5]), feat, "x")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    good = out.read_bytes()

    def half_then_fail(self, fname, **kwargs) -> None:
        Path(fname).write_bytes(b"\x89PNG half")
        raise RuntimeError("renderer died")

    monkeypatch.setattr(Figure, "savefig", half_then_fail)
    with pytest.raises(RuntimeError):
        sheet._plot(str(out), [("teacher", motion)], np.array([0.5]), feat, "x")
    assert out.read_bytes() == good  # the old plot is intact, no partial file beside it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["speed.png"]


def test_longest_still_counts_only_speech_frames_below_the_threshold() -> None:
    speed = np.array([0.0, 0.0, 0.0, 0.5, 0.01, 0.01, 0.01, 0.01, 0.2, 0.0])
    speech = np.array([0, 0, 0, 1, 1, 1, 1, 1, 1, 1], bool)  # the first three still frames are a pause
    assert sheet.longest_still(speed, speech, 10.0) == 0.4
