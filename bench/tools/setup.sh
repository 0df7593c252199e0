#!/usr/bin/env bash
# Node.js tools for checking avatar files, installed into bench/tools/node_modules (git-ignored), only when
# missing: the Khronos glTF-Validator (validate_gltf.mjs), three + @pixiv/three-vrm + three-vrm-animation
# (vrm_playback.mjs: plays animation.glb / animation.vrma as a three-vrm app does) and @gltf-transform/cli (the
# meshopt / quantized / WebP copies of test avatars). Needs node and npm (Debian: apt-get install nodejs npm) and
# npm's registry. Pinned versions, one install, so a later run never prunes another tool.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"
pkgs=(gltf-validator@2.0.0-dev.3.10 three@0.187.0 @pixiv/three-vrm@3.5.5 @pixiv/three-vrm-animation@3.5.5
      @gltf-transform/cli@4.5.1)
have=1
for p in gltf-validator three @pixiv/three-vrm @pixiv/three-vrm-animation @gltf-transform/cli; do
  [ -f "node_modules/$p/package.json" ] || have=0
done
if [ "$have" = 0 ]; then
  npm install --no-audit --no-fund --silent --save-exact --prefix "$here" "${pkgs[@]}" >&2
fi
