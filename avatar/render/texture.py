"""An avatar's textures: their bytes, a size check from the image header alone, and decoding for the renderer.

Decoding is where a small file turns big: a 450 kB PNG of 12000 x 12000 pixels is 576 MB as RGBA. So the header
(PNG IHDR, JPEG SOF: Pillow's `Image.open` reads nothing more) is checked when the avatar loads
(`check_textures`, InputError naming the image), and decoding (`decode_texture`) never makes more than
MAX_TEXTURE_PIXELS; textures over RENDER_TEXTURE_SIDE are scaled down for the renderer (JPEG already while it
decodes, with Pillow's draft mode), since a 512 px video never shows more detail than that.
"""

from __future__ import annotations

import base64
import importlib.util
import io
import logging
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from avatar.errors import InputError

from .wrinkles import read_wrinkle_spec

if TYPE_CHECKING:
    from pygltflib import GLTF2

log = logging.getLogger(__name__)

#: The most pixels a texture may decode to (4096 x 4096; RGBA 64 MiB). A JPEG up to 8 times larger on each side
#: is accepted, as it is decoded straight to an eighth of its size (Pillow's draft mode).
MAX_TEXTURE_PIXELS = 4096 * 4096
#: Textures are scaled down to at most this many pixels a side for the renderer (the avatar covers at most the
#: frame: at 512-1080 px a larger texture adds no detail, only memory and mipmap time).
RENDER_TEXTURE_SIDE = 2048
_JPEG_DRAFT = 8  # the largest reduction JPEG's draft mode decodes at


def image_bytes(gltf: GLTF2, index: int, folder: Path) -> bytes | Path | None:
    """The encoded image `index` of a glTF: its bytes (a buffer view or a data: URI), the path of a file beside the
    avatar (opened lazily: only its header is read to check it), or None when it has none."""
    img = gltf.images[index]
    if img.bufferView is not None:
        view = gltf.bufferViews[img.bufferView]
        start = view.byteOffset or 0
        return bytes(gltf.binary_blob()[start:start + view.byteLength])
    if img.uri and img.uri.startswith("data:"):
        return base64.b64decode(img.uri.split(",", 1)[1])
    if img.uri:
        from avatar.io import safe_join

        from .avatar_file import MAX_BYTES

        try:
            path = safe_join(folder, img.uri)  # refuses "../" escapes
        except InputError:
            raise InputError(f"image {index}: uri {img.uri!r} points outside the avatar's folder") from None
        if not path.is_file():
            return None
        if path.stat().st_size > MAX_BYTES:
            raise InputError(f"image {index} ({img.uri}) is over {MAX_BYTES // 2**20} MB")
        return path
    return None


def _open(data: bytes | Path):  # noqa: ANN202 - a lazily decoded PIL.Image
    from PIL import Image

    with warnings.catch_warnings():  # Pillow's own bomb warning: our limit is lower and is checked next
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        return Image.open(data if isinstance(data, Path) else io.BytesIO(data))


