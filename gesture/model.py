"""The gesture diffusion model: a small transformer denoiser over windows of 6-D joint rotations.

Motion is a window of W frames (2 s at 30 fps), each frame the 6-D rotation (Zhou et al. 2019) of every joint
plus the hips displacement from rest (x10, decimetres). The denoiser predicts the clean window (x0, as MDM
and DiffuseStyleGesture do) from the noisy one, conditioned per frame on the prosody features
(avatar.gesture.prosody.FEATURE_NAMES), on VAD (replaced by a learned null token with probability
`cfg_dropout` in training, so classifier-free guidance can dial emotion strength at sampling), and on the
first `overlap` frames of the previous window (an inpainting mask), which is what stitches windows without
seams; the overlap is also cross-faded. Sampling uses a diffusers scheduler (DDIM or DPM-Solver++, a few
steps); the initial noise comes from a seeded torch.Generator, so a seed gives the same motion. After
sampling the legs are re-solved by IK so the feet stay planted.

Saved like a diffusers component: save_pretrained(dir) writes config.json, model.safetensors and README.md
(the model card); from_pretrained(dir) loads them (safetensors only, never pickle).
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
from avatar.types import BodyMotion

from .kinematics import plant_feet, rotations_in_skeleton_order
from .prosody import FEATURE_NAMES, ProsodyFeatures
from .rotations import quat_to_6d, sixd_to_quat
from .skeleton import HUMANOID, VRM_BONES, Skeleton
from .teacher import VadLike, vad_per_frame

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------------
# Motion <-> model arrays
# --------------------------------------------------------------------------------------------------


def motion_to_array(motion: BodyMotion, skeleton: Skeleton = HUMANOID, root_scale: float = 10.0) -> np.ndarray:
    """BodyMotion -> [T, J*6 + 3] float32: 6-D local rotations (skeleton order), then scaled hips displacement."""
    rot = rotations_in_skeleton_order(motion, skeleton)
    six = quat_to_6d(rot).reshape(motion.num_frames, -1)
    root = (motion.root_position.astype(np.float64) - skeleton.rest_positions[0]) * root_scale
    return np.concatenate([six, root], axis=1).astype(np.float32)


def array_to_motion(x: np.ndarray, fps: float, skeleton: Skeleton = HUMANOID, root_scale: float = 10.0) -> BodyMotion:
    """[T, J*6 + 3] -> BodyMotion (6-D projected back onto rotations by Gram-Schmidt)."""
    x = np.asarray(x, dtype=np.float64)
    J = len(skeleton.joints)
    if x.ndim != 2 or x.shape[1] != J * 6 + 3:
        raise InputError(f"motion array must be [T, {J * 6 + 3}], got {x.shape}")
    q = sixd_to_quat(x[:, : J * 6].reshape(-1, J, 6))
    root = x[:, J * 6:] / root_scale + skeleton.rest_positions[0]
    return BodyMotion(fps=fps, joints=skeleton.joints, rotations=q.astype(np.float32),
                      root_position=root.astype(np.float32))


# --------------------------------------------------------------------------------------------------
# The denoiser
# --------------------------------------------------------------------------------------------------


@dataclass
class GestureModelConfig:
    """Everything from_pretrained needs to rebuild the model."""

    joints: list[str] = field(default_factory=lambda: list(VRM_BONES))
    audio_features: list[str] = field(default_factory=lambda: list(FEATURE_NAMES))
    fps: float = 30.0
    window: int = 60
    overlap: int = 10
    d_model: int = 128
    layers: int = 4
    heads: int = 4
    ff: int = 256
    dropout: float = 0.1
    num_train_timesteps: int = 1000
    beta_schedule: str = "squaredcos_cap_v2"
    cfg_dropout: float = 0.2
    root_scale: float = 10.0

    @property
    def pose_dim(self) -> int:
        """Numbers per frame: 6 per joint plus 3 for the hips."""
        return len(self.joints) * 6 + 3


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


def make_scheduler(config: GestureModelConfig, kind: str = "ddim"):  # noqa: ANN201
    """A diffusers scheduler predicting x0 ("sample"): 'ddim' or 'dpm' (DPM-Solver++ multistep)."""
    from diffusers import DDIMScheduler, DPMSolverMultistepScheduler

    common = dict(num_train_timesteps=config.num_train_timesteps, beta_schedule=config.beta_schedule,
                  prediction_type="sample")
    if kind == "ddim":
        return DDIMScheduler(clip_sample=False, set_alpha_to_one=True, **common)
    if kind == "dpm":
        return DPMSolverMultistepScheduler(algorithm_type="dpmsolver++", solver_order=2, **common)
    raise InputError(f"unknown scheduler {kind!r} (ddim or dpm)")


def diffusion_loss(model: GestureDenoiser, scheduler, x0: torch.Tensor, audio: torch.Tensor,  # noqa: ANN001
                   vad: torch.Tensor, generator: torch.Generator | None = None, velocity_weight: float = 1.0
                   ) -> torch.Tensor:
    """Training loss on raw windows x0 [B, W, D]: x0-prediction MSE plus a velocity term, CFG and prefix dropout."""
    c = model.config
    B, W, _ = x0.shape
    x0n = (x0 - model.pose_mean) / model.pose_std
    t = torch.randint(0, c.num_train_timesteps, (B,), generator=generator)
    noise = torch.randn(x0n.shape, generator=generator)
    x_t = scheduler.add_noise(x0n, noise, t)
    mask = torch.zeros(B, W, 1)
    with_prefix = torch.rand(B, generator=generator) < 0.5  # half the windows learn to continue a prefix
    mask[with_prefix, : c.overlap] = 1.0
    drop = torch.rand(B, generator=generator) < c.cfg_dropout
    pred = model(x_t, t, audio, vad, x0n, mask, drop)
    loss = torch.mean((pred - x0n) ** 2)
    if velocity_weight:
        loss = loss + velocity_weight * torch.mean((pred.diff(dim=1) - x0n.diff(dim=1)) ** 2)
    return loss


def crossfade(prev_tail: np.ndarray, new_head: np.ndarray) -> np.ndarray:
    """Blend the overlap of two windows with a smoothstep weight (all prev at the start, all new at the end)."""
    n = len(prev_tail)
    s = (np.arange(n) + 1) / (n + 1)
    w = (s * s * (3 - 2 * s))[:, None]
    return (1 - w) * prev_tail + w * new_head


@torch.no_grad()
def _sample_window(model: GestureDenoiser, scheduler, audio: torch.Tensor, vad: torch.Tensor,  # noqa: ANN001
                   known: torch.Tensor, mask: torch.Tensor, steps: int, guidance: float,
                   generator: torch.Generator) -> torch.Tensor:
    W, D = audio.shape[1], model.config.pose_dim
    x = torch.randn((1, W, D), generator=generator) * scheduler.init_noise_sigma
    scheduler.set_timesteps(steps)
    two = guidance != 1.0
    for t in scheduler.timesteps:
        tt = torch.full((2 if two else 1,), int(t), dtype=torch.long)
        if two:  # conditional and VAD-dropped passes in one batch
            x0 = model(x.repeat(2, 1, 1), tt, audio.repeat(2, 1, 1), vad.repeat(2, 1, 1), known.repeat(2, 1, 1),
                       mask.repeat(2, 1, 1), torch.tensor([False, True]))
            x0 = x0[1:] + guidance * (x0[:1] - x0[1:])
        else:
            x0 = model(x, tt, audio, vad, known, mask)
        x = scheduler.step(x0, t, x).prev_sample
    return x


def generate(model: GestureDenoiser, features: ProsodyFeatures | np.ndarray, vad: VadLike = None, seed: int = 0,
             steps: int = 10, guidance_scale: float = 1.5, scheduler: str = "ddim", plant: bool = True,
             skeleton: Skeleton = HUMANOID) -> BodyMotion:
    """Sample motion for a whole clip: windows in order, each continuing the previous one's overlap."""
    c = model.config
    if c.joints != list(skeleton.joints):
        raise ModelError("the model's joints do not match the skeleton")
    if isinstance(features, ProsodyFeatures) and abs(features.fps - c.fps) > 1e-6:
        raise InputError(f"prosody features are at {features.fps} fps, the model at {c.fps}")
    feats = features.matrix() if isinstance(features, ProsodyFeatures) else np.asarray(features, dtype=np.float32)
    if feats.ndim != 2 or feats.shape[1] != len(c.audio_features) or len(feats) == 0:
        raise InputError(f"audio features must be [T>0, {len(c.audio_features)}], got {feats.shape}")
    if not np.isfinite(feats).all():
        raise InputError("audio features contain NaN or infinite values")
    if not 1 <= int(steps) <= 200:
        raise InputError(f"steps must be in 1..200, got {steps}")
    if not math.isfinite(guidance_scale) or not 0.0 <= guidance_scale <= 10.0:
        raise InputError(f"guidance scale must be in [0, 10], got {guidance_scale}")
    T = len(feats)
    W, O = c.window, c.overlap
    stride = W - O
    n_win = max(1, math.ceil((T - O) / stride)) if T > W else 1
    total = O + n_win * stride if T > W else W
    audio = np.zeros((total, feats.shape[1]), dtype=np.float32)
    audio[:T] = feats
    vad_f = np.zeros((total, 3), dtype=np.float32)
    vad_f[:T] = vad_per_frame(vad, T, c.fps)
    vad_f[T:] = vad_f[T - 1]
    sched = make_scheduler(c, scheduler)
    gen = torch.Generator().manual_seed(int(seed))
    model.eval()
    out = np.zeros((total, c.pose_dim), dtype=np.float32)
    mean, std = model.pose_mean.numpy(), model.pose_std.numpy()
    from tqdm import tqdm

    # Progress only for long clips (about a minute of audio and up); short ones finish in a second or two.
    for k in tqdm(range(n_win), desc="gesture windows", disable=n_win < 30, leave=False):
        s0 = k * stride
        known = torch.zeros(1, W, c.pose_dim)
        mask = torch.zeros(1, W, 1)
        if k > 0:
            known[0, :O] = torch.from_numpy((out[s0:s0 + O] - mean) / std)
            mask[0, :O] = 1.0
        x = _sample_window(model, sched, torch.from_numpy(audio[None, s0:s0 + W]),
                           torch.from_numpy(vad_f[None, s0:s0 + W]), known, mask, steps, guidance_scale, gen)
        win = x[0].numpy() * std + mean
        if k > 0:
            win[:O] = crossfade(out[s0:s0 + O], win[:O])
        out[s0:s0 + W] = win
    motion = array_to_motion(out[:T], c.fps, skeleton, c.root_scale)
    return plant_feet(motion, skeleton) if plant else motion
