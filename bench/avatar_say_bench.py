"""`avatar say` with each shipped avatar, alternating in one run: whole-process wall time and real-time factor.

    .venv/bin/python bench/avatar_say_bench.py [--runs 3] [--avatars toon default-female default-male] [--size 512]

The first avatar is the baseline (`toon` is the capsule character that was the default before the MakeHuman
ones, byte for byte); the ratio of each avatar's median RTF to it says what the avatar costs. Run timing benches
alone on the machine (e.g. under `flock /work/locks/bench.lock`).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
AVATAR = ROOT / ".venv" / "bin" / "avatar"
TEXT = "Well, I did not expect to see you here today, but I am really glad that you came."


def main(argv: list[str] | None = None) -> int:
    """Alternate the avatars, print medians and ratios."""
    sys.path.insert(0, str(ROOT))
    from avatar.render.video import probe_mp4

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--avatars", nargs="+", default=["toon", "default-female", "default-male"])
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--text", default=TEXT)
    args = ap.parse_args(argv)
    rtf: dict[str, list[float]] = {a: [] for a in args.avatars}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.runs):
            for a in args.avatars:
                out = Path(tmp) / f"{a}-{r}.mp4"
                t0 = time.perf_counter()
                subprocess.run([str(AVATAR), "say", args.text, "-o", str(out), "--avatar", a, "--size",
                                str(args.size)], check=True, capture_output=True)
                wall = time.perf_counter() - t0
                dur = probe_mp4(out)["duration"]
                rtf[a].append(wall / dur)
                print(f"run {r} {a:16s} wall {wall:6.2f} s  video {dur:5.2f} s  RTF {wall / dur:.3f}", flush=True)
    base = statistics.median(rtf[args.avatars[0]])
    for a, v in rtf.items():
        m = statistics.median(v)
        print(f"{a:16s} median RTF {m:.3f}  x{m / base:.3f} of {args.avatars[0]}")
    print("rerun: .venv/bin/python bench/avatar_say_bench.py " + " ".join(sys.argv[1:] if argv is None else argv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
