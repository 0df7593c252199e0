"""The toon avatar (.glb made by avatar.render.make_default, `--avatar toon`): geometry, morph targets, skin, eyes, VRM."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from avatar.errors import InputError
from avatar.rig.skeleton import HUMANOID, VRM_BONES
from avatar.types import ARKIT_BLENDSHAPES

pygltflib = pytest.importorskip("pygltflib")


@pytest.fixture(scope="module")
def glb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A freshly generated default avatar."""
    from avatar.render.make_default import make_default

    return make_default(tmp_path_factory.mktemp("avatar") / "toon.glb")


@pytest.fixture(scope="module")
def gltf(glb: Path):
    """The generated avatar as a pygltflib document."""
    return pygltflib.GLTF2().load_binary(str(glb))


def _acc(gltf, index: int) -> np.ndarray:
    a = gltf.accessors[index]
    v = gltf.bufferViews[a.bufferView]
    dt = {5126: np.float32, 5123: np.uint16, 5125: np.uint32}[a.componentType]
    n = {"SCALAR": 1, "VEC3": 3, "VEC4": 4, "MAT4": 16}[a.type]
    return np.frombuffer(gltf.binary_blob(), dt, a.count * n, v.byteOffset + (a.byteOffset or 0)).reshape(a.count, n)


def _face(gltf) -> tuple[int, object]:
    i = next(k for k, m in enumerate(gltf.meshes) if m.name == "face")
    return i, gltf.meshes[i]


def _skin_prim(gltf):
    _, mesh = _face(gltf)
    return next(p for p in mesh.primitives if gltf.materials[p.material].name == "skin")


def _delta(gltf, prim, name: str) -> np.ndarray:
    return _acc(gltf, prim.targets[ARKIT_BLENDSHAPES.index(name)]["POSITION"]).astype(np.float64)


def test_committed_avatar_is_the_generated_one(glb: Path, root: Path) -> None:
    committed = root / "weights" / "avatars" / "toon.glb"
    assert committed.is_file(), "run: python -m avatar.render.make_default"
    if committed.read_bytes() == glb.read_bytes():
        return
    # Not byte-identical (another maths library can move a last bit): the same structure and the same data
    # within float32 noise still means the committed file is what the script makes.
    import numpy as np
    import pygltflib

    def rounded(x):
        if isinstance(x, float):
            return round(x, 4)
        if isinstance(x, dict):
            return {k: rounded(v) for k, v in x.items()}
        if isinstance(x, list):
            return [rounded(v) for v in x]
        return x

    a, b = pygltflib.GLTF2().load(str(committed)), pygltflib.GLTF2().load(str(glb))
    # The documents as JSON: pygltflib 1.16.5 made Attributes a plain class (no ==), which to_dict() keeps as is.
    assert rounded(json.loads(a.to_json())) == rounded(json.loads(b.to_json())), \
        "weights/avatars/toon.glb is stale: regenerate it"
    dtypes = {5120: np.int8, 5121: np.uint8, 5122: np.int16, 5123: np.uint16, 5125: np.uint32, 5126: np.float32}
    width = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT4": 16}
    for acc in a.accessors:
        view = a.bufferViews[acc.bufferView]
        start = (view.byteOffset or 0) + (acc.byteOffset or 0)
        n = acc.count * width[acc.type]
        da = np.frombuffer(a.binary_blob(), dtypes[acc.componentType], n, start)
        db = np.frombuffer(b.binary_blob(), dtypes[acc.componentType], n, start)
        if da.dtype.kind == "f":
            assert np.allclose(da, db, atol=1e-5), "weights/avatars/toon.glb is stale: regenerate it"
        else:
            assert np.array_equal(da, db), "weights/avatars/toon.glb is stale: regenerate it"


def test_loads_in_trimesh_small_enough(glb: Path, gltf) -> None:
    import trimesh

    scene = trimesh.load(str(glb))
    assert len(scene.geometry) >= 3
    lo, hi = scene.bounds
    assert 1.65 < hi[1] - lo[1] < 1.8  # about 1.7 m tall, feet on the ground
    assert abs(lo[1]) < 0.02
    verts = sum(gltf.accessors[p.attributes.POSITION].count for m in gltf.meshes for p in m.primitives)
    assert verts < 30_000
    assert glb.stat().st_size < 5_000_000


