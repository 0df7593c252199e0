"""Per-frame render cost of each shipped avatar, frames alternated in one process, and shaded fragments.

    OMP_NUM_THREADS=1 .venv/bin/python bench/avatar_frame_bench.py [--avatars toon default-female default-male]
        [--framing portrait] [--frames 40] [--size 512] [--line "TEXT"] [--without-wrinkles] [--file-order]

The first avatar is the baseline. Each avatar gets its own Renderer (FXAA, the default); frames cycle through
the snapshot emotions at two mouth openings with the arms relaxed, one frame per avatar in turn, so machine load
falls on all alike. Prints the median ms per frame and its ratio to the baseline, then, from one frame each, the
fragments that passed the depth test (GL samples-passed queries around each draw: what llvmpipe shaded) and the
primitives drawn and skipped as outside the view. `--line TEXT` renders every frame of that line's `say` motion
instead (eSpeak voice: face and gestures, the hands in view), as a video does. `--without-wrinkles` adds, after
each avatar with a crease map, the same file drawn with the plain program everywhere (`NAME-nomap`): what the
wrinkle maps cost. `--file-order` adds each avatar with its triangles drawn in the file's order (`NAME-fileorder`)
rather than in vertex-cache order (avatar.render.mesh.cache_ordered): what that order saves. Beside the wall time
a frame, its CPU time (the process's, llvmpipe's threads included; steadier on a shared machine). Run timing
benches alone (e.g. under `flock /work/locks/bench.lock`).
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _fragments(r, row, body) -> int:
    """Fragments shaded in one frame: a samples-passed query around every draw call."""
    total = 0
    draws = r._draws
    wrapped = []
    for d in draws:
        real = d["vao"]

        class Counted:
            def __init__(self, vao) -> None:
                self.vao = vao

            def render(self, *args, **kw) -> None:
                nonlocal total
                q = r._ctx.query(samples=True)
                with q:
                    self.vao.render(*args, **kw)
                total += q.samples

        extra = {k: [(prog, Counted(vao)) for prog, vao in d[k]] for k in ("plain", "split") if k in d}
        wrapped.append(dict(d, vao=Counted(real), **extra))
    r._draws = wrapped
    try:
        r.render(row, body)
    finally:
        r._draws = draws
    return total


def _without_wrinkles(r) -> bool:
    """Draw every wrinkle-mapped primitive of r with its plain program from now on; False if r has none."""
    found = False
    for d in r._draws:
        if d["wrinkles"] is not None:
            (d["prog"], d["vao"]), d["wrinkles"] = d["plain"][0], None
            found = True
    return found


def main(argv: list[str] | None = None) -> int:
    """Alternate the avatars frame by frame; print medians, ratios and fragment counts."""
    from avatar.render.renderer import Renderer
    from avatar.render.snapshot import expression_row, relaxed_body

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--avatars", nargs="+", default=["toon", "default-female", "default-male"])
    ap.add_argument("--framing", default="portrait", choices=("portrait", "full"))
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--line", default=None,
                    help="render the frames of this line's `say` motion (eSpeak voice, gestures in view) instead")
    ap.add_argument("--without-wrinkles", action="store_true",
                    help="also time each wrinkle-mapped avatar drawn without its crease map (NAME-nomap)")
    ap.add_argument("--file-order", action="store_true",
                    help="also time each avatar with its triangles in the file's order, not cache order (NAME-fileorder)")
    args = ap.parse_args(argv)
    body = relaxed_body()
    rows = [expression_row(label, amount=a) for label in ("neutral", "happy", "sad", "angry") for a in (0.2, 0.6)]
    bodies = [body] * len(rows)
    if args.line:
        from avatar.pipeline import perform
        from avatar.render.motion import frame_count, resample_body, resample_face

        perf = perform(args.line, voice="en-us")
        n = frame_count(perf.face, perf.body, 30.0)
        rows = list(resample_face(perf.face, n, 30.0))
        rot, root = resample_body(perf.body, n, 30.0)
        bodies = [(perf.body.joints, rot[i], root[i]) for i in range(n)]
        args.frames = max(args.frames, n)
    rs = [Renderer(a, args.size, args.size, framing=args.framing) for a in args.avatars]
    if args.without_wrinkles:
        names, kept = [], []
        for a, r in zip(args.avatars, rs):
            names.append(a)
            kept.append(r)
            bare = Renderer(a, args.size, args.size, framing=args.framing)
            if _without_wrinkles(bare):
                names.append(f"{a}-nomap")
                kept.append(bare)
            else:
                bare.close()
        args.avatars, rs = names, kept
    if args.file_order:
        import avatar.render.renderer as renderer_mod

        names, kept = [], []
        cache_ordered = renderer_mod.cache_ordered
        for a, r in zip(args.avatars, rs):
            renderer_mod.cache_ordered = lambda p: p  # the layout keeps the file's triangle order
            try:
                filed = Renderer(a.removesuffix("-nomap"), args.size, args.size, framing=args.framing)
            finally:
                renderer_mod.cache_ordered = cache_ordered
            if a.endswith("-nomap"):
                _without_wrinkles(filed)
            names += [a, f"{a}-fileorder"]
            kept += [r, filed]
        args.avatars, rs = names, kept
    try:
        for r in rs:  # warm-up: programs compiled, buffers uploaded
            r.render(rows[0], bodies[0])
        times: list[list[float]] = [[] for _ in rs]
        cpus: list[list[float]] = [[] for _ in rs]
        for k in range(args.frames):
            for i, r in enumerate(rs):
                t0, c0 = time.perf_counter(), time.process_time()
                r.render(rows[k % len(rows)], bodies[k % len(rows)])
                times[i].append(time.perf_counter() - t0)
                cpus[i].append(time.process_time() - c0)
        base, base_cpu = statistics.median(times[0]), statistics.median(cpus[0])
        for a, r, t, c in zip(args.avatars, rs, times, cpus):
            m, mc = statistics.median(t), statistics.median(c)
            frags = _fragments(r, rows[1], bodies[1])
            drawn = len(r._draws) - len(r._culled)
            print(f"{args.framing} {a:26s} {m * 1000:7.1f} ms/frame  x{m / base:.3f} of {args.avatars[0]}  "
                  f"CPU {mc * 1000:6.1f} ms/frame x{mc / base_cpu:.3f}  "
                  f"fragments {frags:7d}  primitives drawn {drawn}/{len(r._draws)}", flush=True)
    finally:
        for r in rs:
            r.close()
    print("rerun: OMP_NUM_THREADS=1 .venv/bin/python bench/avatar_frame_bench.py " + shlex.join(argv or sys.argv[1:]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
