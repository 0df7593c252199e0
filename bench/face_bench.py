"""Benchmark the face teacher and features: lip sync, blinks, expression response, speed.

    .venv/bin/python bench/face_bench.py [--seconds 120] [--seed 0]

Prints, on random phoneme timelines with speech-like durations and pauses:
- lip sync of the teacher vs a no-coarticulation baseline measured in the same run (viseme targets switched
  at phoneme boundaries): share of p/b/m with the lips sealed on a frame, Pearson r of mouth openness
  (jawOpen - mouthClose) against the phoneme truth (each phoneme's target openness held over its span),
  mean frame-to-frame change (smoothness);
- blink rate (per minute) silent, speaking, aroused; blink length;
- smile and eye-widening responses along valence and arousal;
- real-time factors of the teacher and of the feature extractor, against a plain scipy STFT log-mel.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

VOWELS = ("aa", "E", "ih", "oh", "ou")
CONSONANTS = ("PP", "FF", "TH", "DD", "kk", "CH", "SS", "nn", "RR")


def random_timeline(seconds: float, rng: np.random.Generator):
    """Syllables (C)V(C) with speech-like durations, phrases of 1-3 s separated by 0.2-0.8 s pauses."""
    from avatar.types import Timeline

    t, ph = 0.3, []
    while t < seconds - 1.0:
        phrase_end = min(seconds - 0.5, t + rng.uniform(1.0, 3.0))
        while t < phrase_end:
            for kind in ("C", "V", "C"):
                if kind == "C" and rng.uniform() < 0.4:
                    continue
                vis = rng.choice(VOWELS) if kind == "V" else rng.choice(CONSONANTS)
                dur = rng.uniform(0.07, 0.18) if kind == "V" else rng.uniform(0.03, 0.09)
                ph.append({"phoneme": str(vis).lower(), "viseme": str(vis), "start": round(t, 4),
                           "end": round(t + dur, 4)})
                t += dur
        t += rng.uniform(0.2, 0.8)
    return Timeline(sample_rate=16000, duration=seconds, phonemes=ph)


def lip_sync(tl, frames: np.ndarray, fps: float) -> tuple[float, float, float]:
    """(share of p/b/m with a sealed frame, Pearson r of openness vs truth, mean |frame change|)."""
    from avatar.face.visemes import IDX, VISEME_TARGETS
    from avatar.types import VISEMES

    n = frames.shape[0]
    t = np.arange(n) / fps
    opn = frames[:, IDX["jawOpen"]] - frames[:, IDX["mouthClose"]]
    truth = np.zeros(n)
    sealed = total = 0
    for p in tl.phonemes:
        tgt = VISEME_TARGETS[VISEMES.index(p.viseme)]
        inside = (t >= p.start) & (t < p.end)
        truth[inside] = tgt[IDX["jawOpen"]] - tgt[IDX["mouthClose"]]
        if p.viseme == "PP":  # frames inside the /p/, or the frame nearest its middle if none is
            total += 1
            idx = np.nonzero(inside)[0]
            if idx.size == 0:
                idx = np.array([min(n - 1, int(round((p.start + p.end) / 2 * fps)))])
            sealed += bool(opn[idx].min() <= 0.02)
    r = float(np.corrcoef(opn, truth)[0, 1])
    return sealed / max(total, 1), r, float(np.abs(np.diff(frames[:, :52], axis=0)).mean())


def step_baseline(tl, fps: float, n: int) -> np.ndarray:
    """Viseme targets switched at phoneme boundaries, sampled at frame times (no coarticulation)."""
    from avatar.face.visemes import VISEME_TARGETS
    from avatar.types import VISEMES

    t = np.arange(n) / fps
    out = np.zeros((n, 52))
    for p in tl.phonemes:
        out[(t >= p.start) & (t < p.end)] = VISEME_TARGETS[VISEMES.index(p.viseme)]
    return out


def count_blinks(blink: np.ndarray) -> int:
    closed = blink > 0.5
    return int(np.sum(closed[1:] & ~closed[:-1]) + closed[0])


def main() -> None:
    """Run the benchmark and print its figures."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=120.0)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    from avatar.face.expression import expression_weights
    from avatar.face.features import compute_features
    from avatar.face.idle import idle_motion
    from avatar.face.teacher import teacher_motion
    from avatar.types import VAD

    fps = 30.0
    rng = np.random.default_rng(args.seed)
    tl = random_timeline(args.seconds, rng)
    n = int(round(tl.duration * fps))
    teacher_motion(tl, VAD(0.3, 0.2, 0.0), fps=fps, seed=args.seed)  # warm-up (imports)
    t0 = time.perf_counter()
    face = teacher_motion(tl, VAD(0.3, 0.2, 0.0), fps=fps, seed=args.seed)
    teacher_s = time.perf_counter() - t0
    ours = lip_sync(tl, face.frames[:, :52], fps)
    base = lip_sync(tl, step_baseline(tl, fps, n), fps)
    n_pp = sum(p.viseme == "PP" for p in tl.phonemes)
    print(f"lip sync on {args.seconds:.0f} s of random speech ({len(tl.phonemes)} phonemes, {n_pp} p/b/m), 30 fps")
    print(f"  p/b/m sealed:        teacher {ours[0] * 100:5.1f} %   step baseline {base[0] * 100:5.1f} %")
    print(f"  openness Pearson r:  teacher {ours[1]:.3f}     step baseline {base[1]:.3f}   "
          f"(ratio {ours[1] / base[1]:.2f}x; the baseline *is* the truth sampled, so 1.0 minus aliasing)")
    print(f"  mean |frame change|: teacher {ours[2]:.4f}    step baseline {base[2]:.4f}   "
          f"(ratio {ours[2] / base[2]:.2f}x, lower is smoother)")

    minutes = 10.0
    m = int(minutes * 60 * fps)
    rates = {}
    for name, kw in (("silent, calm", dict(arousal=0.0)), ("speaking", dict(arousal=0.0, activity=np.ones(m))),
                     ("silent, arousal 0.9", dict(arousal=0.9)), ("silent, arousal -0.9", dict(arousal=-0.9))):
        counts = [count_blinks(idle_motion(m, fps, seed=s, **kw).blink) / minutes for s in range(3)]
        rates[name] = float(np.mean(counts))
    print(f"blinks per minute (mean of 3 x {minutes:.0f} min): " +
          ", ".join(f"{k} {v:.1f}" for k, v in rates.items()) + "   (rest target 15-20, Bentivoglio 1997: 17)")
    b = idle_motion(int(120 * fps * 2), fps * 2, seed=1).blink  # 60 fps for the duration estimate
    closed = b > 0.5
    print(f"  blink lid-closed (>50 %) time: {closed.sum() / max(1, count_blinks(b)) / (fps * 2) * 1000:.0f} ms per blink")

    vs = np.linspace(-1, 1, 5)
    smile = [float(expression_weights(VAD(v, 0.3, 0.0))[23]) for v in vs]
    wide = [float(expression_weights(VAD(0.0, a, 0.0))[6]) for a in vs]
    print("mouthSmileLeft at valence " + " ".join(f"{v:+.1f}:{s:.2f}" for v, s in zip(vs, smile)))
    print("eyeWideLeft at arousal    " + " ".join(f"{a:+.1f}:{w:.2f}" for a, w in zip(vs, wide)))

    sr = 16000
    audio = (rng.normal(size=int(args.seconds * sr)) * 0.05).astype(np.float32)
    compute_features(audio[:sr], sr)  # warm-up (filterbank)
    t0 = time.perf_counter()
    compute_features(audio, sr, fps=fps)
    feat_s = time.perf_counter() - t0
    from scipy.signal import stft

    from avatar.face.features import _filterbank

    fb = _filterbank(1024, 80, 20.0, 8000.0, sr)
    t0 = time.perf_counter()
    _, _, z = stft(audio, fs=sr, nperseg=512, noverlap=512 - 267, nfft=1024)  # integer hop: drifts vs 30 fps
    np.log((np.abs(z) ** 2).T.astype(np.float32) @ fb + 1e-6)
    base_s = time.perf_counter() - t0
    print(f"speed: teacher RTF {teacher_s / args.seconds:.4f}; features RTF {feat_s / args.seconds:.4f} "
          f"(log-mel + energy + F0) vs scipy STFT log-mel only {base_s / args.seconds:.4f} "
          f"(ratio {feat_s / base_s:.2f}x)")
    print("targets: p/b/m sealed >= 95 %, blink rate at rest 15-20/min, features RTF < 0.02")
    print(f"rerun: .venv/bin/python bench/face_bench.py --seconds {args.seconds:g} --seed {args.seed}")


if __name__ == "__main__":
    main()
