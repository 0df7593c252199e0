#!/usr/bin/env bash
# Node.js tools for checking avatar files, installed into bench/tools/node_modules (git-ignored), only when
# missing: the Khronos glTF-Validator. Needs node and npm (Debian: apt-get install nodejs npm).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"
if [ ! -f node_modules/gltf-validator/package.json ]; then
  npm install --no-audit --no-fund --silent --prefix "$here" gltf-validator@2.0.0-dev.3.10 >&2
fi
