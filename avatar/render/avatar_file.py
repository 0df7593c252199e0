"""Load a user avatar (.glb / .gltf / .vrm, glTF 2.0 and VRM 0.x / 1.0) into what the renderer needs.

`load_avatar(path)` reads the file with pygltflib, refuses what is not a sound glTF 2.0 file (InputError),
and maps the avatar onto our motion data:

- Face: morph targets named as ARKit shapes (mesh or primitive extras.targetNames, case-insensitive, common
  spellings such as "eyeBlink_L" or "blendShape1.jawOpen" accepted; VRM expressions named as ARKit shapes
  count too) drive FaceMotion's 52 channels directly. An avatar with only VRM preset expressions (VRM 1.0
  `expressions.preset`, VRM 0.x `blendShapeMaster` presets) is driven through avatar.face.rig.to_vrm_array.
- Body: bones come from the VRM 1.0 / 0.x humanoid map, else from node names (VRM, Unity and Mixamo
  spellings such as "mixamorig:LeftArm"), via avatar.gesture.gltf.humanoid_nodes.
- Eyes: the leftEye / rightEye humanoid bones (or nodes named so), which gaze rotates.

An avatar missing shapes or bones still loads: one warning lists what is missing, and those parts stay at
rest.
"""

from __future__ import annotations

import json
import logging
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from avatar.errors import InputError
from avatar.gesture.gltf import humanoid_nodes
from avatar.gltf.nodes import node_local
from avatar.rig.skeleton import HUMANOID
from avatar.io import safe_join
from avatar.types import ARKIT_BLENDSHAPES

from .face_binding import arkit_name, fallback_channel, fallback_sources, fallback_weights

if TYPE_CHECKING:
    from pygltflib import GLTF2

__all__ = ["Avatar", "AvatarNode", "AvatarSkin", "arkit_name", "check_avatar_file", "load_avatar"]

log = logging.getLogger(__name__)

#: Largest avatar file we read.
MAX_BYTES = 200 * 1024 * 1024
_EYES = ("leftEye", "rightEye")

Bind = tuple[int, int, float]  # (mesh index, morph target index, weight in [0, 1])


@dataclass(frozen=True)
class AvatarNode:
    """One glTF node: its name, hierarchy and rest transform (T, R as xyzw, S), and what it carries."""

    name: str
    parent: int  # -1 for a root
    children: tuple[int, ...]
    translation: tuple[float, float, float]
    rotation: tuple[float, float, float, float]
    scale: tuple[float, float, float]
    mesh: int | None = None
    skin: int | None = None


@dataclass(frozen=True)
class AvatarSkin:
    """A glTF skin: joint node indices and their inverse bind matrices [J, 4, 4] (row-major)."""

    joints: tuple[int, ...]
    inverse_bind: np.ndarray = field(repr=False)


