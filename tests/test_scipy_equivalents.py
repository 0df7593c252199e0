"""The numpy stand-ins for scipy functions on the `avatar say` path give scipy's results on random inputs.

They exist only because importing scipy costs a new process 0.3-1.5 s (tests/test_cold_imports.py keeps them
off that path); here each is compared with the scipy function it replaces.
"""

from __future__ import annotations

import numpy as np
import pytest

from avatar.audio import import_pyworld, resample, resample_poly
from avatar.rig import rotations as rot
from avatar.gesture.prosody import binary_closing, binary_opening, find_peaks, median_filter
from avatar.render.mesh import incidence_matrix, vertex_normals
from avatar.signal import gaussian_smooth


# ------------------------------------------------------------------------------------------------ rotations
def _canonical(q: np.ndarray) -> np.ndarray:
    return np.where(q[..., 3:4] < 0, -q, q)


def test_quaternion_functions_match_scipy_rotation() -> None:
    from scipy.spatial.transform import Rotation

    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(500, 4)), rng.normal(size=(500, 4))  # not unit: scipy normalises, so must we
    v = rng.normal(size=(500, 3))
    assert np.allclose(rot.quat_mul(a, b), (Rotation.from_quat(a) * Rotation.from_quat(b)).as_quat(), atol=1e-12)
    assert np.allclose(rot.quat_apply(a, v), Rotation.from_quat(a).apply(v), atol=1e-12)
    assert np.allclose(rot.quat_to_matrix(a), Rotation.from_quat(a).as_matrix(), atol=1e-12)
    # Broadcasting and leading shapes are kept.
    assert rot.quat_mul(a[:1], b.reshape(5, 100, 4)).shape == (5, 100, 4)
    assert np.allclose(rot.quat_apply(a[0], v), Rotation.from_quat(a[0]).apply(v), atol=1e-12)
    assert rot.quat_to_matrix(a.reshape(2, 250, 4)).shape == (2, 250, 3, 3)
    with pytest.raises(ValueError):  # noqa: PT011
        rot.quat_to_matrix(np.zeros(4))


@pytest.mark.parametrize("order", ["XYZ", "XZY", "YXZ", "YZX", "ZXY", "ZYX"])
def test_euler_conversions_match_scipy(order: str) -> None:
    import warnings

    from scipy.spatial.transform import Rotation

    rng = np.random.default_rng(4)
    q = rng.normal(size=(500, 4))
    ours = rot.quat_to_euler(q, order)
    assert np.allclose(ours, Rotation.from_quat(q).as_euler(order, degrees=True), atol=1e-7)
    ang = rng.uniform(-180, 180, size=(500, 3)) * np.array([1.0, 0.5, 1.0])
    assert np.allclose(_canonical(rot.euler_to_quat(ang, order)),
                       _canonical(Rotation.from_euler(order, ang, degrees=True).as_quat()), atol=1e-12)
    # Gimbal lock (middle angle +-90): the same angles as scipy (last one 0), and they give the rotation back.
    lock = np.column_stack([rng.uniform(-170, 170, 20), np.repeat([90.0, -90.0], 10), rng.uniform(-170, 170, 20)])
    ql = Rotation.from_euler(order, lock, degrees=True).as_quat()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # scipy warns of the gimbal lock
        theirs = Rotation.from_quat(ql).as_euler(order, degrees=True)
    ours = rot.quat_to_euler(ql, order)
    assert np.allclose(ours, theirs, atol=1e-6) and np.allclose(ours[:, 2], 0.0)
    assert np.allclose(_canonical(rot.euler_to_quat(ours, order)), _canonical(ql), atol=1e-9)


def test_euler_conversions_refuse_bad_input() -> None:
    with pytest.raises(ValueError, match="zero norm"):
        rot.quat_to_euler(np.zeros(4), "ZXY")  # as scipy's Rotation.from_quat refuses it
    for order in ("ZXX", "ZX", "ABC"):
        with pytest.raises(ValueError, match="permutation of XYZ"):
            rot.quat_to_euler(np.array([0.0, 0.0, 0.0, 1.0]), order)
        with pytest.raises(ValueError, match="permutation of XYZ"):
            rot.euler_to_quat(np.zeros(3), order)
    with pytest.raises(ValueError, match="trailing axis"):
        rot.euler_to_quat(np.zeros(4), "ZXY")


