"""What a render worker pays before its first frame: layout and GL set-up CPU seconds of each avatar.

    .venv/bin/python bench/render_setup_bench.py [--avatars toon default-female] [--runs 5] [--size 512]

Each measurement is a fresh process, as a render worker is (llvmpipe's one-off costs are per process and
context): `Renderer(..., gl=False)` (the layout, which `avatar say`'s worker 0 does once before forking the others:
meshes, textures decoded, crease triangles, mipmap levels), then `open()` (GL context, buffers, textures and their
mipmaps: what every worker does), then the first frame (shader variants). Each avatar runs twice a round, with the
mipmap levels made in the layout and uploaded (`driver` off, the default) and with llvmpipe's glGenerateMipmap
(the child's DRIVER argument 1), alternating; medians of CPU seconds (LP_NUM_THREADS=1, as in the workers), then
whether the two ways give byte-identical frames (a face expression, the rest pose). Run timing benches alone (e.g.
under `flock /work/locks/bench.lock`).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _child(avatar: str, size: int, driver: bool, frame_out: str) -> None:
    """One worker's set-up, timed; prints a JSON line and saves the two frames."""
    import time

    import numpy as np

    import avatar.render.renderer as rmod
    from avatar.render.avatars import named_avatar
    from avatar.types import FACE_CHANNELS

    if driver:  # no levels made in the layout: every texture's by glGenerateMipmap, as before
        rmod.mip_levels = lambda image: None
    path = named_avatar(avatar)  # a shipped avatar's name or a path
    t = time.process_time()
    r = rmod.Renderer(path, size, size, gl=False)
    layout = time.process_time() - t
    t = time.process_time()
    r.open()
    opened = time.process_time() - t
    row = np.zeros(len(FACE_CHANNELS))
    for name, v in (("jawOpen", 0.4), ("mouthSmileLeft", 0.7), ("mouthSmileRight", 0.7), ("browInnerUp", 0.5)):
        row[FACE_CHANNELS.index(name)] = v
    t = time.process_time()
    a = r.render(row)
    first = time.process_time() - t
    np.save(frame_out, np.stack([a, r.render(None)]))
    r.close()
    print(json.dumps({"layout": layout, "open": opened, "first": first}))


def main() -> None:
    """Run the benchmark and print its figures."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--avatars", nargs="+", default=["toon", "default-female"])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--child", nargs=4, metavar=("AVATAR", "SIZE", "DRIVER", "FRAMES"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        avatar, size, driver, frames = args.child
        _child(avatar, int(size), driver == "1", frames)
        return
    import numpy as np

    print("rerun: .venv/bin/python bench/render_setup_bench.py " + shlex.join(sys.argv[1:]))
    env = {**os.environ, "LP_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    cases = [(a, d) for a in args.avatars for d in (False, True)]
    res: dict[tuple[str, bool], list[dict]] = {c: [] for c in cases}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.runs + 1):  # round 0 warms the file and shader caches
            for a, d in cases:
                out = Path(tmp) / f"{a}-{int(d)}.npy"
                r = subprocess.run([sys.executable, __file__, "--child", a, str(args.size), str(int(d)), str(out)],
                                   capture_output=True, text=True, env=env, cwd=ROOT)
                if r.returncode:
                    sys.exit(f"{a}: {r.stderr.strip()[-600:]}")
                if i:
                    res[(a, d)].append(json.loads(r.stdout.strip().splitlines()[-1]))
        print(f"render worker set-up, CPU seconds (median of {args.runs} fresh processes each, {args.size} px, "
              "one llvmpipe thread):")
        for a, d in cases:
            m = {k: statistics.median(x[k] for x in res[(a, d)]) for k in ("layout", "open", "first")}
            print(f"  {a:15s} {'glGenerateMipmap' if d else 'levels uploaded':17s} layout {m['layout']:.3f}  "
                  f"open {m['open']:.3f}  first frame {m['first']:.3f}  (a 2-worker pool: "
                  f"{m['layout'] + 2 * (m['open'] + m['first']):.3f})")
        for a in args.avatars:
            ours, drv = np.load(Path(tmp) / f"{a}-0.npy"), np.load(Path(tmp) / f"{a}-1.npy")
            diff = int(np.abs(ours.astype(int) - drv).max())
            print(f"  {a}: frames with uploaded levels vs glGenerateMipmap: "
                  f"{'byte-identical' if diff == 0 else f'max pixel difference {diff}'}")


if __name__ == "__main__":
    main()
