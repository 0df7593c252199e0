"""The shipped avatars by name: `--avatar default-female` / `default-male` / `toon` (or any file path)."""

from __future__ import annotations

import os
from pathlib import Path

#: name -> file in weights/avatars (made by avatar.render.make_human; toon by avatar.render.make_default).
NAMED_AVATARS: dict[str, str] = {"default": "default.glb", "default-female": "default.glb",
                                 "default-male": "default-male.glb", "toon": "toon.glb"}


def avatar_dir() -> Path:
    """The folder of the shipped avatars (the model registry's `avatars`: weights/avatars by default)."""
    from avatar.weights import model_dir

    return model_dir("avatars")


def named_avatar(avatar: object) -> object:
    """A shipped avatar's path for its name (when no file of that name is in the working folder), else `avatar`
    unchanged."""
    if isinstance(avatar, (str, os.PathLike)):
        name = os.fspath(avatar)
        if name in NAMED_AVATARS and not Path(name).exists():
            return avatar_dir() / NAMED_AVATARS[name]
    return avatar
