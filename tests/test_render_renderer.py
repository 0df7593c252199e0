"""The headless renderer (avatar.render.renderer): size, determinism, morphs, gaze, skinning, user avatars."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pytest

from avatar.errors import AvatarError, InputError
from avatar.types import ARKIT_BLENDSHAPES, FACE_CHANNELS, BodyMotion, FaceMotion

pytest.importorskip("moderngl")
pygltflib = pytest.importorskip("pygltflib")

from gltf_builders import textured_card  # noqa: E402 - tests/gltf_builders.py
from gl_support import needs_gl  # noqa: E402 - tests/gl_support.py

W, H = 192, 160


pytestmark = needs_gl


@pytest.fixture(scope="module")
def portrait():
    from avatar.render.renderer import Renderer

    with Renderer(None, W, H, framing="portrait") as r:
        yield r


@pytest.fixture(scope="module")
def full():
    from avatar.render.renderer import Renderer

    with Renderer(None, W, H, framing="full") as r:
        yield r


def _row(**channels: float) -> np.ndarray:
    row = np.zeros(len(FACE_CHANNELS))
    for k, v in channels.items():
        row[FACE_CHANNELS.index(k)] = v
    return row


def _project(r, p: np.ndarray) -> tuple[float, float]:
    """Pixel (x, y from the top) of a world point."""
    clip = r.camera.view_proj(r.width / r.height) @ np.append(p, 1.0)
    ndc = clip[:3] / clip[3]
    return (ndc[0] + 1) / 2 * r.width, (1 - ndc[1]) / 2 * r.height


def _node_world(r, node: int, body=None) -> np.ndarray:  # noqa: ANN001
    """World position of an avatar node, at rest or under a body pose."""
    from avatar.render.pose import node_matrices

    return node_matrices(r.rig, body, None)[node][:3, 3]


def _moved_points(r, shape: str, top: float = 0.05) -> np.ndarray:  # noqa: ANN001
    """World rest positions of the vertices an ARKit shape moves most (its top fraction), from the avatar itself."""
    from avatar.render.pose import node_matrices

    k = ARKIT_BLENDSHAPES.index(shape)
    pts, mags = [], []
    world = node_matrices(r.rig, None, None)
    for p in r.meshes.primitives:
        if p.target_pos is None or k >= len(p.target_pos):
            continue
        d = np.linalg.norm(p.target_pos[k].reshape(-1, 3), axis=1)
        pts.append(p.positions @ world[p.node][:3, :3].T + world[p.node][:3, 3] if p.skin is None else p.positions)
        mags.append(d)
    pts, mags = np.concatenate(pts), np.concatenate(mags)
    return pts[mags >= np.quantile(mags, 1 - top)]


def _changed(a: np.ndarray, b: np.ndarray, level: int = 12) -> np.ndarray:
    return np.abs(a.astype(int) - b.astype(int)).max(axis=2) > level


def test_frame_has_the_size_is_not_blank_and_is_deterministic(portrait) -> None:
    from avatar.render.renderer import Renderer

    a = portrait.render()
    assert a.shape == (H, W, 3) and a.dtype == np.uint8
    assert a.std() > 20 and len(np.unique(a.reshape(-1, 3), axis=0)) > 500  # a character, not a flat fill
    assert np.array_equal(a, portrait.render())
    with Renderer(None, W, H, framing="portrait") as again:
        assert np.array_equal(a, again.render())


def test_portrait_addresses_the_viewer(portrait) -> None:
    """A talking head: the portrait camera stands nearly in front of the face (within 10 degrees of where the
    avatar looks), its lens about at eye height, and the face is in the upper middle of the frame."""
    eye_nodes = [i for i, n in enumerate(portrait.avatar.nodes) if n.name in ("leftEye", "rightEye")]
    eyes = np.mean([_node_world(portrait, i) for i in eye_nodes], axis=0)
    to_cam = np.asarray(portrait.camera.eye) - eyes
    assert np.degrees(np.arctan2(abs(to_cam[0]), to_cam[2])) < 10.0
    assert abs(to_cam[1]) < 0.05 * np.linalg.norm(to_cam)
    x, y = _project(portrait, eyes)
    assert abs(x - W / 2) < 0.08 * W and y < 0.5 * H


def test_jaw_open_changes_the_mouth_only(portrait) -> None:
    rest = portrait.render(_row())
    opened = portrait.render(_row(jawOpen=1.0))
    diff = _changed(rest, opened)
    assert diff.sum() > 30
    ys, xs = np.nonzero(diff)
    mx, my = _project(portrait, _moved_points(portrait, "jawOpen").mean(axis=0))  # the jaw, lips, teeth
    assert abs(xs.mean() - mx) < 0.06 * W and abs(ys.mean() - my) < 0.08 * H
    av = portrait.avatar
    # Nothing well above the eyes moved (the jaw muscle's sub-millimetre pull reaches the temples).
    brow_y = min(_project(portrait, _node_world(portrait, av.eyes[e]) + [0.0, 0.03, 0.0])[1]
                 for e in ("leftEye", "rightEye"))
    assert not diff[: int(brow_y)].any()


def test_gaze_turns_the_eyes(portrait) -> None:
    rest = portrait.render(_row())
    look = portrait.render(_row(leftEyeYaw=0.45, rightEyeYaw=0.45))
    diff = _changed(rest, look)
    assert diff.sum() > 10
    ys, xs = np.nonzero(diff)
    pts = [_project(portrait, _node_world(portrait, n)) for n in portrait.avatar.eyes.values()]
    near = np.min([np.hypot(xs - px, ys - py) for px, py in pts], axis=0)
    assert (near < 0.06 * W).all()  # only pixels around the two eyes changed


def test_head_pose_and_blink_change_the_face(portrait) -> None:
    rest = portrait.render(_row())
    assert _changed(rest, portrait.render(_row(headYaw=0.3))).sum() > 200
    assert _changed(rest, portrait.render(_row(eyeBlinkLeft=1.0, eyeBlinkRight=1.0))).sum() > 10


def test_body_pose_moves_the_arm(full) -> None:
    from avatar.rig.rotations import quat_from_axis_angle
    from avatar.rig.skeleton import HUMANOID

    J = len(HUMANOID.joints)
    rot = np.zeros((J, 4))
    rot[:, 3] = 1
    down = quat_from_axis_angle(np.array([0.0, 0.0, 1.0]), np.array(-75.0))
    rot[HUMANOID.index("leftUpperArm")] = down
    body = (HUMANOID.joints, rot, HUMANOID.rest_positions[0])
    rest, posed = full.render(), full.render(None, body)
    # The avatar's own wrist, a little along the hand (the wrist joint itself lies on the sleeve-less forearm).
    hand, elbow = full.avatar.bones["leftHand"], full.avatar.bones["leftLowerArm"]
    spots = []
    for b in (None, body):
        w, e = _node_world(full, hand, b), _node_world(full, elbow, b)
        spots.append(w + 0.25 * (w - e))
    for p in spots:
        x, y = (int(round(v)) for v in _project(full, p))
        assert np.abs(rest[y, x].astype(int) - posed[y, x].astype(int)).max() > 30  # arm left / arrived
    other = full.render(None, (("rightUpperArm",), down[None], HUMANOID.rest_positions[0]))
    x, y = (int(round(v)) for v in _project(full, spots[0]))
    assert np.array_equal(rest[y, x], other[y, x])  # the left arm stays where the motion does not move it


def _cube_gltf(path: Path) -> Path:
    """A one-node glTF: a 1.7 m box, no skin, no morph targets, no humanoid bones."""
    import trimesh

    m = trimesh.creation.box(extents=(0.5, 1.7, 0.3))
    v = np.asarray(m.vertices, np.float32) + np.float32([0, 0.85, 0])
    f = np.asarray(m.faces, np.uint16).reshape(-1)
    blob = v.tobytes() + f.tobytes()
    g = pygltflib.GLTF2(
        scene=0, scenes=[pygltflib.Scene(nodes=[0])], nodes=[pygltflib.Node(name="box", mesh=0)],
        meshes=[pygltflib.Mesh(primitives=[pygltflib.Primitive(attributes=pygltflib.Attributes(POSITION=0),
                                                               indices=1, material=0)])],
        materials=[pygltflib.Material(pbrMetallicRoughness=pygltflib.PbrMetallicRoughness(
            baseColorFactor=[0.9, 0.2, 0.2, 1.0]))],
        accessors=[pygltflib.Accessor(bufferView=0, componentType=5126, count=len(v), type="VEC3",
                                      min=v.min(0).tolist(), max=v.max(0).tolist()),
                   pygltflib.Accessor(bufferView=1, componentType=5123, count=len(f), type="SCALAR")],
        bufferViews=[pygltflib.BufferView(buffer=0, byteOffset=0, byteLength=v.nbytes),
                     pygltflib.BufferView(buffer=0, byteOffset=v.nbytes, byteLength=f.nbytes)],
        buffers=[pygltflib.Buffer(byteLength=len(blob))])
    g.set_binary_blob(blob)
    path.write_bytes(b"".join(g.save_to_bytes()))
    return path


def test_avatar_without_bones_or_shapes_renders_with_one_warning(tmp_path: Path,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    from avatar.render.renderer import Renderer

    path = _cube_gltf(tmp_path / "box.glb")
    with caplog.at_level(logging.WARNING):
        with Renderer(path, 96, 96, framing="full") as r:
            body = (("leftUpperArm",), np.array([[0, 0, 0.5, 0.866]]), np.array([0, 0.95, 0]))
            frames = [r.render(_row(jawOpen=1.0, leftEyeYaw=0.3), body) for _ in range(3)]
    red = frames[0][..., 0].astype(int) - frames[0][..., 2].astype(int)
    assert (red > 60).sum() > 500  # the red box fills a good part of the frame
    assert np.array_equal(frames[0], frames[2])
    msgs = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("missing" in m for m in msgs)  # the loader's summary
    for part in ("face stays at rest", "gaze is not shown", "body stays at rest"):
        assert sum(part in m for m in msgs) == 1, (part, msgs)  # once, not per frame


def test_avatar_missing_some_bones_and_shapes_still_poses(tmp_path: Path, root: Path) -> None:
    """The default avatar as plain glTF with some bones renamed away and half its shapes unnamed."""
    from avatar.render.renderer import Renderer

    g = pygltflib.GLTF2().load_binary(str(root / "weights" / "avatars" / "default.glb"))
    g.extensions, g.extensionsUsed = {}, []
    for nd in g.nodes:
        if nd.name in ("leftLowerArm", "leftEye", "rightEye", "upperChest"):
            nd.name = "joint_" + nd.name[::-1]
    face = next(m for m in g.meshes if m.name == "face")
    face.extras = {"targetNames": [n if i % 2 else f"shape{i}" for i, n in enumerate(ARKIT_BLENDSHAPES)]}
    path = tmp_path / "partial.glb"
    path.write_bytes(b"".join(g.save_to_bytes()))
    with Renderer(path, 96, 96, framing="full") as r:
        assert "leftLowerArm" not in r.avatar.bones and r.avatar.missing_shapes
        rest = r.render(_row())
        body = (("leftUpperArm",), np.array([[0.0, 0.0, -0.6, 0.8]]), np.array([0.0, 0.95, 0.0]))
        assert _changed(rest, r.render(_row(), body)).sum() > 20  # the upper arm still moves the whole arm


def test_bad_inputs_are_refused(portrait) -> None:
    from avatar.render.renderer import Renderer

    with pytest.raises(InputError):
        portrait.render(np.zeros(10))
    with pytest.raises(InputError):
        portrait.render(np.full(59, np.nan))
    with pytest.raises(InputError):
        portrait.render(None, (("hips",), np.zeros((2, 4)), np.zeros(3)))
    with pytest.raises(InputError):
        Renderer(None, 64, 64, framing="closeup")
    with pytest.raises(InputError):
        Renderer(None, 0, 64)
    r = Renderer(None, 32, 32)
    r.close()
    with pytest.raises(AvatarError):
        r.render()


def test_render_frames_resamples_to_the_video_rate() -> None:
    from avatar.rig.skeleton import HUMANOID
    from avatar.render.frames import render_frames
    from avatar.render.motion import frame_count, resample_body

    face = FaceMotion(fps=25.0, frames=np.zeros((10, len(FACE_CHANNELS)), np.float32))
    J = len(HUMANOID.joints)
    rot = np.zeros((6, J, 4), np.float32)
    rot[..., 3] = 1
    body = BodyMotion(fps=15.0, joints=HUMANOID.joints, rotations=rot,
                      root_position=np.tile(HUMANOID.rest_positions[0], (6, 1)))
    assert frame_count(face, body, 30) == 12  # 0.4 s at 30 fps
    seen = []
    frames = list(render_frames(None, face, body, fps=30, width=48, height=48, progress=seen.append))
    assert len(frames) == 12 and frames[0].shape == (48, 48, 3)
    assert seen[-1] == pytest.approx(1.0) and len(seen) == 12
    r, p = resample_body(body, 12, 30)
    assert r.shape == (12, J, 4) and np.allclose(np.linalg.norm(r, axis=-1), 1)


def test_render_ahead_gives_the_same_frames_and_stops_cleanly() -> None:
    """ahead > 0 renders in a worker thread: the same frames in order; closing early stops the worker and
    frees its GL context; a failure in the worker reaches the consumer."""
    import threading

    from avatar.render.frames import read_ahead as _read_ahead, render_frames

    face = FaceMotion(fps=30.0, frames=np.zeros((8, len(FACE_CHANNELS)), np.float32))
    face.frames[:, FACE_CHANNELS.index("jawOpen")] = np.linspace(0, 1, 8)
    plain = list(render_frames(None, face, None, width=32, height=32))
    ahead = list(render_frames(None, face, None, width=32, height=32, ahead=3))
    assert len(ahead) == 8 and all(np.array_equal(a, b) for a, b in zip(plain, ahead))
    before = threading.active_count()
    it = render_frames(None, face, None, width=32, height=32, ahead=2)
    next(it)
    it.close()  # the consumer leaves early (an encoder error, say)
    assert threading.active_count() == before

    def broken():
        yield np.zeros((2, 2, 3), np.uint8)
        raise InputError("frame 2 is bad")

    got = _read_ahead(broken(), 2)
    assert next(got).shape == (2, 2, 3)
    with pytest.raises(InputError, match="frame 2"):
        next(got)
    with pytest.raises(InputError):
        render_frames(None, face, None, ahead=-1)


def test_avatar_facing_minus_z_renders_like_ours(tmp_path: Path, root: Path) -> None:
    """The default avatar turned 180 degrees (as VRM 0.x avatars face -Z), with non-identity rest rotations:
    the motion is conjugated and the camera turned with it, so the frame matches the original's."""
    from avatar.rig.skeleton import HUMANOID
    from avatar.render.renderer import Renderer

    g = pygltflib.GLTF2().load_binary(str(root / "weights" / "avatars" / "default.glb"))
    g.extensions, g.extensionsUsed = {}, []
    g.nodes.append(pygltflib.Node(name="turned", rotation=[0.0, 1.0, 0.0, 0.0], children=list(g.scenes[0].nodes)))
    g.scenes[0].nodes = [len(g.nodes) - 1]
    path = tmp_path / "turned.glb"
    path.write_bytes(b"".join(g.save_to_bytes()))
    J = len(HUMANOID.joints)
    rot = np.tile([0.0, 0.0, 0.0, 1.0], (J, 1))
    rot[HUMANOID.index("leftUpperArm")] = [0.0, 0.0, -0.5, 0.866]
    rot[HUMANOID.index("spine")] = [0.1, 0.1, 0.0, 0.99]
    body = (HUMANOID.joints, rot, HUMANOID.rest_positions[0] + [0.05, 0.0, 0.02])
    row = _row(jawOpen=0.6, headYaw=0.2, headPitch=0.1, leftEyeYaw=0.3, rightEyeYaw=0.3, leftEyePitch=-0.1)
    with Renderer(path, W, H) as turned, Renderer(None, W, H) as ours:
        assert turned.avatar.faces_minus_z and not ours.avatar.faces_minus_z
        a, b = turned.render(row, body), ours.render(row, body)
    assert _changed(a, b, level=24).mean() < 0.002  # the same picture up to rounding on a few edge pixels


