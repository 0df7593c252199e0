"""Headless OpenGL renderer of an Avatar driven by FaceMotion + BodyMotion (moderngl over EGL, no display).

    from avatar.render.renderer import Renderer, render_frames
    with Renderer(avatar, 512, 512, framing="portrait") as r:
        rgb = r.render(face.frames[i], (body.joints, body.rotations[i], body.root_position[i]))
    for rgb in render_frames(avatar, face, body, fps=30): ...

Per frame: the nodes are posed on the CPU (avatar.render.pose: retargeted BodyMotion, the face's head pose on
neck/head, gaze on the eye nodes), morph targets are applied on the CPU with numpy (one dense product over the
active targets, for positions and for normals; normal deltas the file lacks are computed once per renderer), and linear-blend skinning runs in
the vertex shader with the joint matrices in a float texture (no limit on the joint count). Shading is a
simple lit base colour (texture when the material has one): hemisphere ambient, a warm key, a cool fill and a
rim light, wrapped diffuse for skin, Blinn-Phong highlights from the roughness, on a soft gradient background,
anti-aliased by FXAA on the avatar's pixels or by MSAA. One program variant per kind of material (textured,
alpha-masked) rather than branches on uniforms, which llvmpipe pays for on every pixel. The camera is framed from the avatar's own rest pose (head top, neck, feet), so an avatar of any
size fills the frame the same way.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from avatar.errors import AvatarError, InputError
from avatar.npnn import blas_limit
from avatar.types import BodyMotion, FaceMotion

from .avatar_file import Avatar, check_avatar_file, load_avatar
from .mesh import MeshData, Primitive, incidence_matrix, normalize, read_meshes, vertex_normals
from .pose import Body, Rig, arkit_row, build_rig, node_matrices

if TYPE_CHECKING:
    from .pool import RenderPool

log = logging.getLogger(__name__)

FRAMINGS = ("portrait", "full")
_GL_OPENED = False  # set once this process opens a GL context: forked render workers could not share it
MAX_SIZE = 4096

_VERT = """
#version 330
uniform mat4 u_view_proj;
uniform mat4 u_model;
uniform bool u_skinned;
uniform sampler2D u_joints;  // 4 texels per joint: the columns of world(joint) * inverseBind
in vec3 in_pos;
in vec3 in_nrm;
in vec2 in_uv;
in vec4 in_joints;
in vec4 in_weights;
out vec3 v_pos;
out vec3 v_nrm;
out vec2 v_uv;

mat4 joint(float j) {
    int r = int(j + 0.5);
    return mat4(texelFetch(u_joints, ivec2(0, r), 0), texelFetch(u_joints, ivec2(1, r), 0),
                texelFetch(u_joints, ivec2(2, r), 0), texelFetch(u_joints, ivec2(3, r), 0));
}

void main() {
    mat4 m = u_model;
    if (u_skinned) {
        m = in_weights.x * joint(in_joints.x) + in_weights.y * joint(in_joints.y)
          + in_weights.z * joint(in_joints.z) + in_weights.w * joint(in_joints.w);
    }
    vec4 w = m * vec4(in_pos, 1.0);
    v_pos = w.xyz;
    v_nrm = mat3(m) * in_nrm;  // rigid bones: the upper 3x3 is a rotation (times a uniform scale)
    v_uv = in_uv;
    gl_Position = u_view_proj * w;
}
"""

_FRAG = """
#version 330
uniform vec4 u_color;
uniform float u_rough;
#ifdef TEXTURED
uniform sampler2D u_tex;
#endif
uniform int u_alpha_mode;  // 0 opaque, 1 mask, 2 blend
uniform float u_cutoff;
uniform bool u_interior;  // a morphing single-sided mesh: its back faces are the inside of the head
uniform vec3 u_eye;
uniform vec3 u_key_dir;
uniform vec3 u_fill_dir;
uniform vec3 u_rim_dir;
in vec3 v_pos;
in vec3 v_nrm;
in vec2 v_uv;
out vec4 f_color;

const vec3 KEY = vec3(1.05, 0.97, 0.88);
const vec3 FILL = vec3(0.34, 0.40, 0.52);
const vec3 RIM = vec3(0.75, 0.80, 0.95);
const vec3 SKY = vec3(0.36, 0.38, 0.44);
const vec3 GROUND = vec3(0.20, 0.17, 0.15);

// Linear to display gamma, c^(1/2.2), as sqrt(c) times a quadratic in sqrt(c) (least squares on [0, 1]): within
// 1.7/255 of pow() in the darkest tones and closer elsewhere, and on llvmpipe about 2 ms a 512x512 frame cheaper.
vec3 to_display(vec3 c) {
    vec3 s = sqrt(clamp(c, 0.0, 1.0));
    return s * (1.2008 + s * (-0.3307 + s * 0.1299));
}

