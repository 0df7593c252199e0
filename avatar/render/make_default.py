"""Generate the toon avatar (.glb): `python -m avatar.render.make_default [--out weights/avatars/toon.glb]`.

The stylised capsule character that was the default before the MakeHuman-based one (avatar.render.make_human);
it stays as `--avatar toon`.

The file holds one node per VRM humanoid bone (avatar.rig.skeleton.HUMANOID, identity rest rotations),
leftEye / rightEye nodes under the head carrying the eyeball mesh, a skinned body mesh, a skinned face mesh
with the 52 ARKit morph targets (names in mesh.extras.targetNames, as Blender and three.js read them), PBR
materials, and the VRMC_vrm 1.0 extension (humanoid bone map, preset expressions bound to the ARKit targets
with the prototypes avatar.face.rig reads them back with, bone look-at). Output is deterministic: the same
bytes on every run (positions are rounded to 10 micrometres before they become float32).
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from avatar.errors import InputError
from avatar.gltf.writer import BufferWriter, vrm_extension  # the shared glTF writer pieces
from avatar.rig.skeleton import HUMANOID
from avatar.io import atomic_write_bytes
from avatar.types import ARKIT_BLENDSHAPES, VISEMES

from .character import DOUBLE_SIDED, MATERIALS, Part, build_body, build_eyeball, build_head, eye_positions

if TYPE_CHECKING:
    from pygltflib import GLTF2

log = logging.getLogger(__name__)

DEFAULT_PATH = Path(__file__).resolve().parents[2] / "weights" / "avatars" / "toon.glb"
_FLOAT, _USHORT, _UINT = 5126, 5123, 5125
_ARRAY, _ELEMENTS = 34962, 34963
#: VRM vowel preset -> our viseme class (as avatar.face.rig pairs them).
VRM_VOWEL_VISEMES: dict[str, str] = {"aa": "aa", "ih": "ih", "ou": "ou", "ee": "E", "oh": "oh"}


def expression_prototypes() -> dict[str, np.ndarray]:
    """ARKit weights [52] that make each VRM 1.0 preset expression, from the prototypes face/rig.py reads."""
    from avatar.face.rig import IDX, VRM_EXPRESSIONS, emotion_prototypes
    from avatar.face.visemes import VISEME_TARGETS

    out: dict[str, np.ndarray] = {}
    for vrm, vis in VRM_VOWEL_VISEMES.items():
        out[vrm] = np.asarray(VISEME_TARGETS[VISEMES.index(vis)], dtype=np.float64)
    out.update(emotion_prototypes())
    pairs = {"blink": ("eyeBlinkLeft", "eyeBlinkRight"), "blinkLeft": ("eyeBlinkLeft",),
             "blinkRight": ("eyeBlinkRight",), "lookUp": ("eyeLookUpLeft", "eyeLookUpRight"),
             "lookDown": ("eyeLookDownLeft", "eyeLookDownRight"), "lookLeft": ("eyeLookOutLeft", "eyeLookInRight"),
             "lookRight": ("eyeLookInLeft", "eyeLookOutRight")}
    for name, shapes in pairs.items():
        v = np.zeros(len(ARKIT_BLENDSHAPES))
        v[[IDX[s] for s in shapes]] = 1.0
        out[name] = v
    return {n: np.clip(out[n], 0.0, 1.0) for n in VRM_EXPRESSIONS}


def expression_presets(face_node: int) -> dict[str, dict]:
    """VRM 1.0 preset expressions bound to the ARKit morph targets of the mesh at glTF node `face_node`."""
    from avatar.face.rig import IDX

    preset = {}
    for name, w in expression_prototypes().items():
        binds = [{"node": face_node, "index": IDX[s], "weight": round(float(w[IDX[s]]), 4)}
                 for s in ARKIT_BLENDSHAPES if w[IDX[s]] >= 0.01]
        preset[name] = {"morphTargetBinds": binds, "isBinary": False, "overrideBlink": "none",
                        "overrideLookAt": "none", "overrideMouth": "none"}
    return preset


def _q(a: np.ndarray) -> np.ndarray:
    """Round to 10 micrometres, then float32: identical bytes even if the last float64 bits wobble."""
    return np.round(np.asarray(a, dtype=np.float64), 5).astype(np.float32)


def _normals(v: np.ndarray, f: np.ndarray) -> np.ndarray:
    import trimesh

    m = trimesh.Trimesh(vertices=v, faces=f, process=False)
    n = np.array(m.vertex_normals, dtype=np.float64)
    bad = ~np.isfinite(n).all(axis=1) | (np.linalg.norm(n, axis=1) < 0.5)
    n[bad] = [0.0, 1.0, 0.0]
    return np.round(n, 4).astype(np.float32)


def _primitives(gltf: GLTF2, blob: BufferWriter, part: Part, mat_index: dict[str, int], skinned: bool,
                target_names: list[str] | None) -> list:
    """One primitive per material (each with its own vertices), sharing the part's morph targets."""
    import pygltflib as g

    normals = _normals(part.vertices, part.faces)
    mats = np.array(part.material)
    prims = []
    for name in MATERIALS:
        sel = mats == name
        if not sel.any():
            continue
        f = part.faces[sel]
        used = np.unique(f)
        remap = np.full(len(part.vertices), -1)
        remap[used] = np.arange(len(used))
        attrs = g.Attributes(POSITION=blob.add(_q(part.vertices[used]), _FLOAT, "VEC3", _ARRAY, minmax=True),
                             NORMAL=blob.add(normals[used], _FLOAT, "VEC3", _ARRAY))
        if skinned:
            attrs.JOINTS_0 = blob.add(part.joints[used].astype(np.uint16), _USHORT, "VEC4", _ARRAY)
            attrs.WEIGHTS_0 = blob.add(part.weights[used].astype(np.float32), _FLOAT, "VEC4", _ARRAY)
        idx = remap[f].astype(np.uint16 if len(used) < 65536 else np.uint32).reshape(-1)
        prim = g.Primitive(attributes=attrs, indices=blob.add(idx, _USHORT if idx.dtype == np.uint16 else _UINT,
                                                              "SCALAR", _ELEMENTS), material=mat_index[name])
        if target_names:
            prim.targets = [{"POSITION": blob.add(_q(part.targets[t][used]), _FLOAT, "VEC3", _ARRAY, minmax=True)}
                            for t in target_names]
        prims.append(prim)
    return prims


