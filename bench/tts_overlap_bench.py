"""Benchmark the neural voice's sentence overlap: WORLD of sentence i in a thread beside the model of sentence i+1.

Times voice_bench's four-sentence paragraph (TTS alone, warm process) with `PiperBackend(overlap=True)` (shipped)
and `overlap=False` (one sentence after the other) in the same process, alternating which goes first each round,
at arousal +0.8 (WORLD edits every sentence) and 0 (WORLD skipped: the model alone). Prints the median wall and
CPU real-time factors, the median of the per-round wall ratios, and checks that both give the same audio.

    flock /work/locks/bench.lock .venv/bin/python bench/tts_overlap_bench.py [--rounds 5] [--arousal 0.8 --arousal 0]
        [--text "We did it! I am so proud of you."]
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from voice_bench import PARAGRAPH  # the same paragraph as the voice bench's RTF line


def main(argv: list[str] | None = None) -> int:
    """Print wall/CPU RTF of the paragraph with and without the overlap, and their ratio."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5, help="timed rounds (each times both ways)")
    ap.add_argument("--arousal", type=float, action="append", help="arousal of the paragraph (default +0.8 and 0)")
    ap.add_argument("--text", default=PARAGRAPH, help="what to say (default: voice_bench's paragraph)")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    from avatar.tts.piper import PiperBackend
    from avatar.types import VAD

    ways = {"overlap": PiperBackend(overlap=True), "sequential": PiperBackend(overlap=False)}
    if ways["overlap"].engine_for(None) != "piper":
        sys.exit("the neural voice is not installed: nothing to measure")
    for be in ways.values():
        be.synthesize("Hello.", None)  # open the voice (each backend loads its own session)
    print(f"TTS alone, {'paragraph' if args.text == PARAGRAPH else repr(args.text)}, {args.rounds} rounds, load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    for arousal in args.arousal or [0.8, 0.0]:
        vad = VAD(0.0, arousal, 0.0)
        walls: dict[str, list[float]] = {k: [] for k in ways}
        cpus: dict[str, list[float]] = {k: [] for k in ways}
        audio: dict[str, np.ndarray] = {}
        duration = 0.0
        for rnd in range(args.rounds):
            order = list(ways) if rnd % 2 == 0 else list(ways)[::-1]
            for name in order:
                c0, w0 = time.process_time(), time.perf_counter()
                sp = ways[name].synthesize(args.text, vad, seed=0)
                cpus[name].append(time.process_time() - c0)
                walls[name].append(time.perf_counter() - w0)
                audio[name], duration = sp.audio, sp.duration
        same = np.array_equal(audio["overlap"], audio["sequential"])
        ratios = [a / b for a, b in zip(walls["overlap"], walls["sequential"])]
        print(f"a={arousal:+.1f}, {duration:.2f} s of speech, same audio both ways: {same}")
        for name in ways:
            print(f"  {name:>10}: RTF wall {np.median(walls[name]) / duration:.3f} (rounds "
                  f"{' '.join(f'{w / duration:.3f}' for w in walls[name])}), CPU {np.median(cpus[name]) / duration:.3f}")
        print(f"  overlap / sequential wall: x{np.median(walls['overlap']) / np.median(walls['sequential']):.3f} "
              f"(median of per-round ratios x{np.median(ratios):.3f})", flush=True)
    print("rerun: flock /work/locks/bench.lock .venv/bin/python bench/tts_overlap_bench.py "
          + " ".join(shlex.quote(a) for a in sys.argv[1:]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
