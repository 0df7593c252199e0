"""A small glTF test asset shared by the renderer and glTF-reader tests: a textured card with a sparse morph target."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pygltflib

#: The card's corners: a 1 x 1 m quad facing +Z, standing on y = 0.
CARD = np.array([[-0.5, 0, 0], [0.5, 0, 0], [0.5, 1, 0], [-0.5, 1, 0]], np.float32)


def textured_card(path: Path, *, png: bytes, uv: np.ndarray, top_drop: float, mesh_weights: list | None = None,
                  **doc: Any) -> Path:
    """Write a .glb of CARD with texture coordinates `uv` [4, 2], an image stored in the buffer (`png`, buffer view
    5, for `doc`'s images to use) and one morph target 'JawOpen', a sparse accessor that lowers the two top
    corners by `top_drop` m. `doc` gives the rest of the document (materials, textures, images, samplers; nodes,
    scenes and cameras replace a single node 'card')."""
    parts = [CARD.tobytes(), np.asarray(uv, np.float32).tobytes(), np.array([0, 1, 2, 0, 2, 3], np.uint16).tobytes(),
             np.array([2, 3], np.uint16).tobytes(), np.array([[0, -top_drop, 0]] * 2, np.float32).tobytes(), png]
    blob, views = b"", []
    for p in parts:  # each view 4-byte aligned, as glTF requires of float accessors
        blob += b"\0" * (-len(blob) % 4)
        views.append(pygltflib.BufferView(buffer=0, byteOffset=len(blob), byteLength=len(p)))
        blob += p
    sparse = pygltflib.Sparse(count=2, indices=pygltflib.AccessorSparseIndices(bufferView=3, componentType=5123),
                              values=pygltflib.AccessorSparseValues(bufferView=4, byteOffset=0))
    fields: dict[str, Any] = dict(
        scene=0, scenes=[pygltflib.Scene(nodes=[0])], nodes=[pygltflib.Node(name="card", mesh=0)],
        meshes=[pygltflib.Mesh(extras={"targetNames": ["JawOpen"]}, weights=mesh_weights,
                               primitives=[pygltflib.Primitive(attributes=pygltflib.Attributes(POSITION=0, TEXCOORD_0=1),
                                                               indices=2, material=0, targets=[{"POSITION": 3}])])],
        accessors=[pygltflib.Accessor(bufferView=0, componentType=5126, count=4, type="VEC3",
                                      min=CARD.min(0).tolist(), max=CARD.max(0).tolist()),
                   pygltflib.Accessor(bufferView=1, componentType=5126, count=4, type="VEC2", normalized=False),
                   pygltflib.Accessor(bufferView=2, componentType=5123, count=6, type="SCALAR"),
                   pygltflib.Accessor(componentType=5126, count=4, type="VEC3", sparse=sparse,
                                      min=[0, -top_drop, 0], max=[0, 0, 0])],
        bufferViews=views, buffers=[pygltflib.Buffer(byteLength=len(blob))])
    fields.update(doc)
    g = pygltflib.GLTF2(**fields)
    g.set_binary_blob(blob)
    path.write_bytes(b"".join(g.save_to_bytes()))
    return path


def flat_png(width: int, height: int, rgb: tuple[int, int, int] = (200, 150, 120)) -> bytes:
    """A valid RGB PNG of one colour: a 12000 x 12000 image (432 MB decoded) is about 450 kB and takes a second to
    make (for texture-bomb tests). Rows after the first use PNG's Up filter (all zeros); a stretch of such rows
    is deflated once, flushed to a byte boundary with the window reset, and the same bytes repeated."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    first = b"\0" + bytes(rgb) * width  # filter 0 (None): the pixels
    same = b"\2" + bytes(3 * width)  # filter 2 (Up): the row above again
    k = max(1, min(height - 1, (4 << 20) // len(same)))  # rows per repeated stretch
    z = zlib.compressobj(9, zlib.DEFLATED, -15)  # raw deflate: the zlib header and checksum are added below
    parts = [z.compress(first) + z.flush(zlib.Z_FULL_FLUSH)]
    adler = zlib.adler32(first)
    rest = height - 1
    if rest:
        stretch = z.compress(same * k) + z.flush(zlib.Z_FULL_FLUSH)  # no back-references across the flush
        for _ in range(rest // k):
            parts.append(stretch)
            adler = zlib.adler32(same * k, adler)
        tail = same * (rest % k)
        parts.append(z.compress(tail))
        adler = zlib.adler32(tail, adler)
    parts.append(z.flush())
    idat = b"\x78\xda" + b"".join(parts) + struct.pack(">I", adler & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def textured_avatar(path: Path, image: bytes) -> Path:
    """The shipped default avatar with `image` as the base-colour texture of its first material (a UV set is
    added to every primitive that lacks one), written as .glb."""
    import copy

    src = Path(__file__).resolve().parents[1] / "weights" / "avatars" / "default.glb"
    g = pygltflib.GLTF2().load(str(src))
    blob = bytearray(g.binary_blob())
    blob += b"\0" * (-len(blob) % 4)
    g.bufferViews.append(pygltflib.BufferView(buffer=0, byteOffset=len(blob), byteLength=len(image)))
    blob += image
    img_view = len(g.bufferViews) - 1
    for mesh in g.meshes:
        for prim in mesh.primitives:
            if prim.attributes.TEXCOORD_0 is None:
                n = g.accessors[prim.attributes.POSITION].count
                blob += b"\0" * (-len(blob) % 4)
                uv = np.full((n, 2), 0.5, np.float32).tobytes()
                g.bufferViews.append(pygltflib.BufferView(buffer=0, byteOffset=len(blob), byteLength=len(uv)))
                blob += uv
                g.accessors.append(pygltflib.Accessor(bufferView=len(g.bufferViews) - 1, componentType=5126,
                                                      count=n, type="VEC2"))
                prim.attributes.TEXCOORD_0 = len(g.accessors) - 1
    g.images = [pygltflib.Image(bufferView=img_view, mimeType="image/png")]
    g.textures = [pygltflib.Texture(source=0)]
    mats = g.materials or [pygltflib.Material()]
    for m in mats:
        m.pbrMetallicRoughness = copy.deepcopy(m.pbrMetallicRoughness) or pygltflib.PbrMetallicRoughness()
        m.pbrMetallicRoughness.baseColorTexture = pygltflib.TextureInfo(index=0)
    g.materials = mats
    blob += b"\0" * (-len(blob) % 4)
    g.buffers = [pygltflib.Buffer(byteLength=len(blob))]
    g.set_binary_blob(bytes(blob))
    path.write_bytes(b"".join(g.save_to_bytes()))
    return path


# --------------------------------------------------------------------------------------------------
# Third-party conventions (issue 25): the shipped default avatar rewritten as other tools write avatars.
# --------------------------------------------------------------------------------------------------

DEFAULT_GLB = Path(__file__).resolve().parents[1] / "weights" / "avatars" / "default.glb"

#: Mixamo without its "mixamorig:" prefix (Ready Player Me, Avaturn, many VRoid conversions).
MIXAMO_NAMES = {
    "hips": "Hips", "spine": "Spine", "chest": "Spine1", "upperChest": "Spine2", "neck": "Neck", "head": "Head",
    **{f"{s}{b}": f"{S}{m}" for s, S in (("left", "Left"), ("right", "Right")) for b, m in (
        ("Shoulder", "Shoulder"), ("UpperArm", "Arm"), ("LowerArm", "ForeArm"), ("Hand", "Hand"),
        ("UpperLeg", "UpLeg"), ("LowerLeg", "Leg"), ("Foot", "Foot"), ("Toes", "ToeBase"), ("Eye", "Eye"))},
}
_FINGERS = ("Thumb", "Index", "Middle", "Ring", "Little")
_JOINTS = {"Thumb": ("Metacarpal", "Proximal", "Distal"), **{f: ("Proximal", "Intermediate", "Distal") for f in _FINGERS[1:]}}
MIXAMO_NAMES.update({f"{s}{f}{j}": f"{S}Hand{'Pinky' if f == 'Little' else f}{k + 1}"
                     for s, S in (("left", "Left"), ("right", "Right")) for f in _FINGERS
                     for k, j in enumerate(_JOINTS[f])})
#: Blender's names: ".L" on the left, "_R" on the right (both are common), spine as Unity names it.
BLENDER_NAMES = {
    "hips": "Hips", "spine": "Spine", "chest": "Chest", "upperChest": "UpperChest", "neck": "Neck", "head": "Head",
    **{f"{s}{b}": f"{m}{suffix}" for s, suffix in (("left", ".L"), ("right", "_R")) for b, m in (
        ("Shoulder", "shoulder"), ("UpperArm", "upper_arm"), ("LowerArm", "forearm"), ("Hand", "hand"),
        ("UpperLeg", "thigh"), ("LowerLeg", "shin"), ("Foot", "foot"), ("Toes", "toe"), ("Eye", "eye"))},
    **{f"{s}{f}{j}": f"{'thumb' if f == 'Thumb' else 'f_' + f.lower()}.0{k + 1}{suffix}"
       for s, suffix in (("left", ".L"), ("right", "_R")) for f in _FINGERS for k, j in enumerate(_JOINTS[f])},
}


def _load_default() -> tuple[pygltflib.GLTF2, dict[str, int], bytearray]:
    """The default avatar as plain glTF (VRM extension removed): document, humanoid bone -> node, its blob."""
    g = pygltflib.GLTF2().load(str(DEFAULT_GLB))
    bones = {b: int(v["node"]) for b, v in g.extensions["VRMC_vrm"]["humanoid"]["humanBones"].items()}
    g.extensions, g.extensionsUsed = {}, []
    return g, bones, bytearray(g.binary_blob())


def _add(g: pygltflib.GLTF2, blob: bytearray, arr: np.ndarray, comp: int, typ: str, minmax: bool = False) -> int:
    """Append an array to the blob as a new bufferView + accessor; the accessor's index."""
    blob += b"\0" * (-len(blob) % 4)
    raw = np.ascontiguousarray(arr).tobytes()
    g.bufferViews.append(pygltflib.BufferView(buffer=0, byteOffset=len(blob), byteLength=len(raw)))
    blob += raw
    acc = pygltflib.Accessor(bufferView=len(g.bufferViews) - 1, componentType=comp, count=len(arr), type=typ)
    if minmax:
        acc.min, acc.max = arr.min(0).tolist(), arr.max(0).tolist()
    g.accessors.append(acc)
    return len(g.accessors) - 1


def _write(g: pygltflib.GLTF2, blob: bytearray, path: Path) -> Path:
    blob += b"\0" * (-len(blob) % 4)
    for acc in g.accessors:  # pygltflib reads byteOffset 0 where glTF forbids it (sparse, no bufferView)
        if acc.bufferView is None:
            acc.byteOffset = None
    g.buffers = [pygltflib.Buffer(byteLength=len(blob))]
    g.set_binary_blob(bytes(blob))
    path.write_bytes(b"".join(g.save_to_bytes()))
    return path


def renamed_rig(path: Path, names: dict[str, str], prefix: str = "") -> Path:
    """The default avatar as a plain glTF whose humanoid bones (and eye nodes) are named `prefix + names[bone]`."""
    g, bones, blob = _load_default()
    for bone, node in bones.items():
        if bone in names:
            g.nodes[node].name = prefix + names[bone]
    return _write(g, blob, path)


def multimesh_arkit_head(path: Path) -> Path:
    """A Ready Player Me-like face: the default avatar (plain glTF, Mixamo bone names) whose head targets are named
    "ARKit_<shape>", plus two eye meshes and a teeth mesh that come first in the file and carry all 52 ARKit
    targets too (plain names): the eyes' targets are empty, the teeth's jawOpen lowers them 1 cm."""
    from avatar.types import ARKIT_BLENDSHAPES

    g, bones, blob = _load_default()
    for bone, node in bones.items():
        g.nodes[node].name = MIXAMO_NAMES.get(bone, g.nodes[node].name)
    face = next(m for m in g.meshes if m.name == "face")
    face.extras = {"targetNames": ["ARKit_" + n for n in face.extras["targetNames"]]}
    quad = np.array([[-0.005, -0.005, 0], [0.005, -0.005, 0], [0.005, 0.005, 0], [-0.005, 0.005, 0]], np.float32)
    zeros = _add(g, blob, np.zeros_like(quad), 5126, "VEC3", minmax=True)
    drop = _add(g, blob, np.tile(np.float32([0, -0.01, 0]), (4, 1)), 5126, "VEC3", minmax=True)
    idx = _add(g, blob, np.array([0, 1, 2, 0, 2, 3], np.uint16), 5123, "SCALAR")
    new_meshes = []
    for name, jaw in (("EyeLeft", zeros), ("EyeRight", zeros), ("Teeth", drop)):
        pos = _add(g, blob, quad, 5126, "VEC3", minmax=True)
        targets = [{"POSITION": jaw if n == "jawOpen" else zeros} for n in ARKIT_BLENDSHAPES]
        new_meshes.append(pygltflib.Mesh(name=name, extras={"targetNames": list(ARKIT_BLENDSHAPES)},
                                         primitives=[pygltflib.Primitive(attributes=pygltflib.Attributes(POSITION=pos),
                                                                         indices=idx, targets=targets)]))
    k = len(new_meshes)
    for nd in g.nodes:  # the new meshes go first, as an eye does in a Ready Player Me file
        if nd.mesh is not None:
            nd.mesh += k
    g.meshes = new_meshes + g.meshes
    for m, parent in enumerate((bones["leftEye"], bones["rightEye"], bones["head"])):
        g.nodes.append(pygltflib.Node(name=new_meshes[m].name, mesh=m))
        g.nodes[parent].children = (g.nodes[parent].children or []) + [len(g.nodes) - 1]
    return _write(g, blob, path)


def few_shape_face(path: Path, shapes: dict[str, str]) -> Path:
    """The default avatar (plain glTF) whose face keeps only the ARKit targets in `shapes`, renamed to its
    values (e.g. {"jawOpen": "mouthOpen", "browDownLeft": "Angry"})."""
    g, _, blob = _load_default()
    face = next(m for m in g.meshes if m.name == "face")
    names = face.extras["targetNames"]
    keep = [names.index(k) for k in shapes]
    for prim in face.primitives:
        prim.targets = [prim.targets[i] for i in keep]
    face.extras = {"targetNames": list(shapes.values())}
    if face.weights:
        face.weights = [face.weights[i] for i in keep]
    return _write(g, blob, path)


_NP = {5126: np.float32, 5123: np.uint16, 5121: np.uint8}
_WIDTH = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT4": 16}


def _read(g: pygltflib.GLTF2, blob: bytearray, index: int) -> np.ndarray:
    """An accessor's values [count, width] (tightly packed or strided views)."""
    acc = g.accessors[index]
    view = g.bufferViews[acc.bufferView]
    dt = np.dtype(_NP[acc.componentType])
    width = _WIDTH[acc.type]
    stride = view.byteStride or dt.itemsize * width
    start = (view.byteOffset or 0) + (acc.byteOffset or 0)
    rows = [np.frombuffer(blob, dt, width, start + k * stride) for k in range(acc.count)] if view.byteStride else None
    return np.stack(rows) if rows else np.frombuffer(blob, dt, acc.count * width, start).reshape(acc.count, width)


def a_pose_rig(path: Path, names: dict[str, str] = BLENDER_NAMES, degrees: float = 40.0) -> Path:
    """The default avatar re-modelled in an A-pose, as Blender / MakeHuman exports are: each upper arm's rest is
    turned `degrees` down about the body's front axis, the skinned meshes are re-posed to it (linear-blend
    skinning) and bound there (new inverse bind matrices), and the bones are renamed (`names`). Morph targets
    stay as they are: they move the face, which the arms do not carry."""
    from avatar.gltf.nodes import node_local

    g, bones, blob = _load_default()
    n = len(g.nodes)
    parent = [-1] * n
    for i, nd in enumerate(g.nodes):
        for c in nd.children or []:
            parent[c] = i

    def worlds() -> np.ndarray:
        local = [node_local(nd) for nd in g.nodes]
        out = np.zeros((n, 4, 4))
        done = [False] * n

        def w(i: int) -> np.ndarray:
            if not done[i]:
                out[i] = local[i] if parent[i] < 0 else w(parent[i]) @ local[i]
                done[i] = True
            return out[i]

        for i in range(n):
            w(i)
        return out

    t_world = worlds()
    from avatar.rig.rotations import matrix_to_quat

    for side, sign in (("left", -1.0), ("right", 1.0)):  # the left arm (+X) lowers by a negative turn about +Z
        node = bones[f"{side}UpperArm"]
        a = np.radians(degrees) * sign
        rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
        pw = t_world[parent[node]][:3, :3]
        local = node_local(g.nodes[node])[:3, :3]
        g.nodes[node].rotation = [float(v) for v in matrix_to_quat(np.linalg.inv(pw) @ rz @ pw @ local)]
    a_world = worlds()
    skin = g.skins[0]
    joints = list(skin.joints)
    ibm = _read(g, blob, skin.inverseBindMatrices).reshape(-1, 4, 4).transpose(0, 2, 1).astype(np.float64)
    move = np.einsum("jab,jbc->jac", a_world[joints], ibm)  # bind pose -> A-pose, per joint
    for nd in g.nodes:
        if nd.skin is None:
            continue
        for prim in g.meshes[nd.mesh].primitives:
            at = prim.attributes
            j4 = _read(g, blob, at.JOINTS_0).astype(np.int64)
            w4 = _read(g, blob, at.WEIGHTS_0).astype(np.float64)
            m = np.einsum("vk,vkab->vab", w4, move[j4])  # blended matrix per vertex
            pos = _read(g, blob, at.POSITION).astype(np.float64)
            at.POSITION = _add(g, blob, (np.einsum("vab,vb->va", m[:, :3, :3], pos) + m[:, :3, 3]).astype(np.float32),
                               5126, "VEC3", minmax=True)
            if at.NORMAL is not None:
                nrm = np.einsum("vab,vb->va", m[:, :3, :3], _read(g, blob, at.NORMAL).astype(np.float64))
                nrm /= np.maximum(np.linalg.norm(nrm, axis=1, keepdims=True), 1e-12)
                at.NORMAL = _add(g, blob, nrm.astype(np.float32), 5126, "VEC3")
    new_ibm = np.linalg.inv(a_world[joints]).transpose(0, 2, 1).reshape(-1, 16).astype(np.float32)
    skin.inverseBindMatrices = _add(g, blob, new_ibm, 5126, "MAT4")
    for bone, node in bones.items():
        if bone in names:
            g.nodes[node].name = names[bone]
    return _write(g, blob, path)


def vrm0_avatar(path: Path, drop: tuple[str, ...] = ("upperChest",), minus_z: bool = True) -> Path:
    """The default avatar as a VRM 0.x file, as VRoid exports them: humanoid without `drop`, turned to face -Z
    (`minus_z`), nodes and morph targets renamed (so only the VRM extension maps them), blend shape groups for the
    presets (A, Joy, Blink_L ... from the VRM 1.0 ones) and 52 "perfect sync" groups named as ARKit shapes with
    the first letter upper-cased (`JawOpen`), each bound to its morph target."""
    from avatar.face.rig import VRM0_NAMES
    from avatar.types import ARKIT_BLENDSHAPES

    g = pygltflib.GLTF2().load(str(DEFAULT_GLB))
    blob = bytearray(g.binary_blob())
    v1 = g.extensions["VRMC_vrm"]
    face_node = next(i for i, n in enumerate(g.nodes) if n.name == "face")
    face_mesh = g.nodes[face_node].mesh
    targets = list(g.meshes[face_mesh].extras["targetNames"])
    thumb0 = {"ThumbMetacarpal": "ThumbProximal", "ThumbProximal": "ThumbIntermediate"}  # VRM 0.x thumb names

    def name0(bone: str) -> str:
        for v1_name, v0_name in thumb0.items():
            if bone.endswith(v1_name):
                return bone[: -len(v1_name)] + v0_name
        return bone

    bones = [{"bone": name0(k), "node": v["node"]} for k, v in v1["humanoid"]["humanBones"].items() if k not in drop]
    display = {"a": "A", "i": "I", "u": "U", "e": "E", "o": "O", "joy": "Joy", "angry": "Angry", "sorrow": "Sorrow",
               "fun": "Fun", "surprised": "Surprised", "blink": "Blink", "blink_l": "Blink_L", "blink_r": "Blink_R"}
    groups = []
    for name, e in v1["expressions"]["preset"].items():
        preset = VRM0_NAMES.get(name)
        if preset in display:
            groups.append({"name": display[preset], "presetName": preset,
                           "binds": [{"mesh": face_mesh, "index": b["index"], "weight": 100 * b["weight"]}
                                     for b in e.get("morphTargetBinds", [])]})
    for shape in ARKIT_BLENDSHAPES:
        groups.append({"name": shape[0].upper() + shape[1:], "presetName": "unknown",
                       "binds": [{"mesh": face_mesh, "index": targets.index(shape), "weight": 100}]})
    meta = {"title": "vroid-style test avatar", "version": "1", "author": "tests", "allowedUserName": "Everyone",
            "violentUssageName": "Allow", "sexualUssageName": "Allow", "commercialUssageName": "Allow",
            "licenseName": "CC0"}
    g.extensions = {"VRM": {"specVersion": "0.0", "exporterVersion": "tests", "meta": meta,
                            "humanoid": {"humanBones": bones},
                            "blendShapeMaster": {"blendShapeGroups": groups}}}
    g.extensionsUsed = ["VRM"]
    for i, n in enumerate(g.nodes):
        n.name = f"node{i}"
    g.meshes[face_mesh].extras = {"targetNames": [f"shape{k}" for k in range(len(targets))]}
    if minus_z:  # a half turn about Y on every scene root
        from avatar.rig.rotations import quat_mul

        for r in g.scenes[g.scene or 0].nodes:
            if g.nodes[r].skin is not None:  # a skinned mesh's own transform is ignored (and glTF warns)
                continue
            q = np.asarray(g.nodes[r].rotation or [0.0, 0.0, 0.0, 1.0], dtype=np.float64)
            g.nodes[r].rotation = [float(v) for v in quat_mul(np.array([0.0, 1.0, 0.0, 0.0]), q)]
            if g.nodes[r].translation:
                t = g.nodes[r].translation
                g.nodes[r].translation = [-t[0], t[1], -t[2]]
    return _write(g, blob, path)


TOOLS = Path(__file__).resolve().parents[1] / "bench" / "tools"
GLTF_TRANSFORM = TOOLS / "node_modules" / ".bin" / "gltf-transform"
#: gltf-transform (npm @gltf-transform/cli) commands the test copies are made with, and what each adds.
GLTF_TRANSFORM_COMMANDS = {"meshopt": "EXT_meshopt_compression", "quantize": "KHR_mesh_quantization",
                           "webp": "EXT_texture_webp"}


def have_gltf_transform() -> bool:
    """Whether node and @gltf-transform/cli (bash bench/tools/setup.sh) are installed."""
    import shutil

    return shutil.which("node") is not None and GLTF_TRANSFORM.is_file()


def gltf_transform_copy(src: Path, out: Path, command: str) -> Path:
    """A copy of `src` made by gltf-transform's own CLI: `meshopt` (EXT_meshopt_compression + quantization, as
    gltfpack does), `quantize` (KHR_mesh_quantization) or `webp` (EXT_texture_webp, through sharp)."""
    import subprocess

    if command not in GLTF_TRANSFORM_COMMANDS:
        raise ValueError(f"unknown gltf-transform command {command!r}")
    r = subprocess.run([str(GLTF_TRANSFORM), command, str(src), str(out)], capture_output=True, text=True,
                       timeout=300, check=False)
    if r.returncode:
        raise RuntimeError(f"gltf-transform {command} failed: {r.stderr.strip()[-400:]}")
    return out
