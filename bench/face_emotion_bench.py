"""Do the faces read as the emotion? `avatar say` clips scored by an outside facial-expression recogniser.

    bash bench/setup_fer.sh                                   # once: the judge's own venv (bench/.venv-fer)
    .venv/bin/python bench/face_emotion_bench.py [--avatar me.glb] [--sheets docs/face_emotions] [--out DIR]

Renders, with the `avatar say` command:
- one neutral-content sentence (words with no emotion) at each of the 7 categories' canonical VAD points
  (avatar.face.expression.CATEGORY_VAD: Russell & Mehrabian 1977 via Gebhard 2005), given with
  --valence/--arousal/--dominance;
- six emotional lines whose VAD comes from the text (the emotion model), one written for each emotion.
Frames from the middle of each clip (35-65 % of its length, 7 frames) are scored by fer's bundled 7-class model
(bench/fer_judge.py). Prints, per clip, the judge's mean probabilities and top class; the confusion table of
intended vs top-1; and for each emotion the mean probability of the intended class against the neutral clip's
probability of that class (goal: top-1 right for >= 6 of the 7 canonical points, and each intended class's
probability at least doubled against the neutral clip's). With --sheets, writes one contact sheet per emotion
(its canonical clip's frames over its text line's frames, faces cropped) as <emotion>.png.
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
from typing import Sequence

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

JUDGE_PY = ROOT / "bench" / ".venv-fer" / "bin" / "python"
CLASSES = ("angry", "disgusted", "fearful", "happy", "sad", "surprised", "neutral")
ORDER = ("neutral", "happy", "sad", "angry", "fearful", "surprised", "disgusted")
NEUTRAL_SENTENCE = "The train leaves the station at nine and the next one comes an hour later."
#: One line written for each emotion; its VAD is read from the text by the emotion model.
TEXT_LINES = {
    "happy": "We won the prize! I am so happy, this is the best day of my life!",
    "sad": "My old dog died this morning. I miss him so much, and I feel so alone.",
    "angry": "How dare you lie to me again! I am furious with you!",
    "fearful": "Something is moving in the dark house. I am terrified, please help me!",
    "surprised": "Wow! I never expected to see you here, what a surprise!",
    "disgusted": "The meat was rotten and full of maggots. It was disgusting and made me sick.",
}


def say(text: str, out: Path, vad: tuple[float, float, float] | None, avatar: str | None, seed: int) -> dict:
    """Run `avatar say` once; its JSON summary."""
    cmd = [str(ROOT / ".venv" / "bin" / "avatar"), "say", text, "-o", str(out), "--seed", str(seed)]
    if vad is not None:
        cmd += ["--valence", f"{vad[0]}", "--arousal", f"{vad[1]}", "--dominance", f"{vad[2]}"]
    if avatar:
        cmd += ["--avatar", avatar]
    res = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def face_blend(vad: tuple[float, float, float]) -> str:
    """The expression model's two largest category shares at a VAD point (what the face shows for it)."""
    from avatar.face.expression import category_strengths

    st = {k: float(v[0]) for k, v in category_strengths(np.array([vad], dtype=np.float64)).items()}
    top = sorted(st.items(), key=lambda kv: -kv[1])[:2]
    return " ".join(f"{k} {v:.2f}" for k, v in top if v > 0.05) or "neutral"


def judge(clips: list[Path]) -> dict[str, dict]:
    """fer's scores of each clip's middle frames (the judge runs in its own venv)."""
    if not JUDGE_PY.exists():
        sys.exit(f"no judge venv at {JUDGE_PY}: run bash bench/setup_fer.sh first")
    res = subprocess.run([str(JUDGE_PY), str(ROOT / "bench" / "fer_judge.py"), *map(str, clips)],
                         capture_output=True, text=True, check=True)
    rows = [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]
    return {r["input"]: r for r in rows}


