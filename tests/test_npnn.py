"""erf and the exact GELU in avatar.npnn (NumPy has no erf of its own), used by the denoisers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from avatar.npnn import erf, gelu_

XS = np.linspace(-6.0, 6.0, 120_001)
ERF = np.array([math.erf(x) for x in XS])


def test_erf_matches_math_erf_in_float64() -> None:
    assert np.abs(erf(XS) - ERF).max() < 1e-7


def test_erf_in_float32_is_within_a_few_ulps() -> None:
    got = erf(XS.astype(np.float32))
    assert got.dtype == np.float32
    assert np.abs(got.astype(np.float64) - ERF).max() < 1e-6


def test_erf_is_odd_bounded_and_takes_any_input() -> None:
    np.testing.assert_array_equal(erf(-XS), -erf(XS))
    big = erf(np.array([-1e30, -50.0, 50.0, 1e30, np.inf, -np.inf]))
    np.testing.assert_allclose(big, np.sign(big) * 1.0, atol=1e-7)
    np.testing.assert_array_equal(np.sign(big), [-1, -1, 1, 1, 1, -1])
    assert erf(np.array([0, 1, 2])).dtype == np.float64  # integers are computed in float64
    assert np.isnan(erf(np.array([np.nan])))[0]


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-7), (np.float32, 2e-6)])
def test_gelu_is_the_exact_erf_gelu_with_its_bias(dtype, tol) -> None:
    x = np.linspace(-8.0, 8.0, 300 * 1000).reshape(300, 1000).astype(dtype)  # several blocks of rows
    bias = np.linspace(-0.5, 0.5, x.shape[1]).astype(dtype)
    z = x.astype(np.float64) + bias
    want = 0.5 * z * (1.0 + np.vectorize(math.erf, otypes=[np.float64])(z / math.sqrt(2.0)))
    got = gelu_(x.copy(), bias)
    assert got.dtype == dtype
    assert np.abs(got - want).max() < tol * max(1.0, np.abs(z).max())
