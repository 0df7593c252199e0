"""The fast glTF JSON decoder (avatar.gltf.document) gives exactly what pygltflib's own decoder gives.

Every document is decoded both ways and compared object by object: same classes, same fields, same values and
same value types (pygltflib turns a JSON 0 in a float field into 0.0; `==` alone would not see a difference).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import struct
from pathlib import Path

import numpy as np
import pytest

pygltflib = pytest.importorskip("pygltflib")

from avatar.gltf import document as gltf_json  # noqa: E402 - after the importorskip
from avatar.gltf.document import gltf_from_json, load_glb, load_gltf  # noqa: E402
from gltf_builders import textured_card  # noqa: E402 - tests/gltf_builders.py


def _slow(text: str):
    return pygltflib.GLTF2.from_json(text, infer_missing=True)


def _json_text(path: Path) -> str:
    data = path.read_bytes()
    if data[:4] != b"glTF":
        return data.decode("utf-8")
    n, kind = struct.unpack("<I4s", data[12:20])
    assert kind == b"JSON"
    return data[20:20 + n].decode("utf-8")


def _same(a, b, where: str = "gltf") -> None:
    """a and b are the same tree: classes, fields, instance attributes, values and value types."""
    assert type(a) is type(b), f"{where}: {type(a).__name__} != {type(b).__name__}"
    if dataclasses.is_dataclass(a) or isinstance(a, pygltflib.Attributes):
        assert vars(a).keys() == vars(b).keys(), f"{where}: attributes differ"
        for k in vars(a):
            _same(vars(a)[k], vars(b)[k], f"{where}.{k}")
    elif isinstance(a, dict):
        assert list(a) == list(b), f"{where}: keys {list(a)} != {list(b)}"
        for k in a:
            _same(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, list):
        assert len(a) == len(b), f"{where}: length {len(a)} != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            _same(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def _check(text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fast path (no fallback allowed) decodes `text` as pygltflib does."""
    slow = _slow(text)
    with monkeypatch.context() as m:  # a fallback to pygltflib would make the comparison vacuous
        m.setattr(pygltflib.GLTF2, "from_json", classmethod(lambda *a, **k: pytest.fail("fell back to pygltflib")))
        fast = gltf_from_json(text)
    assert type(fast) is pygltflib.GLTF2
    _same(fast, slow)
    assert pygltflib.gltf_asdict(fast) == pygltflib.gltf_asdict(slow)


# --------------------------------------------------------------------------------------------------
# Documents: the avatars the tests and builders make, and hand-written JSON for the corner cases
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def default_glb(root: Path) -> Path:
    return root / "weights" / "avatars" / "default.glb"


def _write_glb(path: Path, doc: dict, blob: bytes) -> Path:
    """A .glb/.vrm with this JSON and binary chunk (JSON padded with spaces, as the spec and pygltflib do)."""
    js = json.dumps(doc, separators=(",", ":")).encode()
    js += b" " * (-len(js) % 4)
    blob += b"\0" * (-len(blob) % 4)
    size = 12 + 8 + len(js) + 8 + len(blob)
    path.write_bytes(struct.pack("<4sII", b"glTF", 2, size) + struct.pack("<I4s", len(js), b"JSON") + js
                     + struct.pack("<I4s", len(blob), b"BIN\0") + blob)
    return path


