"""Fonts for text drawn onto frames, with per-glyph fallback: any script and emoji, not boxes.

Pillow draws a run of text in one font; it has no fallback of its own. So a line is cut into runs by the first
font of FONT_CHAIN that has each character (read from the font's cmap with fontTools): DejaVu Sans (Latin,
Greek, Cyrillic, Arabic, Hebrew), then Noto Sans and Noto's per-script fonts (Debian's fonts-noto-core:
Devanagari, Bengali, Thai, ...), Noto Sans CJK (fonts-noto-cjk), and Noto Color Emoji (fonts-noto-color-emoji)
for emoji, whose ZWJ sequences, skin tones and flags stay one run (found with the `emoji` package) so that the
font's ligatures draw them as one picture. Combining marks, joiners and variation selectors stay with the
character before them. Each run is laid out by Pillow's raqm engine (shaping, Arabic joining, Indic conjuncts).
Fonts that are missing are skipped; with none at all, Pillow's bundled font draws what it can.
"""

from __future__ import annotations

import functools
import glob
import logging
import os
import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL import Image

log = logging.getLogger(__name__)

#: Folders searched for the fonts below (Debian's, then the local and the user's).
FONT_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts", os.path.expanduser("~/.local/share/fonts"))
#: Text fonts in order of preference, as file-name patterns; the first that has a character draws it.
TEXT_FONTS = ("DejaVuSans.ttf", "NotoSans-Regular.ttf", "NotoSansCJK-Regular.ttc", "NotoSansArabic-Regular.ttf",
              "NotoSans*-Regular.ttf", "NotoSansSymbols2-Regular.ttf", "NotoSansMath-Regular.ttf")
#: Colour emoji font: a bitmap font drawn at its one size (EMOJI_PX) and scaled.
EMOJI_FONT = "NotoColorEmoji.ttf"
EMOJI_PX = 109
#: Characters that belong to the character before them (besides combining marks).
_JOINING = {"\u200c", "\u200d", "\u20e3"} | {chr(c) for c in range(0xFE00, 0xFE10)} | \
    {chr(c) for c in range(0xE0020, 0xE0080)} | {chr(c) for c in range(0x1F3FB, 0x1F400)}


@functools.lru_cache(maxsize=None)
def _find(pattern: str) -> tuple[str, ...]:
    """Font files matching a file-name pattern in FONT_DIRS (sorted, first folder first)."""
    out: list[str] = []
    for folder in FONT_DIRS:
        out += sorted(glob.glob(os.path.join(folder, "**", pattern), recursive=True))
    return tuple(dict.fromkeys(out))


@functools.lru_cache(maxsize=1)
def font_chain() -> tuple[str, ...]:
    """The text font files in fallback order (each once)."""
    files: list[str] = []
    for pattern in TEXT_FONTS:
        files += [f for f in _find(pattern) if "Mono" not in f and "Display" not in f and "UI-" not in f]
    return tuple(dict.fromkeys(files))


@functools.lru_cache(maxsize=None)
def _cmap(path: str) -> frozenset[int]:
    """The code points a font file has glyphs for (empty when it cannot be read)."""
    try:
        from fontTools.ttLib import TTFont

        with TTFont(path, fontNumber=0, lazy=True) as f:
            return frozenset(f.getBestCmap() or {})
    except Exception as exc:  # noqa: BLE001 - a broken system font is skipped, not fatal
        log.warning("font %s skipped: %s", path, exc)
        return frozenset()


def font_for(ch: str) -> str | None:
    """The first font file of the chain that has `ch`, or None."""
    cp = ord(ch)
    for path in font_chain():
        if cp in _cmap(path):
            return path
    return None


def emoji_font() -> str | None:
    """The colour emoji font file, or None when it is not installed."""
    found = _find(EMOJI_FONT)
    return found[0] if found else None


@dataclass(frozen=True)
class Run:
    """A piece of a line drawn in one font: its text and font file (None: Pillow's own font)."""

    text: str
    font: str | None
    emoji: bool = False


