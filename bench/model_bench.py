"""Per-model forward times of the shipped face, gesture and lip sync networks, as `avatar say` calls them.

    flock /work/locks/bench.lock .venv/bin/python bench/model_bench.py [--baseline DIR] [--rounds 3] [--reps 40]

Each model gets the inputs of one sampling step in `say`: the face denoiser a 120-frame window, conditional and
unconditional rows in one batch (classifier-free guidance); the gesture denoiser a 60-frame window, two rows;
the viseme network 150 frames (5 s) of one clip. A round runs in a fresh process: it times the import and
load of the three models, one warm-up call, then `--reps` calls of each, and prints the median and the
10th/90th percentiles in ms. Every inference thread pool is one thread (OMP/OpenBLAS/MKL = 1 and onnxruntime's
default), as in `say`, whose render workers use the other cores.

`--baseline DIR` is another checkout with its own `.venv` (e.g. `git worktree add --detach ../base 54efe92`,
the last build with the NumPy forward passes): its rounds run this same script with that interpreter, and
rounds of the two builds alternate, so machine load hits both alike; the ratio baseline/current is printed.
Both builds expose `load_face_model()`, `load_gesture_model()`, `load_viseme_net()` and call the networks the
same way, so one timing loop serves both. The outputs of the two builds on the same inputs are compared too.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENV1 = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _child(reps: int, dump: str | None) -> None:
    """One round in this process: load, warm up, time; prints one JSON line."""
    t0 = time.perf_counter()
    import numpy as np

    from avatar.face.generate import load_face_model
    from avatar.face.viseme_net import load_viseme_net
    from avatar.gesture.generate import load_gesture_model

    face, body, lips = load_face_model(), load_gesture_model(), load_viseme_net()
    load_s = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    fc, gc = face.config, body.config
    D, F = gc.pose_dim, len(gc.audio_features)
    cases = {
        "face": (face, (rng.standard_normal((2, 120, fc.motion_dim), dtype=np.float32), np.array([500, 500]),
                        rng.standard_normal((2, 120, fc.audio_dim), dtype=np.float32),
                        rng.uniform(-1, 1, (2, 3)).astype(np.float32), np.array([True, False]))),
        "gesture": (body, (rng.standard_normal((2, 60, D), dtype=np.float32), np.array([500, 500]),
                           rng.standard_normal((2, 60, F), dtype=np.float32),
                           rng.uniform(-1, 1, (2, 60, 3)).astype(np.float32),
                           rng.standard_normal((2, 60, D), dtype=np.float32),
                           np.concatenate([np.ones((2, 10, 1)), np.zeros((2, 50, 1))], axis=1).astype(np.float32),
                           np.array([False, True]))),
        "lipsync": (lips, (rng.standard_normal((1, 150, 166), dtype=np.float32),)),
    }
    out: dict = {"load_s": load_s, "torch_imported": "torch" in sys.modules, "ms": {}}
    outputs = {}
    for name, (net, args) in cases.items():
        outputs[name] = np.asarray(net(*args), dtype=np.float32)  # warm-up (first-call allocations)
        times = []
        for _ in range(reps):
            t = time.perf_counter()
            net(*args)
            times.append((time.perf_counter() - t) * 1000)
        out["ms"][name] = times
    if dump:
        np.savez(dump, **outputs)
    print(json.dumps(out))


def _round(python: str, script: Path, reps: int, dump: str) -> dict:
    r = subprocess.run([python, str(script), "--child", "--reps", str(reps), "--dump", dump], capture_output=True,
                       text=True, env={**os.environ, **ENV1}, cwd=tempfile.gettempdir())
    if r.returncode != 0:
        sys.exit(f"{python} failed: {r.stderr[-1500:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def main() -> None:
    """Run the benchmark and print its figures."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--baseline", type=Path, default=None, help="another checkout with its own .venv")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--reps", type=int, default=40)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--dump", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(args.reps, args.dump)
        return
    import numpy as np

    builds = {"current": str(ROOT / ".venv" / "bin" / "python")}
    if args.baseline is not None:
        builds = {"baseline": str(args.baseline.resolve() / ".venv" / "bin" / "python"), **builds}
    script = Path(__file__).resolve()
    res: dict[str, list[dict]] = {b: [] for b in builds}
    with tempfile.TemporaryDirectory() as tmp:
        for _round_index in range(args.rounds):
            for b, py in builds.items():  # alternate builds round by round
                res[b].append(_round(py, script, args.reps, str(Path(tmp) / f"{b}.npz")))
        dumps = {b: dict(np.load(Path(tmp) / f"{b}.npz")) for b in builds}
    print(f"# per-model forward time, ms (median [p10, p90] of {args.rounds} rounds x {args.reps} calls, one thread)")
    print(f"{'model':<9}" + "".join(f"{b:>26}" for b in builds) + ("   baseline/current" if len(builds) == 2 else ""))
    for name in ("face", "gesture", "lipsync"):
        row, med = f"{name:<9}", {}
        for b in builds:
            xs = [x for rr in res[b] for x in rr["ms"][name]]
            med[b] = statistics.median(xs)
            row += f"{med[b]:>10.2f} [{_pct(xs, 0.1):6.2f}, {_pct(xs, 0.9):6.2f}]"
        if len(builds) == 2:
            row += f"   {med['baseline'] / med['current']:.2f}x"
        print(row)
    row = f"{'load s':<9}"
    for b in builds:
        row += f"{statistics.median(rr['load_s'] for rr in res[b]):>26.3f}"
    print(row + "   (import + load of the three models in a fresh process, median of rounds)")
    print("torch imported: " + ", ".join(f"{b} {any(rr['torch_imported'] for rr in res[b])}" for b in builds))
    if len(builds) == 2:
        for name in ("face", "gesture", "lipsync"):
            a, c = dumps["baseline"][name], dumps["current"][name]
            err = float(np.abs(a - c).max())
            print(f"outputs {name}: max |baseline - current| {err:.2e} (max |output| {float(np.abs(a).max()):.2f})")
    cmd = "flock /work/locks/bench.lock .venv/bin/python bench/model_bench.py"
    print(f"rerun: {cmd}" + (f" --baseline {args.baseline}" if args.baseline else "") +
          f" --rounds {args.rounds} --reps {args.reps}")


if __name__ == "__main__":
    main()
