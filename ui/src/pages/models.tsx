// The model registry: registered models, and one model's versions with stage, aliases, the
// run each came from, its gates and its stage history (the audit trail). Served when the
// tracking server has cluster access; without, the page says so and calls nothing that fails.
import { useEffect, useState } from "preact/hooks";
import {
  ApiError,
  cluster,
  searchModelVersions,
  searchRegisteredModels,
  versionDetails,
  type ModelVersion,
  type RegisteredModel,
  type VersionDetail,
  type WebhookStatus,
} from "../api";
import { num, time } from "../format";
import { href } from "../route";

export function Unavailable(props: { error: Error; testid?: string }) {
  // Without cluster access the server says so (GET /cluster) with how to start it with access.
  const off = props.error instanceof ApiError && ["NOT_IMPLEMENTED", "ENDPOINT_NOT_FOUND"].includes(props.error.code);
  return (
    <p class={off ? "muted" : "error"} data-testid={props.testid || "registry-error"}>
      {props.error.message}
    </p>
  );
}

/** ``load`` once the server says it reads the cluster; otherwise its message, as an error. */
export async function fromCluster<T>(load: () => Promise<T>): Promise<T> {
  const c = await cluster();
  if (!c.cluster) throw new ApiError(c.message, 501, "NOT_IMPLEMENTED");
  return load();
}

const Stage = (props: { stage?: string }) => <span class={"badge " + (props.stage || "None")}>{props.stage || "None"}</span>;

export function ModelsPage() {
  const [models, setModels] = useState<RegisteredModel[] | null>(null);
  const [error, setError] = useState<Error | null>(null);
  useEffect(() => void fromCluster(searchRegisteredModels).then(setModels, setError), []);
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

function gatesSummary(d?: VersionDetail): string {
  if (!d || !d.gates.length) return "";
  const held = d.gates.filter((g) => g.held).length;
  return d.gates.some((g) => g.held === null) ? `${d.gates.length} gates, not evaluated yet` : `${held}/${d.gates.length} held`;
}

const held = (h: boolean | null) => (h === null ? "not evaluated" : h ? "held" : "failed");

function VersionCard(props: { detail: VersionDetail }) {
  const d = props.detail;
  return (
    <div class="card" data-testid={`version-${d.version}`}>
      <h2>
        v{d.version} <Stage stage={d.current_stage} />
        {d.requested_stage !== d.current_stage && <span class="muted"> (asks for {d.requested_stage})</span>}
      </h2>
      <p class="muted">
        ModelVersion {d.namespace}/{d.object}
        {d.superseded_by && ` · superseded by ${d.superseded_by}`}
      </p>
      <h3>Gates</h3>
      {d.gates.length ? (
        <table class="grid" data-testid="gates">
          <thead>
            <tr>
              <th>Metric</th>
              <th>Rule</th>
              <th>Run's value</th>
              <th>Held</th>
            </tr>
          </thead>
          <tbody>
            {d.gates.map((g) => (
              <tr>
                <td>{g.metric}</td>
                <td class="mono">
                  {g.op} {num(g.value)}
                </td>
                <td class="mono">{g.actual === null ? "no such metric" : num(g.actual)}</td>
                <td class={g.held === false ? "error" : ""}>{held(g.held)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : (
        <p class="muted">No gates.</p>
      )}
      {d.gates_message && <p class="muted">{d.gates_message}</p>}
      <h3>Stage history</h3>
      {d.stage_history.length ? (
        <table class="grid" data-testid="stage-history">
          <thead>
            <tr>
              <th>When</th>
              <th>From</th>
              <th>To</th>
              <th>Reason</th>
            </tr>
          </thead>
          <tbody>
            {d.stage_history.map((h) => (
              <tr>
                <td>{h.time}</td>
                <td>
                  <Stage stage={h.from} />
                </td>
                <td>
                  <Stage stage={h.to} />
                </td>
                <td>{h.reason}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : (
        <p class="muted">No stage change yet.</p>
      )}
      {d.conditions.length > 0 && (
        <p class="muted" data-testid="conditions">
          {d.conditions.map((c) => `${c.type}=${c.status}${c.message ? ` (${c.message})` : ""}`).join(" · ")}
        </p>
      )}
    </div>
  );
}

export function ModelPage(props: { name: string }) {
  const [versions, setVersions] = useState<ModelVersion[] | null>(null);
  const [details, setDetails] = useState<VersionDetail[]>([]);
  const [webhooks, setWebhooks] = useState<WebhookStatus | null>(null);
  const [error, setError] = useState<Error | null>(null);
  useEffect(
    () =>
      void fromCluster(() => Promise.all([searchModelVersions(props.name), versionDetails(props.name)])).then(([v, d]) => {
        setVersions(v);
        setDetails(d.model_versions);
        setWebhooks(d.webhooks);
      }, setError),
    [props.name],
  );
  const byVersion = new Map(details.map((d) => [d.version, d]));
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
              <th>Gates</th>
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
                  <td>
                    <a href={`#version-${v.version}`} onClick={(e) => jump(e, v.version)}>
                      v{v.version}
                    </a>
                  </td>
                  <td>
                    <Stage stage={v.current_stage} />
                  </td>
                  <td>{(v.aliases || []).map((a) => "@" + a).join(", ")}</td>
                  <td title={v.status_message || ""}>{v.status || ""}</td>
                  <td>{gatesSummary(byVersion.get(v.version))}</td>
                  <td>{v.run_id ? <a href={href(["runs", v.run_id])}>{v.run_id}</a> : ""}</td>
                  <td class="mono">{v.source || ""}</td>
                  <td>{time(v.creation_timestamp)}</td>
                </tr>
              ))}
          </tbody>
        </table>
      )}
      {details.length > 0 && (
        <>
          <h2>Gates and stage history</h2>
          <div class="cards" data-testid="version-details">
            {details.map((d) => (
              <VersionCard detail={d} key={d.version} />
            ))}
          </div>
        </>
      )}
      {webhooks && <Webhooks status={webhooks} />}
    </div>
  );
}

/** Registry webhook delivery of this model's events, per receiver (the operator's delivery record). */
function Webhooks(props: { status: WebhookStatus }) {
  const { known, message, receivers } = props.status;
  return (
    <>
      <h2>Webhook deliveries</h2>
      {!known && (
        <p class="muted" data-testid="webhooks-unknown">
          {message}
        </p>
      )}
      {known && receivers.length === 0 && (
        <p class="muted" data-testid="webhooks-none">
          No delivery recorded for this model: the operator sends no webhooks, or none of its events has been tried yet.
        </p>
      )}
      {receivers.length > 0 && (
        <table class="grid" data-testid="webhooks">
          <thead>
            <tr>
              <th>Receiver</th>
              <th>Last delivered</th>
              <th>Last failed</th>
              <th>Error</th>
              <th>Failures since</th>
              <th>Delivered</th>
              <th>Dropped</th>
              <th>Pending</th>
            </tr>
          </thead>
          <tbody>
            {receivers.map((r) => (
              <tr>
                <td class="mono">{r.receiver}</td>
                <td>{r.last_success || "never"}</td>
                <td>{r.last_failure || "never"}</td>
                <td class={r.failures > 0 ? "error" : "muted"}>{r.last_error}</td>
                <td>{r.failures}</td>
                <td>{r.delivered}</td>
                <td>{r.dropped}</td>
                <td>{r.pending}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}

function jump(e: Event, version: string) {
  // The hash is the route: scroll to the card instead of navigating.
  e.preventDefault();
  document.querySelector(`[data-testid="version-${version}"]`)?.scrollIntoView();
}
