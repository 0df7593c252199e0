"""One seed rule everywhere (avatar.types.check_seed): whole numbers in [0, 2**31 - 1], refused alike by every
command, the stream, the app and the generators."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from avatar.errors import InputError
from avatar.types import SEED_MAX, check_seed

REPO = Path(__file__).resolve().parents[1]


def test_check_seed_range_and_types() -> None:
    assert SEED_MAX == 2**31 - 1
    assert check_seed(0) == 0 and check_seed(SEED_MAX) == SEED_MAX and check_seed(np.int64(7)) == 7
    assert check_seed(3.0) == 3  # a JSON number or a UI field
    for bad in (-1, SEED_MAX + 1, 2**63, 1.5, float("nan"), True, "3", None):
        with pytest.raises(InputError, match=r"seed must be a whole number in \[0, 2147483647\]"):
            check_seed(bad)


def test_every_entry_point_applies_the_same_rule() -> None:
    from avatar.app_ui import check_seed as app_seed
    from avatar.face.generate import generate_face
    from avatar.gesture.generate import generate_gesture
    from avatar.gesture.teacher import teacher_motion
    from avatar.live.stream import StreamConfig
    from avatar.pipeline import perform

    audio = np.zeros(16000, dtype=np.float32)
    calls = [lambda s: app_seed(s), lambda s: StreamConfig(seed=s), lambda s: perform("Hi.", seed=s),
             lambda s: generate_face(audio, 16000, seed=s), lambda s: generate_gesture(audio, 16000, seed=s),
             lambda s: teacher_motion(audio, sr=16000, seed=s)]
    for call in calls:
        for bad in (-1, SEED_MAX + 1):
            with pytest.raises(InputError, match=r"seed must be a whole number in \[0, 2147483647\]"):
                call(bad)
    assert app_seed(None) == 0 and app_seed("12") == 12 and StreamConfig(seed=SEED_MAX).seed == SEED_MAX


@pytest.mark.parametrize("cmd", [["face", "--audio", "x.wav", "-o", "y.json"], ["gesture", "--audio", "x.wav", "-o",
                                 "y.bvh"], ["tts", "Hi.", "-o", "y.wav"], ["say", "Hi.", "-o", "y.mp4"],
                                 ["batch", "x.yaml", "-o", "out"], ["stream", "--no-play"]])
def test_cli_refuses_a_negative_seed_with_one_error_line(cmd: list[str], tmp_path: Path) -> None:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "avatar.cli", *cmd, "--seed", "-1"], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path, env={**env, "PYTHONPATH": str(REPO)}, input="")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == "error: seed must be a whole number in [0, 2147483647], got -1", proc.stderr
    assert not list(tmp_path.iterdir())
