"""NumPy forward passes of the few layers our denoisers use, for inference without torch.

Why not torch at run time: importing torch and diffusers costs about 4-5 s of a new process on the 2-core
machine, longer than the 4-second line `avatar say` has to finish in, while the face and gesture denoisers are
small (a few hundred thousand weights) and their forward passes are a handful of matrix products. Training
keeps torch; each torch model has a NumPy twin that loads the same `model.safetensors` (safetensors.numpy,
nothing unpickled), and tests check the twins against the torch modules. Weights use torch's layouts
(`Linear.weight` is [out, in], `Conv1d.weight` [out, in, kernel]). Everything is float32.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, ClassVar, Mapping, TypeVar

import numpy as np

from avatar.errors import ModelError

Params = Mapping[str, np.ndarray]
T = TypeVar("T", bound="NumpyTwin")


_CONTROLLER: Any = None


def blas_threads(n: int) -> Any:
    """A context manager limiting NumPy's BLAS to n threads.

    The denoisers' matrices are small: a second BLAS thread saves little on an idle machine, and when the
    other core is busy (batch workers, the renderer, another process) OpenBLAS's spinning threads made one
    forward pass 10-40x slower in our measurements, so sampling runs on one.
    """
    global _CONTROLLER
    if _CONTROLLER is None:
        from threadpoolctl import ThreadpoolController

        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER.limit(limits=int(n), user_api="blas")


def linear(x: np.ndarray, params: Params, name: str) -> np.ndarray:
    """x @ W.T + b for torch's nn.Linear called `name` (one 2-D product: faster than NumPy's batched matmul)."""
    w = params[f"{name}.weight"]
    y = x.reshape(-1, x.shape[-1]) @ w.T
    y += params[f"{name}.bias"]
    return y.reshape(*x.shape[:-1], w.shape[0])


def silu(x: np.ndarray) -> np.ndarray:
    """x * sigmoid(x)."""
    return x / (1.0 + np.exp(-x))


def erf(x: np.ndarray) -> np.ndarray:
    """The error function to about 1.5e-7 (Abramowitz & Stegun 7.1.26), in the input's precision.

    NumPy has none and scipy.special costs 0.45 s of a new process; a float32 GELU needs no better.
    """
    x = np.asarray(x)
    x = x if x.dtype in (np.float32, np.float64) else x.astype(np.float64)
    z = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * z)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    y = 1.0 - poly * np.exp(-z * z)
    return np.copysign(y, x)


def gelu(x: np.ndarray) -> np.ndarray:
    """The exact (erf) GELU, as torch's default."""
    return 0.5 * x * (1.0 + erf(x * np.float32(1.0 / math.sqrt(2.0))))


def layer_norm(x: np.ndarray, params: Params, name: str, eps: float = 1e-5) -> np.ndarray:
    """LayerNorm over the last axis with torch's `name.weight` / `name.bias`."""
    mu = x.mean(axis=-1, keepdims=True)
    xc = x - mu
    var = (xc * xc).mean(axis=-1, keepdims=True)
    return xc / np.sqrt(var + np.float32(eps)) * params[f"{name}.weight"] + params[f"{name}.bias"]


def group_norm(x: np.ndarray, params: Params, name: str, groups: int, eps: float = 1e-5) -> np.ndarray:
    """GroupNorm of x [B, C, T] with `groups` groups and per-channel affine `name.weight` / `name.bias`."""
    b, c, t = x.shape
    g = x.reshape(b, groups, (c // groups) * t)
    mu = g.mean(axis=-1, keepdims=True)
    gc = g - mu
    var = (gc * gc).mean(axis=-1, keepdims=True)
    y = (gc / np.sqrt(var + np.float32(eps))).reshape(b, c, t)
    return y * params[f"{name}.weight"][None, :, None] + params[f"{name}.bias"][None, :, None]


def conv1d(x: np.ndarray, params: Params, name: str, dilation: int = 1) -> np.ndarray:
    """'Same'-padded dilated Conv1d of x [B, C, T] (odd kernel), as one matrix product over stacked taps."""
    w = params[f"{name}.weight"]
    out_c, in_c, k = w.shape
    b, c, t = x.shape
    pad = dilation * (k - 1) // 2
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad)))
    taps = np.stack([xp[:, :, j * dilation:j * dilation + t] for j in range(k)], axis=2)  # [B, C, K, T]
    y = w.reshape(out_c, in_c * k) @ taps.reshape(b, c * k, t)
    return y + params[f"{name}.bias"][None, :, None]


