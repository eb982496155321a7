// Print the licence notice of every package bundled into vendor/codemirror.js: the runtime
// (non-dev) packages of package-lock.json, sorted, each with its LICENSE file. Deterministic.
"use strict";
const fs = require("fs");
const path = require("path");

const lock = JSON.parse(fs.readFileSync(path.join(__dirname, "package-lock.json"), "utf8"));
const out = [
  "Third-party software bundled in codemirror.js (built by scripts/build_vendor.sh",
  "from frontend/package-lock.json). Each package's licence follows.",
  "",
];
const names = Object.keys(lock.packages)
  .filter((key) => key.startsWith("node_modules/") && !lock.packages[key].dev)
  .sort();
for (const key of names) {
  const info = lock.packages[key];
  const dir = path.join(__dirname, key);
  const licenceFile = fs
    .readdirSync(dir)
    .filter((name) => /^licen[cs]e/i.test(name))
    .sort()[0];
  out.push("=".repeat(72));
  out.push(`${key.slice("node_modules/".length)} ${info.version} (${info.license || "see below"})`);
  out.push("=".repeat(72));
  out.push(licenceFile ? fs.readFileSync(path.join(dir, licenceFile), "utf8").trim() : "(no licence file in the package)");
  out.push("");
}
process.stdout.write(out.join("\n"));
