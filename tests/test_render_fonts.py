"""Subtitle text in any script and emoji (avatar.render.fonts): per-glyph font fallback, joiners kept."""

from __future__ import annotations

import os

import numpy as np
import pytest

from avatar.render import fonts
from avatar.render.overlay import subtitle_patch

NOTO = all(fonts._find(name) for name in ("NotoSans-Regular.ttf", "NotoSansCJK-Regular.ttc", "NotoColorEmoji.ttf"))
if not NOTO and os.environ.get("CI") != "true":  # ./dev installs them (Debian's fonts-noto-*); CI must have them
    pytest.skip("Noto fonts not installed (fonts-noto-core, fonts-noto-cjk, fonts-noto-color-emoji)",
                allow_module_level=True)


def _ink(patch: np.ndarray) -> np.ndarray:
    """The drawn glyph pixels of a subtitle patch (bright, over the dark box)."""
    return patch[..., :3].max(axis=-1) > 128


def test_runs_pick_a_font_per_script_and_keep_emoji_sequences_whole() -> None:
    runs = fonts.split_runs("Hi 你好。 नमस्ते 👩\u200d🚀👍🏽 می\u200cخواهم")
    by_text = {r.text.strip(): (os.path.basename(r.font or ""), r.emoji) for r in runs}
    assert by_text["Hi"] == ("DejaVuSans.ttf", False)
    assert by_text["你好。"] == ("NotoSansCJK-Regular.ttc", False)  # the full stop stays with its run
    assert by_text["नमस्ते"] == ("NotoSansDevanagari-Regular.ttf", False)  # combining vowel signs stay attached
    assert by_text["👩\u200d🚀"] == ("NotoColorEmoji.ttf", True)  # a ZWJ sequence is one run: one picture
    assert by_text["👍🏽"] == ("NotoColorEmoji.ttf", True)  # with its skin tone
    assert by_text["می\u200cخواهم"][0] == "DejaVuSans.ttf"  # the non-joiner is kept inside the word


def test_cjk_subtitles_draw_glyphs_not_boxes() -> None:
    # Without a CJK font every character is the same missing-glyph box.
    a, b = (_ink(subtitle_patch(ch, 512, 512)) for ch in ("你", "好"))
    assert a.sum() > 20 and b.sum() > 20
    assert a.shape != b.shape or (a != b).mean() > 0.02


def test_emoji_subtitles_draw_in_colour_and_a_zwj_sequence_as_one_picture() -> None:
    one = subtitle_patch("👩\u200d🚀", 512, 512)
    rgb = one[..., :3].astype(int)
    assert (np.abs(rgb[..., 0] - rgb[..., 2]) > 60).sum() > 50  # colour, not white boxes on grey
    single = subtitle_patch("👩", 512, 512)
    two = subtitle_patch("👩 🚀", 512, 512)
    assert one.shape[1] < (single.shape[1] + two.shape[1]) / 2  # as wide as one emoji, not two


def test_control_characters_still_never_draw() -> None:
    assert np.array_equal(subtitle_patch("Hi\u202e there\x00", 512, 512), subtitle_patch("Hi there", 512, 512))
