"""Acceptance benchmark of the trained face model, from audio alone, on held-out voices and sentences.

    .venv/bin/python -m avatar.tts.corpus --out data/heldout --clips 120 --seed 1 --split heldout
    .venv/bin/python bench/face_model_bench.py --data data/heldout [--clips 60] [--model weights/face] \
        [--compare-model OTHER_FACE_MODEL] [--lipsync OTHER_LIPSYNC_MODEL]

The held-out split uses voices and EmoBank sentences that the training split never uses (docs/tts.md). For
each clip the model sees only the audio and the clip's VAD (no timeline); its mouth openness (jawOpen minus
mouthClose) is scored against the phoneme truth of the clip's timeline, as bench/face_bench.py scores the
teacher:
- Pearson r of openness against each phoneme's target openness held over its span (goal >= 0.55; Rhubarb Lip
  Sync scored 0.24 on such a set);
- share of p/b/m with the lips sealed on a frame (goal >= 60 %; Rhubarb 37 %);
- baseline in the same run: an energy lip-sync (openness = the clip's normalised RMS envelope, the classic
  amplitude-driven mouth), its r and closure, and our ratio to it;
- emotion: mean smile at valence -0.8 / 0 / +0.8 and brow-raise + eye-wide at arousal -0.8 / 0 / +0.8, on the
  same audio (must rise);
- real-time factor of generation (features + sampling + lip refinement) per clip, and of the whole `avatar face`
  process on one clip and on eight clips joined (start-up and model loading included; goal <= 0.3);
- "full" is the default path (diffusion, then lip refinement: the viseme network of face/lipsync.py, run by
  face/viseme_net.py, read softly through the coarticulation model); "diffusion only" is the denoiser's own mouth (lips=False); "argmax
  decoding" is the network's per-frame argmax runs used as a timeline, the previous default; "sealed on the p/b/m
  runs' frame boundaries" is the full path before the seal moved to sub-frame edges (viseme_net.PP_EDGE_LEVEL).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from face_bench import lip_sync  # noqa: E402  (the same scoring as the teacher's benchmark)


def energy_baseline(audio: np.ndarray, sr: int, n: int, fps: float) -> np.ndarray:
    """Frames [n, 52] whose openness is the normalised RMS envelope (an amplitude-driven mouth)."""
    from avatar.face.visemes import IDX

    hop = sr / fps
    rms = np.array([np.sqrt(np.mean(audio[int(i * hop):int((i + 1) * hop)] ** 2) + 1e-12) for i in range(n)])
    db = 20 * np.log10(rms + 1e-9)
    opn = np.clip((db - (db.max() - 40)) / 40, 0, 1)  # 40 dB range below the loudest frame
    out = np.zeros((n, 52))
    out[:, IDX["jawOpen"]] = opn * 0.6
    return out


def main() -> None:
    """Run the benchmark and print its figures."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=ROOT / "data" / "heldout")
    ap.add_argument("--model", type=Path, default=ROOT / "weights" / "face")
    ap.add_argument("--clips", type=int, default=60)
    ap.add_argument("--start", type=int, default=0, help="first clip (60 scores the clips the decoding was chosen on)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--lipsync", type=Path, action="append", default=[],
                    help="another viseme network folder to score in the same run (full path with it); repeatable")
    ap.add_argument("--compare-model", type=Path, action="append", default=[],
                    help="another face denoiser folder to score in the same run (full and diffusion only, the same "
                         "lip sync); repeatable")
    args = ap.parse_args()
    print("rerun: .venv/bin/python bench/face_model_bench.py " + " ".join(sys.argv[1:]))

    from threadpoolctl import threadpool_limits

    from avatar.audio import load_audio
    from avatar.face.expression import vad_frames
    from avatar.face.features import compute_features
    from avatar.face.generate import express, lip_model, generate_face, load_face_model, refine_lips
    from avatar.face.viseme_net import estimate_timeline, viseme_posteriors
    from avatar.face.visemes import IDX, posterior_mouth_curves
    from avatar.types import VAD, Timeline

    threadpool_limits(limits=args.threads, user_api="blas")  # for the rest of the run: inference is NumPy, no torch
    wavs = sorted(p for p in args.data.glob("*.wav") if p.with_suffix(".json").is_file())[args.start:args.start + args.clips]
    if not wavs:
        sys.exit(f"no <id>.wav + <id>.json clips in {args.data}: make them with the corpus command above")
    model = load_face_model(args.model)
    fps = model.config.fps
    ours, diff_only, base, hard, edges, secs, gen_s = [], [], [], [], [], 0.0, 0.0
    others: dict[Path, list] = {p: [] for p in args.lipsync}
    rivals = {p: (load_face_model(p), [], []) for p in args.compare_model}  # folder -> (model, full, diffusion only)
    generate_face(np.zeros(16000, np.float32), 16000, model=model)  # warm-up: loads the lip sync model once
    for wav in wavs:
        audio, sr = load_audio(wav)
        tl = Timeline.from_json(wav.with_suffix(".json"))
        vad = VAD(**json.loads((wav.parent / f"{wav.stem}.vad.json").read_text()))
        t0 = time.perf_counter()
        face = generate_face(audio, sr, vad, timeline=None, seed=args.seed, model=model)
        gen_s += time.perf_counter() - t0
        secs += audio.size / sr
        ours.append(lip_sync(tl, face.frames[:, :52], fps))
        for lips, scores in others.items():
            alt = generate_face(audio, sr, vad, timeline=None, seed=args.seed, model=model, lips=lips)
            scores.append(lip_sync(tl, alt.frames[:, :52], fps))
        for rival, full_sc, raw_sc in rivals.values():
            full_sc.append(lip_sync(tl, generate_face(audio, sr, vad, timeline=None, seed=args.seed,
                                                      model=rival).frames[:, :52], fps))
            raw_sc.append(lip_sync(tl, generate_face(audio, sr, vad, timeline=None, seed=args.seed, model=rival,
                                                     lips=False).frames[:, :52], fps))
        raw = generate_face(audio, sr, vad, timeline=None, seed=args.seed, model=model, lips=False)
        diff_only.append(lip_sync(tl, raw.frames[:, :52], fps))
        # The decoding used before: the argmax runs of the viseme network as a timeline, mouth from that timeline.
        feat_obj = compute_features(audio, sr, fps=fps, num_frames=raw.num_frames)
        feats = feat_obj.by_frame()
        probs = viseme_posteriors(lip_model(None), feats)
        argmax = refine_lips(raw, estimate_timeline(lip_model(None), feats, audio.size / sr, sr, probs=probs,
                                                    pp_level=None), vad_frames(vad, raw.num_frames, fps))
        hard.append(lip_sync(tl, argmax.frames[:, :52], fps))
        # The full path with the lips sealed on the p/b/m runs' frame boundaries (the seal before sub-frame edges):
        # the same sampled head, so only the decoding differs from "full".
        prev = express(raw, vad, args.seed, timeline=estimate_timeline(lip_model(None), feats, audio.size / sr, sr,
                                                                       probs=probs, pp_level=None),
                       features=feat_obj, mouth=posterior_mouth_curves(probs, fps, raw.num_frames), estimated=True)
        edges.append(lip_sync(tl, prev.frames[:, :52], fps))
        base.append(lip_sync(tl, energy_baseline(audio, sr, face.num_frames, fps), fps))
    o, d, b, h, e = np.array(ours), np.array(diff_only), np.array(base), np.array(hard), np.array(edges)
    n_pp = sum(p.viseme == "PP" for w in wavs for p in Timeline.from_json(w.with_suffix(".json")).phonemes)
    print(f"{len(wavs)} held-out clips, {secs:.0f} s of audio, {n_pp} p/b/m; audio only (no timeline), seed {args.seed}")
    print("  (full = diffusion + audio lip refinement, the default; diffusion only = lips=False)")
    print(f"  openness Pearson r (mean over clips): full {o[:, 1].mean():.3f}   diffusion only {d[:, 1].mean():.3f}   "
          f"energy baseline {b[:, 1].mean():.3f}   ratio full/baseline {o[:, 1].mean() / max(b[:, 1].mean(), 1e-9):.2f}x"
          "   (goal >= 0.55; Rhubarb 0.24)")
    print(f"  p/b/m sealed (mean over clips):      full {o[:, 0].mean() * 100:.1f} %   diffusion only "
          f"{d[:, 0].mean() * 100:.1f} %   energy baseline {b[:, 0].mean() * 100:.1f} %   (goal >= 60 %; Rhubarb 37 %)")
    print(f"  full, lips sealed on the p/b/m runs' frame boundaries (before sub-frame edges): openness r "
          f"{e[:, 1].mean():.3f}, p/b/m sealed {e[:, 0].mean() * 100:.1f} %")
    for lips, scores in others.items():
        sc = np.array(scores)
        print(f"  full with the lip sync model {lips}: openness r {sc[:, 1].mean():.3f}, p/b/m sealed "
              f"{sc[:, 0].mean() * 100:.1f} %")
    for folder, (_, full_sc, raw_sc) in rivals.items():
        f_, r_ = np.array(full_sc), np.array(raw_sc)
        print(f"  face model {folder}: openness r full {f_[:, 1].mean():.3f}   diffusion only {r_[:, 1].mean():.3f};   "
              f"p/b/m sealed full {f_[:, 0].mean() * 100:.1f} %   diffusion only {r_[:, 0].mean() * 100:.1f} %")
    print(f"  argmax decoding (the viseme network's runs as a timeline, the default before soft decoding): openness r "
          f"{h[:, 1].mean():.3f}, p/b/m sealed {h[:, 0].mean() * 100:.1f} %")
    print(f"  generation real-time factor, full ({args.threads} thread): {gen_s / secs:.3f}")

    audio, sr = load_audio(wavs[0])
    smile, brow = [], []
    levels = (-0.8, 0.0, 0.8)
    for v in levels:
        f = generate_face(audio, sr, VAD(v, 0.0, 0.0), seed=args.seed, model=model).frames
        smile.append(float(f[:, [IDX["mouthSmileLeft"], IDX["mouthSmileRight"]]].mean()))
    for a in levels:
        f = generate_face(audio, sr, VAD(0.0, a, 0.0), seed=args.seed, model=model).frames
        brow.append(float(f[:, [IDX["browInnerUp"], IDX["browOuterUpLeft"], IDX["browOuterUpRight"],
                                IDX["eyeWideLeft"], IDX["eyeWideRight"]]].mean()))
    print("  smile at valence  " + "  ".join(f"{v:+.1f}: {s:.3f}" for v, s in zip(levels, smile)) +
          f"   rises: {bool(np.all(np.diff(smile) >= -1e-3) and smile[-1] > smile[0] + 1e-3)}")
    print("  brow+eye-wide at arousal " + "  ".join(f"{a:+.1f}: {s:.3f}" for a, s in zip(levels, brow)) +
          f"   rises: {bool(np.all(np.diff(brow) >= -1e-3) and brow[-1] > brow[0] + 1e-3)}")

    # The denoiser's own face (lips=False, nothing composed after sampling) at each category's canonical VAD point:
    # does it carry the teacher's expressions (classifier-free guidance on VAD dials them)?
    from avatar.face.expression import CATEGORY_VAD

    def own_face(m: object) -> str:
        cells = []
        for lab in ("neutral", "happy", "sad", "angry", "fearful", "surprised", "disgusted"):
            f = generate_face(audio, sr, CATEGORY_VAD[lab], seed=args.seed, model=m, lips=False).frames

            def g(*names: str, f: np.ndarray = f) -> float:
                return float(np.mean([f[:, IDX[n]].mean() for n in names]))

            cells.append(f"{lab[:4]} smile {g('mouthSmileLeft', 'mouthSmileRight'):.2f} frown "
                         f"{g('mouthFrownLeft', 'mouthFrownRight'):.2f} innerBrow {g('browInnerUp'):.2f} browDown "
                         f"{g('browDownLeft', 'browDownRight'):.2f} eyeWide {g('eyeWideLeft', 'eyeWideRight'):.2f} "
                         f"stretch {g('mouthStretchLeft', 'mouthStretchRight'):.2f} sneer "
                         f"{g('noseSneerLeft', 'noseSneerRight'):.2f} blink max {f[:, IDX['eyeBlinkLeft']].max():.2f}")
        return "\n".join("    " + c for c in cells)

    print(f"  the denoiser's own face (diffusion only) at each category's VAD, {wavs[0].name}:\n{own_face(model)}")
    for folder, (rival, _, _) in rivals.items():
        print(f"  the same for {folder}:\n{own_face(rival)}")

    avatar = ROOT / ".venv" / "bin" / "avatar"
    if avatar.exists():
        from avatar.audio import save_wav

        with tempfile.TemporaryDirectory() as tmp:
            long_audio = np.concatenate([load_audio(w)[0] for w in wavs[:8]])  # same rate: one corpus
            save_wav(Path(tmp) / "long.wav", long_audio, sr)
            env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
            for clip, dur in ((wavs[0], audio.size / sr), (Path(tmp) / "long.wav", long_audio.size / sr)):
                t0 = time.perf_counter()
                subprocess.run([str(avatar), "face", "--audio", str(clip), "--model", str(args.model),
                                "-o", str(Path(tmp) / "f.json")], check=True, capture_output=True, env=env)
                whole = time.perf_counter() - t0
                print(f"  whole `avatar face` process on a {dur:.1f} s clip: {whole:.2f} s, real-time factor "
                      f"{whole / dur:.3f} (goal <= 0.3; start-up and model loading included)")


if __name__ == "__main__":
    main()
