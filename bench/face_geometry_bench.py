"""Does the face's geometry move the way FACS says? A second, independent judge: MediaPipe face landmarks.

    .venv/bin/python bench/face_geometry_bench.py [--avatars default-female default-male] [--images DIR ...]

Renders each avatar's FACS prototype faces exactly as bench/avatar_fer_bench.py does (or, with --images, takes
folders of `<category>.png` frames, e.g. that bench's --out folders), finds 478 face landmarks with MediaPipe's
Face Mesh (its own venv: `bash bench/setup_mp.sh` first; the labels are MediaPipe's geometry, not ours), and
measures, in units of the inter-ocular distance, per expression against the neutral face:

- brow: height of both brows over the eyes' centre line (AU1+2 raise it, AU4 lowers it),
- inner brow: height of the brows' inner ends (AU1 raises, AU4 lowers), knit: distance between the inner ends
  (AU4 draws them together),
- eye: lid opening (AU5 widens; AU6/7 and lowered lids narrow),
- corners: height of the mouth corners over the lips' midline (AU12 raises, AU15 lowers),
- open: inner lip gap (AU25/26), width: corner to corner (AU12 and AU20 widen, AU23/24 narrow),
- nose-lip: nose base to upper lip (AU9/AU10 shorten it), lips: red-lip height (AU23/24 thin it).

Each expression has the directions the FACS manual documents for its prototype's action units (EXPECTED); a
measure counts as moved the right way when its change has that sign and exceeds 1 % of the inter-ocular
distance. Prints a table per look and the count of expected movements met, and the command to rerun.
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
MP_PY = ROOT / "bench" / ".venv-mp" / "bin" / "python"
sys.path.insert(0, str(ROOT / "bench"))

# MediaPipe Face Mesh indices (canonical face model; "right" is the subject's right, image left).
BROW = (70, 63, 105, 66, 107, 336, 296, 334, 293, 300)
INNER_BROW = (107, 55, 336, 285)
EYE_CORNERS = ((33, 133), (362, 263))
LIDS = ((159, 145), (386, 374))  # (upper, lower) per eye
CORNERS = (61, 291)
INNER_LIPS = (13, 14)
OUTER_LIPS = (0, 17)
NOSE_BASE = 2

MEASURES = ("brow", "inner brow", "knit", "eye", "corners", "open", "width", "nose-lip", "lips")
#: FACS-documented direction of each measure per prototype (+1 up/more, -1 down/less); unlisted: no claim.
EXPECTED: dict[str, dict[str, int]] = {
    "happy": {"corners": +1, "width": +1, "eye": -1},                      # AU12 (+AU6 narrows the eyes)
    "sad": {"inner brow": +1, "knit": -1, "corners": -1},                  # AU1 + AU4, AU15
    "angry": {"brow": -1, "knit": -1, "lips": -1},                         # AU4, AU23
    "fearful": {"brow": +1, "knit": -1, "eye": +1, "open": +1, "width": +1},  # AU1+2+4, AU5, AU26, AU20
    "surprised": {"brow": +1, "eye": +1, "open": +1},                      # AU1+2, AU5, AU26
    "disgusted": {"nose-lip": -1, "corners": -1, "inner brow": -1},        # AU9+10, AU15 (AU9 lowers inner brows)
}
THRESHOLD = 0.01


def measures(pts: np.ndarray) -> dict[str, float]:
    """The face measures of one landmark set [478, 3] (pixels), in inter-ocular distances; up is positive."""
    p = np.asarray(pts)[:, :2]
    eyes = [p[list(c)].mean(axis=0) for c in EYE_CORNERS]
    iod = float(np.linalg.norm(eyes[0] - eyes[1]))
    eye_y = (eyes[0][1] + eyes[1][1]) / 2
    mid_y = p[list(INNER_LIPS)][:, 1].mean()
    return {
        "brow": float(eye_y - p[list(BROW)][:, 1].mean()) / iod,
        "inner brow": float(eye_y - p[list(INNER_BROW)][:, 1].mean()) / iod,
        "knit": float(abs(p[[107, 55]][:, 0].mean() - p[[336, 285]][:, 0].mean())) / iod,
        "eye": float(np.mean([p[lo][1] - p[up][1] for up, lo in LIDS])) / iod,
        "corners": float(mid_y - p[list(CORNERS)][:, 1].mean()) / iod,
        "open": float(p[INNER_LIPS[1]][1] - p[INNER_LIPS[0]][1]) / iod,
        "width": float(np.linalg.norm(p[CORNERS[0]] - p[CORNERS[1]])) / iod,
        "nose-lip": float(p[OUTER_LIPS[0]][1] - p[NOSE_BASE][1]) / iod,
        "lips": float((p[INNER_LIPS[0]][1] - p[OUTER_LIPS[0]][1]) + (p[OUTER_LIPS[1]][1] - p[INNER_LIPS[1]][1])) / iod,
    }


def landmarks(paths: list[Path]) -> list[np.ndarray | None]:
    """MediaPipe's landmarks per image, from its own venv."""
    if not MP_PY.is_file():
        raise SystemExit("the MediaPipe judge is not set up: run bash bench/setup_mp.sh")
    res = subprocess.run([str(MP_PY), str(ROOT / "bench" / "mp_landmarks.py"), *map(str, paths)],
                         capture_output=True, text=True, check=True)
    rows = [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]
    return [None if r["landmarks"] is None else np.array(r["landmarks"]) for r in rows]


