"""Expression wrinkles: a baked crease map whose channels are blended in by the face's ARKit weights.

Game engines show the lines a face makes when its muscles bunch the skin (forehead lines, frown lines, the
nose's "bunny lines", crow's feet, the nasolabial furrow) with wrinkle maps: textures faded in per region by the
blendshape weights that cause them (e.g. Unreal's MetaHuman wrinkle maps, Jimenez et al. 2011 "Practical and
realistic facial wrinkles animation"). The mesh alone cannot: at MakeHuman's ~6 mm vertex spacing a crease is
either missing or a fold that turns the skin over.

The map is an RGBA image in the skin's uv layout, one crease family per channel (0 = smooth skin, 1 = the
bottom of a groove), drawn here in 3-D on the rest face from its landmarks (eyes, brows, nose, mouth corners),
with FACS placement (Ekman, Friesen & Hager 2002: AU1+2 horizontal forehead furrows, AU4 vertical glabellar
lines and the procerus' transverse line at the nasal root, AU9 wrinkles along the sides and root of the nose,
AU6 crow's feet and the infraorbital furrow, AU12/AU10 a deeper nasolabial furrow). `WRINKLE_DRIVERS` says
which ARKit shapes fade each channel in; the renderer shades the grooves as a bump (normal from the map's
screen-space gradient) plus a little occlusion, per side of the face.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

#: channel order of the map (R, G, B, A).
WRINKLE_CHANNELS = ("forehead", "glabella", "nose", "smile")
#: ARKit shape -> strength it adds to each channel (R, G, B, A) on its own side (unsided shapes: both sides), and a
#: fifth value: its strength for the forehead lines beyond 2-4 cm from the midline (the R channel's lateral part).
#: AU1 alone lines the middle of the forehead, AU2 its sides (Ekman & Friesen: in sadness the lines are in the
#: centre only, in surprise they run across).
WRINKLE_DRIVERS: dict[str, tuple[float, float, float, float, float]] = {
    "browInnerUp": (1.0, 0.0, 0.0, 0.0, 0.15),
    "browOuterUpLeft": (0.25, 0.0, 0.0, 0.0, 1.0), "browOuterUpRight": (0.25, 0.0, 0.0, 0.0, 1.0),
    "browDownLeft": (0.0, 1.0, 0.0, 0.0, 0.0), "browDownRight": (0.0, 1.0, 0.0, 0.0, 0.0),
    "noseSneerLeft": (0.0, 0.5, 1.0, 0.0, 0.0), "noseSneerRight": (0.0, 0.5, 1.0, 0.0, 0.0),
    "mouthUpperUpLeft": (0.0, 0.0, 0.45, 0.0, 0.0), "mouthUpperUpRight": (0.0, 0.0, 0.45, 0.0, 0.0),
    "cheekSquintLeft": (0.0, 0.0, 0.0, 1.0, 0.0), "cheekSquintRight": (0.0, 0.0, 0.0, 1.0, 0.0),
    "mouthSmileLeft": (0.0, 0.0, 0.0, 0.6, 0.0), "mouthSmileRight": (0.0, 0.0, 0.0, 0.6, 0.0),
    "eyeSquintLeft": (0.0, 0.0, 0.0, 0.15, 0.0), "eyeSquintRight": (0.0, 0.0, 0.0, 0.15, 0.0),
}
#: where the forehead lines turn from their medial to their lateral drivers: distance from the midline (m).
FOREHEAD_LATERAL = (0.02, 0.04)


def _smoothstep(e0: float, e1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _segment(px: np.ndarray, py: np.ndarray, a: tuple[float, float], b: tuple[float, float], width: float,
             taper: float = 0.25) -> np.ndarray:
    """A groove along the segment a-b (front-view coordinates, m): Gaussian across, tapered at both ends."""
    ax, ay = a
    dx, dy = b[0] - ax, b[1] - ay
    length2 = dx * dx + dy * dy
    t = np.clip(((px - ax) * dx + (py - ay) * dy) / length2, 0.0, 1.0)
    d2 = (px - ax - t * dx) ** 2 + (py - ay - t * dy) ** 2
    ends = _smoothstep(0.0, taper, t) * _smoothstep(1.0, 1.0 - taper, t) if taper > 0 else 1.0
    return np.exp(-d2 / (width * width)) * ends


def _curve(px: np.ndarray, py: np.ndarray, xs: np.ndarray, ys: np.ndarray, width: float) -> np.ndarray:
    """A groove along a polyline (tapered at its ends)."""
    out = np.zeros_like(px)
    n = len(xs) - 1
    for k in range(n):
        g = _segment(px, py, (xs[k], ys[k]), (xs[k + 1], ys[k + 1]), width, taper=0.0)
        fade = min(1.0, (k + 0.5) / (0.3 * n)) * min(1.0, (n - k - 0.5) / (0.3 * n))
        out = np.maximum(out, g * fade)
    return out


def wrinkle_map(pos: np.ndarray, cover: np.ndarray, landmarks: dict[str, np.ndarray]) -> np.ndarray:
    """The crease channels [S, S, 4] in [0, 1] for texels at rest positions `pos` [S, S, 3] (where `cover`).

    landmarks: leftEye/rightEye centres, eye_radius ([r]), mouthLeft/mouthRight corners, noseTip (m, the rest
    pose; +x is the avatar's left, +z its front)."""
    el, er = landmarks["leftEye"], landmarks["rightEye"]
    r = float(landmarks["eye_radius"][0])
    mid = (el + er) / 2
    x = pos[..., 0] - mid[0]
    y = pos[..., 1] - mid[1]  # 0 on the eyes' centre line
    front = cover & (pos[..., 2] > mid[2] - 1.2 * r)  # the face, not the sides of the head
    out = np.zeros(pos.shape[:2] + (4,))
    ax = np.abs(x)
    brow_top = r * 1.9  # above the painted brows' upper edge
    # R: horizontal forehead furrows, gently following the brows' arch, broken into wavy pieces.
    fore = np.zeros_like(x)
    for k, (h, depth) in enumerate(((0.011, 0.8), (0.019, 1.0), (0.027, 0.9), (0.035, 0.6))):
        yl = brow_top + h - 0.05 * x * x / 0.05 + 0.0008 * np.sin(x * 140.0 + k * 1.7)
        pieces = 0.55 + 0.45 * np.sin(x * (90.0 + 17.0 * k) + 2.1 * k) ** 2
        fore = np.maximum(fore, depth * pieces * np.exp(-((y - yl) / 0.0011) ** 2))
    out[..., 0] = fore * _smoothstep(0.058, 0.040, ax)
    # G: the frown lines, a main and a fainter pair a little outside the midline, slightly apart upwards, and
    # the procerus' transverse line across the nasal root.
    gl = np.zeros_like(x)
    for s in (-1.0, 1.0):
        gl = np.maximum(gl, _segment(x, y, (s * 0.0045, 0.5 * r), (s * 0.0068, brow_top + 0.014), 0.0010))
        gl = np.maximum(gl, 0.7 * _segment(x, y, (s * 0.0095, 0.8 * r), (s * 0.0120, brow_top + 0.006), 0.0009))
    gl = np.maximum(gl, 0.55 * _segment(x, y, (-0.0075, 0.05 * r), (0.0075, 0.05 * r), 0.0010, taper=0.35))
    out[..., 1] = gl
    # B: bunny lines down and out along the sides of the nose from its root, transverse lines on the bridge,
    # and the top of the nasolabial furrow beside the nose's wing.
    tip = landmarks["noseTip"] - mid
    nose = np.zeros_like(x)
    for s in (-1.0, 1.0):
        for k in range(3):
            y0 = -0.25 * r - k * 0.0032
            nose = np.maximum(nose, (1.0 - 0.15 * k) * _segment(x, y, (s * 0.0045, y0),
                                                                  (s * 0.0155, y0 - 0.0085), 0.0008))
    for k in range(3):
        yk = -0.15 * r - k * 0.0028
        nose = np.maximum(nose, 0.7 * _segment(x, y, (-0.0052, yk), (0.0052, yk), 0.0007, taper=0.3))
    # A: crow's feet fanning from each outer eye corner, the furrow under the lower lid, the nasolabial furrow.
    smile = np.zeros_like(x)
    for e, mouth, s in ((el, landmarks["mouthLeft"], 1.0), (er, landmarks["mouthRight"], -1.0)):
        cx, cy = e[0] - mid[0], e[1] - mid[1]
        kx, ky = cx + s * 1.05 * r, cy - 0.05 * r
        for ang, depth in ((-32.0, 0.8), (-12.0, 1.0), (8.0, 0.9), (27.0, 0.65)):
            a = np.deg2rad(ang)
            dx, dy = s * np.cos(a), np.sin(a)
            smile = np.maximum(smile, depth * _segment(x, y, (kx + 0.45 * r * dx, ky + 0.45 * r * dy),
                                                        (kx + 1.45 * r * dx, ky + 1.45 * r * dy), 0.0008))
        # the infraorbital furrow: an arc under the lower lid, from under the pupil to the outer corner
        t = np.linspace(-0.5, 1.0, 9)
        smile = np.maximum(smile, 0.7 * _curve(x, y, cx + s * t * r, cy - r * (1.25 - 0.12 * t * t), 0.0011))
        # the nasolabial furrow: from above the nose's wing, around it, to beside and below the mouth corner
        mx, my = mouth[0] - mid[0], mouth[1] - mid[1]
        wing = (s * (abs(tip[0]) + 0.019), tip[1] + 0.002)
        t = np.linspace(0.0, 1.0, 10)
        px_ = wing[0] + (mx + s * 0.011 - wing[0]) * t + s * 0.004 * np.sin(np.pi * t)
        py_ = wing[1] + (my - 0.008 - wing[1]) * t
        smile = np.maximum(smile, _curve(x, y, px_, py_, 0.0016))
        nose = np.maximum(nose, 0.6 * _curve(x, y, px_[:5], py_[:5], 0.0014))
    out[..., 2] = nose
    out[..., 3] = smile
    return out * front[..., None]


def wrinkle_png(channels: np.ndarray) -> bytes:
    """The crease channels [S, S, 4] in [0, 1] as an RGBA PNG."""
    from PIL import Image

    img = Image.fromarray(np.clip(np.round(channels * 255), 0, 255).astype(np.uint8), "RGBA")
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def driver_matrix(names: tuple[str, ...] | list[str], drivers: dict[str, list[float]] | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """([K, 5] left, [K, 5] right): how much each of the K named ARKit weights adds to each channel per side, and
    to the lateral forehead lines (a 4-value driver row counts for those as for the R channel)."""
    drivers = WRINKLE_DRIVERS if drivers is None else drivers
    left = np.zeros((len(names), 5))
    right = np.zeros((len(names), 5))
    for k, name in enumerate(names):
        row = drivers.get(name)
        if row is None:
            continue
        row = list(row) + ([row[0]] if len(row) == 4 else [])
        if not name.endswith("Right"):
            left[k] = row
        if not name.endswith("Left"):
            right[k] = row
    return left, right


@dataclass(frozen=True)
class WrinkleSpec:
    """A material's `extras.wrinkleMap` as a file carries it: the crease map's glTF texture, its drivers (ARKit
    shape -> 4 or 5 channel strengths) and where the forehead lines turn lateral (m from the midline)."""

    texture: int
    drivers: dict[str, list[float]]
    lateral: tuple[float, float] = FOREHEAD_LATERAL


def read_wrinkle_spec(extras: object, n_textures: int) -> WrinkleSpec | None:
    """The material extras' `wrinkleMap` (as avatar.render.make_human writes it), None when it has none; raises
    ValueError when it is malformed. The one reader of that extension, for the renderer and its texture loader."""
    spec = extras.get("wrinkleMap") if isinstance(extras, dict) else None
    if spec is None:
        return None
    try:
        t = spec["texture"]
        drivers = {str(k): [float(x) for x in v] for k, v in dict(spec["drivers"]).items()}
        lateral = tuple(float(x) for x in spec.get("foreheadLateral", FOREHEAD_LATERAL))
        tex_coord = int(spec.get("texCoord", 0))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ValueError(f"malformed wrinkleMap ({exc!r})") from None
    if not (isinstance(t, int) and 0 <= t < n_textures) or tex_coord != 0:
        raise ValueError("texture must index the file's textures and read TEXCOORD_0")
    if any(len(v) not in (4, 5) or not np.isfinite(v).all() for v in drivers.values()):
        raise ValueError("each driver needs 4 finite channel weights (and optionally the lateral forehead's)")
    if len(lateral) != 2 or not np.isfinite(lateral).all() or not 0.0 <= lateral[0] < lateral[1]:
        raise ValueError("foreheadLateral must be two distances from the midline, nearer first")
    return WrinkleSpec(texture=t, drivers=drivers, lateral=(lateral[0], lateral[1]))
