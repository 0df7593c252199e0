"""Head crops of the shipped human looks at 512 px, optionally before/after against another checkout.

    .venv/bin/python bench/avatar_look_crops.py --out crops.png [--baseline OLD_CHECKOUT] [--zoom 2]

For each look (default-female, default-male) and view (rest, happy mid-speech, happy with the mouth wide open,
happy turned 3/4): a portrait frame at 512x512 cropped to the head (the hair's outline, the open mouth's teeth and
tongue). With
`--baseline DIR` (a checkout of the code before, e.g. `git archive main | tar -x -C DIR`) the same crops are
rendered from that checkout's code and avatar files in a child process and shown in the row above ours, so the
two can be compared tile by tile. For checking hair and mouth shading by eye (docs/render.md).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
LOOKS = ("default-female", "default-male")
VIEWS = ("rest", "happy", "happy, mouth wide", "happy 3/4")
#: the head's box in a 512x512 portrait frame (rows, columns)
CROP = (slice(40, 296), slice(128, 384))
YAW_3_4 = 35.0  # degrees the whole body turns (about the hips) for the 3/4 view


def render_tiles(looks: tuple[str, ...] = LOOKS, size: int = 512) -> np.ndarray:
    """[looks, views, h, w, 3] uint8 head crops rendered with the `avatar` package on sys.path."""
    from avatar.render.renderer import Renderer
    from avatar.render.snapshot import expression_row, relaxed_body, shape_row
    from avatar.rig.rotations import euler_to_quat

    names, rot, root = relaxed_body()
    turned = (names + ("hips",), np.concatenate([rot, euler_to_quat(np.array([[0.0, 0.0, YAW_3_4]]), "ZXY")]),
              root)
    scale = size / 512
    rows = slice(int(CROP[0].start * scale), int(CROP[0].stop * scale))
    cols = slice(int(CROP[1].start * scale), int(CROP[1].stop * scale))
    out = []
    for look in looks:
        with Renderer(look, size, size, framing="portrait") as r:
            frames = [r.render(shape_row(None), (names, rot, root)), r.render(expression_row("happy"), (names, rot, root)),
                      r.render(expression_row("happy", amount=1.0), (names, rot, root)),
                      r.render(expression_row("happy"), turned)]
        out.append([f[rows, cols] for f in frames])
    return np.asarray(out, dtype=np.uint8)


def main(argv: list[str] | None = None) -> int:
    """Render the crops (and the baseline's) and write the sheet."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", help="the sheet (PNG)")
    ap.add_argument("--baseline", help="a checkout of the code before (its avatar package and avatar files)")
    ap.add_argument("--avatars", nargs="+", default=list(LOOKS), help="shipped names or files (ours only)")
    ap.add_argument("--zoom", type=int, default=2, help="nearest-neighbour enlargement of each crop")
    ap.add_argument("--tiles-out", help=argparse.SUPPRESS)  # the child's side of --baseline
    ap.add_argument("--root", default=str(ROOT), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    sys.path.insert(0, args.root)
    if args.tiles_out:
        np.save(args.tiles_out, render_tiles(tuple(args.avatars)))
        return 0
    if not args.out:
        ap.error("--out is required")
    ours = render_tiles(tuple(args.avatars))
    rows = [("now", ours)]
    if args.baseline:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "tiles.npy"
            # The same avatars in the baseline (shipped names resolve to its own files). The child runs on this
            # interpreter: `avatar` comes from the baseline, but an editable install maps avatar.face etc. to this
            # checkout, so only avatar/ (render, files) differs between the rows.
            subprocess.run([sys.executable, __file__, "--tiles-out", str(path), "--root",
                            str(Path(args.baseline).resolve()), "--avatars", *args.avatars], check=True,
                           cwd=args.baseline)
            before = np.load(path)
            if before.shape != ours.shape:
                ap.error(f"the baseline's crops are {before.shape}, ours {ours.shape}: not the same avatars?")
            rows.insert(0, ("before", before))
    from PIL import Image, ImageDraw

    from avatar.io import atomic_path

    h, w = ours.shape[2:4]
    z, pad = args.zoom, 14
    sheet = Image.new("RGB", (len(VIEWS) * w * z, len(args.avatars) * len(rows) * (h * z + pad)), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    y = 0
    for i, look in enumerate(args.avatars):
        for tag, tiles in rows:
            for j, view in enumerate(VIEWS):
                tile = Image.fromarray(tiles[i, j]).resize((w * z, h * z), Image.NEAREST)
                sheet.paste(tile, (j * w * z, y + pad))
                draw.text((j * w * z + 3, y + 1), f"{look} {view}: {tag}", fill=(0, 0, 0))
            y += h * z + pad
    with atomic_path(Path(args.out)) as tmp:
        sheet.save(tmp, format="PNG")
    print(f"wrote {args.out}\nrerun: .venv/bin/python bench/avatar_look_crops.py " + " ".join(argv or sys.argv[1:]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
