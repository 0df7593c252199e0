"""Benchmark `avatar batch`: lines per minute with 1 and 2 local workers through the real pipeline.

    OMP_NUM_THREADS=1 .venv/bin/python bench/batch_bench.py [--lines 6] [--size 256] [--workers 1,2]

Renders the same script of short two-character lines once per worker count, each into a fresh folder
(wall time includes starting the workers and loading their models, as a user sees it), and prints lines
per minute, seconds per line and the speed-up against 1 worker measured in the same run. It also checks
that every worker count produced byte-identical clips (determinism across parallelism).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TEXTS = (
    "Welcome, traveller!", "The road north is closed.", "Wolves again? I hate wolves.",
    "Then stay the night.", "How much for a room?", "Two silver, and I mean it.",
    "That's robbery!", "Take it or leave it.",
)


def make_script(n: int) -> str:
    """A YAML script of n short lines alternating between two characters."""
    lines = [f"  - {{id: b{i:03d}, character: {'inn' if i % 2 else 'guest'}, text: {json.dumps(TEXTS[i % len(TEXTS)])}}}"
             for i in range(n)]
    return ("characters:\n  inn: {voice: en-us+m3, personality: {agreeableness: 0.3}}\n"
            "  guest: {voice: en-us+f1, personality: {extraversion: 0.8}}\nlines:\n" + "\n".join(lines) + "\n")


def clip_hashes(outdir: Path) -> dict[str, str]:
    """SHA-256 of each line's clip."""
    return {p.parent.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(outdir.glob("*/clip.mp4"))}


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its figures."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=6, help="lines in the script")
    ap.add_argument("--size", type=int, default=256, help="clip width and height (even)")
    ap.add_argument("--workers", default="1,2", help="comma-separated worker counts; the first is the baseline")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--face-model", default=None, help="face model folder (default: weights/face)")
    ap.add_argument("--gesture-model", default=None, help="gesture model folder (default: weights/gesture)")
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    from avatar.batch.plan import VideoSettings
    from avatar.batch.render import PipelineRenderer
    from avatar.batch.runner import run_batch
    from avatar.batch.script import parse_script

    counts = [int(x) for x in args.workers.split(",") if x.strip()]
    script = parse_script(make_script(args.lines), "yaml")
    settings = VideoSettings(width=args.size, height=args.size)
    load_before = os.getloadavg()[0]
    rows = []
    hashes = []
    with tempfile.TemporaryDirectory(prefix="batch-bench-") as tmp:
        for w in counts:
            out = Path(tmp) / f"w{w}"
            t0 = time.perf_counter()
            res = run_batch(script, out, render=PipelineRenderer(args.face_model, args.gesture_model), seed=args.seed, settings=settings, workers=w,
                            progress=False)
            secs = time.perf_counter() - t0
            if res.failed:
                print(f"{res.failed} line(s) failed with {w} worker(s): "
                      + "; ".join(r["error"] for r in res.records if r["status"] == "failed"), file=sys.stderr)
                return 1
            per_line = sum(r["timings"]["total"] for r in res.records) / len(res.records)
            stages = {k: sum(r["timings"].get(k, 0.0) for r in res.records) / len(res.records)
                      for k in ("prepare", "perform", "export", "render")}
            speech = sum(r.get("duration", 0.0) for r in res.records)
            # Steady state: w workers each finishing a line every `per_line` s (start-up left out).
            rows.append((w, secs, 60.0 * args.lines / secs, per_line, 60.0 * w / per_line, stages, speech))
            hashes.append(clip_hashes(out))
    base, base_steady = rows[0][2], rows[0][4]
    print(f"batch: {args.lines} lines ({rows[0][6]:.1f} s of speech), {args.size}x{args.size}, "
          f"cores: {os.cpu_count()}, load average before: {load_before:.1f}")
    print(f"{'workers':>7} {'wall s':>7} {'lines/min':>10} {'ratio':>6} | {'s/line in worker':>16} "
          f"{'steady lines/min':>16} {'ratio':>6} | mean s per line: prepare perform export render")
    for w, secs, lpm, per, steady, st, _ in rows:
        print(f"{w:>7} {secs:>7.1f} {lpm:>10.2f} {lpm / base:>5.2f}x | {per:>16.2f} {steady:>16.2f} "
              f"{steady / base_steady:>5.2f}x | {st['prepare']:.2f} {st['perform']:.2f} {st['export']:.2f} "
              f"{st['render']:.2f}")
    print("lines/min counts the wall time with worker start-up (process spawn, imports, model loading); steady "
          "lines/min = workers x 60 / s per line, i.e. start-up left out (what a long batch approaches).")
    same = all(h == hashes[0] for h in hashes[1:])
    print(f"clips identical across worker counts: {same}")
    cmd = ["OMP_NUM_THREADS=1", ".venv/bin/python", "bench/batch_bench.py", "--lines", str(args.lines),
           "--size", str(args.size), "--workers", args.workers, "--seed", str(args.seed)]
    cmd += [x for flag, v in (("--face-model", args.face_model), ("--gesture-model", args.gesture_model)) if v
            for x in (flag, v)]
    print("rerun: " + " ".join(shlex.quote(c) if "=" not in c else c for c in cmd))
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
