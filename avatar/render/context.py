"""The headless OpenGL context (moderngl over EGL, no display) and whether this process has opened one."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from avatar.errors import AvatarError

log = logging.getLogger(__name__)

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


_GL_TEXTURE_2D, _GL_RGBA8, _GL_RGBA, _GL_UNSIGNED_BYTE = 0x0DE1, 0x8058, 0x1908, 0x1401
_tex_image_2d: Any = None  # glTexImage2D through EGL, looked up once (False: not available)


def _gl_tex_image_2d() -> Any:
    """glTexImage2D of the current EGL context's driver (ctypes), or None where EGL does not give it."""
    global _tex_image_2d
    if _tex_image_2d is None:
        import ctypes
        import ctypes.util

        _tex_image_2d = False
        addr = None
        egl = None
        # The soname the EGL context has loaded already; find_library (it runs ldconfig) only when that fails.
        for name in ("libEGL.so.1", "find"):
            try:
                egl = ctypes.CDLL(name if name != "find" else ctypes.util.find_library("EGL") or "libEGL.so")
                break
            except OSError:
                continue
        if egl is not None and hasattr(egl, "eglGetProcAddress"):
            egl.eglGetProcAddress.restype = ctypes.c_void_p
            egl.eglGetProcAddress.argtypes = [ctypes.c_char_p]
            addr = egl.eglGetProcAddress(b"glTexImage2D")
        if addr:
            u, i = ctypes.c_uint, ctypes.c_int
            _tex_image_2d = ctypes.CFUNCTYPE(None, u, i, i, i, i, i, u, u, ctypes.c_void_p)(addr)
    return _tex_image_2d or None


def define_mip_levels(texture: Any, levels: list[np.ndarray]) -> bool:
    """Define mipmap levels 1, 2, ... of an RGBA8 moderngl texture from `levels` (avatar.render.texture.mip_levels);
    False (nothing done) where glTexImage2D cannot be reached, so the caller builds them with build_mipmaps().

    moderngl defines levels only through glGenerateMipmap (it refuses writes to any other level), hence one raw GL
    call per level, on the texture bound to unit 0 of the current context."""
    fn = _gl_tex_image_2d()
    if fn is None or texture.components != 4 or texture.dtype != "f1":
        return False
    texture.ctx.error  # noqa: B018 - reading it clears an earlier error, so the check below is about these calls
    texture.use(0)
    for k, im in enumerate(levels, start=1):
        im = np.ascontiguousarray(im, dtype=np.uint8)  # rows of 4-byte texels: any unpack alignment reads them
        fn(_GL_TEXTURE_2D, k, _GL_RGBA8, im.shape[1], im.shape[0], 0, _GL_RGBA, _GL_UNSIGNED_BYTE, im.ctypes.data)
    error = texture.ctx.error
    if error != "GL_NO_ERROR":
        log.debug("defining mipmap levels failed (%s); building them in GL", error)
        return False
    return True
