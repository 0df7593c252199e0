"""Benchmark the voice's WORLD step: its CPU cost on emotional lines and what it does to the pitch, per setting.

For joe's shipped WORLD settings (`avatar.tts.piper.WORLD`) and each `--compare` variant, in one process,
alternating (so machine load hits every setting alike):
- CPU and wall seconds of the TTS stage (`synthesize`) and of WORLD in it, per second of speech, on five emotional lines
  (three with the VAD read from the text, one sentence at arousal +0.8 and -0.8);
- the pitch WORLD gave, frame by frame: each line at arousal -0.8 and +0.8 is judged with and without WORLD (the
  same audio otherwise, every sample in place) by Harvest over 50-500 Hz, and the bench prints the median shift in
  semitones, the share of frames more than 7 semitones above the unedited frame (on a calm line, an octave jump
  up: the tracker read a creaky stretch an octave low; on an excited line it includes the edit's own rise), the
  share more than 7 semitones below the median shift (jumps down), and the share below 70 Hz (creak). joe's creaky pitch is ambiguous by an
  octave to any tracker; per frame the judge's own choice is the same on both sides, so this figure is steady
  where medians of two renderings were not.

    .venv/bin/python bench/world_bench.py [--compare aperiodicity=d4c] [--compare split_f0=1] [--repeats 2] [--controls 3]
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import sys
import time
import warnings

import numpy as np

from avatar.tts.world import WorldSettings

LINES = [  # the text's own VAD (None) or a set one
    ("Well, I did not expect to see you here today, but I am really glad that you came.", None),
    ("I can't believe we actually won the championship! This is the best day ever!", None),
    ("I'm so sorry. I really thought it would work out this time.", None),
    ("The quick brown fox jumps over the lazy dog, and then it runs away into the forest.", (0.0, 0.8, 0.0)),
    ("The quick brown fox jumps over the lazy dog, and then it runs away into the forest.", (0.0, -0.8, 0.0)),
]
PITCH_LINES = [
    "The quick brown fox jumps over the lazy dog, and then it runs away into the forest.",
    "Well, I did not expect to see you here today, but I am really glad that you came.",
    "I have been sitting here by the window all afternoon, watching the rain fall slowly.",
    "My grandmother kept a small garden behind the house, full of beans and tomatoes.",
]


def variant(base: WorldSettings, spec: str) -> WorldSettings:
    """`base` with one field changed: 'aperiodicity=d4c', 'f0_range=70,250', 'min_st=0', 'keep_unvoiced=0'."""
    key, _, value = spec.partition("=")
    fields = {f.name: f.type for f in dataclasses.fields(base)}
    if key not in fields:
        raise SystemExit(f"unknown WORLD setting {key!r}; one of {', '.join(fields)}")
    old = getattr(base, key)
    if isinstance(old, tuple):
        new = tuple(float(v) for v in value.split(","))
    elif isinstance(old, bool):
        new = value.lower() in ("1", "true", "yes")
    elif isinstance(old, float):
        new = float(value)
    elif isinstance(old, int) or (old is None and value.isdigit()):
        new = int(value)
    else:
        new = value
    return dataclasses.replace(base, **{key: new})


def main(argv: list[str] | None = None) -> int:
    """Print CPU per speech second and the per-frame pitch check for each setting."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--compare", action="append", default=[], help="a variant of the shipped settings, KEY=VALUE")
    ap.add_argument("--repeats", type=int, default=2, help="timing rounds")
    ap.add_argument("--controls", type=int, default=0,
                    help="pitch check only: N more rows of the shipped settings whose F0 tracker sees the audio with "
                         "-140 dB of white noise added (seeds 1..N): how much the check moves after any tiny change")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    from avatar.audio import import_pyworld
    from avatar.tts import piper, world
    from avatar.tts.cli import _text_vads
    from avatar.types import VAD

    pw = import_pyworld()
    settings = {"shipped": piper.WORLD} | {c: variant(piper.WORLD, c) for c in args.compare}
    # One sentence after the other: WORLD's CPU is read as process time around each call, which a model running
    # beside it in another thread would add to.
    backends = {name: piper.PiperBackend(world=ws, overlap=False) for name, ws in settings.items()}
    if backends["shipped"].engine_for(None) != "piper":
        sys.exit("the neural voice is not installed: nothing to measure")
    backends["shipped"].synthesize("Hello.", None)  # open the voice
    vads = [VAD(*v) if v is not None else _text_vads(t) for t, v in LINES]

    original = world.reshape
    original_track = world.track_f0
    noise_seed: dict[str, int | None] = {"seed": None}

    def tracked(x: np.ndarray, *a: object, **kw: object) -> tuple[np.ndarray, np.ndarray]:
        if noise_seed["seed"] is not None:
            x = x + 1e-7 * np.random.default_rng(noise_seed["seed"]).standard_normal(x.size)
        return original_track(x, *a, **kw)
    seen: dict[str, object] = {"cpu": 0.0, "wall": 0.0}

    def timed(audio: np.ndarray, sr: int, edit: world.WorldEdit, **kw: object) -> np.ndarray:
        t0, w0 = time.process_time(), time.perf_counter()
        out = original(audio, sr, edit, **kw)
        seen["cpu"] = float(seen["cpu"]) + time.process_time() - t0
        seen["wall"] = float(seen["wall"]) + time.perf_counter() - w0
        seen["in"], seen["out"] = np.asarray(audio).copy(), out
        return out

    world.reshape = timed
    world.track_f0 = tracked
    try:
        print(f"CPU (process time) and wall per second of speech, {len(LINES)} emotional lines, {args.repeats} rounds:")
        for rnd in range(args.repeats):
            for name, be in backends.items():
                seen["cpu"] = seen["wall"] = 0.0
                total = wall = dur = 0.0
                for (text, _), v in zip(LINES, vads):
                    t0, w0 = time.process_time(), time.perf_counter()
                    sp = be.synthesize(text, v, seed=0)
                    total += time.process_time() - t0
                    wall += time.perf_counter() - w0
                    dur += sp.duration
                print(f"  round {rnd} {name:>22}: {dur:.1f} s of speech, TTS CPU {total / dur:.3f} wall {wall / dur:.3f} "
                      f"s/s, WORLD CPU {float(seen['cpu']) / dur:.3f} wall {float(seen['wall']) / dur:.3f} s/s", flush=True)

        def judge(x: np.ndarray) -> np.ndarray:
            return pw.harvest(np.asarray(x, np.float64), 22050, f0_floor=50.0, f0_ceil=500.0, frame_period=5.0)[0]

        print(f"pitch WORLD gave, per frame against the unedited audio ({len(PITCH_LINES)} lines; Harvest 50-500 Hz):")
        checks = [(name, be, None) for name, be in backends.items()]
        checks += [(f"shipped, -140 dB noise {k}", backends["shipped"], k) for k in range(1, args.controls + 1)]
        for name, be, seed in checks:
            noise_seed["seed"] = seed
            row = []
            for arousal in (-0.8, 0.8):
                shifts, voiced, per_line = [], [], []
                for text in PITCH_LINES:
                    be.synthesize(text, VAD(0.0, arousal, 0.0))
                    a, b = judge(seen["in"]), judge(seen["out"])
                    both = (a > 0) & (b > 0)
                    d = 12.0 * np.log2(b[both] / a[both])
                    shifts.append(d)
                    voiced.append(b[b > 0])
                    per_line.append(f"{np.median(d):+.1f}")
                d, v = np.concatenate(shifts), np.concatenate(voiced)
                row.append(f"a={arousal:+.1f}: {np.median(d):+.2f} st (lines {' '.join(per_line)}), "
                           f"jumps up {100 * np.mean(d > 7.0):.1f} %, down {100 * np.mean(d < np.median(d) - 7.0):.1f} %, below 70 Hz {100 * np.mean(v < 70.0):.1f} %")
            print(f"  {name:>22}: " + " | ".join(row), flush=True)
    finally:  # the module's function back, whatever happened
        world.reshape = original
        world.track_f0 = original_track
    print("rerun: .venv/bin/python bench/world_bench.py " + " ".join(shlex.quote(a) for a in sys.argv[1:]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
