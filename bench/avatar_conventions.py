"""Users' own avatars (issue 25): every test avatar convention loaded, rendered and played back, one row each.

    bash bench/tools/setup.sh   # once, for the Node checks (Khronos validator, three-vrm, gltf-transform copies)
    OMP_NUM_THREADS=1 .venv/bin/python bench/avatar_conventions.py [--size 160] [--no-node]

Per avatar: face shapes driven / available (distinct morph target names that some FaceMotion channel drives),
the meshes whose targets are driven, the stand-in channels in use, humanoid bones mapped / expected (the 22 of
avatar.rig.skeleton.HUMANOID + 2 eyes), pixels around the mouth that change between a closed and an open jaw
(jawOpen 0.7, portrait), pixels that change when the left arm comes down (full framing), and what the live
VMC stream sends for it (`avatar stream --avatar`: bones, VRM preset names + ARKit names in its spelling). The avatars are
built by tests/gltf_builders.py from the shipped default avatar, as Ready Player Me, Mixamo, Blender (T- and
A-pose), VRoid VRM 0.x and few-shape files name their parts, plus copies of the multi-mesh one made by
gltf-transform's own CLI (meshopt, quantize, webp).

With the Node tools (bench/tools/node_modules; skipped with --no-node or when absent), each avatar's exported
animation.glb and the performance's animation.vrma go through the Khronos glTF-Validator, and
bench/tools/vrm_playback.mjs plays them with three-vrm (an AnimationMixer step, then vrm.update(), each frame):
the .glb on the avatar itself, the .vrma on the avatar when it is a VRM, else on the default avatar.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOOLS = ROOT / "bench" / "tools"
sys.path.insert(0, str(ROOT / "tests"))


def avatars(folder: Path, node: bool) -> dict[str, Path]:
    """Every convention's test avatar, written into `folder` (the gltf-transform copies only with `node`)."""
    import gltf_builders as gb
    from test_render_conventions import FEW

    out = {"default (VRM 1.0)": gb.DEFAULT_GLB}
    toon = ROOT / "weights" / "avatars" / "toon.glb"
    if toon.is_file():
        out["toon"] = toon
    out["rpm multi-mesh ARKit"] = gb.multimesh_arkit_head(folder / "rpm.glb")
    out["mixamo (no prefix)"] = gb.renamed_rig(folder / "mixamo.glb", gb.MIXAMO_NAMES)
    out["mixamorig:"] = gb.renamed_rig(folder / "mixamorig.glb", gb.MIXAMO_NAMES, "mixamorig:")
    out["blender .L/_R"] = gb.renamed_rig(folder / "blender.glb", gb.BLENDER_NAMES)
    out["blender A-pose"] = gb.a_pose_rig(folder / "apose.glb")
    out["vroid VRM 0.x, -Z"] = gb.vrm0_avatar(folder / "vroid.vrm")
    out["few-shape face"] = gb.few_shape_face(folder / "few.glb", FEW)
    out["viseme-only face"] = gb.few_shape_face(folder / "vis.glb", {
        "jawOpen": "viseme_aa", "mouthClose": "viseme_PP", "mouthFunnel": "viseme_O", "mouthPucker": "viseme_U"})
    if node and gb.have_gltf_transform():
        for command in gb.GLTF_TRANSFORM_COMMANDS:
            out[f"gltf-transform {command}"] = gb.gltf_transform_copy(out["rpm multi-mesh ARKit"],
                                                                     folder / f"rpm-{command}.glb", command)
    return out


def performance() -> tuple:
    """(FaceMotion, BodyMotion) of 1 s: the jaw opens to .7, a smile, gaze and head turn, the left arm comes down."""
    import numpy as np

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
    return FaceMotion(fps=30.0, frames=frames), body


def _node(script: str, *args: str) -> list[dict]:
    """Run a bench/tools script; its JSON lines."""
    r = subprocess.run(["node", str(TOOLS / script), *args], capture_output=True, text=True, timeout=600,
                       check=False)
    lines = [json.loads(x) for x in r.stdout.splitlines() if x.startswith("{")]
    if not lines:
        raise RuntimeError(f"{script} failed: {r.stderr.strip()[-400:]}")
    return lines