def _vrm0(doc: dict) -> None:
    """As tests/test_render_avatar_file.py: the VRM 1.0 data rewritten as VRM 0.x, unrelated node names."""
    v1 = doc["extensions"]["VRMC_vrm"]
    face_mesh = next(n["mesh"] for n in doc["nodes"] if n.get("name") == "face")
    bones = [{"bone": k, "node": v["node"]} for k, v in v1["humanoid"]["humanBones"].items()]
    aa = v1["expressions"]["preset"]["aa"]["morphTargetBinds"]
    groups = [{"name": "A", "presetName": "a",
               "binds": [{"mesh": face_mesh, "index": b["index"], "weight": 100 * b["weight"]} for b in aa]},
              {"name": "Blink", "presetName": "blink", "binds": [{"mesh": face_mesh, "index": 0, "weight": 100}]}]
    doc["extensions"] = {"VRM": {"humanoid": {"humanBones": bones}, "blendShapeMaster": {"blendShapeGroups": groups}}}
    doc["extensionsUsed"] = ["VRM"]
    for i, n in enumerate(doc["nodes"]):
        n["name"] = f"bone{i}"
    doc["meshes"][face_mesh]["extras"] = {}


def _textured_sparse(path: Path) -> Path:
    """The renderer tests' textured card (textures, samplers, images from a bufferView, a data: URI and a file, a
    sparse morph target) plus cameras, a matrix node and every material texture slot."""
    tex = pygltflib.TextureInfo(index=0, texCoord=0)
    return textured_card(
        path, png=b"\x89PNG fake", uv=np.zeros((4, 2), np.float32), top_drop=0.5, mesh_weights=[0],
        scenes=[pygltflib.Scene(nodes=[0, 1])],
        nodes=[pygltflib.Node(name="card", mesh=0, rotation=[0, 0, 0, 1], scale=[1, 2, 1]),
               pygltflib.Node(name="cam", camera=0, matrix=[1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 3, 1])],
        cameras=[pygltflib.Camera(type="perspective", perspective=pygltflib.Perspective(yfov=0.8, znear=0.1)),
                 pygltflib.Camera(type="orthographic", orthographic=pygltflib.Orthographic(
                     xmag=1, ymag=1, zfar=10, znear=0.1))],
        materials=[pygltflib.Material(
            doubleSided=True, alphaMode="MASK", alphaCutoff=0.5, emissiveFactor=[1, 0, 0], emissiveTexture=tex,
            normalTexture=pygltflib.NormalMaterialTexture(index=0, scale=2),
            occlusionTexture=pygltflib.OcclusionTextureInfo(index=0, strength=0.5),
            pbrMetallicRoughness=pygltflib.PbrMetallicRoughness(baseColorTexture=tex, metallicRoughnessTexture=tex,
                                                                metallicFactor=0, roughnessFactor=1))],
        textures=[pygltflib.Texture(source=0, sampler=0), pygltflib.Texture(source=1), pygltflib.Texture(source=2)],
        samplers=[pygltflib.Sampler(magFilter=9729, minFilter=9987, wrapS=33071)],
        images=[pygltflib.Image(bufferView=5, mimeType="image/png"),
                pygltflib.Image(uri="data:image/png;base64,iVBORw0KGgo=", name="inline"),
                pygltflib.Image(uri="skin%20tex.png")])


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory, default_glb: Path) -> dict[str, Path]:
    """The avatars to decode, made as the repo's builders and tests make them (edits at the JSON level: cheap)."""
    from avatar.gesture.gltf import write_gltf
    from avatar.rig.rotations import euler_to_quat
    from avatar.rig.skeleton import HUMANOID
    from avatar.types import BodyMotion

    d = tmp_path_factory.mktemp("gltf_json")
    out = {"default.glb": default_glb}  # VRM 1.0, written by pygltflib (make_default)
    doc = json.loads(_json_text(default_glb))
    blob = default_glb.read_bytes()[20 + len(_json_text(default_glb).encode()) + 8:]
    vrm0 = copy.deepcopy(doc)
    _vrm0(vrm0)
    out["vrm0.vrm"] = _write_glb(d / "vrm0.vrm", vrm0, blob)
    ext = copy.deepcopy(doc)  # .gltf with an external .bin, as tests/test_render_avatar_file.py makes one
    ext["buffers"][0]["uri"] = "ext.bin"
    (d / "ext.bin").write_bytes(blob[:ext["buffers"][0]["byteLength"]])
    (d / "ext.gltf").write_text(json.dumps(ext, indent=2))
    out["ext.gltf"] = d / "ext.gltf"
    out["textured.glb"] = _textured_sparse(d / "textured.glb")
    g = pygltflib.GLTF2().load_binary(str(out["textured.glb"]))  # the same with data: URI buffers, as .gltf
    g.convert_buffers(pygltflib.BufferFormat.DATAURI)
    g.save_json(str(d / "datauri.gltf"))
    out["datauri.gltf"] = d / "datauri.gltf"
    q = euler_to_quat(np.random.default_rng(0).uniform(-30, 30, (2, len(HUMANOID.joints), 3)), "XYZ")
    motion = BodyMotion(30, HUMANOID.joints, q, np.tile([0.0, 0.95, 0.0], (2, 1)))
    out["mannequin.glb"] = write_gltf(d / "mannequin.glb", motion)  # animations, channels, samplers
    return out


