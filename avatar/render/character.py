"""The default character's geometry: a stylised, friendly mannequin on the gesture skeleton's rest pose.

Everything is built procedurally with numpy and trimesh primitives in world space (metres, Y up, facing +Z,
its left is +X) so the asset can be regenerated bit for bit by `python -m avatar.render.make_default`.

- Body: tapered capsules and ellipsoids per bone (shirt, trousers, shoes, skin), skinned to the bones of
  avatar.rig.skeleton.HUMANOID with up to 4 inverse-distance weights among neighbouring bones, so
  elbows, knees and the spine bend smoothly.
- Head: a latitude/longitude grid (denser towards the face) shaped into a big, rounded head with a small
  nose, a mouth slit along one grid row (split vertices, so the lips meet at rest and part when the jaw
  opens), almond eye openings with lids bulged around the eyeballs, ears, brows, a mouth interior and a
  tongue. The 52 ARKit blendshapes are POSITION deltas of this mesh, each a deformation of its region.
- Eyes: one eyeball mesh (white / iris / pupil) in eye-local space, placed at the leftEye / rightEye nodes
  under the head joint, so gaze is a rotation of those nodes. eyeLook* shapes only make the lids follow the
  gaze (the upper lid rises when looking up, drops when looking down); they do not turn the eyeballs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from avatar.rig.skeleton import HUMANOID, Skeleton
from avatar.types import ARKIT_BLENDSHAPES

#: Base colours (linear RGBA) of the materials, in the order primitives refer to them.
MATERIALS: dict[str, tuple[float, float, float, float]] = {
    "skin": (0.80, 0.55, 0.42, 1.0),
    "hair": (0.16, 0.09, 0.05, 1.0),
    "shirt": (0.10, 0.45, 0.55, 1.0),
    "trousers": (0.10, 0.13, 0.28, 1.0),
    "shoes": (0.06, 0.06, 0.07, 1.0),
    "eyeWhite": (0.92, 0.92, 0.90, 1.0),
    "iris": (0.18, 0.35, 0.55, 1.0),
    "pupil": (0.01, 0.01, 0.01, 1.0),
    "mouth": (0.35, 0.06, 0.07, 1.0),
    "tongue": (0.75, 0.30, 0.32, 1.0),
}
#: Materials drawn from both sides (open shells).
DOUBLE_SIDED = frozenset({"hair", "mouth"})

# Head layout in head-local coordinates (relative to HEAD_CENTRE), metres.
HEAD_CENTRE = np.array([0.0, 1.600, 0.012])
HEAD_RADII = np.array([0.100, 0.118, 0.106])
EYE_OFFSET = np.array([0.037, 0.010])  # eye centre (x, y); z is set under the head surface
EYE_RADIUS = 0.021
EYE_OPENING = (0.018, 0.0135)  # almond half width, half height
LID_RADIUS = EYE_RADIUS + 0.0025  # lid skin stays at least this far from the eye centre
MOUTH_Y = -0.060
MOUTH_HALF_WIDTH = 0.027
JAW_PIVOT = np.array([0.0, -0.012, -0.010])  # below the ears, the jaw's hinge
NOSE = np.array([0.0, -0.024])
HEAD_GRID = (50, 68)  # latitude rows, longitude columns of the head mesh


@dataclass
class Part:
    """One mesh: vertices [N, 3], triangles [F, 3], a material name per triangle, skin joints/weights."""

    vertices: np.ndarray
    faces: np.ndarray
    material: list[str]
    joints: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.uint16))
    weights: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    targets: dict[str, np.ndarray] = field(default_factory=dict)  # ARKit name -> [N, 3] deltas


def _smoothstep(x: np.ndarray, a: float, b: float) -> np.ndarray:
    t = np.clip((np.asarray(x, dtype=np.float64) - a) / (b - a), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _gauss(q: np.ndarray, centre: tuple[float, float], sx: float, sy: float) -> np.ndarray:
    return np.exp(-(((q[:, 0] - centre[0]) / sx) ** 2 + ((q[:, 1] - centre[1]) / sy) ** 2))


def _rot_x(v: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Rotate points v [N, 3] about the X axis by per-point angles (positive turns +Z towards -Y)."""
    c, s = np.cos(angle), np.sin(angle)
    out = v.copy()
    out[:, 1] = v[:, 1] * c - v[:, 2] * s
    out[:, 2] = v[:, 1] * s + v[:, 2] * c
    return out


