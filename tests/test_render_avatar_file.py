"""Loading user avatars (avatar.render.avatar_file): mapping, warnings for missing parts, refusing bad files."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from avatar.errors import InputError
from avatar.rig.skeleton import VRM_BONES
from avatar.types import ARKIT_BLENDSHAPES

pygltflib = pytest.importorskip("pygltflib")

MIXAMO = {"hips": "Hips", "spine": "Spine", "chest": "Spine1", "upperChest": "Spine2", "neck": "Neck",
          "head": "Head", "leftShoulder": "LeftShoulder", "leftUpperArm": "LeftArm", "leftLowerArm": "LeftForeArm",
          "leftHand": "LeftHand", "leftUpperLeg": "LeftUpLeg", "leftLowerLeg": "LeftLeg", "leftFoot": "LeftFoot",
          "leftToes": "LeftToeBase"}


@pytest.fixture(scope="module")
def glb(root: Path) -> Path:
    """The committed default avatar (test_render_human.py checks it is what the script makes)."""
    path = root / "weights" / "avatars" / "default.glb"
    assert path.is_file(), "run: python -m avatar.render.make_human"
    return path


def _variant(glb: Path, out: Path, edit) -> Path:
    g = pygltflib.GLTF2().load_binary(str(glb))
    edit(g)
    out.write_bytes(b"".join(g.save_to_bytes()))
    return out


def test_default_avatar_maps_completely_without_warning(glb: Path, caplog: pytest.LogCaptureFixture) -> None:
    from avatar.render.avatar_file import load_avatar

    with caplog.at_level(logging.WARNING):
        av = load_avatar(glb)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert av.face_mode == "arkit" and set(av.arkit) == set(ARKIT_BLENDSHAPES)
    assert set(av.bones) == set(VRM_BONES) and set(av.eyes) == {"leftEye", "rightEye"}
    assert av.vrm_version == "1.0" and not av.faces_minus_z
    assert av.nodes[av.eyes["leftEye"]].parent == av.bones["head"]
    assert av.skins[0].inverse_bind.shape == (52, 4, 4)  # 22 body bones and 30 finger bones
    w = np.zeros(52)
    w[ARKIT_BLENDSHAPES.index("jawOpen")] = 0.7
    weights = av.morph_weights(w)
    face = next(i for i, m in enumerate(av.gltf.meshes) if m.name == "face")
    assert weights[(face, ARKIT_BLENDSHAPES.index("jawOpen"))] == pytest.approx(0.7)
    assert sum(weights.values()) == pytest.approx(0.7)
    with pytest.raises(InputError):
        av.morph_weights(np.full(52, np.nan))


def test_gltf_with_external_buffer_loads(glb: Path, tmp_path: Path) -> None:
    from avatar.render.avatar_file import load_avatar

    g = pygltflib.GLTF2().load_binary(str(glb))
    (tmp_path / "a.bin").write_bytes(g.binary_blob())
    g.buffers[0].uri = "a.bin"
    g._glb_data = None
    g.save_json(str(tmp_path / "a.gltf"))
    av = load_avatar(tmp_path / "a.gltf")
    assert av.face_mode == "arkit" and set(av.bones) == set(VRM_BONES) and not av.missing_bones
    head = VRM_BONES.index("head")
    assert np.allclose(av.skins[0].inverse_bind[head], load_avatar(glb).skins[0].inverse_bind[head], atol=1e-6)
    (tmp_path / "a.bin").unlink()
    with pytest.raises(InputError, match="missing buffer"):
        load_avatar(tmp_path / "a.gltf")


def test_missing_shapes_and_bones_warn_but_load(glb: Path, tmp_path: Path,
                                                caplog: pytest.LogCaptureFixture) -> None:
    from avatar.render.avatar_file import load_avatar

    def edit(g) -> None:
        g.extensions, g.extensionsUsed = {}, []
        for n in g.nodes:
            if n.name in MIXAMO:
                n.name = "mixamorig:" + MIXAMO[n.name]
            elif n.name in ("rightUpperArm", "rightLowerArm", "rightHand", "leftEye", "rightEye"):
                n.name = f"thing{id(n) % 97}"
            elif n.name and n.name.startswith("right") and "left" + n.name[5:] in MIXAMO:
                n.name = "mixamorig:Right" + MIXAMO["left" + n.name[5:]][4:]
        face = next(m for m in g.meshes if m.name == "face")
        face.extras = {"targetNames": [("blendShape1." + t if k % 2 else f"custom{k}")
                                       for k, t in enumerate(face.extras["targetNames"])]}

    path = _variant(glb, tmp_path / "mixamo.glb", edit)
    with caplog.at_level(logging.WARNING):
        av = load_avatar(path)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "missing" in warnings[0] and "rightUpperArm" in warnings[0]
    assert av.vrm_version is None and av.face_mode == "arkit"
    assert len(av.arkit) == 26 and "eyeBlinkLeft" not in av.arkit and "eyeLookDownLeft" in av.arkit
    assert set(av.missing_shapes) == set(ARKIT_BLENDSHAPES) - set(av.arkit)
    assert {"rightUpperArm", "rightLowerArm", "rightHand", "leftEye", "rightEye"} <= set(av.missing_bones)
    for ours in ("hips", "spine", "chest", "upperChest", "leftUpperArm", "leftLowerArm", "leftUpperLeg",
                 "rightUpperLeg", "rightFoot"):
        assert av.nodes[av.bones[ours]].name.endswith(MIXAMO.get(ours, MIXAMO.get("left" + ours[5:], "?"))[-5:])
    assert av.morph_weights(np.ones(52))  # the shapes it has still get driven


def test_vrm_expressions_only_avatar_is_driven_through_the_rig(glb: Path, tmp_path: Path) -> None:
    from avatar.render.avatar_file import load_avatar

    def edit(g) -> None:
        face = next(m for m in g.meshes if m.name == "face")
        face.extras = {"targetNames": [f"shape{k}" for k in range(52)]}

    av = load_avatar(_variant(glb, tmp_path / "vrm_only.vrm", edit))
    assert av.face_mode == "vrm" and not av.arkit and len(av.expressions) == 17
    from avatar.face.visemes import VISEME_TARGETS
    from avatar.types import VISEMES

    w = av.morph_weights(np.asarray(VISEME_TARGETS[VISEMES.index("aa")]))  # an "aa" mouth
    face = next(i for i, m in enumerate(av.gltf.meshes) if m.name == "face")
    assert w[(face, ARKIT_BLENDSHAPES.index("jawOpen"))] > 0.2
    assert w.get((face, ARKIT_BLENDSHAPES.index("eyeBlinkLeft")), 0.0) < 0.05


def test_vrm0_humanoid_and_blendshape_groups(glb: Path, tmp_path: Path) -> None:
    from avatar.render.avatar_file import load_avatar

    def edit(g) -> None:
        v1 = g.extensions["VRMC_vrm"]
        face_node = next(i for i, n in enumerate(g.nodes) if n.name == "face")
        face_mesh = g.nodes[face_node].mesh
        bones = [{"bone": k, "node": v["node"]} for k, v in v1["humanoid"]["humanBones"].items()]
        groups = [{"name": "A", "presetName": "a",
                   "binds": [{"mesh": face_mesh, "index": b["index"], "weight": 100 * b["weight"]}
                             for b in v1["expressions"]["preset"]["aa"]["morphTargetBinds"]]},
                  {"name": "Blink", "presetName": "blink",
                   "binds": [{"mesh": face_mesh, "index": 0, "weight": 100}, {"mesh": face_mesh, "index": 7,
                                                                                  "weight": 100}]}]
        g.extensions = {"VRM": {"humanoid": {"humanBones": bones}, "blendShapeMaster": {"blendShapeGroups": groups}}}
        g.extensionsUsed = ["VRM"]
        for i, n in enumerate(g.nodes):
            n.name = f"bone{i}"
        next(m for m in g.meshes if m.name == "face").extras = {}

    av = load_avatar(_variant(glb, tmp_path / "old.vrm", edit))
    assert av.vrm_version == "0.x" and av.face_mode == "vrm"
    assert set(av.bones) == set(VRM_BONES) and set(av.eyes) == {"leftEye", "rightEye"}
    assert set(av.expressions) == {"aa", "blink"} and av.expressions["blink"][0][2] == pytest.approx(1.0)
    assert av.faces_minus_z is False  # the toes still point +Z


@pytest.mark.parametrize("name,data", [
    ("noise.glb", bytes(range(256)) * 8),
    ("text.vrm", b"this is not a VRM avatar, just text\n" * 4),
    ("broken.gltf", b'{"asset": {"version": "2.0"}, "nodes": [ '),
    ("old.gltf", json.dumps({"asset": {"version": "1.0"}}).encode()),
    ("escape.gltf", json.dumps({"asset": {"version": "2.0"},
                                "buffers": [{"uri": "../../etc/passwd", "byteLength": 4}]}).encode()),
    ("avatar.obj", b"v 0 0 0\n" * 4),
    ("tiny.glb", b"glTF"),
])
def test_refuses_non_gltf_and_broken_files(tmp_path: Path, name: str, data: bytes) -> None:
    from avatar.render.avatar_file import load_avatar

    (tmp_path / name).write_bytes(data)
    with pytest.raises(InputError):
        load_avatar(tmp_path / name)


def test_refuses_truncated_missing_and_huge(glb: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from avatar.render import avatar_file

    cut = tmp_path / "cut.glb"
    cut.write_bytes(glb.read_bytes()[: glb.stat().st_size // 2])
    with pytest.raises(InputError, match="truncated"):
        avatar_file.load_avatar(cut)
    with pytest.raises(InputError, match="not found"):
        avatar_file.load_avatar(tmp_path / "nope.glb")
    monkeypatch.setattr(avatar_file, "MAX_BYTES", 1000)
    with pytest.raises(InputError, match="limited"):
        avatar_file.load_avatar(glb)


def test_bad_vrm_bone_map_is_an_input_error(glb: Path, tmp_path: Path) -> None:
    from avatar.render.avatar_file import load_avatar

    def edit(g) -> None:
        g.extensions["VRMC_vrm"]["humanoid"]["humanBones"]["hips"] = {"nodeX": 0}

    with pytest.raises(InputError, match="malformed"):
        load_avatar(_variant(glb, tmp_path / "bad.vrm", edit))


@pytest.mark.parametrize("raw,want", [("eyeBlink_L", "eyeBlinkLeft"), ("blendShape1.jawOpen", "jawOpen"),
                                      ("Face:MouthSmile_R", "mouthSmileRight"), ("tongue_out", "tongueOut"),
                                      ("aa", None), ("jaw", None)])
def test_arkit_name_spellings(raw: str, want: str | None) -> None:
    from avatar.render.avatar_file import arkit_name

    assert arkit_name(raw) == want


def _joint_indices_past_the_skin(g) -> None:  # noqa: ANN001
    """Weight the first 10 vertices of the first skinned primitive to joint 250 (the skin has 22)."""
    blob = bytearray(g.binary_blob())
    prim = next(p for m in g.meshes for p in m.primitives if p.attributes.JOINTS_0 is not None)
    acc = g.accessors[prim.attributes.JOINTS_0]
    view = g.bufferViews[acc.bufferView]
    dt = {5121: np.uint8, 5123: np.uint16}[acc.componentType]
    off = (view.byteOffset or 0) + (acc.byteOffset or 0)
    joints = np.frombuffer(blob, dt, count=acc.count * 4, offset=off).reshape(-1, 4).copy()
    joints[:10, 0] = 250  # slot 0 carries weight in the default avatar
    blob[off:off + joints.nbytes] = joints.tobytes()
    g.set_binary_blob(bytes(blob))


@pytest.mark.parametrize("edit,message", [
    (lambda g: g.skins[0].joints.__setitem__(3, len(g.nodes) + 50), r"skin 0 names joint node \d+, but the file has \d+"),
    (lambda g: setattr(g.skins[0], "skeleton", 999), "skin 0 names skeleton node 999"),
    (lambda g: setattr(next(n for n in g.nodes if n.skin is not None), "skin", 7), "uses skin 7, which is not"),
    (_joint_indices_past_the_skin, r"weights vertices to joint 250, but its skin 0 has \d+ joints"),
], ids=["joint-node", "skeleton", "node-skin", "vertex-joint"])
def test_skins_out_of_range_are_refused_at_load(glb: Path, tmp_path: Path, edit, message: str) -> None:  # noqa: ANN001
    """Issue 20 item 10: such an avatar loaded and failed at the first frame (a traceback with one render
    worker, exit 1 with several, a generic error in the app); now load_avatar refuses it, naming what is wrong."""
    from avatar.render.avatar_file import load_avatar

    with pytest.raises(InputError, match=message):
        load_avatar(_variant(glb, tmp_path / "bad.glb", edit))


def test_unweighted_joint_slots_may_hold_any_index(glb: Path, tmp_path: Path) -> None:
    """A joint index under a zero weight moves nothing: loaded, and zeroed for the renderer's joint texture."""
    from avatar.render.avatar_file import load_avatar
    from avatar.render.mesh import read_meshes

    def edit(g) -> None:  # noqa: ANN001
        blob = bytearray(g.binary_blob())
        prim = next(p for m in g.meshes for p in m.primitives if p.attributes.JOINTS_0 is not None)
        acc, wacc = g.accessors[prim.attributes.JOINTS_0], g.accessors[prim.attributes.WEIGHTS_0]
        view, wview = g.bufferViews[acc.bufferView], g.bufferViews[wacc.bufferView]
        dt = {5121: np.uint8, 5123: np.uint16}[acc.componentType]
        off = (view.byteOffset or 0) + (acc.byteOffset or 0)
        woff = (wview.byteOffset or 0) + (wacc.byteOffset or 0)
        joints = np.frombuffer(blob, dt, count=acc.count * 4, offset=off).reshape(-1, 4).copy()
        weights = np.frombuffer(blob, np.float32, count=wacc.count * 4, offset=woff).reshape(-1, 4)
        assert wacc.componentType == 5126 and (weights[:, 3] == 0).any()
        joints[weights[:, 3] == 0, 3] = 200
        blob[off:off + joints.nbytes] = joints.tobytes()
        g.set_binary_blob(bytes(blob))

    av = load_avatar(_variant(glb, tmp_path / "loose.glb", edit))
    meshes = read_meshes(av)
    assert max(float(p.joints.max()) for p in meshes.primitives if p.joints is not None) < len(av.skins[0].joints)