# Every optional field left out: defaults and default_factory values, as pygltflib fills them in.
MINIMAL = {"asset": {"version": "2.0"}, "accessors": [{"componentType": 5126, "count": 1, "type": "SCALAR"}],
           "meshes": [{"primitives": [{"attributes": {"POSITION": 0}}]}], "nodes": [{}], "materials": [{}],
           "scenes": [{}], "skins": [{"joints": [0]}], "textures": [{}], "images": [{}], "samplers": [{}],
           "cameras": [{"type": "perspective", "perspective": {"yfov": 1, "znear": 0.1}}], "buffers": [{}],
           "bufferViews": [{"buffer": 0, "byteLength": 4}],
           "animations": [{"channels": [{"sampler": 0, "target": {"path": "rotation"}}], "samplers": [{}]}]}

# Keys pygltflib does not know, at every level: ignored.
UNKNOWN = {"asset": {"version": "2.0", "hello": 1}, "unknownTop": {"a": [1, 2]}, "KHR_thing": None,
           "accessors": [{"componentType": 5126, "count": 1, "type": "SCALAR", "junk": [1],
                          "sparse": {"count": 1, "x": 2, "indices": {"bufferView": 0, "componentType": 5121, "y": 1},
                                     "values": {"bufferView": 0, "z": None}}}],
           "meshes": [{"primitives": [{"attributes": {"POSITION": 0, "_CUSTOM_ATTR": 3}, "what": "ever"}],
                       "notAField": True}],
           "materials": [{"pbrMetallicRoughness": {"baseColorTexture": {"index": 0, "extra": 1}, "q": 1}}],
           "animations": [{"channels": [{"sampler": 0, "target": {"node": 0, "path": "weights", "bad": 1}}],
                           "samplers": [{"input": 0, "output": 0, "nope": 0}]}]}

# JSON nulls: stay None, also where the field has a non-None default or is not Optional.
NULLS = {"asset": {"version": "2.0", "generator": None, "copyright": None}, "scene": None, "extensions": None,
         "extras": None, "extensionsUsed": None, "accessors": [None, {"componentType": 5126, "count": 1, "type": "VEC3",
                                                                     "byteOffset": None, "min": None, "max": None,
                                                                     "sparse": None, "name": None}],
         "meshes": [{"name": None, "weights": None, "primitives": [
             {"attributes": None, "mode": None, "targets": None, "extras": None},
             {"attributes": {"POSITION": None}, "targets": [None, {"POSITION": 1}], "indices": None}]}],
         "nodes": [{"children": None, "translation": None, "mesh": None}],
         "materials": [{"pbrMetallicRoughness": None, "emissiveFactor": None, "alphaMode": None,
                        "doubleSided": None}],
         "samplers": [{"wrapS": None}], "animations": [{"channels": None, "samplers": [None]}]}

