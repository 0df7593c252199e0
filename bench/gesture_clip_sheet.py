"""Look at one clip's body motion from several gesture models side by side: a contact sheet and a hand-speed plot.

    .venv/bin/python bench/gesture_clip_sheet.py --wav data/heldout_mixed/heldout_7_000011.wav \\
        --model weights/gesture --model /tmp/new_gesture --sheet out/clip_sheet.png --plot out/clip_speed.png

Each model runs as the pipeline runs it (`motion_from_features`: repertoire layer, and the body-language layer
for weights that did not learn it), seed 0, at the VAD in `<stem>.vad.json` beside the WAV (else --vad), with
the timeline `<stem>.json` beside it when present (add --no-timeline for the audio-only path). `--teacher` adds
the procedural teacher as a row. The sheet has one row per model and one column per chosen frame (evenly
spread primary-stressed vowels of the timeline, as `avatar.gesture.prosody.stress_events` finds them, else
evenly spaced times), each labelled with the words said around it; the plot has both wrists' summed speed per
model over the clip with the stressed vowels as grey lines. Both files are written atomically.
Printed per model: beat alignment against the stressed vowels and against the audio onsets (BEAT metric,
checks.beat_alignment), mean hand speed during speech, the longest stretch of speech with the hands nearly
still (< 3 cm/s: a frozen pose) and the wrists' jerk p95 (jitter).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

STILL_M_S = 0.03


def stressed_times(timeline, duration: float) -> np.ndarray:
    """Times (s) within `duration` of the timeline's primary-stressed vowels (`stress_events`, weight 1), or of
    all its events (content-word starts) when it marks no primary stress; none without a timeline."""
    from avatar.gesture.prosody import stress_events

    if timeline is None:
        return np.zeros(0)
    t, w = stress_events(timeline)
    if np.any(w >= 1.0):
        t = t[w >= 1.0]
    return t[t < duration]


def longest_still(speed: np.ndarray, speech: np.ndarray, fps: float) -> float:
    """Longest run (s) of speech frames in which the wrists' summed speed stays below STILL_M_S."""
    best = run = 0
    for v, sp in zip(speed, speech):
        run = run + 1 if (sp and v < STILL_M_S) else 0
        best = max(best, run)
    return best / fps


def wrist_jerk_p95(motion) -> float:
    """95th percentile of both wrists' jerk magnitude (m/s^3)."""
    from avatar.gesture.checks import hand_points

    pts, _ = hand_points(motion)
    w = pts[:, [0, 2]]
    j = np.linalg.norm(np.diff(w, n=3, axis=0), axis=-1) * motion.fps ** 3
    return float(np.percentile(j, 95)) if j.size else 0.0