def _with_json(glb: Path, out: Path, edit, old: str, new: str) -> Path:  # noqa: ANN001
    """Like _variant, then `old` -> `new` in the JSON chunk (for values JSON writers refuse: 1e999 reads as inf)."""
    import struct

    g = pygltflib.GLTF2().load_binary(str(glb))
    edit(g)
    js = g.gltf_to_json(separators=(",", ":"), indent=None).replace(old, new).encode()
    js += b" " * (-len(js) % 4)
    blob = g.binary_blob()
    blob += b"\0" * (-len(blob) % 4)
    body = struct.pack("<I", len(js)) + b"JSON" + js + struct.pack("<I", len(blob)) + b"BIN\0" + blob
    out.write_bytes(b"glTF" + struct.pack("<II", 2, 12 + len(body)) + body)
    return out


@pytest.mark.parametrize("field,value,message", [
    ("translation", [12345.5, 0.0, 0.0], "node 0 \\('hips'\\) has a translation that is not finite"),
    ("scale", [1.0, 12345.5, 1.0], "has a scale that is not finite"),
    ("rotation", [0.0, 0.0, 0.0, 0.0], "zero-length rotation quaternion"),
    ("matrix", [1.0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 12345.5, 0, 0, 1], "has a matrix that is not finite"),
], ids=["translation-inf", "scale-inf", "rotation-zero", "matrix-inf"])
def test_non_finite_node_transforms_are_refused_at_load(glb: Path, tmp_path: Path, field: str, value: list,
                                                        message: str) -> None:
    """Issue 20 item 14: an avatar whose root is placed at infinity rendered an empty video with exit 0."""
    from avatar.render.avatar_file import load_avatar

    def edit(g) -> None:  # noqa: ANN001
        if field == "matrix":
            g.nodes[0].translation = g.nodes[0].rotation = g.nodes[0].scale = None
        setattr(g.nodes[0], field, value)

    with pytest.raises(InputError, match=message):
        load_avatar(_with_json(glb, tmp_path / "bad.glb", edit, "12345.5", "1e999"))


