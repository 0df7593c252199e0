#!/usr/bin/env bash
# Set up .venv-coqui: the separate environment the coqui-tts backend runs in.
#
# coqui-tts imports only beside torch 2.11 + torchaudio 2.11 + torchcodec (and `six`, which it needs but does
# not declare), while the main .venv pins torch 2.13. So the neural backend lives in its own venv, with our
# package installed there without its dependencies (--no-deps) plus the runtime needs in
# tts/coqui-requirements.txt. About 5.5 GB from PyPI (torch 2.11 pulls its CUDA libraries).
#
#   tts/coqui_setup.sh                       # create or update .venv-coqui at the repo root
#   .venv-coqui/bin/python -m pytest tests/test_tts_coqui.py -q
#   .venv-coqui/bin/avatar tts "Hello." --backend coqui --voice weights/my-vits -o hello.wav
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
venv="${AVATAR_COQUI_VENV:-$root/.venv-coqui}"
py="${PYTHON:-python3}"
log() { printf '[coqui-setup] %s\n' "$*" >&2; }

if [ ! -x "$venv/bin/python" ]; then
  log "creating $venv"
  "$py" -m venv "$venv"
fi
# Keep the venv out of git without touching the repo's .gitignore (Python >= 3.13 venvs do this themselves).
printf '# created by tts/coqui_setup.sh\n*\n' > "$venv/.gitignore"
pip=("$venv/bin/python" -m pip --disable-pip-version-check install)
log "installing torch 2.11 + torchaudio 2.11 + torchcodec + coqui-tts (large download)"
"${pip[@]}" "torch==2.11.0" "torchaudio==2.11.0" torchcodec coqui-tts six
log "installing the avatar package (no deps) and its runtime needs"
"${pip[@]}" -r tts/coqui-requirements.txt
"${pip[@]}" --no-deps -e .
"$venv/bin/python" -c "import TTS, torch; print('coqui-tts ready:', TTS.__version__, 'torch', torch.__version__)"
log "done: $venv"