# Values of another JSON type than the field's: converted as dataclasses_json converts them.
COERCED = {"asset": {"version": 2, "generator": 7}, "scene": 0.0, "extensionsUsed": ["KHR_x", 3, True],
           "accessors": [{"componentType": 5126.0, "count": 4, "type": "VEC3", "normalized": 1, "byteOffset": 8.0,
                          "min": [0, -1, 2.5], "max": [1, True, 3], "name": 12}],
           "meshes": [{"weights": [0, 1, 0.5], "primitives": [{"attributes": {"POSITION": 0}, "mode": 4.0}]}],
           "nodes": [{"translation": [1, 2, 3], "rotation": [0, 0, 0, 1], "scale": [1, 1, 1], "children": [1.0],
                      "matrix": [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]}, {"name": False}],
           "materials": [{"emissiveFactor": [0, 0, 1], "alphaCutoff": 1, "doubleSided": 0, "alphaMode": "BLEND",
                          "pbrMetallicRoughness": {"baseColorFactor": [1, 1, 1, 1], "metallicFactor": 0,
                                                   "roughnessFactor": 1}}],
           "cameras": [{"type": "orthographic", "orthographic": {"xmag": 1, "ymag": 2, "zfar": 100, "znear": 0}}],
           "extras": {"nested": {"deep": [1, {"x": None}], "n": 0}, "list": [[1, 2], []]},
           "extensions": {"VRMC_vrm": {"specVersion": "1.0", "humanoid": {"humanBones": {"hips": {"node": 0}}}}}}


@pytest.mark.parametrize("name", ["default.glb", "vrm0.vrm", "ext.gltf", "textured.glb", "datauri.gltf",
                                  "mannequin.glb"])
