"""Sampling the gesture denoiser without torch: its config, motion arrays, its inference wrapper and the window loop.

`gesture.model.GestureDenoiser` (torch) is what training builds, saves and exports to model.onnx; inference runs
that graph in onnxruntime (`GestureDenoiserNet`, avatar.runtime) and samples with our DDIM (avatar.diffusion).
A clip is sampled window by window, each continuing the previous window's last `overlap` frames (given to
the model as a known, masked prefix) and cross-faded over them; emotion uses classifier-free guidance. The
initial noise comes from a seeded NumPy generator, so a seed gives the same motion. After sampling the legs
are re-solved by IK so the feet stay planted.
"""

from __future__ import annotations

import json
import math
from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from avatar.diffusion import make_sampler
from avatar.errors import InputError, ModelError
from avatar.runtime import OnnxNet
from avatar.types import BodyMotion
from avatar.weights import ModelConfig

from avatar.rig.kinematics import plant_feet, rotations_in_skeleton_order
from .prosody import FEATURE_NAMES, ProsodyFeatures
from avatar.rig.rotations import quat_to_6d, sixd_to_quat
from avatar.rig.skeleton import HUMANOID, VRM_BONES, Skeleton
from .teacher import VadLike, vad_per_frame


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


class GestureModelConfig(ModelConfig):
    """Everything from_pretrained needs to rebuild the model (config.json)."""

    class_name: ClassVar[str] = "GestureDenoiser"
    format_version: ClassVar[int] = 1

    joints: list[str] = Field(default_factory=lambda: list(VRM_BONES))
    audio_features: list[str] = Field(default_factory=lambda: list(FEATURE_NAMES))
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
    #: Trained on a teacher that already carries the body-language layer (posture, breathing, weight shifts);
    #: when False (older weights) generate_gesture lays it on the sampled motion.
    body_language: bool = False

    @property
    def pose_dim(self) -> int:
        """Numbers per frame: 6 per joint plus 3 for the hips."""
        return len(self.joints) * 6 + 3


class GestureDenoiserNet(OnnxNet):
    """The gesture denoiser at inference: `net(x_t, t, audio, vad, known, mask, drop_vad)` -> the clean window,
    run from model.onnx (`from_pretrained`) or from the torch `gesture.model.GestureDenoiser` (`from_module`).

    x_t, known [B, W, D] float32; t [B] int64; audio [B, W, F]; vad [B, W, 3]; mask [B, W, 1]; drop_vad [B] bool.
    `pose_mean` / `pose_std` [D] (the training data's normalisation) come from the graph's metadata.
    """

    config_class = GestureModelConfig
    model_name = "gesture"
    onnx_inputs = ("x_t", "t", "audio", "vad", "known", "mask", "drop_vad")

    def check(self) -> None:
        """ModelError unless the normalisation is there and fits the config."""
        d = self.config.pose_dim
        try:
            self.pose_mean = np.asarray(json.loads(self.metadata["pose_mean"]), dtype=np.float32)
            self.pose_std = np.asarray(json.loads(self.metadata["pose_std"]), dtype=np.float32)
        except (KeyError, ValueError, TypeError) as exc:
            raise ModelError(f"{self.source} lacks the pose normalisation ({exc!r}): export it again") from None
        if self.pose_mean.shape != (d,) or self.pose_std.shape != (d,):
            raise ModelError(f"{self.source}: pose normalisation is not [{d}] as its config.json says")

    def feature_dims(self) -> dict[str, int]:
        """The feature axes the config sizes."""
        c = self.config
        return {"x_t": c.pose_dim, "known": c.pose_dim, "audio": len(c.audio_features), "vad": 3, "mask": 1}

    @classmethod
    def module_metadata(cls, module: Any) -> dict[str, str]:
        """The torch module's normalisation buffers, as export writes them."""
        return dict(module.onnx_metadata())


