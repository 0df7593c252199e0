"""NumPy forward passes of the few layers our denoisers use, for inference without torch.

Why not torch at run time: importing torch and diffusers costs about 4-5 s of a new process on the 2-core
machine, longer than the 4-second line `avatar say` has to finish in, while the face and gesture denoisers are
small (a few hundred thousand weights) and their forward passes are a handful of matrix products. Training
keeps torch; each torch model has a NumPy twin that loads the same `model.safetensors` (safetensors.numpy,
nothing unpickled), and tests check the twins against the torch modules. Weights use torch's layouts
(`Linear.weight` is [out, in], `Conv1d.weight` [out, in, kernel]). Everything is float32.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
from pathlib import Path
from typing import Any, ClassVar, Mapping, TypeVar

import numpy as np

from avatar.errors import InputError

Params = Mapping[str, np.ndarray]
T = TypeVar("T", bound="NumpyTwin")


@functools.lru_cache(maxsize=1)
def _blas_controller() -> Any:
    """threadpoolctl's handle on the loaded BLAS libraries (found once: it scans the process's libraries)."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController().select(user_api="blas")


def blas_threads() -> int:
    """How many threads NumPy's BLAS runs products on now (environment variables such as OMP_NUM_THREADS count)."""
    return max([int(lib["num_threads"]) for lib in _blas_controller().info()] or [1])


def blas_limit(threads: int | None) -> contextlib.AbstractContextManager:
    """BLAS capped at `threads` threads for the `with` block (the whole process; a no-op for None or no change).

    The denoisers run on one: their matrices are small, a second BLAS thread saves little on an idle machine,
    and when the other core is busy (batch workers, the renderer, another process) OpenBLAS's spinning threads
    made one forward pass 10-40x slower in our measurements.
    """
    if not threads or threads == blas_threads():
        # Nothing to change, so nothing to restore: a model running on another thread keeps its own cap.
        return contextlib.nullcontext()
    return _blas_controller().limit(limits=int(threads))


def linear(x: np.ndarray, params: Params, name: str) -> np.ndarray:
    """x @ W.T + b for torch's nn.Linear called `name` (one 2-D product: faster than NumPy's batched matmul)."""
    w = params[f"{name}.weight"]
    y = x.reshape(-1, x.shape[-1]) @ w.T
    y += params[f"{name}.bias"]
    return y.reshape(*x.shape[:-1], w.shape[0])


def silu(x: np.ndarray) -> np.ndarray:
    """x * sigmoid(x)."""
    return x / (1.0 + np.exp(-x))


# erf as a rational function: x * P(x^2) / Q(x^2) on [-4, 4] (beyond, erf is ±1 to within 1.6e-8), the
# minimax fit of Eigen's `generic_fast_erf_float` (Eigen 3.4, unsupported/Eigen/src/SpecialFunctions/
# SpecialFunctionsImpl.h; XLA uses the same for float32). Max error 6.5e-8 in float64 and a few float32 ulps in
# float32 (tests/test_npnn.py checks it against math.erf on [-6, 6]). Chosen over Abramowitz & Stegun
# 7.1.26 (1.5e-7) because it needs no exp, the slowest step; NumPy has no erf and scipy.special costs 0.45 s
# to import.
_ERF_P = (-2.72614225801306e-10, 2.77068142495902e-08, -2.10102402082508e-06, -5.69250639462346e-05,
          -7.34990630326855e-04, -2.95459980854025e-03, -1.60960333262415e-02)  # x^13, x^11, ..., x^1
_ERF_Q = (-1.45660718464996e-05, -2.13374055278905e-04, -1.68282697438203e-03, -7.37332916720468e-03,
          -1.42647390514189e-02)  # x^8, x^6, ..., x^0
_ERF_CLAMP = 4.0
#: Elements per block of the in-place GELU: its three scratch blocks and the input block stay in cache.
_GELU_BLOCK = 1 << 17


def _erf_into(u: np.ndarray, out: np.ndarray, x2: np.ndarray) -> None:
    """out = erf(u); u is clamped and then reused as scratch, x2 is scratch; all of one shape and dtype."""
    np.clip(u, -_ERF_CLAMP, _ERF_CLAMP, out=u)
    np.multiply(u, u, out=x2)
    np.multiply(x2, _ERF_P[0], out=out)  # Horner in x^2; Python-float constants keep the arrays' dtype
    for c in _ERF_P[1:-1]:
        out += c
        out *= x2
    out += _ERF_P[-1]
    out *= u
    np.multiply(x2, _ERF_Q[0], out=u)
    for c in _ERF_Q[1:-1]:
        u += c
        u *= x2
    u += _ERF_Q[-1]
    out /= u


def erf(x: np.ndarray) -> np.ndarray:
    """The error function elementwise, in x's float dtype (float64 for other input)."""
    x = np.asarray(x)
    u = x.astype(x.dtype if np.issubdtype(x.dtype, np.floating) else np.float64)  # a copy: _erf_into writes it
    out, x2 = np.empty_like(u), np.empty_like(u)
    _erf_into(u, out, x2)
    return out


def gelu_(x: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
    """Exact GELU, x * (1 + erf(x / sqrt 2)) / 2, of (x + bias) for a 2-D array x, in place; returns x."""
    rows = max(1, _GELU_BLOCK // max(1, x.shape[1]))
    scratch = np.empty((3, min(rows, x.shape[0]), x.shape[1]), dtype=x.dtype)
    for i in range(0, x.shape[0], rows):  # block by block: each step's temporaries stay in cache
        blk = x[i:i + rows]
        if bias is not None:
            blk += bias  # the preceding Linear's bias, added here while the block is in cache
        u, phi, x2 = scratch[0, :len(blk)], scratch[1, :len(blk)], scratch[2, :len(blk)]
        np.multiply(blk, 1.0 / math.sqrt(2.0), out=u)
        _erf_into(u, phi, x2)
        phi += 1.0
        phi *= 0.5
        blk *= phi
    return x


def gelu(x: np.ndarray) -> np.ndarray:
    """The exact (erf) GELU, as torch's default, of an array of any shape (a new array)."""
    x = np.asarray(x)
    flat = x.reshape(-1, x.shape[-1] if x.ndim else 1).astype(np.result_type(x.dtype, np.float32))
    return gelu_(flat).reshape(x.shape)


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
        from avatar.pretrained import check_shapes

        self.config = config
        self.params = to_numpy_state(params)
        check_shapes(self.shapes(), {k: tuple(v.shape) for k, v in self.params.items()}, source)

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

        config, state = load_folder(folder, cls.config_class, cls.model_name, framework="np", expect=cls.shapes_for)
        return cls(config, state, source=str(Path(folder) / "model.safetensors"))

    @classmethod
    def shapes_for(cls, config: Any) -> dict[str, tuple[int, ...]]:
        """`shapes()` for a config alone (checked against a file's header before its weights are read)."""
        probe = cls.__new__(cls)
        probe.config = config
        return probe.shapes()

    @classmethod
    def from_module(cls: type[T], module: Any) -> T:
        """The twin of a torch module (its config and state dict)."""
        return cls(module.config, module.state_dict(), source=type(module).__name__)

    @classmethod
    def of(cls: type[T], model: Any) -> T:
        """`model` itself when it is a twin, the twin of a torch module with this config, else InputError."""
        if isinstance(model, cls):
            return model
        if hasattr(model, "state_dict") and isinstance(getattr(model, "config", None), cls.config_class):
            return cls.from_module(model)
        raise InputError(f"not a {cls.model_name} denoiser: {type(model).__name__}")
