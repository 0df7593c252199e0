// Khronos glTF-Validator on .glb/.gltf files: `node bench/tools/validate_gltf.mjs FILE...` (after setup.sh).
// Prints one JSON line per file (errors, warnings, infos, hints, the first messages); exit 1 if any has errors.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
const require = createRequire(import.meta.url);
const validator = require("gltf-validator");
let failed = false;
for (const file of process.argv.slice(2)) {
  const report = await validator.validateBytes(new Uint8Array(readFileSync(file)), { maxIssues: 200 });
  const i = report.issues;
  const messages = i.messages.filter((m) => m.severity <= 1).slice(0, 10).map((m) => `${m.code}: ${m.message} (${m.pointer})`);
  console.log(JSON.stringify({ file, errors: i.numErrors, warnings: i.numWarnings, infos: i.numInfos, hints: i.numHints,
    vertices: report.info?.totalVertexCount, triangles: report.info?.totalTriangleCount, messages }));
  if (i.numErrors > 0) failed = true;
}
process.exit(failed ? 1 : 0);