def _concat(parts: list[tuple[np.ndarray, np.ndarray, str]]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    verts, faces, mats, n = [], [], [], 0
    for v, f, m in parts:
        verts.append(v)
        faces.append(f + n)
        mats += [m] * len(f)
        n += len(v)
    return np.concatenate(verts), np.concatenate(faces), mats


def _frame(d: np.ndarray) -> np.ndarray:
    """A rotation whose Z column is the unit vector d."""
    z = d / np.linalg.norm(d)
    helper = np.array([0.0, 1.0, 0.0]) if abs(z[1]) < 0.9 else np.array([1.0, 0.0, 0.0])
    x = np.cross(helper, z)
    x /= np.linalg.norm(x)
    return np.stack([x, np.cross(z, x), z], axis=1)


def tapered_capsule(a: np.ndarray, b: np.ndarray, r0: float, r1: float, flat: float = 1.0,
                    count: tuple[int, int] = (16, 24), cap: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """A capsule from a (radius r0) to b (radius r1), squashed to `flat` across its second axis and to
    `cap` along its length at the rounded ends."""
    import trimesh

    a, b = np.asarray(a, float), np.asarray(b, float)
    length = float(np.linalg.norm(b - a))
    m = trimesh.creation.capsule(height=length, radius=1.0, count=list(count))
    v = np.array(m.vertices, dtype=np.float64)
    t = np.clip((v[:, 2] + length / 2) / length, 0.0, 1.0)
    r = r0 + (r1 - r0) * t
    z = v[:, 2].copy()
    top, bot = z > length / 2, z < -length / 2
    z[top] = length / 2 + (z[top] - length / 2) * r1 * cap
    z[bot] = -length / 2 + (z[bot] + length / 2) * r0 * cap
    local = np.stack([v[:, 0] * r, v[:, 1] * r * flat, z + length / 2], axis=1)
    world = local @ _frame(b - a).T + a
    return world, np.array(m.faces, dtype=np.int64)


def ellipsoid(centre: np.ndarray, radii: np.ndarray, subdivisions: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """An icosphere scaled to an axis-aligned ellipsoid."""
    import trimesh

    m = trimesh.creation.icosphere(subdivisions=subdivisions)
    return np.array(m.vertices) * np.asarray(radii) + np.asarray(centre), np.array(m.faces, dtype=np.int64)


# --------------------------------------------------------------------------------------------------
# Skinning
# --------------------------------------------------------------------------------------------------


def bone_segments(skeleton: Skeleton = HUMANOID) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each bone as a segment from its joint to the joint it drives (its chain child or end site)."""
    rest = skeleton.rest_positions
    chain = {"hips": "spine", "upperChest": "neck"}
    out = {}
    for j, name in enumerate(skeleton.joints):
        kids = skeleton.children(name)
        if name in skeleton.end_sites:
            end = rest[j] + np.asarray(skeleton.end_sites[name])
        elif name in chain:
            end = rest[skeleton.index(chain[name])]
        elif len(kids) == 1:
            end = rest[skeleton.index(kids[0])]
        else:
            end = rest[j]
        out[name] = (rest[j], end)
    return out


def skin_weights(points: np.ndarray, bones: list[str], skeleton: Skeleton = HUMANOID,
                 softness: float = 0.02, power: float = 4.0) -> tuple[np.ndarray, np.ndarray]:
    """Up to 4 normalised joint weights per point among candidate bones, by inverse distance to each bone.

    Inverse distance to the bone segments (hand-written: it is a few lines and has no library home) gives
    weights that change smoothly across a joint, so the skin bends instead of creasing.
    """
    segs = bone_segments(skeleton)
    d = np.empty((len(points), len(bones)))
    for k, name in enumerate(bones):
        a, b = segs[name]
        ab = b - a
        t = np.clip(((points - a) @ ab) / max(float(ab @ ab), 1e-12), 0.0, 1.0)
        d[:, k] = np.linalg.norm(points - (a + t[:, None] * ab), axis=1)
    w = 1.0 / (d + softness) ** power
    order = np.argsort(-w, axis=1, kind="stable")[:, :4]
    top = np.take_along_axis(w, order, axis=1)
    top /= top.sum(axis=1, keepdims=True)
    joints = np.array([skeleton.index(n) for n in bones])[order]
    if len(bones) < 4:  # pad: unused slots carry weight 0 on joint 0
        pad = 4 - len(bones)
        joints = np.concatenate([joints, np.zeros((len(points), pad), int)], axis=1)
        top = np.concatenate([top, np.zeros((len(points), pad))], axis=1)
    return joints.astype(np.uint16), top


def _finish_weights(w: np.ndarray) -> np.ndarray:
    """float32 weights whose rows sum to 1 in float32 (the remainder goes to the largest weight)."""
    w32 = w.astype(np.float32)
    big = np.argmax(w32, axis=1)
    rows = np.arange(len(w32))
    w32[rows, big] += np.float32(1.0) - w32.sum(axis=1, dtype=np.float32)
    return w32


# --------------------------------------------------------------------------------------------------
# Body
# --------------------------------------------------------------------------------------------------


def build_body(skeleton: Skeleton = HUMANOID) -> Part:
    """The skinned body: torso, neck, limbs, hands, feet and the hair cap (rigid to the head)."""
    p = {n: skeleton.rest_positions[skeleton.index(n)] for n in skeleton.joints}
    ends = bone_segments(skeleton)
    groups: list[tuple[np.ndarray, np.ndarray, str, list[str]]] = []

    def add(vf: tuple[np.ndarray, np.ndarray], mat: str, bones: list[str]) -> None:
        groups.append((vf[0], vf[1], mat, bones))

    spine_bones = ["hips", "spine", "chest", "upperChest", "neck"]
    # Torso: a flattened capsule from the pelvis to the shoulders, trousers on a pelvis ellipsoid.
    add(tapered_capsule(p["hips"] + [0, 0.03, 0], p["neck"] - [0, 0.09, 0], 0.135, 0.15, flat=0.68, count=(20, 32),
                        cap=0.45), "shirt", spine_bones + ["leftShoulder", "rightShoulder"])
    add(ellipsoid(p["hips"] + [0, -0.02, 0], np.array([0.155, 0.11, 0.105])), "trousers",
        ["hips", "spine", "leftUpperLeg", "rightUpperLeg"])
    add(tapered_capsule(p["upperChest"] + [0, 0.05, 0], p["head"] - [0, 0.03, 0], 0.045, 0.04), "skin",
        ["upperChest", "neck", "head"])
    for s in ("left", "right"):
        sx = 1.0 if s == "left" else -1.0
        shoulder, upper, lower, hand = (s + "Shoulder", s + "UpperArm", s + "LowerArm", s + "Hand")
        add(tapered_capsule(p["upperChest"] + [0, 0.10, 0], p[upper], 0.06, 0.052), "shirt",
            ["upperChest", shoulder, upper])
        add(tapered_capsule(p[upper], p[lower], 0.05, 0.04), "shirt", [shoulder, upper, lower])
        add(tapered_capsule(p[lower], p[hand], 0.038, 0.03), "skin", [upper, lower, hand])
        hand_end = ends[hand][1]
        add(tapered_capsule(p[hand] + [sx * 0.02, 0, 0], hand_end - [sx * 0.03, 0, 0], 0.038, 0.032, flat=0.5),
            "skin", [lower, hand])
        thigh, shin, foot, toes = s + "UpperLeg", s + "LowerLeg", s + "Foot", s + "Toes"
        add(tapered_capsule(p[thigh], p[shin], 0.075, 0.055), "trousers", ["hips", thigh, shin])
        add(tapered_capsule(p[shin], p[foot], 0.053, 0.042), "trousers", [thigh, shin, foot])
        heel = p[foot] + [0, -0.03, -0.04]
        add(tapered_capsule(heel, ends[toes][1] + [0, 0.02, -0.01], 0.04, 0.038, flat=1.0), "shoes",
            [shin, foot, toes])
    # Hair: a cap slightly outside the head, cut at a hairline that is high in front and low at the back.
    hv, hf = head_surface(rows=34, cols=48)
    q = hv * 1.06 + [0, 0.004, -0.002]
    vline = -0.075 + 0.143 * _smoothstep(q[:, 2], -0.06, 0.07)
    above = q[:, 1] > vline
    keep = above[hf].any(axis=1)
    # Snap the cut edge onto the hairline so it is a smooth curve, not a staircase of triangles.
    q[:, 1] = np.maximum(q[:, 1], vline)
    add((q + HEAD_CENTRE, hf[keep]), "hair", ["head"])
    verts, faces, mats, joints, weights = [], [], [], [], []
    n = 0
    for v, f, m, bones in groups:
        used = np.unique(f)
        remap = np.full(len(v), -1)
        remap[used] = np.arange(len(used))
        v = v[used]
        j, w = skin_weights(v, bones, skeleton)
        verts.append(v)
        faces.append(remap[f] + n)
        mats += [m] * len(f)
        joints.append(j)
        weights.append(w)
        n += len(v)
    return Part(np.concatenate(verts), np.concatenate(faces), mats, np.concatenate(joints),
                _finish_weights(np.concatenate(weights)))


# --------------------------------------------------------------------------------------------------
# Head
# --------------------------------------------------------------------------------------------------


def head_surface(rows: int = HEAD_GRID[0], cols: int = HEAD_GRID[1]) -> tuple[np.ndarray, np.ndarray]:
    """The head shape as a closed lat/long grid in head-local space (vertices, triangles); poles fanned."""
    v = np.linspace(-np.pi / 2, np.pi / 2, rows + 2)[1:-1]
    lat = v * (1.0 - 0.35 * np.cos(v))  # denser rows around the face
    u = np.linspace(-np.pi, np.pi, cols, endpoint=False) + np.pi / cols
    lon = u - 0.5 * np.sin(u)  # denser columns at the front (lon = 0 faces +Z)
    la, lo = np.meshgrid(lat, lon, indexing="ij")
    n = np.stack([np.cos(la) * np.sin(lo), np.sin(la), np.cos(la) * np.cos(lo)], axis=-1).reshape(-1, 3)
    n = np.concatenate([n, [[0.0, -1.0, 0.0], [0.0, 1.0, 0.0]]])
    q = n * HEAD_RADII
    low = _smoothstep(-n[:, 1], 0.05, 0.95)
    q[:, 0] *= 1.0 - 0.2 * low  # a narrower jaw and chin
    q[:, 2] *= 1.0 - 0.06 * low
    q[:, 2] += 0.004 * _smoothstep(n[:, 2], 0.5, 1.0) * low  # a slightly forward chin
    faces = []
    for r in range(rows - 1):
        for c in range(cols):
            a, b = r * cols + c, r * cols + (c + 1) % cols
            a2, b2 = a + cols, b + cols
            faces += [(a, b, b2), (a, b2, a2)]
    bottom, top = rows * cols, rows * cols + 1
    for c in range(cols):
        faces.append((bottom, (c + 1) % cols, c))
        last = (rows - 1) * cols
        faces.append((top, last + c, last + (c + 1) % cols))
    return q, np.array(faces, dtype=np.int64)


def surface_z(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Front surface depth of the plain head ellipsoid at head-local (x, y) (above the jaw narrowing)."""
    s = 1.0 - (x / HEAD_RADII[0]) ** 2 - (y / HEAD_RADII[1]) ** 2
    return HEAD_RADII[2] * np.sqrt(np.clip(s, 0.0, None))


def head_depth(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Approximate front depth of the shaped head (with the narrower jaw) at head-local (x, y)."""
    low = _smoothstep(-y / HEAD_RADII[1], 0.05, 0.95)
    s = 1.0 - (x / (HEAD_RADII[0] * (1.0 - 0.2 * low))) ** 2 - (y / HEAD_RADII[1]) ** 2
    return HEAD_RADII[2] * (1.0 - 0.06 * low) * np.sqrt(np.clip(s, 0.0, None))


def eye_centres() -> dict[str, np.ndarray]:
    """Head-local eye centres, as deep as needed for the eyeball to stay behind the skin all round the opening
    (the head curves away towards the temples), so only the opening shows it."""
    aw, ah = EYE_OPENING
    t = np.linspace(0.0, 2.0 * np.pi, 73)
    dx, dy = aw * np.cos(t), ah * np.sin(t)
    out = {}
    for side, sx in (("left", 1.0), ("right", -1.0)):
        x, y = sx * EYE_OFFSET[0], EYE_OFFSET[1]
        bulge = np.sqrt(np.clip(EYE_RADIUS ** 2 - dx ** 2 - dy ** 2, 0.0, None))
        z = float(np.min(surface_z(x + dx, y + dy) - bulge)) - 0.0005
        out[side] = np.array([x, y, z])
    return out


@dataclass
class _Head:
    q: np.ndarray  # head-local vertices
    faces: np.ndarray
    material: list[str]
    lip: np.ndarray  # +1 upper lip copy, -1 lower lip copy, 0 elsewhere
    rim: np.ndarray  # bool: on the edge of an eye opening
    kind: np.ndarray  # 0 skin, 1 brow, 2 mouth interior, 3 tongue, 4 ear


def _head_geometry() -> _Head:
    rows, cols = HEAD_GRID
    q, faces = head_surface(rows, cols)
    # Nose: a soft bump.
    q[:, 2] += 0.011 * _gauss(q, (NOSE[0], NOSE[1]), 0.011, 0.014) * _smoothstep(q[:, 2], 0.05, 0.09)
    # Mouth slit: split the grid row nearest the mouth line across the front.
    row_y = q[: rows * cols].reshape(rows, cols, 3)[:, :, 1][:, 0]
    r_m = int(np.argmin(np.abs(row_y - MOUTH_Y)))
    row = np.arange(cols) + r_m * cols
    inside = (np.abs(q[row, 0]) < MOUTH_HALF_WIDTH) & (q[row, 2] > 0)
    split = row[inside]
    q[row, 1] = MOUTH_Y  # the lip line is straight at rest
    lip = np.zeros(len(q))
    upper_copy = np.arange(len(split)) + len(q)
    q = np.concatenate([q, q[split]])
    lip = np.concatenate([lip, np.ones(len(split))])
    lip[split] = -1.0  # the original row vertices become the lower lip
    remap = {int(s): int(u) for s, u in zip(split, upper_copy)}
    faces = faces.copy()
    upper_rows = np.isin(faces, np.arange((r_m + 1) * cols, (r_m + 2) * cols)).any(axis=1)
    for f in np.nonzero(upper_rows)[0]:  # triangles between the mouth row and the row above use the copy
        faces[f] = [remap.get(int(i), int(i)) for i in faces[f]]
    # Open the lips a hair so the dark interior draws a mouth line; corners stay closed.
    open_w = np.zeros(len(q))
    open_w[np.abs(lip) > 0] = np.sqrt(np.clip(1 - (q[np.abs(lip) > 0, 0] / MOUTH_HALF_WIDTH) ** 2, 0, 1))
    q[:, 1] += lip * open_w * 0.0012
    # Eye openings: remove the triangles inside the almond, snap the rim onto it, bulge the lids.
    eyes = eye_centres()
    aw, ah = EYE_OPENING
    cent = q[faces].mean(axis=1)
    remove = np.zeros(len(faces), bool)
    for c in eyes.values():
        e = ((cent[:, 0] - c[0]) / aw) ** 2 + ((cent[:, 1] - c[1]) / ah) ** 2
        remove |= (e < 1.0) & (cent[:, 2] > 0.04)
    rim = np.intersect1d(np.unique(faces[remove]), np.unique(faces[~remove]))
    faces = faces[~remove]
    for c in eyes.values():
        d = q[:, :2] - c[:2]
        e = np.sqrt((d[:, 0] / aw) ** 2 + (d[:, 1] / ah) ** 2)
        near = rim[(e[rim] < 1.6) & (q[rim, 2] > 0.04)]
        q[near, :2] = c[:2] + d[near] / np.maximum(e[near], 1e-9)[:, None]
        # Lids: skin near the opening stays at least LID_RADIUS from the eye centre (moved along z only, so
        # the opening keeps its outline), so a closing lid slides over the eyeball instead of through it.
        rel = q - c
        e = np.sqrt((rel[:, 0] / aw) ** 2 + (rel[:, 1] / ah) ** 2)
        need = c[2] + np.sqrt(np.clip(LID_RADIUS ** 2 - rel[:, 0] ** 2 - rel[:, 1] ** 2, 0.0, None))
        w = (1.0 - _smoothstep(e, 1.2, 1.9)) * (q[:, 2] > 0.04)
        q[:, 2] += np.maximum(need - q[:, 2], 0.0) * w
    is_rim = np.zeros(len(q), bool)
    is_rim[rim] = True
    # Drop vertices no triangle uses any more (the removed eye interiors).
    used = np.unique(faces)
    remap_arr = np.full(len(q), -1)
    remap_arr[used] = np.arange(len(used))
    q, lip, is_rim, faces = q[used], lip[used], is_rim[used], remap_arr[faces]
    kind = np.zeros(len(q), int)
    parts = [(q, faces, "skin")]
    kinds = [kind]
    # Brows: flat tapered capsules lying on the forehead above each eye.
    for c in eyes.values():
        sx = np.sign(c[0])
        a = np.array([c[0] - sx * 0.016, c[1] + 0.039, 0.0])
        b = np.array([c[0] + sx * 0.020, c[1] + 0.033, 0.0])
        bv, bf = tapered_capsule(a, b, 0.0045, 0.003, flat=1.0, count=(8, 12))
        bv[:, 1] += 0.004 * (1 - ((bv[:, 0] - c[0] - sx * 0.002) / 0.02) ** 2)  # an arch
        bv[:, 2] = (bv[:, 2] - bv[:, 2].min()) * 0.35 + surface_z(bv[:, 0], bv[:, 1]) + 0.0008  # lying on the skin
        parts.append((bv, bf, "hair"))
        kinds.append(np.ones(len(bv), int))
    # Mouth interior (seen through the parted lips) and a tongue resting in it.
    mz = float(surface_z(np.array(0.0), np.array(MOUTH_Y)))
    mv, mf = ellipsoid([0.0, MOUTH_Y - 0.006, mz - 0.028], [0.030, 0.024, 0.024], subdivisions=2)
    mv[:, 2] = np.minimum(mv[:, 2], head_depth(mv[:, 0], mv[:, 1]) - 0.005)  # stay inside the face
    parts.append((mv, mf, "mouth"))
    kinds.append(np.full(len(mv), 2))
    tv, tf = ellipsoid([0.0, MOUTH_Y - 0.014, mz - 0.030], [0.016, 0.006, 0.018], subdivisions=2)
    parts.append((tv, tf, "tongue"))
    kinds.append(np.full(len(tv), 3))
    for sx in (1.0, -1.0):
        ev, ef = ellipsoid([sx * 0.096, -0.004, -0.008], [0.014, 0.026, 0.018], subdivisions=2)
        parts.append((ev, ef, "skin"))
        kinds.append(np.full(len(ev), 4))
    verts, faces, mats = _concat(parts)
    pad = len(verts) - len(lip)
    lip = np.concatenate([lip, np.zeros(pad)])
    is_rim = np.concatenate([is_rim, np.zeros(pad, bool)])
    return _Head(verts, faces, mats, lip, is_rim, np.concatenate(kinds))


def _lid_weight(h: _Head, side: str) -> np.ndarray:
    """How much of a lid motion each vertex takes: 1 at the opening's rim, fading out over about one width."""
    c = eye_centres()[side]
    aw, ah = EYE_OPENING
    e = np.sqrt(((h.q[:, 0] - c[0]) / aw) ** 2 + ((h.q[:, 1] - c[1]) / ah) ** 2)
    return (1.0 - _smoothstep(e, 1.0, 2.2)) * (h.kind == 0) * (h.q[:, 2] > 0.03)


def _lid_deltas(h: _Head, side: str, upper: float, lower: float) -> np.ndarray:
    """Lids turning about the eye centre: `upper` > 0 lowers the upper lid by that fraction of the opening,
    `lower` > 0 raises the lower lid (negative values open them further). The opening's angle at each x is
    measured on the rim itself (a smooth fit), so the lids meet at upper + lower = 1."""
    c = eye_centres()[side]
    aw, ah = EYE_OPENING
    rel = h.q - c
    ang = np.arctan2(rel[:, 1], rel[:, 2])
    own = h.rim & (np.abs(rel[:, 0]) < 1.2 * aw) & (np.abs(rel[:, 1]) < 1.2 * ah)
    top, bot = own & (rel[:, 1] > 0), own & (rel[:, 1] < 0)
    # Smooth fits of the rim's angle across x (raw rim points jitter, and jitter would crease the lid).
    x = np.clip(rel[:, 0], -aw, aw)
    span = np.polyval(np.polyfit(rel[top, 0], ang[top], 2), x) - np.polyval(np.polyfit(rel[bot, 0], ang[bot], 2), x)
    # The quadratic fit falls short in the narrow corners: widen it there so a blink leaves no slit.
    ax = np.abs(rel[:, 0])
    span = np.clip(span, 0.0, None) * (1.0 + 0.8 * _smoothstep(ax, 0.4 * aw, 0.95 * aw))
    span *= 1.0 - _smoothstep(ax, 1.0 * aw, 1.25 * aw)
    w = _lid_weight(h, side)
    angle = np.where(rel[:, 1] > 0, upper * span, -lower * span) * w
    return _rot_x(rel, angle) - rel


def _region_deltas(h: _Head) -> dict[str, np.ndarray]:
    """The 52 ARKit shapes as [N, 3] deltas on the head vertices."""
    q, lip, kind = h.q, h.lip, h.kind
    n = len(q)
    face = (kind == 0) | (kind == 1)
    front = _smoothstep(q[:, 2], 0.02, 0.07) * face
    dy = q[:, 1] - MOUTH_Y
    side = np.where(lip != 0, lip, np.tanh(dy / 0.004))  # +1 above the mouth line, -1 below
    lower = np.where(lip != 0, (lip < 0).astype(float), _smoothstep(-dy, -0.002, 0.012))
    mouth_zone = _gauss(q, (0.0, MOUTH_Y), 0.045, 0.03) * front
    lips = _gauss(q, (0.0, MOUTH_Y), 0.034, 0.013) * front
    upper_lip = lips * (side > 0)
    lower_lip = lips * (side < 0)
    # The jaw: the lower face, the tongue, the chin, turning about the jaw pivot.
    jaw_w = lower * _smoothstep(q[:, 2], -0.03, 0.04) * (face | (kind == 3)) * (1 - _smoothstep(dy, 0.0, 0.01))
    jaw_w = np.where(kind == 3, 1.0, jaw_w)
    jaw_w = np.where(kind == 2, _smoothstep(-dy, -0.004, 0.012), jaw_w)  # the mouth's floor goes with the jaw
    jaw_w *= 1.0 - _smoothstep(np.abs(q[:, 0]), 0.085, 0.11)

    def jaw_turn(angle: float) -> np.ndarray:
        rel = q - JAW_PIVOT
        return _rot_x(rel, angle * jaw_w) - rel

    out: dict[str, np.ndarray] = {name: np.zeros((n, 3)) for name in ARKIT_BLENDSHAPES}
    out["jawOpen"] = jaw_turn(0.30)
    out["jawForward"] = jaw_w[:, None] * [0.0, 0.0, 0.010]
    out["jawLeft"] = jaw_w[:, None] * [0.010, 0.0, 0.0]
    out["jawRight"] = jaw_w[:, None] * [-0.010, 0.0, 0.0]
    # mouthClose: lips close over an open jaw (cancels the lower lip's share of jawOpen, lowers the upper).
    out["mouthClose"] = -out["jawOpen"] * (lower_lip / np.maximum(lips.max(), 1e-9))[:, None] * 0.55
    out["mouthClose"][:, 1] -= upper_lip * 0.004
    x_in = -q[:, 0] * lips  # towards the middle
    out["mouthFunnel"] = np.stack([0.25 * x_in, side * lips * 0.005, lips * 0.010], axis=1)
    out["mouthPucker"] = np.stack([0.40 * x_in, -side * lips * 0.001, lips * 0.014], axis=1)
    out["mouthLeft"] = mouth_zone[:, None] * [0.010, 0.0, -0.002]
    out["mouthRight"] = mouth_zone[:, None] * [-0.010, 0.0, -0.002]
    for s, sx in (("Left", 1.0), ("Right", -1.0)):
        corner = _gauss(q, (sx * MOUTH_HALF_WIDTH, MOUTH_Y), 0.017, 0.016) * front
        half = lips * _smoothstep(sx * q[:, 0], -0.004, 0.01)
        # Cartoon amplitudes (about twice a real face's): the stylised face must read at 512 px.
        out["mouthSmile" + s] = corner[:, None] * [sx * 0.009, 0.017, -0.005]
        out["mouthFrown" + s] = corner[:, None] * [sx * 0.003, -0.015, -0.001]
        out["mouthDimple" + s] = corner[:, None] * [sx * 0.004, 0.0, -0.005]
        out["mouthStretch" + s] = corner[:, None] * [sx * 0.009, -0.003, -0.002]
        out["mouthPress" + s] = np.stack([np.zeros(n), -side * half * 0.0015, -half * 0.002], axis=1)
        out["mouthLowerDown" + s] = (lower_lip * _smoothstep(sx * q[:, 0], -0.01, 0.012))[:, None] * [0, -0.007, 0.001]
        out["mouthUpperUp" + s] = (upper_lip * _smoothstep(sx * q[:, 0], -0.01, 0.012))[:, None] * [0, 0.006, 0.001]
        eye = eye_centres()[s.lower()]
        brow = _gauss(q, (eye[0], eye[1] + 0.034), 0.026, 0.012) * front
        inner = _gauss(q, (sx * 0.012, eye[1] + 0.032), 0.013, 0.012) * front
        outer = _gauss(q, (eye[0] + sx * 0.016, eye[1] + 0.030), 0.015, 0.012) * front
        # browDown lowers the whole brow and its inner end most, drawing it in (the corrugator's slant).
        out["browDown" + s] = brow[:, None] * [-sx * 0.003, -0.007, 0.001] + inner[:, None] * [-sx * 0.004, -0.015, 0.0]
        out["browOuterUp" + s] = outer[:, None] * [0.0, 0.014, 0.0]
        out["browInnerUp"] += inner[:, None] * [0.0, 0.015, 0.0]
        cheek = _gauss(q, (sx * 0.052, -0.035), 0.022, 0.022) * front * (kind == 0)
        radial = q / np.linalg.norm(q, axis=1, keepdims=True)
        out["cheekPuff"] += radial * (cheek * 0.012)[:, None]
        out["cheekSquint" + s] = cheek[:, None] * [0.0, 0.005, 0.001] + _lid_deltas(h, s.lower(), 0.0, 0.12)
        out["noseSneer" + s] = (_gauss(q, (sx * 0.012, NOSE[1] + 0.004), 0.010, 0.012) * front)[:, None] \
            * [sx * 0.001, 0.004, 0.0]
        lid = s.lower()
        out["eyeBlink" + s] = _lid_deltas(h, lid, 0.74, 0.30)  # a slight overlap: no slit left
        out["eyeWide" + s] = _lid_deltas(h, lid, -0.25, -0.05)
        out["eyeSquint" + s] = _lid_deltas(h, lid, 0.12, 0.30)
        # Gaze turns the eye nodes; these shapes make the lids follow it.
        out["eyeLookUp" + s] = _lid_deltas(h, lid, -0.15, -0.08)
        out["eyeLookDown" + s] = _lid_deltas(h, lid, 0.30, -0.10)
        lid_zone = _lid_weight(h, lid)
        out["eyeLookOut" + s] = lid_zone[:, None] * [sx * 0.0015, 0.0, 0.0]
        out["eyeLookIn" + s] = lid_zone[:, None] * [-sx * 0.0015, 0.0, 0.0]
    roll = lower_lip[:, None] * [0.0, 0.002, -0.005]
    out["mouthRollLower"] = roll
    out["mouthRollUpper"] = upper_lip[:, None] * [0.0, -0.002, -0.005]
    chin = _gauss(q, (0.0, MOUTH_Y - 0.03), 0.03, 0.02) * front
    out["mouthShrugLower"] = (lower_lip + chin)[:, None] * [0.0, 0.004, 0.003]
    out["mouthShrugUpper"] = upper_lip[:, None] * [0.0, 0.004, 0.001]
    tongue = (kind == 3) * _smoothstep(q[:, 2] - q[kind == 3, 2].min(), 0.0, 0.03)
    out["tongueOut"] = tongue[:, None] * [0.0, -0.006, 0.030]
    return out


def build_head() -> Part:
    """The face mesh in world space with its 52 ARKit morph targets, rigid to the head joint."""
    h = _head_geometry()
    targets = _region_deltas(h)
    head = HUMANOID.index("head")
    joints = np.zeros((len(h.q), 4), np.uint16)
    joints[:, 0] = head
    weights = np.zeros((len(h.q), 4), np.float32)
    weights[:, 0] = 1.0
    return Part(h.q + HEAD_CENTRE, h.faces, h.material, joints, weights, targets)


def build_eyeball() -> Part:
    """One eyeball in eye-local space (looking along +Z): white, iris and pupil as separate materials."""
    import trimesh

    m = trimesh.creation.icosphere(subdivisions=3, radius=EYE_RADIUS)
    v, f = np.array(m.vertices), np.array(m.faces, dtype=np.int64)
    cz = v[f].mean(axis=1)[:, 2] / np.linalg.norm(v[f].mean(axis=1), axis=1)
    mats = np.where(cz > np.cos(0.25), "pupil", np.where(cz > np.cos(0.52), "iris", "eyeWhite"))
    return Part(v, f, [str(x) for x in mats])


def eye_positions() -> dict[str, np.ndarray]:
    """World positions of the eye centres (leftEye / rightEye nodes)."""
    return {side + "Eye": c + HEAD_CENTRE for side, c in eye_centres().items()}
