// The artifact browser of a run: a lazily opened tree and a preview of the chosen file.
// Previews never execute anything: text is a text node, HTML and SVG are shown as their
// source, and images are raster formats decoded by <img> from a blob of a fixed type.
import { useEffect, useState } from "preact/hooks";
import { listArtifacts, previewArtifact, type FileInfo } from "./api";

const IMAGE_TYPES: Record<string, string> = { png: "image/png", jpg: "image/jpeg", jpeg: "image/jpeg", gif: "image/gif", webp: "image/webp", bmp: "image/bmp" };
const PREVIEW_BYTES = 1 << 20;
const IMAGE_BYTES = 10 << 20;

const extension = (path: string) => (path.includes(".") ? path.slice(path.lastIndexOf(".") + 1).toLowerCase() : "");
const basename = (path: string) => path.slice(path.lastIndexOf("/") + 1);

function size(n?: number): string {
  if (n === undefined) return "";
  return n < 1024 ? `${n} B` : n < 1 << 20 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / (1 << 20)).toFixed(1)} MiB`;
}

function Dir(props: { runId: string; path: string; depth: number; chosen: string; onChoose: (f: FileInfo) => void }) {
  const [files, setFiles] = useState<FileInfo[] | null>(null);
  const [open, setOpen] = useState<Set<string>>(new Set());
  const [error, setError] = useState("");
  useEffect(() => void listArtifacts(props.runId, props.path).then(setFiles, (e) => setError(e.message)), [props.runId, props.path]);
  if (error) return <p class="error">{error}</p>;
  if (!files) return <p class="muted">loading…</p>;
  if (!files.length && props.depth === 0) return <p class="muted">No artifacts.</p>;
  const pad = { paddingLeft: 8 + props.depth * 14 + "px" };
  return (
    <>
      {files.map((f) => (
        <>
          <button
            type="button"
            style={pad}
            class={props.chosen === f.path ? "active" : ""}
            onClick={() => {
              if (!f.is_dir) return props.onChoose(f);
              const next = new Set(open);
              next.has(f.path) ? next.delete(f.path) : next.add(f.path);
              setOpen(next);
            }}
          >
            {f.is_dir ? (open.has(f.path) ? "▾ " : "▸ ") : "  "}
            {basename(f.path)} <span class="muted">{size(f.file_size)}</span>
          </button>
          {f.is_dir && open.has(f.path) && <Dir {...props} path={f.path} depth={props.depth + 1} />}
        </>
      ))}
    </>
  );
}

/** A single-quoted YAML scalar under `key`, which YAML writers fold over several lines. */
function quotedScalar(text: string, key: string): string | null {
  const m = new RegExp(`^[ \\t]+${key}: '`, "m").exec(text);
  if (!m) return null;
  let out = "";
  for (let i = m.index + m[0].length; i < text.length; i++) {
    const c = text[i];
    if (c === "'") {
      if (text[i + 1] !== "'") return out;
      out += "'";
      i++;
    } else if (c === "\n") {
      out = out.trimEnd() + " "; // a folded line break is a space
      while (text[i + 1] === " " || text[i + 1] === "\t") i++;
    } else out += c;
  }
  return null;
}

/** The `signature` of an MLmodel file: its inputs and outputs are JSON strings in the YAML. */
function signature(text: string): { part: string; columns: { name?: string; type?: unknown }[] }[] {
  const out = [];
  for (const part of ["inputs", "outputs"]) {
    const json = quotedScalar(text, part);
    if (json === null) continue;
    try {
      const columns = JSON.parse(json);
      if (Array.isArray(columns)) out.push({ part, columns });
    } catch {
      /* not the JSON column spec: the text below still shows it */
    }
  }
  return out;
}

function Preview(props: { runId: string; file: FileInfo }) {
  const { path } = props.file;
  const ext = extension(path);
  const image = IMAGE_TYPES[ext];
  const [state, setState] = useState<{ text?: string; url?: string; truncated?: boolean; error?: string; binary?: boolean }>({});
  useEffect(() => {
    let url = "";
    setState({});
    previewArtifact(props.runId, path, image ? IMAGE_BYTES : PREVIEW_BYTES).then(({ bytes, truncated }) => {
      if (image && !truncated) {
        url = URL.createObjectURL(new Blob([bytes], { type: image }));
        return setState({ url });
      }
      const text = new TextDecoder("utf-8", { fatal: false }).decode(bytes);
      const controls = (text.slice(0, 4096).match(/[\x00-\x08\x0e-\x1f]/g) || []).length;
      if (controls > 8) return setState({ binary: true });
      let shown = text;
      if (ext === "json" && !truncated) {
        try {
          shown = JSON.stringify(JSON.parse(text), null, 2);
        } catch {
          /* shown as it is */
        }
      }
      setState({ text: shown, truncated });
    }, (e) => setState({ error: e.message }));
    return () => url && URL.revokeObjectURL(url);
  }, [props.runId, path]);
  const sig = basename(path) === "MLmodel" && state.text ? signature(state.text) : [];
  return (
    <div data-testid="artifact-preview">
      <h2>
        {path} <span class="muted">{size(props.file.file_size)}</span>
      </h2>
      {(ext === "html" || ext === "htm" || ext === "svg") && <p class="muted">Shown as source text: HTML and SVG artifacts are never rendered.</p>}
      {state.error && <p class="error">{state.error}</p>}
      {state.binary && <p class="muted">A binary file: no preview.</p>}
      {state.url && <img class="preview" src={state.url} alt={path} />}
      {sig.map((s) => (
        <>
          <h2>Signature {s.part}</h2>
          <table class="grid">
            <thead>
              <tr>
                <th>Name</th>
                <th>Type</th>
              </tr>
            </thead>
            <tbody>
              {s.columns.map((c) => (
                <tr>
                  <td>{c.name ?? ""}</td>
                  <td>{typeof c.type === "string" ? c.type : JSON.stringify(c.type)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      ))}
      {state.text !== undefined && <pre data-testid="artifact-text">{state.text}</pre>}
      {state.truncated && <p class="muted">Only the first {size(PREVIEW_BYTES)} is shown.</p>}
    </div>
  );
}

export function ArtifactBrowser(props: { runId: string }) {
  const [file, setFile] = useState<FileInfo | null>(null);
  return (
    <div class="split">
      <div class="tree" data-testid="artifact-tree">
        <Dir runId={props.runId} path="" depth={0} chosen={file?.path || ""} onChoose={setFile} />
      </div>
      <div>{file ? <Preview runId={props.runId} file={file} key={file.path} /> : <p class="muted">Choose a file to preview it.</p>}</div>
    </div>
  );
}