def test_avatar_files_decode_as_pygltflib_does(files: dict[str, Path], name: str,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    _check(_json_text(files[name]), monkeypatch)


@pytest.mark.parametrize("doc", [MINIMAL, UNKNOWN, NULLS, COERCED, {"asset": {"version": "2.0"}}, {}],
                         ids=["minimal", "unknown_keys", "nulls", "coerced", "asset_only", "empty"])
def test_corner_case_documents_decode_as_pygltflib_does(doc: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    _check(json.dumps(doc), monkeypatch)


def test_the_comparison_can_fail(files: dict[str, Path]) -> None:
    text = _json_text(files["textured.glb"])
    fast, slow = gltf_from_json(text), _slow(text)
    fast.materials[0].pbrMetallicRoughness.metallicFactor = 0  # int where pygltflib has 0.0: equal, other type
    assert pygltflib.gltf_asdict(fast) == pygltflib.gltf_asdict(slow)
    with pytest.raises(AssertionError, match="metallicFactor"):
        _same(fast, slow)
    other = json.loads(text)
    other["accessors"][0]["max"][1] = 0.75  # a different document decodes differently
    with pytest.raises(AssertionError, match=r"accessors\[0\]\.max"):
        _same(gltf_from_json(json.dumps(other)), slow)
    other = json.loads(text)
    other["meshes"][0]["primitives"][0]["attributes"]["TEXCOORD_1"] = 1
    with pytest.raises(AssertionError, match="attributes"):
        _same(gltf_from_json(json.dumps(other)), slow)


@pytest.mark.parametrize("doc", [
    {"extensionsUsed": "KHR_abc"},  # pygltflib makes a list of characters
    {"nodes": [{"children": {"1": 0}}]},  # pygltflib iterates the dict's keys
    {"meshes": [{"primitives": [{"attributes": {"POSITION": 0}, "targets": "x"}]}]},
])
def test_odd_shapes_fall_back_to_pygltflib(doc: dict, caplog: pytest.LogCaptureFixture) -> None:
    text = json.dumps({"asset": {"version": "2.0"}, **doc})
    with caplog.at_level(logging.DEBUG, logger=gltf_json.__name__):
        fast = gltf_from_json(text)
    assert any("fell back" in r.getMessage() for r in caplog.records)
    _same(fast, _slow(text))


@pytest.mark.parametrize("doc", [
    {"asset": []}, {"extras": "text"}, {"accessors": [{"max": [None]}]}, {"meshes": None},
    {"meshes": [{"primitives": [{}]}]},  # pygltflib's Attributes(**Attributes()) fails on a missing attributes
])
def test_documents_pygltflib_refuses_are_refused_the_same_way(doc: dict) -> None:
    text = json.dumps(doc)
    with pytest.raises(Exception) as slow_exc:  # noqa: PT011 - whatever pygltflib raises
        _slow(text)
    with pytest.raises(type(slow_exc.value)):
        gltf_from_json(text)


def test_broken_json_raises_as_in_pygltflib() -> None:
    with pytest.raises(json.JSONDecodeError):
        gltf_from_json('{"asset": {"version": "2.0"}, "nodes": [ ')


# --------------------------------------------------------------------------------------------------
# The loaders: pygltflib's container handling, the same objects for deepcopy, save and convert_buffers
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["default.glb", "textured.glb"])
def test_load_glb_matches_load_binary(files: dict[str, Path], name: str) -> None:
    fast, slow = load_glb(files[name]), pygltflib.GLTF2().load_binary(str(files[name]))
    assert type(fast) is pygltflib.GLTF2
    assert fast.binary_blob() == slow.binary_blob() and isinstance(fast.binary_blob(), type(slow.binary_blob()))
    _same(fast, slow)  # also _path, _name and _glb_data: they are instance attributes
    _same(copy.deepcopy(fast), slow)
    if name == "textured.glb":  # (saving the default avatar takes pygltflib a second)
        assert b"".join(fast.save_to_bytes()) == b"".join(slow.save_to_bytes())
        assert fast.to_json() == slow.to_json()


@pytest.mark.filterwarnings("ignore:Conversion will leave")  # pygltflib: the .bin is only read
@pytest.mark.parametrize("name", ["ext.gltf", "datauri.gltf"])
def test_load_gltf_matches_load_json(files: dict[str, Path], name: str) -> None:
    fast, slow = load_gltf(files[name]), pygltflib.GLTF2().load_json(str(files[name]))
    assert type(fast) is pygltflib.GLTF2
    _same(fast, slow)
    for g in (fast, slow):
        g.convert_buffers(pygltflib.BufferFormat.BINARYBLOB)
    _same(fast, slow)


@pytest.mark.parametrize("name", ["default.glb", "ext.gltf", "textured.glb"])
def test_load_avatar_is_unchanged(files: dict[str, Path], name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from avatar.render.avatar_file import load_avatar

    with monkeypatch.context() as m:  # the fast path, without falling back
        m.setattr(pygltflib.GLTF2, "from_json", classmethod(lambda *a, **k: pytest.fail("fell back to pygltflib")))
        fast = load_avatar(files[name])
    calls = []
    with monkeypatch.context() as m:  # _read as it was: pygltflib's own loaders
        m.setattr(gltf_json, "load_glb", lambda p: calls.append(p) or pygltflib.GLTF2().load_binary(str(p)))
        m.setattr(gltf_json, "load_gltf", lambda p: calls.append(p) or pygltflib.GLTF2().load_json(str(p)))
        slow = load_avatar(files[name])
    assert calls == [files[name]]
    _same(fast.gltf, slow.gltf)
    for f in ("path", "nodes", "bones", "eyes", "arkit", "expressions", "vrm_version", "faces_minus_z",
              "missing_shapes", "missing_bones"):
        assert getattr(fast, f) == getattr(slow, f), f
    assert len(fast.skins) == len(slow.skins)
    for a, b in zip(fast.skins, slow.skins):
        assert a.joints == b.joints and np.array_equal(a.inverse_bind, b.inverse_bind)
    if name == "default.glb":
        assert fast.face_mode == "arkit" and len(fast.arkit) == 52 and fast.vrm_version == "1.0"