@dataclass
class Avatar:
    """A loaded avatar: the glTF document plus the mappings that drive it from FaceMotion and BodyMotion."""

    path: Path
    gltf: object = field(repr=False)  # pygltflib.GLTF2 (geometry, materials, buffers for the renderer)
    nodes: tuple[AvatarNode, ...] = field(repr=False)
    skins: tuple[AvatarSkin, ...] = field(repr=False)
    bones: dict[str, int]  # VRM humanoid bone -> node index
    eyes: dict[str, int]  # "leftEye"/"rightEye" -> node index
    arkit: dict[str, list[Bind]]  # ARKit shape -> morph targets it drives
    expressions: dict[str, list[Bind]]  # VRM 1.0 preset expression -> morph targets (used without ARKit shapes)
    vrm_version: str | None  # "0.x", "1.0" or None for plain glTF
    faces_minus_z: bool  # VRM 0.x avatars face -Z; ours and VRM 1.0 face +Z
    missing_shapes: tuple[str, ...] = ()
    missing_bones: tuple[str, ...] = ()
    #: Fallback channel (few-shape "mouthOpen", a VRM preset name, "viseme_aa", ...) -> the targets it drives,
    #: for targets no ARKit shape or VRM expression drives (face_binding.py).
    fallback: dict[str, list[Bind]] = field(default_factory=dict)
    #: Every distinct morph target name of the file's meshes, and those nothing drives.
    target_names: tuple[str, ...] = ()
    undriven_targets: tuple[str, ...] = ()

    @property
    def face_mode(self) -> str:
        """How FaceMotion drives the face: "arkit" (per shape), "vrm" (presets via face/rig.py), "fallback"
        (only fallback channels: few-shape faces, visemes) or "none"."""
        if self.arkit:
            return "arkit"
        if self.expressions:
            return "vrm"
        return "fallback" if self.fallback else "none"

    def morph_weights(self, arkit: np.ndarray) -> dict[tuple[int, int], float]:
        """Morph target weights {(mesh, target): w} for one frame of the 52 ARKit weights."""
        a = np.asarray(arkit, dtype=np.float64).reshape(-1)
        if a.shape != (len(ARKIT_BLENDSHAPES),) or not np.isfinite(a).all():
            raise InputError(f"need 52 finite ARKit weights, got shape {a.shape}")
        out: dict[tuple[int, int], float] = {}
        tables: list[tuple[dict[str, list[Bind]], dict[str, float]]] = []
        if self.face_mode == "arkit":
            tables.append((self.arkit, {n: float(a[i]) for i, n in enumerate(ARKIT_BLENDSHAPES)}))
        elif self.face_mode == "vrm":
            from avatar.face.rig import VRM_EXPRESSIONS, to_vrm_array

            v = to_vrm_array(a[None])[0]
            tables.append((self.expressions, {n: float(v[i]) for i, n in enumerate(VRM_EXPRESSIONS)}))
        if self.fallback:
            tables.append((self.fallback, fallback_weights(a, frozenset(self.fallback))))
        for table, drive in tables:
            for name, binds in table.items():
                for mesh, target, w in binds:
                    out[(mesh, target)] = out.get((mesh, target), 0.0) + w * drive.get(name, 0.0)
        return {k: float(np.clip(v, 0.0, 1.0)) for k, v in out.items()}


def check_avatar_file(path: Path) -> None:
    """Refuse (InputError) what cannot be an avatar file: missing, too large, not .glb/.gltf/.vrm, bad glTF header."""
    if not path.is_file():
        raise InputError(f"avatar file not found: {path}")
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise InputError(f"{path.name} is {size / 1e6:.0f} MB; avatars are limited to {MAX_BYTES / 1e6:.0f} MB")
    if size < 12:
        raise InputError(f"{path.name} is too small to be a glTF file")
    suffix = path.suffix.lower()
    if suffix not in (".glb", ".gltf", ".vrm"):
        raise InputError(f"avatar must be .glb, .gltf or .vrm, got {path.name!r}")
    with path.open("rb") as fh:
        head = fh.read(12)
    if suffix in (".glb", ".vrm"):
        if head[:4] != b"glTF":
            raise InputError(f"{path.name} is not binary glTF (no 'glTF' header)")
        version, length = int.from_bytes(head[4:8], "little"), int.from_bytes(head[8:12], "little")
        if version != 2:
            raise InputError(f"{path.name} is glTF version {version}; only glTF 2.0 is supported")
        if length != size:
            raise InputError(f"{path.name} is truncated or padded: header says {length} bytes, file has {size}")


