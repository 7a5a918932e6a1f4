// The Kubernetes side: Experiment objects with their trials (linked to their runs), and
// ModelDeployments with their variants, versions, live split and ready replicas. Read from
// the tracking server's registry reader; absent, with a note, without cluster access.
import { useEffect, useState } from "preact/hooks";
import {
  kubeDeploymentLive,
  kubeDeployments,
  kubeExperiments,
  type ABReadout,
  type LiveFigures,
  type LiveVariant,
  type Condition,
  type KubeDeployment,
  type KubeExperiment,
} from "../api";
import { num } from "../format";
import { href } from "../route";
import { fromCluster, Unavailable } from "./models";

function useCluster<T>(load: () => Promise<T>): [T | null, Error | null] {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<Error | null>(null);
  useEffect(() => void fromCluster(load).then(setData, setError), []);
  return [data, error];
}

const Phase = (props: { phase: string }) => <span class={"badge phase-" + props.phase}>{props.phase || "—"}</span>;

const notReady = (conditions: Condition[]) =>
  conditions.filter((c) => c.status !== "True" && c.type === "Ready" && c.message).map((c) => c.message)[0] || "";

function ExperimentCard(props: { e: KubeExperiment }) {
  const e = props.e;
  const params = [...new Set(e.trials.flatMap((t) => Object.keys(t.parameters)))].sort();
  return (
    <div class="card wide" data-testid="kube-experiment">
      <h2>
        <span data-testid="kube-experiment-name">{e.name}</span> <Phase phase={e.phase} />{" "}
        <span class="muted">
          {e.namespace} · trials {e.trials_summary || `${e.trials.length}/${e.max_trials}`}
          {e.algorithm && ` · ${e.algorithm}`}
          {e.objective && ` · ${e.objective.goal} ${e.objective.metric}`}
        </span>
      </h2>
      <p class="muted">
        {e.experiment_id && (
          <>
            Tracking experiment <a href={href(["experiments", e.experiment_id])}>{e.experiment_id}</a>
          </>
        )}
        {e.model_version && ` · registered ModelVersion ${e.model_version}`}
        {(e.message || notReady(e.conditions)) && ` · ${e.message || notReady(e.conditions)}`}
      </p>
      {e.trials.length ? (
        <table class="grid" data-testid="trials">
          <thead>
            <tr>
              <th>Trial</th>
              <th>Phase</th>
              {params.map((p) => (
                <th>{p}</th>
              ))}
              <th>{e.objective ? e.objective.metric : "objective"}</th>
              <th>Stopped early</th>
              <th>Run</th>
              <th>Message</th>
            </tr>
          </thead>
          <tbody>
            {e.trials.map((t) => (
              <tr class={t.number === e.best_trial ? "best" : ""}>
                <td>
                  #{t.number}
                  {t.number === e.best_trial && <span class="badge Production">best</span>}
                </td>
                <td>
                  <Phase phase={t.phase} />
                </td>
                {params.map((p) => (
                  <td class="mono">{p in t.parameters ? String(t.parameters[p]) : ""}</td>
                ))}
                <td class="mono">{num(t.objective)}</td>
                <td>{t.stopped ? "yes (pruned)" : "no"}</td>
                <td>{t.run_id ? <a href={href(["runs", t.run_id])}>{t.run_id.slice(0, 12)}</a> : ""}</td>
                <td>{t.message}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : (
        <p class="muted">No trials yet.</p>
      )}
    </div>
  );
}

export function KubeExperimentsPage() {
  const [items, error] = useCluster(kubeExperiments);
  return (
    <div class="page">
      <h1>Experiments in the cluster</h1>
      {error && <Unavailable error={error} testid="cluster-error" />}
      {items && !items.length && <p class="muted">No Experiment objects.</p>}
      {items && items.map((e) => <ExperimentCard e={e} key={`${e.namespace}/${e.name}`} />)}
    </div>
  );
}

const fixed = (v: number | null | undefined, digits = 3) => (v === null || v === undefined ? "" : v.toFixed(digits));

function Readout(props: { e: ABReadout }) {
  const e = props.e;
  const what = e.metric === "binary" ? "Rate" : "Mean reward";
  return (
    <div data-testid="ab-readout">
      <h3>
        A/B readout <span class="badge">{e.verdict ?? "collecting"}</span>{" "}
        <span class="muted">
          {e.metric} outcomes · control {e.control} · {Math.round((e.confidence ?? 0.95) * 100)} % intervals · minSamples{" "}
          {e.minSamples}
        </span>
      </h3>
      <table class="grid">
        <thead>
          <tr>
            <th>Variant</th>
            <th>Version</th>
            <th>Samples</th>
            <th>{what}</th>
            <th>Interval</th>
            <th>Difference</th>
            <th>p-value</th>
            <th>Verdict</th>
          </tr>
        </thead>
        <tbody>
          {e.variants.map((a) => (
            <tr>
              <td>
                {a.name}
                {a.control && <span class="badge">control</span>}
              </td>
              <td>{a.version !== null ? `v${a.version}` : ""}</td>
              <td>{a.samples ?? 0}</td>
              <td>{fixed(a.mean)}</td>
              <td>{a.ciLow !== null ? `${fixed(a.ciLow)} – ${fixed(a.ciHigh)}` : ""}</td>
              <td>{a.difference !== null ? (a.difference >= 0 ? "+" : "") + fixed(a.difference) : ""}</td>
              <td>{a.pValue !== null ? a.pValue.toPrecision(2) : ""}</td>
              <td data-testid="ab-verdict">{a.control ? "" : a.verdict ?? "collecting"}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <p class="muted">{e.message}</p>
    </div>
  );
}

const pct = (v: number | null | undefined) => (v === null || v === undefined ? "" : `${v} %`);

const LIVE_EVERY_MS = 5000;

/** A variant's live figures in one line: over the window, or since its pods started on the first look. */
function liveText(v: LiveVariant | undefined): string {
  if (!v) return "…";
  if (!v.reachable) return v.message;
  const errors = v.error_rate === null || v.error_rate === undefined ? "no requests" : `error rate ${(v.error_rate * 100).toFixed(1)} %`;
  const p99 = v.p99_over_max ? "p99 over 10 s" : v.p99_ms === null || v.p99_ms === undefined ? "p99 n/a" : `p99 ${v.p99_ms} ms`;
  const head =
    v.window_s === null || v.window_s === undefined
      ? `measuring the rate; since start: ${v.requests ?? 0} requests`
      : `${(v.request_rate ?? 0).toFixed(2)} req/s over ${Math.round(v.window_s)} s`;
  return `${head}, ${errors}, ${p99}${v.message ? ` (${v.message})` : ""}`;
}

/** The card's live figures, asked again every few seconds while the page is open. */
function useLive(d: KubeDeployment): LiveFigures | null {
  const [live, setLive] = useState<LiveFigures | null>(null);
  useEffect(() => {
    let stop = false;
    let timer = 0;
    const tick = () =>
      // A hidden tab asks nothing (the server scrapes only for pages that look).
      void (document.hidden ? Promise.resolve(null) : kubeDeploymentLive(d.namespace, d.name))
        .then(
          (l) => !stop && l && setLive(l),
          () => undefined, // a failed poll keeps the last figures; the next one tries again
        )
        .then(() => {
          if (!stop) timer = window.setTimeout(tick, LIVE_EVERY_MS);
        });
    tick();
    return () => {
      stop = true;
      window.clearTimeout(timer);
    };
  }, [d.namespace, d.name]);
  return live;
}

function DeploymentCard(props: { d: KubeDeployment }) {
  const d = props.d;
  const live = useLive(d);
  return (
    <div class="card wide" data-testid="kube-deployment">
      <h2>
        <span data-testid="kube-deployment-name">{d.name}</span> <Phase phase={d.phase} />{" "}
        <span class="muted">
          {d.namespace} · model <a href={href(["models", d.model])}>{d.model}</a>
          {d.ready && ` · ready ${d.ready}`}
          {d.rollout && ` · ${d.rollout}`}
        </span>
      </h2>
      <p class="muted">
        {d.split && <span data-testid="split">live split {d.split}</span>}
        {d.url && ` · ${d.url}`}
        {d.message && ` · ${d.message}`}
      </p>
      <table class="grid" data-testid="variants">
        <thead>
          <tr>
            <th>Variant</th>
            <th>Asks for</th>
            <th>Serves</th>
            <th>Weight (spec)</th>
            <th>Live weight</th>
            <th>Ready / desired</th>
            <th>Live (its model servers' /metrics)</th>
            <th>Canary figures (last step)</th>
            <th>Message</th>
          </tr>
        </thead>
        <tbody>
          {d.variants.map((v) => (
            <tr>
              <td>
                {v.name}
                {v.shadow && <span class="badge">shadow</span>}
              </td>
              <td>{v.selector}</td>
              <td>{v.version !== null ? <a href={href(["models", d.model])}>v{v.version}</a> : ""}</td>
              <td>{pct(v.weight)}</td>
              <td data-testid="live-weight">{pct(v.effective_weight)}</td>
              <td>{v.replicas === null ? "" : `${v.ready_replicas ?? 0} / ${v.replicas}`}</td>
              <td class="mono" data-testid="live-figures">
                {liveText(live?.variants[v.name])}
              </td>
              <td class="mono">
                {v.canary
                  ? `${v.canary.requests ?? 0} requests, error rate ${((v.canary.error_rate ?? 0) * 100).toFixed(1)} %, p99 ${
                      v.canary.p99_ms === null ? "n/a" : `${v.canary.p99_ms} ms`
                    }`
                  : ""}
              </td>
              <td>{v.message}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {d.canary && (
        <p data-testid="canary">
          Canary of {d.canary.variant}: v{d.canary.from_version} → v{d.canary.to_version}, {d.canary.phase}, step {d.canary.step + 1}/
          {d.canary.steps}
          {d.canary.message && ` · ${d.canary.message}`}
        </p>
      )}
      {d.experiment && <Readout e={d.experiment} />}
      <p class="muted" data-testid="metrics-note">
        {d.metrics_note}
      </p>
    </div>
  );
}

export function KubeDeploymentsPage() {
  const [items, error] = useCluster(kubeDeployments);
  return (
    <div class="page">
      <h1>Model deployments</h1>
      {error && <Unavailable error={error} testid="cluster-error" />}
      {items && !items.length && <p class="muted">No ModelDeployment objects.</p>}
      {items && items.map((d) => <DeploymentCard d={d} key={`${d.namespace}/${d.name}`} />)}
    </div>
  );
}
