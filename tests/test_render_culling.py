"""Whole-body skins split by limb (avatar.render.culling): the same triangles, skipped outside the view, same picture."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("moderngl")
pytest.importorskip("pygltflib")


def _egl_ok() -> bool:
    import moderngl

    try:
        moderngl.create_context(standalone=True, backend="egl").release()
        return True
    except Exception:  # noqa: BLE001 - no EGL on this machine
        return False


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


@pytest.mark.skipif(not _egl_ok(), reason="no headless OpenGL (EGL) here")
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