@pytest.mark.parametrize("noise", [0.0, 1e-13, 1e-6, 1e-2, 0.3])
def test_matrix_to_quat_matches_scipy(noise: float) -> None:
    from scipy.spatial.transform import Rotation

    rng = np.random.default_rng(1)
    m = Rotation.from_quat(rng.normal(size=(400, 4))).as_matrix() + noise * rng.normal(size=(400, 3, 3))
    m = m[np.linalg.det(m) > 0]
    assert np.allclose(rot.matrix_to_quat(m), _canonical(Rotation.from_matrix(m).as_quat()), atol=1e-10)


def test_matrix_to_quat_special_cases_match_scipy() -> None:
    from scipy.spatial.transform import Rotation

    rng = np.random.default_rng(2)
    scaled = Rotation.from_quat(rng.normal(size=(100, 4))).as_matrix() * rng.uniform(0.2, 3.0, size=(100, 1, 3))
    half_turns = np.array([np.diag(d) for d in ([1.0, -1, -1], [-1.0, 1, -1], [-1.0, -1, 1], [1.0, 1, 1])])
    for m in (scaled, half_turns):
        assert np.allclose(rot.matrix_to_quat(m), _canonical(Rotation.from_matrix(m).as_quat()), atol=1e-10)
    with pytest.raises(ValueError, match="determinant"):
        rot.matrix_to_quat(np.diag([1.0, 1.0, -1.0]))


# ----------------------------------------------------------------------------------------------- resampling
@pytest.mark.parametrize("up,down", [(320, 441), (320, 147), (441, 320), (1, 3), (2, 1), (3, 7), (147, 160),
                                     (4, 6), (999, 1000)])
def test_resample_poly_matches_scipy(up: int, down: int) -> None:
    from scipy.signal import resample_poly as scipy_resample_poly

    rng = np.random.default_rng(up * 1000 + down)
    for n in (1, 2, 5, 33, 1000, 12345):
        x = rng.normal(size=n)
        ours, theirs = resample_poly(x, up, down), scipy_resample_poly(x, up, down)
        assert ours.shape == theirs.shape
        assert np.allclose(ours, theirs, rtol=0, atol=1e-12)


def test_resample_matches_scipy_at_the_pipeline_rates() -> None:
    from fractions import Fraction

    from scipy.signal import resample_poly as scipy_resample_poly

    x = (np.random.default_rng(3).normal(size=22050 * 2) * 0.3).astype(np.float32)
    for target in (16000, 48000, 44100):
        f = Fraction(target, 22050)
        theirs = scipy_resample_poly(x.astype(np.float64), f.numerator, f.denominator).astype(np.float32)
        ours = resample(x, 22050, target)
        assert ours.dtype == np.float32 and ours.shape == theirs.shape
        assert np.allclose(ours, theirs, rtol=0, atol=1e-6)


# ---------------------------------------------------------------------------------------- peaks and filters
def _signals(rng: np.random.Generator, count: int):
    for i in range(count):
        n = int(rng.integers(0, 250))
        kind = i % 4
        if kind == 0:
            yield rng.normal(size=n)
        elif kind == 1:  # plateaus and ties
            yield rng.integers(0, 4, size=n).astype(np.float64)
        elif kind == 2:
            yield np.cumsum(rng.normal(size=n))
        else:
            yield np.round(np.sin(np.arange(n) / rng.uniform(1, 10)) * 3) + rng.integers(0, 2, size=n)