def test_an_avatar_scaled_to_nothing_is_refused_and_a_hidden_part_warned(glb: Path, tmp_path: Path,
                                                                          caplog: pytest.LogCaptureFixture) -> None:
    """A zero scale on the root shrinks every vertex to a point: refused before any frame (was: an empty video,
    exit 0). A zero scale that hides one rigid part is glTF's way to hide it: a warning names the mesh."""
    from avatar.render.renderer import Renderer

    def zero_root(g) -> None:  # noqa: ANN001
        g.nodes[0].scale = [0.0, 0.0, 0.0]

    with pytest.raises(InputError, match="no size at rest: .* \\(zero scale on 'hips'\\)"):
        Renderer(_variant(glb, tmp_path / "zero.glb", zero_root), gl=False)

    def hide_an_eye(g) -> None:  # noqa: ANN001
        eye = next(i for i, n in enumerate(g.nodes) if n.mesh is not None and n.skin is None)
        g.nodes[eye].scale = [0.0, 0.0, 0.0]

    with caplog.at_level(logging.WARNING, logger="avatar.render.renderer"):
        Renderer(_variant(glb, tmp_path / "hidden.glb", hide_an_eye), gl=False)
    assert any("shrunk to a point at rest" in r.getMessage() for r in caplog.records), caplog.text


