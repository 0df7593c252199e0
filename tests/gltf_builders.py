"""A small glTF test asset shared by the renderer and glTF-reader tests: a textured card with a sparse morph target."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pygltflib

#: The card's corners: a 1 x 1 m quad facing +Z, standing on y = 0.
CARD = np.array([[-0.5, 0, 0], [0.5, 0, 0], [0.5, 1, 0], [-0.5, 1, 0]], np.float32)


def textured_card(path: Path, *, png: bytes, uv: np.ndarray, top_drop: float, mesh_weights: list | None = None,
                  **doc: Any) -> Path:
    """Write a .glb of CARD with texture coordinates `uv` [4, 2], an image stored in the buffer (`png`, buffer view
    5, for `doc`'s images to use) and one morph target 'JawOpen', a sparse accessor that lowers the two top
    corners by `top_drop` m. `doc` gives the rest of the document (materials, textures, images, samplers; nodes,
    scenes and cameras replace a single node 'card')."""
    parts = [CARD.tobytes(), np.asarray(uv, np.float32).tobytes(), np.array([0, 1, 2, 0, 2, 3], np.uint16).tobytes(),
             np.array([2, 3], np.uint16).tobytes(), np.array([[0, -top_drop, 0]] * 2, np.float32).tobytes(), png]
    blob, views = b"", []
    for p in parts:  # each view 4-byte aligned, as glTF requires of float accessors
        blob += b"\0" * (-len(blob) % 4)
        views.append(pygltflib.BufferView(buffer=0, byteOffset=len(blob), byteLength=len(p)))
        blob += p
    sparse = pygltflib.Sparse(count=2, indices=pygltflib.AccessorSparseIndices(bufferView=3, componentType=5123),
                              values=pygltflib.AccessorSparseValues(bufferView=4, byteOffset=0))
    fields: dict[str, Any] = dict(
        scene=0, scenes=[pygltflib.Scene(nodes=[0])], nodes=[pygltflib.Node(name="card", mesh=0)],
        meshes=[pygltflib.Mesh(extras={"targetNames": ["JawOpen"]}, weights=mesh_weights,
                               primitives=[pygltflib.Primitive(attributes=pygltflib.Attributes(POSITION=0, TEXCOORD_0=1),
                                                               indices=2, material=0, targets=[{"POSITION": 3}])])],
        accessors=[pygltflib.Accessor(bufferView=0, componentType=5126, count=4, type="VEC3",
                                      min=CARD.min(0).tolist(), max=CARD.max(0).tolist()),
                   pygltflib.Accessor(bufferView=1, componentType=5126, count=4, type="VEC2", normalized=False),
                   pygltflib.Accessor(bufferView=2, componentType=5123, count=6, type="SCALAR"),
                   pygltflib.Accessor(componentType=5126, count=4, type="VEC3", sparse=sparse,
                                      min=[0, -top_drop, 0], max=[0, 0, 0])],
        bufferViews=views, buffers=[pygltflib.Buffer(byteLength=len(blob))])
    fields.update(doc)
    g = pygltflib.GLTF2(**fields)
    g.set_binary_blob(blob)
    path.write_bytes(b"".join(g.save_to_bytes()))
    return path
