// Khronos glTF-Validator on .glb files: prints "<file> errors=N warnings=N" and the first messages.
// node bench/gltf_validate.js FILE... (needs `npm install gltf-validator` in NODE_PATH or a parent folder)
const fs = require("fs");
const validator = require("gltf-validator");
(async () => {
  for (const file of process.argv.slice(2)) {
    const report = await validator.validateBytes(new Uint8Array(fs.readFileSync(file)), { maxIssues: 50 });
    const n = report.issues;
    const errs = n.messages.filter((m) => m.severity === 0).slice(0, 3).map((m) => `${m.code} ${m.pointer || ""}`);
    console.log(`${file} errors=${n.numErrors} warnings=${n.numWarnings} ${errs.join("; ")}`);
  }
})();
