"""Contact sheet of the shipped human looks: rest and emotion stills, portrait and full framing.

    .venv/bin/python bench/avatar_looks_sheet.py [--avatars default-female default-male] [--out docs/avatar_looks.png]

One row per look and framing: the rest face (no shapes), then the snapshot emotions (neutral happy sad angry
surprised: each label's FACS expression over a mid-speech mouth, as `python -m avatar.render.snapshot` renders
them), arms relaxed. For checking clothes, hair, teeth and faces by eye (docs/render.md).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LABELS = ("neutral", "happy", "sad", "angry", "surprised")


def main(argv: list[str] | None = None) -> int:
    """Render the stills and write the sheet."""
    from PIL import Image, ImageDraw

    from avatar.io import atomic_path
    from avatar.render.renderer import Renderer
    from avatar.render.snapshot import expression_row, relaxed_body, shape_row

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--avatars", nargs="+", default=["default-female", "default-male"])
    ap.add_argument("--out", default=str(ROOT / "docs" / "avatar_looks.png"))
    ap.add_argument("--size", type=int, default=384)
    args = ap.parse_args(argv)
    body = relaxed_body()
    rows, names = [], []
    for avatar in args.avatars:
        for framing in ("portrait", "full"):
            with Renderer(avatar, args.size, args.size, framing=framing) as r:
                tiles = [r.render(shape_row(None), body)] + [r.render(expression_row(lb), body) for lb in LABELS]
            rows.append(np.concatenate(tiles, axis=1))
            names.append(f"{avatar} {framing}")
    s, pad = args.size, 16
    sheet = Image.new("RGB", (s * (1 + len(LABELS)), len(rows) * (s + pad)), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for k, (row, name) in enumerate(zip(rows, names)):
        y = k * (s + pad)
        sheet.paste(Image.fromarray(row), (0, y + pad))
        for c, label in enumerate(("rest",) + LABELS):
            draw.text((c * s + 3, y + 2), f"{name}: {label}", fill=(0, 0, 0))
    with atomic_path(Path(args.out)) as tmp:
        sheet.save(tmp, format="PNG")
    print(f"wrote {args.out}\nrerun: .venv/bin/python bench/avatar_looks_sheet.py " + " ".join(argv or sys.argv[1:]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
