"""Benchmark the whole `avatar say` job: real-time factor of text -> MP4 for a ~4-second line.

    .venv/bin/python bench/pipeline_bench.py [--runs 3] [--size 512] [--text "..."]

Prints, for the same line:
- the whole process (`avatar say` as a user runs it: start-up, model loading, emotion, speech, face, body,
  render, encode), wall-clock seconds and real-time factor (goal <= 1.0, compass 0.3), with each anti-aliasing
  mode (fxaa default, msaa, none), frames rendered by two forked worker processes (the default on Linux);
- the same command with `--render-workers 1` (one renderer in the process, as before the workers), measured in
  the same run, alternating with the default, and the ratio;
- the per-stage seconds the command reports, and the CPU seconds of the process and its render workers
  (steadier than wall time on a shared machine: other tenants slow a run down more than they add CPU to it);
- the same job in a warm process (models already loaded), rendering in that process (as batch workers and the
  live streamer do) and in a warm pool of spawned render workers (as the Gradio app does), alternating: the
  pipeline's own speed without Python start-up and model loading;
- the baseline in the same run: the bare `avatar tts` process on the same line (start-up + emotion + speech only),
  so the ratio says what face, body and video add;
- the MP4's stream facts (codecs, fps, A/V length difference).

`--baseline DIR` (another checkout with its own `.venv`, e.g. a `git worktree add --detach` of an older commit)
measures instead only the cold `avatar say` process of both builds on the line, alternating run by run, and
compares their outputs (`--keep`: face.json channels, body.bvh numbers): the before/after figures of a change.
Each build's real-time factor is its wall time over its own speech length (builds with other voices say the line
at other lengths), with the median of per-round ratios beside the ratio of medians. `--current-args "--avatar
toon"` (repeatable) adds this build with other `say` options to the alternation, to split a difference by cause.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
AVATAR = ROOT / ".venv" / "bin" / "avatar"
PACKAGES = ("avatar", "tts", "face", "gesture", "app.py")  # what ./dev compiles
TEXT = "Well, I did not expect to see you here today, but I am really glad that you came."


def _cpu() -> float:
    """CPU seconds of the finished child processes so far (the avatar process and its render workers)."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _run(args: list[str]) -> tuple[float, str, float]:
    t0, c0 = time.perf_counter(), _cpu()
    r = subprocess.run([str(AVATAR), *args], capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        sys.exit(f"avatar {' '.join(args)} failed: {r.stderr.strip()[-500:]}")
    return dt, r.stdout, _cpu() - c0


def _numbers(path: Path) -> "list[float]":
    """Every number of a kept face.json's frames or a body.bvh's motion block."""
    if path.suffix == ".json":
        return [x for row in json.loads(path.read_text())["frames"] for x in row]
    text = path.read_text().split("Frame Time:", 1)[1].split("\n", 1)[1]
    return [float(x) for x in text.split()]


def _ab(args: argparse.Namespace) -> None:
    """Cold `avatar say` of the baseline build and this one (and this one with each `--current-args`), alternating;
    wall time, CPU and real-time factor (the builds may speak the line at different lengths); outputs compared."""
    import statistics

    import numpy as np

    builds = {"baseline": (args.baseline.resolve() / ".venv" / "bin" / "avatar", []), "current": (AVATAR, [])}
    for extra in args.current_args or []:
        builds[f"current {extra}"] = (AVATAR, shlex.split(extra))
    times: dict[str, list[float]] = {b: [] for b in builds}
    cpus: dict[str, list[float]] = {b: [] for b in builds}
    rtfs: dict[str, list[float]] = {b: [] for b in builds}
    stages: dict[str, list[dict]] = {b: [] for b in builds}
    durs: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.runs + 1):  # the first round only warms the file cache
            for k, (b, (exe, extra)) in enumerate(builds.items()):
                keep = Path(tmp) / f"keep{k}"
                t0, c0 = time.perf_counter(), _cpu()
                r = subprocess.run([str(exe), "say", args.text, "-o", str(Path(tmp) / f"{k}.mp4"), "--size",
                                    str(args.size), "--keep", str(keep), *extra], capture_output=True, text=True,
                                   cwd=tmp)
                dt, cpu = time.perf_counter() - t0, _cpu() - c0
                if r.returncode != 0:
                    sys.exit(f"{exe} say {' '.join(extra)} failed: {r.stderr.strip()[-800:]}")
                if i:
                    rec = json.loads(r.stdout.strip().splitlines()[-1])
                    durs[b] = rec["duration"]
                    times[b].append(dt)
                    cpus[b].append(cpu)
                    rtfs[b].append(dt / rec["duration"])
                    stages[b].append(rec["timings"])
        print(f"cold `avatar say` whole process, {args.size}x{args.size}, median of {args.runs} alternating runs:")
        for b in builds:
            st = {k: statistics.median(s[k] for s in stages[b]) for k in stages[b][0]}
            print(f"  {b:9s} {statistics.median(times[b]):.2f} s (runs {', '.join(f'{t:.2f}' for t in times[b])}) "
                  f"for {durs[b]:.2f} s of speech: RTF {statistics.median(rtfs[b]):.2f} "
                  f"(runs {', '.join(f'{t:.2f}' for t in rtfs[b])}); CPU {statistics.median(cpus[b]):.2f} core-s "
                  f"({statistics.median(cpus[b]) / durs[b]:.2f} core-s per speech s); stages (s): "
                  + ", ".join(f"{k} {v:.2f}" for k, v in st.items()))
        base_rtf, base_cpu = statistics.median(rtfs["baseline"]), statistics.median(cpus["baseline"]) / durs["baseline"]
        for b in list(builds)[1:]:
            # Per run: the RTF of this build over the baseline's in the same round (the load of that minute falls
            # on both), then the median of those ratios beside the ratio of the medians.
            pair = [c / a for a, c in zip(rtfs["baseline"], rtfs[b])]
            print(f"  {b} / baseline: RTF x{statistics.median(rtfs[b]) / base_rtf:.2f} (median of per-round ratios "
                  f"x{statistics.median(pair):.2f}), CPU per speech second "
                  f"x{statistics.median(cpus[b]) / durs[b] / base_cpu:.2f}, wall "
                  f"x{statistics.median(times[b]) / statistics.median(times['baseline']):.2f} (under 1: faster)")
        for name in ("face.json", "body.bvh"):
            a = np.array(_numbers(Path(tmp) / "keep0" / name))
            c = np.array(_numbers(Path(tmp) / "keep1" / name))
            if a.shape != c.shape:
                print(f"  {name}: shapes differ ({a.shape} vs {c.shape})")
                continue
            print(f"  {name}: max |baseline - current| {np.abs(a - c).max():.2e} over {a.size} numbers "
                  f"(max |value| {np.abs(a).max():.2f})")


