#!/usr/bin/env bash
# Blender for bench/blender_import.py: Debian's blender (3.4 on Debian 12, ~77 MB of packages) and the NumPy its
# glTF importer imports (python3-numpy), installed with apt-get when missing.
set -euo pipefail
if ! command -v blender >/dev/null || ! dpkg -s python3-numpy >/dev/null 2>&1; then
    sudo_="$( [ "$(id -u)" = 0 ] || echo sudo )"
    $sudo_ apt-get update -q
    $sudo_ apt-get install -y -q --no-install-recommends blender python3-numpy
fi
blender --version | head -1
echo "ready: .venv/bin/python bench/blender_import.py"
