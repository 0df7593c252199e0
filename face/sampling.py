"""Sampling the face denoiser without torch: its config, its NumPy twin and the windowed, guided sampling loop.

`face.model.FaceDenoiser` (torch) is what training builds and saves; inference loads the same folder into
`FaceDenoiserNP` (avatar.npnn explains why) and samples with our NumPy DDIM (avatar.diffusion). Long audio is
denoised in overlapping windows fused at every step (MultiDiffusion, Bar-Tal et al. 2023): each window
predicts its frames, the predictions are averaged with Hann weights and the scheduler steps the whole
sequence at once, so there are no seams. Emotion uses classifier-free guidance (Ho & Salimans 2022).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from avatar import npnn
from avatar.diffusion import make_sampler
from avatar.errors import InputError, ModelError
from avatar.types import ARKIT_BLENDSHAPES, FACE_CHANNELS, VAD, EmotionTrack, FaceMotion


@dataclass
class FaceDiffusionConfig:
    """What `from_pretrained` needs to rebuild the denoiser and sample from it."""

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
    motion_mean: list[float] = field(default_factory=lambda: [0.0] * len(FACE_CHANNELS))
    motion_std: list[float] = field(default_factory=lambda: [1.0] * len(FACE_CHANNELS))
    channels: list[str] = field(default_factory=lambda: list(FACE_CHANNELS))


def dilation(block: int) -> int:
    """Dilation of residual block `block`: 1, 2, 4, 8, then again (so one window sees about 4 s)."""
    return 2 ** (block % 4)


class FaceDenoiserNP(npnn.NumpyTwin):
    """NumPy twin of `face.model.FaceDenoiser`: the same weights, the same numbers (tests check both)."""

    config_class = FaceDiffusionConfig
    model_name = "face"

    def shapes(self) -> dict[str, tuple[int, ...]]:
        """Every weight's name and shape for this config."""
        c = self.config
        h, d, a, k = c.hidden, c.motion_dim, c.audio_dim, c.kernel
        s: dict[str, tuple[int, ...]] = {"null_vad": (h,), "out.weight": (d, h), "out.bias": (d,),
                                         "out_norm.weight": (h,), "out_norm.bias": (h,)}
        for name, d_in in (("motion_in", d), ("audio_in.0", a), ("audio_in.2", h), ("time_mlp.0", h),
                           ("time_mlp.2", h), ("vad_mlp.0", 3), ("vad_mlp.2", h)):
            s.update({f"{name}.weight": (h, d_in), f"{name}.bias": (h,)})
        for i in range(c.blocks):
            b = f"blocks.{i}"
            for norm in ("norm1", "norm2"):
                s.update({f"{b}.{norm}.weight": (h,), f"{b}.{norm}.bias": (h,)})
            for conv in ("conv1", "conv2"):
                s.update({f"{b}.{conv}.weight": (h, h, k), f"{b}.{conv}.bias": (h,)})
            s.update({f"{b}.film.weight": (2 * h, h), f"{b}.film.bias": (2 * h,)})
        return s

    def __call__(self, x: np.ndarray, t: np.ndarray, audio: np.ndarray, vad: np.ndarray,
                 keep_vad: np.ndarray | None = None) -> np.ndarray:
        """x [B, T, motion_dim], t [B], audio [B, T, audio_dim], vad [B, 3], keep_vad [B] bool -> [B, T, motion_dim]."""
        p, c = self.params, self.config
        lin = npnn.linear
        e_vad = lin(npnn.silu(lin(np.asarray(vad, np.float32), p, "vad_mlp.0")), p, "vad_mlp.2")
        if keep_vad is not None:
            e_vad = np.where(np.asarray(keep_vad, bool)[:, None], e_vad, p["null_vad"][None])
        temb = npnn.sinusoid(np.asarray(t), c.hidden)
        cond = lin(npnn.silu(lin(temb, p, "time_mlp.0")), p, "time_mlp.2") + e_vad
        audio_h = lin(npnn.silu(lin(np.asarray(audio, np.float32), p, "audio_in.0")), p, "audio_in.2")
        h = (lin(np.asarray(x, np.float32), p, "motion_in") + audio_h).transpose(0, 2, 1)  # [B, H, T]
        for i in range(c.blocks):
            b, dil = f"blocks.{i}", dilation(i)
            scale, shift = np.split(lin(cond, p, f"{b}.film")[:, :, None], 2, axis=1)
            y = npnn.conv1d(npnn.silu(npnn.group_norm(h, p, f"{b}.norm1", 8)), p, f"{b}.conv1", dil)
            y = npnn.group_norm(y, p, f"{b}.norm2", 8) * (1 + scale) + shift
            h = h + npnn.conv1d(npnn.silu(y), p, f"{b}.conv2", dil)
        h = npnn.silu(npnn.group_norm(h, p, "out_norm", 8)).transpose(0, 2, 1)
        return lin(h, p, "out")


