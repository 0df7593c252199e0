"""Sampling schedulers for the face and gesture denoisers, in NumPy.

`DDIM` is the default: the update of diffusers' `DDIMScheduler` (Song et al. 2021, eta 0, "leading" timestep
spacing, `set_alpha_to_one`, no clipping) for the cosine ("squaredcos_cap_v2") or linear beta schedules our
models train with. It is written out here rather than imported because importing diffusers pulls in torch
and torch._dynamo (about 4 s of a new process on the 2-core machine, longer than a 4-second line may take end
to end); tests check it step for step against diffusers. Any other diffusers scheduler (DPM-Solver++) is
still available through `DiffusersScheduler`, which converts at its boundary and so imports torch only when
asked for.
"""

from __future__ import annotations

import math
from typing import Any, Protocol

import numpy as np

from avatar.errors import InputError

SCHEDULERS = ("ddim", "dpm")


class Scheduler(Protocol):
    """What a sampling loop needs: the timesteps, in order, and one update per timestep."""

    timesteps: np.ndarray

    def step(self, model_output: np.ndarray, t: int, sample: np.ndarray) -> np.ndarray:
        """The sample at the next (less noisy) timestep."""
        ...


def alphas_cumprod(num_train_timesteps: int, beta_schedule: str) -> np.ndarray:
    """Cumulative products of (1 - beta), float32 as diffusers computes them."""
    if beta_schedule == "squaredcos_cap_v2":  # the Glide cosine schedule (Nichol & Dhariwal 2021)
        def bar(t: float) -> float:
            return math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2

        n = num_train_timesteps
        betas = np.array([min(1 - bar((i + 1) / n) / bar(i / n), 0.999) for i in range(n)], dtype=np.float32)
    elif beta_schedule == "linear":
        betas = np.linspace(0.0001, 0.02, num_train_timesteps, dtype=np.float32)
    else:
        raise InputError(f"unsupported beta schedule {beta_schedule!r} (squaredcos_cap_v2 or linear)")
    return np.cumprod(1.0 - betas, dtype=np.float32)


class DDIM:
    """Deterministic DDIM over `steps` timesteps for a model predicting 'sample' (x0), 'epsilon' or 'v_prediction'."""

    def __init__(self, steps: int, num_train_timesteps: int = 1000, beta_schedule: str = "squaredcos_cap_v2",
                 prediction_type: str = "sample") -> None:
        if not 1 <= int(steps) <= num_train_timesteps:
            raise InputError(f"steps must be in [1, {num_train_timesteps}], got {steps}")
        if prediction_type not in ("sample", "epsilon", "v_prediction"):
            raise InputError(f"unknown prediction type {prediction_type!r}")
        self.prediction_type = prediction_type
        self.alphas_cumprod = alphas_cumprod(num_train_timesteps, beta_schedule)
        self.ratio = num_train_timesteps // int(steps)
        self.timesteps = (np.arange(int(steps)) * self.ratio)[::-1].astype(np.int64)

    def step(self, model_output: np.ndarray, t: int, sample: np.ndarray) -> np.ndarray:
        """x_{t-ratio} from x_t and the model's prediction (eta 0: no fresh noise)."""
        a_t = self.alphas_cumprod[int(t)]
        prev = int(t) - self.ratio
        a_prev = self.alphas_cumprod[prev] if prev >= 0 else np.float32(1.0)
        b_t = 1 - a_t
        if self.prediction_type == "sample":
            x0 = model_output
            eps = (sample - a_t ** 0.5 * x0) / b_t ** 0.5
        elif self.prediction_type == "epsilon":
            x0 = (sample - b_t ** 0.5 * model_output) / a_t ** 0.5
            eps = model_output
        else:
            x0 = a_t ** 0.5 * sample - b_t ** 0.5 * model_output
            eps = a_t ** 0.5 * model_output + b_t ** 0.5 * sample
        return (a_prev ** 0.5 * x0 + (1 - a_prev) ** 0.5 * eps).astype(np.float32)


class DiffusersScheduler:
    """A diffusers scheduler behind the same NumPy interface (imports torch and diffusers when built)."""

    def __init__(self, scheduler: Any, steps: int) -> None:
        scheduler.set_timesteps(int(steps))
        self._sched = scheduler
        self.timesteps = scheduler.timesteps.numpy().astype(np.int64)

    def step(self, model_output: np.ndarray, t: int, sample: np.ndarray) -> np.ndarray:
        """One diffusers step on torch copies of the arrays."""
        import torch

        out = self._sched.step(torch.from_numpy(np.ascontiguousarray(model_output, dtype=np.float32)), int(t),
                               torch.from_numpy(np.ascontiguousarray(sample, dtype=np.float32))).prev_sample
        return out.numpy()


def make_sampler(kind: str, steps: int, num_train_timesteps: int, beta_schedule: str,
                 prediction_type: str) -> Scheduler:
    """'ddim' (NumPy, no torch) or 'dpm' (diffusers' DPM-Solver++ 2M, through torch) for a model's noise schedule."""
    if kind == "ddim":
        return DDIM(steps, num_train_timesteps, beta_schedule, prediction_type)
    if kind == "dpm":
        if not 1 <= int(steps) <= num_train_timesteps:
            raise InputError(f"steps must be in [1, {num_train_timesteps}], got {steps}")
        try:
            from diffusers import DPMSolverMultistepScheduler
        except ImportError:
            raise InputError("the 'dpm' scheduler needs diffusers and torch: pip install 'avatar-engine[train]' "
                             "(or use 'ddim')") from None

        return DiffusersScheduler(DPMSolverMultistepScheduler(
            num_train_timesteps=num_train_timesteps, beta_schedule=beta_schedule, prediction_type=prediction_type,
            algorithm_type="dpmsolver++", solver_order=2), steps)
    raise InputError(f"scheduler must be one of {', '.join(SCHEDULERS)}, got {kind!r}")
