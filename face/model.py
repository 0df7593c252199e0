"""The face motion denoiser: a small diffusion model over motion windows, conditioned on audio and VAD.

Follows DREAM-Talk's EmoDiff (Zhang et al. 2023) at a size a CPU can run: a 1-D convolutional denoiser
(residual blocks with dilations 1, 2, 4, 8, ... so one window sees about 4 s) over the FaceMotion channels,
conditioned per frame on the audio features (face.features, two feature frames per animation frame) and per
window on VAD through FiLM, with the diffusion timestep. VAD is dropped during training with probability
`cfg_dropout` (a learned null embedding replaces it), so sampling can use classifier-free guidance on emotion
(Ho & Salimans 2022): eps = eps_uncond + g * (eps_cond - eps_uncond), g > 1 strengthens the emotion.

Sampling uses a diffusers scheduler (DDIM or DPM-Solver++, few steps). Long audio is denoised in overlapping
windows that are fused at every step (MultiDiffusion, Bar-Tal et al. 2023): each window predicts the noise
for its frames, the predictions are averaged with Hann weights, and the scheduler steps the whole sequence
at once, so there are no seams to stitch. Saved like a diffusers component: config.json, model.safetensors
and the model card README.md in one folder (`save_pretrained` / `from_pretrained`).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from avatar.errors import InputError, ModelError
from avatar.pretrained import PretrainedMixin
from avatar.types import ARKIT_BLENDSHAPES, FACE_CHANNELS, VAD, EmotionTrack, FaceMotion

log = logging.getLogger(__name__)


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


def _timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of diffusion timesteps [B] -> [B, dim] (as in DDPM)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.sin(args), torch.cos(args)], dim=1)


class _Block(nn.Module):
    """Residual 1-D conv block with FiLM from the condition vector."""

    def __init__(self, hidden: int, kernel: int, dilation: int) -> None:
        super().__init__()
        pad = dilation * (kernel - 1) // 2
        self.norm1 = nn.GroupNorm(8, hidden)
        self.conv1 = nn.Conv1d(hidden, hidden, kernel, padding=pad, dilation=dilation)
        self.norm2 = nn.GroupNorm(8, hidden)
        self.conv2 = nn.Conv1d(hidden, hidden, kernel, padding=pad, dilation=dilation)
        self.film = nn.Linear(hidden, 2 * hidden)

    def forward(self, h: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        scale, shift = self.film(cond)[:, :, None].chunk(2, dim=1)
        x = self.conv1(torch.nn.functional.silu(self.norm1(h)))
        x = self.norm2(x) * (1 + scale) + shift
        x = self.conv2(torch.nn.functional.silu(x))
        return h + x


class FaceDenoiser(PretrainedMixin, nn.Module):
    """Predicts the noise (or sample) of a noisy motion window from audio features, VAD and the timestep."""

    config_class = FaceDiffusionConfig
    model_name = "face"

    def __init__(self, config: FaceDiffusionConfig | None = None) -> None:
        super().__init__()
        self.config = config or FaceDiffusionConfig()
        c = self.config
        if c.hidden % 8 or c.hidden < 16:
            raise ModelError(f"hidden must be a multiple of 8 and >= 16, got {c.hidden}")
        self.motion_in = nn.Linear(c.motion_dim, c.hidden)
        self.audio_in = nn.Sequential(nn.Linear(c.audio_dim, c.hidden), nn.SiLU(), nn.Linear(c.hidden, c.hidden))
        self.time_mlp = nn.Sequential(nn.Linear(c.hidden, c.hidden), nn.SiLU(), nn.Linear(c.hidden, c.hidden))
        self.vad_mlp = nn.Sequential(nn.Linear(3, c.hidden), nn.SiLU(), nn.Linear(c.hidden, c.hidden))
        self.null_vad = nn.Parameter(torch.zeros(c.hidden))  # the "no emotion given" condition for CFG
        self.blocks = nn.ModuleList(_Block(c.hidden, c.kernel, 2 ** (i % 4)) for i in range(c.blocks))
        self.out_norm = nn.GroupNorm(8, c.hidden)
        self.out = nn.Linear(c.hidden, c.motion_dim)
        nn.init.zeros_(self.out.weight)  # start as a no-op: stable early training
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor, audio: torch.Tensor, vad: torch.Tensor,
                keep_vad: torch.Tensor | None = None) -> torch.Tensor:
        """x [B, T, motion_dim], t [B], audio [B, T, audio_dim], vad [B, 3], keep_vad [B] bool -> [B, T, motion_dim]."""
        e_vad = self.vad_mlp(vad)
        if keep_vad is not None:
            e_vad = torch.where(keep_vad[:, None], e_vad, self.null_vad[None].expand_as(e_vad))
        cond = self.time_mlp(_timestep_embedding(t, self.config.hidden)) + e_vad
        h = (self.motion_in(x) + self.audio_in(audio)).transpose(1, 2)  # [B, H, T]
        for blk in self.blocks:
            h = blk(h, cond)
        h = torch.nn.functional.silu(self.out_norm(h)).transpose(1, 2)
        return self.out(h)

    def default_card(self) -> str:
        """The card for weights with no training record (see `default_card`)."""
        return default_card(self)



def default_card(model: FaceDenoiser) -> str:
    """A model card stating what the weights are; training overwrites it with data, metrics and command."""
    c = model.config
    return (
        "# Face motion denoiser (avatar.face.model)\n\n"
        f"1-D conv diffusion denoiser, {model.num_parameters():,} parameters, hidden {c.hidden}, {c.blocks} blocks,"
        f" window {c.window} frames at {c.fps:g} fps, prediction `{c.prediction_type}`, {c.beta_schedule} betas.\n\n"
        "Conditioning: audio features (avatar.face.features: 80 log-mel + energy + voicing + F0, two feature"
        " frames per animation frame) and VAD (classifier-free guidance; VAD dropout"
        f" {c.cfg_dropout:g}).\n\n"
        "**These weights are not trained** unless this card says otherwise below (data, metrics, training"
        " command).\n\nLicence: Apache-2.0 (code and weights).\n"
    )


def make_scheduler(config: FaceDiffusionConfig, kind: str = "ddim"):
    """A diffusers scheduler matching the model's training noise schedule: 'ddim' or 'dpm' (DPM-Solver++)."""
    from diffusers import DDIMScheduler, DPMSolverMultistepScheduler

    common = dict(num_train_timesteps=config.num_train_timesteps, beta_schedule=config.beta_schedule,
                  prediction_type=config.prediction_type)
    if kind == "ddim":
        return DDIMScheduler(**common, clip_sample=False, set_alpha_to_one=True)
    if kind == "dpm":
        return DPMSolverMultistepScheduler(**common, algorithm_type="dpmsolver++", solver_order=2)
    raise InputError(f"scheduler must be 'ddim' or 'dpm', got {kind!r}")