def sinusoid(x: np.ndarray, dim: int) -> np.ndarray:
    """Sinusoidal embedding [..., dim] (sin half, then cos half) of timesteps or positions x [...]."""
    half = dim // 2
    freqs = np.exp(-math.log(10000.0) * np.arange(half, dtype=np.float32) / half).astype(np.float32)
    ang = np.asarray(x, dtype=np.float32)[..., None] * freqs
    return np.concatenate([np.sin(ang), np.cos(ang)], axis=-1)


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax."""
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def self_attention(x: np.ndarray, params: Params, name: str, heads: int) -> np.ndarray:
    """torch's nn.MultiheadAttention (packed in_proj, batch first) of x [B, T, D] attending to itself."""
    b, t, d = x.shape
    qkv = x @ params[f"{name}.in_proj_weight"].T + params[f"{name}.in_proj_bias"]  # [B, T, 3D]
    qkv = qkv.reshape(b, t, 3, heads, d // heads).transpose(2, 0, 3, 1, 4)  # [3, B, H, T, dh]
    q, k, v = qkv[0], qkv[1], qkv[2]
    att = softmax((q @ k.transpose(0, 1, 3, 2)) * np.float32(1.0 / math.sqrt(d // heads)))
    ctx = (att @ v).transpose(0, 2, 1, 3).reshape(b, t, d)
    return linear(ctx, params, f"{name}.out_proj")


def to_numpy_state(state: Mapping[str, object]) -> dict[str, np.ndarray]:
    """A torch state dict (or a safetensors.numpy one) as float32 NumPy arrays."""
    out = {}
    for k, v in state.items():
        if hasattr(v, "detach"):
            v = v.detach().cpu().float().numpy()  # type: ignore[union-attr]
        out[k] = np.ascontiguousarray(v, dtype=np.float32)
    return out


class NumpyTwin:
    """Base of a torch model's NumPy twin: the same config dataclass and weights, checked against `shapes()`."""

    config_class: ClassVar[type]
    #: What the model is called in error messages ("face", "gesture").
    model_name: ClassVar[str] = "model"

    def __init__(self, config: Any, params: Mapping[str, object], source: str = "the weights") -> None:
        self.config = config
        self.params = to_numpy_state(params)
        want = self.shapes()
        got = {k: tuple(v.shape) for k, v in self.params.items()}
        if got != want:
            wrong = sorted(k for k in set(want) | set(got) if want.get(k) != got.get(k))
            raise ModelError(f"{source} does not fit its config.json: {', '.join(wrong[:4])}"
                             f"{' ...' if len(wrong) > 4 else ''}")

    def shapes(self) -> dict[str, tuple[int, ...]]:
        """Every weight's name and shape for this config (torch's state-dict names)."""
        raise NotImplementedError

    def num_parameters(self) -> int:
        """Number of weights."""
        return int(sum(v.size for v in self.params.values()))

    @classmethod
    def from_pretrained(cls: type[T], folder: str | os.PathLike[str]) -> T:
        """Load a model folder (config.json + model.safetensors) without torch."""
        from avatar.pretrained import load_folder

        config, state = load_folder(folder, cls.config_class, cls.model_name, framework="np")
        return cls(config, state, source=str(Path(folder) / "model.safetensors"))

    @classmethod
    def from_module(cls: type[T], module: Any) -> T:
        """The twin of a torch module (its config and state dict)."""
        return cls(module.config, module.state_dict(), source=type(module).__name__)
