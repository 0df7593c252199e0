#!/usr/bin/env bash
# The outside speech judge for bench/tts_intelligibility.py: pocketsphinx 5.1.1 (its bundled US English model)
# in its own venv (bench/.venv-asr, git-ignored), and the peer voices it is compared with: Debian's festival
# with the HTS voice cmu_us_slt_arctic_hts (festvox-us-slt-hts), installed with apt-get when missing.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="$here/.venv-asr"
py="${PYTHON:-python3}"
if [ ! -x "$venv/bin/python" ]; then
    "$py" -m venv "$venv"
fi
"$venv/bin/python" -m pip install -q --disable-pip-version-check "pocketsphinx==5.1.1"
if ! command -v text2wave >/dev/null || [ ! -d /usr/share/festival/voices/us/cmu_us_slt_arctic_hts ]; then
    sudo_="$( [ "$(id -u)" = 0 ] || echo sudo )"
    $sudo_ apt-get update -q
    $sudo_ apt-get install -y -q --no-install-recommends festival festvox-us-slt-hts
fi
"$venv/bin/python" "$here/asr_judge.py" --self-check
echo "speech judge ready: $venv/bin/python bench/asr_judge.py CLIP.wav ... (16 kHz mono 16-bit)"