def test_render_settings_are_checked_once_with_one_line_errors() -> None:
    from pydantic import ValidationError

    from avatar.render.settings import DEFAULT_ANTIALIAS, RenderSettings

    s = RenderSettings.make(width=np.int64(64), height=48, framing="full")
    assert (s.width, s.height, s.framing, s.antialias) == (64, 48, "full", DEFAULT_ANTIALIAS) and s.aspect == 64 / 48
    with pytest.raises(ValidationError, match="frozen"):  # a renderer's settings cannot change under it
        s.width = 32
    for bad, words in (({"width": 8}, "width must be an integer in [16, 4096]"), ({"height": True}, "height"),
                       ({"framing": "closeup"}, "framing must be one of portrait, full"),
                       ({"antialias": "ssaa"}, "antialias must be one of fxaa, msaa, none"),
                       ({"width": 64.0}, "width"), ({"zoom": 2}, "zoom")):
        with pytest.raises(InputError, match=re.escape(words)):
            RenderSettings.make(**bad)


def test_antialiasing_modes_smooth_the_edges(portrait) -> None:
    from avatar.render.renderer import Renderer

    def roughness(img: np.ndarray) -> float:  # total variation: jagged edges add to it
        f = img.astype(float)
        return float(np.abs(np.diff(f, axis=0)).sum() + np.abs(np.diff(f, axis=1)).sum())

    with Renderer(None, W, H, antialias="msaa") as ms, Renderer(None, W, H, antialias="fxaa") as fx, \
            Renderer(None, W, H, antialias="none") as none:
        msaa, f, n = ms.render(), fx.render(), none.render()
    assert roughness(msaa) < 0.97 * roughness(n) and roughness(f) < 0.97 * roughness(n)
    assert np.abs(f.astype(int) - msaa).mean() < 3  # both are the same picture, smoothed
    assert np.array_equal(portrait.render(), f)  # one default everywhere: FXAA (avatar.render.settings)
    with pytest.raises(InputError):
        Renderer(None, W, H, antialias="ssaa")


