"""Users' own avatars (issue 25): every test avatar convention loaded and rendered, one row each.

    OMP_NUM_THREADS=1 .venv/bin/python bench/avatar_conventions.py [--size 160]

Per avatar: face shapes driven / available (distinct morph target names that some FaceMotion channel drives),
the meshes whose targets are driven,
the stand-in channels in use, humanoid bones mapped / expected (the 22 of avatar.rig.skeleton.HUMANOID + 2 eyes),
pixels around the mouth that change between a closed and an open jaw (jawOpen 0.7, portrait), and pixels that
change when the left arm comes down (full framing). The avatars are built by tests/gltf_builders.py from the
shipped default avatar, as Ready Player Me, Mixamo, Blender and few-shape files name their parts.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def avatars(folder: Path) -> dict[str, Path]:
    """Every convention's test avatar, written into `folder`."""
    import gltf_builders as gb
    from test_render_conventions import FEW

    out = {"default": gb.DEFAULT_GLB}
    toon = ROOT / "weights" / "avatars" / "toon.glb"
    if toon.is_file():
        out["toon"] = toon
    out["rpm multi-mesh ARKit"] = gb.multimesh_arkit_head(folder / "rpm.glb")
    out["mixamo (no prefix)"] = gb.renamed_rig(folder / "mixamo.glb", gb.MIXAMO_NAMES)
    out["mixamorig:"] = gb.renamed_rig(folder / "mixamorig.glb", gb.MIXAMO_NAMES, "mixamorig:")
    out["blender .L/_R"] = gb.renamed_rig(folder / "blender.glb", gb.BLENDER_NAMES)
    out["few-shape face"] = gb.few_shape_face(folder / "few.glb", FEW)
    out["viseme-only face"] = gb.few_shape_face(folder / "vis.glb", {
        "jawOpen": "viseme_aa", "mouthClose": "viseme_PP", "mouthFunnel": "viseme_O", "mouthPucker": "viseme_U"})
    return out


def main() -> None:
    """Print one row per avatar convention."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=160, help="frame side in pixels")
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)
    import test_render_conventions as t

    from avatar.rig.skeleton import HUMANOID
    from avatar.render.avatar_file import load_avatar

    t.W = t.H = args.size
    print(f"{'avatar':<22} {'face mode':<9} {'shapes driven/avail':>19} {'bones mapped/exp':>16} "
          f"{'meshes':>6} {'mouth px':>8} {'arm px':>7}  stand-ins")
    with tempfile.TemporaryDirectory() as tmp:
        for name, path in avatars(Path(tmp)).items():
            av = load_avatar(path)
            driven = len(av.target_names) - len(av.undriven_targets)
            bones = len(av.bones) + len(av.eyes)
            mouth, arm = t.mouth_change(path), t.arm_change(path)
            meshes = len({m for binds in (*av.arkit.values(), *av.expressions.values(), *av.fallback.values())
                          for m, _, _ in binds})
            print(f"{name:<22} {av.face_mode:<9} {f'{driven}/{len(av.target_names)}':>19} "
                  f"{f'{bones}/{len(HUMANOID.joints) + 2}':>16} {meshes:>6} {mouth:>8} {arm:>7}  "
                  f"{', '.join(sorted(av.fallback)) or '-'}")
    print(f"(frames {args.size}x{args.size}; rerun: OMP_NUM_THREADS=1 .venv/bin/python bench/avatar_conventions.py "
          f"--size {args.size})")


if __name__ == "__main__":
    main()
