"""The gesture diffusion model: a small transformer denoiser over windows of 6-D joint rotations.

Motion is a window of W frames (2 s at 30 fps), each frame the 6-D rotation (Zhou et al. 2019) of every joint
plus the hips displacement from rest (x10, decimetres). The denoiser predicts the clean window (x0, as MDM
and DiffuseStyleGesture do) from the noisy one, conditioned per frame on the prosody features
(avatar.gesture.prosody.FEATURE_NAMES), on VAD (replaced by a learned null token with probability
`cfg_dropout` in training, so classifier-free guidance can dial emotion strength at sampling), and on the
first `overlap` frames of the previous window (an inpainting mask), which is what stitches windows without
seams; the overlap is also cross-faded. This module is the torch model that training builds and exports to
model.onnx; sampling (gesture.sampling) runs that graph in onnxruntime with a DDIM matching diffusers' (a few
steps) from seeded noise, then re-solves the legs by IK so the feet stay planted.

Saved like a diffusers component: save_pretrained(dir) writes config.json, model.safetensors and README.md
(the model card); from_pretrained(dir) loads them (safetensors only, never pickle).
"""

from __future__ import annotations

import json
import logging
import math
from typing import Any

import torch
from torch import nn

from avatar.errors import InputError
from avatar.pretrained import PretrainedMixin

# Inference lives in gesture.sampling (onnxruntime, no torch); re-exported for training code.
from .sampling import (  # noqa: F401 - re-exported
    GestureModelConfig, array_to_motion, crossfade, generate, motion_to_array,
)

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------------
# The denoiser
# --------------------------------------------------------------------------------------------------


