"""Stills of the 7 categories' faces on an avatar, scored by the outside judge (quick; no speech or video).

    .venv/bin/python bench/face_emotion_stills.py [--avatar me.glb] [--out DIR] [--sheet docs/face_emotions/stills.png]

Each category's FACS expression at its canonical VAD point (avatar.face.expression) over four mouths (rest,
"aa" 0.5, "E" 0.5, sealed "PP"), the emotion's head posture, eyes on the camera; rendered at 512 px portrait
and scored by fer's model (bench/fer_judge.py, its own venv: bash bench/setup_fer.sh). Prints the judge's top
class and the intended class's probability per still, and writes a contact sheet (rest and "aa" rows).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
LABELS = ("neutral", "happy", "sad", "angry", "fearful", "surprised", "disgusted")
MOUTHS = (("sil", 0.0), ("aa", 0.5), ("E", 0.5), ("PP", 1.0))


def main() -> None:
    """Render, judge, print, write the sheet."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--avatar", default=None)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--sheet", type=Path, default=None)
    args = ap.parse_args()
    print("rerun: .venv/bin/python bench/face_emotion_stills.py " + " ".join(sys.argv[1:]))
    from PIL import Image

    from avatar.face.expression import CATEGORY_VAD, combine, expression_weights, head_bias
    from avatar.face.visemes import VISEME_TARGETS
    from avatar.render.camera import VIEWS
    from avatar.render.renderer import Renderer
    from avatar.render.snapshot import relaxed_body
    from avatar.types import EYE_GAZE, FACE_CHANNELS, HEAD_POSE, VISEMES

    tmp = tempfile.TemporaryDirectory()
    out = args.out or Path(tmp.name)
    out.mkdir(parents=True, exist_ok=True)
    body, paths = relaxed_body(), {}
    with Renderer(args.avatar, 512, 512, framing="portrait") as r:
        for lab in LABELS:
            vad = CATEGORY_VAD[lab]
            for vis, amt in MOUTHS:
                mouth = np.asarray(VISEME_TARGETS[VISEMES.index(vis)], float)[None] * amt
                row = np.zeros(len(FACE_CHANNELS))
                row[:52] = combine(mouth, expression_weights(vad)[None].astype(float))[0]
                head = head_bias(vad.as_array()[None])[0]
                for k, n in enumerate(HEAD_POSE):
                    row[FACE_CHANNELS.index(n)] = head[k]
                for n in EYE_GAZE:  # eyes on the camera (VIEWS: its azimuth to the avatar's left), head-relative
                    row[FACE_CHANNELS.index(n)] = np.deg2rad(VIEWS["portrait"][0]) if n.endswith("Yaw") else -head[1]
                p = out / f"{lab}_{vis}.png"
                Image.fromarray(r.render(row, body)).save(p)
                paths[(lab, vis)] = p
    judge = ROOT / "bench" / ".venv-fer" / "bin" / "python"
    res = subprocess.run([str(judge), str(ROOT / "bench" / "fer_judge.py"), *map(str, paths.values())],
                         capture_output=True, text=True, check=True)
    scores = {json.loads(x)["input"]: json.loads(x) for x in res.stdout.splitlines() if x.startswith("{")}
    hits = 0
    for lab in LABELS:
        cells = []
        for vis, _ in MOUTHS:
            s = scores[str(paths[(lab, vis)])]
            hits += s["top"] == lab
            cells.append(f"{vis}: {s['top'][:9]:9s} p({lab[:5]})={s['probs'][lab]:.2f}")
        print(f"{lab:10s} | " + " | ".join(cells) + f" | face: {sorted(set(scores[str(paths[(lab, 'sil')])]['detected']))}")
    print(f"top-1 right: {hits} of {len(paths)} stills")
    if args.sheet:
        tile = 200
        sheet = Image.new("RGB", (tile * len(LABELS), tile * 2), "white")
        for i, lab in enumerate(LABELS):
            for j, vis in enumerate(("sil", "aa")):
                im = Image.open(paths[(lab, vis)]).crop((140, 40, 390, 290)).resize((tile, tile))
                sheet.paste(im, (i * tile, j * tile))
        args.sheet.parent.mkdir(parents=True, exist_ok=True)
        sheet.save(args.sheet, optimize=True)
        print(f"sheet: {args.sheet} (columns: {' '.join(LABELS)}; rows: at rest, mid-'aa')")


if __name__ == "__main__":
    main()