def report(name: str, images: dict[str, Path]) -> tuple[int, int]:
    """Print one look's table; returns (expected movements met, expected movements)."""
    labels = list(images)
    found = dict(zip(labels, landmarks([images[k] for k in labels])))
    if found.get("neutral") is None:
        print(f"{name}: no face found on the neutral image")
        return 0, sum(len(v) for v in EXPECTED.values())
    base = measures(found["neutral"])
    print(f"\n{name}: change against neutral (inter-ocular distances; [+]/[-] = FACS direction, * = met)")
    print(f"{'':10s} " + " ".join(f"{m:>11s}" for m in MEASURES))
    met = total = 0
    for label in labels:
        if label == "neutral":
            continue
        exp = EXPECTED.get(label, {})
        total += len(exp)
        if found[label] is None:
            print(f"{label:10s} no face found")
            continue
        m = measures(found[label])
        cells = []
        for k in MEASURES:
            d = m[k] - base[k]
            mark = ""
            if k in exp:
                ok = np.sign(d) == exp[k] and abs(d) > THRESHOLD
                met += ok
                mark = ("[+]" if exp[k] > 0 else "[-]") + ("*" if ok else " ")
            cells.append(f"{d:+.3f}{mark:>4s}")
        print(f"{label:10s} " + " ".join(f"{c:>11s}" for c in cells))
    print(f"{name}: {met}/{total} FACS-documented movements met")
    return met, total


def main(argv: list[str] | None = None) -> int:
    """Render (or read), measure, print."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--avatars", nargs="+", default=["default-female", "default-male"])
    ap.add_argument("--images", nargs="+", default=None, help="folders of <category>.png instead of rendering")
    ap.add_argument("--size", type=int, default=512)
    args = ap.parse_args(argv)
    totals = []
    with tempfile.TemporaryDirectory() as tmp:
        if args.images:
            sets = {d: {p.stem: p for p in sorted(Path(d).glob("*.png"))} for d in args.images}
        else:
            from avatar_fer_bench import render
            sets = {a: render(a, Path(tmp) / Path(a).stem, args.size) for a in args.avatars}
        for name, images in sets.items():
            totals.append(report(name, images))
    print(f"\nall: {sum(m for m, _ in totals)}/{sum(t for _, t in totals)} FACS-documented movements met")
    print("rerun: .venv/bin/python bench/face_geometry_bench.py " + " ".join(sys.argv[1:] if argv is None else argv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