def diffusion_loss(model: FaceDenoiser, motion: torch.Tensor, audio: torch.Tensor, vad: torch.Tensor,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """Training loss for a batch of normalised motion windows [B, T, D]: MSE on the predicted target."""
    from diffusers import DDPMScheduler

    c = model.config
    sched = DDPMScheduler(num_train_timesteps=c.num_train_timesteps, beta_schedule=c.beta_schedule,
                          prediction_type=c.prediction_type)
    b = motion.shape[0]
    t = torch.randint(0, c.num_train_timesteps, (b,), generator=generator)
    noise = torch.randn(motion.shape, generator=generator)
    noisy = sched.add_noise(motion, noise, t)
    keep = torch.rand(b, generator=generator) >= c.cfg_dropout
    pred = model(noisy, t, audio, vad, keep_vad=keep)
    if c.prediction_type == "epsilon":
        target = noise
    elif c.prediction_type == "sample":
        target = motion
    else:
        target = sched.get_velocity(motion, noise, t)
    return torch.nn.functional.mse_loss(pred, target)


def _window_starts(total: int, window: int, overlap: int) -> list[int]:
    if total <= window:
        return [0]
    hop = max(1, window - overlap)
    starts = list(range(0, total - window + 1, hop))
    if starts[-1] + window < total:
        starts.append(total - window)
    return starts


@torch.no_grad()
def sample_motion(model: FaceDenoiser, audio_features: np.ndarray, vad: VAD | EmotionTrack | np.ndarray | None = None,
                  steps: int = 10, guidance: float = 2.0, seed: int = 0, scheduler: str = "ddim",
                  progress: bool = False) -> FaceMotion:
    """Generate a FaceMotion for per-frame audio features [T, audio_dim] (AudioFeatures.by_frame()).

    vad: a VAD, an EmotionTrack or per-frame [T, 3] (each window is conditioned on its mean VAD); None is the
    unconditional face. guidance scales the emotion (1 = plain conditional, 0 = unconditional). Same inputs
    and seed give the same output.
    """
    from avatar.face.expression import vad_frames

    c = model.config
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
    sched = make_scheduler(c, scheduler)
    sched.set_timesteps(int(steps))
    gen = torch.Generator().manual_seed(int(seed))
    x = torch.randn((1, n, c.motion_dim), generator=gen) * sched.init_noise_sigma
    audio = torch.from_numpy(feats)[None]
    win = min(c.window, n)
    starts = _window_starts(n, win, min(c.overlap, win - 1))
    # Hann weights (never exactly 0) so each frame is a smooth blend of the windows that cover it.
    w = torch.from_numpy(np.hanning(win + 2)[1:-1].astype(np.float32))
    weight_sum = torch.zeros(n)
    for s in starts:
        weight_sum[s:s + win] += w
    vads = [torch.zeros(3) if rows is None else torch.from_numpy(rows[s:s + win].mean(axis=0).astype(np.float32))
            for s in starts]
    timesteps = sched.timesteps
    if progress:
        from tqdm import tqdm

        timesteps = tqdm(timesteps, desc="face diffusion", unit="step")
    for t in timesteps:
        eps = torch.zeros_like(x)
        xin = sched.scale_model_input(x, t)
        for s, v in zip(starts, vads):
            xs, a = xin[:, s:s + win], audio[:, s:s + win]
            tt = torch.full((1,), int(t), dtype=torch.long)
            if rows is None:
                pred = model(xs, tt, a, v[None], keep_vad=torch.tensor([False]))
            else:
                both = model(xs.repeat(2, 1, 1), tt.repeat(2), a.repeat(2, 1, 1), v[None].repeat(2, 1),
                             keep_vad=torch.tensor([True, False]))
                pred = both[1:] + float(guidance) * (both[:1] - both[1:])
            eps[:, s:s + win] += pred * w[None, :, None]
        eps = eps / weight_sum[None, :, None]
        x = sched.step(eps, t, x).prev_sample
    mean = torch.tensor(c.motion_mean, dtype=torch.float32)
    std = torch.tensor(c.motion_std, dtype=torch.float32)
    motion = (x[0] * std + mean).numpy()
    nb = len(ARKIT_BLENDSHAPES)
    motion[:, :nb] = np.clip(motion[:, :nb], 0.0, 1.0)
    return FaceMotion(fps=c.fps, frames=motion)
