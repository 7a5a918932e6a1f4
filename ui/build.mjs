// Bundles src/ into the Python package's ui_static/ (served by the tracking server at /).
// Run by `npm run build` after the type check; scripts/setup.sh runs it when the sources change.
import * as esbuild from "esbuild";
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";

const out = new URL("../operator/modelship/tracking/server/ui_static/", import.meta.url).pathname;
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });

await esbuild.build({
  entryPoints: ["src/main.tsx"],
  entryNames: "app",
  outdir: out,
  bundle: true,
  minify: true,
  format: "esm",
  target: "es2020",
  jsx: "automatic",
  jsxImportSource: "preact",
  legalComments: "external",
  logLevel: "warning",
});

const hash = createHash("sha256");
for (const name of ["app.js", "app.css"]) hash.update(readFileSync(out + name));
const v = hash.digest("hex").slice(0, 12);
writeFileSync(
  out + "index.html",
  `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Modelship</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/ui/app.css?v=${v}">
</head>
<body>
<div id="app"></div>
<script type="module" src="/ui/app.js?v=${v}"></script>
</body>
</html>
`,
);
const size = (name) => (readFileSync(out + name).length / 1024).toFixed(1);
console.log(`ui: app.js ${size("app.js")} KiB, app.css ${size("app.css")} KiB -> ${out}`);
