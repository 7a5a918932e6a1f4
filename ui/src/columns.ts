// Columns of the runs table: an id in the URL, a header, a value per run, and how to sort.
import { num, time, duration, type RunRow } from "./format";

export type Agg = "last" | "min" | "max";

export interface Column {
  id: string; // in the URL: a:<attr>, p:<key>, t:<key>, m:<agg>:<key>
  kind: "a" | "p" | "t" | "m";
  key: string;
  agg: Agg;
  title: string;
}

const ATTRIBUTES: Record<string, string> = {
  status: "Status",
  start_time: "Started",
  duration: "Duration",
  user_id: "User",
};

export function parseColumn(id: string): Column | null {
  const kind = id.slice(0, 2);
  if (kind === "a:" && ATTRIBUTES[id.slice(2)]) return { id, kind: "a", key: id.slice(2), agg: "last", title: ATTRIBUTES[id.slice(2)] };
  if (kind === "p:" || kind === "t:") return { id, kind: kind[0] as "p" | "t", key: id.slice(2), agg: "last", title: id.slice(2) };
  const m = /^m:(last|min|max):(.+)$/.exec(id);
  if (m) return { id, kind: "m", key: m[2], agg: m[1] as Agg, title: m[1] === "last" ? m[2] : `${m[2]} (${m[1]})` };
  return null;
}

export const attributeColumns = () => Object.keys(ATTRIBUTES).map((k) => parseColumn("a:" + k)!);
export const metricId = (key: string, agg: Agg) => `m:${agg}:${key}`;

/** Column ids travel in the URL as one comma list: a comma (or %) in a key is escaped first. */
export const encodeColumns = (ids: string[]) => ids.map((id) => id.replace(/%/g, "%25").replace(/,/g, "%2C")).join(",");
export const decodeColumns = (s: string) =>
  s
    .split(",")
    .filter(Boolean)
    .map(decodeURIComponent)
    .map(parseColumn)
    .filter((c): c is Column => c !== null);

export type Extremes = Record<string, Record<string, [number, number]>>;

export function cellValue(c: Column, r: RunRow, extremes: Extremes): string | number | undefined {
  switch (c.kind) {
    case "a":
      if (c.key === "start_time") return r.run.info.start_time;
      if (c.key === "duration") return r.run.info.end_time && r.run.info.start_time ? r.run.info.end_time - r.run.info.start_time : undefined;
      return (r.run.info as unknown as Record<string, string>)[c.key];
    case "p":
      return r.params[c.key];
    case "t":
      return r.tags[c.key];
    case "m":
      if (c.agg === "last") return r.metrics[c.key];
      return extremes[c.key]?.[r.id]?.[c.agg === "min" ? 0 : 1];
  }
}

export function cellText(c: Column, r: RunRow, extremes: Extremes): string {
  const v = cellValue(c, r, extremes);
  if (c.kind === "a" && c.key === "start_time") return time(v as number);
  if (c.kind === "a" && c.key === "duration") return duration(r.run.info.start_time, r.run.info.end_time);
  return c.kind === "m" ? num(v) : v === undefined ? "" : String(v);
}

const quoteKey = (k: string) => "`" + k.replace(/`/g, "") + "`";

/** The server's ORDER BY for a column, or null when only the browser can sort it (min, max). */
export function serverOrder(c: Column, dir: "ASC" | "DESC"): string | null {
  if (c.kind === "a") return c.key === "duration" ? null : `attributes.${c.key} ${dir}`;
  if (c.kind === "p") return `params.${quoteKey(c.key)} ${dir}`;
  if (c.kind === "t") return `tags.${quoteKey(c.key)} ${dir}`;
  return c.agg === "last" ? `metrics.${quoteKey(c.key)} ${dir}` : null;
}

export function compareRows(c: Column, dir: "ASC" | "DESC", extremes: Extremes): (a: RunRow, b: RunRow) => number {
  const sign = dir === "ASC" ? 1 : -1;
  return (a, b) => {
    const x = cellValue(c, a, extremes);
    const y = cellValue(c, b, extremes);
    if (x === undefined || y === undefined) return x === y ? 0 : x === undefined ? 1 : -1; // missing last, as MLflow
    return (x < y ? -1 : x > y ? 1 : 0) * sign;
  };
}
