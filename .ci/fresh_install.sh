#!/usr/bin/env bash
# Proves the built wheel works on its own: build it, install it (not editable) with its runtime dependencies into
# a new venv outside the repository, then run `avatar say "Hello." -o x.mp4` from another folder.
#   .ci/fresh_install.sh [WORKDIR]     (default: a new temporary folder; needs the package index or a wheelhouse)
# tests/test_wheel.py runs the same steps offline (dependencies shared from .venv); this script installs them
# from the index, as a user's `pip install` does.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="${1:-$(mktemp -d)}"
py="${PYTHON:-python3}"
mkdir -p "$work"
echo "[fresh] building the wheel from a copy of the repository's files" >&2
mkdir -p "$work/src"
(cd "$root" && git ls-files -co --exclude-standard -z | xargs -0 cp --parents -t "$work/src" 2>/dev/null || true)
"$py" -m pip wheel -q --no-deps -w "$work/dist" "$work/src"
echo "[fresh] new venv $work/venv, installing the wheel and its runtime dependencies" >&2
"$py" -m venv "$work/venv"
extra=()
# No runtime dependency pulls torch in (the check at the end fails if one does); the local wheel folder of this
# build machine is only a faster source for what it holds.
[ -d /opt/wheels ] && extra+=(--find-links /opt/wheels)
"$work/venv/bin/python" -m pip -q --disable-pip-version-check install "${extra[@]}" "$work"/dist/avatar_engine-*.whl
cd "$work"
echo "[fresh] avatar say in $work" >&2
"$work/venv/bin/avatar" say "Hello." -o x.mp4
"$work/venv/bin/python" - <<'PY'
import sys, importlib.util
from pathlib import Path
import avatar, avatar.weights
site = Path(sys.prefix)
assert Path(avatar.__file__).is_relative_to(site), avatar.__file__
assert avatar.weights.weights_root().is_relative_to(site), avatar.weights.weights_root()
present = [m for m in ("torch", "diffusers", "transformers", "peft") if importlib.util.find_spec(m) is not None]
assert not present, f"runtime dependencies pulled in training packages: {present}"
assert Path("x.mp4").stat().st_size > 1000
print("ok:", Path("x.mp4").resolve(), Path("x.mp4").stat().st_size, "bytes")
PY
