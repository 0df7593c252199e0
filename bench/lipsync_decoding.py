"""How the face stage reads the viseme network: the decoding choices, scored on clips the choice may be tuned on.

    .venv/bin/python bench/lipsync_decoding.py --data data/corpus_mixed --start 500 --clips 60 \
        [--lipsync weights/lipsync] [--levels none,0.5,0.6,0.7,0.8] [--taus 0.08,0.06,0.04]

Run it on training clips (a slice of the corpus the network was trained on, or fresh clips of the training split
made with `python -m avatar.tts.corpus --split train --seed N`), never on the held-out sets that
bench/face_model_bench.py reports. For each clip the face is composed exactly as `generate_face` does from audio
alone (`generate.express` with the network's soft mouth and its estimated timeline), on a still head: the
denoiser only moves the head, which the mouth scores do not read. Printed per decoding:
- openness r and p/b/m sealed, as bench/face_model_bench.py scores them (bench/face_bench.py's `lip_sync`);
- motion: mean |change| of the 52 blendshapes per frame (a jittery mouth scores higher);
- r against the teacher's mouth: openness correlated with the same face composed from the clip's true phoneme
  timeline (one-hot posteriors through the same coarticulation): does the decoding look like the face the
  timeline gives, or only like the metric's step-shaped truth?
- the same openness r over the neural voice's clips and over the eSpeak NG clips apart (the folder's
  manifest.jsonl), and a first row for the teacher's mouth itself: the r a network that never errs would get.
Rows: the p/b/m edge level (`viseme_net.PP_EDGE_LEVEL`; none = the run's frame boundaries, the decoding before),
then the coarticulation time constants (tau before; tau after = 0.75 x) at the shipped level.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from face_bench import lip_sync  # noqa: E402  (the face benchmarks' scoring)


def main() -> None:
    """Score the decodings and print one row each."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--start", type=int, default=0)
    ap.add_argument("--clips", type=int, default=60)
    ap.add_argument("--lipsync", type=Path, default=None, help="viseme network folder (default: weights/lipsync)")
    ap.add_argument("--levels", default="none,0.5,0.6,0.7,0.8")
    ap.add_argument("--taus", default="0.08,0.06,0.04")
    args = ap.parse_args()
    print("rerun: .venv/bin/python bench/lipsync_decoding.py " + " ".join(sys.argv[1:]))

    from threadpoolctl import threadpool_limits

    from avatar.audio import load_audio
    from avatar.face.features import compute_features, frames_for
    from avatar.face.generate import express, lip_model
    from avatar.face.lipsync import frame_labels
    from avatar.face.viseme_net import PP_EDGE_LEVEL, estimate_timeline, viseme_posteriors
    from avatar.face.visemes import DEFAULT, Coarticulation, mouth_openness, posterior_mouth_curves
    from avatar.tts.corpus import NEURAL_VOICE, read_manifest
    from avatar.types import FACE_CHANNELS, VAD, VISEMES, FaceMotion, Timeline

    threadpool_limits(limits=1, user_api="blas")
    net = lip_model(args.lipsync if args.lipsync is not None else True)
    fps = net.config.fps
    wavs = sorted(p for p in args.data.glob("*.wav") if p.with_suffix(".json").is_file())
    wavs = wavs[args.start:args.start + args.clips]
    if not wavs:
        sys.exit(f"no <id>.wav + <id>.json clips in {args.data}")
    t0 = time.perf_counter()
    clips = []
    for wav in wavs:
        audio, sr = load_audio(wav)
        n = frames_for(audio.size / sr, fps)
        feats = compute_features(audio, sr, fps=fps, num_frames=n)
        clips.append(dict(tl=Timeline.from_json(wav.with_suffix(".json")), sr=sr, n=n, feats=feats,
                          dur=audio.size / sr, probs=viseme_posteriors(net, feats.by_frame()),
                          vad=VAD(**json.loads((wav.parent / f"{wav.stem}.vad.json").read_text()))))

    def face(c: dict, probs: np.ndarray, tl: Timeline, cfg: Coarticulation) -> np.ndarray:
        still = FaceMotion(fps=fps, frames=np.zeros((c["n"], len(FACE_CHANNELS)), np.float32))
        out = express(still, c["vad"], 0, timeline=tl, features=c["feats"], estimated=True,
                      mouth=posterior_mouth_curves(probs, fps, c["n"], cfg))
        return out.frames[:, :52]

    for c in clips:  # the teacher's face: the true timeline's one-hot visemes, read the same way
        c["teacher"] = mouth_openness(face(c, np.eye(len(VISEMES))[frame_labels(c["tl"], c["n"], fps)], c["tl"],
                                           DEFAULT))
    voices = {k: str(rec.get("voice", "")) for k, rec in read_manifest(args.data / "manifest.jsonl").items()}
    known = np.array([w.stem in voices for w in wavs])
    neural = np.array([voices.get(w.stem) == NEURAL_VOICE for w in wavs])

    def by_voice(r: np.ndarray) -> str:
        return "   ".join(f"{name} {r[m].mean():.3f} ({m.sum()})" for name, m in
                           ((NEURAL_VOICE, neural), ("eSpeak NG", known & ~neural), ("voice unknown", ~known))
                           if m.any())

    def row(name: str, level: float | None, cfg: Coarticulation) -> None:
        sc, vs = [], []
        for c in clips:
            est = estimate_timeline(net, None, c["dur"], c["sr"], probs=c["probs"], pp_level=level)
            f = face(c, c["probs"], est, cfg)
            sc.append(lip_sync(c["tl"], f, fps))
            vs.append(np.corrcoef(mouth_openness(f), c["teacher"])[0, 1])
        s = np.array(sc)
        print(f"  {name:34s} openness r {s[:, 1].mean():.3f}   p/b/m sealed {s[:, 0].mean() * 100:5.1f} %   "
              f"motion {s[:, 2].mean() * 1000:.2f}e-3   r vs the teacher's mouth {np.mean(vs):.3f}   "
              f"r by voice: {by_voice(s[:, 1])}", flush=True)

    n_pp = sum(p.viseme == "PP" for c in clips for p in c["tl"].phonemes)
    print(f"{len(clips)} clips of {args.data} from {args.start}, {sum(c['dur'] for c in clips):.0f} s, {n_pp} p/b/m; "
          f"model {args.lipsync or 'weights/lipsync'} (features + posteriors {time.perf_counter() - t0:.0f} s)")
    ceiling = np.array([lip_sync(c["tl"], face(c, np.eye(len(VISEMES))[frame_labels(c["tl"], c["n"], fps)], c["tl"],
                                               DEFAULT), fps)[1] for c in clips])
    print(f"  {'the teacher (true timeline)':34s} openness r {ceiling.mean():.3f}   r by voice: {by_voice(ceiling)}")
    for lv in args.levels.split(","):
        level = None if lv.strip().lower() == "none" else float(lv)
        row(f"p/b/m edge level {lv}" + (" (shipped)" if level == PP_EDGE_LEVEL else ""), level, DEFAULT)
    for tau in (float(t) for t in args.taus.split(",")):
        cfg = Coarticulation(tau_before=tau, tau_after=0.75 * tau)
        row(f"tau {tau * 1000:.0f}/{tau * 750:.0f} ms, level {PP_EDGE_LEVEL}"
            + (" (shipped)" if cfg == DEFAULT else ""), PP_EDGE_LEVEL, cfg)


if __name__ == "__main__":
    main()
