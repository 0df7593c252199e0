"""The headless OpenGL context (moderngl over EGL, no display) and whether this process has opened one."""

from __future__ import annotations

from typing import Any

from avatar.errors import AvatarError

_GL_OPENED = False  # set once this process opens a GL context: forked render workers could not share it


def gl_context_opened() -> bool:
    """Whether this process has opened a GL context (then forked render workers are not safe)."""
    return _GL_OPENED


def create_context() -> Any:  # a moderngl.Context
    """A standalone OpenGL 3.3 context over EGL; AvatarError naming the packages when the driver is missing."""
    import moderngl

    global _GL_OPENED
    _GL_OPENED = True
    try:
        return moderngl.create_context(standalone=True, backend="egl", require=330)
    except Exception as exc:  # noqa: BLE001 - EGL/driver errors come in many types
        raise AvatarError(f"cannot create a headless OpenGL context (EGL): {exc}; install Mesa's EGL "
                          "(libegl1, libgl1-mesa-dri)") from None