def middle_frames(clip: Path, count: int = 5) -> list[np.ndarray]:
    """RGB frames from the middle of a clip (PyAV, the project's video library)."""
    import av

    with av.open(str(clip)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    idx = np.linspace(0.35 * (len(frames) - 1), 0.65 * (len(frames) - 1), count).round().astype(int)
    return [frames[i] for i in idx]


#: The portrait framing's face in a frame, as fractions of its width and height (left, top, right, bottom).
PORTRAIT_FACE = (0.24, 0.10, 0.76, 0.62)


def contact_sheet(rows: list[tuple[str, list[np.ndarray]]], path: Path, tile: int | None = 160,
                  crop: tuple[float, float, float, float] = PORTRAIT_FACE, labels: Sequence[str] = ()) -> None:
    """Faces cropped from each row's frames, one row per clip, captioned above (per tile "caption: label" where
    `labels` name the columns); tiles resized to tile x tile px, or kept at the crop's size (tile None)."""
    from PIL import Image, ImageDraw

    cap = 16
    crops = [[Image.fromarray(f).convert("RGB").crop((int(crop[0] * f.shape[1]), int(crop[1] * f.shape[0]),
                                                      int(crop[2] * f.shape[1]), int(crop[3] * f.shape[0])))
              for f in frames] for _, frames in rows]
    if tile is not None:
        crops = [[im.resize((tile, tile)) for im in row] for row in crops]
    tw, th = crops[0][0].size
    sheet = Image.new("RGB", (tw * max(len(r) for r in crops), len(rows) * (th + cap)), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for r, ((caption, _), row) in enumerate(zip(rows, crops)):
        y = r * (th + cap)
        if not labels:
            draw.text((4, y + 2), caption, fill=(0, 0, 0))
        for c, im in enumerate(row):
            sheet.paste(im, (c * tw, y + cap))
            if labels:
                draw.text((c * tw + 4, y + 2), f"{caption}: {labels[c]}", fill=(0, 0, 0))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.png")
    sheet.save(tmp, optimize=True)
    os.replace(tmp, path)


def main() -> None:
    """Render, judge, print the tables; optionally write the contact sheets."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--avatar", default=None, help=".glb/.vrm (default: the shipped default avatar)")
    ap.add_argument("--out", type=Path, default=None, help="keep the clips here (default: a temporary folder)")
    ap.add_argument("--sheets", type=Path, default=None, help="write one contact sheet per emotion here")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    print("rerun: .venv/bin/python bench/face_emotion_bench.py " + " ".join(sys.argv[1:]))
    from avatar.face.expression import CATEGORY_VAD

    tmp = tempfile.TemporaryDirectory()
    out = args.out or Path(tmp.name)
    out.mkdir(parents=True, exist_ok=True)
    clips: list[tuple[str, str, Path, str]] = []  # (kind, intended, path, note)
    t0 = time.perf_counter()
    for emo in ORDER:
        v = CATEGORY_VAD[emo]
        path = out / f"canonical_{emo}.mp4"
        say(NEUTRAL_SENTENCE, path, (v.valence, v.arousal, v.dominance), args.avatar, args.seed)
        clips.append(("canonical", emo, path, f"VAD {v.valence:+.2f} {v.arousal:+.2f} {v.dominance:+.2f}"))
    for emo, text in TEXT_LINES.items():
        path = out / f"text_{emo}.mp4"
        s = say(text, path, None, args.avatar, args.seed)
        vads = "; ".join(f"{x['label']} {x['valence']:+.2f} {x['arousal']:+.2f} {x['dominance']:+.2f} -> face "
                         f"{face_blend((x['valence'], x['arousal'], x['dominance']))}" for x in s["sentences"])
        clips.append(("text", emo, path, f"text VAD {vads}"))
    print(f"rendered {len(clips)} clips in {time.perf_counter() - t0:.0f} s")
    scores = judge([p for _, _, p, _ in clips])

    print("\nclip                   intended    top        " + " ".join(f"{c[:5]:>6s}" for c in CLASSES) + "   detected")
    for kind, emo, path, note in clips:
        r = scores[str(path)]
        dets = sorted(set(r["detected"]))
        print(f"{kind:9s} {emo:12s} {emo:10s}  {r['top']:10s} " + " ".join(f"{r['probs'][c]:6.2f}" for c in CLASSES)
              + f"   {','.join(dets)}   ({note})")

    for kind in ("canonical", "text"):
        group = [(emo, scores[str(p)]) for k, emo, p, _ in clips if k == kind]
        labels = [e for e, _ in group]
        print(f"\nconfusion, {kind} clips (rows: intended, columns: judge's top-1)")
        print(" " * 11 + " ".join(f"{c[:6]:>7s}" for c in ORDER))
        for emo, r in group:
            print(f"{emo:10s} " + " ".join(f"{(1 if r['top'] == c else 0):7d}" for c in ORDER))
        hits = sum(r["top"] == emo for emo, r in group)
        print(f"top-1 right: {hits} of {len(labels)}" + ("   (goal >= 6 of 7)" if kind == "canonical" else ""))

    neutral = scores[str(next(p for k, e, p, _ in clips if k == "canonical" and e == "neutral"))]["probs"]
    print("\nintended class's probability vs the neutral clip's (goal: ratio >= 2)")
    print("emotion      neutral   canonical  ratio    text line  ratio")
    for emo in ORDER[1:]:
        can = scores[str(out / f"canonical_{emo}.mp4")]["probs"][emo]
        txt = scores[str(out / f"text_{emo}.mp4")]["probs"][emo]
        base = max(neutral[emo], 1e-4)
        print(f"{emo:10s}  {neutral[emo]:8.3f}   {can:8.3f}  {can / base:6.1f}x   {txt:8.3f}  {txt / base:6.1f}x")

    if args.sheets:
        for emo in ORDER:
            rows = [(f"{emo}: canonical VAD, neutral words", middle_frames(out / f"canonical_{emo}.mp4"))]
            if emo in TEXT_LINES:
                rows.append((f"{emo}: \"{TEXT_LINES[emo][:60]}\"", middle_frames(out / f"text_{emo}.mp4")))
            contact_sheet(rows, args.sheets / f"{emo}.png")
        print(f"\ncontact sheets in {args.sheets}")


if __name__ == "__main__":
    main()
