"""Writing binary glTF: the buffer/accessor writer and the atomic .glb save shared by the gesture exporter and the
default avatar's generator."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from avatar.errors import InputError
from avatar.io import atomic_path

#: glTF componentType and bufferView target codes.
FLOAT, USHORT = 5126, 5123
ARRAY_BUFFER, ELEMENT_ARRAY_BUFFER = 34962, 34963


class BufferWriter:
    """Accumulates a .glb's binary chunk and the bufferViews/accessors that point into it (one buffer)."""

    def __init__(self, gltf, start: bytes = b"") -> None:  # noqa: ANN001 - pygltflib.GLTF2
        self.gltf = gltf
        self.data = bytearray(start)

    def add(self, arr: np.ndarray, comp: int, typ: str, target: int | None = None, minmax: bool = False) -> int:
        """Append `arr` as a new bufferView + accessor (component type `comp`, type `typ`); its accessor index."""
        import pygltflib as g

        while len(self.data) % 4:
            self.data.append(0)
        raw = np.ascontiguousarray(arr).tobytes()
        view = g.BufferView(buffer=0, byteOffset=len(self.data), byteLength=len(raw), target=target)
        self.gltf.bufferViews.append(view)
        self.data += raw
        count = int(arr.shape[0])
        acc = g.Accessor(bufferView=len(self.gltf.bufferViews) - 1, componentType=comp, count=count, type=typ)
        if minmax:
            flat = arr.reshape(count, -1)
            acc.min = [float(v) for v in flat.min(axis=0)]
            acc.max = [float(v) for v in flat.max(axis=0)]
        self.gltf.accessors.append(acc)
        return len(self.gltf.accessors) - 1

    def finish(self) -> None:
        """Pad the data and make it the document's binary blob (buffer 0)."""
        import pygltflib as g

        while len(self.data) % 4:
            self.data.append(0)
        if not self.gltf.buffers:
            self.gltf.buffers.append(g.Buffer(byteLength=len(self.data)))
        self.gltf.buffers[0].byteLength = len(self.data)
        self.gltf.set_binary_blob(bytes(self.data))


def save_glb(gltf, path: str | os.PathLike[str]) -> Path:  # noqa: ANN001 - pygltflib.GLTF2
    """Write a document as binary glTF (.glb or .vrm), atomically; InputError for another suffix."""
    p = Path(path)
    if p.suffix.lower() not in (".glb", ".vrm", ".vrma"):
        raise InputError(f"glTF output must end in .glb, .vrm or .vrma (binary glTF), got {p.name!r}")
    for acc in gltf.accessors:  # readers fill in byteOffset 0; glTF forbids it on accessors without a bufferView
        if acc.bufferView is None:
            acc.byteOffset = None
    with atomic_path(p) as tmp:
        tmp.write_bytes(b"".join(gltf.save_to_bytes()))
    return p


def vrm_extension(name: str, authors: list[str], other_license: str, bones: dict, preset: dict,
                  eye_offset: "list[float]") -> dict:
    """The VRMC_vrm 1.0 extension of our generated avatars: free to use, humanoid bones, expression presets and a
    bone look-at (`eye_offset`: the eyes' midpoint from the head bone, metres)."""
    range_map = {"inputMaxValue": 90.0, "outputScale": 10.0}
    return {"VRMC_vrm": {
        "specVersion": "1.0",
        "meta": {"name": name, "version": "1", "authors": authors,
                 "licenseUrl": "https://vrm.dev/licenses/1.0/", "otherLicenseUrl": other_license,
                 "avatarPermission": "everyone", "commercialUsage": "corporation", "allowRedistribution": True,
                 "modification": "allowModificationRedistribution", "creditNotation": "unnecessary"},
        "humanoid": {"humanBones": bones},
        "expressions": {"preset": preset},
        "lookAt": {"type": "bone", "offsetFromHeadBone": [round(float(x), 4) for x in eye_offset],
                   "rangeMapHorizontalInner": dict(range_map), "rangeMapHorizontalOuter": dict(range_map),
                   "rangeMapVerticalDown": dict(range_map), "rangeMapVerticalUp": dict(range_map)},
    }}
