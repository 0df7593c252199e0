"""Avatars by name or path: the shipped ones (`--avatar default-female` / `default-male` / `toon`), the default, and
one parsed Avatar per file and version, cached for a warm process (the app, batch workers)."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from avatar.errors import AvatarError

from .avatar_file import Avatar, check_avatar_file, load_avatar

#: name -> file in weights/avatars (made by avatar.render.make_human; toon by avatar.render.make_default).
NAMED_AVATARS: dict[str, str] = {"default": "default.glb", "default-female": "default.glb",
                                 "default-male": "default-male.glb", "toon": "toon.glb",
                                 "default-female.vrm": "default-female.vrm", "default-male.vrm": "default-male.vrm"}


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


def default_avatar_path() -> Path:
    """The shipped default avatar (the registry's `default_avatar()`: weights/avatars/default.glb)."""
    from avatar.weights import default_avatar

    return default_avatar()


def avatar_source(avatar: Avatar | str | os.PathLike[str] | None) -> Avatar | Path:
    """An Avatar as is, else the path of the avatar's file after the checks that need no parsing (it exists, its
    size, suffix and glTF header): for a render pool, whose first worker then reads the file. A shipped avatar's
    name (`default-male`, `toon`; avatar.render.avatars) stands for its file."""
    found = _avatar_or_path(avatar)
    if isinstance(found, Path):
        check_avatar_file(found)
    return found


def _avatar_or_path(avatar: Avatar | str | os.PathLike[str] | None) -> Avatar | Path:
    """An Avatar as is, else the path a name, a path or None (the default avatar, which must exist) stands for."""
    avatar = named_avatar(avatar)
    if isinstance(avatar, Avatar):
        return avatar
    path = default_avatar_path() if avatar is None else Path(avatar)
    if avatar is None and not path.is_file():
        raise AvatarError(f"the default avatar is missing: run python -m avatar.render.make_default --out {path}")
    return path


def resolve_avatar(avatar: Avatar | str | os.PathLike[str] | None) -> Avatar:
    """An Avatar from an Avatar, a .glb/.gltf/.vrm path, a shipped avatar's name, or None (the default avatar)."""
    path = _avatar_or_path(avatar)
    if isinstance(path, Avatar):
        return path
    try:
        st = path.stat()
    except OSError:
        return load_avatar(path)  # let the loader say what is wrong with the path
    return _load_cached(str(path.resolve()), st.st_mtime_ns, st.st_size)


@lru_cache(maxsize=4)
def _load_cached(path: str, mtime_ns: int, size: int) -> Avatar:
    """One parse per avatar file and version: reading the default .glb takes about 0.03 s (avatar.gltf.document;
    0.3-0.45 s with pygltflib's own decoder), and a large user avatar much more, paid by every video a warm process
    (the app, batch workers) makes otherwise. Nothing downstream changes an Avatar (the .glb
    export deep-copies its glTF)."""
    return load_avatar(path)
