"""Users' own avatars (issue 25): faces and skeletons as Ready Player Me, Mixamo, Blender and few-shape files
name them, built from the default avatar by tests/gltf_builders.py, each checked by rendering it."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from avatar.types import ARKIT_BLENDSHAPES, FACE_CHANNELS, BodyMotion, FaceMotion

pygltflib = pytest.importorskip("pygltflib")
pytest.importorskip("moderngl")

import gltf_builders as gb  # noqa: E402 - tests/gltf_builders.py

W, H = 160, 160
FEW = {"jawOpen": "mouthOpen", "mouthSmileLeft": "mouthSmile", "browDownLeft": "Angry", "eyeBlinkLeft": "Blink",
       "browInnerUp": "Surprised"}


def _egl_ok() -> bool:
    import moderngl

    try:
        moderngl.create_context(standalone=True, backend="egl").release()
        return True
    except Exception:  # noqa: BLE001 - no EGL on this machine
        return False


needs_gl = pytest.mark.skipif(not _egl_ok(), reason="no headless OpenGL (EGL) here")


def _row(**channels: float) -> np.ndarray:
    row = np.zeros(len(FACE_CHANNELS))
    for k, v in channels.items():
        row[FACE_CHANNELS.index(k)] = v
    return row


def _arkit(**shapes: float) -> np.ndarray:
    a = np.zeros(len(ARKIT_BLENDSHAPES))
    for k, v in shapes.items():
        a[ARKIT_BLENDSHAPES.index(k)] = v
    return a


def mouth_change(path: Path, jaw: float = 0.7) -> int:
    """Pixels around the projected mouth that change between a closed and an open jaw (portrait framing)."""
    from avatar.render.renderer import Renderer

    with Renderer(path, W, H, framing="portrait") as r:
        box = _mouth_box(r)
        rest, opened = r.render(_row()), r.render(_row(jawOpen=jaw))
    diff = np.abs(rest.astype(int) - opened.astype(int)).max(axis=2) > 12
    return int(diff[box].sum())


def _mouth_box(r) -> tuple[slice, slice]:  # noqa: ANN001
    """A box of a fifth of the frame around the mouth: below the eye nodes, at the head's centre line."""
    av = r.avatar

    world = _rest_world(av)
    eyes = [world[n][:3, 3] for n in av.eyes.values()]
    head = world[av.bones["head"]][:3, 3]
    mouth = np.mean(eyes, axis=0) + np.array([0.0, -0.07, 0.04]) if eyes else head + np.array([0, 0.0, 0.1])
    clip = r.camera.view_proj(r.width / r.height) @ np.append(mouth, 1.0)
    x, y = (clip[0] / clip[3] + 1) / 2 * r.width, (1 - clip[1] / clip[3]) / 2 * r.height
    h = r.height // 10
    return slice(max(0, int(y) - h), int(y) + h), slice(max(0, int(x) - h), int(x) + h)


def _rest_world(av) -> list[np.ndarray]:  # noqa: ANN001
    from avatar.gesture.gltf import _node_local

    world: list[np.ndarray] = [np.eye(4)] * len(av.nodes)
    done: set[int] = set()

    def of(i: int) -> np.ndarray:
        if i not in done:
            p = av.nodes[i].parent
            world[i] = _node_local(av.gltf.nodes[i]) if p < 0 else of(p) @ _node_local(av.gltf.nodes[i])
            done.add(i)
        return world[i]

    for i in range(len(av.nodes)):
        of(i)
    return world


# ------------------------------------------------------------------------------------------------- face


@pytest.mark.parametrize("raw,want", [("ARKit_jawOpen", "jawOpen"), ("blendShape1.JawOpen", "jawOpen"),
                                      ("A25_Jaw_Open", "jawOpen"), ("Face:mouth_smile_L", "mouthSmileLeft"),
                                      ("head.EyeBlink_R", "eyeBlinkRight"), ("viseme_aa", None), ("Angry", None)])
def test_arkit_names_with_prefixes(raw: str, want: str | None) -> None:
    from avatar.render.face_binding import arkit_name

    assert arkit_name(raw) == want


@pytest.mark.parametrize("raw,want", [("mouthOpen", "mouthOpen"), ("blendShape1.mouthSmile", "mouthSmile"),
                                      ("Angry", "angry"), ("Surprised", "surprised"), ("Sad", "sad"),
                                      ("Blink_L", "blinkLeft"), ("Fcl_MTH_A", "aa"), ("viseme_PP", "viseme_PP"),
                                      ("viseme_aa", "viseme_aa"), ("viseme_I", "viseme_ih"),
                                      ("viseme_sil", "viseme_sil"), ("Wolf3D_foo", None)])
def test_fallback_channel_names(raw: str, want: str | None) -> None:
    from avatar.render.face_binding import fallback_channel

    assert fallback_channel(raw) == want


def test_multimesh_arkit_head_binds_every_mesh(tmp_path: Path) -> None:
    from avatar.render.avatar_file import load_avatar

    av = load_avatar(gb.multimesh_arkit_head(tmp_path / "rpm.glb"))
    names = {m: av.gltf.meshes[m].name for m, _, _ in av.arkit["jawOpen"]}
    assert set(names.values()) == {"EyeLeft", "EyeRight", "Teeth", "face"}
    assert all(len(av.arkit[s]) == 4 for s in ARKIT_BLENDSHAPES)
    w = av.morph_weights(_arkit(jawOpen=0.7))
    assert sorted(round(v, 3) for (m, t), v in w.items() if v > 0) == [0.7] * 4
    assert not av.missing_shapes and not av.undriven_targets