def split_runs(text: str) -> list[Run]:
    """Cut text into runs of one font each, in logical order (see the module docstring)."""
    chain = font_chain()
    if chain and "\ufe0f" not in text and all(ord(ch) in _cmap(chain[0]) for ch in text):
        return [Run(text, chain[0])] if text else []  # the common case: one font, no emoji lookup (0.3 s less)
    import emoji as emoji_lib

    spans = {m["match_start"]: m["match_end"] for m in emoji_lib.emoji_list(text)} if emoji_font() else {}
    runs: list[Run] = []
    i = 0
    while i < len(text):
        if i in spans and ord(text[i]) in _cmap(emoji_font() or ""):
            runs.append(Run(text[i:spans[i]], emoji_font(), emoji=True))
            i = spans[i]
            continue
        ch = text[i]
        attached = runs and (ch in _JOINING or unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me",
                                                                                                        "Mc"))
        # Spaces, punctuation and digits stay in the run before them when its font has them ("你好。", "क, ख").
        neutral = runs and not runs[-1].emoji and unicodedata.category(ch)[0] in "PNZ" and (
            ch.isspace() or (runs[-1].font is not None and ord(ch) in _cmap(runs[-1].font)))
        if attached or neutral:
            runs[-1] = Run(runs[-1].text + ch, runs[-1].font, runs[-1].emoji)
        else:
            path = font_for(ch) if not ch.isspace() else (font_chain() or (None,))[0]
            if runs and not runs[-1].emoji and runs[-1].font == path:
                runs[-1] = Run(runs[-1].text + ch, path)
            else:
                runs.append(Run(ch, path))
        i += 1
    return runs


def _rtl(text: str) -> bool:
    """Whether the paragraph reads right to left (its first strong character is Arabic or Hebrew)."""
    for ch in text:
        kind = unicodedata.bidirectional(ch)
        if kind in ("R", "AL"):
            return True
        if kind == "L":
            return False
    return False


@functools.lru_cache(maxsize=32)
def _font(path: str | None, size: int):  # noqa: ANN202 - a PIL ImageFont
    from PIL import ImageFont

    if path is None:
        return ImageFont.load_default(size=size)
    return ImageFont.truetype(path, size)


@functools.lru_cache(maxsize=256)
def _emoji_image(text: str, size: int):  # noqa: ANN202 - a PIL.Image (RGBA), `size` px high
    from PIL import Image, ImageDraw

    font = _font(emoji_font(), EMOJI_PX)
    w = max(1, int(font.getlength(text)))
    img = Image.new("RGBA", (w, int(EMOJI_PX * 1.25)), (0, 0, 0, 0))
    ImageDraw.Draw(img).text((0, 0), text, font=font, embedded_color=True)
    k = size / EMOJI_PX
    return img.resize((max(1, round(img.width * k)), max(1, round(img.height * k))), Image.LANCZOS)


def line_width(text: str, size: int) -> int:
    """Width in pixels of one line drawn with draw_line at `size` px."""
    return sum(_run_width(r, size) for r in split_runs(text))


def _run_width(run: Run, size: int) -> int:
    if run.emoji:
        return _emoji_image(run.text, size).width
    return int(round(_font(run.font, size).getlength(run.text)))


def draw_line(img: Image.Image, xy: tuple[int, int], text: str, size: int, fill: tuple[int, int, int, int]) -> None:
    """Draw one line on a PIL RGBA image with its top-left at xy, each run in its own font (see split_runs)."""
    from PIL import ImageDraw

    draw = ImageDraw.Draw(img)
    x, y = xy
    baseline = y + int(round(size * 0.95))
    runs = split_runs(text)
    for run in (reversed(runs) if _rtl(text) else runs):
        if run.emoji:
            pic = _emoji_image(run.text, size)
            img.alpha_composite(pic, (x, max(0, baseline - int(round(size * 0.92)))))
            x += pic.width
            continue
        font = _font(run.font, size)
        draw.text((x, baseline), run.text, font=font, fill=fill, anchor="ls")
        x += _run_width(run, size)
