// Compare 2..N runs: overlaid metric lines, parallel coordinates (params -> a metric), a
// scatter of any param or metric against another, and a diff table of params and metrics.
import { useEffect, useMemo, useState } from "preact/hooks";
import { historyWindows, searchExperiments, searchRuns, type History } from "../api";
import { ChartControls, MetricChart, xMetricOf, type Line } from "../chart";
import { color, num, runRow, type RunRow } from "../format";
import { ParallelCoordinates, Scatter, type Axis } from "../plots";
import { href, setQuery, type Route } from "../route";
import { chartOptions, saveChartOptions } from "./run";

const MAX_RUNS = 500;
const POINTS_BUDGET = 200_000; // over all runs of the overlaid chart

async function loadRuns(ids: string[], experiments: string[]): Promise<RunRow[]> {
  const eids = experiments.length ? experiments : (await searchExperiments("")).map((e) => e.experiment_id);
  const list = ids.map((i) => `'${i.replace(/[^0-9a-zA-Z-]/g, "")}'`).join(", ");
  const r = await searchRuns(eids, `attributes.run_id IN (${list})`, [], MAX_RUNS, undefined);
  const byId = new Map((r.runs || []).map((run) => [run.info.run_id, runRow(run)]));
  return ids.map((i) => byId.get(i)).filter((x): x is RunRow => x !== undefined);
}

type Field = `p:${string}` | `m:${string}`;
const fieldLabel = (f: string) => f.slice(2);
const fieldValue = (r: RunRow, f: string) => (f.startsWith("p:") ? r.params[f.slice(2)] : r.metrics[f.slice(2)]);