def as_net(model: Any) -> GestureDenoiserNet:
    """The denoiser to sample with: a GestureDenoiserNet as it is, a torch GestureDenoiser wrapped."""
    return GestureDenoiserNet.of(model)


def crossfade(prev_tail: np.ndarray, new_head: np.ndarray) -> np.ndarray:
    """Blend the overlap of two windows with a smoothstep weight (all prev at the start, all new at the end)."""
    n = len(prev_tail)
    s = (np.arange(n) + 1) / (n + 1)
    w = (s * s * (3 - 2 * s))[:, None]
    return (1 - w) * prev_tail + w * new_head


def _sample_window(net: GestureDenoiserNet, scheduler: Any, audio: np.ndarray, vad: np.ndarray, known: np.ndarray,
                   mask: np.ndarray, guidance: float, rng: np.random.Generator) -> np.ndarray:
    W, D = audio.shape[1], net.config.pose_dim
    x = rng.standard_normal((1, W, D), dtype=np.float32)
    two = guidance != 1.0
    for t in scheduler.timesteps:
        if two:  # conditional and VAD-dropped passes in one batch
            def rep(a: np.ndarray) -> np.ndarray:
                return np.repeat(a, 2, axis=0)

            x0 = net(rep(x), np.array([t, t]), rep(audio), rep(vad), rep(known), rep(mask), np.array([False, True]))
            x0 = x0[1:] + np.float32(guidance) * (x0[:1] - x0[1:])
        else:
            x0 = net(x, np.array([t]), audio, vad, known, mask, np.array([False]))
        x = scheduler.step(x0, int(t), x)
    return x


def generate(model: Any, features: ProsodyFeatures | np.ndarray, vad: VadLike = None, seed: int = 0,
             steps: int = 10, guidance_scale: float = 1.5, scheduler: str = "ddim", plant: bool = True,
             skeleton: Skeleton = HUMANOID) -> BodyMotion:
    """Sample motion for a whole clip (model: a GestureDenoiserNet or the torch denoiser): windows in order, each
    continuing the previous one's overlap. scheduler: 'ddim' (ours, NumPy) or 'dpm' (diffusers, imports torch)."""
    net = as_net(model)
    c = net.config
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
    W, Ov = c.window, c.overlap
    stride = W - Ov
    n_win = max(1, math.ceil((T - Ov) / stride)) if T > W else 1
    total = Ov + n_win * stride if T > W else W
    audio = np.zeros((total, feats.shape[1]), dtype=np.float32)
    audio[:T] = feats
    vad_f = np.zeros((total, 3), dtype=np.float32)
    vad_f[:T] = vad_per_frame(vad, T, c.fps)
    vad_f[T:] = vad_f[T - 1]
    sched = make_sampler(scheduler, int(steps), c.num_train_timesteps, c.beta_schedule, "sample")
    rng = np.random.default_rng(int(seed))
    out = np.zeros((total, c.pose_dim), dtype=np.float32)
    mean, std = net.pose_mean, net.pose_std
    windows: Any = range(n_win)
    if n_win >= 30:  # progress only for long clips (about a minute and up); tqdm's import is not free
        from tqdm import tqdm

        windows = tqdm(windows, desc="gesture windows", leave=False)
    for k in windows:
        s0 = k * stride
        known = np.zeros((1, W, c.pose_dim), dtype=np.float32)
        mask = np.zeros((1, W, 1), dtype=np.float32)
        if k > 0:
            known[0, :Ov] = (out[s0:s0 + Ov] - mean) / std
            mask[0, :Ov] = 1.0
        x = _sample_window(net, sched, audio[None, s0:s0 + W], vad_f[None, s0:s0 + W], known, mask,
                           guidance_scale, rng)
        win = x[0] * std + mean
        if k > 0:
            win[:Ov] = crossfade(out[s0:s0 + Ov], win[:Ov])
        out[s0:s0 + W] = win
    motion = array_to_motion(out[:T], c.fps, skeleton, c.root_scale)
    return plant_feet(motion, skeleton) if plant else motion