def _textured_quad(path: Path) -> Path:
    """A 1 x 1 m quad facing +Z with a 2 x 2 texture (top row red, bottom row blue) and one morph target,
    'jawOpen', stored as a sparse accessor that lowers the two top corners by 0.5 m."""
    import io

    from PIL import Image

    png = io.BytesIO()
    Image.fromarray(np.array([[[255, 0, 0, 255]] * 2, [[0, 0, 255, 255]] * 2], np.uint8)).save(png, "PNG")
    uv = np.array([[0, 1], [1, 1], [1, 0], [0, 0]], np.float32)  # glTF: v = 0 is the image's top row
    return textured_card(
        path, png=png.getvalue(), uv=uv, top_drop=0.5,
        materials=[pygltflib.Material(doubleSided=True, pbrMetallicRoughness=pygltflib.PbrMetallicRoughness(
            baseColorTexture=pygltflib.TextureInfo(index=0)))],
        textures=[pygltflib.Texture(source=0, sampler=0)], samplers=[pygltflib.Sampler()],
        images=[pygltflib.Image(bufferView=5, mimeType="image/png")])


def test_textures_and_sparse_morph_targets_of_a_user_avatar(tmp_path: Path) -> None:
    from avatar.render.mesh import read_accessor
    from avatar.render.renderer import Renderer

    path = _textured_quad(tmp_path / "card.glb")
    with Renderer(path, 64, 64, framing="full") as r:
        assert r.avatar.arkit == {"jawOpen": [(0, 0, 1.0)]}
        delta = read_accessor(r.avatar.gltf, 3)
        assert np.allclose(delta[:2], 0) and np.allclose(delta[2:, 1], -0.5)
        img = r.render(_row()).astype(int)
        opened = r.render(_row(jawOpen=1.0)).astype(int)
    red = (img[..., 0] - img[..., 2]) > 80
    blue = (img[..., 2] - img[..., 0]) > 80
    assert red.sum() > 50 and blue.sum() > 50
    assert np.nonzero(red)[0].mean() < np.nonzero(blue)[0].mean()  # red on top: the texture is not flipped
    shrunk = (opened[..., 0] - opened[..., 2]) > 80
    assert shrunk.sum() < 0.7 * red.sum() and np.nonzero(shrunk)[0].min() > np.nonzero(red)[0].min() + 5


