// Bundles src/ into the Python package's ui_static/ (served by the tracking server at /).
// Run by `npm run build` after the type check; scripts/setup.sh runs it when the sources change.
import * as esbuild from "esbuild";
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";

const out = new URL("../operator/modelship/tracking/server/ui_static/", import.meta.url).pathname;
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });

// Split: the run and comparison pages (and uPlot) are chunks loaded when first shown; the
// chunks the entry imports statically (code it shares with them) are preloaded by the page.
const app = await esbuild.build({
  entryPoints: ["src/main.tsx"],
  entryNames: "app",
  chunkNames: "chunk-[hash]",
  splitting: true,
  metafile: true,
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

// Each lazily loaded page's chunks (its own and what it imports, less what the entry preloads).
const outputs = app.metafile.outputs;
const base = (p) => p.split("/").pop();
const entry = Object.values(outputs).find((o) => o.entryPoint === "src/main.tsx");
const preloaded = entry.imports.filter((i) => i.kind === "import-statement").map((i) => i.path);
function chunksOf(source) {
  const [first] = Object.entries(outputs).find(([, o]) => o.entryPoint === source);
  const seen = new Set();
  const walk = (p) => {
    if (seen.has(p) || preloaded.includes(p)) return;
    seen.add(p);
    outputs[p].imports.filter((i) => i.kind === "import-statement").forEach((i) => walk(i.path));
  };
  walk(first);
  return [...seen].map(base);
}
const pageChunks = { run: chunksOf("src/pages/run.tsx"), compare: chunksOf("src/pages/compare.tsx") };

// The boot script (src/boot.ts) goes into the page itself, so that the runs table's first
// search leaves before the bundle is even asked for; the server's CSP allows it by its hash
// (server/ui.py computes it from this file).
const boot = await esbuild.build({
  entryPoints: ["src/boot.ts"],
  bundle: true,
  minify: true,
  format: "iife",
  target: "es2020",
  write: false,
  logLevel: "warning",
  define: { __PAGE_CHUNKS__: JSON.stringify(pageChunks) },
});
const bootJs = boot.outputFiles[0].text.trim();
const preload = preloaded.map((p) => `<link rel="modulepreload" href="/ui/${base(p)}">\n`).join("");
if (bootJs.includes("</")) throw new Error("the boot script cannot be inlined: it holds '</'");

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
<script>${bootJs}</script>
<script type="module" src="/ui/app.js?v=${v}"></script>
${preload}<link rel="stylesheet" href="/ui/app.css?v=${v}">
</head>
<body>
<div id="app"></div>
</body>
</html>
`,
);
const size = (name) => (readFileSync(out + name).length / 1024).toFixed(1);
console.log(`ui: app.js ${size("app.js")} KiB, app.css ${size("app.css")} KiB, boot script ${bootJs.length} B -> ${out}`);
