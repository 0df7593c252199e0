"""Camera framing: a perspective camera fitted to the avatar's rest pose (head top, neck, feet), so an avatar of
any size fills the frame the same way; the floor and contact shadow, the draw order and the light directions that
follow from the same rest pose."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from avatar.errors import InputError

from .avatar_file import Avatar
from .mesh import MeshData
from .pose import Rig
from .settings import FRAMINGS

log = logging.getLogger(__name__)

#: (azimuth to the avatar's left, elevation, vertical field of view), degrees, of each framing's camera. The
#: portrait is a talking head that addresses the viewer: nearly frontal (the avatar looks straight ahead, at its
#: partner, so 5 degrees keep the eye contact and a little depth), the lens at eye height; a 3/4 view (20
#: degrees, as before) turned the eyes away from the viewer and hid the far brow and lip corner.
VIEWS: dict[str, tuple[float, float, float]] = {"portrait": (5.0, 4.0, 22.0), "full": (14.0, 5.0, 26.0)}


@dataclass(frozen=True)
class Camera:
    """A perspective camera: eye and target (world, metres), vertical field of view (degrees), clip planes."""

    eye: tuple[float, float, float]
    target: tuple[float, float, float]
    fov_y: float
    near: float
    far: float

    def view_proj(self, aspect: float) -> np.ndarray:
        """The 4x4 view-projection matrix (row-major, column vectors)."""
        e, t = np.asarray(self.eye, dtype=np.float64), np.asarray(self.target, dtype=np.float64)
        f = t - e
        f /= np.linalg.norm(f)
        s = np.cross(f, [0.0, 1.0, 0.0])
        s /= np.linalg.norm(s)
        u = np.cross(s, f)
        view = np.eye(4)
        view[0, :3], view[1, :3], view[2, :3] = s, u, -f
        view[:3, 3] = -view[:3, :3] @ e
        k = 1.0 / np.tan(np.radians(self.fov_y) / 2)
        n, fa = self.near, self.far
        proj = np.zeros((4, 4))
        proj[0, 0], proj[1, 1] = k / aspect, k
        proj[2, 2], proj[2, 3] = (fa + n) / (n - fa), 2 * fa * n / (n - fa)
        proj[3, 2] = -1.0
        return proj @ view


def frame_camera(avatar: Avatar, meshes: MeshData, rig: Rig, framing: str, aspect: float, *,
                 rest: tuple[list[np.ndarray], list[np.ndarray]] | None = None) -> Camera:
    """A nearly frontal head-and-shoulders ("portrait") or full-body ("full") camera fitted to the avatar
    (`rest`: rest_points_each(meshes, rig), when the caller has it already)."""
    if framing not in FRAMINGS:
        raise InputError(f"framing must be one of {', '.join(FRAMINGS)}, got {framing!r}")
    pts, owner = _rest_points(meshes, rig, rest)
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    height = float(hi[1] - lo[1]) or 1.0
    head_node = avatar.bones.get("head")
    if head_node is None:  # no skeleton to find a face in: both framings show the whole avatar
        framing = "full"
    head_set = subtree(avatar, head_node) if head_node is not None else set()
    in_head = np.isin(owner, list(head_set)) if head_set else np.zeros(len(pts), bool)
    head_top = float(pts[in_head, 1].max()) if in_head.any() else float(hi[1])
    neck_node = avatar.bones.get("neck", head_node)
    neck_y = float(rig.rest_world[neck_node][1, 3]) if neck_node is not None else head_top - 0.16 * height
    centre = rig.rest_world[head_node][:3, 3] if head_node is not None else (lo + hi) / 2
    if framing == "portrait":
        h = max(head_top - neck_y, 0.05 * height)
        top, bottom = head_top + 0.12 * h, neck_y - 0.8 * h
        half_w = 1.05 * h
    else:
        top, bottom = float(hi[1]) + 0.04 * height, float(lo[1]) - 0.07 * height  # room for the shadow
        half_w = 0.33 * height
        if head_node is None:  # not a figure: fit its width too
            half_w = max(half_w, 0.55 * float(max(hi[0] - lo[0], hi[2] - lo[2])))
    azimuth, elevation, fov = VIEWS[framing]
    target = np.array([centre[0], (top + bottom) / 2, centre[2]])
    half_h = (top - bottom) / 2
    t = np.tan(np.radians(fov) / 2)
    dist = max(half_h / t, half_w / (t * aspect))
    az, el = np.radians(azimuth), np.radians(elevation)
    direction = np.array([np.sin(az) * np.cos(el), np.sin(el), np.cos(az) * np.cos(el)])
    if rig.minus_z:
        direction *= np.array([-1.0, 1.0, -1.0])
    eye = target + direction * dist
    return Camera(eye=tuple(eye), target=tuple(target), fov_y=fov, near=max(dist * 0.05, 1e-3),
                  far=dist * 4 + height * 2)


def check_visible(avatar: Avatar, meshes: MeshData, points: list[np.ndarray]) -> None:
    """Refuse (InputError) an avatar whose rest pose has no finite position or no size: every frame would show only
    the background. Warn when some meshes are shrunk to a point (a zero scale hides them; glTF allows it)."""
    name = avatar.path.name
    pts = np.concatenate(points)
    finite = np.isfinite(pts).all(axis=1)
    if not finite.all():
        raise InputError(f"avatar {name}: {int((~finite).sum())} of {len(pts)} vertices have no finite rest "
                         "position (check its node transforms and inverse bind matrices)")
    flat = [float(np.ptp(p, axis=0).max()) < 1e-6 if len(p) > 1 else False for p in points]
    zero = [n.name for n in avatar.nodes if min(abs(v) for v in n.scale) == 0.0]
    why = f" (zero scale on {', '.join(repr(z) for z in zero[:3])}{' ...' if len(zero) > 3 else ''})" if zero else ""
    if float(np.ptp(pts, axis=0).max()) < 1e-6:
        raise InputError(f"avatar {name} has no size at rest: its transforms shrink all of it to a point{why}; "
                         "nothing would be drawn")
    if any(flat):
        hidden = sorted({meshes.primitives[i].mesh for i, f in enumerate(flat) if f})
        log.warning("avatar %s: mesh %s shrunk to a point at rest%s, not drawn", name,
                    ", ".join(str(m) for m in hidden), why)


def floor_and_shadow(meshes: MeshData, rig: Rig, rest: tuple[list[np.ndarray], list[np.ndarray]] | None = None) -> tuple[float, float]:
    """(floor height, contact-shadow radius): the lowest rest-pose vertex, a fifth of the avatar's height."""
    pts, _ = _rest_points(meshes, rig, rest)
    height = float(np.ptp(pts[:, 1])) or 1.0
    return float(pts[:, 1].min()), 0.2 * height


