"""Users' own avatars (issue 25): every test avatar convention loaded and rendered, one row each.

    OMP_NUM_THREADS=1 .venv/bin/python bench/avatar_conventions.py [--size 160] [--validator DIR]

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


def _export(av, out: Path) -> Path:
    """animation.glb for 1 s of an opening jaw, a smile, gaze and the left arm coming down."""
    import numpy as np

    from avatar.render.animation import write_animated_avatar
    from avatar.types import FACE_CHANNELS, BodyMotion, FaceMotion
    from test_render_conventions import _raise_left_arm

    n = 30
    frames = np.zeros((n, len(FACE_CHANNELS)), np.float32)
    ramp = np.linspace(0, 1, n, dtype=np.float32)
    for ch, v in (("jawOpen", 0.7), ("mouthSmileLeft", 0.5), ("mouthSmileRight", 0.5), ("leftEyeYaw", 0.2),
                  ("rightEyeYaw", 0.2), ("headYaw", 0.2)):
        frames[:, FACE_CHANNELS.index(ch)] = v * ramp
    joints, rot, root = _raise_left_arm()
    body = BodyMotion(fps=30.0, joints=joints, rotations=np.tile(rot, (n, 1, 1)).astype(np.float32),
                      root_position=np.tile(root, (n, 1)).astype(np.float32))
    return write_animated_avatar(av, FaceMotion(fps=30.0, frames=frames), body, out)


def _validate(folder: Path, files: list[Path], names: list[str]) -> None:
    """Run bench/gltf_validate.js (the Khronos glTF-Validator) on the exported files."""
    import os
    import subprocess

    env = {**os.environ, "NODE_PATH": str(folder.resolve() / "node_modules")}
    r = subprocess.run(["node", str(ROOT / "bench" / "gltf_validate.js"), *map(str, files)], env=env,
                       capture_output=True, text=True, timeout=600, check=False)
    if r.returncode:
        print("validator failed:", r.stderr.strip()[-500:])
        return
    print("Khronos glTF-Validator on each avatar's exported animation.glb:")
    for name, line in zip(names, r.stdout.splitlines()):
        print(f"  {name:<22} {line.split(' ', 1)[1]}")


def main() -> None:
    """Print one row per avatar convention."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=160, help="frame side in pixels")
    ap.add_argument("--validator", type=Path, default=None,
                    help="a folder holding node_modules/gltf-validator (npm install gltf-validator): export each "
                         "avatar's animation.glb and run the Khronos validator on it")
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)
    import test_render_conventions as t

    from avatar.rig.skeleton import HUMANOID
    from avatar.render.avatar_file import load_avatar

    t.W = t.H = args.size
    print(f"{'avatar':<22} {'face mode':<9} {'shapes driven/avail':>19} {'bones mapped/exp':>16} "
          f"{'meshes':>6} {'mouth px':>8} {'arm px':>7}  stand-ins")
    exported: list[Path] = []
    names: list[str] = []
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
            if args.validator:
                exported.append(_export(av, Path(tmp) / f"anim-{len(exported)}.glb"))
                names.append(name)
        if args.validator:
            _validate(args.validator, exported, names)
    print(f"(frames {args.size}x{args.size}; rerun: OMP_NUM_THREADS=1 .venv/bin/python bench/avatar_conventions.py "
          f"--size {args.size}" + (f" --validator {args.validator}" if args.validator else "") + ")")


if __name__ == "__main__":
    main()
