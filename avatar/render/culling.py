"""Large skinned primitives split by limb, so that the renderer's frustum test can skip the parts outside the view.

A whole-body skin is one primitive in most avatars (ours: the neck, ears, arms and hands in one draw), so a
portrait could not skip the arms and hands below the frame: llvmpipe skinned and clipped their 4,300 vertices in
every frame (about 2.5 ms of a 40 ms portrait on one core). Split into the trunk (with the head) and the upper and
lower part of each limb, the parts below the frame are skipped by the bounding-sphere test the renderer already
runs per primitive (`Renderer._outside`). The picture is the same: the triangles, their vertices and their order
within each part are unchanged, and opaque parts meet in the depth buffer whatever their order.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .avatar_file import Avatar
from .mesh import Primitive

#: Humanoid bones that start a part of their own (with every node below them that no other one claims).
LIMB_ROOTS = ("leftUpperArm", "leftLowerArm", "rightUpperArm", "rightLowerArm",
              "leftUpperLeg", "leftLowerLeg", "rightUpperLeg", "rightLowerLeg")
#: Primitives with fewer vertices stay whole (a draw call costs more than skinning a few hundred vertices).
MIN_VERTICES = 1000
#: Parts with fewer triangles go back to the trunk.
MIN_TRIANGLES = 16


def node_parts(avatar: Avatar) -> np.ndarray:
    """The part of every node [N]: 0 for the trunk (and head), k for the k-th of LIMB_ROOTS below which it lies."""
    roots = {avatar.bones[b]: k + 1 for k, b in enumerate(LIMB_ROOTS) if b in avatar.bones}
    part = np.zeros(len(avatar.nodes), np.int64)
    for i in range(len(avatar.nodes)):
        j = i
        while j >= 0 and j not in roots:  # the nearest limb root above (or at) the node
            j = avatar.nodes[j].parent
        part[i] = roots.get(j, 0)
    return part


def split_by_limb(avatar: Avatar, primitives: list[Primitive]) -> list[Primitive]:
    """`primitives` with each large, skinned, opaque, non-morphing one replaced by its parts (in file order).

    A triangle goes to the part of the joint that weighs most on its vertices (two of three decide, else the
    first); a vertex on a seam is copied into both parts, unchanged."""
    parts_of_node = node_parts(avatar)
    out: list[Primitive] = []
    for p in primitives:
        if (p.skin is None or p.joints is None or p.weights is None or p.target_pos is not None
                or p.material.alpha_mode == "BLEND" or len(p.positions) < MIN_VERTICES or not len(p.indices)):
            out.append(p)
            continue
        joint_nodes = np.asarray(avatar.skins[p.skin].joints, np.int64)
        top = p.joints[np.arange(len(p.joints)), p.weights.argmax(axis=1)].astype(np.int64)
        vpart = parts_of_node[joint_nodes[np.clip(top, 0, len(joint_nodes) - 1)]]
        c = vpart[p.indices.astype(np.int64)]
        tri_part = np.where(c[:, 1] == c[:, 2], c[:, 1], c[:, 0])
        counts = np.bincount(tri_part, minlength=len(LIMB_ROOTS) + 1)
        small = (counts > 0) & (counts < MIN_TRIANGLES)
        tri_part = np.where(small[tri_part], 0, tri_part)
        kept = np.flatnonzero(np.bincount(tri_part, minlength=len(counts)))
        if len(kept) < 2:
            out.append(p)
            continue
        for k in kept:
            tris = p.indices[tri_part == k]
            used, local = np.unique(tris, return_inverse=True)
            out.append(dataclasses.replace(
                p, positions=p.positions[used], normals=p.normals[used],
                indices=local.reshape(-1, 3).astype(p.indices.dtype), uv=None if p.uv is None else p.uv[used],
                joints=p.joints[used], weights=p.weights[used]))
    return out
