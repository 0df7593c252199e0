"""Import the shipped avatars and a `say --keep` run's animation.glb with Blender's own glTF importer, headless.

    .venv/bin/python bench/blender_import.py [FILE.glb ...] [--blender blender]

With no files: weights/avatars/default.glb, default-male.glb and the animation.glb of a fresh
`avatar say "..." --keep DIR` (made in a temporary folder). Each file is imported into an empty scene by
`blender -b --factory-startup --python bench/blender_import.py -- FILE...` (Blender 3.4 from Debian:
`bash bench/setup_blender.sh` installs it), and the script prints what Blender made of it: each mesh object with its vertex
count and shape-key count, each armature with its bone count, and each action with its frame range. It renders
and checks nothing else; the exit status is 1 when Blender cannot import a file.
"""

from __future__ import annotations

import sys

try:  # inside Blender
    import bpy
except ImportError:
    bpy = None


def _report(path: str) -> bool:
    """Import one file into an empty scene and print its meshes, shape keys, armatures and actions."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    try:
        result = bpy.ops.import_scene.gltf(filepath=path)
    except Exception as exc:  # noqa: BLE001 - Blender raises RuntimeError with the importer's message
        print(f"{path}: import FAILED: {exc}", flush=True)
        return False
    if "FINISHED" not in result:
        print(f"{path}: import FAILED: {result}", flush=True)
        return False
    print(f"{path}: imported by Blender {bpy.app.version_string}", flush=True)
    objs = sorted(bpy.context.scene.objects, key=lambda o: (o.type, o.name))
    for o in objs:
        if o.type == "MESH":
            keys = o.data.shape_keys.key_blocks if o.data.shape_keys else []
            names = [k.name for k in keys][1:]  # the first key is the basis
            print(f"  mesh {o.name!r}: {len(o.data.vertices)} vertices, {len(o.data.polygons)} faces, "
                  f"{len(names)} shape keys" + (f" ({', '.join(names[:3])}, ...)" if names else ""), flush=True)
        elif o.type == "ARMATURE":
            print(f"  armature {o.name!r}: {len(o.data.bones)} bones", flush=True)
    for a in bpy.data.actions:
        start, end = a.frame_range
        print(f"  action {a.name!r}: frames {start:g}-{end:g}, {len(a.fcurves)} curves", flush=True)
    scene = bpy.context.scene
    print(f"  scene frames {scene.frame_start}-{scene.frame_end} at {scene.render.fps} fps", flush=True)
    return True


def _in_blender(files: list[str]) -> int:
    import numpy as np

    if "bool" not in np.__dict__:
        # Debian's Blender 3.4 importer calls np.bool, an alias NumPy 1.24 (Debian 12's) removed: give it back.
        np.bool = bool
    ok = [_report(f) for f in files]
    return 0 if all(ok) else 1


def _driver(argv: list[str]) -> int:
    """Outside Blender: find the files (making a --keep run's animation.glb if none are given) and run Blender."""
    import argparse
    import shutil
    import subprocess
    import tempfile
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="*", help="glTF files (default: both default avatars and a fresh animation.glb)")
    ap.add_argument("--blender", default="blender", help="the Blender executable (default: %(default)s)")
    args = ap.parse_args(argv)
    blender = shutil.which(args.blender)
    if blender is None:
        print(f"error: {args.blender} not found (Debian: bash bench/setup_blender.sh)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        files = [str(Path(f).resolve()) for f in args.files]
        if not files:
            keep = Path(tmp) / "keep"
            subprocess.run([str(root / ".venv" / "bin" / "avatar"), "say", "I am so happy to see you here today!",
                            "-o", str(Path(tmp) / "say.mp4"), "--size", "128", "--keep", str(keep)],
                           check=True, stdout=subprocess.DEVNULL)
            files = [str(root / "weights" / "avatars" / n) for n in ("default.glb", "default-male.glb")]
            files.append(str(keep / "animation.glb"))
        r = subprocess.run([blender, "-b", "--factory-startup", "--python", str(Path(__file__).resolve()), "--",
                            *files], capture_output=True, text=True)
        lines = [ln for ln in r.stdout.splitlines() if ln.startswith(("/", "  mesh", "  armature", "  action",
                                                                      "  scene"))]
        print("\n".join(lines))
        if r.returncode != 0 or len([ln for ln in lines if "imported by Blender" in ln]) != len(files):
            print(r.stderr[-2000:], file=sys.stderr)
            return 1
    print(("rerun: .venv/bin/python bench/blender_import.py " + " ".join(argv)).rstrip())
    return 0


if __name__ == "__main__":
    if bpy is not None:
        argv = sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else []
        code = _in_blender(argv)
        sys.stdout.flush()
        raise SystemExit(code)
    raise SystemExit(_driver(sys.argv[1:]))