def as_numpy_model(model: Any) -> FaceDenoiserNP:
    """The NumPy denoiser for a FaceDenoiserNP or its torch module."""
    return FaceDenoiserNP.of(model)


def _window_starts(total: int, window: int, overlap: int) -> list[int]:
    if total <= window:
        return [0]
    hop = max(1, window - overlap)
    starts = list(range(0, total - window + 1, hop))
    if starts[-1] + window < total:
        starts.append(total - window)
    return starts


def _denoise(net: FaceDenoiserNP, sched: Any, timesteps: Any, x: np.ndarray, audio: np.ndarray, starts: list[int],
             vads: list[np.ndarray], w: np.ndarray, weight_sum: np.ndarray, win: int, conditional: bool,
             guidance: float) -> np.ndarray:
    """The sampling loop: every window's (guided) prediction, Hann-averaged, then one scheduler step."""
    for t in timesteps:
        pred_sum = np.zeros_like(x)
        for s, v in zip(starts, vads):
            xs, a = x[:, s:s + win], audio[:, s:s + win]
            if not conditional:
                pred = net(xs, np.array([t]), a, v[None], keep_vad=np.array([False]))
            else:  # conditional and unconditional passes in one batch
                both = net(np.repeat(xs, 2, axis=0), np.array([t, t]), np.repeat(a, 2, axis=0),
                           np.repeat(v[None], 2, axis=0), keep_vad=np.array([True, False]))
                pred = both[1:] + np.float32(guidance) * (both[:1] - both[1:])
            pred_sum[:, s:s + win] += pred * w[None, :, None]
        x = sched.step(pred_sum / weight_sum[None, :, None], int(t), x)
    return x


def sample_motion(model: Any, audio_features: np.ndarray, vad: VAD | EmotionTrack | np.ndarray | None = None,
                  steps: int = 10, guidance: float = 2.0, seed: int = 0, scheduler: str = "ddim",
                  progress: bool = False) -> FaceMotion:
    """Generate a FaceMotion for per-frame audio features [T, audio_dim] (AudioFeatures.by_frame()).

    model: a FaceDenoiserNP or a torch FaceDenoiser. vad: a VAD, an EmotionTrack or per-frame [T, 3] (each
    window is conditioned on its mean VAD); None is the unconditional face. guidance scales the emotion (1 =
    plain conditional, 0 = unconditional). scheduler: 'ddim' (NumPy) or 'dpm' (diffusers, imports torch).
    Same inputs and seed give the same output.
    """
    from avatar.face.expression import vad_frames

    net = as_numpy_model(model)
    c = net.config
    if tuple(c.channels) != FACE_CHANNELS or c.motion_dim != len(FACE_CHANNELS):
        raise ModelError("this model's channels differ from avatar.types.FACE_CHANNELS")
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
    with npnn.blas_limit(1):
        x = _denoise(net, sched, timesteps, x, audio, starts, vads, w, weight_sum, win, rows is not None, guidance)
    mean = np.asarray(c.motion_mean, dtype=np.float32)
    std = np.asarray(c.motion_std, dtype=np.float32)
    motion = x[0] * std + mean
    nb = len(ARKIT_BLENDSHAPES)
    motion[:, :nb] = np.clip(motion[:, :nb], 0.0, 1.0)
    return FaceMotion(fps=c.fps, frames=motion)
