"""Small signal helpers with scipy's results, in NumPy: importing scipy costs a new process 0.3-1.5 s, and the
`avatar say` path must not pay it (tests/test_cold_imports.py; each helper is compared with scipy in
tests/test_scipy_equivalents.py). Shared by the stages (face, gesture), so it lives in the base package.
"""

from __future__ import annotations

import math

import numpy as np


def gaussian_smooth(x: np.ndarray, sigma: float) -> np.ndarray:
    """scipy.ndimage.gaussian_filter1d(x, sigma, mode="nearest") for 1-D x (truncate 4.0)."""
    x = np.asarray(x, dtype=np.float64)
    if sigma <= 0 or x.size == 0:
        return x.copy()
    r = int(4.0 * float(sigma) + 0.5)
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / float(sigma)) ** 2)
    k /= k.sum()
    return np.convolve(np.pad(x, r, mode="edge"), k, mode="valid")


def find_peaks(x: np.ndarray, height: float | None = None, distance: float | None = None,
               prominence: float | None = None, wlen: float | None = None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """scipy.signal.find_peaks(x, height=, distance=, prominence=, wlen=) with scalar lower bounds only.

    The steps and tie-breaks are scipy's: local maxima (a plateau counts once, at its middle, rounded down), then
    height, then distance (higher peaks first, in np.argsort's order), then prominence within `wlen` samples.
    Returns the peaks and "peak_heights" and/or "prominences", "left_bases", "right_bases" as scipy does.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError("`x` must be a 1-D array")
    if distance is not None and distance < 1:
        raise ValueError("`distance` must be greater or equal to 1")
    dx = np.diff(x)
    change = np.flatnonzero(dx)  # where the value changes; a plateau is one step here
    top = np.flatnonzero((dx[change[:-1]] > 0) & (dx[change[1:]] < 0))  # a rise, then (after a plateau) a fall
    peaks = (change[top] + 1 + change[top + 1]) // 2
    props: dict[str, np.ndarray] = {}
    if height is not None:
        keep = x[peaks] >= height
        peaks, props["peak_heights"] = peaks[keep], x[peaks][keep]
    if distance is not None and peaks.size > 1:
        gap = math.ceil(distance)
        keep = np.ones(peaks.size, dtype=bool)
        pos = peaks.tolist()
        for j in np.argsort(x[peaks])[::-1].tolist():  # highest first
            if not keep[j]:
                continue
            k = j - 1
            while k >= 0 and pos[j] - pos[k] < gap:
                keep[k] = False
                k -= 1
            k = j + 1
            while k < len(pos) and pos[k] - pos[j] < gap:
                keep[k] = False
                k += 1
        peaks = peaks[keep]
        props = {key: v[keep] for key, v in props.items()}
    if prominence is not None:
        if wlen is not None and not wlen > 1:
            raise ValueError(f"`wlen` must be larger than 1, was {wlen}")
        reach = None if wlen is None else math.ceil(wlen) // 2
        bases = np.array([_bases(x, p, reach) for p in peaks.tolist()], dtype=np.intp).reshape(-1, 2)
        prom = x[peaks] - np.maximum(x[bases[:, 0]], x[bases[:, 1]])
        keep = prom >= prominence
        props.update(prominences=prom, left_bases=bases[:, 0], right_bases=bases[:, 1])
        peaks = peaks[keep]
        props = {key: v[keep] for key, v in props.items()}
    return peaks, props


def _bases(x: np.ndarray, p: int, reach: int | None) -> tuple[int, int]:
    """A peak's left and right bases as scipy defines them: the lowest point on each side before the signal rises
    above the peak (or the window of `reach` samples ends); of equal lows, the one nearest the peak."""
    lo, hi = (0, x.size - 1) if reach is None else (max(0, p - reach), min(x.size - 1, p + reach))
    left, right = _above(x, p, lo, -1), _above(x, p, hi, 1)
    left, right = lo if left is None else left + 1, hi if right is None else right - 1
    seg = x[left:p + 1]
    return left + seg.size - 1 - int(np.argmin(seg[::-1])), p + int(np.argmin(x[p:right + 1]))


def _above(x: np.ndarray, p: int, end: int, step: int) -> int | None:
    """The sample nearest to p towards `end` (inclusive, step -1 or 1) that is higher than x[p], or None. Searched
    in growing chunks, so the cost follows the distance found, as scipy's sample-by-sample walk does."""
    i, n = p, 16
    while (end - i) * step > 0:
        j = max(i - n, end) if step < 0 else min(i + n, end)
        above = np.flatnonzero((x[j:i] if step < 0 else x[i + 1:j + 1]) > x[p])
        if above.size:
            return j + int(above[-1]) if step < 0 else i + 1 + int(above[0])
        i, n = j, n * 2
    return None
