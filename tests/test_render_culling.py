"""Whole-body skins split by limb (avatar.render.culling): the same triangles, skipped outside the view, same picture."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("moderngl")
pytest.importorskip("pygltflib")
from gl_support import needs_gl  # noqa: E402 - tests/gl_support.py


def _triangles(prims) -> set[bytes]:  # noqa: ANN001 - mesh.Primitive list
    """Each triangle as the bytes of its three vertices (position, normal, uv, joints, weights)."""
    out = set()
    for p in prims:
        cols = [p.positions, p.normals, p.uv if p.uv is not None else np.zeros((len(p.positions), 2), np.float32),
                p.joints, p.weights]
        v = np.concatenate([np.asarray(c, np.float32) for c in cols], axis=1)
        out |= {v[t].tobytes() for t in p.indices}
    return out


def test_the_body_skin_is_split_into_limbs_with_the_same_triangles() -> None:
    from avatar.render.avatars import resolve_avatar
    from avatar.render.culling import split_by_limb
    from avatar.render.mesh import read_meshes

    av = resolve_avatar("default-female")
    prims = read_meshes(av).primitives
    split = split_by_limb(av, prims)
    kept = [p for p in prims if any(q is p for q in split)]
    new = [q for q in split if not any(q is p for p in prims)]
    whole = [p for p in prims if not any(q is p for q in split)]
    assert len(whole) >= 1 and len(new) >= 5, "the body skin (neck, arms, hands) is not split"
    assert all(p.target_pos is None and p.skin is not None for p in whole)  # the face and unskinned parts stay whole
    assert len(kept) + len(whole) == len(prims)
    assert _triangles(new) == _triangles(whole)
    assert sum(len(q.indices) for q in new) == sum(len(p.indices) for p in whole)
    assert all(q.material is p.material for q in new for p in whole if q.mesh == p.mesh and q.uv is not None
               and p.uv is not None)


@needs_gl
def test_a_portrait_skips_the_arms_and_draws_the_same_picture(monkeypatch) -> None:
    """The hands and forearms below a portrait's frame are not drawn, and every pixel is as with the whole skin."""
    import avatar.render.renderer as renderer_mod
    from avatar.render.snapshot import expression_row, relaxed_body

    body = relaxed_body()
    rows = [expression_row("happy", amount=0.8), expression_row("angry", amount=0.5)]
    with renderer_mod.Renderer("default-female", 160, 160, framing="portrait") as r:
        split = [r.render(row, body) for row in rows]
        skipped = sum(len(d["prim"].positions) for d in r._draws if id(d["prim"]) in r._culled)
    monkeypatch.setattr(renderer_mod, "split_by_limb", lambda av, prims: prims)
    with renderer_mod.Renderer("default-female", 160, 160, framing="portrait") as r:
        whole = [r.render(row, body) for row in rows]
        skipped_whole = sum(len(d["prim"].positions) for d in r._draws if id(d["prim"]) in r._culled)
    assert skipped - skipped_whole > 3000, (skipped, skipped_whole)  # both arms' lower parts and hands
    for a, b in zip(split, whole):
        assert np.array_equal(a, b)


def _draw_calls(r, row, body) -> int:  # noqa: ANN001 - a Renderer, a face row, a body pose
    """Draw calls the renderer makes for one frame."""
    count = [0]

    class Counted:
        def __init__(self, vao) -> None:  # noqa: ANN001 - a moderngl.VertexArray
            self.vao = vao

        def render(self, *args, **kw) -> None:  # noqa: ANN002, ANN003
            count[0] += 1
            self.vao.render(*args, **kw)

    draws = r._draws
    r._draws = [dict(d, vao=Counted(d["vao"])) for d in draws]
    try:
        r.render(row, body)
    finally:
        r._draws = draws
    return count[0]