@needs_gl
def test_multimesh_arkit_head_opens_its_mouth_in_the_video(tmp_path: Path) -> None:
    assert mouth_change(gb.multimesh_arkit_head(tmp_path / "rpm.glb")) > 40


def test_multimesh_animation_glb_has_a_weights_channel_per_driven_mesh(tmp_path: Path) -> None:
    from avatar.gesture.skeleton import HUMANOID
    from avatar.render.animation import write_animated_avatar
    from avatar.render.avatar_file import load_avatar

    av = load_avatar(gb.multimesh_arkit_head(tmp_path / "rpm.glb"))
    n = 6
    frames = np.zeros((n, len(FACE_CHANNELS)), np.float32)
    frames[:, FACE_CHANNELS.index("jawOpen")] = 0.7
    rot = np.zeros((n, len(HUMANOID.joints), 4), np.float32)
    rot[..., 3] = 1
    body = BodyMotion(fps=30.0, joints=HUMANOID.joints, rotations=rot, root_position=np.zeros((n, 3), np.float32))
    out = write_animated_avatar(av, FaceMotion(fps=30.0, frames=frames), body, tmp_path / "anim.glb")
    g = pygltflib.GLTF2().load_binary(str(out))
    anim = g.animations[-1]
    blob = g.binary_blob()
    driven = {}
    for c in anim.channels:
        if c.target.path != "weights":
            continue
        mesh = g.meshes[g.nodes[c.target.node].mesh]
        acc = g.accessors[anim.samplers[c.sampler].output]
        view = g.bufferViews[acc.bufferView]
        w = np.frombuffer(blob, np.float32, acc.count, (view.byteOffset or 0) + (acc.byteOffset or 0))
        driven[mesh.name] = w.reshape(n, -1)[:, ARKIT_BLENDSHAPES.index("jawOpen")]
    assert set(driven) == {"EyeLeft", "EyeRight", "Teeth", "face"}
    assert all(np.allclose(v, 0.7, atol=1e-5) for v in driven.values())


def test_few_shape_face_is_driven_through_stand_ins(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from avatar.render.avatar_file import load_avatar

    with caplog.at_level(logging.WARNING):
        av = load_avatar(gb.few_shape_face(tmp_path / "few.glb", {**FEW, "cheekPuff": "Wobble"}))
    assert av.face_mode == "fallback" and not av.arkit
    assert set(av.fallback) == {"mouthOpen", "mouthSmile", "angry", "blink", "surprised"}
    t = {n: i for i, n in enumerate(av.target_names)}
    w = av.morph_weights(_arkit(jawOpen=0.6, mouthSmileLeft=0.8, mouthSmileRight=0.8))
    face = next(i for i, m in enumerate(av.gltf.meshes) if m.name == "face")
    assert w[(face, t["mouthOpen"])] == pytest.approx(0.6) and w[(face, t["mouthSmile"])] == pytest.approx(0.8)
    w = av.morph_weights(_arkit(eyeBlinkLeft=1.0, eyeBlinkRight=1.0))
    assert w[(face, t["Blink"])] == pytest.approx(1.0)
    assert av.undriven_targets == ("Wobble",)
    msgs = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(msgs) == 1 and "Wobble" in msgs[0] and "mouthOpen" in msgs[0]


@needs_gl
def test_few_shape_face_opens_its_mouth_in_the_video(tmp_path: Path) -> None:
    assert mouth_change(gb.few_shape_face(tmp_path / "few.glb", FEW)) > 40


def test_viseme_only_face_is_driven_from_our_visemes(tmp_path: Path) -> None:
    from avatar.face.visemes import VISEME_TARGETS
    from avatar.render.avatar_file import load_avatar
    from avatar.types import VISEMES

    oculus = {"aa": "aa", "PP": "PP", "oh": "O", "ou": "U", "ih": "I", "FF": "FF"}
    shapes = {"jawOpen": "viseme_aa", "mouthClose": "viseme_PP", "mouthFunnel": "viseme_O",
              "mouthPucker": "viseme_U", "mouthStretchLeft": "viseme_I", "mouthRollLower": "viseme_FF"}
    av = load_avatar(gb.few_shape_face(tmp_path / "vis.glb", shapes))
    assert av.face_mode == "fallback" and set(av.fallback) == {f"viseme_{v}" for v in
                                                               ("aa", "PP", "oh", "ou", "ih", "FF")}
    t = {n: i for i, n in enumerate(av.target_names)}
    face = next(i for i, m in enumerate(av.gltf.meshes) if m.name == "face")
    for ours, theirs in oculus.items():
        w = av.morph_weights(VISEME_TARGETS[VISEMES.index(ours)])
        best = max(shapes.values(), key=lambda n: w.get((face, t[n]), 0.0))
        assert best == f"viseme_{theirs}", (ours, w)
    assert not any(av.morph_weights(np.zeros(52)).values())


def test_a_face_with_arkit_shapes_keeps_its_visemes_at_rest(tmp_path: Path) -> None:
    """Ready Player Me's two sets are alternatives: with ARKit mouth shapes the visemes would double the motion."""
    from avatar.render.avatar_file import load_avatar

    av = load_avatar(gb.few_shape_face(tmp_path / "both.glb", {"jawOpen": "jawOpen", "mouthClose": "viseme_aa"}))
    assert av.face_mode == "arkit" and not av.fallback and av.undriven_targets == ("viseme_aa",)