def main() -> None:
    """Make the motions, print their figures, write the sheet and the plot."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--wav", required=True)
    p.add_argument("--model", action="append", default=[], help="a gesture model folder (repeat for more)")
    p.add_argument("--teacher", action="store_true", help="add the procedural teacher as a row")
    p.add_argument("--vad", type=float, nargs=3, default=None, help="VAD when no <stem>.vad.json is beside the WAV")
    p.add_argument("--no-timeline", action="store_true", help="ignore <stem>.json (the audio-only path)")
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--sheet", default=None, help="contact sheet PNG")
    p.add_argument("--plot", default=None, help="hand-speed plot PNG")
    args = p.parse_args()
    print("rerun with:\n    .venv/bin/python bench/gesture_clip_sheet.py " + " ".join(sys.argv[1:]))
    if not args.model and not args.teacher:
        sys.exit("give at least one --model or --teacher")

    from avatar.audio import load_audio
    from avatar.gesture import checks
    from avatar.gesture.generate import load_gesture_model, motion_from_features
    from avatar.gesture.prosody import prosody_features
    from avatar.gesture.teacher import teacher_motion, vad_per_frame
    from avatar.gesture.train import read_vad_json
    from avatar.types import VAD, Timeline

    wav = Path(args.wav)
    audio, sr = load_audio(wav)
    tl_path, vad_path = wav.with_suffix(".json"), wav.with_suffix(".vad.json")
    timeline = Timeline.from_json(tl_path) if tl_path.is_file() and not args.no_timeline else None
    vad = VAD(*args.vad) if args.vad else read_vad_json(vad_path) if vad_path.is_file() else VAD.neutral()
    feat = prosody_features(audio, sr, 30.0, timeline=timeline)
    vad_f = vad_per_frame(vad, feat.num_frames, feat.fps)
    stress = stressed_times(timeline, feat.duration)
    print(f"{wav.name}: {feat.duration:.1f} s, VAD {vad}, timeline {'yes' if timeline else 'no'}, "
          f"{len(stress)} stressed vowels, {len(feat.onsets)} onsets")

    rows: list[tuple[str, object]] = []
    if args.teacher:
        rows.append(("teacher", teacher_motion(feat, vad, seed=0, timeline=timeline)))
    for folder in args.model:
        net = load_gesture_model(folder)
        rows.append((folder, motion_from_features(net, feat, vad_f, seed=0, timeline=timeline)))

    for name, m in rows:
        sp = checks.hand_speed(m)
        speech = np.asarray(feat.speech[: len(sp)], bool)
        ba_s = checks.beat_alignment(m, stress) if len(stress) else float("nan")
        print(f"{name}: beat alignment stressed vowels {ba_s:.3f}, onsets {checks.beat_alignment(m, feat.onsets):.3f}; "
              f"hand speed in speech {sp[speech].mean():.3f} m/s; longest still stretch in speech "
              f"{longest_still(sp, speech, m.fps):.2f} s; wrist jerk p95 {wrist_jerk_p95(m):.0f} m/s^3")

    times = stress if len(stress) >= args.frames else np.linspace(0.5, feat.duration - 0.5, args.frames)
    times = times[np.linspace(0, len(times) - 1, args.frames).round().astype(int)]
    if args.sheet:
        _sheet(args.sheet, rows, times, timeline)
    if args.plot:
        _plot(args.plot, rows, stress, feat, wav.name)


def _sheet(path: str, rows: list, times: np.ndarray, timeline) -> None:
    """One row per motion, one column per time, full framing, labelled with the time and the word said."""
    from PIL import Image, ImageDraw

    from avatar.io import atomic_path
    from avatar.render.renderer import Renderer
    from avatar.render.snapshot import expression_row
    from avatar.rig.kinematics import rotations_in_skeleton_order
    from avatar.rig.skeleton import HUMANOID

    w, h = 200, 300
    sheet = Image.new("RGB", (w * len(times), h * len(rows)), "white")
    with Renderer(None, w, h, framing="full") as r:
        for i, (name, m) in enumerate(rows):
            rot = rotations_in_skeleton_order(m).astype(np.float64)
            for j, t in enumerate(times):
                k = min(m.num_frames - 1, int(round(t * m.fps)))
                img = Image.fromarray(r.render(expression_row("neutral"), (HUMANOID.joints, rot[k],
                                                                          m.root_position[k].astype(np.float64))))
                said = [wd.word for wd in timeline.words if wd.start - 0.05 <= t <= wd.end + 0.05] if timeline else []
                d = ImageDraw.Draw(img)
                d.text((4, 4), f"{t:.2f}s {' '.join(said[:2])}", fill=(0, 0, 0))
                if j == 0:
                    d.text((4, h - 14), Path(name).name or name, fill=(160, 0, 0))
                sheet.paste(img, (w * j, h * i))
    with atomic_path(path) as tmp:  # never half a PNG where an old one was
        sheet.save(tmp, format="PNG")
    print(f"contact sheet: {path} (rows: {', '.join(n for n, _ in rows)})")


def _plot(path: str, rows: list, stress: np.ndarray, feat, title: str) -> None:
    """Wrists' summed speed per motion over time, stressed vowels as grey lines, speech shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from avatar.gesture import checks
    from avatar.io import atomic_path

    fig, axes = plt.subplots(len(rows), 1, figsize=(12, 2.2 * len(rows)), sharex=True, squeeze=False)
    t = np.arange(feat.num_frames) / feat.fps
    for ax, (name, m) in zip(axes[:, 0], rows):
        sp = checks.hand_speed(m)
        ax.fill_between(t, 0, np.asarray(feat.speech, float) * max(sp.max(), 1e-3), color="#eef", step="mid")
        for s in stress:
            ax.axvline(s, color="0.6", lw=0.8)
        ax.plot(np.arange(len(sp)) / m.fps, sp, color="C3", lw=1.2)
        ax.set_ylabel("m/s")
        ax.set_title(f"{Path(name).name or name}: wrists' summed speed (grey: stressed vowels, blue: speech)",
                     fontsize=9)
    axes[-1, 0].set_xlabel(f"seconds ({title})")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)
    print(f"plot: {path}")


if __name__ == "__main__":
    main()