void main() {
    vec4 base = u_color;
#ifdef TEXTURED
    vec4 t = texture(u_tex, v_uv);
    base *= vec4(pow(t.rgb, vec3(2.2)), t.a);  // sRGB texels to linear
#endif
#ifdef ALPHA_MASK
    if (u_alpha_mode == 1 && base.a < u_cutoff) discard;
#endif
    if (u_interior && !gl_FrontFacing) {  // seen through an opened mouth or a lid: a deep shadow of the skin
        f_color = vec4(to_display(base.rgb * vec3(0.07, 0.05, 0.05)), 1.0);
        return;
    }
    vec3 n = normalize(v_nrm);
    if (!gl_FrontFacing) n = -n;  // double-sided materials are lit from the side we see
    vec3 v = normalize(u_eye - v_pos);
    // Wrapped diffuse: light bleeds a little past the terminator, which reads as soft skin.
    float kd = clamp((dot(n, u_key_dir) + 0.3) / 1.3, 0.0, 1.0);
    float fd = clamp((dot(n, u_fill_dir) + 0.2) / 1.2, 0.0, 1.0);
    float rd = clamp(dot(n, u_rim_dir), 0.0, 1.0);
    vec3 amb = mix(GROUND, SKY, 0.5 + 0.5 * n.y);
    vec3 diffuse = amb + KEY * kd + FILL * fd + RIM * rd * 0.5;
    float r2 = u_rough * u_rough;
    float shin = clamp(2.0 / max(r2 * r2, 1e-3) - 2.0, 4.0, 400.0);
    float spec_k = mix(0.25, 0.03, u_rough);
    vec3 hk = normalize(u_key_dir + v);
    vec3 spec = KEY * spec_k * pow(max(dot(n, hk), 0.0), shin) * step(0.0, dot(n, u_key_dir));
    float f1 = 1.0 - max(dot(n, v), 0.0);
    float fres = (f1 * f1) * (f1 * f1);
    vec3 rim = RIM * fres * 0.35 * rd;
    vec3 c = base.rgb * diffuse + spec + rim;
    c = c / (1.0 + 0.15 * c);  // a gentle shoulder so highlights do not clip to white
    f_color = vec4(to_display(c), u_alpha_mode == 2 ? base.a : 1.0);
}
"""

_BG_VERT = """
#version 330
out vec2 v_uv;
void main() {
    vec2 p = vec2((gl_VertexID << 1) & 2, gl_VertexID & 2);
    v_uv = p;
    gl_Position = vec4(p * 2.0 - 1.0, 0.999, 1.0);
}
"""

# A soft contact shadow: a disc on the floor under the hips, darkest in the middle (no shadow maps needed).
_SHADOW_VERT = """
#version 330
uniform mat4 u_view_proj;
uniform vec3 u_centre;
uniform float u_radius;
in vec2 in_corner;
out vec2 v_p;
void main() {
    v_p = in_corner;
    gl_Position = u_view_proj * vec4(u_centre + vec3(in_corner.x, 0.0, in_corner.y) * u_radius, 1.0);
}
"""

_SHADOW_FRAG = """
#version 330
in vec2 v_p;
out vec4 f_color;
void main() {
    float r = length(v_p * vec2(1.0, 1.6));
    f_color = vec4(0.05, 0.06, 0.08, 0.45 * (1.0 - smoothstep(0.15, 1.0, r)));
}
"""

_BG_FRAG = """
#version 330
in vec2 v_uv;
out vec4 f_color;
void main() {
    vec3 top = vec3(0.80, 0.84, 0.89);
    vec3 bottom = vec3(0.47, 0.51, 0.58);
    vec3 c = mix(bottom, top, smoothstep(0.0, 1.0, v_uv.y));
    vec2 d = v_uv - vec2(0.5, 0.55);
    c *= 1.0 - 0.35 * dot(d, d);  // soft vignette
    f_color = vec4(c, 1.0);
}
"""


# FXAA (Lottes 2009, the widely used "FXAA 3.11 console" simplification): one pass that blends along the local
# luma gradient at contrast edges, over the pixels the avatar covers (see Renderer._render). On llvmpipe it costs a fraction of 4x MSAA (which shades
# and stores every sample on the CPU); see bench/render_bench.py for both.
_FXAA_FRAG = """
#version 330
uniform sampler2D u_src;
uniform vec2 u_texel;
in vec2 v_uv;
out vec4 f_color;
float luma(vec3 c) { return dot(c, vec3(0.299, 0.587, 0.114)); }
void main() {
    // The neighbours sit on texel centres: texelFetch skips the filtering that texture() pays for on llvmpipe.
    ivec2 c = ivec2(gl_FragCoord.xy);
    ivec2 hi_c = textureSize(u_src, 0) - 1;
    vec3 nw = texelFetch(u_src, clamp(c + ivec2(-1, -1), ivec2(0), hi_c), 0).rgb;
    vec3 ne = texelFetch(u_src, clamp(c + ivec2(1, -1), ivec2(0), hi_c), 0).rgb;
    vec3 sw = texelFetch(u_src, clamp(c + ivec2(-1, 1), ivec2(0), hi_c), 0).rgb;
    vec3 se = texelFetch(u_src, clamp(c + ivec2(1, 1), ivec2(0), hi_c), 0).rgb;
    vec3 m = texelFetch(u_src, c, 0).rgb;
    float lnw = luma(nw), lne = luma(ne), lsw = luma(sw), lse = luma(se), lm = luma(m);
    float lo = min(lm, min(min(lnw, lne), min(lsw, lse)));
    float hi = max(lm, max(max(lnw, lne), max(lsw, lse)));
    if (hi - lo < max(1.0 / 24.0, hi * 0.125)) {  // no edge here (FXAA's contrast threshold): most pixels stop
        f_color = vec4(m, 1.0);
        return;
    }
    vec2 dir = vec2(-((lnw + lne) - (lsw + lse)), (lnw + lsw) - (lne + lse));
    float reduce = max((lnw + lne + lsw + lse) * (0.25 / 8.0), 1.0 / 128.0);
    float rcp = 1.0 / (min(abs(dir.x), abs(dir.y)) + reduce);
    dir = clamp(dir * rcp, vec2(-8.0), vec2(8.0)) * u_texel;
    vec3 a = 0.5 * (texture(u_src, v_uv + dir * (1.0 / 3.0 - 0.5)).rgb
                    + texture(u_src, v_uv + dir * (2.0 / 3.0 - 0.5)).rgb);
    vec3 b = a * 0.5 + 0.25 * (texture(u_src, v_uv - dir * 0.5).rgb + texture(u_src, v_uv + dir * 0.5).rgb);
    float lb = luma(b);
    f_color = vec4((lb < lo || lb > hi) ? a : b, 1.0);
}
"""

ANTIALIAS = ("msaa", "fxaa", "none")
# Blending on a transparent buffer, colour kept premultiplied by coverage: "over" for the shadow and blended
# materials (colour by source alpha, alpha accumulated), "under" to lay the background beneath at the end.
_OVER = (0x0302, 0x0303, 1, 0x0303)  # SRC_ALPHA, ONE_MINUS_SRC_ALPHA | ONE, ONE_MINUS_SRC_ALPHA
_UNDER = (0x0305, 1, 0, 1)  # ONE_MINUS_DST_ALPHA, ONE | ZERO, ONE


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
    """A three-quarter head-and-shoulders ("portrait") or full-body ("full") camera fitted to the avatar
    (`rest`: _rest_points_each(meshes, rig), when the caller has it already)."""
    if framing not in FRAMINGS:
        raise InputError(f"framing must be one of {', '.join(FRAMINGS)}, got {framing!r}")
    pts, owner = _rest_points(meshes, rig, rest)
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    height = float(hi[1] - lo[1]) or 1.0
    head_node = avatar.bones.get("head")
    if head_node is None:  # no skeleton to find a face in: both framings show the whole avatar
        framing = "full"
    head_set = _subtree(avatar, head_node) if head_node is not None else set()
    in_head = np.isin(owner, list(head_set)) if head_set else np.zeros(len(pts), bool)
    head_top = float(pts[in_head, 1].max()) if in_head.any() else float(hi[1])
    neck_node = avatar.bones.get("neck", head_node)
    neck_y = float(rig.rest_world[neck_node][1, 3]) if neck_node is not None else head_top - 0.16 * height
    centre = rig.rest_world[head_node][:3, 3] if head_node is not None else (lo + hi) / 2
    if framing == "portrait":
        h = max(head_top - neck_y, 0.05 * height)
        top, bottom = head_top + 0.12 * h, neck_y - 0.8 * h
        half_w = 1.05 * h
        azimuth, elevation, fov = 20.0, 4.0, 22.0
    else:
        top, bottom = float(hi[1]) + 0.04 * height, float(lo[1]) - 0.07 * height  # room for the shadow
        half_w = 0.33 * height
        if head_node is None:  # not a figure: fit its width too
            half_w = max(half_w, 0.55 * float(max(hi[0] - lo[0], hi[2] - lo[2])))
        azimuth, elevation, fov = 14.0, 5.0, 26.0
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


def _check_visible(avatar: Avatar, meshes: MeshData, points: list[np.ndarray]) -> None:
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


def _floor(meshes: MeshData, rig: Rig, rest: tuple[list[np.ndarray], list[np.ndarray]] | None = None) -> tuple[float, float]:
    """(floor height, contact-shadow radius): the lowest rest-pose vertex, a fifth of the avatar's height."""
    pts, _ = _rest_points(meshes, rig, rest)
    height = float(np.ptp(pts[:, 1])) or 1.0
    return float(pts[:, 1].min()), 0.2 * height


