// One run: its attributes, params, metrics, tags and dataset inputs; metric charts from the
// server's reduced histories; the artifact browser.
import { useEffect, useMemo, useState } from "preact/hooks";
import { getRun, historyWindows, type History, type Run } from "../api";
import { ArtifactBrowser } from "../artifacts";
import { ChartControls, MetricChart, xMetricOf, type ChartOptions, type XAxis } from "../chart";
import { duration, num, time } from "../format";
import { href, setQuery, type Route } from "../route";

const WINDOWS = 1000; // up to 4000 points per chart: more than a chart's pixels across
const CHARTS_SHOWN = 24;

export function chartOptions(q: URLSearchParams): ChartOptions {
  const x = q.get("x");
  const xMetric = q.get("xm") || "";
  const axis = x === "wall" || x === "relative" || (x === "metric" && xMetric) ? (x as XAxis) : "step";
  return { x: axis, xMetric: axis === "metric" ? xMetric : "", smoothing: Number(q.get("smooth")) || 0, log: q.get("log") === "1" };
}

export const saveChartOptions = (o: ChartOptions) =>
  setQuery({
    x: o.x === "step" ? undefined : o.x,
    xm: o.x === "metric" ? o.xMetric : undefined,
    smooth: o.smoothing ? String(o.smoothing) : undefined,
    log: o.log ? "1" : undefined,
  });

function KeyValues(props: { items: { key: string; value: string }[]; testid: string }) {
  if (!props.items.length) return <p class="muted">None.</p>;
  return (
    <table class="grid" data-testid={props.testid}>
      <tbody>
        {[...props.items]
          .sort((a, b) => a.key.localeCompare(b.key))
          .map((i) => (
            <tr>
              <td>{i.key}</td>
              <td class="mono">{i.value}</td>
            </tr>
          ))}
      </tbody>
    </table>
  );
}