def _sinusoid(x: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding [..., dim] of positions or timesteps x [...]."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32, device=x.device) / half)
    ang = x.float()[..., None] * freqs
    return torch.cat([torch.sin(ang), torch.cos(ang)], dim=-1)


class GestureDenoiser(PretrainedMixin, nn.Module):
    """Predicts the clean (normalised) motion window from a noisy one, prosody, VAD and the known prefix."""

    config_class = GestureModelConfig
    model_name = "gesture"

    def __init__(self, config: GestureModelConfig | None = None) -> None:
        super().__init__()
        self.config = config or GestureModelConfig()
        c = self.config
        D, F, d = c.pose_dim, len(c.audio_features), c.d_model
        self.inp = nn.Linear(D + D + 1 + F, d)  # noisy pose, known pose, known mask, audio features
        self.vad = nn.Sequential(nn.Linear(3, d), nn.SiLU(), nn.Linear(d, d))
        self.null_vad = nn.Parameter(torch.zeros(d))
        self.time = nn.Sequential(nn.Linear(d, d), nn.SiLU(), nn.Linear(d, d))
        layer = nn.TransformerEncoderLayer(d, c.heads, c.ff, c.dropout, activation="gelu", batch_first=True,
                                           norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, c.layers, enable_nested_tensor=False)
        self.out = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, D))
        # Data normalisation, set by the training script from the training set (saved with the weights).
        self.register_buffer("pose_mean", torch.zeros(D))
        self.register_buffer("pose_std", torch.ones(D))

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, audio: torch.Tensor, vad: torch.Tensor,
                known: torch.Tensor, mask: torch.Tensor, drop_vad: torch.Tensor | None = None) -> torch.Tensor:
        """x_t, known [B, W, D]; t [B]; audio [B, W, F]; vad [B, W, 3]; mask [B, W, 1]; drop_vad [B] bool."""
        B, W, _ = x_t.shape
        d = self.config.d_model
        h = self.inp(torch.cat([x_t, known * mask, mask, audio], dim=-1))
        v = self.vad(vad)
        if drop_vad is not None:
            v = torch.where(drop_vad[:, None, None], self.null_vad.expand(B, W, d), v)
        pos = _sinusoid(torch.arange(W, device=x_t.device), d)[None]
        h = h + v + pos + self.time(_sinusoid(t, d))[:, None, :]
        return self.out(self.encoder(h))

    #: The exported graph's inputs (gesture.sampling.GestureDenoiserNet feeds them in this order).
    onnx_inputs = ("x_t", "t", "audio", "vad", "known", "mask", "drop_vad")
    onnx_outputs = ("x0",)
    onnx_dynamic = {**{k: {0: "batch", 1: "frames"} for k in ("x_t", "audio", "vad", "known", "mask")},
                    "t": {0: "batch"}, "drop_vad": {0: "batch"}}

    def onnx_example(self, frames: int = 32) -> tuple[torch.Tensor, ...]:
        """Example inputs for export: a conditional and a VAD-dropped row of `frames` frames, half known."""
        c = self.config
        g = torch.Generator().manual_seed(frames)
        mask = torch.zeros(2, frames, 1)
        mask[:, : frames // 2] = 1.0
        return (torch.randn(2, frames, c.pose_dim, generator=g), torch.tensor([999, 3]),
                torch.randn(2, frames, len(c.audio_features), generator=g), torch.randn(2, frames, 3, generator=g),
                torch.randn(2, frames, c.pose_dim, generator=g), mask, torch.tensor([False, True]))

    def onnx_metadata(self) -> dict[str, str]:
        """The data normalisation (buffers, not graph inputs): sampling de-normalises with it."""
        return {"pose_mean": json.dumps(self.pose_mean.tolist()), "pose_std": json.dumps(self.pose_std.tolist())}

    def default_card(self) -> str:
        """The card for weights with no training record (see `default_card`)."""
        return default_card(self)



def default_card(model: GestureDenoiser) -> str:
    """A model card for a model that has no training record yet (random or freshly initialised weights)."""
    c = model.config
    return f"""# Gesture denoiser (avatar-engine)

Transformer denoiser over {c.window}-frame windows ({c.window / c.fps:.1f} s at {c.fps:g} fps) of 6-D joint
rotations for {len(c.joints)} VRM humanoid bones plus the hips displacement, conditioned on prosody
({", ".join(c.audio_features)}) and per-frame VAD with classifier-free guidance.

- Parameters: {model.num_parameters():,} ({model.num_parameters() * 4 / 1e6:.2f} MB as float32)
- Layers {c.layers}, width {c.d_model}, heads {c.heads}, feed-forward {c.ff}
- Training data: none recorded in this card (weights as initialised or trained without a card).
- Licence: Apache-2.0 (code and weights).
- Metrics: see `bench/gesture_bench.py`.
"""


# --------------------------------------------------------------------------------------------------
# Training loss and sampling
# --------------------------------------------------------------------------------------------------


def make_scheduler(config: GestureModelConfig, kind: str = "ddim") -> Any:  # a diffusers scheduler
    """A diffusers scheduler predicting x0 ("sample"): 'ddim' or 'dpm' (DPM-Solver++ multistep)."""
    from diffusers import DDIMScheduler, DPMSolverMultistepScheduler

    common = dict(num_train_timesteps=config.num_train_timesteps, beta_schedule=config.beta_schedule,
                  prediction_type="sample")
    if kind == "ddim":
        return DDIMScheduler(clip_sample=False, set_alpha_to_one=True, **common)
    if kind == "dpm":
        return DPMSolverMultistepScheduler(algorithm_type="dpmsolver++", solver_order=2, **common)
    raise InputError(f"unknown scheduler {kind!r} (ddim or dpm)")


def diffusion_loss(model: GestureDenoiser, scheduler: Any, x0: torch.Tensor, audio: torch.Tensor,
                   vad: torch.Tensor, generator: torch.Generator | None = None, velocity_weight: float = 1.0
                   ) -> torch.Tensor:
    """Training loss on raw windows x0 [B, W, D]: x0-prediction MSE plus a velocity term, CFG and prefix dropout."""
    m = getattr(model, "module", model)  # a model wrapped for several devices keeps itself on .module
    c = m.config
    B, W, _ = x0.shape
    dev = x0.device
    x0n = (x0 - m.pose_mean) / m.pose_std
    # Drawn from the (CPU) generator, then moved: the same numbers on every device.
    t = torch.randint(0, c.num_train_timesteps, (B,), generator=generator).to(dev)
    noise = torch.randn(x0n.shape, generator=generator).to(dev)
    x_t = scheduler.add_noise(x0n, noise, t)
    mask = torch.zeros(B, W, 1)
    with_prefix = torch.rand(B, generator=generator) < 0.5  # half the windows learn to continue a prefix
    mask[with_prefix, : c.overlap] = 1.0
    mask = mask.to(dev)
    drop = (torch.rand(B, generator=generator) < c.cfg_dropout).to(dev)
    pred = model(x_t, t, audio, vad, x0n, mask, drop)
    loss = torch.mean((pred - x0n) ** 2)
    if velocity_weight:
        loss = loss + velocity_weight * torch.mean((pred.diff(dim=1) - x0n.diff(dim=1)) ** 2)
    return loss