def test_a_mesh_without_a_skeleton_is_framed_whole(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A plain mesh (no humanoid bones) is framed whole in both framings, with a warning; the portrait used to aim
    at the top sixth of it, filling the frame with one colour (issue 20 item 14)."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from gltf_builders import CARD, flat_png, textured_card

    from avatar.render.renderer import Renderer

    card = textured_card(tmp_path / "card.glb", png=flat_png(4, 4), uv=np.zeros((4, 2)), top_drop=0.1)
    for framing in ("portrait", "full"):
        with caplog.at_level(logging.WARNING, logger="avatar.render.renderer"):
            r = Renderer(card, framing=framing, gl=False)
        clip = r.camera.view_proj(r.width / r.height) @ np.c_[CARD, np.ones(4)].T
        ndc = clip[:2] / clip[3]
        assert np.abs(ndc).max() < 0.98, (framing, ndc)  # every corner inside the frame
        assert np.ptp(ndc[1]) > 0.8  # and the card fills most of its height
    assert "no head bone" in caplog.text


def test_cli_say_with_an_avatar_scaled_to_nothing_is_one_error_line(glb: Path, tmp_path: Path) -> None:
    import subprocess
    import sys

    def zero_root(g) -> None:  # noqa: ANN001
        g.nodes[0].scale = [0.0, 0.0, 0.0]

    bad = _variant(glb, tmp_path / "zero.glb", zero_root)
    r = subprocess.run([sys.executable, "-m", "avatar.cli", "say", "Hi.", "--avatar", str(bad), "-o",
                        str(tmp_path / "x.mp4")], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: avatar zero.glb has no size at rest"), r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["zero.glb"]