@pytest.mark.filterwarnings("ignore")  # scipy warns about zero prominences; the values are what is compared
def test_find_peaks_matches_scipy() -> None:
    from scipy.signal import find_peaks as scipy_find_peaks

    rng = np.random.default_rng(4)
    for x in _signals(rng, 600):
        for kw in ({}, {"height": rng.normal()}, {"distance": rng.uniform(1, 20)}, {"prominence": rng.uniform(0, 2)},
                   {"prominence": rng.uniform(0, 2), "wlen": rng.uniform(1.5, 40)},
                   {"height": 0.1, "distance": int(rng.integers(1, 10)), "prominence": 0.5},
                   {"prominence": 1.0, "distance": 20, "wlen": int(rng.integers(2, 100))}):
            ours, ours_props = find_peaks(x, **kw)
            theirs, their_props = scipy_find_peaks(x, **kw)
            assert np.array_equal(ours, theirs), kw
            assert ours_props.keys() == their_props.keys()
            for key, value in ours_props.items():
                assert np.array_equal(value, their_props[key]), (kw, key)


def test_morphology_and_median_match_scipy_ndimage() -> None:
    from scipy import ndimage

    rng = np.random.default_rng(5)
    for _ in range(1500):
        n, size = int(rng.integers(0, 120)), int(rng.integers(1, 20))
        x = rng.random(n) < rng.uniform(0.1, 0.95)
        assert np.array_equal(binary_closing(x, size), ndimage.binary_closing(x, np.ones(size)))
        assert np.array_equal(binary_opening(x, size), ndimage.binary_opening(x, np.ones(size)))
        if n:
            odd = 2 * int(rng.integers(0, 30)) + 1
            y = rng.normal(size=n)
            assert np.array_equal(median_filter(y, odd), ndimage.median_filter(y, size=odd, mode="nearest"))


# ---------------------------------------------------------------------------------------------- mesh normals
def test_incidence_products_match_scipy_sparse() -> None:
    from scipy.sparse import csr_matrix

    rng = np.random.default_rng(6)
    n, f = 300, 500
    proper = np.array([rng.choice(n, 3, replace=False) for _ in range(f)])
    degenerate = rng.integers(0, n, size=(f, 3))  # some triangles repeat a corner
    for tris in (proper, degenerate):
        sparse = csr_matrix((np.ones(3 * f, dtype=np.float32), (tris.reshape(-1), np.repeat(np.arange(f), 3))),
                            shape=(n, f))
        inc = incidence_matrix(n, tris)
        for dtype in (np.float32, np.float64):
            x = rng.normal(size=(f, 3)).astype(dtype)
            ours, theirs = inc @ x, np.asarray(sparse @ x)
            assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
            if tris is proper:  # the same additions in the same order
                assert np.array_equal(ours, theirs) and np.array_equal(inc @ x[:, 0], sparse @ x[:, 0])
            else:  # scipy adds a repeated corner's entries first (x + x), we add x twice: rounding differs
                assert np.allclose(ours, theirs, rtol=1e-6, atol=1e-6)
    pos = rng.normal(size=(n, 3)).astype(np.float32)
    assert np.array_equal(vertex_normals(pos, proper, incidence_matrix(n, proper)), vertex_normals(pos, proper))


# -------------------------------------------------------------------------------------------------- pyworld
def test_pyworld_is_imported_without_pkg_resources() -> None:
    import subprocess
    import sys

    code = ("import sys; from avatar.audio import import_pyworld; pw = import_pyworld(); "
            "import importlib.metadata as m; assert pw.__version__ == m.version('pyworld'), pw.__version__; "
            "assert 'pkg_resources' not in sys.modules; assert callable(pw.dio)")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    assert import_pyworld() is sys.modules["pyworld"]


def test_gaussian_smooth_matches_gaussian_filter1d() -> None:
    from scipy.ndimage import gaussian_filter1d

    rng = np.random.default_rng(3)
    for n, sigma in ((1, 0.5), (7, 2.0), (200, 0.5), (200, 3.7), (500, 12.5)):
        x = rng.normal(size=n)
        assert np.allclose(gaussian_smooth(x, sigma), gaussian_filter1d(x, sigma, mode="nearest"), atol=1e-12)
