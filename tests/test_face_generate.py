"""The shipped face model's final output: the expression layer after sampling keeps blinks and the emotion."""

from __future__ import annotations

import numpy as np

from avatar.face.generate import generate_face
from avatar.types import VAD


def test_shipped_face_blinks_and_keeps_the_emotion_after_sampling() -> None:
    """A 4 s clip blinks fully with both eyes, and a sad line has the sad brows (inner up, over the brow lowerer)
    and lip corners down on its middle frames."""
    sr = 16000
    t = np.arange(sr * 4) / sr
    audio = (0.3 * np.sin(2 * np.pi * 180 * t) * (np.sin(2 * np.pi * 2 * t) > 0)).astype(np.float32)
    face = generate_face(audio, sr, VAD(-0.63, -0.27, -0.33), seed=1)
    both = np.minimum(face.channel("eyeBlinkLeft"), face.channel("eyeBlinkRight"))
    assert both.max() >= 0.8
    mid = slice(face.num_frames // 3, 2 * face.num_frames // 3)
    assert face.channel("browInnerUp")[mid].mean() > face.channel("browDownLeft")[mid].mean() + 0.2
    assert face.channel("mouthFrownLeft")[mid].mean() > 0.4