def _subtree(avatar: Avatar, node: int) -> set[int]:
    out, stack = set(), [node]
    while stack:
        i = stack.pop()
        out.add(i)
        stack.extend(avatar.nodes[i].children)
    return out


def _rest_points(meshes: MeshData, rig: Rig, rest: tuple[list[np.ndarray], list[np.ndarray]] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Rest-pose world positions of every vertex and the node that moves it most (for framing)."""
    pts, owner = rest if rest is not None else _rest_points_each(meshes, rig)
    return np.concatenate(pts), np.concatenate(owner)


def _rest_points_each(meshes: MeshData, rig: Rig) -> tuple[list[np.ndarray], list[np.ndarray]]:
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
    pts, _ = rest if rest is not None else _rest_points_each(meshes, rig)
    e = np.asarray(eye, dtype=np.float64)
    near = [float(np.linalg.norm(q - e, axis=1).min()) if len(q) else np.inf for q in pts]
    return sorted(range(len(pts)), key=lambda i: (meshes.primitives[i].target_pos is None, near[i]))


def _light_dirs(minus_z: bool) -> dict[str, np.ndarray]:
    """Key (upper right of the camera, in front), fill (other side, low), rim (behind, above); unit, world."""
    dirs = {"u_key_dir": (0.55, 0.55, 0.75), "u_fill_dir": (-0.8, 0.05, 0.5), "u_rim_dir": (-0.35, 0.45, -0.85)}
    flip = np.array([-1.0, 1.0, -1.0]) if minus_z else np.ones(3)
    return {k: np.asarray(v) * flip / np.linalg.norm(v) for k, v in dirs.items()}


def gl_context_opened() -> bool:
    """Whether this process has opened a GL context (then forked render workers are not safe)."""
    return _GL_OPENED


def default_avatar_path() -> Path:
    """The shipped default avatar (the registry's `default_avatar()`: weights/avatars/default.glb)."""
    from avatar.weights import default_avatar

    return default_avatar()


def avatar_source(avatar: Avatar | str | os.PathLike[str] | None) -> Avatar | Path:
    """An Avatar as is, else the path of the avatar's file after the checks that need no parsing (it exists, its
    size, suffix and glTF header): for a render pool, whose first worker then reads the file. A shipped avatar's
    name (`default-male`, `toon`; avatar.render.avatars) stands for its file."""
    from .avatars import named_avatar

    avatar = named_avatar(avatar)
    if isinstance(avatar, Avatar):
        return avatar
    path = default_avatar_path() if avatar is None else Path(avatar)
    if avatar is None and not path.is_file():
        raise AvatarError(f"the default avatar is missing: run python -m avatar.render.make_default --out {path}")
    check_avatar_file(path)
    return path


def resolve_avatar(avatar: Avatar | str | os.PathLike[str] | None) -> Avatar:
    """An Avatar from an Avatar, a .glb/.gltf/.vrm path, a shipped avatar's name, or None (the default avatar)."""
    from .avatars import named_avatar

    avatar = named_avatar(avatar)
    if isinstance(avatar, Avatar):
        return avatar
    path = default_avatar_path() if avatar is None else Path(avatar)
    if avatar is None and not path.is_file():
        raise AvatarError(f"the default avatar is missing: run python -m avatar.render.make_default --out {path}")
    try:
        st = path.stat()
    except OSError:
        return load_avatar(path)  # let the loader say what is wrong with the path
    return _load_cached(str(path.resolve()), st.st_mtime_ns, st.st_size)


@lru_cache(maxsize=4)
def _load_cached(path: str, mtime_ns: int, size: int) -> Avatar:
    """One parse per avatar file and version: reading the default .glb takes about 0.03 s (avatar.gltf.document;
    0.3-0.45 s with pygltflib's own decoder), and a large user avatar much more, paid by every video a warm process
    (the app, batch workers) makes otherwise. Nothing downstream changes an Avatar (the .glb
    export deep-copies its glTF)."""
    return load_avatar(path)


class Renderer:
    """Draws one Avatar into RGB frames (uint8 [H, W, 3]); use as a context manager or call close()."""

    #: NumPy's BLAS threads while a frame is made (None: as the process has it; bench/render_bench.py compares).
    blas_threads: int | None = 1

    def __init__(self, avatar: Avatar | str | os.PathLike[str] | None = None, width: int = 512, height: int = 512,
                 framing: str = "portrait", samples: int = 4, antialias: str = "msaa", *, gl: bool = True) -> None:
        """Lay out the avatar for drawing and open a headless GL context (EGL); gl=False leaves the context for
        open(), so that a process can lay out once and fork renderers that each open their own."""
        for name, v in (("width", width), ("height", height)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 16 <= v <= MAX_SIZE:
                raise InputError(f"{name} must be an integer in [16, {MAX_SIZE}], got {v!r}")
        if framing not in FRAMINGS:
            raise InputError(f"framing must be one of {', '.join(FRAMINGS)}, got {framing!r}")
        if antialias not in ANTIALIAS:
            raise InputError(f"antialias must be one of {', '.join(ANTIALIAS)}, got {antialias!r}")
        self.antialias = antialias
        self.avatar = resolve_avatar(avatar)
        self.width, self.height, self.framing = int(width), int(height), framing
        self.meshes = read_meshes(self.avatar)
        self.rig = build_rig(self.avatar)
        rest = _rest_points_each(self.meshes, self.rig)  # skinned once, for the framing, floor and draw order
        _check_visible(self.avatar, self.meshes, rest[0])
        if framing == "portrait" and "head" not in self.avatar.bones:
            log.warning("avatar %s has no head bone (no humanoid skeleton): the portrait frames the whole avatar",
                        self.avatar.path.name)
        moved = set().union(*(_subtree(self.avatar, b) for b in self.avatar.bones.values())) if self.avatar.bones \
            else set()
        loose = sum(len(p.positions) for p in self.meshes.primitives if p.skin is None and p.node not in moved)
        total = sum(len(p.positions) for p in self.meshes.primitives)
        if moved and loose > total // 2:
            log.warning("avatar %s has humanoid bones, but %d of its %d vertices are neither skinned nor parented to "
                        "them: those stay at rest", self.avatar.path.name, loose, total)
        self.camera = frame_camera(self.avatar, self.meshes, self.rig, framing, self.width / self.height, rest=rest)
        self._floor = _floor(self.meshes, self.rig, rest)
        self._warned: set[str] = set()
        self._weights: dict[int, np.ndarray] = {}  # id(primitive) -> morph weights last uploaded
        self._nrm_delta = {id(p): _normal_deltas(p) for p in self.meshes.primitives
                           if p.target_pos is not None and p.target_nrm is None}
        self._morph_matrix = self._linear_morphs()
        self._order = draw_order(self.meshes, self.rig, self.camera.eye, rest=rest)
        self.timings: dict[str, float] = {"pose": 0.0, "morph": 0.0, "draw": 0.0, "read": 0.0}
        self._samples_asked = samples
        self._ctx = None
        if gl:
            self.open()

    def open(self) -> None:
        """Open the GL context and upload the avatar (done by the constructor unless gl=False; once)."""
        if self._ctx is not None:
            return
        try:
            self._init_gl(self._samples_asked)
        except Exception:
            self.close()
            raise

    # ---------------------------------------------------------------------------------------------- GL set-up
    def _init_gl(self, samples: int) -> None:
        import moderngl

        global _GL_OPENED
        _GL_OPENED = True
        try:
            self._ctx = moderngl.create_context(standalone=True, backend="egl", require=330)
        except Exception as exc:  # noqa: BLE001 - EGL/driver errors come in many types
            raise AvatarError(f"cannot create a headless OpenGL context (EGL): {exc}; install Mesa's EGL "
                              "(libegl1, libgl1-mesa-dri)") from None
        ctx = self._ctx
        with ctx:
            s = max(0, min(int(samples), ctx.max_samples)) if self.antialias == "msaa" else 0
            self._samples = s
            size = (self.width, self.height)
            self._fxaa = None
            if self.antialias == "fxaa":  # draw into a texture, then FXAA it into the read-back buffer
                self._color_tex = ctx.texture(size, 4)
                self._color_tex.filter = (moderngl.LINEAR, moderngl.LINEAR)
                self._color_tex.repeat_x = self._color_tex.repeat_y = False
                depth = ctx.depth_renderbuffer(size)
                self._fbo = ctx.framebuffer(color_attachments=[self._color_tex], depth_attachment=depth)
                prog = ctx.program(vertex_shader=_BG_VERT, fragment_shader=_FXAA_FRAG)
                prog["u_texel"].value = (1.0 / self.width, 1.0 / self.height)
                self._fxaa = ctx.vertex_array(prog, [])
            else:
                self._fbo = ctx.framebuffer(color_attachments=[ctx.renderbuffer(size, 4, samples=s)],
                                            depth_attachment=ctx.depth_renderbuffer(size, samples=s))
            if self._fxaa is not None:  # shares the depth buffer: FXAA runs only where the avatar was drawn
                self._resolve = ctx.framebuffer(color_attachments=[ctx.renderbuffer(size, 4)], depth_attachment=depth)
            else:
                self._resolve = ctx.framebuffer(color_attachments=[ctx.renderbuffer(size, 4)]) if s else self._fbo
            self._progs: dict[tuple[bool, bool], object] = {}  # (alpha mask, textured) -> program, made on demand
            self._bg = ctx.program(vertex_shader=_BG_VERT, fragment_shader=_BG_FRAG)
            self._bg_vao = ctx.vertex_array(self._bg, [])
            self._bg_fbo = None
            if not s:  # single-sampled: the background is drawn once and copied in under each frame
                self._bg_fbo = ctx.framebuffer(color_attachments=[ctx.renderbuffer(size, 4)])
                self._bg_fbo.use()
                self._bg_vao.render(moderngl.TRIANGLES, vertices=3)
            self._shadow = ctx.program(vertex_shader=_SHADOW_VERT, fragment_shader=_SHADOW_FRAG)
            self._shadow["u_view_proj"].write(self.camera.view_proj(self.width / self.height).T.astype("f4").tobytes())
            self._shadow["u_radius"].value = float(self._floor[1])
            corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, -1], [1, 1], [-1, 1]], dtype="f4")
            self._shadow_vao = ctx.vertex_array(self._shadow, [(ctx.buffer(corners.tobytes()), "2f", "in_corner")])
            self._joint_tex = [ctx.texture((4, max(len(sk.joints), 1)), 4, dtype="f4") for sk in self.avatar.skins]
            for t in self._joint_tex:
                t.filter = (moderngl.NEAREST, moderngl.NEAREST)
            self._images = []
            for im in self.meshes.images:  # glTF uv (0, 0) is the first row: GL t = 0 when rows go in file order
                t = ctx.texture((im.shape[1], im.shape[0]), 4, np.ascontiguousarray(im).tobytes())
                t.build_mipmaps()
                t.filter = (moderngl.LINEAR_MIPMAP_LINEAR, moderngl.LINEAR)
                self._images.append(t)
            self._dummy_tex = ctx.texture((1, 1), 4, dtype="f4")
            self._draws = [self._upload(self.meshes.primitives[i]) for i in self._order]

    def _upload(self, p: Primitive) -> dict:
        ctx = self._ctx
        n = len(p.positions)
        dynamic = p.target_pos is not None
        bufs = {
            "pos": ctx.buffer(p.positions.astype("f4").tobytes(), dynamic=dynamic),
            "nrm": ctx.buffer(p.normals.astype("f4").tobytes(), dynamic=dynamic),
            "uv": ctx.buffer((p.uv if p.uv is not None else np.zeros((n, 2))).astype("f4").tobytes()),
            "jnt": ctx.buffer((p.joints if p.joints is not None else np.zeros((n, 4))).astype("f4").tobytes()),
            "wts": ctx.buffer((p.weights if p.weights is not None else np.zeros((n, 4))).astype("f4").tobytes()),
        }
        ibo = ctx.buffer(p.indices.astype("u4").tobytes())
        mask, textured = p.material.alpha_mode == "MASK", p.material.texture is not None
        prog = self._program(mask, textured)
        # skip_errors: an untextured program has no in_uv (the compiler drops what it does not read).
        vao = ctx.vertex_array(prog, [(bufs["pos"], "3f", "in_pos"), (bufs["nrm"], "3f", "in_nrm"),
                                      (bufs["uv"], "2f", "in_uv"), (bufs["jnt"], "4f", "in_joints"),
                                      (bufs["wts"], "4f", "in_weights")], index_buffer=ibo,
                               index_element_size=4, skip_errors=True)
        return {"prim": p, "vao": vao, "bufs": bufs, "ibo": ibo, "prog": prog, "mask": mask}

    def _program(self, mask: bool, textured: bool):  # noqa: ANN202 - a moderngl.Program
        """The avatar program for a material kind, compiled once per renderer.

        Variants, not uniform branches: `discard` turns off llvmpipe's early depth test, so only alpha-masked
        materials get the program that has it; and a branch on a uniform still costs every pixel on llvmpipe
        (the texture branch was 1.2 ms of a 30 ms frame on an untextured avatar)."""
        key = (bool(mask), bool(textured))
        if key not in self._progs:
            defines = ("#define ALPHA_MASK\n" if mask else "") + ("#define TEXTURED\n" if textured else "")
            prog = self._ctx.program(vertex_shader=_VERT,
                                     fragment_shader=_FRAG.replace("#version 330\n", "#version 330\n" + defines, 1))
            prog["u_view_proj"].write(self.camera.view_proj(self.width / self.height).T.astype("f4").tobytes())
            prog["u_eye"].value = tuple(float(v) for v in self.camera.eye)
            for k, v in _light_dirs(self.rig.minus_z).items():
                prog[k].value = tuple(float(x) for x in v)
            prog["u_joints"].value = 0
            if textured:
                prog["u_tex"].value = 1
            self._progs[key] = prog
        return self._progs[key]

    # ---------------------------------------------------------------------------------------------- per frame
    def _warn_once(self, key: str, msg: str, *args: object) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning(msg, *args)

    def _linear_morphs(self) -> tuple[list[tuple[int, int]], np.ndarray] | None:
        """For ARKit-driven avatars, Avatar.morph_weights as a matrix ([52, K] over the K bound targets, then
        clipped): the same numbers without its per-frame Python loops. None for VRM-preset and fallback faces."""
        from avatar.types import ARKIT_BLENDSHAPES

        if self.avatar.face_mode != "arkit" or self.avatar.fallback:  # fallback channels are not linear
            return None
        eye = np.eye(len(ARKIT_BLENDSHAPES))
        rows = [self.avatar.morph_weights(e) for e in eye]
        keys = sorted({k for r in rows for k in r})
        m = np.array([[r.get(k, 0.0) for k in keys] for r in rows])
        if any(sum(b[2] for b in binds) > 1.0 or min(b[2] for b in binds) < 0.0
               for binds in self.avatar.arkit.values() if binds):
            return None  # weights above 1 would be clipped per shape before summing: not linear
        return keys, m

    def _morph(self, face_row: np.ndarray | None) -> None:
        """Apply the morph weights of this frame to the primitives whose weights changed."""
        av = self.avatar
        weights = {m: w.copy() for m, w in self.meshes.default_weights.items()}
        arkit = arkit_row(face_row)
        if arkit is not None:
            if av.face_mode == "none":
                self._warn_once("face", "avatar %s has no ARKit shapes or VRM expressions: the face stays at rest",
                                av.path.name)
            if self._morph_matrix is not None:
                keys, m = self._morph_matrix
                bound = zip(keys, np.clip(arkit @ m, 0.0, 1.0))
            else:
                bound = av.morph_weights(arkit).items()
            for (mesh, target), w in bound:
                if mesh in weights and target < len(weights[mesh]):
                    weights[mesh][target] = w
        for d in self._draws:
            p = d["prim"]
            if p.target_pos is None:
                continue
            w = weights.get(p.mesh, np.zeros(0, np.float32))[: len(p.target_pos)]
            last = self._weights.get(id(p))
            if last is not None and last.shape == w.shape and np.array_equal(last, w):
                continue
            self._weights[id(p)] = w
            active = np.flatnonzero(np.abs(w) > 1e-4)
            if active.size == 0:
                pos, nrm = p.positions, p.normals
            else:
                wa = w[active].astype(np.float32)
                pos = p.positions + (wa @ p.target_pos[active]).reshape(-1, 3)
                deltas = p.target_nrm if p.target_nrm is not None else self._nrm_delta[id(p)]
                nrm = normalize(p.normals + (wa @ deltas[active]).reshape(-1, 3))
            d["bufs"]["pos"].write(np.ascontiguousarray(pos, dtype="f4").tobytes())
            d["bufs"]["nrm"].write(np.ascontiguousarray(nrm, dtype="f4").tobytes())

    def render(self, face_row: np.ndarray | None = None, body: Body | None = None) -> np.ndarray:
        """One frame as uint8 [H, W, 3]: face_row is a FaceMotion row (59 channels, or 52 ARKit weights), body
        is (joint names, rotations [J, 4] xyzw, root position [3]); None keeps that part at rest."""
        # NumPy's BLAS on one thread while a frame is made: the morph products are small, and when many shapes
        # are active a second OpenBLAS thread spins on the core llvmpipe rasterises with (bench/render_bench.py).
        with blas_limit(self.blas_threads):
            return self._render(face_row, body)

    def _render(self, face_row: np.ndarray | None, body: Body | None) -> np.ndarray:
        if self._ctx is None:
            raise AvatarError("the renderer is closed (or was made with gl=False and not opened)")
        import moderngl

        if face_row is not None:
            face_row = np.asarray(face_row, dtype=np.float64).reshape(-1)
            if len(face_row) not in (52, 59):
                raise InputError(f"a face row has 59 channels (or 52 ARKit weights), got {len(face_row)}")
            if not np.isfinite(face_row).all():
                raise InputError("the face row has NaN or infinite values")
            if len(face_row) == 59 and not self.avatar.eyes:
                self._warn_once("eyes", "avatar %s has no eye nodes: gaze is not shown", self.avatar.path.name)
        if body is not None:
            names, rot, root = body
            rot, root = np.asarray(rot, dtype=np.float64), np.asarray(root, dtype=np.float64)
            if rot.shape != (len(names), 4) or root.shape != (3,) or not (np.isfinite(rot).all()
                                                                          and np.isfinite(root).all()):
                raise InputError("body must be (joint names, finite rotations [J, 4], finite root position [3])")
            body = (tuple(names), rot, root)
            if not self.avatar.bones:
                self._warn_once("body", "avatar %s has no humanoid bones: the body stays at rest",
                                self.avatar.path.name)
        t0 = time.perf_counter()
        world = node_matrices(self.rig, body, face_row if face_row is not None and len(face_row) == 59 else None)
        t1 = time.perf_counter()
        with self._ctx as ctx:
            for tex, sk in zip(self._joint_tex, self.avatar.skins):
                mats = world[list(sk.joints)] @ sk.inverse_bind  # [J, 4, 4]
                tex.write(np.ascontiguousarray(mats.transpose(0, 2, 1), dtype="f4").tobytes())
            self._morph(face_row)
            t2 = time.perf_counter()
            # The avatar goes onto a transparent buffer and the background is laid *under* it afterwards, once
            # per pixel: with MSAA, drawing the background into the multisampled buffer would store every
            # sample of every uncovered pixel (on llvmpipe most of a frame's cost).
            self._fbo.use()
            self._fbo.clear(0.0, 0.0, 0.0, 0.0, depth=1.0)
            if self._bg_fbo is not None:
                ctx.copy_framebuffer(self._fbo, self._bg_fbo)  # a copy, not a full-screen shader pass
            ctx.enable(moderngl.DEPTH_TEST)
            self._draw_all(world, blended=False)
            hips = self.rig.hips
            centre = world[hips][:3, 3] if hips is not None else self.rig.rest_world[0][:3, 3]
            self._shadow["u_centre"].value = (float(centre[0]), float(self._floor[0]), float(centre[2]))
            ctx.disable(moderngl.CULL_FACE)
            ctx.enable(moderngl.BLEND)
            ctx.blend_func = _OVER
            self._fbo.depth_mask = False
            self._shadow_vao.render(moderngl.TRIANGLES)
            self._fbo.depth_mask = True
            self._draw_all(world, blended=True)
            if self._samples:
                ctx.copy_framebuffer(self._resolve, self._fbo)  # resolve: edge pixels get partial alpha
            target = self._resolve if self._samples else self._fbo
            target.use()
            ctx.disable(moderngl.DEPTH_TEST | moderngl.CULL_FACE)
            if self._bg_fbo is None:
                ctx.enable(moderngl.BLEND)
                ctx.blend_func = _UNDER
                self._bg_vao.render(moderngl.TRIANGLES, vertices=3)
            ctx.disable(moderngl.BLEND)
            if self._fxaa is not None:
                # FXAA only on the avatar's pixels: the depth test (the pass lies at the background's depth,
                # kept where something nearer was drawn) skips the background before any shading, about half of a
                # portrait frame and 5 ms of its 37 on one core. The background's side of the silhouette then
                # keeps its colour while the avatar's side is blended; side by side at 3x the two look alike.
                ctx.copy_framebuffer(self._resolve, self._fbo)
                self._resolve.use()
                self._color_tex.use(0)
                ctx.enable(moderngl.DEPTH_TEST)
                ctx.depth_func = ">"
                self._resolve.depth_mask = False
                self._fxaa.render(moderngl.TRIANGLES, vertices=3)
                ctx.depth_func = "<"
                self._resolve.depth_mask = True
                ctx.disable(moderngl.DEPTH_TEST)
            ctx.finish()
            t3 = time.perf_counter()
            raw = self._resolve.read(components=3, alignment=1)
        img = np.frombuffer(raw, dtype=np.uint8).reshape(self.height, self.width, 3)[::-1]
        out = np.ascontiguousarray(img)
        t4 = time.perf_counter()
        for k, dt in zip(("pose", "morph", "draw", "read"), (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
            self.timings[k] += dt
        return out

    def _draw_all(self, world: np.ndarray, blended: bool) -> None:
        import moderngl

        ctx = self._ctx
        for d in self._draws:
            p: Primitive = d["prim"]
            prog = d["prog"]
            mat = p.material
            if (mat.alpha_mode == "BLEND") != blended:
                continue
            interior = p.target_pos is not None and not mat.double_sided
            prog["u_interior"].value = interior
            if mat.double_sided:
                ctx.disable(moderngl.CULL_FACE)
            else:
                ctx.enable(moderngl.CULL_FACE)
            if mat.alpha_mode == "BLEND":
                ctx.enable(moderngl.BLEND)
                ctx.blend_func = _OVER
            else:
                ctx.disable(moderngl.BLEND)
            prog["u_skinned"].value = p.skin is not None
            if p.skin is not None:
                self._joint_tex[p.skin].use(0)
            else:
                self._dummy_tex.use(0)
                prog["u_model"].write(world[p.node].T.astype("f4").tobytes())
            prog["u_color"].value = tuple(float(c) for c in mat.color)
            prog["u_rough"].value = float(np.clip(mat.roughness, 0.05, 1.0))
            if mat.texture is not None:
                self._images[mat.texture].use(1)
            prog["u_alpha_mode"].value = {"MASK": 1, "BLEND": 2}.get(mat.alpha_mode, 0)
            if d["mask"]:  # the cutoff exists only in the variant that discards
                prog["u_cutoff"].value = float(mat.alpha_cutoff)
            d["vao"].render(moderngl.TRIANGLES)
            if interior:
                # The inside of the head (seen through the mouth and lids) is its back faces, drawn after its
                # front faces so that the depth test rejects the hidden ones before they are shaded (one pass
                # with culling off shaded those behind the face too: 1.24 -> 1.21 fragments a pixel).
                ctx.cull_face = "front"
                d["vao"].render(moderngl.TRIANGLES)
                ctx.cull_face = "back"

    def close(self) -> None:
        """Release the GL context and everything on it."""
        if self._ctx is not None:
            try:
                self._ctx.release()
            finally:
                self._ctx = None

    def __enter__(self) -> "Renderer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:  # a forgotten renderer must not leak its EGL context
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass


def _normal_deltas(p: Primitive) -> np.ndarray:
    """Normal deltas [K, N * 3] for targets that carry none: each target's recomputed normals minus the rest's.

    Summed with the frame's weights, as glTF does with authored deltas: per frame this is one product instead of
    recomputing the normals of the morphed mesh (several ms per frame on the CPU)."""
    inc = incidence_matrix(len(p.positions), p.indices)
    rest = vertex_normals(p.positions, p.indices, inc)
    out = np.zeros_like(p.target_pos, dtype=np.float32)
    for k, delta in enumerate(p.target_pos):
        if np.any(delta):
            out[k] = (vertex_normals(p.positions + delta.reshape(-1, 3), p.indices, inc) - rest).reshape(-1)
    return out


# -------------------------------------------------------------------------------------------------- motion
def frame_count(face: FaceMotion | None, body: BodyMotion | None, fps: float = 30.0) -> int:
    """Frames of a video at `fps` covering the longer motion: round(duration * fps), at least 1."""
    dur = max([m.duration for m in (face, body) if m is not None] or [0.0])
    return max(1, int(round(dur * float(fps))))


def resample_face(face: FaceMotion, n: int, fps: float) -> np.ndarray:
    """FaceMotion frames [n, C] at `fps` (linear; the last frame is held past the end)."""
    t = np.arange(n) / float(fps) * face.fps
    i0 = np.clip(np.floor(t).astype(np.int64), 0, face.num_frames - 1)
    i1 = np.clip(i0 + 1, 0, face.num_frames - 1)
    a = np.clip(t - i0, 0.0, 1.0)[:, None]
    return (face.frames[i0] * (1 - a) + face.frames[i1] * a).astype(np.float64)


def resample_body(body: BodyMotion, n: int, fps: float) -> tuple[np.ndarray, np.ndarray]:
    """BodyMotion rotations [n, J, 4] (slerp) and root positions [n, 3] (linear) at `fps`."""
    from avatar.rig.rotations import quat_slerp

    t = np.arange(n) / float(fps) * body.fps
    i0 = np.clip(np.floor(t).astype(np.int64), 0, body.num_frames - 1)
    i1 = np.clip(i0 + 1, 0, body.num_frames - 1)
    a = np.clip(t - i0, 0.0, 1.0)
    rot = quat_slerp(body.rotations[i0].astype(np.float64), body.rotations[i1].astype(np.float64), a[:, None])
    root = body.root_position[i0] * (1 - a[:, None]) + body.root_position[i1] * a[:, None]
    return rot, root.astype(np.float64)


def render_frames(avatar: Avatar | str | os.PathLike[str] | None, face: FaceMotion | None,
                  body: BodyMotion | None, fps: float = 30.0, width: int = 512, height: int = 512,
                  framing: str = "portrait", progress: Callable[[float], None] | None = None,
                  samples: int = 4, antialias: str = "msaa", ahead: int = 0,
                  pool: "RenderPool | None" = None) -> Iterator[np.ndarray]:
    """Render a performance: both motions resampled to `fps`, frame_count(face, body, fps) RGB frames.

    Arguments are checked at once (InputError); the GL context opens on the first frame and closes when
    the iterator is exhausted or closed. With `ahead` > 0 a worker thread renders up to that many frames
    ahead of the consumer (the GL context lives and dies in that thread), so encoding overlaps rendering.
    With `pool` (avatar.render.pool.RenderPool, made for this avatar, size, framing and anti-aliasing) the
    pool's worker processes render the frames instead."""
    fps = float(fps)
    if not np.isfinite(fps) or not 1.0 <= fps <= 120.0:
        raise InputError(f"fps must be in [1, 120], got {fps!r}")
    if face is None and body is None:
        raise InputError("render_frames needs a face motion, a body motion or both")
    if framing not in FRAMINGS:
        raise InputError(f"framing must be one of {', '.join(FRAMINGS)}, got {framing!r}")
    if antialias not in ANTIALIAS:
        raise InputError(f"antialias must be one of {', '.join(ANTIALIAS)}, got {antialias!r}")
    n = frame_count(face, body, fps)
    face_rows = resample_face(face, n, fps) if face is not None else None
    pose = resample_body(body, n, fps) if body is not None else None
    if isinstance(ahead, bool) or not isinstance(ahead, (int, np.integer)) or not 0 <= ahead <= 64:
        raise InputError(f"ahead must be an integer in [0, 64], got {ahead!r}")
    joints = body.joints if body is not None else ()
    if pool is not None:
        settings = (int(width), int(height), framing, antialias)
        if (pool.width, pool.height, pool.framing, pool.antialias) != settings:
            raise InputError(f"the render pool renders {pool.width}x{pool.height} {pool.framing} "
                             f"{pool.antialias}, not {settings[0]}x{settings[1]} {framing} {antialias}")
        return pool.frames(face_rows, joints, pose, n)
    frames = _frames(avatar, face_rows, joints, pose, n,
                     dict(width=width, height=height, framing=framing, samples=samples, antialias=antialias),
                     progress)
    return _read_ahead(frames, int(ahead)) if ahead else frames


_END = object()


def _read_ahead(source: Iterator[np.ndarray], depth: int) -> Iterator[np.ndarray]:
    """`source` run in a worker thread, at most `depth` items ahead; its errors are re-raised here, and closing
    this iterator stops the worker and closes `source` in the worker's own thread (where its GL context is)."""
    import queue
    import threading

    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for item in source:
                if not put((item, None)):
                    break
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which re-raises it
            put((None, exc))
        finally:
            source.close()
            put((_END, None))

    worker = threading.Thread(target=work, name="avatar-render", daemon=True)
    worker.start()
    try:
        while True:
            item, exc = q.get()
            if exc is not None:
                raise exc
            if item is _END:
                return
            yield item
    finally:
        stop.set()
        worker.join()


def _frames(avatar, face_rows: np.ndarray | None, joints: tuple[str, ...],  # noqa: ANN001
            pose: tuple[np.ndarray, np.ndarray] | None, n: int, options: dict,
            progress: Callable[[float], None] | None) -> Iterator[np.ndarray]:
    with Renderer(avatar, **options) as r:
        for i in range(n):
            b = (joints, pose[0][i], pose[1][i]) if pose is not None else None
            yield r.render(face_rows[i] if face_rows is not None else None, b)
            if progress is not None:
                progress((i + 1) / n)