def test_52_arkit_targets_all_move_nothing_nan(gltf) -> None:
    _, mesh = _face(gltf)
    assert mesh.extras["targetNames"] == list(ARKIT_BLENDSHAPES)
    for prim in mesh.primitives:
        assert len(prim.targets) == 52
    for k, name in enumerate(ARKIT_BLENDSHAPES):
        d = np.concatenate([_acc(gltf, p.targets[k]["POSITION"]) for p in mesh.primitives])
        assert np.isfinite(d).all(), name
        assert np.abs(d).max() > 5e-4, f"{name} moves nothing"


def test_jaw_opens_down_and_smile_raises_its_own_corner(gltf) -> None:
    prim = _skin_prim(gltf)
    pos = _acc(gltf, prim.attributes.POSITION).astype(np.float64)
    front = pos[:, 2] > 0.06
    chin = np.nonzero(front & (np.abs(pos[:, 0]) < 0.01))[0]
    chin = chin[np.argmin(pos[chin, 1])]
    assert _delta(gltf, prim, "jawOpen")[chin, 1] < -0.01
    from avatar.render.character import HEAD_CENTRE, MOUTH_HALF_WIDTH, MOUTH_Y

    def nearest(p: np.ndarray) -> int:
        return int(np.argmin(np.linalg.norm(pos - p, axis=1) + 1.0 * ~front))

    y = HEAD_CENTRE[1] + MOUTH_Y
    left = nearest(np.array([MOUTH_HALF_WIDTH, y, 0.1]))
    right = nearest(np.array([-MOUTH_HALF_WIDTH, y, 0.1]))
    smile = _delta(gltf, prim, "mouthSmileLeft")
    assert smile[left, 1] > 0.005 and abs(smile[right, 1]) < 0.001
    frown = _delta(gltf, prim, "mouthFrownRight")
    assert frown[right, 1] < -0.003
    # mouthClose brings the lips together against jawOpen: the lower lip's drop is partly undone.
    lip = nearest(np.array([0.0, y - 0.002, 0.11]))
    assert _delta(gltf, prim, "mouthClose")[lip, 1] > 0.3 * -_delta(gltf, prim, "jawOpen")[lip, 1]


def test_blink_closes_the_lid_and_brows_move(gltf) -> None:
    from avatar.render.character import HEAD_CENTRE, eye_centres

    prim = _skin_prim(gltf)
    pos = _acc(gltf, prim.attributes.POSITION).astype(np.float64)
    eye = eye_centres()["left"] + HEAD_CENTRE
    above = np.nonzero((np.abs(pos[:, 0] - eye[0]) < 0.004) & (pos[:, 1] > eye[1]) & (pos[:, 2] > eye[2]))[0]
    lid = above[np.argmin(pos[above, 1])]  # the upper lid's edge over the eye's middle
    blink = _delta(gltf, prim, "eyeBlinkLeft")
    assert pos[lid, 1] + blink[lid, 1] < eye[1]  # moved below the eye's centre line
    assert np.abs(_delta(gltf, prim, "eyeBlinkRight")[lid]).max() < 1e-6
    assert _delta(gltf, prim, "eyeWideLeft")[lid, 1] > 0
    assert _delta(gltf, prim, "browInnerUp")[:, 1].max() > 0.005


