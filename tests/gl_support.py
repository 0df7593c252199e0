"""Shared by the render tests: whether a headless OpenGL (EGL) context can be made on this machine."""

from __future__ import annotations

import functools

import pytest


@functools.cache
def egl_ok() -> bool:
    """True when moderngl can open a standalone EGL context (checked once per test session)."""
    try:
        import moderngl

        moderngl.create_context(standalone=True, backend="egl").release()
        return True
    except Exception:  # noqa: BLE001 - no EGL (or no moderngl) here
        return False


needs_gl = pytest.mark.skipif(not egl_ok(), reason="no headless OpenGL (EGL) here")
