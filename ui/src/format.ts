// Formatting and small pure helpers shared by the pages.
import type { KV, Run, TableRun } from "./api";

export function num(v: unknown): string {
  if (typeof v === "string") return v;
  if (typeof v !== "number" || Number.isNaN(v)) return v === undefined || v === null ? "" : "NaN";
  if (Number.isInteger(v) && Math.abs(v) < 1e15) return String(v);
  const a = Math.abs(v);
  return a !== 0 && (a < 1e-4 || a >= 1e9) ? v.toExponential(4) : String(Number(v.toPrecision(6)));
}

export function time(ms?: number): string {
  if (!ms) return "";
  const d = new Date(ms);
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function duration(start?: number, end?: number): string {
  if (!start || !end) return "";
  const s = Math.max(0, (end - start) / 1000);
  if (s < 60) return `${s.toFixed(1)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${Math.round(s % 60)}s`;
  return `${Math.floor(s / 3600)}h ${Math.round((s % 3600) / 60)}m`;
}

export const toMap = (items?: KV[]): Record<string, string> => Object.fromEntries((items || []).map((i) => [i.key, i.value]));

/** One run as the tables read it: maps instead of lists, built once per loaded run. */
export interface RunRow {
  id: string;
  name: string;
  run: Run;
  params: Record<string, string>;
  metrics: Record<string, number>;
  tags: Record<string, string>;
}

export function runRow(run: Run): RunRow {
  const metrics: Record<string, number> = {};
  for (const m of run.data.metrics || []) metrics[m.key] = typeof m.value === "number" ? m.value : Number(m.value);
  return {
    id: run.info.run_id,
    name: run.info.run_name || run.info.run_id,
    run,
    params: toMap(run.data.params),
    metrics,
    tags: toMap(run.data.tags),
  };
}

/** A run of the runs table's own search (api.searchTableRuns), its maps as they came. */
export function tableRow(t: TableRun): RunRow {
  const metrics: Record<string, number> = {};
  for (const k in t.metrics) {
    const v = t.metrics[k];
    metrics[k] = typeof v === "number" ? v : Number(v); // "NaN", "Infinity", "-Infinity"
  }
  return { id: t.info.run_id, name: t.info.run_name || t.info.run_id, run: { info: t.info, data: {} }, params: t.params, metrics, tags: t.tags };
}

/** A value as a number when it reads as one (params are strings in MLflow). */
export function numeric(v: unknown): number | null {
  if (typeof v === "number") return Number.isFinite(v) ? v : null;
  if (typeof v !== "string" || v.trim() === "") return null;
  const n = Number(v);
  return Number.isFinite(n) ? n : null;
}

export const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
export const color = (i: number) => PALETTE[i % PALETTE.length];

/** TensorBoard's debiased exponential moving average; nulls stay gaps. */
export function smooth(values: (number | null)[], weight: number): (number | null)[] {
  if (weight <= 0) return values;
  let last = 0;
  let n = 0;
  return values.map((v) => {
    if (v === null || !Number.isFinite(v)) return v;
    last = last * weight + (1 - weight) * v;
    n++;
    return last / (1 - Math.pow(weight, n));
  });
}