@needs_gl
def test_enclosed_faces_skip_the_inside_pass_for_the_same_picture() -> None:
    """The human avatars mark their face, teeth and tongue `enclosed` (the head is closed: a mouth bag, eyes in the
    sockets), so the renderer does not draw their back faces as the head's inside; without that pass a frame
    differs in a pixel or two at the lids' corners. The toon's open mouth and eye holes still get the pass."""
    from avatar.render.renderer import Renderer
    from avatar.render.snapshot import expression_row, relaxed_body
    from avatar.types import ARKIT_BLENDSHAPES

    body = relaxed_body()
    wide = np.zeros(52)
    wide[[ARKIT_BLENDSHAPES.index(s) for s in ("jawOpen", "eyeWideLeft", "mouthFunnel")]] = 1.0
    rows = [expression_row("happy", amount=0.8), expression_row("surprised", amount=1.0), wide]
    with Renderer("toon", 64, 64) as r:
        morphing = [d["prim"] for d in r._draws if d["prim"].target_pos is not None]
        assert morphing and not any(p.material.enclosed for p in morphing)
    with Renderer("default-female", 256, 256, framing="portrait") as r:
        single = [d["prim"] for d in r._draws if d["prim"].target_pos is not None
                  and not d["prim"].material.double_sided]
        assert len(single) >= 3 and all(p.material.enclosed for p in single)  # skin, teeth, tongue
        skipped = [r.render(row, body) for row in rows]
        calls_skipped = _draw_calls(r, rows[0], body)
        for p in single:
            p.material.enclosed = False
        try:
            drawn = [r.render(row, body) for row in rows]
            calls_drawn = _draw_calls(r, rows[0], body)
        finally:
            for p in single:
                p.material.enclosed = True
    assert calls_drawn - calls_skipped >= 2  # the inside passes (a face split by its crease map draws in parts)
    for a, b in zip(skipped, drawn):
        changed = np.abs(a.astype(int) - b).max(axis=2) > 8
        assert changed.sum() <= 12, changed.sum()


def _fifo_misses(indices: np.ndarray, size: int = 16) -> int:
    """Vertices a FIFO cache of `size` shaded vertices misses over an index list (how often a vertex is shaded)."""
    from collections import deque

    fifo: deque = deque()
    held: set = set()
    misses = 0
    for v in np.asarray(indices).reshape(-1).tolist():
        if v not in held:
            misses += 1
            if len(fifo) == size:
                held.discard(fifo.popleft())
            fifo.append(v)
            held.add(v)
    return misses


def _canonical(tris: np.ndarray) -> np.ndarray:
    """Triangles with each rotated to start at its smallest index (the winding kept), then sorted."""
    k = np.argmin(tris, axis=1)
    rolled = np.stack([np.roll(t, -int(j)) for t, j in zip(tris, k)]) if len(tris) else tris
    return rolled[np.lexsort(rolled.T[::-1])]


def test_cache_order_keeps_the_triangles_and_shades_fewer_vertices() -> None:
    """Vertex-cache order (mesh.cache_ordered): the same triangles with the same winding over the same vertex buffers,
    in an order a 16-vertex cache misses far less often (the builder's order shaded each vertex ~4 times); a blended
    primitive keeps its order."""
    from dataclasses import replace

    from avatar.render.avatars import resolve_avatar
    from avatar.render.mesh import cache_ordered, read_meshes

    prims = read_meshes(resolve_avatar("default-female")).primitives
    ordered = [cache_ordered(p) for p in prims]
    for p, q in zip(prims, ordered):
        assert q.positions is p.positions and q.target_pos is p.target_pos and q.material is p.material
        assert q.indices.shape == p.indices.shape and q.indices.dtype == p.indices.dtype
        assert np.array_equal(_canonical(q.indices), _canonical(p.indices))
    before, after = sum(_fifo_misses(p.indices) for p in prims), sum(_fifo_misses(q.indices) for q in ordered)
    vertices = sum(len(p.positions) for p in prims)
    assert after < 0.5 * before and after < 1.5 * vertices, (before, after, vertices)
    blended = replace(prims[0], material=replace(prims[0].material, alpha_mode="BLEND"))
    assert cache_ordered(blended).indices is blended.indices


@needs_gl
def test_cache_order_draws_the_same_picture(monkeypatch) -> None:
    """The reordered triangles give the frames of the file's order (the depth test decides; ties at most a pixel)."""
    import avatar.render.renderer as renderer_mod
    from avatar.render.snapshot import expression_row, relaxed_body

    body = relaxed_body()
    rows = [expression_row("happy", amount=0.8), expression_row("sad", amount=0.6)]
    with renderer_mod.Renderer("default-male", 192, 192, framing="portrait") as r:
        ordered = [r.render(row, body) for row in rows]
    monkeypatch.setattr(renderer_mod, "cache_ordered", lambda p: p)
    with renderer_mod.Renderer("default-male", 192, 192, framing="portrait") as r:
        filed = [r.render(row, body) for row in rows]
    for a, b in zip(ordered, filed):
        diff = np.abs(a.astype(int) - b.astype(int)).max(axis=2)
        assert (diff > 0).sum() <= 3 and diff.max() <= 8, ((diff > 0).sum(), diff.max())
