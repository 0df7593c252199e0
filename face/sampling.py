"""Sampling the face denoiser without torch: its config, its inference wrapper and the windowed, guided loop.

`face.model.FaceDenoiser` (torch) is what training builds, saves and exports to model.onnx; inference runs that
graph in onnxruntime (`FaceDenoiserNet`, avatar.runtime) and samples with our DDIM (avatar.diffusion). Long audio is
denoised in overlapping windows fused at every step (MultiDiffusion, Bar-Tal et al. 2023): each window
predicts its frames, the predictions are averaged with Hann weights and the scheduler steps the whole
sequence at once, so there are no seams. Emotion uses classifier-free guidance (Ho & Salimans 2022).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from avatar.diffusion import make_sampler
from avatar.errors import InputError, ModelError
from avatar.runtime import OnnxNet
from avatar.types import ARKIT_BLENDSHAPES, FACE_CHANNELS, VAD, EmotionTrack, FaceMotion
from avatar.weights import ModelConfig


class FaceDiffusionConfig(ModelConfig):
    """What `from_pretrained` needs to rebuild the denoiser and sample from it (config.json)."""

    class_name: ClassVar[str] = "FaceDenoiser"
    format_version: ClassVar[int] = 1

    motion_dim: int = len(FACE_CHANNELS)
    audio_dim: int = 2 * 83          # face.features: per_frame * (n_mels + 3)
    hidden: int = 128
    blocks: int = 4
    kernel: int = 5
    fps: float = 30.0
    window: int = 120                # frames per denoising window (4 s at 30 fps)
    overlap: int = 30                # frames shared by neighbouring windows
    num_train_timesteps: int = 1000
    beta_schedule: str = "squaredcos_cap_v2"
    prediction_type: str = "sample"  # x0: with "epsilon" the model ignored the audio (docs/face.md)
    cfg_dropout: float = 0.1
    # Motion normalisation (set from the training data): x_norm = (x - mean) / std.
    motion_mean: list[float] = Field(default_factory=lambda: [0.0] * len(FACE_CHANNELS))
    motion_std: list[float] = Field(default_factory=lambda: [1.0] * len(FACE_CHANNELS))
    channels: list[str] = Field(default_factory=lambda: list(FACE_CHANNELS))


def dilation(block: int) -> int:
    """Dilation of residual block `block`: 1, 2, 4, 8, then again (so one window sees about 4 s)."""
    return 2 ** (block % 4)


class FaceDenoiserNet(OnnxNet):
    """The face denoiser at inference: `net(x, t, audio, vad, keep_vad)` -> the predicted window, run from
    model.onnx (`from_pretrained`) or from the torch `face.model.FaceDenoiser` (`from_module`).

    x [B, T, motion_dim] float32, t [B] int64, audio [B, T, audio_dim], vad [B, 3], keep_vad [B] bool
    (False: the learned "no emotion" condition, for classifier-free guidance).
    """

    config_class = FaceDiffusionConfig
    model_name = "face"
    onnx_inputs = ("x", "t", "audio", "vad", "keep_vad")

    def check(self) -> None:
        """ModelError unless the model's channels are ours (avatar.types.FACE_CHANNELS)."""
        c = self.config
        if tuple(c.channels) != FACE_CHANNELS or c.motion_dim != len(FACE_CHANNELS):
            raise ModelError("this model's channels differ from avatar.types.FACE_CHANNELS")

    def feature_dims(self) -> dict[str, int]:
        """The feature axes the config sizes."""
        c = self.config
        return {"x": c.motion_dim, "audio": c.audio_dim, "vad": 3}


def as_net(model: Any) -> FaceDenoiserNet:
    """The denoiser to sample with: a FaceDenoiserNet as it is, a torch FaceDenoiser wrapped."""
    return FaceDenoiserNet.of(model)


def _window_starts(total: int, window: int, overlap: int) -> list[int]:
    if total <= window:
        return [0]
    hop = max(1, window - overlap)
    starts = list(range(0, total - window + 1, hop))
    if starts[-1] + window < total:
        starts.append(total - window)
    return starts