def test_morph_matrix_matches_avatar_morph_weights(portrait) -> None:
    keys, m = portrait._morph_matrix
    rng = np.random.default_rng(0)
    for _ in range(5):
        a = rng.uniform(0, 1, len(ARKIT_BLENDSHAPES)) * (rng.uniform(size=len(ARKIT_BLENDSHAPES)) < 0.4)
        want = portrait.avatar.morph_weights(a)
        got = dict(zip(keys, np.clip(a @ m, 0, 1)))
        assert set(want) <= set(got)
        assert all(abs(got[k] - want.get(k, 0.0)) < 1e-9 for k in got)


def test_draw_order_puts_the_face_first_and_does_not_change_the_picture(portrait) -> None:
    """Nearest first (morphing meshes ahead) only saves shading: drawn in the reverse order the frame is the same
    but for a few pixels where two surfaces tie in depth (the head's inside is drawn after its outside)."""
    from avatar.render.camera import draw_order, rest_points_each as _rest_points_each

    r = portrait
    prims = [d["prim"] for d in r._draws]
    assert prims[0].target_pos is not None, "the face goes first"
    order = draw_order(r.meshes, r.rig, r.camera.eye)
    assert [id(r.meshes.primitives[i]) for i in order] == [id(p) for p in prims]
    pts, _ = _rest_points_each(r.meshes, r.rig)
    near = [float(np.linalg.norm(pts[i] - np.asarray(r.camera.eye), axis=1).min()) for i in order]
    rest = [d for i, d in zip(order, near) if r.meshes.primitives[i].target_pos is None]
    assert rest == sorted(rest) and len(rest) < len(near)
    row = _row(jawOpen=0.6, mouthSmileLeft=0.5, eyeBlinkRight=0.4)
    a = r.render(row)
    draws = r._draws
    try:
        r._draws = draws[::-1]
        b = r.render(row)
    finally:
        r._draws = draws
    diff = _changed(a, b, level=8)
    assert diff.mean() < 0.002, diff.mean()  # ties only: the same picture