def subtree(avatar: Avatar, node: int) -> set[int]:
    """The node and every node below it."""
    out, stack = set(), [node]
    while stack:
        i = stack.pop()
        out.add(i)
        stack.extend(avatar.nodes[i].children)
    return out


def _rest_points(meshes: MeshData, rig: Rig, rest: tuple[list[np.ndarray], list[np.ndarray]] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Rest-pose world positions of every vertex and the node that moves it most (for framing)."""
    pts, owner = rest if rest is not None else rest_points_each(meshes, rig)
    return np.concatenate(pts), np.concatenate(owner)


def rest_points_each(meshes: MeshData, rig: Rig) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """_rest_points per primitive: one [N, 3] array of positions and one [N] array of owner nodes each."""
    pts, owner = [], []
    for p in meshes.primitives:
        if p.skin is not None:
            skin = rig.skins[p.skin]
            joints = np.asarray(skin.joints, dtype=np.int64)
            mats = rig.rest_world[joints] @ skin.inverse_bind  # [J, 4, 4]
            ji = p.joints.astype(np.int64).clip(0, len(joints) - 1)
            m = np.einsum("nk,nkij->nij", p.weights, mats[ji])
            pts.append(np.einsum("nij,nj->ni", m[:, :3, :3], p.positions) + m[:, :3, 3])
            owner.append(joints[ji[np.arange(len(ji)), np.argmax(p.weights, axis=1)]])
        else:
            m = rig.rest_world[p.node]
            pts.append(p.positions @ m[:3, :3].T + m[:3, 3])
            owner.append(np.full(len(p.positions), p.node))
    return pts, owner


def draw_order(meshes: MeshData, rig: Rig, eye: tuple[float, float, float], *,
               rest: tuple[list[np.ndarray], list[np.ndarray]] | None = None) -> list[int]:
    """Primitive indices nearest first (by the rest-pose vertex nearest the camera), morphing meshes ahead.

    Why: llvmpipe tests depth before shading, so what is drawn first hides the fragments behind it from the
    shader. Drawn in file order, the default avatar's portrait shaded 1.39 fragments per covered pixel (the
    eyeballs behind the lids, the neck behind the head); face first, 1.24. The morphing meshes (the face) go
    first since they hold what is nearest the camera in both framings and enclose the eyes and mouth."""
    pts, _ = rest if rest is not None else rest_points_each(meshes, rig)
    e = np.asarray(eye, dtype=np.float64)
    near = [float(np.linalg.norm(q - e, axis=1).min()) if len(q) else np.inf for q in pts]
    return sorted(range(len(pts)), key=lambda i: (meshes.primitives[i].target_pos is None, near[i]))


def light_dirs(minus_z: bool) -> dict[str, np.ndarray]:
    """Key (upper right of the camera, in front), fill (other side, low), rim (behind, above); unit, world."""
    dirs = {"u_key_dir": (0.55, 0.55, 0.75), "u_fill_dir": (-0.8, 0.05, 0.5), "u_rim_dir": (-0.35, 0.45, -0.85)}
    flip = np.array([-1.0, 1.0, -1.0]) if minus_z else np.ones(3)
    return {k: np.asarray(v) * flip / np.linalg.norm(v) for k, v in dirs.items()}


def frustum_planes(view_proj: np.ndarray) -> np.ndarray:
    """The six clip planes [6, 4] of a view-projection matrix, unit normals pointing inside (Gribb-Hartmann)."""
    m = np.asarray(view_proj, dtype=np.float64)
    planes = np.array([m[3] + m[0], m[3] - m[0], m[3] + m[1], m[3] - m[1], m[3] + m[2], m[3] - m[2]])
    return planes / np.linalg.norm(planes[:, :3], axis=1, keepdims=True)


def meshes_outside(planes: np.ndarray, centres: np.ndarray, radii: np.ndarray, caps: np.ndarray,
                   starts: np.ndarray, capped: np.ndarray) -> np.ndarray:
    """For each of several meshes, whether one plane has all of it on its outer side [M]: the spheres of mesh m are
    rows starts[m] .. starts[m + 1] - 1 of centres [K, 3] and radii [K] (its bounding sphere moved by each joint
    that weighs on it), caps [K] the largest weight that joint has on one of its vertices.

    A skinned vertex is a weighted mean of its joints' images, so its signed distance to a plane is at most the
    weighted mean of the spheres' farthest reaches. Where `capped` [M], the worst mean puts as much weight as allowed
    on the farthest-reaching spheres first: a joint with a stray 2 % weight somewhere (the other hand's finger, in
    MakeHuman's weights) then no longer keeps a whole arm in view. Elsewhere, or where the caps sum to less than 1
    (weights that do not sum to 1 bound nothing), every sphere must lie outside."""
    reach = centres @ planes[:, :3].T + planes[:, 3] + radii[:, None]  # [K, 6] farthest signed distance, per sphere
    starts = np.asarray(starts, np.int64)
    seg = np.repeat(np.arange(len(starts)), np.diff(np.append(starts, len(reach))))
    far = np.maximum.reduceat(reach, starts, axis=0)  # [M, 6]
    caps = np.asarray(caps, np.float64)
    use = np.asarray(capped, bool) & (np.add.reduceat(caps, starts) >= 1.0 - 1e-6)
    if use.any():
        worst = np.empty_like(far)
        before = np.append(0.0, np.cumsum(np.add.reduceat(caps, starts))[:-1])  # caps of the meshes ahead
        for j in range(reach.shape[1]):
            order = np.lexsort((-reach[:, j], seg))  # per mesh, the farthest-reaching spheres first
            cap = caps[order]
            given = np.cumsum(cap) - before[seg] - cap  # weight already given within the mesh
            taken = np.clip(1.0 - given, 0.0, cap)
            worst[:, j] = np.add.reduceat(taken * reach[order, j], starts)
        far = np.where(use[:, None], worst, far)
    return (far < 0).any(axis=1)