def _denoise(net: FaceDenoiserNet, sched: Any, timesteps: Any, x: np.ndarray, audio: np.ndarray, starts: list[int],
             vads: list[np.ndarray], w: np.ndarray, weight_sum: np.ndarray, win: int, conditional: bool,
             guidance: float) -> np.ndarray:
    """The sampling loop: every window's (guided) prediction, Hann-averaged, then one scheduler step."""
    for t in timesteps:
        pred_sum = np.zeros_like(x)
        for s, v in zip(starts, vads):
            xs, a = x[:, s:s + win], audio[:, s:s + win]
            if not conditional:
                pred = net(xs, np.array([t]), a, v[None], np.array([False]))
            else:  # conditional and unconditional passes in one batch
                both = net(np.repeat(xs, 2, axis=0), np.array([t, t]), np.repeat(a, 2, axis=0),
                           np.repeat(v[None], 2, axis=0), np.array([True, False]))
                pred = both[1:] + np.float32(guidance) * (both[:1] - both[1:])
            pred_sum[:, s:s + win] += pred * w[None, :, None]
        x = sched.step(pred_sum / weight_sum[None, :, None], int(t), x)
    return x


def sample_motion(model: Any, audio_features: np.ndarray, vad: VAD | EmotionTrack | np.ndarray | None = None,
                  steps: int = 10, guidance: float = 2.0, seed: int = 0, scheduler: str = "ddim",
                  progress: bool = False) -> FaceMotion:
    """Generate a FaceMotion for per-frame audio features [T, audio_dim] (AudioFeatures.by_frame()).

    model: a FaceDenoiserNet or a torch FaceDenoiser. vad: a VAD, an EmotionTrack or per-frame [T, 3] (each
    window is conditioned on its mean VAD); None is the unconditional face. guidance scales the emotion (1 =
    plain conditional, 0 = unconditional). scheduler: 'ddim' (NumPy) or 'dpm' (diffusers, imports torch).
    Same inputs and seed give the same output.
    """
    from avatar.face.expression import vad_frames

    net = as_net(model)
    c = net.config
    feats = np.asarray(audio_features, dtype=np.float32)
    if feats.ndim != 2 or feats.shape[1] != c.audio_dim:
        raise InputError(f"audio features must be [T, {c.audio_dim}], got shape {feats.shape}")
    if not np.isfinite(feats).all():
        raise InputError("audio features contain NaN or infinite values")
    n = feats.shape[0]
    if n == 0:
        raise InputError("no frames to generate")
    if not (1 <= int(steps) <= 1000):
        raise InputError(f"steps must be in [1, 1000], got {steps}")
    if not math.isfinite(float(guidance)) or not 0.0 <= float(guidance) <= 20.0:
        raise InputError(f"guidance must be in [0, 20], got {guidance}")
    rows = None if vad is None else vad_frames(vad, n, c.fps)
    sched = make_sampler(scheduler, int(steps), c.num_train_timesteps, c.beta_schedule, c.prediction_type)
    x = np.random.default_rng(int(seed)).standard_normal((1, n, c.motion_dim), dtype=np.float32)
    audio = feats[None]
    win = min(c.window, n)
    starts = _window_starts(n, win, min(c.overlap, win - 1))
    # Hann weights (never exactly 0) so each frame is a smooth blend of the windows that cover it.
    w = np.hanning(win + 2)[1:-1].astype(np.float32)
    weight_sum = np.zeros(n, dtype=np.float32)
    for s in starts:
        weight_sum[s:s + win] += w
    vads = [np.zeros(3, np.float32) if rows is None else rows[s:s + win].mean(axis=0).astype(np.float32)
            for s in starts]
    timesteps = sched.timesteps
    if progress:
        from tqdm import tqdm

        timesteps = tqdm(timesteps, desc="face diffusion", unit="step")
    x = _denoise(net, sched, timesteps, x, audio, starts, vads, w, weight_sum, win, rows is not None, guidance)
    mean = np.asarray(c.motion_mean, dtype=np.float32)
    std = np.asarray(c.motion_std, dtype=np.float32)
    motion = x[0] * std + mean
    nb = len(ARKIT_BLENDSHAPES)
    motion[:, :nb] = np.clip(motion[:, :nb], 0.0, 1.0)
    return FaceMotion(fps=c.fps, frames=motion)
