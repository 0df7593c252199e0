"""Read what the renderer draws out of a loaded Avatar: triangle primitives, morph targets, materials, textures.

Everything here is numpy: the glTF accessors (any component type, normalised integers, strides, sparse
accessors as exporters such as UniVRM write for morph targets) are decoded once into float32 arrays, so the
per-frame work is a small dense product over the active morph targets plus the GL draw.
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

from avatar.errors import InputError

from .avatar_file import Avatar
from .wrinkles import FOREHEAD_LATERAL

if TYPE_CHECKING:
    from pygltflib import GLTF2
    from pygltflib import Primitive as GltfPrimitive

log = logging.getLogger(__name__)

_DTYPES = {5120: np.int8, 5121: np.uint8, 5122: np.int16, 5123: np.uint16, 5125: np.uint32, 5126: np.float32}
_WIDTH = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT2": 4, "MAT3": 9, "MAT4": 16}
_TRIANGLES = 4


@dataclass
class WrinkleMap:
    """Expression creases (avatar.render.wrinkles): an RGBA crease map in the material's uv layout and how the
    ARKit weights fade each of its four channels in, per half of the face."""

    texture: int  # index into MeshData.images
    left: np.ndarray  # [52, 5]: ARKit weights (ARKIT_BLENDSHAPES order) -> RGBA channel strengths and the lateral
    #                   forehead's (avatar.render.wrinkles.WRINKLE_DRIVERS), the avatar's left half
    right: np.ndarray  # [52, 5]: the same for its right half (+x is the avatar's left in its bind pose)
    lateral: tuple[float, float] = FOREHEAD_LATERAL  # the forehead lines turn lateral between these |x| (m)


@dataclass
class Material:
    """A material reduced to what the renderer shades: base colour (linear RGBA), texture, sidedness, alpha."""

    color: tuple[float, float, float, float] = (0.8, 0.8, 0.8, 1.0)
    roughness: float = 0.8
    texture: int | None = None  # index into MeshData.images
    double_sided: bool = False
    alpha_mode: str = "OPAQUE"  # OPAQUE, MASK, BLEND
    alpha_cutoff: float = 0.5
    wrinkles: WrinkleMap | None = None
    #: `extras.enclosed`: the mesh models its own inside (mouth, eye sockets), so the renderer need not draw a
    #: morphing single-sided mesh's back faces as the inside of the head.
    enclosed: bool = False
    #: `extras.cavity`: inside the mouth (teeth, tongue), where the head hides it from the rim light behind it.
    cavity: bool = False
    #: `extras.hair.crown`: the point (the mesh's bind space, m) its strands fall away from; hair shading when set.
    hair_crown: tuple[float, float, float] | None = None


@dataclass
class Primitive:
    """One drawable triangle list with its rest geometry and morph target deltas."""

    mesh: int
    node: int  # the node that instantiates the mesh
    skin: int | None
    positions: np.ndarray  # [N, 3] float32
    normals: np.ndarray  # [N, 3] float32 (authored, or computed when absent)
    indices: np.ndarray  # [F, 3] uint32
    uv: np.ndarray | None  # [N, 2] float32
    joints: np.ndarray | None  # [N, 4] float32 (joint indices into the skin)
    weights: np.ndarray | None  # [N, 4] float32
    material: Material
    target_pos: np.ndarray | None = field(default=None, repr=False)  # [K, N*3] float32 (K = mesh targets)
    target_nrm: np.ndarray | None = field(default=None, repr=False)  # [K, N*3] float32 or None


@dataclass
class MeshData:
    """All primitives of the scene plus the decoded base-colour images (RGBA uint8 arrays)."""

    primitives: list[Primitive]
    images: list[np.ndarray]
    default_weights: dict[int, np.ndarray]  # mesh index -> its default morph weights (glTF mesh.weights)


def read_accessor(gltf: GLTF2, index: int) -> np.ndarray:
    """Decode accessor `index` of the embedded buffer into a float32 (or integer) array [count, width]."""
    acc = gltf.accessors[index]
    dtype = np.dtype(_DTYPES[acc.componentType]).newbyteorder("<")
    n = _WIDTH[acc.type]
    if acc.bufferView is not None:
        out = _view(gltf, acc.bufferView, acc.byteOffset or 0, acc.count, n, dtype)
    else:
        out = np.zeros((acc.count, n), dtype=dtype)  # all zeros unless sparse fills it in
    if acc.sparse is not None and acc.sparse.count:
        sp = acc.sparse
        idx_dtype = np.dtype(_DTYPES[sp.indices.componentType]).newbyteorder("<")
        where = _view(gltf, sp.indices.bufferView, sp.indices.byteOffset or 0, sp.count, 1, idx_dtype)[:, 0]
        vals = _view(gltf, sp.values.bufferView, sp.values.byteOffset or 0, sp.count, n, dtype)
        if where.size and int(where.max()) >= acc.count:
            raise InputError(f"sparse accessor {index} indexes past its {acc.count} elements")
        out = out.copy()
        out[where.astype(np.int64)] = vals
    if acc.normalized and dtype.kind in "iu":
        scale = float(np.iinfo(dtype).max)
        return np.maximum(out.astype(np.float32) / scale, -1.0)
    return out


def _view(gltf: GLTF2, view_index: int, offset: int, count: int, width: int, dtype: np.dtype) -> np.ndarray:
    view = gltf.bufferViews[view_index]
    blob = gltf.binary_blob()
    if blob is None:
        raise InputError("the avatar's geometry is not in an embedded buffer")
    start = (view.byteOffset or 0) + offset
    elem = dtype.itemsize * width
    stride = view.byteStride or elem
    end = start + stride * max(count - 1, 0) + elem if count else start
    if end > len(blob) or end > (view.byteOffset or 0) + (view.byteLength or 0) + 3:  # +3: glTF padding slack
        raise InputError(f"an accessor on bufferView {view_index} reads past its end")
    if count == 0:
        return np.zeros((0, width), dtype=dtype)
    raw = np.lib.stride_tricks.as_strided(np.frombuffer(blob, np.uint8, offset=start),
                                          shape=(count, elem), strides=(stride, 1))
    return np.ascontiguousarray(raw).view(dtype).reshape(count, width)


def vertex_normals(positions: np.ndarray, tris: np.ndarray, incidence: Incidence | None = None) -> np.ndarray:
    """Area-weighted vertex normals [N, 3] (unit length; [0, 1, 0] for vertices on no triangle).

    `incidence` (from `incidence_matrix`) saves rebuilding it when one mesh is called repeatedly."""
    v = positions.astype(np.float32, copy=False)
    fn = np.cross(v[tris[:, 1]] - v[tris[:, 0]], v[tris[:, 2]] - v[tris[:, 0]])
    if incidence is None:
        incidence = incidence_matrix(len(v), tris)
    return normalize(np.asarray(incidence @ fn, dtype=np.float32))


class Incidence:
    """The [N, F] vertex-triangle incidence matrix (1 where vertex n is a corner of triangle f), for products.

    `inc @ x` (x [F, k]) sums each vertex's triangles' rows in triangle order, in x's precision: the same sums
    as the scipy.sparse CSR matrix this replaces, bit for bit where a triangle's corners differ
    (tests/test_scipy_equivalents.py), without importing scipy (about 0.3 s of a new process, on every render's
    path)."""

    def __init__(self, n_vertices: int, tris: np.ndarray) -> None:
        self.corners = np.asarray(tris).reshape(-1).astype(np.intp)
        self.shape = (int(n_vertices), len(self.corners) // 3)

    def __matmul__(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        if x.ndim == 1:
            return (self @ x[:, None])[:, 0]
        per_corner = np.ascontiguousarray(np.repeat(x, 3, axis=0).T)  # [k, 3F]
        out = np.zeros((x.shape[1], self.shape[0]), dtype=np.result_type(np.float32, x.dtype))
        for row, values in zip(out, per_corner):
            np.add.at(row, self.corners, values)
        return out.T


def cache_ordered(p: Primitive) -> Primitive:
    """`p` with its triangles in vertex-cache order (meshoptimizer's optimizeVertexCache): the same triangles with the
    same winding and the same vertex buffers, drawn in an order whose neighbours share vertices, so llvmpipe's
    vertex stage, which caches shaded vertices only within a short run of indices, shades fewer of them again.
    A blended primitive keeps its order (it decides which of its own triangles blend over which)."""
    if p.material.alpha_mode == "BLEND" or len(p.indices) < 2:
        return p
    try:
        import meshopt
    except ImportError:  # a runtime dependency; without it the file's order is drawn as it is
        return p
    flat = np.ascontiguousarray(p.indices, dtype=np.uint32).reshape(-1)
    # reorder_mesh also renumbers the vertices in first-use order; mapping its indices back through that numbering
    # gives the cache-ordered triangles over the original vertices (the buffers, morph targets and masks stay).
    renumbered, remap, _ = meshopt.reorder_mesh(flat, True, False)
    used = remap != np.uint32(0xFFFFFFFF)
    back = np.zeros(int(remap[used].max()) + 1, np.uint32)
    back[remap[used]] = np.flatnonzero(used).astype(np.uint32)
    return replace(p, indices=back[renumbered].reshape(-1, 3).astype(p.indices.dtype))


def incidence_matrix(n_vertices: int, tris: np.ndarray) -> Incidence:
    """The [N, F] matrix with a 1 where vertex n is a corner of triangle f (see Incidence)."""
    return Incidence(n_vertices, tris)


def normalize(n: np.ndarray) -> np.ndarray:
    """Unit vectors along the rows of n ([0, 1, 0] where a row is zero)."""
    length = np.linalg.norm(n, axis=1, keepdims=True)
    out = n / np.maximum(length, 1e-12)
    out[length[:, 0] < 1e-12] = (0.0, 1.0, 0.0)
    return out.astype(np.float32)


def _material(gltf: GLTF2, index: int | None) -> Material:
    if index is None or not 0 <= index < len(gltf.materials):
        return Material()
    m = gltf.materials[index]
    pbr = m.pbrMetallicRoughness
    color = tuple(float(c) for c in (pbr.baseColorFactor if pbr and pbr.baseColorFactor else (1, 1, 1, 1)))
    tex = None
    if pbr is not None and pbr.baseColorTexture is not None:
        t = pbr.baseColorTexture.index
        if t is not None and 0 <= t < len(gltf.textures):
            from .texture import texture_source

            tex = texture_source(gltf.textures[t])
    rough = float(pbr.roughnessFactor) if pbr is not None and pbr.roughnessFactor is not None else 1.0
    return Material(color=color, roughness=rough, texture=tex, double_sided=bool(m.doubleSided),
                    alpha_mode=str(m.alphaMode or "OPAQUE").upper(),
                    alpha_cutoff=float(m.alphaCutoff if m.alphaCutoff is not None else 0.5),
                    wrinkles=_wrinkle_map(gltf, m.extras, index),
                    enclosed=isinstance(m.extras, dict) and m.extras.get("enclosed") is True,
                    cavity=isinstance(m.extras, dict) and m.extras.get("cavity") is True,
                    hair_crown=_hair_crown(m.extras))


def _hair_crown(extras: object) -> tuple[float, float, float] | None:
    """The material's `extras.hair.crown` (three finite numbers), or None when absent or malformed."""
    hair = extras.get("hair") if isinstance(extras, dict) else None
    crown = hair.get("crown") if isinstance(hair, dict) else None
    if not isinstance(crown, list) or len(crown) != 3 or not all(
            isinstance(c, (int, float)) and not isinstance(c, bool) for c in crown):
        return None
    out = tuple(float(c) for c in crown)
    return out if np.isfinite(out).all() else None


def _wrinkle_map(gltf: GLTF2, extras: object, material: int) -> WrinkleMap | None:
    """The material's `extras.wrinkleMap` (avatar.render.wrinkles.read_wrinkle_spec), with its texture still a
    glTF image index; None when absent or malformed (the face then shows no creases)."""
    from avatar.types import ARKIT_BLENDSHAPES

    from .texture import texture_source
    from .wrinkles import driver_matrix, read_wrinkle_spec

    try:
        spec = read_wrinkle_spec(extras, len(gltf.textures))
        src = None if spec is None else texture_source(gltf.textures[spec.texture])
        if spec is not None and src is None:
            raise ValueError("the texture has no image")
    except ValueError as exc:
        log.warning("material %d: its wrinkle map is ignored (%s)", material, exc)
        return None
    if spec is None:
        return None
    left, right = driver_matrix(ARKIT_BLENDSHAPES, spec.drivers)
    return WrinkleMap(texture=src, left=left.astype(np.float32), right=right.astype(np.float32),
                      lateral=spec.lateral)


def _image(avatar: Avatar, index: int) -> np.ndarray | None:
    """Decode image `index` (embedded bufferView, data: URI or a file beside the avatar) to RGBA uint8, scaled to
    at most avatar.render.texture.RENDER_TEXTURE_SIDE a side."""
    if importlib.util.find_spec("PIL") is None:  # Pillow is optional here: without it textured avatars show their base colours
        return None
    from .texture import decode_texture, image_bytes

    try:
        data = image_bytes(avatar.gltf, index, avatar.path.parent)
        if data is None:
            return None
        return decode_texture(data, f"avatar {avatar.path.name}: texture image {index}")
    except InputError:
        raise  # over the pixel limit (load_avatar refuses it first; this guards an Avatar built otherwise)
    except Exception as exc:  # noqa: BLE001 - a broken texture degrades to the base colour, it does not fail
        log.warning("avatar %s: texture %d cannot be decoded (%s); using its base colour", avatar.path.name,
                    index, exc)
        return None


def _scene_nodes(avatar: Avatar) -> list[int]:
    """Nodes reachable from the default scene (all roots when the file has no scene)."""
    gltf = avatar.gltf
    if gltf.scenes:
        s = gltf.scene if gltf.scene is not None and 0 <= gltf.scene < len(gltf.scenes) else 0
        roots = list(gltf.scenes[s].nodes or [])
    else:
        roots = [i for i, n in enumerate(avatar.nodes) if n.parent < 0]
    out, stack = [], roots[::-1]
    while stack:
        i = stack.pop()
        out.append(i)
        stack.extend(avatar.nodes[i].children[::-1])
    return out


def read_meshes(avatar: Avatar) -> MeshData:
    """Decode every triangle primitive of the avatar's scene (positions, normals, skin, UVs, morph targets)."""
    gltf = avatar.gltf
    prims: list[Primitive] = []
    used_images: dict[int, int] = {}
    images: list[np.ndarray] = []
    defaults: dict[int, np.ndarray] = {}
    skipped = 0
    for node in _scene_nodes(avatar):
        mi = avatar.nodes[node].mesh
        if mi is None:
            continue
        mesh = gltf.meshes[mi]
        skin = avatar.nodes[node].skin
        if skin is not None and not 0 <= skin < len(avatar.skins):
            skin = None
        for p in mesh.primitives:
            if p.mode not in (None, _TRIANGLES) or p.attributes.POSITION is None:
                skipped += 1
                continue
            prim = _primitive(gltf, p, mi, node, skin)
            if prim is None:
                skipped += 1
                continue

            def load(tex: int | None) -> int | None:
                """glTF image index -> index into `images` (decoded once), None when it cannot be shown."""
                if tex is None or not 0 <= tex < len(gltf.images):
                    return None
                if tex not in used_images:
                    im = _image(avatar, tex)
                    used_images[tex] = -1 if im is None else len(images)
                    if im is not None:
                        images.append(im)
                return used_images[tex] if used_images[tex] >= 0 else None

            prim.material.texture = load(prim.material.texture) if prim.uv is not None else None
            wm = prim.material.wrinkles
            if wm is not None:
                # Creases show only on a face that moves (morph targets) and has the uvs the map is laid out in.
                tex = load(wm.texture) if prim.uv is not None and prim.target_pos is not None else None
                prim.material.wrinkles = None if tex is None else WrinkleMap(tex, wm.left, wm.right, wm.lateral)
            prims.append(prim)
        k = max((len(p.targets or []) for p in mesh.primitives), default=0)
        w = np.zeros(k, dtype=np.float32)
        if mesh.weights:
            w[: min(k, len(mesh.weights))] = np.asarray(mesh.weights[:k], dtype=np.float32)
        defaults[mi] = w
    if skipped:
        log.warning("avatar %s: %d primitives are not triangle lists (points, lines, strips) and are not drawn",
                    avatar.path.name, skipped)
    if not prims:
        raise InputError(f"avatar {avatar.path.name} has no triangle meshes to draw")
    return MeshData(primitives=prims, images=images, default_weights=defaults)


def uv_set(gltf: GLTF2, material: int | None) -> int:
    """Which TEXCOORD_n the base-colour texture reads: KHR_texture_transform's `texCoord` override, else the
    texture info's own `texCoord` (0 when absent)."""
    if material is None or not 0 <= material < len(gltf.materials or []):
        return 0
    pbr = gltf.materials[material].pbrMetallicRoughness
    info = pbr.baseColorTexture if pbr is not None else None
    if info is None:
        return 0
    ext = info.extensions if isinstance(info.extensions, dict) else {}
    t = ext.get("KHR_texture_transform")
    k = t.get("texCoord") if isinstance(t, dict) and t.get("texCoord") is not None else info.texCoord
    return int(k) if isinstance(k, int) and not isinstance(k, bool) and 0 <= k < 8 else 0


def texture_transform(gltf: GLTF2, material: int | None, uv: np.ndarray) -> np.ndarray:
    """UVs under the base-colour texture's KHR_texture_transform (offset + rotation * scale * uv), else unchanged.

    The rotation turns the UVs counter-clockwise (the image clockwise): u' = cos u + sin v, v' = -sin u + cos v,
    the form that makes the extension's own example (offset [0, 1], rotation pi/2, scale 0.5) show the image's
    lower-left quadrant."""
    if material is None or not 0 <= material < len(gltf.materials or []):
        return uv
    pbr = gltf.materials[material].pbrMetallicRoughness
    info = pbr.baseColorTexture if pbr is not None else None
    ext = info.extensions if info is not None and isinstance(info.extensions, dict) else {}
    t = ext.get("KHR_texture_transform")
    if not isinstance(t, dict):
        return uv
    off = np.asarray(t.get("offset", (0.0, 0.0)), dtype=np.float64)
    scale = np.asarray(t.get("scale", (1.0, 1.0)), dtype=np.float64)
    r = float(t.get("rotation", 0.0))
    if off.shape != (2,) or scale.shape != (2,) or not (np.isfinite(off).all() and np.isfinite(scale).all()
                                                           and np.isfinite(r)):
        raise InputError(f"material {material}: KHR_texture_transform needs a finite offset[2], scale[2], rotation")
    c, s = np.cos(r), np.sin(r)
    m = np.array([[c, s], [-s, c]]) * scale[None, :]
    return (uv.astype(np.float64) @ m.T + off).astype(np.float32)


def _primitive(gltf: GLTF2, p: GltfPrimitive, mesh: int, node: int, skin: int | None) -> Primitive | None:
    a = p.attributes
    pos = read_accessor(gltf, a.POSITION).astype(np.float32)[:, :3]
    n = len(pos)
    if n == 0:
        return None
    if not np.isfinite(pos).all():
        raise InputError(f"mesh {mesh}: vertex positions that are not finite (inf or NaN)")
    if p.indices is not None:
        idx = read_accessor(gltf, p.indices).reshape(-1).astype(np.uint32)
    else:
        idx = np.arange(n, dtype=np.uint32)
    idx = idx[: len(idx) // 3 * 3].reshape(-1, 3)
    if idx.size and int(idx.max()) >= n:
        raise InputError(f"mesh {mesh}: an index points past its {n} vertices")
    nrm = (read_accessor(gltf, a.NORMAL).astype(np.float32)[:, :3] if a.NORMAL is not None
           else vertex_normals(pos, idx))
    uv_acc = getattr(a, f"TEXCOORD_{uv_set(gltf, p.material)}", None)
    uv_acc = a.TEXCOORD_0 if uv_acc is None else uv_acc  # a set the primitive lacks: its first one
    uv = read_accessor(gltf, uv_acc).astype(np.float32)[:, :2] if uv_acc is not None else None
    if uv is not None:
        uv = texture_transform(gltf, p.material, uv)
    joints = weights = None
    if skin is not None and a.JOINTS_0 is not None and a.WEIGHTS_0 is not None:
        joints = read_accessor(gltf, a.JOINTS_0).astype(np.float32)[:, :4]
        weights = read_accessor(gltf, a.WEIGHTS_0).astype(np.float32)[:, :4]
        s = weights.sum(axis=1, keepdims=True)
        weights = np.where(s > 1e-6, weights / np.maximum(s, 1e-6), 0.0).astype(np.float32)
        joints = np.where(weights > 0, joints, 0.0).astype(np.float32)  # unused slots may hold any index
    tp = tn = None
    if p.targets:
        tp = np.zeros((len(p.targets), n * 3), dtype=np.float32)
        has_n = any(isinstance(t, dict) and t.get("NORMAL") is not None for t in p.targets)
        tn = np.zeros_like(tp) if has_n else None
        for k, t in enumerate(p.targets):
            t = t if isinstance(t, dict) else vars(t)
            if t.get("POSITION") is not None:
                tp[k] = read_accessor(gltf, t["POSITION"]).astype(np.float32)[:n, :3].reshape(-1)
            if tn is not None and t.get("NORMAL") is not None:
                tn[k] = read_accessor(gltf, t["NORMAL"]).astype(np.float32)[:n, :3].reshape(-1)
    return Primitive(mesh=mesh, node=node, skin=skin if joints is not None else None, positions=pos,
                     normals=normalize(nrm), indices=idx, uv=uv, joints=joints, weights=weights,
                     material=_material(gltf, p.material), target_pos=tp, target_nrm=tn)