function Overview(props: { run: Run }) {
  const { info, data, inputs } = props.run;
  const datasets = inputs?.dataset_inputs || [];
  return (
    <>
      <dl class="kv">
        <dt>Run ID</dt>
        <dd class="mono">{info.run_id}</dd>
        <dt>Experiment</dt>
        <dd>
          <a href={href(["experiments", info.experiment_id])}>{info.experiment_id}</a>
        </dd>
        <dt>Status</dt>
        <dd>{info.status}</dd>
        <dt>Started</dt>
        <dd>{time(info.start_time)}</dd>
        <dt>Duration</dt>
        <dd>{duration(info.start_time, info.end_time)}</dd>
        <dt>User</dt>
        <dd>{info.user_id || ""}</dd>
        <dt>Artifacts</dt>
        <dd class="mono">{info.artifact_uri || ""}</dd>
      </dl>
      <h2>Parameters</h2>
      <KeyValues items={data.params || []} testid="params" />
      <h2>Metrics</h2>
      {(data.metrics || []).length ? (
        <table class="grid" data-testid="metrics">
          <thead>
            <tr>
              <th>Metric</th>
              <th>Last value</th>
              <th>Step</th>
              <th>Logged</th>
            </tr>
          </thead>
          <tbody>
            {[...(data.metrics || [])]
              .sort((a, b) => a.key.localeCompare(b.key))
              .map((m) => (
                <tr>
                  <td>
                    <a href={href(["runs", info.run_id], { tab: "charts", metric: m.key })}>{m.key}</a>
                  </td>
                  <td class="mono">{num(m.value)}</td>
                  <td>{m.step}</td>
                  <td>{time(m.timestamp)}</td>
                </tr>
              ))}
          </tbody>
        </table>
      ) : (
        <p class="muted">None.</p>
      )}
      <h2>Dataset inputs</h2>
      {datasets.length ? (
        <table class="grid" data-testid="datasets">
          <thead>
            <tr>
              <th>Name</th>
              <th>Digest</th>
              <th>Context</th>
              <th>Source</th>
              <th>Schema</th>
              <th>Profile</th>
            </tr>
          </thead>
          <tbody>
            {datasets.map((d) => (
              <tr>
                <td>{d.dataset.name}</td>
                <td class="mono">{d.dataset.digest}</td>
                <td>{(d.tags || []).find((t) => t.key === "mlflow.data.context")?.value || ""}</td>
                <td class="mono">
                  {d.dataset.source_type || ""} {d.dataset.source || ""}
                </td>
                <td class="mono">{d.dataset.schema || ""}</td>
                <td class="mono">{d.dataset.profile || ""}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : (
        <p class="muted">None.</p>
      )}
      <h2>Tags</h2>
      <KeyValues items={data.tags || []} testid="tags" />
    </>
  );
}

function RunChart(props: { run: Run; metric: string; opts: ChartOptions }) {
  const [history, setHistory] = useState<History | null>(null);
  const [error, setError] = useState("");
  useEffect(() => {
    const abort = new AbortController();
    const xMetric = xMetricOf(props.opts);
    setHistory(null);
    historyWindows([props.run.info.run_id], props.metric, WINDOWS, abort.signal, xMetric).then(
      (h) => setHistory(h[0]),
      (e) => abort.signal.aborted || setError(e.message),
    );
    return () => abort.abort();
  }, [props.run.info.run_id, props.metric, xMetricOf(props.opts)]);
  const lines = useMemo(() => (history ? [{ label: props.metric, history }] : []), [history]);
  return (
    <div class="card" data-testid="chart-card">
      {error && <p class="error">{error}</p>}
      {history ? (
        <>
          <MetricChart title={props.metric} lines={lines} opts={props.opts} />
          <p class="muted">
            {history.total} points{history.x_metric_key ? ` at steps that have ${history.x_metric_key}` : ""}{history.total > history.step.length ? `, ${history.step.length} drawn (first, last, min and max of ${WINDOWS} windows)` : ""}
          </p>
        </>
      ) : (
        !error && <p class="muted">loading {props.metric}…</p>
      )}
    </div>
  );
}

function Charts(props: { run: Run; route: Route }) {
  const q = props.route.query;
  const opts = chartOptions(q);
  const keys = (props.run.data.metrics || []).map((m) => m.key).sort();
  const search = q.get("metric") || "";
  const shown = keys.filter((k) => k.toLowerCase().includes(search.toLowerCase()));
  return (
    <>
      <div class="toolbar">
        <input placeholder="metric name" value={search} onInput={(e) => setQuery({ metric: (e.target as HTMLInputElement).value || undefined })} />
        <ChartControls opts={opts} onChange={saveChartOptions} metrics={keys} />
      </div>
      {!keys.length && <p class="muted">This run has no metrics.</p>}
      <div class="cards">
        {shown.slice(0, CHARTS_SHOWN).map((k) => (
          <RunChart run={props.run} metric={k} opts={opts} key={k} />
        ))}
      </div>
      {shown.length > CHARTS_SHOWN && <p class="muted">{shown.length - CHARTS_SHOWN} more metrics: narrow the search to see them.</p>}
    </>
  );
}

export function RunPage(props: { route: Route; runId: string }) {
  const [run, setRun] = useState<Run | null>(null);
  const [error, setError] = useState("");
  useEffect(() => void getRun(props.runId).then(setRun, (e) => setError(e.message)), [props.runId]);
  const tab = props.route.query.get("tab") || "overview";
  if (error) return <p class="error">{error}</p>;
  if (!run) return <p class="muted">loading…</p>;
  const tabLink = (t: string, label: string) => (
    <a href={href(["runs", props.runId], { tab: t === "overview" ? undefined : t })} class={tab === t ? "active" : ""}>
      {label}
    </a>
  );
  return (
    <div class="page">
      <h1>
        <a href={href(["experiments", run.info.experiment_id])}>Runs</a> / <span data-testid="run-name">{run.info.run_name || run.info.run_id}</span>
      </h1>
      <div class="tabs">
        {tabLink("overview", "Overview")}
        {tabLink("charts", "Metric charts")}
        {tabLink("artifacts", "Artifacts")}
      </div>
      {tab === "charts" ? <Charts run={run} route={props.route} /> : tab === "artifacts" ? <ArtifactBrowser runId={props.runId} /> : <Overview run={run} />}
    </div>
  );
}
