"""MediaPipe Face Mesh landmarks of faces in images: one JSON line per image, in MediaPipe's own venv.

    bench/.venv-mp/bin/python bench/mp_landmarks.py a.png b.png ...
    -> {"input": "a.png", "landmarks": [[x, y, z], ...] (478 points, pixels) | null}

Set up with ``bash bench/setup_mp.sh``. Static-image mode, one face, refined landmarks (irises). Used by
bench/face_geometry_bench.py, which runs in the project's venv and calls this as a subprocess.
"""
from __future__ import annotations

import argparse
import json
import sys


def landmarks(paths: list[str]) -> list[dict]:
    """Face Mesh landmarks (pixels) for each image; None where no face is found."""
    import mediapipe as mp
    import numpy as np
    from PIL import Image

    out = []
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1, refine_landmarks=True) as fm:
        for p in paths:
            rgb = np.asarray(Image.open(p).convert("RGB"))
            res = fm.process(rgb)
            pts = None
            if res.multi_face_landmarks:
                h, w = rgb.shape[:2]
                pts = [[lm.x * w, lm.y * h, lm.z * w] for lm in res.multi_face_landmarks[0].landmark]
            out.append({"input": p, "landmarks": pts})
    return out


def main(argv: list[str] | None = None) -> int:
    """Print one JSON line per image."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("images", nargs="*")
    ap.add_argument("--self-check", action="store_true", help="load the model and run it on a blank image")
    args = ap.parse_args(argv)
    if args.self_check:
        import tempfile

        from PIL import Image
        with tempfile.NamedTemporaryFile(suffix=".png") as f:
            Image.new("RGB", (128, 128), (128, 128, 128)).save(f.name)
            r = landmarks([f.name])[0]
        print(f"mediapipe face mesh self-check ok (blank image: {'no face' if r['landmarks'] is None else 'a face?'})")
        return 0
    for r in landmarks(args.images):
        sys.stdout.write(json.dumps(r) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
