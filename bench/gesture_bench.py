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
- with --model, the whole `avatar gesture` process (start-up included) on one clip and on all clips joined;
- body language (issue 24), for the teacher and, with --model, the model as the pipeline runs it (the
  body-language layer on top): per emotion (the 7 canonical VAD points of avatar.emotion.labels, same audio)
  head pitch, chest flexion, shoulder height, trunk lean and elbow spread, with the documented directions
  checked (PASS/FAIL); the hips' lateral travel over a 20 s line (goal >= 2 cm) with its foot sliding;
- with --sheet PNG, a contact sheet of the 7 postures in full framing (the model's when --model is given);
- variety (issue 24), on speech with timelines (the default TTS): over 6 different 4-6 s lines at one VAD, the
  mean pairwise distance of the hands' paths (palm centres relative to the hips' start, each line resampled to
  100 points; goal >= 2x the model without the repertoire layer, i.e. the pipeline before it, measured in the
  same run) and the pairs of lines whose longest-held hand positions coincide (goal none); within a 20 s
  monologue, the number of clearly different positions the hands hold (held_positions; goal >= 4);
  with --repertoire-sheet PNG, frames of the monologue where the repertoire's gestures and rest poses peak.
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
    for i, ((_cname, audio, sr), feat) in enumerate(zip(clips, feats)):
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
          "  (goal >= 2, issue 24)")
    print(f"length error: max {max(len_err):.3f} s  (goal <= 0.1)")
    print(f"sanity (worst over {len(ba_true)} motions): NaN {worst['nan']}, joint-limit excursion "
          f"{worst['limit_deg']:.2f} deg, foot sliding {worst['slide_cm_s']:.3f} cm/s, jerk p95 "
          f"{worst['jerk_p95']:.1f} m/s^3, hand-in-torso frames {worst['hand_in_torso']:.3f}")
    print(f"diversity across 5 seeds (APD): {np.mean(apd):.4f} m")
    print(f"real-time factor (prosody excluded): {t_gen / audio_s:.4f}")
    body_language_figures(make, feats[0])


EMOTIONS = ("neutral", "happy", "sad", "angry", "fearful", "surprised", "disgusted")


#: The documented directions (docs/gesture.md, "Body language"): (description, test on the measures).
POSTURE_CHECKS = (
    ("head pitch: sad at least 10 deg below happy", lambda m: m["sad"]["head_pitch"] - m["happy"]["head_pitch"] >= 10),
    ("head pitch: sad > neutral > happy", lambda m: m["sad"]["head_pitch"] > m["neutral"]["head_pitch"]
     > m["happy"]["head_pitch"]),
    ("chest flexion: sad > neutral > happy", lambda m: m["sad"]["chest_flex"] > m["neutral"]["chest_flex"]
     > m["happy"]["chest_flex"]),
    ("shoulders: fearful > angry > neutral > sad", lambda m: m["fearful"]["shoulder_cm"] > m["angry"]["shoulder_cm"]
     > m["neutral"]["shoulder_cm"] > m["sad"]["shoulder_cm"]),
    ("lean: angry forward of neutral, fearful behind it", lambda m: m["angry"]["lean_cm"] > m["neutral"]["lean_cm"]
     > m["fearful"]["lean_cm"]),
    ("elbows: happy wider than sad and fearful", lambda m: m["happy"]["elbow_spread_cm"]
     > max(m["sad"]["elbow_spread_cm"], m["fearful"]["elbow_spread_cm"])),
)