def main() -> None:
    """Run the benchmark and print its figures."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--text", default=TEXT)
    ap.add_argument("--baseline", type=Path, default=None,
                    help="another checkout with its own .venv: compare cold `avatar say` runs of both builds")
    ap.add_argument("--current-args", action="append", metavar="ARGS",
                    help="with --baseline: also run this build with these extra `say` options (quoted; repeatable), "
                         "e.g. \"--avatar toon\" or \"--voice en-us\", alternated with the others")
    args = ap.parse_args()
    print("rerun: .venv/bin/python bench/pipeline_bench.py " + shlex.join(sys.argv[1:]))
    print(f"machine: {os.cpu_count()} CPUs; line: {args.text!r}")
    if args.baseline is not None:
        _ab(args)
        return
    from avatar.render.video import probe_mp4

    # Bytecode for our modules, as ./dev writes it before every command: where PYTHONDONTWRITEBYTECODE is set, a
    # module edited since would otherwise be compiled again in every timed process.
    subprocess.run([sys.executable, "-m", "compileall", "-q", "-j", "0", *PACKAGES], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.mp4"
        wav = Path(tmp) / "out.wav"
        _run(["say", args.text, "-o", str(out), "--size", "64"])  # warm the file cache (first import is slow)
        base = sorted(_run(["tts", args.text, "-o", str(wav)])[0] for _ in range(args.runs))[args.runs // 2]
        cases = {"fxaa": ["--antialias", "fxaa"], "fxaa, 1 render process": ["--antialias", "fxaa",
                                                                            "--render-workers", "1"],
                 "msaa": ["--antialias", "msaa"], "none": ["--antialias", "none"]}
        runs: dict[str, list] = {k: [] for k in cases}
        for _ in range(args.runs):  # alternate the cases: load from others on a shared machine falls on all alike
            for name, opts in cases.items():
                dt, stdout, cpu = _run(["say", args.text, "-o", str(out), "--size", str(args.size), *opts])
                runs[name].append((dt, json.loads(stdout.strip().splitlines()[-1]), cpu))
        results = {k: sorted(v, key=lambda r: r[0])[len(v) // 2] for k, v in runs.items()}
        info = probe_mp4(out)
    dur = results["fxaa"][1]["duration"]
    print(f"speech length {dur:.2f} s; {args.size}x{args.size} portrait; median of {args.runs} runs")
    print(f"  baseline `avatar tts` process: {base:.2f} s (RTF {base / dur:.2f})")
    for name, (dt, rec, cpu) in results.items():
        stages = ", ".join(f"{k} {v:.2f}" for k, v in rec["timings"].items())
        print(f"  `avatar say` {name:22s}: {dt:.2f} s, real-time factor {dt / dur:.2f} "
              f"({dt / base:.1f}x the tts process); CPU {cpu:.2f} core-s; stages (s): {stages}")
    one = results["fxaa, 1 render process"][0]
    print(f"  two render workers against one renderer in the process (fxaa): {one / results['fxaa'][0]:.2f}x faster")
    from avatar.pipeline import say
    from avatar.render.pool import RenderPool, spawn_available, worker_count

    with tempfile.TemporaryDirectory() as tmp:
        # A warm process renders in its own process (render_workers=1: batch workers and the live streamer), or,
        # as the Gradio app does, in a warm pool of spawned workers started with the app (this process has a GL
        # context by then, so forking is out). The two alternate, so load from others falls on both alike.
        say(args.text, Path(tmp) / "warm.mp4", width=args.size, height=args.size, render_workers=1)  # load models
        workers = worker_count() if spawn_available() else 1
        for aa in ("fxaa", "msaa"):
            warm: dict[str, list] = {"in this process": [], f"in a warm pool of {workers} workers": []}
            pool = RenderPool(None, width=args.size, height=args.size, antialias=aa, workers=workers,
                              start="spawn") if workers > 1 else None
            try:
                if pool is not None:  # the app starts its pool at launch: its start-up is not a request's
                    say(args.text, Path(tmp) / "warm.mp4", width=args.size, height=args.size, antialias=aa,
                        pool=pool)
                for _ in range(args.runs):
                    for name in warm:
                        if pool is None and name != "in this process":
                            continue
                        t0 = time.perf_counter()
                        r = say(args.text, Path(tmp) / "warm.mp4", width=args.size, height=args.size,
                                antialias=aa, render_workers=1, pool=pool if name != "in this process" else None)
                        warm[name].append((time.perf_counter() - t0, r.timings))
            finally:
                if pool is not None:
                    pool.close()
            for name, rows in warm.items():
                if not rows:
                    continue
                dt, stages = sorted(rows, key=lambda x: x[0])[len(rows) // 2]
                print(f"  warm process (models loaded), rendering {name}, --antialias {aa}: "
                      f"{dt:.2f} s, real-time factor {dt / dur:.2f}; stages (s): "
                      + ", ".join(f"{k} {v:.2f}" for k, v in stages.items()))
    v, a = info["video"], info["audio"]
    print(f"  MP4: {v['codec']} {v['pix_fmt']} {v['fps']:g} fps + {a['codec']}; video {v['duration']:.3f} s, "
          f"audio {a['duration']:.3f} s (difference {abs(v['duration'] - a['duration']) * 1000:.0f} ms)")
    print("goals: whole-process RTF <= 1.0 for a ~4 s line (compass 0.3); A/V within one frame + 50 ms")


if __name__ == "__main__":
    main()
