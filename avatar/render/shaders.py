"""The GLSL programs, kept as files in avatar/render/glsl/ (package data, so an installed wheel has them)."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources


@lru_cache(maxsize=None)
def shader(name: str) -> str:
    """The source of glsl/<name> (avatar.vert, avatar.frag, background.vert, background.frag, shadow.vert,
    shadow.frag, fxaa.frag)."""
    return resources.files("avatar.render").joinpath("glsl", name).read_text(encoding="utf-8")


def with_defines(source: str, *defines: str) -> str:
    """`source` with `#define NAME` lines after its #version line (one program variant per material kind)."""
    head = "".join(f"#define {d}\n" for d in defines)
    return source.replace("#version 330\n", "#version 330\n" + head, 1)