def body_language_figures(make, feat) -> None:
    """Posture per emotion on one clip (directions checked) and the weight shift over a 20 s line."""
    from avatar.emotion.labels import LABEL_VAD
    from avatar.gesture import checks
    from avatar.gesture.prosody import prosody_features
    from avatar.gesture.signals import syllable_audio, syllable_times
    from avatar.types import VAD

    meas = {e: checks.posture_measures(make(feat, LABEL_VAD[e], 0)) for e in EMOTIONS}
    print(f"posture on one {feat.duration:.1f} s clip (clip means): head pitch deg (+ down), chest flexion deg "
          "(+ forward), shoulders cm above the neck base, lean cm (head ahead of ankles), elbow spread cm")
    for e in EMOTIONS:
        m = meas[e]
        print(f"  {e:10s} head {m['head_pitch']:+6.1f}  chest {m['chest_flex']:+6.1f}  shoulders "
              f"{m['shoulder_cm']:+6.2f}  lean {m['lean_cm']:+6.2f}  elbows {m['elbow_spread_cm']:6.1f}")
    for desc, ok in POSTURE_CHECKS:
        print(f"  {'PASS' if ok(meas) else 'FAIL'}  {desc}")
    times = syllable_times(2024, 20.0)
    long = prosody_features(syllable_audio(times, 20.0, 16000, seed=7), 16000, 30.0)
    m = make(long, VAD(0.0, 0.0, 0.0), 0)
    x = m.root_position[:, 0]
    print(f"weight shift over a {m.duration:.1f} s line (neutral): hips lateral travel {100 * np.ptp(x):.1f} cm "
          f"(goal >= 2), path {100 * np.abs(np.diff(m.root_position, axis=0)).sum():.1f} cm; foot sliding "
          f"{checks.foot_sliding(m):.4f} cm/s (goal: none)")


def contact_sheet(path: str, make, feat, at: float = 1.0) -> None:
    """Render the 7 postures (frame at `at` s, face from the label) in full framing into `path`: a row from the
    front and a row with the figure turned 80 degrees (profile: lean and head pitch)."""
    from PIL import Image, ImageDraw

    from avatar.emotion.labels import LABEL_VAD
    from avatar.rig.kinematics import rotations_in_skeleton_order
    from avatar.rig.rotations import quat_apply, quat_from_axis_angle, quat_mul
    from avatar.rig.skeleton import HUMANOID
    from avatar.render.renderer import Renderer
    from avatar.render.snapshot import expression_row

    w, h = 320, 480
    sheet = Image.new("RGB", (w * len(EMOTIONS), 2 * h), "white")
    turn = quat_from_axis_angle(np.array([0.0, 1.0, 0.0]), 80.0)
    feet = HUMANOID.rest_positions[[HUMANOID.index("leftFoot"), HUMANOID.index("rightFoot")]].mean(axis=0)
    with Renderer(None, w, h, framing="full") as r:
        for i, e in enumerate(EMOTIONS):
            m = make(feat, LABEL_VAD[e], 0)
            k = min(m.num_frames - 1, int(at * m.fps))
            rot = rotations_in_skeleton_order(m)[k].astype(np.float64)
            root = m.root_position[k].astype(np.float64)
            for row in (0, 1):
                if row == 1:  # turn the whole figure about the point between its feet
                    rot[0] = quat_mul(turn, rot[0])
                    root = feet + quat_apply(turn, root - feet)
                img = Image.fromarray(r.render(expression_row(e), (HUMANOID.joints, rot, root)))
                ImageDraw.Draw(img).text((8, 8), e, fill=(0, 0, 0))
                sheet.paste(img, (w * i, h * row))
    sheet.save(path)
    print(f"contact sheet: {path} (frame at {at:.1f} s; top: front, bottom: turned 80 degrees)")