def test_primitives_outside_the_view_are_skipped_without_changing_the_picture(portrait, full) -> None:
    """The portrait does not draw the trousers and shoes (their skinned bounds lie below the frame whatever the
    joints do); full framing draws everything; and skipping changes no pixel."""
    from avatar.render.snapshot import relaxed_body

    body = relaxed_body()
    row = _row(jawOpen=0.3)
    for r, framing in ((portrait, "portrait"), (full, "full")):
        a = r.render(row, body)
        skipped = [p for p in r.meshes.primitives if id(p) in r._culled]
        if framing == "portrait":
            assert len(skipped) >= 2, "the legs' primitives are drawn in a portrait"
            assert all(p.target_pos is None for p in skipped)  # never a morphing one
        else:
            assert not skipped
        outside = r._outside
        try:
            r._outside = lambda *args: set()
            b = r.render(row, body)
        finally:
            r._outside = outside
        assert np.array_equal(a, b), framing


def test_frustum_test_of_skinned_spheres() -> None:
    """A sphere set is outside when one plane has all of it behind: each joint's image of the bounds."""
    from avatar.render.camera import Camera, frustum_planes, meshes_outside

    cases: list[tuple[np.ndarray, np.ndarray, np.ndarray | None, bool]] = []

    def spheres_outside(planes: np.ndarray, centres: np.ndarray, radii: np.ndarray,
                        caps: np.ndarray | None = None) -> bool:
        """One mesh's spheres (caps None: uncapped) through meshes_outside."""
        caps_ = np.ones(len(centres)) if caps is None else caps
        out = bool(meshes_outside(planes, centres, radii, caps_, np.zeros(1, np.int64), np.array([caps is not None]))[0])
        cases.append((centres, radii, caps, out))
        return out

    cam = Camera(eye=(0.0, 1.0, 3.0), target=(0.0, 1.0, 0.0), fov_y=30.0, near=0.1, far=10.0)
    planes = frustum_planes(cam.view_proj(1.0))
    inside = np.array([[0.0, 1.0, 0.0]])
    below = np.array([[0.0, -2.0, 0.0], [0.1, -2.5, 0.0]])
    assert not spheres_outside(planes, inside, np.array([0.1]))
    assert spheres_outside(planes, below, np.array([0.2, 0.2]))
    assert not spheres_outside(planes, np.vstack([below, inside]), np.array([0.2, 0.2, 0.1]))  # one joint in view
    assert not spheres_outside(planes, below, np.array([3.0, 0.2]))  # a big sphere reaches in
    # With each joint's largest weight: a joint that weighs at most 3 % cannot pull a vertex 2 m below the frame
    # into it (its sphere lies above the frame, 1 m past the top plane), one that weighs up to 60 % can.
    above = np.array([[0.0, 3.0, 0.0]])
    three = np.vstack([below, above])
    radii = np.array([0.2, 0.2, 0.1])
    assert not spheres_outside(planes, three, radii)  # no caps: every sphere must lie outside
    assert spheres_outside(planes, three, radii, np.array([1.0, 1.0, 0.03]))
    assert not spheres_outside(planes, three, radii, np.array([1.0, 1.0, 0.6]))
    assert spheres_outside(planes, below, np.array([0.2, 0.2]), np.array([0.5, 0.5]))
    # weights that may sum to less than one bound nothing: every sphere must be outside, as without caps
    assert not spheres_outside(planes, three, radii, np.array([0.4, 0.4, 0.03]))
    # All the cases above as one batch of meshes: each mesh's answer is the one it got alone.
    starts = np.cumsum([0] + [len(c) for c, _, _, _ in cases[:-1]])
    batch = meshes_outside(planes, np.vstack([c for c, _, _, _ in cases]), np.concatenate([r for _, r, _, _ in cases]),
                           np.concatenate([np.ones(len(c)) if k is None else k for c, _, k, _ in cases]), starts,
                           np.array([k is not None for _, _, k, _ in cases]))
    assert batch.tolist() == [o for _, _, _, o in cases]