def build_gltf():  # noqa: ANN201 - pygltflib.GLTF2
    """The default avatar as a pygltflib.GLTF2 (one embedded buffer)."""
    import pygltflib as g

    gltf = g.GLTF2(asset=g.Asset(generator="avatar-engine make_default", version="2.0",
                                 copyright="Apache-2.0, avatar engine contributors"))
    blob = BufferWriter(gltf)
    sk = HUMANOID
    J = len(sk.joints)
    for j, name in enumerate(sk.joints):
        kids = [k for k, p in enumerate(sk.parents) if p == j]
        gltf.nodes.append(g.Node(name=name, translation=[float(v) for v in sk.offsets[j]], children=kids or None))
    for name, mat in MATERIALS.items():
        rough = 0.25 if name in ("eyeWhite", "iris", "pupil") else 0.55 if name == "tongue" else 0.7  # wet eyes
        pbr = g.PbrMetallicRoughness(baseColorFactor=list(mat), metallicFactor=0.0, roughnessFactor=rough)
        gltf.materials.append(g.Material(name=name, doubleSided=name in DOUBLE_SIDED, pbrMetallicRoughness=pbr))
    mat_index = {n: i for i, n in enumerate(MATERIALS)}
    head_joint = sk.index("head")
    head_pos = sk.rest_positions[head_joint]
    # Eye nodes under the head joint, each carrying the shared eyeball mesh.
    eye_mesh = len(gltf.meshes)
    gltf.meshes.append(g.Mesh(name="eyeball", primitives=_primitives(gltf, blob, build_eyeball(), mat_index,
                                                                     False, None)))
    eye_nodes = {}
    for name, pos in eye_positions().items():
        eye_nodes[name] = len(gltf.nodes)
        gltf.nodes.append(g.Node(name=name, translation=[float(v) for v in _q(pos - head_pos)], mesh=eye_mesh))
    gltf.nodes[head_joint].children = list(eye_nodes.values())
    # Inverse bind matrices: rest frames are pure translations; glTF stores matrices column-major.
    ibm = np.tile(np.eye(4, dtype=np.float32), (J, 1, 1))
    ibm[:, :3, 3] = -sk.rest_positions
    a_ibm = blob.add(np.transpose(ibm, (0, 2, 1)).reshape(J, 16).astype(np.float32), _FLOAT, "MAT4")
    gltf.skins.append(g.Skin(name="humanoid", joints=list(range(J)), skeleton=0, inverseBindMatrices=a_ibm))
    body_mesh = len(gltf.meshes)
    gltf.meshes.append(g.Mesh(name="body", primitives=_primitives(gltf, blob, build_body(), mat_index, True, None)))
    face_mesh = len(gltf.meshes)
    names = list(ARKIT_BLENDSHAPES)
    gltf.meshes.append(g.Mesh(name="face", primitives=_primitives(gltf, blob, build_head(), mat_index, True, names),
                              weights=[0.0] * len(names), extras={"targetNames": names}))
    body_node, face_node = len(gltf.nodes), len(gltf.nodes) + 1
    gltf.nodes.append(g.Node(name="body", mesh=body_mesh, skin=0))
    gltf.nodes.append(g.Node(name="face", mesh=face_mesh, skin=0))
    gltf.scenes.append(g.Scene(name="avatar", nodes=[0, body_node, face_node]))
    gltf.scene = 0
    # VRM 1.0: bone map, expressions bound to the ARKit targets, bone look-at.
    bones = {n: {"node": i} for i, n in enumerate(sk.joints)}
    bones.update({n: {"node": i} for n, i in eye_nodes.items()})
    preset = expression_presets(face_node)
    eye_mid = np.mean(list(eye_positions().values()), axis=0) - head_pos
    gltf.extensionsUsed = ["VRMC_vrm"]
    gltf.extensions = vrm_extension("avatar-engine default", ["avatar engine contributors"],
                                    "https://www.apache.org/licenses/LICENSE-2.0", bones, preset, eye_mid)
    blob.finish()
    return gltf


def glb_bytes() -> bytes:
    """The default avatar as .glb bytes (deterministic)."""
    return b"".join(build_gltf().save_to_bytes())


def make_default(out: str | os.PathLike[str] = DEFAULT_PATH) -> Path:
    """Generate the toon avatar and write it atomically to `out` (.glb or .vrm)."""
    p = Path(out)
    if p.suffix.lower() not in (".glb", ".vrm"):
        raise InputError(f"the avatar must be written as .glb or .vrm, got {p.name!r}")
    data = glb_bytes()
    atomic_write_bytes(p, data)
    log.info("wrote %s (%.2f MB)", p, len(data) / 1e6)
    return p


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    ap = argparse.ArgumentParser(prog="python -m avatar.render.make_default", description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(DEFAULT_PATH), help="output .glb (default: %(default)s)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        make_default(args.out)
    except InputError as exc:
        print(f"error: {exc}")
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