def main() -> None:
    """Run the benchmark and print its figures."""
    p = argparse.ArgumentParser()
    p.add_argument("--clips", type=int, default=6)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--wav", nargs="*", default=None, help="use these audio files instead of synthetic clips")
    p.add_argument("--model", default=None, help="a trained gesture model folder (weights/gesture)")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--baseline-model", default=None,
                   help="model folder for the variety baseline (default: --model, without the repertoire layer)")
    p.add_argument("--sheet", default=None, help="write a contact sheet of the 7 emotion postures to this PNG")
    p.add_argument("--repertoire-sheet", default=None, help="write a sheet of repertoire frames of the monologue")
    p.add_argument("--no-variety", action="store_true", help="skip the variety figures (they need the TTS)")
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

    evaluate("procedural teacher", lambda f, v, s: teacher_motion(f, v, seed=s, timeline=timeline_of.get(id(f))),
             clips, feats)

    m = teacher_motion(feats[0], VAD(0.3, 0.3, 0.0), seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        write_bvh(Path(tmp) / "a.bvh", m)
        t1 = time.perf_counter()
        write_gltf(Path(tmp) / "a.glb", m)
        t2 = time.perf_counter()
    print(f"export of {m.duration:.1f} s: BVH {1000 * (t1 - t0):.1f} ms, glTF {1000 * (t2 - t1):.1f} ms")

    def make_teacher(f, v, s):
        return teacher_motion(f, v, seed=s, timeline=timeline_of.get(id(f)))

    if args.model:
        from avatar.gesture.generate import load_gesture_model, motion_from_features
        from avatar.gesture.teacher import vad_per_frame

        net = load_gesture_model(args.model)

        def make_model(f, v, s):
            return motion_from_features(net, f, vad_per_frame(v, f.num_frames, f.fps), seed=s, steps=args.steps,
                                        timeline=timeline_of.get(id(f)))

        evaluate(f"diffusion model {args.model} ({args.steps} steps, as the pipeline runs it)", make_model, clips,
                 feats)
        _raw_model_speed(net, feats, args.steps)
        _whole_process(args.model, clips)
    if args.sheet:
        contact_sheet(args.sheet, make_model if args.model else make_teacher, feats[0])
    if not args.no_variety:
        variety_figures(args)


#: Six different lines of 4-6 s (said at one VAD) and a monologue of about 20 s, for the variety figures.
VARIETY_LINES = (
    "I honestly thought this would go better than it did, and now I am not sure what to say.",
    "Could you tell me where you found that old map, and why you kept it for so long?",
    "We have to finish the whole project before Friday, so everyone needs to help out.",
    "No, that is not what happened at the meeting, and you know it very well.",
    "The garden looks lovely in the morning light, with a little dew on every leaf.",
    "My brother moved to the coast last spring and he says the sea air suits him.",
)
MONOLOGUE = ("Let me tell you what happened yesterday. I went down to the harbour early. Nobody was there at "
             "first. Then a little girl asked me why I was waiting. I said I did not really know. She pointed at the "
             "whole sky, all pink and gold. Do you ever just stop and look? I think we should, every single day.")
VARIETY_VAD = (0.3, 0.4, 0.1)


def _hands(motion) -> np.ndarray:
    """Both hands' palm centres [T, 2, 3] (m) relative to the hips' first-frame position."""
    from avatar.rig.kinematics import fk, rotations_in_skeleton_order
    from avatar.rig.rotations import quat_apply
    from avatar.rig.skeleton import HUMANOID

    pos, glob = fk(rotations_in_skeleton_order(motion), motion.root_position)
    out = []
    for side, sign in (("left", 1.0), ("right", -1.0)):
        k = HUMANOID.index(side + "Hand")
        out.append(pos[:, k] + quat_apply(glob[:, k], np.array([sign * 0.08, 0.0, 0.0])))
    return np.stack(out, 1) - motion.root_position[:1, None].astype(np.float64)


def path_distance(a: np.ndarray, b: np.ndarray, samples: int = 100) -> float:
    """Mean distance (m) between two lines' hand paths [T, 2, 3], each resampled to `samples` points over its
    length, averaged over both hands."""
    def res(x: np.ndarray) -> np.ndarray:
        s = np.linspace(0, len(x) - 1, samples)
        flat = x.reshape(len(x), -1)
        return np.stack([np.interp(s, np.arange(len(x)), flat[:, c]) for c in range(flat.shape[1])], -1)
    d = np.linalg.norm((res(a) - res(b)).reshape(samples, 2, 3), axis=-1)
    return float(d.mean())


def held_positions(h: np.ndarray, fps: float, speed: float = 0.12, radius: float = 0.15,
                   min_s: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Clearly different positions the hands hold: centres [K, 2, 3] and seconds held [K], largest first.

    Frames where both hands move slower than `speed` m/s are grouped greedily (a frame joins the first centre
    within `radius` m for both hands, else starts one); centres held at least `min_s` s in all count."""
    v = np.linalg.norm(np.gradient(h, 1.0 / fps, axis=0), axis=-1).max(axis=1)
    centres: list[np.ndarray] = []
    counts: list[int] = []
    for x in h[v < speed]:
        for k, c in enumerate(centres):
            if (np.linalg.norm(x - c, axis=-1) < radius).all():
                counts[k] += 1
                break
        else:
            centres.append(x)
            counts.append(1)
    order = [k for k in np.argsort(counts)[::-1] if counts[k] >= min_s * fps]
    return np.asarray([centres[k] for k in order]).reshape(-1, 2, 3), np.asarray([counts[k] / fps for k in order])


def share_held_pose(a: np.ndarray, b: np.ndarray, fps: float, radius: float = 0.15) -> bool:
    """Two lines share one held pose: the positions each holds longest (held_positions) lie within `radius` m
    of each other for both hands."""
    ca, _ = held_positions(a, fps)
    cb, _ = held_positions(b, fps)
    return bool(len(ca) and len(cb) and (np.linalg.norm(ca[0] - cb[0], axis=-1) < radius).all())


def variety_figures(args: argparse.Namespace) -> None:
    """Hands' path distance and shared held poses over 6 lines at one VAD, held positions in a 20 s monologue:
    teacher, and with --model the pipeline's model path with and without the repertoire layer."""
    from avatar.gesture.prosody import prosody_features
    from avatar.gesture.teacher import teacher_motion, vad_per_frame
    from avatar.tts import synthesize
    from avatar.types import VAD

    vad = VAD(*VARIETY_VAD)
    speeches = [synthesize(t, vad) for t in (*VARIETY_LINES, MONOLOGUE)]
    feats = [prosody_features(sp.audio, sp.sample_rate, 30.0, timeline=sp.timeline) for sp in speeches]
    lens = ", ".join(f"{f.duration:.1f}" for f in feats[:-1])
    print(f"\n== variety (issue 24): 6 lines of {lens} s and a {feats[-1].duration:.1f} s monologue at VAD "
          f"{VARIETY_VAD}, seed 0, default TTS ==")
    makers = [("procedural teacher", lambda f, tl: teacher_motion(f, vad, seed=0, timeline=tl))]
    if args.model:
        from avatar.gesture.generate import SMOOTH_FRAMES, load_gesture_model, motion_from_features

        net = load_gesture_model(args.model)
        base = load_gesture_model(args.baseline_model) if args.baseline_model else net
        for label, n_, rep in (("model, no repertoire layer (the pipeline before it: baseline)", base, False),
                               ("model as the pipeline runs it (repertoire layer on)", net, True)):
            makers.append((label, lambda f, tl, n_=n_, rep=rep: motion_from_features(
                n_, f, vad_per_frame(vad, f.num_frames, f.fps), seed=0, steps=args.steps, timeline=tl,
                repertoire=rep, smooth=SMOOTH_FRAMES if rep else 1)))
    dist = {}
    for label, make in makers:
        motions = [make(f, sp.timeline) for f, sp in zip(feats, speeches)]
        hands = [_hands(m) for m in motions[:-1]]
        d = float(np.mean([path_distance(a, b) for a, b in itertools.combinations(hands, 2)]))
        dist[label] = d
        fps = motions[0].fps
        shared = [(i, j) for (i, a), (j, b) in itertools.combinations(enumerate(hands), 2)
                  if share_held_pose(a, b, fps)]
        longest = [held_positions(h, fps)[1][:1].sum() / (len(h) / fps) for h in hands]
        pos, secs = held_positions(_hands(motions[-1]), fps)
        print(f"{label}:\n  hands' path distance, mean over 15 pairs {100 * d:.1f} cm; pairs sharing one held pose "
              f"{len(shared)} {shared} (goal 0); share of each line in its longest-held pose "
              f"{' '.join(f'{x:.2f}' for x in longest)}\n  monologue: {len(pos)} clearly different held positions "
              f"(goal >= 4; 15 cm apart for a hand, held >= 0.5 s each: {' '.join(f'{x:.1f}' for x in secs)} s)")
    if args.model:
        labels = list(dist)
        ratio = dist[labels[2]] / max(dist[labels[1]], 1e-9)
        print(f"hands' path distance, model with the repertoire / without: {ratio:.2f}x (goal >= 2)")
    if args.repertoire_sheet:
        repertoire_sheet(args.repertoire_sheet, makers[-1][1], feats[-1], speeches[-1].timeline)


def repertoire_sheet(path: str, make, feat, timeline, cols: int = 6, rows: int = 2) -> None:
    """Frames of the monologue at the repertoire's gesture strokes and rest holds, labelled with the word said."""
    from PIL import Image, ImageDraw

    from avatar.gesture.repertoire import plan_gestures
    from avatar.gesture.teacher import vad_per_frame
    from avatar.rig.kinematics import rotations_in_skeleton_order
    from avatar.rig.skeleton import HUMANOID
    from avatar.render.renderer import Renderer
    from avatar.render.snapshot import expression_row
    from avatar.types import VAD

    m = make(feat, timeline)
    plan = plan_gestures(vad_per_frame(VAD(*VARIETY_VAD), feat.num_frames, feat.fps), feat.speech, feat.fps,
                         timeline, feat.accents, 0, feat.onsets)
    marks = [(ev.time + 0.1, ev.kind) for ev in plan.events] + [(0.5 * (r.start + r.end), "rest: " + r.pose)
                                                                 for r in plan.rests if r.end - r.start > 0.3]
    marks = sorted(marks)[: cols * rows]
    w, h = 256, 384
    sheet = Image.new("RGB", (w * cols, h * rows), "white")
    rot = rotations_in_skeleton_order(m).astype(np.float64)
    with Renderer(None, w, h, framing="full") as r:
        for i, (t, label) in enumerate(marks):
            k = min(m.num_frames - 1, int(t * m.fps))
            said = [wd.word for wd in timeline.words if wd.start - 0.3 <= t <= wd.end + 0.1]
            img = Image.fromarray(r.render(expression_row("neutral"), (HUMANOID.joints, rot[k],
                                                                      m.root_position[k].astype(np.float64))))
            ImageDraw.Draw(img).text((6, 6), f"{t:.1f}s {label}", fill=(0, 0, 0))
            ImageDraw.Draw(img).text((6, 20), " ".join(said[:3]), fill=(0, 0, 0))
            sheet.paste(img, (w * (i % cols), h * (i // cols)))
    sheet.save(path)
    print(f"repertoire sheet: {path} ({len(marks)} frames of the monologue)")


def _raw_model_speed(net, feats: list, steps: int) -> None:
    """Mean joint speed at arousal +0.8 / -0.8 of the model's own samples (no body-language layer): the baseline."""
    from avatar.gesture import checks
    from avatar.gesture.sampling import generate
    from avatar.types import VAD

    hi = np.mean([checks.mean_joint_speed(generate(net, f, VAD(0.0, 0.8, 0.0), seed=0, steps=steps)) for f in feats])
    lo = np.mean([checks.mean_joint_speed(generate(net, f, VAD(0.0, -0.8, 0.0), seed=0, steps=steps)) for f in feats])
    print(f"baseline, the model's own samples without the body-language layer: mean joint speed +0.8 {hi:.4f} m/s, "
          f"-0.8 {lo:.4f} m/s, ratio {hi / max(lo, 1e-9):.2f}")


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