export function ComparePage(props: { route: Route }) {
  const q = props.route.query;
  const ids = useMemo(() => (q.get("runs") || "").split(",").filter(Boolean).slice(0, MAX_RUNS), [q.get("runs")]);
  const [runs, setRuns] = useState<RunRow[] | null>(null);
  const [error, setError] = useState("");
  useEffect(() => {
    loadRuns(ids, (q.get("exp") || "").split(",").filter(Boolean)).then(setRuns, (e) => setError(e.message));
  }, [ids]);

  const params = useMemo(() => [...new Set((runs || []).flatMap((r) => Object.keys(r.params)))].sort(), [runs]);
  const metrics = useMemo(() => [...new Set((runs || []).flatMap((r) => Object.keys(r.metrics)))].sort(), [runs]);
  const metric = q.get("metric") || metrics[0] || "";
  const fields: Field[] = [...params.map((p) => `p:${p}` as Field), ...metrics.map((m) => `m:${m}` as Field)];
  const xField = q.get("sx") || fields[0] || "";
  const yField = q.get("sy") || (metric ? `m:${metric}` : fields[1] || "");

  if (error) return <p class="error">{error}</p>;
  if (ids.length < 2) return <p class="muted">Choose two or more runs in a runs table to compare them.</p>;
  if (!runs) return <p class="muted">loading…</p>;
  const pick = (name: string, value: string, options: string[], label: (o: string) => string = (o) => o) => (
    <select value={value} onChange={(e) => setQuery({ [name]: (e.target as HTMLSelectElement).value })}>
      {options.map((o) => (
        <option value={o}>{label(o)}</option>
      ))}
    </select>
  );
  const varying = params.filter((p) => new Set(runs.map((r) => r.params[p])).size > 1);
  const axes: Axis[] = [
    ...(varying.length ? varying : params).slice(0, 10).map((p) => ({ label: p, values: runs.map((r) => r.params[p]) })),
    ...(metric ? [{ label: metric, values: runs.map((r) => r.metrics[metric]) }] : []),
  ];
  return (
    <div class="page">
      <h1>Compare {runs.length} runs</h1>
      <table class="grid" data-testid="compared-runs">
        <tbody>
          {runs.map((r, i) => (
            <tr>
              <td style={{ width: "16px", background: color(i) }} />
              <td>
                <a href={href(["runs", r.id])}>{r.name}</a>
              </td>
              <td class="mono muted">{r.id}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <h2>Metric {pick("metric", metric, metrics)}</h2>
      <ChartControls opts={chartOptions(q)} onChange={saveChartOptions} metrics={metrics} />
      {metric && <Overlay runs={runs} metric={metric} route={props.route} />}
      <h2>Parallel coordinates: params → {metric}</h2>
      <div class="card" data-testid="parallel">
        <ParallelCoordinates axes={axes} />
      </div>
      <h2>
        Scatter {pick("sx", xField, fields, fieldLabel)} against {pick("sy", yField, fields, fieldLabel)}
      </h2>
      <div class="card" data-testid="scatter">
        <Scatter
          x={{ label: fieldLabel(xField), values: runs.map((r) => fieldValue(r, xField)) }}
          y={{ label: fieldLabel(yField), values: runs.map((r) => fieldValue(r, yField)) }}
          colors={runs.map((_, i) => color(i))}
        />
      </div>
      <DiffTable runs={runs} params={params} metrics={metrics} all={q.get("all") === "1"} />
    </div>
  );
}

function Overlay(props: { runs: RunRow[]; metric: string; route: Route }) {
  const [histories, setHistories] = useState<History[] | null>(null);
  const [error, setError] = useState("");
  const windows = Math.max(10, Math.min(1000, Math.floor(POINTS_BUDGET / 4 / props.runs.length)));
  useEffect(() => {
    const abort = new AbortController();
    setHistories(null);
    const having = props.runs.filter((r) => props.metric in r.metrics).map((r) => r.id);
    const xMetric = xMetricOf(chartOptions(props.route.query));
    historyWindows(having, props.metric, windows, abort.signal, xMetric).then(setHistories, (e) => abort.signal.aborted || setError(e.message));
    return () => abort.abort();
  }, [props.runs, props.metric, xMetricOf(chartOptions(props.route.query))]);
  const lines = useMemo<Line[]>(() => {
    const byId = new Map((histories || []).map((h) => [h.run_id, h]));
    return props.runs.flatMap((r) => {
      const h = byId.get(r.id);
      return h ? [{ label: r.name, history: h }] : [];
    });
  }, [histories]);
  if (error) return <p class="error">{error}</p>;
  if (!histories) return <p class="muted">loading…</p>;
  return (
    <div class="card" data-testid="overlay">
      <MetricChart title={props.metric} lines={lines} opts={chartOptions(props.route.query)} height={320} />
    </div>
  );
}

function DiffTable(props: { runs: RunRow[]; params: string[]; metrics: string[]; all: boolean }) {
  const differs = (values: unknown[]) => new Set(values.map(String)).size > 1;
  const rows = [
    ...props.params.map((p) => ({ kind: "param", key: p, values: props.runs.map((r) => r.params[p] ?? "") })),
    ...props.metrics.map((m) => ({ kind: "metric", key: m, values: props.runs.map((r) => num(r.metrics[m])) })),
  ].filter((row) => props.all || differs(row.values));
  return (
    <>
      <h2>
        Differences{" "}
        <label class="muted">
          <input type="checkbox" checked={props.all} onChange={(e) => setQuery({ all: (e.target as HTMLInputElement).checked ? "1" : undefined })} /> show
          equal values too
        </label>
      </h2>
      <div style={{ overflow: "auto" }}>
        <table class="grid" data-testid="diff">
          <thead>
            <tr>
              <th />
              <th>Key</th>
              {props.runs.map((r) => (
                <th>{r.name}</th>
              ))}
            </tr>
          </thead>
          <tbody>
            {rows.map((row) => {
              const diff = differs(row.values);
              return (
                <tr>
                  <td class="muted">{row.kind}</td>
                  <td>{row.key}</td>
                  {row.values.map((v) => (
                    <td class={"mono" + (diff ? " diff" : "")}>{v}</td>
                  ))}
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
    </>
  );
}
