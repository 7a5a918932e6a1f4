// The model registry: registered models, and one model's versions with stage, aliases and
// the run each came from. Served when the tracking server has cluster access.
import { useEffect, useState } from "preact/hooks";
import { ApiError, searchModelVersions, searchRegisteredModels, type ModelVersion, type RegisteredModel } from "../api";
import { time } from "../format";
import { href } from "../route";

function Unavailable(props: { error: Error }) {
  // Without cluster access the server answers the registry's endpoints with NOT_IMPLEMENTED
  // and a message that says how to start it with access.
  const off = props.error instanceof ApiError && ["NOT_IMPLEMENTED", "ENDPOINT_NOT_FOUND"].includes(props.error.code);
  return (
    <p class={off ? "muted" : "error"} data-testid="registry-error">
      {props.error.message}
    </p>
  );
}

const Stage = (props: { stage?: string }) => <span class={"badge " + (props.stage || "None")}>{props.stage || "None"}</span>;

export function ModelsPage() {
  const [models, setModels] = useState<RegisteredModel[] | null>(null);
  const [error, setError] = useState<Error | null>(null);
  useEffect(() => void searchRegisteredModels().then(setModels, setError), []);
  return (
    <div class="page">
      <h1>Registered models</h1>
      {error && <Unavailable error={error} />}
      {models && !models.length && <p class="muted">No registered models.</p>}
      {models && models.length > 0 && (
        <table class="grid" data-testid="models">
          <thead>
            <tr>
              <th>Name</th>
              <th>Latest versions</th>
              <th>Aliases</th>
              <th>Last updated</th>
            </tr>
          </thead>
          <tbody>
            {models.map((m) => (
              <tr>
                <td>
                  <a href={href(["models", m.name])}>{m.name}</a>
                </td>
                <td>
                  {(m.latest_versions || []).map((v) => (
                    <span>
                      v{v.version} <Stage stage={v.current_stage} />
                    </span>
                  ))}
                </td>
                <td>{(m.aliases || []).map((a) => `@${a.alias} → v${a.version}`).join(", ")}</td>
                <td>{time(m.last_updated_timestamp)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}

export function ModelPage(props: { name: string }) {
  const [versions, setVersions] = useState<ModelVersion[] | null>(null);
  const [error, setError] = useState<Error | null>(null);
  useEffect(() => void searchModelVersions(props.name).then(setVersions, setError), [props.name]);
  return (
    <div class="page">
      <h1>
        <a href="#/models">Models</a> / {props.name}
      </h1>
      {error && <Unavailable error={error} />}
      {versions && (
        <table class="grid" data-testid="versions">
          <thead>
            <tr>
              <th>Version</th>
              <th>Stage</th>
              <th>Aliases</th>
              <th>Status</th>
              <th>Source run</th>
              <th>Source</th>
              <th>Created</th>
            </tr>
          </thead>
          <tbody>
            {[...versions]
              .sort((a, b) => Number(b.version) - Number(a.version))
              .map((v) => (
                <tr>
                  <td>v{v.version}</td>
                  <td>
                    <Stage stage={v.current_stage} />
                  </td>
                  <td>{(v.aliases || []).map((a) => "@" + a).join(", ")}</td>
                  <td title={v.status_message || ""}>{v.status || ""}</td>
                  <td>{v.run_id ? <a href={href(["runs", v.run_id])}>{v.run_id}</a> : ""}</td>
                  <td class="mono">{v.source || ""}</td>
                  <td>{time(v.creation_timestamp)}</td>
                </tr>
              ))}
          </tbody>
        </table>
      )}
    </div>
  );
}
