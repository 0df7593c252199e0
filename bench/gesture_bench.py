"""Benchmark body motion: beat alignment, arousal -> speed, length, physical sanity, diversity, speed (RTF).

    .venv/bin/python bench/gesture_bench.py [--clips 6] [--seconds 10] [--wav A.wav B.wav ...] [--model DIR]

Audio: synthetic syllable trains with known onsets (avatar.gesture.signals), or your WAV files with --wav
(e.g. the held-out split of `python -m avatar.tts.corpus`); a timeline `<stem>.json` beside a WAV is used as
the pipeline uses it (teacher beats, the model's stress channel).
For the procedural teacher (and, with --model, a trained denoiser) it prints:
- beat alignment (BEAT metric, sigma 0.1 s) of the motion against its own audio's onsets and, as the
  baseline measured in the same run, against another clip's onsets; their difference and ratio;
- mean upper-body joint speed at arousal +0.8 and -0.8 and their ratio (goal >= 1.5);
- length error against the audio (goal <= 0.1 s);
- physical sanity over all clips: NaN, worst joint-limit excursion, foot sliding (cm/s), jerk p95, hands in
  the torso;
- diversity: mean pairwise distance of joint positions (m) between 5 seeds (APD);
- real-time factor of prosody + motion (goal <= 0.3), and of BVH / glTF export;
- with --model, the whole `avatar gesture` process (start-up included) on one clip and on all clips joined.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _clips(args: argparse.Namespace) -> list[tuple[str, np.ndarray, int]]:
    from avatar.audio import load_audio
    from avatar.gesture.signals import syllable_audio, syllable_times

    if args.wav:
        return [(Path(w).name, *load_audio(w, 16000)) for w in args.wav]
    out = []
    for i in range(args.clips):
        times = syllable_times(1000 + i, args.seconds)
        out.append((f"synthetic{i}", syllable_audio(times, args.seconds, 16000, seed=i), 16000))
    return out


def _timelines(args: argparse.Namespace, n: int) -> list:
    """The timeline `<stem>.json` beside each --wav file, or None."""
    from avatar.types import Timeline

    if not args.wav:
        return [None] * n
    paths = [Path(w).with_suffix(".json") for w in args.wav]
    return [Timeline.from_json(p) if p.is_file() else None for p in paths]


def _apd(motions: list) -> float:
    from avatar.rig.kinematics import forward_kinematics

    pos = [forward_kinematics(m) for m in motions]
    n = min(len(p) for p in pos)
    d = [np.linalg.norm(a[:n] - b[:n], axis=-1).mean() for a, b in itertools.combinations(pos, 2)]
    return float(np.mean(d))


def evaluate(name: str, make, clips: list, feats: list) -> None:
    """Print every figure for one motion generator make(features, vad, seed) -> BodyMotion."""
    from avatar.gesture import checks
    from avatar.types import VAD

    print(f"\n== {name} ==")
    ba_true, ba_other, speed_hi, speed_lo, len_err = [], [], [], [], []
    worst = {"nan": 0, "limit_deg": 0.0, "slide_cm_s": 0.0, "jerk_p95": 0.0, "hand_in_torso": 0.0}
    t_gen, audio_s = 0.0, 0.0
    apd = []
    for i, ((cname, audio, sr), feat) in enumerate(zip(clips, feats)):  # noqa: B007
        other = feats[(i + 1) % len(feats)]
        for a in (-0.8, 0.0, 0.8):
            t0 = time.perf_counter()
            m = make(feat, VAD(0.0, a, 0.0), 0)
            t_gen += time.perf_counter() - t0
            audio_s += len(audio) / sr
            ba_true.append(checks.beat_alignment(m, feat.onsets))
            ba_other.append(checks.beat_alignment(m, other.onsets))
            (speed_hi if a > 0 else speed_lo if a < 0 else []).append(checks.mean_joint_speed(m))
            len_err.append(abs(m.duration - len(audio) / sr))
            r = checks.sanity_report(m)
            worst["nan"] += r["nan"]
            worst["limit_deg"] = max(worst["limit_deg"], max(r["limit_violations"].values(), default=0.0))
            worst["slide_cm_s"] = max(worst["slide_cm_s"], r["foot_sliding_cm_s"])
            worst["jerk_p95"] = max(worst["jerk_p95"], r["jerk_p95"])
            worst["hand_in_torso"] = max(worst["hand_in_torso"], r["hand_in_torso"])
        if i < 2:
            apd.append(_apd([make(feat, VAD(0.3, 0.3, 0.0), s) for s in range(5)]))
    bt, bo = float(np.mean(ba_true)), float(np.mean(ba_other))
    print(f"beat alignment: true audio {bt:.3f}  other clip (baseline) {bo:.3f}  difference {bt - bo:+.3f}  "
          f"ratio {bt / max(bo, 1e-9):.2f}  (goal: difference >= 0.05)")
    hi, lo = float(np.mean(speed_hi)), float(np.mean(speed_lo))
    print(f"mean joint speed: arousal +0.8 {hi:.4f} m/s, -0.8 {lo:.4f} m/s, ratio {hi / max(lo, 1e-9):.2f}"
          "  (goal >= 1.5)")
    print(f"length error: max {max(len_err):.3f} s  (goal <= 0.1)")
    print(f"sanity (worst over {len(ba_true)} motions): NaN {worst['nan']}, joint-limit excursion "
          f"{worst['limit_deg']:.2f} deg, foot sliding {worst['slide_cm_s']:.3f} cm/s, jerk p95 "
          f"{worst['jerk_p95']:.1f} m/s^3, hand-in-torso frames {worst['hand_in_torso']:.3f}")
    print(f"diversity across 5 seeds (APD): {np.mean(apd):.4f} m")
    print(f"real-time factor (prosody excluded): {t_gen / audio_s:.4f}")


def main() -> None:
    """Run the benchmark and print its figures."""
    p = argparse.ArgumentParser()
    p.add_argument("--clips", type=int, default=6)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--wav", nargs="*", default=None, help="use these audio files instead of synthetic clips")
    p.add_argument("--model", default=None, help="a trained gesture model folder (weights/gesture)")
    p.add_argument("--steps", type=int, default=10)
    args = p.parse_args()
    cmd = "    .venv/bin/python bench/gesture_bench.py " + " ".join(sys.argv[1:])
    print("rerun with:\n" + cmd)

    from avatar.gesture.bvh import write_bvh
    from avatar.gesture.gltf import write_gltf
    from avatar.gesture.prosody import prosody_features
    from avatar.gesture.teacher import teacher_motion
    from avatar.types import VAD

    clips = _clips(args)
    if len(clips) < 2:
        sys.exit("need at least two clips (the other clip is the baseline)")
    prosody_features(clips[0][1][:16000], clips[0][2], 30.0)  # warm-up: imports and first-call set-up
    t0 = time.perf_counter()
    timelines = _timelines(args, len(clips))
    feats = [prosody_features(a, sr, 30.0, timeline=tl) for (_, a, sr), tl in zip(clips, timelines)]
    total = sum(len(a) / sr for _, a, sr in clips)
    rtf = (time.perf_counter() - t0) / total
    n_tl = sum(tl is not None for tl in timelines)
    print(f"{len(clips)} clips ({n_tl} with a timeline), {total:.1f} s of audio; prosody real-time factor {rtf:.4f}")
    timeline_of = {id(f): tl for f, tl in zip(feats, timelines)}

    evaluate("procedural teacher", lambda f, v, s: teacher_motion(f, v, seed=s, timeline=timeline_of[id(f)]),
             clips, feats)

    m = teacher_motion(feats[0], VAD(0.3, 0.3, 0.0), seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        write_bvh(Path(tmp) / "a.bvh", m)
        t1 = time.perf_counter()
        write_gltf(Path(tmp) / "a.glb", m)
        t2 = time.perf_counter()
    print(f"export of {m.duration:.1f} s: BVH {1000 * (t1 - t0):.1f} ms, glTF {1000 * (t2 - t1):.1f} ms")

    if args.model:
        import torch

        from avatar.gesture.model import GestureDenoiser, generate

        torch.set_num_threads(max(1, torch.get_num_threads()))
        model = GestureDenoiser.from_pretrained(args.model)
        evaluate(f"diffusion model {args.model} ({args.steps} steps)",
                 lambda f, v, s: generate(model, f, v, seed=s, steps=args.steps), clips, feats)
        _whole_process(args.model, clips)


def _whole_process(model: str, clips: list) -> None:
    """Time the whole `avatar gesture` process (start-up and model loading included) on one clip and on all joined."""
    import os
    import subprocess

    from avatar.audio import resample as resample_audio
    from avatar.audio import save_wav

    avatar = ROOT / ".venv" / "bin" / "avatar"
    if not avatar.exists():
        return
    sr = clips[0][2]
    joined = np.concatenate([a if r == sr else resample_audio(a, r, sr) for _, a, r in clips])
    with tempfile.TemporaryDirectory() as tmp:
        save_wav(Path(tmp) / "one.wav", clips[0][1], clips[0][2])
        save_wav(Path(tmp) / "all.wav", joined, sr)
        for name, dur in (("one.wav", len(clips[0][1]) / clips[0][2]), ("all.wav", len(joined) / sr)):
            t0 = time.perf_counter()
            subprocess.run([str(avatar), "gesture", "--audio", str(Path(tmp) / name), "--model", model,
                            "-o", str(Path(tmp) / "g.bvh")], check=True, capture_output=True, env=dict(os.environ))
            whole = time.perf_counter() - t0
            print(f"whole `avatar gesture` process on {dur:.1f} s of audio: {whole:.2f} s, real-time factor "
                  f"{whole / dur:.3f} (goal <= 0.3; start-up and model loading included)")


if __name__ == "__main__":
    main()
