"""The face motion denoiser: a small diffusion model over motion windows, conditioned on audio and VAD.

Follows DREAM-Talk's EmoDiff (Zhang et al. 2023) at a size a CPU can run: a 1-D convolutional denoiser
(residual blocks with dilations 1, 2, 4, 8, ... so one window sees about 4 s) over the FaceMotion channels,
conditioned per frame on the audio features (face.features, two feature frames per animation frame) and per
window on VAD through FiLM, with the diffusion timestep. VAD is dropped during training with probability
`cfg_dropout` (a learned null embedding replaces it), so sampling can use classifier-free guidance on emotion
(Ho & Salimans 2022): eps = eps_uncond + g * (eps_cond - eps_uncond), g > 1 strengthens the emotion.

This module is the torch model that training builds and exports to model.onnx; sampling (face.sampling) runs
that graph in onnxruntime with a DDIM matching diffusers' (few steps), windowed MultiDiffusion-style for long
audio. Saved like a diffusers
component: config.json, model.safetensors and the model card README.md in one folder (`save_pretrained` / `from_pretrained`).
"""

from __future__ import annotations

import logging
import math

import torch
from torch import nn

from avatar.errors import ModelError
from avatar.pretrained import PretrainedMixin

# Inference lives in face.sampling (onnxruntime, no torch); re-exported for training code.
from .sampling import FaceDiffusionConfig, _window_starts, dilation, sample_motion  # noqa: F401 - re-exported

log = logging.getLogger(__name__)


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
        self.blocks = nn.ModuleList(_Block(c.hidden, c.kernel, dilation(i)) for i in range(c.blocks))
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

    #: The exported graph's inputs (face.sampling.FaceDenoiserNet feeds them in this order).
    onnx_inputs = ("x", "t", "audio", "vad", "keep_vad")
    onnx_outputs = ("prediction",)
    onnx_dynamic = {"x": {0: "batch", 1: "frames"}, "t": {0: "batch"}, "audio": {0: "batch", 1: "frames"},
                    "vad": {0: "batch"}, "keep_vad": {0: "batch"}}

    def onnx_example(self, frames: int = 32) -> tuple[torch.Tensor, ...]:
        """Example inputs for export: a conditional and an unconditional row of `frames` frames."""
        c = self.config
        g = torch.Generator().manual_seed(frames)
        return (torch.randn(2, frames, c.motion_dim, generator=g), torch.tensor([999, 3]),
                torch.randn(2, frames, c.audio_dim, generator=g), torch.randn(2, 3, generator=g),
                torch.tensor([True, False]))

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


def diffusion_loss(model: FaceDenoiser, motion: torch.Tensor, audio: torch.Tensor, vad: torch.Tensor,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """Training loss for a batch of normalised motion windows [B, T, D]: MSE on the predicted target."""
    from diffusers import DDPMScheduler

    c = getattr(model, "module", model).config  # a model wrapped for several devices keeps it on .module
    sched = DDPMScheduler(num_train_timesteps=c.num_train_timesteps, beta_schedule=c.beta_schedule,
                          prediction_type=c.prediction_type)
    b, dev = motion.shape[0], motion.device
    # Drawn from the (CPU) generator, then moved: the same numbers on every device.
    t = torch.randint(0, c.num_train_timesteps, (b,), generator=generator).to(dev)
    noise = torch.randn(motion.shape, generator=generator).to(dev)
    noisy = sched.add_noise(motion, noise, t)
    keep = (torch.rand(b, generator=generator) >= c.cfg_dropout).to(dev)
    pred = model(noisy, t, audio, vad, keep_vad=keep)
    if c.prediction_type == "epsilon":
        target = noise
    elif c.prediction_type == "sample":
        target = motion
    else:
        target = sched.get_velocity(motion, noise, t)
    return torch.nn.functional.mse_loss(pred, target)