def node_checks(rows: list[tuple[str, Path, object, Path]], vrma: Path) -> None:
    """Validator on every animation.glb and the .vrma; three-vrm playback of each (.glb on its avatar, .vrma on
    the avatar when it is a VRM, else on the default avatar)."""
    import gltf_builders as gb

    files = [str(glb) for _, _, _, glb in rows] + [str(vrma)]
    reports = _node("validate_gltf.mjs", *files)
    print("\nKhronos glTF-Validator (2.0.0-dev.3.10) and three-vrm 3.5.5 playback (vrm.update() after each mixer step):")
    print(f"{'avatar':<26} {'glb err/warn':>12} {'glb plays':>9} {'declares VRM':>12} {'weight err':>10} "
          f"{'bone err deg':>12} {'vrma on':>8} {'vrma ok':>7} {'aa after update':>15} {'forearm deg':>11}")
    for (name, path, av, glb), rep in zip(rows, reports):
        target = path if av.vrm_version else gb.DEFAULT_GLB  # type: ignore[attr-defined]
        play = {r["kind"]: r for r in _node("vrm_playback.mjs", "--vrm", str(target), "--vrma", str(vrma),
                                            "--glb", str(glb))}
        g, v = play.get("glb", {}), play.get("vrma", {})
        ew = f"{rep['errors']}/{rep['warnings']}"
        print(f"{name:<26} {ew:>12} {str(g.get('ok')):>9} "
              f"{str(g.get('declares_vrm')):>12} {g.get('worst_weight_error', '-'):>10} "
              f"{g.get('worst_bone_error_deg', '-'):>12} {'self' if av.vrm_version else 'default':>8} "  # type: ignore[attr-defined]
              f"{str(v.get('ok')):>7} {v.get('jaw_aa_after_update_max', '-'):>15} "
              f"{v.get('left_lower_arm_raw_max_deg', '-'):>11}")
    rep = reports[-1]
    ew = f"{rep['errors']}/{rep['warnings']}"
    print(f"{'animation.vrma':<26} {ew:>12}  (infos {rep['infos']}: "
          "VRMC_vrm_animation is not a Khronos extension; expression nodes carry no mesh)")


def main() -> None:
    """Print one row per avatar convention, then the Node checks."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=160, help="frame side in pixels")
    ap.add_argument("--no-node", action="store_true", help="skip the Node checks (validator, three-vrm, gltf-transform)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)
    import test_render_conventions as t

    from avatar.live.vmc import avatar_profile
    from avatar.render.animation import write_animated_avatar
    from avatar.render.avatar_file import load_avatar
    from avatar.render.vrm_animation import write_vrma
    from avatar.rig.skeleton import HUMANOID

    node = not args.no_node and shutil.which("node") is not None and all(
        (TOOLS / "node_modules" / p / "package.json").is_file()
        for p in ("gltf-validator", "three", "@pixiv/three-vrm", "@pixiv/three-vrm-animation", "@gltf-transform/cli"))
    if not node and not args.no_node:
        print("Node tools missing (bash bench/tools/setup.sh): no validator, three-vrm or gltf-transform rows")
    t.W = t.H = args.size
    face, body = performance()
    print(f"{'avatar':<26} {'face mode':<9} {'shapes driven/avail':>19} {'bones mapped/exp':>16} "
          f"{'meshes':>6} {'mouth px':>8} {'arm px':>7} {'VMC bones':>9} {'VMC names':>12}  stand-ins")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, path in avatars(Path(tmp), node).items():
            av = load_avatar(path)
            driven = len(av.target_names) - len(av.undriven_targets)
            bones = len(av.bones) + len(av.eyes)
            mouth, arm = t.mouth_change(path), t.arm_change(path)
            meshes = len({m for binds in (*av.arkit.values(), *av.expressions.values(), *av.fallback.values())
                          for m, _, _ in binds})
            vmc = avatar_profile(av)
            names = f"{len(vmc.vrm_names)}+{len(vmc.arkit_names)} {vmc.vrm_names[0][1] if vmc.vrm_names else '-'}"
            print(f"{name:<26} {av.face_mode:<9} {f'{driven}/{len(av.target_names)}':>19} "
                  f"{f'{bones}/{len(HUMANOID.joints) + 2}':>16} {meshes:>6} {mouth:>8} {arm:>7} {len(vmc.rows):>9} "
                  f"{names:>12}  {', '.join(sorted(av.fallback)) or '-'}", flush=True)
            if node:
                rows.append((name, path, av, write_animated_avatar(av, face, body, Path(tmp) / f"anim-{len(rows)}.glb")))
        if node:
            node_checks(rows, write_vrma(face, body, Path(tmp) / "animation.vrma"))
    print(f"(frames {args.size}x{args.size}; rerun: OMP_NUM_THREADS=1 .venv/bin/python bench/avatar_conventions.py "
          f"--size {args.size}{' --no-node' if args.no_node else ''})")


if __name__ == "__main__":
    main()