def _read(path: Path):  # noqa: ANN202 - pygltflib.GLTF2
    import pygltflib as g

    from avatar.gltf.document import load_glb, load_gltf  # pygltflib's loaders with a fast JSON decoder

    check_avatar_file(path)
    try:
        if path.suffix.lower() == ".gltf":
            json.loads(path.read_text(encoding="utf-8"))  # a clear error for non-JSON before pygltflib's
            gltf = load_gltf(path)
        else:
            gltf = load_glb(path)
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 - pygltflib and json raise assorted errors on broken files
        raise InputError(f"{path.name} is not a readable glTF 2.0 file: {type(exc).__name__}: {exc}") from None
    if gltf is None or not str(getattr(gltf.asset, "version", "")).startswith("2"):
        raise InputError(f"{path.name} is not glTF 2.0 (asset.version missing or not 2.x)")
    _decode_meshopt(gltf, path)
    _check_extensions(gltf, path.name)
    _check_buffers(gltf, path)
    if path.suffix.lower() == ".gltf" and gltf.buffers:
        try:  # external .bin files and data: URIs -> one embedded blob, as in a .glb
            with warnings.catch_warnings():  # pygltflib warns that the .bin is now "orphaned": it is only read
                warnings.simplefilter("ignore", UserWarning)
                gltf.convert_buffers(g.BufferFormat.BINARYBLOB)
        except Exception as exc:  # noqa: BLE001 - pygltflib raises assorted errors on bad buffers
            raise InputError(f"{path.name}: its buffers cannot be read: {exc}") from None
    return gltf


#: Extensions an avatar may require: what we read (quantized accessors of any component type, WebP images through
#: Pillow, the base-colour texture's transform) and what only changes shading we do not do (emissive strength, unlit).
SUPPORTED_REQUIRED = frozenset({"KHR_mesh_quantization", "EXT_texture_webp", "KHR_texture_transform",
                                "EXT_meshopt_compression", "KHR_meshopt_compression",
                                "KHR_materials_emissive_strength", "KHR_materials_unlit"})
_COMPRESSION = {"KHR_draco_mesh_compression": "Draco"}  # meshopt is decoded (_decode_meshopt)


_MESHOPT = ("EXT_meshopt_compression", "KHR_meshopt_compression")


def _decode_meshopt(gltf: GLTF2, path: Path) -> None:
    """Decode meshopt-compressed buffer views (gltfpack -c, gltf-transform meshopt) in place with meshoptimizer's
    own decoder (PyPI `meshopt`): each view's data is appended to the binary blob uncompressed, the view points
    there, and the empty fallback buffer is dropped. Only binary glTF (.glb/.vrm) is decoded."""
    views = [(v, k) for v in gltf.bufferViews or [] for k in _MESHOPT
             if isinstance(v.extensions, dict) and isinstance(v.extensions.get(k), dict)]
    if not views:
        return
    if path.suffix.lower() == ".gltf":
        raise InputError(f"{path.name}: meshopt-compressed .gltf files are not decoded; use the .glb")
    try:
        import meshopt
    except ImportError:
        raise InputError(f"{path.name} is meshopt-compressed and the decoder (pip install meshopt) is not "
                         "installed") from None
    blob = bytearray(gltf.binary_blob() or b"")
    total = 0
    for v, key in views:
        ext = v.extensions[key]
        try:
            src_buf, count, stride = int(ext["buffer"]), int(ext["count"]), int(ext["byteStride"])
            off, length = int(ext.get("byteOffset", 0)), int(ext["byteLength"])
            mode, filt = str(ext.get("mode", "ATTRIBUTES")), str(ext.get("filter", "NONE"))
        except (KeyError, TypeError, ValueError):
            raise InputError(f"{path.name}: a malformed {key} bufferView") from None
        total += count * stride
        if src_buf != 0 or off < 0 or length < 0 or off + length > len(blob) or count < 0 or total > MAX_BYTES:
            raise InputError(f"{path.name}: a {key} bufferView points outside the binary chunk or decodes past "
                             f"{MAX_BYTES / 1e6:.0f} MB")
        try:
            raw = np.ascontiguousarray(meshopt.decode_gltf_buffer(bytes(blob[off:off + length]), count, stride,
                                                                  mode, filt)).tobytes()
        except Exception as exc:  # noqa: BLE001 - the decoder raises ValueError/RuntimeError on corrupt data
            raise InputError(f"{path.name}: a {key} bufferView does not decode: {exc}") from None
        if len(raw) != count * stride:
            raise InputError(f"{path.name}: a {key} bufferView decoded to {len(raw)} bytes, not {count * stride}")
        blob += b"\0" * (-len(blob) % 4)
        v.buffer, v.byteOffset, v.byteLength = 0, len(blob), len(raw)
        blob += raw
        del v.extensions[key]
    used = {v.buffer for v in gltf.bufferViews}
    keep = [i for i, b in enumerate(gltf.buffers) if i in used or i == 0]
    remap = {old: new for new, old in enumerate(keep)}
    gltf.buffers = [gltf.buffers[i] for i in keep]
    for v in gltf.bufferViews:
        v.buffer = remap[v.buffer]
    blob += b"\0" * (-len(blob) % 4)
    gltf.buffers[0].byteLength = len(blob)
    gltf.set_binary_blob(bytes(blob))
    for key in _MESHOPT:
        gltf.extensionsRequired = [e for e in gltf.extensionsRequired or [] if e != key] or None
        gltf.extensionsUsed = [e for e in gltf.extensionsUsed or [] if e != key] or None


