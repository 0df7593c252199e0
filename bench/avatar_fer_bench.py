"""Can the avatar act? An outside expression recogniser on FACS prototype faces, per shipped look.

    .venv/bin/python bench/avatar_fer_bench.py [--avatars default-female default-male] [--out DIR] [--size 512]
        [--sheet docs/avatar_expressions.png]

Renders each avatar's face (portrait framing, arms relaxed, eyes on the camera) with the FACS prototype of each
basic emotion (EMFACS: happy AU6+12, sad AU1+4+15, angry AU4+5+7+23, fearful AU1+2+4+5+20+26, surprised
AU1+2+5+26, disgusted AU9+10+15; neutral: no AU), the head turned to face the camera, every AU at full intensity mapped to ARKit shapes with the
engine's own mapping (avatar.face.expression.arkit_from_action_units: AU_TO_ARKIT plus the brow interaction), and asks fer's bundled 7-class model (bench/fer_judge.py,
in its own venv: `bash bench/setup_fer.sh` first) for its top-1 class. Prints one line per look and class, then
the number recognised per look (the goal: at least 6 of 7 on every look), and the command to rerun.
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
FER_PY = ROOT / "bench" / ".venv-fer" / "bin" / "python"
PROTOTYPES: dict[str, tuple[str, ...]] = {
    "happy": ("AU6", "AU12"),
    "sad": ("AU1", "AU4", "AU15"),
    "angry": ("AU4", "AU5", "AU7", "AU23"),
    "fearful": ("AU1", "AU2", "AU4", "AU5", "AU20", "AU26"),
    "surprised": ("AU1", "AU2", "AU5", "AU26"),
    "disgusted": ("AU9", "AU10", "AU15"),
    "neutral": (),
}


sys.path.insert(0, str(ROOT))
from avatar.render.camera import VIEWS  # noqa: E402

HEAD_TURN = VIEWS["portrait"][0]  # degrees towards the camera: the head faces it


def prototype_row(label: str) -> np.ndarray:
    """A FaceMotion row (59 channels): the label's AUs at 1.0 as ARKit weights, head still, eyes on the camera."""
    from avatar.face.expression import AU_NAMES, arkit_from_action_units
    from avatar.types import FACE_CHANNELS

    au = np.zeros((1, len(AU_NAMES)))
    for name in PROTOTYPES[label]:
        au[0, AU_NAMES.index(name)] = 1.0
    row = np.zeros(len(FACE_CHANNELS))
    arkit = arkit_from_action_units(au)[0]
    row[: len(arkit)] = arkit
    # The portrait camera stands a few degrees to the avatar's left: the head turns to face it (the recogniser
    # was trained on mostly frontal faces), eyes straight ahead.
    row[FACE_CHANNELS.index("headYaw")] = np.deg2rad(HEAD_TURN)
    return row


def render(avatar: str, folder: Path, size: int) -> dict[str, Path]:
    """One PNG per class for an avatar."""
    from PIL import Image

    from avatar.render.renderer import Renderer
    from avatar.render.snapshot import relaxed_body

    out = {}
    folder.mkdir(parents=True, exist_ok=True)
    with Renderer(avatar, size, size, framing="portrait") as r:
        for label in PROTOTYPES:
            path = folder / f"{label}.png"
            Image.fromarray(r.render(prototype_row(label), relaxed_body())).save(path)
            out[label] = path
    return out


def judge(paths: list[Path]) -> list[dict]:
    """fer's verdicts (one dict per image) from its own venv."""
    if not FER_PY.is_file():
        raise SystemExit("the fer judge is not set up: run bash bench/setup_fer.sh")
    res = subprocess.run([str(FER_PY), str(ROOT / "bench" / "fer_judge.py"), *map(str, paths)],
                         capture_output=True, text=True, check=True)
    return [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]


def write_sheet(path: Path, looks: list[tuple[str, Path]], crop: tuple[float, float, float, float] =
                (0.3, 0.1, 0.7, 0.55)) -> None:
    """One row per look of its judged faces (the face's part of each portrait), labelled, as a PNG."""
    from PIL import Image

    from bench.face_emotion_bench import contact_sheet

    rows = []
    for name, folder in looks:
        frames = []
        for label in PROTOTYPES:
            with Image.open(folder / f"{label}.png") as im:
                frames.append(np.asarray(im.convert("RGB")))
        rows.append((name, frames))
    contact_sheet(rows, path, tile=None, crop=crop, labels=list(PROTOTYPES))


def main(argv: list[str] | None = None) -> int:
    """Render, judge, print."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--avatars", nargs="+", default=["default-female", "default-male"])
    ap.add_argument("--out", default=None, help="keep the rendered faces here (default: a temporary folder)")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--sheet", default=None, help="also write a contact sheet of the judged faces (PNG)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(args.out) if args.out else Path(tmp)
        summary = {}
        for avatar in args.avatars:
            paths = render(avatar, base / Path(avatar).stem, args.size)
            verdicts = judge(list(paths.values()))
            hits = 0
            for (label, _), v in zip(paths.items(), verdicts):
                ok = v["top"] == label
                hits += ok
                probs = " ".join(f"{k[:4]} {p:.2f}" for k, p in v["probs"].items())
                print(f"{avatar:16s} {label:10s} top={v['top']:10s} {'ok ' if ok else 'MISS'} "
                      f"p={v['probs'][label]:.2f} face={v['detected'][0] if v.get('detected') else '?'} | {probs}")
            summary[avatar] = hits
        for avatar, hits in summary.items():
            print(f"{avatar}: {hits}/{len(PROTOTYPES)} recognised (goal >= 6)")
        if args.sheet:
            write_sheet(Path(args.sheet), [(Path(a).stem, base / Path(a).stem) for a in args.avatars])
    print("rerun: .venv/bin/python bench/avatar_fer_bench.py " + " ".join(sys.argv[1:] if argv is None else argv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
