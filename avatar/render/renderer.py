"""The headless OpenGL renderer of an Avatar driven by FaceMotion + BodyMotion (moderngl over EGL, no display).

    from avatar.render.renderer import Renderer
    with Renderer(avatar, 512, 512, framing="portrait") as r:
        rgb = r.render(face.frames[i], (body.joints, body.rotations[i], body.root_position[i]))

Whole videos go through avatar.render.frames (`render_frames`, a `FrameSource`: in this process or the
avatar.render.pool workers). Per frame: the nodes are posed on the CPU (avatar.render.pose: retargeted BodyMotion,
the face's head pose on neck/head, gaze on the eye nodes), morph targets are applied on the CPU with numpy (one
dense product over the active targets, for positions and for normals; normal deltas the file lacks are computed
once per renderer), and linear-blend skinning runs in the vertex shader with the joint matrices in a float texture
(no limit on the joint count). Shading (avatar/render/glsl/) is a simple lit base colour (texture when the material
has one): hemisphere ambient, a warm key, a cool fill and a rim light, wrapped diffuse for skin, Blinn-Phong
highlights from the roughness (strand highlights for a material with `extras.hair`), on a soft gradient
background, anti-aliased by FXAA on the avatar's pixels (the default) or by MSAA. One program variant per kind of
material (textured, alpha-masked, wrinkled, hair) rather than branches on
uniforms, which llvmpipe pays for on every pixel. The camera is framed from the avatar's own rest pose
(avatar.render.camera).
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, replace

import numpy as np

from avatar.errors import AvatarError, InputError
from avatar.npnn import blas_limit

from .avatar_file import Avatar
from .avatars import avatar_source, default_avatar_path, resolve_avatar
from .camera import (Camera, check_visible, draw_order, floor_and_shadow, frame_camera, frustum_planes, light_dirs,
                     meshes_outside, rest_points_each, subtree)
from .context import create_context, define_mip_levels, gl_context_opened
from .culling import split_by_limb
from .frames import render_frames  # the video-level names, still importable from here
from .mesh import Primitive, WrinkleMap, cache_ordered, incidence_matrix, normalize, read_meshes, vertex_normals
from .motion import frame_count, resample_body, resample_face
from .pose import Body, arkit_row, build_rig, node_matrices
from .settings import ANTIALIAS, DEFAULT_ANTIALIAS, FRAMINGS, MAX_SIZE, RenderSettings
from .shaders import shader, with_defines
from .texture import mip_levels

__all__ = ["ANTIALIAS", "DEFAULT_ANTIALIAS", "FRAMINGS", "MAX_SIZE", "Camera", "RenderSettings", "Renderer",
           "avatar_source", "default_avatar_path", "draw_order", "frame_camera", "frame_count", "gl_context_opened",
           "render_frames", "resample_body", "resample_face", "resolve_avatar"]

log = logging.getLogger(__name__)

# Blending on a transparent buffer, colour kept premultiplied by coverage: "over" for the shadow and blended
# materials (colour by source alpha, alpha accumulated), "under" to lay the background beneath at the end.
_OVER = (0x0302, 0x0303, 1, 0x0303)  # SRC_ALPHA, ONE_MINUS_SRC_ALPHA | ONE, ONE_MINUS_SRC_ALPHA
_UNDER = (0x0305, 1, 0, 1)  # ONE_MINUS_DST_ALPHA, ONE | ZERO, ONE
#: Below this strength on both halves of the face a crease is at most 0.02 mm deep (invisible): the frame is
#: drawn with the plain program, so no fragment pays for the crease map's fetch and bump (see `_upload`).
WRINKLE_VISIBLE = 0.03


class Renderer:
    """Draws one Avatar into RGB frames (uint8 [H, W, 3]); use as a context manager or call close()."""

    #: NumPy's BLAS threads while a frame is made (None: as the process has it; bench/render_bench.py compares).
    blas_threads: int | None = 1

    def __init__(self, avatar: Avatar | str | os.PathLike[str] | None = None, width: int = 512, height: int = 512,
                 framing: str = "portrait", samples: int = 4, antialias: str = DEFAULT_ANTIALIAS, *, gl: bool = True,
                 settings: RenderSettings | None = None) -> None:
        """Lay out the avatar for drawing and open a headless GL context (EGL); gl=False leaves the context for
        open(), so that a process can lay out once and fork renderers that each open their own. `settings`, when
        given, replaces width, height, framing, samples and antialias."""
        if settings is None:
            settings = RenderSettings.make(width=width, height=height, framing=framing, samples=samples,
                                           antialias=antialias)
        self.settings = settings
        width, height, framing, antialias = settings.width, settings.height, settings.framing, settings.antialias
        self.antialias = antialias
        self.avatar = resolve_avatar(avatar)
        self.width, self.height, self.framing = int(width), int(height), framing
        meshes = read_meshes(self.avatar)
        # Whole-body skins in parts (trunk, upper and lower limbs), so the frustum test below can skip the limbs
        # a portrait does not show (avatar.render.culling); each part's triangles in vertex-cache order (the same
        # picture; 2-4 ms less CPU a frame of the default avatar on one llvmpipe thread).
        self.meshes = replace(meshes, primitives=[cache_ordered(p) for p in split_by_limb(self.avatar,
                                                                                           meshes.primitives)])
        self.rig = build_rig(self.avatar)
        rest = rest_points_each(self.meshes, self.rig)  # skinned once, for the framing, floor and draw order
        check_visible(self.avatar, self.meshes, rest[0])
        if framing == "portrait" and "head" not in self.avatar.bones:
            log.warning("avatar %s has no head bone (no humanoid skeleton): the portrait frames the whole avatar",
                        self.avatar.path.name)
        moved = set().union(*(subtree(self.avatar, b) for b in self.avatar.bones.values())) if self.avatar.bones \
            else set()
        loose = sum(len(p.positions) for p in self.meshes.primitives if p.skin is None and p.node not in moved)
        total = sum(len(p.positions) for p in self.meshes.primitives)
        if moved and loose > total // 2:
            log.warning("avatar %s has humanoid bones, but %d of its %d vertices are neither skinned nor parented to "
                        "them: those stay at rest", self.avatar.path.name, loose, total)
        self.camera = frame_camera(self.avatar, self.meshes, self.rig, framing, self.width / self.height, rest=rest)
        self._floor = floor_and_shadow(self.meshes, self.rig, rest)
        self._warned: set[str] = set()
        self._weights: dict[int, np.ndarray] = {}  # id(primitive) -> morph weights last uploaded
        self._arkit: np.ndarray | None = None  # this frame's ARKit weights (they also fade the wrinkle maps in)
        self._nrm_delta = {id(p): _normal_deltas(p) for p in self.meshes.primitives
                           if p.target_pos is not None and p.target_nrm is None}
        self._morph_matrix = self._linear_morphs()
        self._order = draw_order(self.meshes, self.rig, self.camera.eye, rest=rest)
        self._planes = frustum_planes(self.camera.view_proj(self.width / self.height))
        bounds = [_bounds(p) for p in self.meshes.primitives]
        self._cull = _cull_table(self.meshes.primitives, bounds, [len(sk.joints) for sk in self.avatar.skins])
        # The triangles each crease map touches, found here with the layout (0.3 core-s for a 2048 px map): render
        # workers forked after it inherit them instead of each finding them again while opening its context.
        self._creased = {id(p): creased_triangles(p.uv, p.indices, self.meshes.images[p.material.wrinkles.texture])
                         for p in self.meshes.primitives
                         if p.material.wrinkles is not None and p.material.texture is not None}
        # The textures' mipmap levels, made here as llvmpipe makes them (the same texels): forked render workers
        # inherit them and only upload, instead of each paying llvmpipe's glGenerateMipmap (0.15 CPU s fixed).
        self._mips = [mip_levels(im) for im in self.meshes.images]
        self._culled: set[int] = set()  # ids of the primitives outside the view in the frame being drawn
        self.timings: dict[str, float] = {"pose": 0.0, "morph": 0.0, "draw": 0.0, "read": 0.0}
        self._samples_asked = settings.samples
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

        self._ctx = create_context()
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
                prog = ctx.program(vertex_shader=shader("background.vert"), fragment_shader=shader("fxaa.frag"))
                prog["u_texel"].value = (1.0 / self.width, 1.0 / self.height)
                self._fxaa = ctx.vertex_array(prog, [])
            else:
                self._fbo = ctx.framebuffer(color_attachments=[ctx.renderbuffer(size, 4, samples=s)],
                                            depth_attachment=ctx.depth_renderbuffer(size, samples=s))
            if self._fxaa is not None:  # shares the depth buffer: FXAA runs only where the avatar was drawn
                self._resolve = ctx.framebuffer(color_attachments=[ctx.renderbuffer(size, 4)], depth_attachment=depth)
            else:
                self._resolve = ctx.framebuffer(color_attachments=[ctx.renderbuffer(size, 4)]) if s else self._fbo
            # (alpha mask, textured, wrinkled, hair) -> program, made on demand
            self._progs: dict[tuple[bool, bool, bool, bool], object] = {}
            self._bg = ctx.program(vertex_shader=shader("background.vert"), fragment_shader=shader("background.frag"))
            self._bg_vao = ctx.vertex_array(self._bg, [])
            self._bg_fbo = None
            if not s:  # single-sampled: the background is drawn once and copied in under each frame
                self._bg_fbo = ctx.framebuffer(color_attachments=[ctx.renderbuffer(size, 4)])
                self._bg_fbo.use()
                self._bg_vao.render(moderngl.TRIANGLES, vertices=3)
            self._shadow = ctx.program(vertex_shader=shader("shadow.vert"), fragment_shader=shader("shadow.frag"))
            self._shadow["u_view_proj"].write(self.camera.view_proj(self.width / self.height).T.astype("f4").tobytes())
            self._shadow["u_radius"].value = float(self._floor[1])
            corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, -1], [1, 1], [-1, 1]], dtype="f4")
            self._shadow_vao = ctx.vertex_array(self._shadow, [(ctx.buffer(corners.tobytes()), "2f", "in_corner")])
            self._joint_tex = [ctx.texture((4, max(len(sk.joints), 1)), 4, dtype="f4") for sk in self.avatar.skins]
            for t in self._joint_tex:
                t.filter = (moderngl.NEAREST, moderngl.NEAREST)
            self._images = []
            for im, levels in zip(self.meshes.images, self._mips):  # glTF uv (0, 0) is the first row: GL t = 0
                t = ctx.texture((im.shape[1], im.shape[0]), 4, np.ascontiguousarray(im).tobytes())  # rows in order
                if levels is None or not define_mip_levels(t, levels):
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
        wrinkles = p.material.wrinkles if textured else None
        hair = p.material.hair_crown is not None
        prog = self._program(mask, textured, wrinkles is not None, hair)

        def vertex_array(program, index_buffer=ibo):  # noqa: ANN001, ANN202 - moderngl objects
            # skip_errors: an untextured program has no in_uv (the compiler drops what it does not read).
            return ctx.vertex_array(program, [(bufs["pos"], "3f", "in_pos"), (bufs["nrm"], "3f", "in_nrm"),
                                              (bufs["uv"], "2f", "in_uv"), (bufs["jnt"], "4f", "in_joints"),
                                              (bufs["wts"], "4f", "in_weights")], index_buffer=index_buffer,
                                    index_element_size=4, skip_errors=True)

        out = {"prim": p, "vao": vertex_array(prog), "bufs": bufs, "ibo": ibo, "prog": prog, "mask": mask,
               "wrinkles": wrinkles}
        if wrinkles is not None:
            # Frames without creases draw the whole face with the plain program; frames with creases draw only
            # the triangles the crease map touches with the wrinkle program (its second texture fetch cost ~8 %
            # of a portrait frame on llvmpipe over the whole face) and the rest with the plain one.
            plain = self._program(mask, textured, False, hair)  # the same material without creases: hair stays hair
            out["plain"] = [(plain, vertex_array(plain))]
            creased = self._creased[id(p)]
            out["split"] = [(program, vertex_array(program, ctx.buffer(p.indices[sel].astype("u4").tobytes())))
                            for program, sel in ((prog, creased), (plain, ~creased)) if sel.any()]
        return out

    def _program(self, mask: bool, textured: bool, wrinkles: bool = False,  # noqa: ANN202 - a moderngl.Program
                 hair: bool = False):
        """The avatar program for a material kind, compiled once per renderer (`hair`: strand highlights).

        Variants, not uniform branches: `discard` turns off llvmpipe's early depth test, so only alpha-masked
        materials get the program that has it; and a branch on a uniform still costs every pixel on llvmpipe
        (the texture branch was 1.2 ms of a 30 ms frame on an untextured avatar)."""
        key = (bool(mask), bool(textured), bool(wrinkles), bool(hair))
        if key not in self._progs:
            defines = (("ALPHA_MASK",) if mask else ()) + (("TEXTURED",) if textured else ()) \
                + (("WRINKLES",) if wrinkles else ()) + (("HAIR",) if hair else ())
            prog = self._ctx.program(vertex_shader=with_defines(shader("avatar.vert"), *defines),
                                     fragment_shader=with_defines(shader("avatar.frag"), *defines))
            prog["u_view_proj"].write(self.camera.view_proj(self.width / self.height).T.astype("f4").tobytes())
            prog["u_eye"].value = tuple(float(v) for v in self.camera.eye)
            for k, v in light_dirs(self.rig.minus_z).items():
                prog[k].value = tuple(float(x) for x in v)
            prog["u_joints"].value = 0
            if textured:
                prog["u_tex"].value = 1
            if wrinkles:
                prog["u_wrinkle_tex"].value = 2
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
        self._arkit = arkit
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
            skin_mats = []
            for tex, sk in zip(self._joint_tex, self.avatar.skins):
                mats = world[list(sk.joints)] @ sk.inverse_bind  # [J, 4, 4]
                tex.write(np.ascontiguousarray(mats.transpose(0, 2, 1), dtype="f4").tobytes())
                skin_mats.append(mats)
            self._culled = self._outside(world, skin_mats)
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
        for d in self._draws:
            p: Primitive = d["prim"]
            if id(p) in self._culled:
                continue
            mat = p.material
            if (mat.alpha_mode == "BLEND") != blended:
                continue
            parts, strength = [(d["prog"], d["vao"])], None
            if d["wrinkles"] is not None:
                strength = self._wrinkle_strengths(d["wrinkles"])
                visible = max(strength[0] + strength[1]) >= WRINKLE_VISIBLE
                parts = d["split"] if visible else d["plain"]
            # (not where the file says the mesh models its own inside, `enclosed`: the human avatars' mouth and
            # sockets are closed, and the pass re-skinned the face for a pixel or two at the lids' corners, ~2 ms)
            interior = p.target_pos is not None and not mat.double_sided and not mat.enclosed
            # The inside of the head (seen through the mouth and lids) is its back faces, drawn after all its
            # front faces so that the depth test rejects the hidden ones before they are shaded (one pass with
            # culling off shaded those behind the face too: 1.24 -> 1.21 fragments a pixel).
            for back in (False, True) if interior else (False,):
                for prog, vao in parts:
                    self._draw(d, prog, vao, world, blended, strength if prog is d["prog"] else None, interior, back)

    def _draw(self, d: dict, prog, vao, world: np.ndarray, blended: bool,  # noqa: ANN001 - moderngl objects
              strength: tuple[tuple[float, ...], tuple[float, ...]] | None, interior: bool,
              back: bool = False) -> None:
        """One primitive (or a part of it) with one program: uniforms, culling, blending, then its front faces
        (both sides for a double-sided material), or with `back` only its back faces (the head's inside);
        `interior`: the mesh shows its inside (`_draw_all` decides)."""
        import moderngl

        ctx = self._ctx
        p: Primitive = d["prim"]
        mat = p.material
        prog["u_interior"].value = interior
        # An opaque double-sided mesh is drawn as two culled passes, front faces first: its back faces (the
        # inside of a shirt, the far side of the torso) then fail the depth test before they are shaded,
        # which one pass with culling off could not promise (the default avatar's portrait: 154k -> 117k
        # fragments). The image is the same: the nearer fragment wins either way.
        two_pass = mat.double_sided and not blended
        if mat.double_sided and not two_pass:
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
        prog["u_rim"].value = 0.0 if mat.cavity else 1.0
        if mat.hair_crown is not None:
            prog["u_hair_crown"].value = mat.hair_crown
        if mat.texture is not None:
            self._images[mat.texture].use(1)
        if strength is not None:  # the wrinkle program
            self._images[d["wrinkles"].texture].use(2)
            (left, right) = strength
            prog["u_wrinkle_l"].value, prog["u_wrinkle_r"].value = left[:4], right[:4]
            prog["u_forehead_lateral"].value = (left[4], right[4])
            prog["u_lateral_band"].value = d["wrinkles"].lateral
        prog["u_alpha_mode"].value = {"MASK": 1, "BLEND": 2}.get(mat.alpha_mode, 0)
        if d["mask"]:  # the cutoff exists only in the variant that discards
            prog["u_cutoff"].value = float(mat.alpha_cutoff)
        if back:
            ctx.cull_face = "front"
            vao.render(moderngl.TRIANGLES)
            ctx.cull_face = "back"
            return
        vao.render(moderngl.TRIANGLES)
        if two_pass:
            ctx.cull_face = "front"
            vao.render(moderngl.TRIANGLES)
            ctx.cull_face = "back"

    def _wrinkle_strengths(self, wm: WrinkleMap) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Each crease channel's strength this frame (left half, right half; RGBA then the lateral forehead's)
        from the frame's ARKit weights."""
        a = self._arkit
        if a is None:
            return (0.0,) * 5, (0.0,) * 5
        a = np.asarray(a, dtype=np.float32)
        return (tuple(float(x) for x in np.clip(a @ wm.left, 0.0, 1.0)),
                tuple(float(x) for x in np.clip(a @ wm.right, 0.0, 1.0)))

    def _outside(self, world: np.ndarray, skin_mats: list[np.ndarray]) -> set[int]:
        """Primitives (their ids) wholly outside the view this frame: not drawn, since llvmpipe would shade and
        clip their vertices anyway (the legs in a portrait). Morphing primitives are always drawn."""
        t = self._cull
        if t is None:
            return set()
        # All primitives at once: a numpy call per primitive cost ~0.1 ms each, more than culling saved on some.
        mats = np.concatenate([*skin_mats, world])[t.matrix]  # [K, 4, 4]: each sphere's joint (or node) matrix
        c = np.einsum("kij,kj->ki", mats[:, :3, :3], t.centres) + mats[:, :3, 3]
        scale = np.linalg.norm(mats[:, :3, :3], axis=1).max(axis=1)  # the largest column norm
        hit = meshes_outside(self._planes, c, t.radii * scale, t.caps, t.starts, t.capped)
        return {t.ids[m] for m in np.flatnonzero(hit)}

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


def _bounds(p: Primitive) -> tuple[np.ndarray, float, np.ndarray, np.ndarray | None] | None:
    """A primitive's bounding sphere in its own space (centre, radius), the skin joints that weigh on it and the
    largest weight each has on a vertex (None when unskinned); None for morphing primitives, whose shapes can move
    them anywhere."""
    if p.target_pos is not None or not len(p.positions):
        return None
    pos = np.asarray(p.positions, dtype=np.float64)
    centre = (pos.min(axis=0) + pos.max(axis=0)) / 2
    radius = float(np.linalg.norm(pos - centre, axis=1).max())
    joints, caps = np.zeros(0, np.int64), None
    if p.skin is not None:
        if p.joints is None or p.weights is None:
            return None
        on = p.weights > 0
        joints, where = np.unique(p.joints[on].astype(np.int64), return_inverse=True)
        if not len(joints):
            return None
        caps = np.zeros(len(joints))
        np.maximum.at(caps, where, p.weights[on].astype(np.float64))
    return centre, radius, joints, caps


@dataclass(frozen=True)
class _CullTable:
    """The bounding spheres of every primitive that can be culled, one row per joint (or node) moving each."""

    ids: list[int]  # id() of each primitive
    starts: np.ndarray  # [M] first row of each primitive
    capped: np.ndarray  # [M] skinned (its rows' caps bound a weighted mean)
    matrix: np.ndarray  # [K] row into [*skin matrices, node world matrices] stacked
    centres: np.ndarray  # [K, 3] the primitive's sphere centre in its own space
    radii: np.ndarray  # [K]
    caps: np.ndarray  # [K] the joint's largest weight on a vertex (1 for a node)


def _cull_table(prims: list[Primitive], bounds: list, joint_counts: list[int]) -> _CullTable | None:
    """The per-frame frustum test's inputs, laid out once (None: nothing to cull)."""
    offset = np.cumsum([0, *joint_counts])
    ids, starts, capped, matrix, centres, radii, caps = [], [], [], [], [], [], []
    for p, b in zip(prims, bounds):
        if b is None:
            continue
        centre, radius, joints, cap = b
        rows = offset[p.skin] + joints if p.skin is not None else np.array([offset[-1] + p.node])
        ids.append(id(p))
        starts.append(len(matrix))
        capped.append(cap is not None)
        matrix.extend(rows.tolist())
        centres.extend([centre] * len(rows))
        radii.extend([radius] * len(rows))
        caps.extend(cap.tolist() if cap is not None else [1.0])
    if not ids:
        return None
    return _CullTable(ids=ids, starts=np.array(starts, np.int64), capped=np.array(capped), matrix=np.array(matrix),
                      centres=np.array(centres, np.float64), radii=np.array(radii, np.float64),
                      caps=np.array(caps, np.float64))


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


def creased_triangles(uv: np.ndarray | None, indices: np.ndarray, image: np.ndarray, margin: int = 4) -> np.ndarray:
    """[F] bool: the triangles whose uv box (grown by `margin` texels for filtering) holds any non-zero texel of
    a crease map (RGBA uint8 [H, W, 4], row 0 at uv v = 0): the only ones that need the wrinkle program."""
    if uv is None:
        return np.zeros(len(indices), bool)
    h, w = image.shape[:2]
    if image.dtype == np.uint8 and image.shape[2:] == (4,) and image.flags.c_contiguous:
        on = image.view(np.uint32)[..., 0] != 0  # any of the texel's four bytes set, read as one word
    else:
        on = image.max(axis=2) > 0
    # A summed-area table (texels set in any box, in O(1)); int32 holds any count up to 2**31 texels, and its
    # cumulative sums take half the time of int64's. Along each row with cumsum, then down by adding row after
    # row: NumPy's cumsum down the columns of a C-ordered array took 0.11 of 0.13 CPU s at 2048 px, the loop 0.01.
    sat = np.zeros((h + 1, w + 1), np.int32)
    np.cumsum(on, axis=1, dtype=np.int32, out=sat[1:, 1:])
    for y in range(2, h + 1):
        sat[y] += sat[y - 1]
    t = uv[indices]  # [F, 3, 2]
    x0 = np.clip(np.floor(t[..., 0].min(axis=1) * w).astype(np.int64) - margin, 0, w)
    x1 = np.clip(np.ceil(t[..., 0].max(axis=1) * w).astype(np.int64) + margin, 0, w)
    y0 = np.clip(np.floor(t[..., 1].min(axis=1) * h).astype(np.int64) - margin, 0, h)
    y1 = np.clip(np.ceil(t[..., 1].max(axis=1) * h).astype(np.int64) + margin, 0, h)
    return (sat[y1, x1] - sat[y0, x1] - sat[y1, x0] + sat[y0, x0]) > 0
