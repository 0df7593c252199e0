"""BLAS thread limits for NumPy work that shares the cores with render workers, and the exact GELU that the
emotion model's NumPy encoder still uses (the denoisers and the viseme network run in onnxruntime:
avatar.runtime).
"""

from __future__ import annotations

import contextlib
import functools
import math
from typing import Any

import numpy as np


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