def _check_extensions(gltf: GLTF2, name: str) -> None:
    """Refuse (InputError, naming them) extensions the file requires that we cannot read, and Draco-compressed
    views even where the extension is only listed as used."""
    required = [str(e) for e in gltf.extensionsRequired or []]
    used = {str(e) for e in gltf.extensionsUsed or []}
    compressed = [e for e in _COMPRESSION if e in required or (e in used and any(
        isinstance(v.extensions, dict) and e in v.extensions for v in gltf.bufferViews or []))]
    if compressed:
        raise InputError(f"{name} is compressed with {', '.join(compressed)} ({_COMPRESSION[compressed[0]]}), "
                         "which this reader does not decode: export it without mesh compression "
                         "(e.g. gltfpack without -c, or gltf-transform without meshopt/draco)")
    unknown = [e for e in required if e not in SUPPORTED_REQUIRED]
    if unknown:
        raise InputError(f"{name} requires glTF extensions this reader does not support: {', '.join(unknown)} "
                         f"(supported: {', '.join(sorted(SUPPORTED_REQUIRED))})")


def _check_buffers(gltf: GLTF2, path: Path) -> None:
    """Every buffer is present, inside the avatar's folder, and large enough for the views into it."""
    sizes, external = [], 0
    for i, buf in enumerate(gltf.buffers):
        if buf.uri is None:
            blob = gltf.binary_blob() if i == 0 else None
            have = len(blob) if blob is not None else 0
        elif buf.uri.startswith("data:"):
            have = buf.byteLength
        else:
            try:
                ext = safe_join(path.parent, buf.uri)  # refuses "../" escapes
            except InputError:
                raise InputError(f"{path.name}: buffer uri {buf.uri!r} points outside the avatar's folder") from None
            if not ext.is_file():
                raise InputError(f"{path.name} refers to a missing buffer file {buf.uri!r}")
            have = ext.stat().st_size
            external += have
            if external > MAX_BYTES:
                raise InputError(f"{path.name}: its buffer files exceed {MAX_BYTES / 1e6:.0f} MB")
        if have < (buf.byteLength or 0):
            raise InputError(f"{path.name}: buffer {i} holds {have} bytes, needs {buf.byteLength}")
        sizes.append(buf.byteLength or 0)
    for i, view in enumerate(gltf.bufferViews):
        if view.buffer is None or not 0 <= view.buffer < len(sizes) or \
                (view.byteOffset or 0) + (view.byteLength or 0) > sizes[view.buffer]:
            raise InputError(f"{path.name}: bufferView {i} points outside its buffer")
    for i, acc in enumerate(gltf.accessors):
        if acc.bufferView is not None and not 0 <= acc.bufferView < len(gltf.bufferViews):
            raise InputError(f"{path.name}: accessor {i} points to a missing bufferView")
    n = len(gltf.nodes)
    for i, nd in enumerate(gltf.nodes):
        if any(not 0 <= c < n or c == i for c in nd.children or []):
            raise InputError(f"{path.name}: node {i} has an invalid child")
        if nd.mesh is not None and not 0 <= nd.mesh < len(gltf.meshes):
            raise InputError(f"{path.name}: node {i} points to a missing mesh")


