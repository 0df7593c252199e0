"""Stills of an avatar's emotions: `python -m avatar.render.snapshot --out DIR [--avatar PATH] [--framing F]`.

With `--shapes`, instead: the rest face and each of the 52 ARKit shapes alone at 1.0 (`rest.png`,
`<shape>.png`; the eyeLook shapes also turn the eyeballs that way), and `--sheet FILE` puts every still written
into one labelled contact sheet (PNG).

For each emotion label (default: neutral happy sad angry) the face is the FACS expression of the label's VAD
prototype (avatar.emotion.labels.LABEL_VAD through avatar.face.expression) laid over a mid-speech mouth (the
"aa" viseme at 0.55), with the emotion's head posture (expression.head_bias), eyes on the camera and the arms
relaxed at the sides. One PNG per label, named <label>.png, written atomically; used to check the renderer by
eye (docs/render.md shows what to look for).
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

import numpy as np

from avatar.errors import AvatarError, InputError
from avatar.io import atomic_path, safe_join
from avatar.types import EYE_GAZE, FACE_CHANNELS, HEAD_POSE, VISEMES

from .camera import VIEWS

log = logging.getLogger(__name__)

DEFAULT_LABELS = ("neutral", "happy", "sad", "angry")
#: Relaxed standing arms (upper arm lowered 72 degrees from the T-pose, elbows a little bent), as BodyMotion.
RELAXED_ARMS: dict[str, tuple[float, float, float]] = {  # joint -> (X, Y, Z) degrees, order ZXY
    "leftUpperArm": (0.0, -8.0, -72.0), "rightUpperArm": (0.0, 8.0, 72.0),
    "leftLowerArm": (0.0, -12.0, 0.0), "rightLowerArm": (0.0, 12.0, 0.0),
}


def relaxed_body() -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    """(joints, rotations [J, 4], root [3]) of a relaxed standing pose."""
    from avatar.rig.rotations import euler_to_quat
    from avatar.rig.skeleton import HUMANOID

    names = tuple(RELAXED_ARMS)
    xyz = np.array([RELAXED_ARMS[n] for n in names])
    rot = euler_to_quat(xyz[:, [2, 0, 1]], "ZXY")
    return names, rot, HUMANOID.rest_positions[0].copy()


def expression_row(label: str, viseme: str = "aa", amount: float = 0.6) -> np.ndarray:
    """A FaceMotion row (59 channels) for an emotion label with the mouth mid-speech."""
    from avatar.emotion.labels import vad_for_label
    from avatar.face.expression import combine, expression_weights, head_bias
    from avatar.face.visemes import VISEME_TARGETS

    vad = vad_for_label(label)
    mouth = np.asarray(VISEME_TARGETS[VISEMES.index(viseme)], dtype=np.float64)[None] * amount
    arkit = combine(mouth, expression_weights(vad)[None].astype(np.float64))[0]
    row = np.zeros(len(FACE_CHANNELS))
    row[: len(arkit)] = arkit
    head = head_bias(vad.as_array()[None])[0]
    for k, name in enumerate(HEAD_POSE):
        row[FACE_CHANNELS.index(name)] = head[k]
    for name in EYE_GAZE:  # eyes on the portrait camera (VIEWS: a few degrees to the avatar's left), head-relative
        row[FACE_CHANNELS.index(name)] = np.deg2rad(VIEWS["portrait"][0]) if name.endswith("Yaw") else -head[1]
    return row


def snapshots(out: str | os.PathLike[str], labels: tuple[str, ...] = DEFAULT_LABELS,
              avatar: str | os.PathLike[str] | None = None, framing: str = "portrait", size: int = 512) -> list[Path]:
    """Render one PNG per emotion label into folder `out`; returns the paths."""
    from PIL import Image

    from .renderer import Renderer

    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    body = relaxed_body()
    with Renderer(avatar, size, size, framing=framing) as r:
        for label in labels:
            img = r.render(expression_row(label), body)
            path = safe_join(folder, f"{label}.png")
            with atomic_path(path) as tmp:
                Image.fromarray(img).save(tmp, format="PNG")
            paths.append(path)
            log.info("wrote %s", path)
    return paths


#: gaze (yaw, pitch; radians, head-relative, + = the avatar's left / up) that goes with each eyeLook shape.
_LOOK_GAZE = {"eyeLookInLeft": (-0.35, 0.0), "eyeLookOutLeft": (0.35, 0.0), "eyeLookInRight": (0.35, 0.0),
              "eyeLookOutRight": (-0.35, 0.0), "eyeLookUpLeft": (0.0, 0.3), "eyeLookUpRight": (0.0, 0.3),
              "eyeLookDownLeft": (0.0, -0.3), "eyeLookDownRight": (0.0, -0.3)}


def shape_row(shape: str | None) -> np.ndarray:
    """A FaceMotion row with one ARKit shape at 1.0 (None: rest), eyes ahead unless the shape is an eyeLook."""
    from avatar.types import ARKIT_BLENDSHAPES

    row = np.zeros(len(FACE_CHANNELS))
    if shape is not None:
        row[ARKIT_BLENDSHAPES.index(shape)] = 1.0
        if shape in _LOOK_GAZE:
            for name in EYE_GAZE:
                row[FACE_CHANNELS.index(name)] = _LOOK_GAZE[shape][0 if name.endswith("Yaw") else 1]
    return row


def shape_snapshots(out: str | os.PathLike[str], avatar: str | os.PathLike[str] | None = None,
                    size: int = 512) -> list[Path]:
    """Render rest.png and one PNG per ARKit shape at 1.0 (portrait) into folder `out`; returns the paths."""
    from PIL import Image

    from avatar.types import ARKIT_BLENDSHAPES

    from .renderer import Renderer

    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    body = relaxed_body()
    with Renderer(avatar, size, size, framing="portrait") as r:
        for shape in (None, *ARKIT_BLENDSHAPES):
            img = r.render(shape_row(shape), body)
            path = safe_join(folder, f"{shape or 'rest'}.png")
            with atomic_path(path) as tmp:
                Image.fromarray(img).save(tmp, format="PNG")
            paths.append(path)
    log.info("wrote %d stills into %s", len(paths), folder)
    return paths


def contact_sheet(paths: list[Path], out: str | os.PathLike[str], columns: int = 8, cell: int = 192,
                  crop: float = 1.0) -> Path:
    """The stills side by side with their names (PNG, written atomically); `crop` keeps the central fraction."""
    from PIL import Image, ImageDraw

    rows = (len(paths) + columns - 1) // columns
    sheet = Image.new("RGB", (columns * cell, rows * (cell + 16)), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for k, p in enumerate(paths):
        with Image.open(p) as im:
            w, h = im.size
            c = (w * (1 - crop) / 2, h * (1 - crop) / 2, w * (1 + crop) / 2, h * (1 + crop) / 2)
            tile = im.convert("RGB").crop(tuple(int(x) for x in c)).resize((cell, cell), Image.LANCZOS)
        x, y = (k % columns) * cell, (k // columns) * (cell + 16)
        sheet.paste(tile, (x, y + 16))
        draw.text((x + 3, y + 2), Path(p).stem, fill=(0, 0, 0))
    out = Path(out)
    with atomic_path(out) as tmp:
        sheet.save(tmp, format="PNG")
    return out


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    ap = argparse.ArgumentParser(prog="python -m avatar.render.snapshot", description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="folder for the PNGs")
    ap.add_argument("--avatar", default=None, help=".glb/.gltf/.vrm (default: the shipped default avatar)")
    ap.add_argument("--framing", default="portrait", choices=("portrait", "full"))
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--labels", default=",".join(DEFAULT_LABELS), help="comma-separated emotion labels")
    ap.add_argument("--shapes", action="store_true", help="rest and each of the 52 ARKit shapes at 1.0 instead")
    ap.add_argument("--sheet", default=None, help="also write a contact sheet of the stills (PNG)")
    ap.add_argument("--crop", type=float, default=1.0, help="central fraction of each still on the sheet")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        if args.shapes:
            paths = shape_snapshots(args.out, args.avatar, args.size)
        else:
            paths = snapshots(args.out, tuple(s.strip() for s in args.labels.split(",") if s.strip()), args.avatar,
                              args.framing, args.size)
        if args.sheet:
            contact_sheet(paths, args.sheet, columns=8 if args.shapes else len(paths), crop=args.crop)
    except (InputError, AvatarError) as exc:
        print(f"error: {exc}")
        return 2 if isinstance(exc, InputError) else 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
