"""Avatar textures (avatar.render.texture): sized from the image header before decoding, scaled for the renderer."""

from __future__ import annotations

import io
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from avatar.errors import InputError

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gltf_builders import flat_png, textured_avatar, textured_card  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _jpeg(w: int, h: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (w, h), (30, 120, 200)).save(buf, "JPEG", quality=80)
    return buf.getvalue()


def test_texture_bomb_is_refused_when_the_avatar_loads(tmp_path):
    """A .glb whose 80 kB PNG decodes to 5000 x 5000 pixels is refused from the PNG header (issue 20 item 8: a
    12000 x 12000 one took 2.3 GB to render before), naming the image; nothing is decoded."""
    from avatar.render.avatar_file import load_avatar

    glb = textured_avatar(tmp_path / "bomb.glb", flat_png(5000, 5000))
    assert glb.stat().st_size < 4_000_000  # the default avatar and a PNG of about 80 kB
    load_avatar(textured_avatar(tmp_path / "fine.glb", flat_png(64, 64)))  # warm the imports
    tracemalloc.start()
    try:
        with pytest.raises(InputError, match=r"bomb.glb: texture image 0 is 5000 x 5000 pixels .* limited to 16.8 Mpx"):
            load_avatar(glb)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 40 * 2**20, f"{peak / 2**20:.0f} MiB"  # the avatar's own buffers; decoded it would be 100 MB


def test_large_textures_are_scaled_down_for_the_renderer(tmp_path):
    from avatar.render.avatar_file import load_avatar
    from avatar.render.mesh import read_meshes
    from avatar.render.texture import RENDER_TEXTURE_SIDE, decode_texture

    rgba = decode_texture(flat_png(3000, 1000))
    assert rgba.shape == (683, RENDER_TEXTURE_SIDE, 4) and (rgba[0, 0] == [200, 150, 120, 255]).all()
    assert decode_texture(flat_png(300, 200)).shape == (200, 300, 4)  # smaller ones as they are
    meshes = read_meshes(load_avatar(textured_avatar(tmp_path / "wide.glb", flat_png(4096, 2048))))
    assert [im.shape for im in meshes.images] == [(1024, 2048, 4)]


def test_jpeg_is_decoded_at_a_reduced_scale(monkeypatch):
    """A JPEG over the pixel limit that its draft mode brings under it (1/8 a side) is accepted and decoded small;
    a PNG of the same size is refused."""
    import avatar.render.texture as tex

    monkeypatch.setattr(tex, "MAX_TEXTURE_PIXELS", 100 * 100)
    monkeypatch.setattr(tex, "RENDER_TEXTURE_SIDE", 64)
    rgba = tex.decode_texture(_jpeg(400, 400))
    assert max(rgba.shape[:2]) <= 64 and abs(int(rgba[5, 5, 2]) - 200) < 8
    with pytest.raises(InputError, match="400 x 400"):
        tex.decode_texture(flat_png(400, 400))
    with pytest.raises(InputError, match="1000 x 1000"):
        tex.decode_texture(_jpeg(1000, 1000))  # an eighth is 125 x 125: still over


def test_cli_say_with_a_texture_bomb_is_one_error_line(tmp_path):
    glb = textured_avatar(tmp_path / "bomb.glb", flat_png(5000, 5000))
    r = subprocess.run([sys.executable, "-m", "avatar.cli", "say", "Hi.", "--avatar", str(glb), "-o",
                        str(tmp_path / "x.mp4"), "--render-workers", "1"], capture_output=True, text=True,
                       timeout=300, cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: bomb.glb: texture image 0 is 5000 x 5000"), r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bomb.glb"]  # nothing written, nothing left behind


def test_an_image_file_beside_the_avatar_is_checked_from_its_header(tmp_path):
    """An image the avatar names by uri is opened lazily (header only) for the check, and decoded for the renderer;
    one over the pixel limit is refused when the avatar loads."""
    import pygltflib

    from avatar.render.avatar_file import load_avatar
    from avatar.render.mesh import read_meshes

    doc = dict(materials=[pygltflib.Material(pbrMetallicRoughness=pygltflib.PbrMetallicRoughness(
                   baseColorTexture=pygltflib.TextureInfo(index=0)))],
               textures=[pygltflib.Texture(source=0)], images=[pygltflib.Image(uri="tex.png")])
    uv = np.array([[0, 1], [1, 1], [1, 0], [0, 0]], np.float32)
    card = textured_card(tmp_path / "card.glb", png=b"", uv=uv, top_drop=0.0, **doc)
    (tmp_path / "tex.png").write_bytes(flat_png(8, 4, (10, 200, 30)))
    (im,) = read_meshes(load_avatar(card)).images
    assert im.shape == (4, 8, 4) and (im[0, 0] == [10, 200, 30, 255]).all()
    (tmp_path / "tex.png").write_bytes(flat_png(5000, 5000))
    with pytest.raises(InputError, match="texture image 0 is 5000 x 5000"):
        load_avatar(card)