def _accessor(gltf: GLTF2, index: int) -> np.ndarray:
    """Read a float accessor from the embedded binary buffer (enough for inverse bind matrices)."""
    acc = gltf.accessors[index]
    view = gltf.bufferViews[acc.bufferView]
    blob = gltf.binary_blob()
    n = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT4": 16}[acc.type]
    if acc.componentType != 5126 or blob is None:
        raise InputError("only float accessors in an embedded buffer are read here")
    start = (view.byteOffset or 0) + (acc.byteOffset or 0)
    stride = view.byteStride or 4 * n
    if start + stride * (acc.count - 1) + 4 * n > len(blob):
        raise InputError("an accessor reads past the end of the buffer")
    raw = np.lib.stride_tricks.as_strided(np.frombuffer(blob, np.uint8, offset=start),
                                          shape=(acc.count, 4 * n), strides=(stride, 1))
    return np.ascontiguousarray(raw).view(np.float32).reshape(acc.count, n).astype(np.float64)


def _nodes(gltf: GLTF2) -> tuple[AvatarNode, ...]:
    parent = [-1] * len(gltf.nodes)
    for i, nd in enumerate(gltf.nodes):
        for c in nd.children or []:
            parent[c] = i
    out = []
    for i, nd in enumerate(gltf.nodes):
        if nd.matrix is not None and len(nd.matrix) == 16:  # decompose a matrix node into T, R, S
            from avatar.rig.rotations import matrix_to_quat

            m = node_local(nd)
            s = np.linalg.norm(m[:3, :3], axis=0)
            t, r = tuple(m[:3, 3]), tuple(matrix_to_quat(m[:3, :3] / np.where(s > 0, s, 1.0)))
            sc = tuple(s)
        else:
            t = tuple(nd.translation or (0.0, 0.0, 0.0))
            r = tuple(nd.rotation or (0.0, 0.0, 0.0, 1.0))
            sc = tuple(nd.scale or (1.0, 1.0, 1.0))
        out.append(AvatarNode(name=nd.name or f"node{i}", parent=parent[i], children=tuple(nd.children or ()),
                              translation=tuple(float(v) for v in t), rotation=tuple(float(v) for v in r),
                              scale=tuple(float(v) for v in sc), mesh=nd.mesh, skin=nd.skin))
    return tuple(out)


def _skins(gltf: GLTF2) -> tuple[AvatarSkin, ...]:
    out = []
    for sk in gltf.skins:
        J = len(sk.joints)
        if sk.inverseBindMatrices is None:
            ibm = np.tile(np.eye(4), (J, 1, 1))
        else:
            ibm = _accessor(gltf, sk.inverseBindMatrices).reshape(-1, 4, 4).transpose(0, 2, 1)
            if len(ibm) != J:
                raise InputError("a skin's inverse bind matrices do not match its joints")
            if not np.isfinite(ibm).all():
                raise InputError("a skin's inverse bind matrices are not finite")
        out.append(AvatarSkin(joints=tuple(sk.joints), inverse_bind=ibm))
    return tuple(out)


def _check_transforms(gltf: GLTF2, name: str) -> None:
    """Refuse (InputError) node transforms that cannot place anything: a value that is not finite (inf or NaN: the
    whole subtree vanishes from every frame) or a rotation quaternion of zero length. A zero scale is allowed (glTF
    uses it to hide a part); the renderer refuses an avatar that it shrinks to nothing (renderer._check_visible)."""
    for i, nd in enumerate(gltf.nodes):
        label = f"node {i} ({nd.name!r})" if nd.name else f"node {i}"
        fields = {"matrix": nd.matrix, "translation": nd.translation, "rotation": nd.rotation, "scale": nd.scale}
        for key, value in fields.items():
            if value is None:
                continue
            try:
                arr = np.asarray(value, dtype=np.float64).reshape(-1)
            except (TypeError, ValueError):
                raise InputError(f"{name}: {label} has a {key} that is not numbers") from None
            if arr.size != {"matrix": 16, "translation": 3, "rotation": 4, "scale": 3}[key]:
                raise InputError(f"{name}: {label} has a {key} of {arr.size} numbers")
            if not np.isfinite(arr).all():
                raise InputError(f"{name}: {label} has a {key} that is not finite ({value}); it cannot be placed")
            if key == "rotation" and np.linalg.norm(arr) < 1e-6:
                raise InputError(f"{name}: {label} has a zero-length rotation quaternion")


