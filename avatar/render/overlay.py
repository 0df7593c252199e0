"""Things drawn over rendered frames: burnt-in subtitles and a small valence/arousal indicator (Pillow).

Text is rasterised once per subtitle (and the indicator's backdrop once per video size) into an RGBA patch,
then alpha-blended into each frame with numpy, so an overlay costs well under a millisecond per frame.
"""

from __future__ import annotations

import functools
import textwrap
import unicodedata

import numpy as np

Subtitle = tuple[float, float, str]  # (start s, end s, text)


@functools.lru_cache(maxsize=8)
def _font(size: int):  # noqa: ANN202 - PIL.ImageFont.FreeTypeFont
    """DejaVu Sans when the system has it (wide Unicode coverage), else Pillow's bundled font."""
    from PIL import ImageFont

    for name in ("DejaVuSans.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"):
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    return ImageFont.load_default(size=size)


def _blend(frame: np.ndarray, patch: np.ndarray, x: int, y: int) -> None:
    """Alpha-blend an RGBA patch into frame (in place) with its top-left corner at (x, y), clipped."""
    h, w = frame.shape[:2]
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + patch.shape[1], w), min(y + patch.shape[0], h)
    if x0 >= x1 or y0 >= y1:
        return
    p = patch[y0 - y:y1 - y, x0 - x:x1 - x].astype(np.float32)
    a = p[..., 3:4] / 255.0
    region = frame[y0:y1, x0:x1].astype(np.float32)
    frame[y0:y1, x0:x1] = (region * (1 - a) + p[..., :3] * a + 0.5).astype(np.uint8)


#: Format characters kept in subtitles: joiners (emoji sequences, Persian and Indic spelling) and emoji tags.
_KEEP_FORMAT = frozenset({"\u200c", "\u200d"} | {chr(c) for c in range(0xE0020, 0xE0080)})


def _drawable(text: str) -> str:
    """Control and format characters (NUL, escapes, bidi overrides) as spaces, except _KEEP_FORMAT."""
    return "".join(" " if unicodedata.category(ch)[0] == "C" and ch not in _KEEP_FORMAT else ch for ch in text)


@functools.lru_cache(maxsize=64)
def subtitle_patch(text: str, width: int, height: int) -> np.ndarray:
    """The subtitle box for `text` as RGBA uint8, sized for a width x height frame (wrapped, at most 3 lines);
    each character is drawn in the first installed font that has it (avatar.render.fonts)."""
    from PIL import Image, ImageDraw

    from avatar.render.fonts import draw_line, line_width

    text = _drawable(text)
    size = max(12, round(min(width, height) * 0.045))
    chars = max(12, int(width * 0.86 / (size * 0.55)))
    wrapped = textwrap.wrap(" ".join(text.split()), chars)
    lines = wrapped[:3] or [""]
    if len(wrapped) > 3:
        lines[-1] = lines[-1][: max(chars - 1, 1)].rstrip() + "…"
    widths = [line_width(ln, size) for ln in lines]
    line_h = int(size * 1.3)
    pad = max(4, size // 3)
    w = min(width, max(widths) + 2 * pad)
    h = line_h * len(lines) + 2 * pad
    img = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    ImageDraw.Draw(img).rounded_rectangle((0, 0, w - 1, h - 1), radius=pad, fill=(10, 12, 16, 165))
    for i, (ln, lw) in enumerate(zip(lines, widths)):
        draw_line(img, ((w - lw) // 2, pad + i * line_h), ln, size, (255, 255, 255, 255))
    return np.asarray(img, dtype=np.uint8)


def draw_subtitle(frame: np.ndarray, text: str) -> None:
    """Burn `text` into the bottom centre of the frame (in place)."""
    if not text.strip():
        return
    h, w = frame.shape[:2]
    patch = subtitle_patch(text, w, h)
    _blend(frame, patch, (w - patch.shape[1]) // 2, h - patch.shape[0] - max(6, h // 30))


def subtitle_at(subtitles: list[Subtitle], t: float) -> str:
    """The text shown at time t (the latest-starting subtitle that covers t), or ""."""
    shown = ""
    best = -1.0
    for start, end, text in subtitles:
        if start <= t < end and start >= best:
            shown, best = text, start
    return shown


@functools.lru_cache(maxsize=8)
def _vad_backdrop(size: int) -> np.ndarray:
    from PIL import Image, ImageDraw

    img = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    d.ellipse((1, 1, size - 2, size - 2), fill=(12, 14, 18, 130), outline=(255, 255, 255, 140), width=1)
    c = size // 2
    d.line((c, 4, c, size - 5), fill=(255, 255, 255, 70))  # arousal axis
    d.line((4, c, size - 5, c), fill=(255, 255, 255, 70))  # valence axis
    return np.asarray(img, dtype=np.uint8)


@functools.lru_cache(maxsize=64)
def _label_patch(label: str, size: int) -> np.ndarray:
    from PIL import Image, ImageDraw

    font = _font(size)
    probe = ImageDraw.Draw(Image.new("RGBA", (1, 1)))
    b = probe.textbbox((0, 0), label, font=font)
    img = Image.new("RGBA", (b[2] - b[0] + 8, b[3] - b[1] + 6), (12, 14, 18, 130))
    ImageDraw.Draw(img).text((4 - b[0], 3 - b[1]), label, font=font, fill=(255, 255, 255, 235))
    return np.asarray(img, dtype=np.uint8)


def _dot_colour(v: float, a: float) -> tuple[int, int, int]:
    """Warm for positive valence, blue for negative; brighter with arousal."""
    base = np.array([255, 196, 60]) if v >= 0 else np.array([90, 150, 255])
    grey = np.array([200, 200, 200])
    k = min(1.0, abs(v) * 1.5)
    c = grey * (1 - k) + base * k
    c = c * (0.75 + 0.25 * (a + 1) / 2)
    return tuple(int(x) for x in np.clip(c, 0, 255))


def draw_vad(frame: np.ndarray, vad: np.ndarray) -> None:
    """Draw a valence (x) / arousal (y) disc with a dot (radius grows with dominance) and the emotion label in
    the top-right corner (in place)."""
    from avatar.emotion.labels import label_for
    from avatar.types import VAD

    h, w = frame.shape[:2]
    v, a, d = (float(np.clip(x, -1.0, 1.0)) for x in np.asarray(vad, dtype=np.float64)[:3])
    size = max(32, round(min(w, h) * 0.14))
    margin = max(6, size // 8)
    x0, y0 = w - size - margin, margin
    _blend(frame, _vad_backdrop(size), x0, y0)
    r = max(2.0, size * (0.07 + 0.03 * (d + 1) / 2))
    cx, cy = x0 + size / 2 + v * (size / 2 - r - 2), y0 + size / 2 - a * (size / 2 - r - 2)
    bx0, by0 = max(int(cx - r) - 1, 0), max(int(cy - r) - 1, 0)
    bx1, by1 = min(int(cx + r) + 2, w), min(int(cy + r) + 2, h)
    yy, xx = np.ogrid[by0:by1, bx0:bx1]
    disc = ((xx - cx) ** 2 + (yy - cy) ** 2) <= r * r
    frame[by0:by1, bx0:bx1][disc] = _dot_colour(v, a)
    label, _ = label_for(VAD(v, a, d))
    patch = _label_patch(label, max(10, size // 5))
    _blend(frame, patch, x0 + (size - patch.shape[1]) // 2, y0 + size + 2)
