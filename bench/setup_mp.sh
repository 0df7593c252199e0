#!/usr/bin/env bash
# The second, independent face judge's own venv (bench/.venv-mp, git-ignored): MediaPipe's face landmarker
# (Face Mesh, 478 points, bundled in the wheel; no blendshape model is used). Used by bench/face_geometry_bench.py
# to measure how the face's geometry moves per expression; it never runs in the engine.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="$here/.venv-mp"
py="${PYTHON:-python3}"
if [ ! -x "$venv/bin/python" ]; then
    "$py" -m venv "$venv"
fi
"$venv/bin/python" -m pip install -q --disable-pip-version-check "mediapipe==0.10.14" "pillow"
"$venv/bin/python" "$here/mp_landmarks.py" --self-check
echo "landmark judge ready: $venv/bin/python bench/mp_landmarks.py FRAME.png ..."