def _check_skinning(gltf: GLTF2, nodes: tuple[AvatarNode, ...], skins: tuple[AvatarSkin, ...], name: str) -> None:
    """Refuse (InputError) skins the renderer cannot pose: a joint or skeleton that is not a node, a node naming a
    missing skin, or a vertex weighted to a joint index past its skin's joints (the Khronos validator's
    ACCESSOR_JOINTS_INDEX_OOB). Checked here, when the avatar loads, not at the first frame."""
    from .mesh import read_accessor

    for s, (sk, raw) in enumerate(zip(skins, gltf.skins)):
        bad = [j for j in sk.joints if not 0 <= j < len(nodes)]
        if bad:
            raise InputError(f"{name}: skin {s} names joint node {bad[0]}, but the file has {len(nodes)} nodes")
        if raw.skeleton is not None and not 0 <= raw.skeleton < len(nodes):
            raise InputError(f"{name}: skin {s} names skeleton node {raw.skeleton}, which is not in the file")
    for i, node in enumerate(nodes):
        if node.skin is None:
            continue
        if not 0 <= node.skin < len(skins):
            raise InputError(f"{name}: node {i} ({node.name!r}) uses skin {node.skin}, which is not in the file")
        if node.mesh is None:
            continue
        count = len(skins[node.skin].joints)
        for k, prim in enumerate(gltf.meshes[node.mesh].primitives):
            a = prim.attributes
            if a.JOINTS_0 is None or a.WEIGHTS_0 is None:
                continue
            joints = read_accessor(gltf, a.JOINTS_0)[:, :4]
            weights = read_accessor(gltf, a.WEIGHTS_0)[:, :4]
            if joints.shape != weights.shape:
                raise InputError(f"{name}: mesh {node.mesh} primitive {k} has {len(joints)} JOINTS_0 and "
                                 f"{len(weights)} WEIGHTS_0 entries")
            used = joints[weights > 0]  # a joint under a zero weight does not move the vertex (the renderer zeroes it)
            if used.size and (used.min() < 0 or used.max() >= count):
                raise InputError(f"{name}: mesh {node.mesh} primitive {k} weights vertices to joint "
                                 f"{int(used.max())}, but its skin {node.skin} has {count} joints")


def morph_target_names(mesh) -> list[str]:  # noqa: ANN001 - a pygltflib.Mesh
    """A mesh's morph target names (its extras.targetNames, else its first primitive's that has them)."""
    names = (mesh.extras or {}).get("targetNames") if isinstance(mesh.extras, dict) else None
    if not names:
        for prim in mesh.primitives:
            if isinstance(prim.extras, dict) and prim.extras.get("targetNames"):
                names = prim.extras["targetNames"]
                break
    return [str(n) for n in names or []]


