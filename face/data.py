"""Training pairs for the face model: (audio features, motion, VAD) per frame, from our speech or from capture.

Two sources, one format:
- `teacher_example(speech, vad)`: synthesized speech with its exact phoneme timeline (avatar.tts) -> the
  teacher's FaceMotion as the target and the audio's features as the input;
- `livelink_example(csv, wav)`: a Live Link Face take (CSV) with its recorded audio (any format
  avatar.audio.load_audio reads), resampled to the model's fps and aligned from the start.
`windows` cuts examples into the fixed-length windows the denoiser trains on, and `motion_stats` gives the
normalisation (mean, std per channel) stored in the model's config.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Iterable, Iterator, Sequence

import numpy as np

from avatar.audio import load_audio
from avatar.errors import InputError
from avatar.types import FACE_CHANNELS, VAD, EmotionTrack, FaceMotion, Speech
from avatar.face.expression import vad_frames
from avatar.face.features import FeatureConfig, compute_features, frames_for
from avatar.face.livelink import read_livelink_csv
from avatar.face.teacher import teacher_motion

#: A take and its audio may differ in length by this much (s) before we call them a mismatched pair.
MAX_LENGTH_MISMATCH = 1.0


@dataclass
class Example:
    """One clip: features [T, F], motion [T, len(FACE_CHANNELS)], VAD [T, 3], all float32 at `fps`."""

    features: np.ndarray
    motion: np.ndarray
    vad: np.ndarray
    fps: float

    def __post_init__(self) -> None:
        t = self.motion.shape[0]
        if self.features.shape[0] != t or self.vad.shape != (t, 3) or self.motion.shape[1] != len(FACE_CHANNELS):
            raise InputError(f"example parts disagree: features {self.features.shape}, motion {self.motion.shape},"
                             f" vad {self.vad.shape}")

    @property
    def num_frames(self) -> int:
        """Frames in the clip."""
        return int(self.motion.shape[0])


def resample_motion(face: FaceMotion, fps: float, num_frames: int | None = None) -> FaceMotion:
    """Linear resampling of every channel to a new frame rate (and optionally an exact frame count)."""
    fps = float(fps)
    if not math.isfinite(fps) or fps <= 0 or fps > 1000:
        raise InputError(f"fps must be in (0, 1000], got {fps!r}")
    n = frames_for(face.duration, fps) if num_frames is None else int(num_frames)
    src_t = np.arange(face.num_frames) / face.fps
    dst_t = np.arange(n) / fps
    frames = np.stack([np.interp(dst_t, src_t, face.frames[:, c]) for c in range(face.frames.shape[1])], axis=1)
    return FaceMotion(fps=fps, frames=frames.astype(np.float32), names=face.names)


def teacher_example(speech: Speech, vad: VAD | EmotionTrack | np.ndarray | Sequence[float] | None = None,
                    fps: float = 30.0, seed: int = 0, config: FeatureConfig | None = None) -> Example:
    """A training pair from synthesized speech with its timeline: audio features -> teacher motion."""
    if speech.timeline is None:
        raise InputError("teacher_example needs speech with a phoneme timeline")
    n = frames_for(speech.duration, fps)
    feats = compute_features(speech.audio, speech.sample_rate, fps=fps, num_frames=n, config=config or FeatureConfig())
    rows = vad_frames(VAD.neutral() if vad is None else vad, n, fps)
    face = teacher_motion(speech.timeline, rows, duration=n / fps, fps=fps, seed=seed, features=feats)
    return Example(features=feats.by_frame(), motion=face.frames, vad=rows.astype(np.float32), fps=fps)


def livelink_example(csv_path: str | os.PathLike[str], audio_path: str | os.PathLike[str],
                     vad: VAD | EmotionTrack | np.ndarray | Sequence[float] | None = None, fps: float = 30.0,
                     take_fps: float | None = None, config: FeatureConfig | None = None) -> Example:
    """A training pair from capture: a Live Link Face CSV and the take's audio, aligned at their starts."""
    take = read_livelink_csv(csv_path, fps=take_fps)
    audio, sr = load_audio(audio_path)
    audio_s = audio.size / sr
    if abs(take.duration - audio_s) > MAX_LENGTH_MISMATCH:
        raise InputError(f"{os.fspath(csv_path)} lasts {take.duration:.2f} s but its audio {audio_s:.2f} s: "
                         "not the same take?")
    n = frames_for(audio_s, fps)
    motion = resample_motion(take, fps, num_frames=n)  # the last pose holds if the take ends early
    feats = compute_features(audio, sr, fps=fps, num_frames=n, config=config or FeatureConfig())
    rows = vad_frames(VAD.neutral() if vad is None else vad, n, fps)
    return Example(features=feats.by_frame(), motion=motion.frames, vad=rows.astype(np.float32), fps=fps)


def windows(example: Example, length: int, hop: int | None = None) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Fixed-length training windows (features, motion, mean VAD); a clip shorter than `length` is padded by
    repeating its last frame (silence and a held pose), so short sentences still train."""
    length = int(length)
    hop = length // 2 if hop is None else int(hop)
    if length <= 0 or hop <= 0:
        raise InputError(f"window length and hop must be positive, got {length}, {hop}")
    n = example.num_frames
    if n < length:
        pad = length - n
        def rep(a: np.ndarray) -> np.ndarray:
            return np.concatenate([a, np.repeat(a[-1:], pad, axis=0)])

        yield rep(example.features), rep(example.motion), example.vad.mean(axis=0)
        return
    starts = list(range(0, n - length + 1, hop))
    if starts[-1] + length < n:
        starts.append(n - length)
    for s in starts:
        sl = slice(s, s + length)
        yield example.features[sl], example.motion[sl], example.vad[sl].mean(axis=0)


def motion_stats(examples: Iterable[Example], min_std: float = 1e-3) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std over all frames (std floored: channels that never move stay finite)."""
    total = 0
    s1 = np.zeros(len(FACE_CHANNELS))
    s2 = np.zeros(len(FACE_CHANNELS))
    for ex in examples:
        m = ex.motion.astype(np.float64)
        total += m.shape[0]
        s1 += m.sum(axis=0)
        s2 += (m * m).sum(axis=0)
    if total == 0:
        raise InputError("no frames to compute motion statistics from")
    mean = s1 / total
    std = np.sqrt(np.maximum(s2 / total - mean * mean, 0.0))
    return mean.astype(np.float32), np.maximum(std, min_std).astype(np.float32)