def test_mip_levels_are_the_drivers_own() -> None:
    """The textures' mipmap levels made in NumPy (avatar.render.texture.mip_levels, once per layout) are texel for
    texel those of llvmpipe's glGenerateMipmap, square or not; a side that halves to an odd length is left to the
    driver (None)."""
    from avatar.render.context import create_context
    from avatar.render.texture import mip_levels

    ctx = create_context()
    try:
        if "llvmpipe" not in ctx.info.get("GL_RENDERER", ""):
            pytest.skip("the levels reproduce llvmpipe's rounding; another driver may filter otherwise")
        rng = np.random.default_rng(5)
        for h, w in [(64, 64), (16, 4), (4, 32), (1, 8)]:
            im = rng.integers(0, 256, (h, w, 4), dtype=np.uint8)
            t = ctx.texture((w, h), 4, im.tobytes())
            t.build_mipmaps()
            want = [np.frombuffer(t.read(level=k), np.uint8).reshape(max(1, h >> k), max(1, w >> k), 4)
                    for k in range(1, int(np.log2(max(h, w))) + 1)]
            got = mip_levels(im)
            assert got is not None and len(got) == len(want) >= 2
            for k, (a, b) in enumerate(zip(got, want), start=1):
                assert np.array_equal(a, b), (h, w, k, int(np.abs(a.astype(int) - b).max()))
        assert mip_levels(np.zeros((6, 6, 4), np.uint8)) is None
    finally:
        ctx.release()