def _expressions(gltf: GLTF2) -> tuple[str | None, dict[str, list[Bind]], dict[str, list[Bind]]]:
    """(VRM version, preset expressions under VRM 1.0 names, expressions named as ARKit shapes)."""
    from avatar.face.rig import VRM0_NAMES, VRM_EXPRESSIONS

    ext = gltf.extensions or {}
    presets: dict[str, list[Bind]] = {}
    arkit: dict[str, list[Bind]] = {}
    if "VRMC_vrm" in ext:
        expr = ext["VRMC_vrm"].get("expressions", {}) or {}
        groups = list((expr.get("preset") or {}).items()) + list((expr.get("custom") or {}).items())
        for name, e in groups:
            binds = []
            for b in (e or {}).get("morphTargetBinds", []) or []:
                node = b.get("node")
                if isinstance(node, int) and 0 <= node < len(gltf.nodes) and gltf.nodes[node].mesh is not None:
                    binds.append((gltf.nodes[node].mesh, int(b.get("index", 0)), float(b.get("weight", 1.0))))
            if name in VRM_EXPRESSIONS:
                presets[name] = binds
            elif arkit_name(name):
                arkit[arkit_name(name)] = binds
        return "1.0", presets, arkit
    if "VRM" in ext:
        from_vrm0 = {v: k for k, v in VRM0_NAMES.items()}
        for grp in (ext["VRM"].get("blendShapeMaster", {}) or {}).get("blendShapeGroups", []) or []:
            binds = [(int(b["mesh"]), int(b["index"]), float(b.get("weight", 100.0)) / 100.0)
                     for b in grp.get("binds", []) or [] if isinstance(b.get("mesh"), int)]
            preset = str(grp.get("presetName", "")).lower()
            if preset in from_vrm0:
                presets[from_vrm0[preset]] = binds
            elif arkit_name(str(grp.get("name", ""))):
                arkit[arkit_name(str(grp.get("name", "")))] = binds
        return "0.x", presets, arkit
    return None, presets, arkit


def _eye_nodes(gltf: GLTF2, nodes: tuple[AvatarNode, ...]) -> dict[str, int]:
    ext = gltf.extensions or {}
    out: dict[str, int] = {}
    if "VRMC_vrm" in ext:
        for eye in _EYES:
            v = ext["VRMC_vrm"].get("humanoid", {}).get("humanBones", {}).get(eye)
            if v is not None:
                out[eye] = int(v["node"])
    elif "VRM" in ext:
        for v in ext["VRM"].get("humanoid", {}).get("humanBones", []) or []:
            if v.get("bone") in _EYES:
                out[v["bone"]] = int(v["node"])
    if not out:  # by name: leftEye, LeftEye, mixamorig:LeftEye, eye_L, Eye.L ...
        for i, nd in enumerate(nodes):
            key = re.sub(r"[^a-z]", "", re.sub(r"^.*:", "", nd.name).lower())
            for eye, side in (("leftEye", "l"), ("rightEye", "r")):
                full = "left" if side == "l" else "right"
                if key in (f"{full}eye", f"eye{full}", f"eye{side}", f"{side}eye") and eye not in out:
                    out[eye] = i
    return {k: v for k, v in out.items() if 0 <= v < len(nodes)}


def load_avatar(path: str | os.PathLike[str]) -> Avatar:
    """Read a .glb/.gltf/.vrm avatar and map its morph targets and bones onto FaceMotion and BodyMotion."""
    p = Path(path)
    gltf = _read(p)
    from .texture import check_textures

    check_textures(gltf, p.name, p.parent)  # image headers only: a texture too large to decode is refused here
    try:
        return _map(p, gltf)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        if isinstance(exc, InputError):
            raise
        raise InputError(f"{p.name}: malformed glTF/VRM data ({type(exc).__name__}: {exc})") from None


def _map(p: Path, gltf: GLTF2) -> Avatar:
    _check_transforms(gltf, p.name)
    nodes = _nodes(gltf)
    skins = _skins(gltf)
    _check_skinning(gltf, nodes, skins, p.name)
    version, presets, arkit = _expressions(gltf)
    fallback, names, undriven = _bind_targets(gltf, arkit, presets)
    bones = humanoid_nodes(gltf, HUMANOID)
    eyes = _eye_nodes(gltf, nodes)
    from avatar.gesture.gltf import avatar_faces_minus_z

    world = [np.eye(4)] * len(nodes)
    for i in _topological(nodes):
        local = node_local(gltf.nodes[i])
        world[i] = local if nodes[i].parent < 0 else world[nodes[i].parent] @ local
    minus_z = avatar_faces_minus_z(gltf, bones, world)
    if arkit:
        missing_shapes = tuple(n for n in ARKIT_BLENDSHAPES if n not in arkit)
    elif presets:
        from avatar.face.rig import VRM_EXPRESSIONS

        missing_shapes = tuple(n for n in VRM_EXPRESSIONS if n not in presets)
    else:
        stand_in = {s for ch in fallback for s in fallback_sources(ch)}
        missing_shapes = tuple(n for n in ARKIT_BLENDSHAPES if n not in stand_in)
    missing_bones = tuple(b for b in HUMANOID.joints if b not in bones) + tuple(e for e in _EYES if e not in eyes)
    _warn_missing(p.name, missing_shapes, fallback, undriven, missing_bones, len(HUMANOID.joints))
    return Avatar(path=p, gltf=gltf, nodes=nodes, skins=skins, bones=bones, eyes=eyes, arkit=arkit,
                  expressions=presets, vrm_version=version, faces_minus_z=minus_z,
                  missing_shapes=missing_shapes, missing_bones=missing_bones, fallback=fallback,
                  target_names=names, undriven_targets=undriven)


