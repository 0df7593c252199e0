"""Expression wrinkles (avatar.render.wrinkles): the default avatars carry a crease map in their skin material's
extras, laid out where FACS puts each crease, and the renderer shades it only while the shapes that drive it
are on."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from avatar.render.wrinkles import WRINKLE_CHANNELS, WRINKLE_DRIVERS, driver_matrix
from avatar.types import FACE_CHANNELS

pygltflib = pytest.importorskip("pygltflib")
from gl_support import needs_gl  # noqa: E402 - tests/gl_support.py

ROOT = Path(__file__).resolve().parents[1]
FILES = {"female": ROOT / "weights" / "avatars" / "default.glb", "male": ROOT / "weights" / "avatars" / "default-male.glb"}


def test_driver_matrix_keeps_the_sides_apart() -> None:
    left, right = driver_matrix(["browInnerUp", "browDownLeft", "browDownRight", "jawOpen"])
    assert left[0].tolist() == right[0].tolist() == list(WRINKLE_DRIVERS["browInnerUp"])
    # AU1 lines the middle of the forehead, AU2 its sides; a 4-value row counts for both alike
    assert WRINKLE_DRIVERS["browInnerUp"][4] < 0.5 * WRINKLE_DRIVERS["browInnerUp"][0]
    assert WRINKLE_DRIVERS["browOuterUpLeft"][0] < 0.5 * WRINKLE_DRIVERS["browOuterUpLeft"][4]
    assert driver_matrix(["browInnerUp"], {"browInnerUp": [0.7, 0, 0, 0]})[0][0].tolist() == [0.7, 0, 0, 0, 0.7]
    assert left[1, WRINKLE_CHANNELS.index("glabella")] == 1.0 and not right[1].any()
    assert right[2, WRINKLE_CHANNELS.index("glabella")] == 1.0 and not left[2].any()
    assert not left[3].any() and not right[3].any()


def _world(gltf, name: str) -> np.ndarray:
    """Rest world position of a node (the builder's nodes carry translations only)."""
    parent = {c: k for k, n in enumerate(gltf.nodes) for c in (n.children or [])}
    k = next(i for i, n in enumerate(gltf.nodes) if n.name == name)
    p = np.zeros(3)
    while k is not None:
        p += np.asarray(gltf.nodes[k].translation or (0, 0, 0))
        k = parent.get(k)
    return p


@pytest.mark.parametrize("name", sorted(FILES))
def test_creases_are_where_facs_puts_them(name: str) -> None:
    """Forehead lines above the brows, frown lines between them, nose lines beside the bridge, crow's feet beside
    the eyes and the nasolabial furrow below the nose: each channel's texels, seen at the face's vertices."""
    from scipy.ndimage import maximum_filter

    from avatar.render.mesh import read_accessor
    from avatar.render.texture import decode_texture, image_bytes

    gltf = pygltflib.GLTF2().load_binary(str(FILES[name]))
    skin_mat = next(k for k, m in enumerate(gltf.materials) if m.name == "skin")
    spec = gltf.materials[skin_mat].extras["wrinkleMap"]
    assert spec["channels"] == list(WRINKLE_CHANNELS)
    img = decode_texture(image_bytes(gltf, gltf.textures[spec["texture"]].source, FILES[name].parent))
    assert img.shape == (2048, 2048, 4)
    face = next(m for m in gltf.meshes if m.name == "face")
    prim = next(p for p in face.primitives if p.material == skin_mat)
    pos = np.asarray(read_accessor(gltf, prim.attributes.POSITION), np.float64)
    uv = np.asarray(read_accessor(gltf, prim.attributes.TEXCOORD_0), np.float64)
    grown = maximum_filter(img, size=(9, 9, 1))  # a groove is ~2 texels wide, the vertices ~6 mm apart
    px = np.clip((uv * [img.shape[1], img.shape[0]]).astype(int), 0, img.shape[0] - 1)
    at = grown[px[:, 1], px[:, 0]] / 255.0
    mid = (_world(gltf, "leftEye") + _world(gltf, "rightEye")) / 2
    x, y = pos[:, 0] - mid[0], pos[:, 1] - mid[1]

    def on(channel: str) -> np.ndarray:
        return at[:, WRINKLE_CHANNELS.index(channel)] > 0.3

    for channel in WRINKLE_CHANNELS:
        assert on(channel).sum() >= 6, channel
    assert (y[on("forehead")] > 0.02).all() and (np.abs(x[on("forehead")]) < 0.06).all()
    assert (np.abs(x[on("glabella")]) < 0.02).all() and (y[on("glabella")] > -0.01).all()
    nose = on("nose")
    assert (np.abs(x[nose]) < 0.045).all() and (y[nose] < 0.0).all() and (y[nose] > -0.07).all()
    smile = on("smile")
    assert ((np.abs(x) > 0.04) & (np.abs(y) < 0.02) & smile).any()  # crow's feet
    assert ((np.abs(x) < 0.04) & (y < -0.04) & smile).any()  # the nasolabial furrow
    assert not (smile & (y > 0.02)).any()


def _row(**channels: float) -> np.ndarray:
    row = np.zeros(len(FACE_CHANNELS))
    for k, v in channels.items():
        row[FACE_CHANNELS.index(k)] = v
    return row


@needs_gl
def test_creases_show_only_while_their_shapes_are_on() -> None:
    from avatar.render.renderer import Renderer

    def frames(wrinkles: bool) -> list[np.ndarray]:
        r = Renderer(FILES["female"], 384, 320, framing="portrait", gl=False)
        face = [p for p in r.meshes.primitives if p.material.wrinkles is not None]
        assert len(face) == 1 and face[0].target_pos is not None  # the morphing skin only
        if not wrinkles:
            face[0].material.wrinkles = None
        r.open()
        try:
            frown = dict(browDownLeft=1.0, browDownRight=1.0)
            all_on = dict(frown, browInnerUp=1.0, noseSneerLeft=1.0, noseSneerRight=1.0, cheekSquintLeft=1.0,
                          cheekSquintRight=1.0)
            return [r.render(_row(**w)) for w in ({}, frown, all_on, dict(browDownLeft=1.0), dict(browDownLeft=0.02))]
        finally:
            r.close()

    with_w, without = frames(True), frames(False)
    diff = [np.abs(a.astype(int) - b.astype(int)).max(axis=2) for a, b in zip(with_w, without)]
    assert diff[0].max() == 0 and diff[4].max() == 0  # at rest or barely on, the plain program draws the face
    # At 384 x 320 the face is ~110 px wide: the frown lines change a few dozen pixels by a few grey levels.
    assert (diff[1] > 3).sum() >= 30  # the frown lines
    assert (diff[2] > 3).sum() > (diff[1] > 3).sum() * 5  # every family on: forehead, nose, crow's feet too
    # browDownLeft alone: its frown lines on the avatar's left only (the image's right: it faces the camera).
    xs = np.nonzero(diff[3] > 3)[1]
    assert len(xs) >= 15 and np.median(xs) > np.median(np.nonzero(diff[1] > 3)[1])


def test_a_malformed_wrinkle_map_is_ignored_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from avatar.render.avatar_file import load_avatar
    from avatar.render.mesh import read_meshes

    gltf = pygltflib.GLTF2().load_binary(str(FILES["female"]))
    skin = next(m for m in gltf.materials if m.name == "skin")
    skin.extras = {"wrinkleMap": {"texture": 99, "drivers": {"browDownLeft": [0, 1, 0, 0]}}}
    path = tmp_path / "bad.glb"
    gltf.save_binary(str(path))
    with caplog.at_level(logging.WARNING):
        meshes = read_meshes(load_avatar(path))
    assert all(p.material.wrinkles is None for p in meshes.primitives)
    assert "wrinkle map is ignored" in caplog.text


@needs_gl
def test_only_the_creased_triangles_take_the_wrinkle_program() -> None:
    """With creases on, the face is drawn in two parts (the triangles the crease map touches with the wrinkle
    program, the rest with the plain one); the picture is the one the wrinkle program gives the whole face."""
    from avatar.render.renderer import Renderer, creased_triangles

    row = _row(browDownLeft=1.0, browDownRight=1.0, browInnerUp=1.0, cheekSquintLeft=1.0, mouthSmileRight=1.0)
    with Renderer(FILES["female"], 384, 320, framing="portrait") as r:
        d = next(d for d in r._draws if d["wrinkles"] is not None)
        p = d["prim"]
        creased = creased_triangles(p.uv, p.indices, r.meshes.images[p.material.wrinkles.texture])
        assert 0.1 < creased.mean() < 0.4  # forehead, brows, nose, eye corners, nasolabial folds: ~22 %
        assert len(d["split"]) == 2 and d["split"][0][0] is d["prog"] and d["split"][1][0] is d["plain"][0][0]
        split = r.render(row)
        d["split"] = [(d["prog"], d["vao"])]
        whole = r.render(row)
    # Where a creased and a plain triangle share an edge, the two draws' multisampled edge pixels may differ by a
    # few levels (one pixel of 4 at the lower lid's corner with this row).
    diff = np.abs(split.astype(int) - whole.astype(int)).max(axis=2)
    assert diff.max() <= 8 and (diff > 2).sum() <= 3, (diff.max(), (diff > 2).sum())


def test_one_reader_for_the_wrinkle_map_extras() -> None:
    """read_wrinkle_spec is the one reader of `extras.wrinkleMap` (the renderer's meshes and its texture loader):
    the default avatars' spec round-trips, foreheadLateral defaults to FOREHEAD_LATERAL, bad specs raise."""
    from avatar.render.texture import _material_images
    from avatar.render.wrinkles import FOREHEAD_LATERAL, read_wrinkle_spec

    gltf = pygltflib.GLTF2().load_binary(str(FILES["female"]))
    skin = next(m for m in gltf.materials if m.name == "skin")
    spec = read_wrinkle_spec(skin.extras, len(gltf.textures))
    assert spec is not None and spec.lateral == FOREHEAD_LATERAL and spec.drivers["browInnerUp"][4] == 0.15
    assert gltf.textures[spec.texture].source in _material_images(gltf)
    assert read_wrinkle_spec({}, 4) is None and read_wrinkle_spec(None, 4) is None
    drivers = {"browDownLeft": [0, 1, 0, 0]}
    assert read_wrinkle_spec({"wrinkleMap": {"texture": 1, "drivers": drivers}}, 4).lateral == FOREHEAD_LATERAL
    for bad in ({"texture": 9, "drivers": drivers}, {"texture": 1, "drivers": {"x": [1, 2]}}, {"texture": 1},
                {"texture": 1, "drivers": drivers, "foreheadLateral": [0.04, 0.02]},
                {"texture": 1, "drivers": drivers, "foreheadLateral": "wide"}, {"texture": "1", "drivers": drivers}):
        with pytest.raises(ValueError, match="wrinkleMap|texture|driver|foreheadLateral"):
            read_wrinkle_spec({"wrinkleMap": bad}, 4)
    skin.extras["wrinkleMap"]["texture"] = 99  # malformed: the loader does not decode it either
    assert len(_material_images(gltf)) == 3


@needs_gl
def test_the_file_says_where_the_forehead_lines_turn_lateral(tmp_path: Path) -> None:
    """The renderer takes the forehead's medial/lateral band from the file's foreheadLateral (not a constant in the
    shader): with the band pushed past the face, browOuterUp's lateral lines vanish and only its weak medial
    share (WRINKLE_DRIVERS) remains."""
    from avatar.render.renderer import Renderer

    gltf = pygltflib.GLTF2().load_binary(str(FILES["female"]))
    skin = next(m for m in gltf.materials if m.name == "skin")
    skin.extras["wrinkleMap"]["foreheadLateral"] = [0.5, 0.6]
    path = tmp_path / "wide.glb"
    gltf.save_binary(str(path))
    row = _row(browOuterUpLeft=1.0, browOuterUpRight=1.0)
    out = {}
    for key, avatar in (("default", FILES["female"]), ("wide", path)):
        with Renderer(avatar, 384, 320, framing="portrait") as r:
            out[key] = (r.render(_row()).astype(int), r.render(row).astype(int))
    assert np.array_equal(out["default"][0], out["wide"][0])  # at rest no creases: the band changes nothing
    changed = np.abs(out["default"][1] - out["wide"][1]).max(axis=2) > 3  # the same face, fewer forehead lines
    assert changed.sum() >= 30, changed.sum()


def test_creased_triangles_are_found_once_with_the_layout() -> None:
    # Found by the layout (gl=False), so render workers forked after it inherit them; the one-word test of a texel
    # is the any-channel test, on a contiguous map and on a strided one alike.
    import numpy as np

    from avatar.render.renderer import Renderer, creased_triangles

    r = Renderer(None, width=128, height=128, gl=False)
    assert r._ctx is None and len(r._creased) == 1
    rng = np.random.default_rng(3)
    image = np.zeros((256, 256, 4), np.uint8)
    image[rng.integers(0, 256, 40), rng.integers(0, 256, 40), rng.integers(0, 4, 40)] = 1  # one channel each
    uv = rng.uniform(0, 1, (300, 2)).astype(np.float32)
    tri = rng.integers(0, 300, (500, 3))
    want = np.zeros(len(tri), bool)
    for f, (a, b, c) in enumerate(tri):  # a texel set inside the triangle's uv box, grown by 2 texels
        t = uv[[a, b, c]]
        x0, x1 = max(int(np.floor(t[:, 0].min() * 256)) - 2, 0), min(int(np.ceil(t[:, 0].max() * 256)) + 2, 256)
        y0, y1 = max(int(np.floor(t[:, 1].min() * 256)) - 2, 0), min(int(np.ceil(t[:, 1].max() * 256)) + 2, 256)
        want[f] = image[y0:y1, x0:x1].any()
    assert 0 < want.sum() < len(want)
    assert np.array_equal(creased_triangles(uv, tri, image, margin=2), want)
    wide = np.zeros((256, 512, 4), np.uint8)
    wide[:, ::2] = image
    strided = wide[:, ::2]
    assert not strided.flags.c_contiguous
    assert np.array_equal(creased_triangles(uv, tri, strided, margin=2), want)