def test_uploaded_mip_levels_give_the_same_frames(monkeypatch: pytest.MonkeyPatch) -> None:
    """The layout makes the default avatar's mipmap levels (forked render workers inherit them) and each renderer
    uploads them instead of calling glGenerateMipmap: the frames are byte-identical to the driver-built ones, and
    wrong levels would show (so the uploaded ones are what the sampler reads)."""
    import avatar.render.renderer as rmod

    row = _row(jawOpen=0.4, mouthSmileLeft=0.7, browInnerUp=0.5, eyeBlinkLeft=0.3)
    with rmod.Renderer(None, W, H, framing="portrait") as r:
        assert len(r._mips) == len(r.meshes.images) >= 2 and all(m is not None for m in r._mips)
        ours = [r.render(row), r.render(None)]
    uploaded: list[int] = []
    real = rmod.define_mip_levels
    monkeypatch.setattr(rmod, "define_mip_levels", lambda t, levels: uploaded.append(len(levels)) or False)
    with rmod.Renderer(None, W, H, framing="portrait") as r:  # define_mip_levels declines: build_mipmaps
        driver = [r.render(row), r.render(None)]
    assert len(uploaded) == len(r.meshes.images)  # each texture was offered its levels
    for a, b in zip(ours, driver):
        assert np.array_equal(a, b), int(np.abs(a.astype(int) - b).max())

    def halved(t, levels):  # noqa: ANN001, ANN202 - levels at half brightness: a different picture
        return real(t, [lv // 2 for lv in levels])

    monkeypatch.setattr(rmod, "define_mip_levels", halved)
    with rmod.Renderer(None, W, H, framing="portrait") as r:
        assert _changed(r.render(row), ours[0], level=8).sum() > 100