def _bind_targets(gltf: GLTF2, arkit: dict[str, list[Bind]],
                  presets: dict[str, list[Bind]]) -> tuple[dict[str, list[Bind]], tuple[str, ...], tuple[str, ...]]:
    """Bind every mesh's morph targets by name (adds to `arkit` in place): ARKit names on every mesh that has them
    (a head, its teeth and eyes all move), then fallback channels for targets no ARKit shape or VRM expression
    drives. Returns (fallback channel -> binds, every target name, the names nothing drives)."""
    from_vrm = set(arkit)  # VRM expressions named as ARKit shapes bind their own targets
    by_name: list[tuple[int, int, str]] = []
    for m, mesh in enumerate(gltf.meshes):
        for t, name in enumerate(morph_target_names(mesh)):
            by_name.append((m, t, name))
            key = arkit_name(name)
            if key and key not in from_vrm:
                arkit.setdefault(key, []).append((m, t, 1.0))
    bound = {(m, t) for binds in (*arkit.values(), *presets.values()) for m, t, _ in binds}
    fallback: dict[str, list[Bind]] = {}
    for m, t, name in by_name:
        if (m, t) in bound:
            continue
        ch = fallback_channel(name)
        if ch is None or any(s in arkit for s in fallback_sources(ch)):
            continue
        if not fallback_sources(ch) and (arkit or presets):  # emotion / vowel names: only without ARKit or VRM
            continue
        fallback.setdefault(ch, []).append((m, t, 1.0))
    bound |= {(m, t) for binds in fallback.values() for m, t, _ in binds}
    names = tuple(dict.fromkeys(name for _, _, name in by_name))
    driven = {name for m, t, name in by_name if (m, t) in bound}
    return fallback, names, tuple(n for n in names if n not in driven)


def _warn_missing(name: str, shapes: tuple[str, ...], fallback: dict[str, list[Bind]], undriven: tuple[str, ...],
                  bones: tuple[str, ...], n_bones: int) -> None:
    """One warning listing everything the motion cannot drive on this avatar."""
    parts = []
    if shapes:
        listed = "all" if len(shapes) == len(ARKIT_BLENDSHAPES) else ", ".join(shapes)
        parts.append(f"{len(shapes)} face shapes missing ({listed})")
    if fallback:
        parts.append(f"face driven through stand-in shapes ({', '.join(sorted(fallback))})")
    if undriven:
        parts.append(f"{len(undriven)} morph targets nothing drives ({', '.join(undriven)})")
    if bones:
        parts.append(f"{len(bones)} of {n_bones + len(_EYES)} humanoid bones missing ({', '.join(bones)})")
    if shapes or undriven or bones:
        log.warning("avatar %s: %s; those parts stay at rest", name, "; ".join(parts))


def _topological(nodes: tuple[AvatarNode, ...]) -> list[int]:
    """Node indices with every parent before its children (refuses cycles)."""
    order, seen = [], set()
    stack = [i for i, n in enumerate(nodes) if n.parent < 0][::-1]
    while stack:
        i = stack.pop()
        if i in seen:
            raise InputError("the avatar's node hierarchy has a cycle")
        seen.add(i)
        order.append(i)
        stack.extend(nodes[i].children[::-1])
    if len(order) != len(nodes):
        raise InputError("the avatar's node hierarchy has a cycle or a node with two parents")
    return order