def _decoded_pixels(im) -> int:  # noqa: ANN001 - PIL.Image
    """Pixels `im` decodes to here: a JPEG's at its smallest draft scale when that is what decoding will use."""
    w, h = im.size
    if im.format == "JPEG" and w * h > MAX_TEXTURE_PIXELS:
        return -(-w // _JPEG_DRAFT) * -(-h // _JPEG_DRAFT)
    return w * h


def check_textures(gltf: GLTF2, name: str, folder: Path) -> None:
    """Refuse (InputError) an avatar whose material textures would decode to more than MAX_TEXTURE_PIXELS,
    from the image headers alone. An image Pillow cannot read is left to the renderer, which draws that
    material in its base colour with a warning."""
    if importlib.util.find_spec("PIL") is None:  # Pillow is optional: without it nothing is decoded
        return
    for index in _material_images(gltf):
        try:
            data = image_bytes(gltf, index, folder)
            if data is None:
                continue
            with _open(data) as im:
                w, h = im.size
                pixels = _decoded_pixels(im)
        except InputError:
            raise
        except Exception:  # noqa: BLE001 - a broken image: the renderer warns and uses the base colour
            continue
        if pixels > MAX_TEXTURE_PIXELS:
            side = int(MAX_TEXTURE_PIXELS ** 0.5)
            raise InputError(f"{name}: texture image {index} is {w} x {h} pixels ({w * h / 1e6:.0f} Mpx); textures "
                             f"are limited to {MAX_TEXTURE_PIXELS / 1e6:.1f} Mpx ({side} x {side}; a JPEG to "
                             f"{_JPEG_DRAFT} times that a side): scale it down and export again")


def texture_source(texture) -> int | None:  # noqa: ANN001 - pygltflib.Texture
    """The image a glTF texture shows: its EXT_texture_webp source (Pillow decodes WebP), else its own source."""
    ext = (texture.extensions or {}).get("EXT_texture_webp") if isinstance(texture.extensions, dict) else None
    if isinstance(ext, dict) and isinstance(ext.get("source"), int):
        return int(ext["source"])
    return texture.source


def _material_images(gltf: GLTF2) -> list[int]:
    """The images the renderer decodes: every material's base-colour texture source and wrinkle map."""
    out = []
    for m in gltf.materials or []:
        pbr = m.pbrMetallicRoughness
        t = pbr.baseColorTexture.index if pbr is not None and pbr.baseColorTexture is not None else None
        try:
            wm = read_wrinkle_spec(m.extras, len(gltf.textures or []))
        except ValueError:
            wm = None  # ignored when the meshes are read (avatar.render.mesh), so not decoded
        for tex in (t, wm.texture if wm is not None else None):
            if isinstance(tex, int) and 0 <= tex < len(gltf.textures or []):
                src = texture_source(gltf.textures[tex])
                if src is not None and 0 <= src < len(gltf.images or []) and src not in out:
                    out.append(src)
    return out


def decode_texture(data: bytes | Path, label: str = "texture") -> np.ndarray:
    """Decode an image (bytes or a file) to RGBA uint8 [H, W, 4], at most RENDER_TEXTURE_SIDE a side; InputError
    over MAX_TEXTURE_PIXELS (checked from the header, before decoding)."""
    im = _open(data)
    if _decoded_pixels(im) > MAX_TEXTURE_PIXELS:
        w, h = im.size
        im.close()
        raise InputError(f"{label} is {w} x {h} pixels; textures are limited to {MAX_TEXTURE_PIXELS / 1e6:.1f} Mpx")
    with im:
        if im.format == "JPEG":  # decode straight at a reduced scale: draft picks 1/2, 1/4 or 1/8
            im.draft("RGB", (RENDER_TEXTURE_SIDE, RENDER_TEXTURE_SIDE))
        if max(im.size) > RENDER_TEXTURE_SIDE:
            log.info("%s: %d x %d scaled to at most %d a side for rendering", label, *im.size, RENDER_TEXTURE_SIDE)
            im.thumbnail((RENDER_TEXTURE_SIDE, RENDER_TEXTURE_SIDE))  # in place, keeps the aspect ratio
        return np.asarray(im.convert("RGBA"), dtype=np.uint8)


def mip_levels(image: np.ndarray) -> list[np.ndarray] | None:
    """Mipmap levels 1, 2, ... down to 1 x 1 of an RGBA uint8 image [H, W, 4], as llvmpipe's glGenerateMipmap makes
    them (each level from the one above: the rounded-up mean of texel pairs, across then down: bit-identical); None
    when a level's side would be odd (above 1), where the driver filters otherwise, or for another layout.

    Made once in the render layout and uploaded by each renderer (avatar.render.context.define_mip_levels): in
    llvmpipe the first glGenerateMipmap of a context costs a fixed ~0.15 CPU s (its blit set-up) and each 2048
    texture ~0.035 s more, per render worker; here a 2048 texture's levels take ~0.02 s, once."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 4 or not image.size:
        return None
    h, w = image.shape[:2]
    # One texel per uint32, all four channels at once: per byte, (x + y + 1) >> 1 = (x | y) - ((x ^ y) >> 1), with
    # the shifted bit that would cross into the next byte masked off (SIMD within a register: ~4x faster than
    # widening to uint16).
    cur = np.ascontiguousarray(image).view(np.uint32).reshape(h, w)
    mask, one = np.uint32(0xFEFEFEFE), np.uint32(1)
    levels = []
    while cur.shape[0] > 1 or cur.shape[1] > 1:
        for axis in (1, 0):  # across, then down (a side of 1 stays)
            n = cur.shape[axis]
            if n == 1:
                continue
            if n % 2:
                return None
            x, y = (cur[:, 0::2], cur[:, 1::2]) if axis == 1 else (cur[0::2], cur[1::2])
            cur = (x | y) - (((x ^ y) & mask) >> one)
        cur = np.ascontiguousarray(cur)
        levels.append(cur.view(np.uint8).reshape(cur.shape[0], cur.shape[1], 4))
    return levels