def test_skin_is_the_vrm_skeleton_with_smooth_normalised_weights(gltf) -> None:
    skin = gltf.skins[0]
    assert [gltf.nodes[j].name for j in skin.joints] == list(VRM_BONES)
    ibm = _acc(gltf, skin.inverseBindMatrices).reshape(-1, 4, 4).transpose(0, 2, 1)
    assert np.allclose(ibm[:, :3, 3], -HUMANOID.rest_positions, atol=1e-6)
    body = next(m for m in gltf.meshes if m.name == "body")
    w = np.concatenate([_acc(gltf, p.attributes.WEIGHTS_0) for p in body.primitives]).astype(np.float64)
    j = np.concatenate([_acc(gltf, p.attributes.JOINTS_0) for p in body.primitives])
    assert np.abs(w.sum(axis=1) - 1.0).max() < 1e-6 and (w >= 0).all()
    assert j.max() < len(VRM_BONES)
    upper, lower = HUMANOID.index("leftUpperArm"), HUMANOID.index("leftLowerArm")
    share = (np.where(j == upper, w, 0).sum(1) > 0.2) & (np.where(j == lower, w, 0).sum(1) > 0.2)
    assert share.sum() > 20  # the elbow blends the two bones
    names = [gltf.nodes[i].name for i in range(len(gltf.nodes))]
    eyes = {n: names.index(n) for n in ("leftEye", "rightEye")}
    head = gltf.nodes[names.index("head")]
    assert set(eyes.values()) <= set(head.children)
    assert gltf.nodes[eyes["leftEye"]].translation[0] > 0 > gltf.nodes[eyes["rightEye"]].translation[0]
    assert all(gltf.nodes[i].mesh is not None for i in eyes.values())
    mats = {m.name for m in gltf.materials}
    assert {"skin", "hair", "shirt", "eyeWhite", "iris", "pupil", "mouth"} <= mats


def test_vrm_extension_binds_presets_to_arkit_targets(gltf) -> None:
    from avatar.face.rig import VRM_EXPRESSIONS, to_vrm_array
    from avatar.render.make_default import expression_prototypes

    ext = gltf.extensions["VRMC_vrm"]
    assert ext["specVersion"] == "1.0" and "VRMC_vrm" in gltf.extensionsUsed
    bones = ext["humanoid"]["humanBones"]
    assert all(gltf.nodes[v["node"]].name == k for k, v in bones.items())
    assert set(VRM_BONES) | {"leftEye", "rightEye"} == set(bones)
    face_node = next(i for i, n in enumerate(gltf.nodes) if n.name == "face")
    preset = ext["expressions"]["preset"]
    assert set(preset) == set(VRM_EXPRESSIONS)
    for name, e in preset.items():
        assert e["morphTargetBinds"], name
        assert all(b["node"] == face_node and 0 <= b["index"] < 52 and 0 < b["weight"] <= 1
                   for b in e["morphTargetBinds"])
    # Each bound prototype reads back (through face/rig.py) as its own expression, strongest.
    protos = expression_prototypes()
    for name in ("aa", "ih", "ou", "ee", "oh", "happy", "angry", "sad", "surprised", "blink"):
        v = to_vrm_array(protos[name][None])[0]
        assert VRM_EXPRESSIONS[int(np.argmax(v))] == name, name


def test_make_default_refuses_other_suffixes(tmp_path: Path) -> None:
    from avatar.render.make_default import main, make_default

    with pytest.raises(InputError):
        make_default(tmp_path / "avatar.obj")
    assert main(["--out", str(tmp_path / "x.txt")]) == 2
    assert not (tmp_path / "x.txt").exists()


def test_front_silhouette_reads_as_a_character(glb: Path) -> None:
    """An orthographic front silhouette (surface samples on a 1 cm grid): arms out, two legs, head over a neck."""
    import trimesh

    scene = trimesh.load(str(glb))
    pts = np.concatenate([trimesh.sample.sample_surface(g, 20_000, seed=0)[0] for g in scene.dump()])
    cells = {(int(np.floor(x / 0.01)), int(np.floor(y / 0.01))) for x, y in pts[:, :2]}

    def width(y: float) -> tuple[float, float]:
        xs = [cx * 0.01 for cx, cy in cells if abs(cy * 0.01 - y) < 0.006]
        return (min(xs), max(xs)) if xs else (0.0, 0.0)

    lo, hi = width(1.40)
    assert lo < -0.8 and hi > 0.8  # arms out in the T-pose
    head, neck = width(1.60), width(1.47)
    assert 0.17 < head[1] - head[0] < 0.26 and 0.05 < neck[1] - neck[0] < 0.6 * (head[1] - head[0])
    shin = {cx for cx, cy in cells if abs(cy * 0.01 - 0.5) < 0.006}
    assert 9 in shin and -10 in shin and 0 not in shin and -1 not in shin  # two legs, a gap between
