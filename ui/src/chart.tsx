// Line charts of metric histories (uPlot: canvas, draws a million points in milliseconds),
// with the x-axis as step, wall time, time relative to the first point, or another metric
// (the server joins it on the step: History.x).
import uPlot from "uplot";
import { useEffect, useRef } from "preact/hooks";
import type { History } from "./api";
import { color, smooth } from "./format";

export type XAxis = "step" | "wall" | "relative" | "metric";

export interface ChartOptions {
  x: XAxis;
  /** The x-axis metric when x is "metric". */
  xMetric: string;
  smoothing: number;
  log: boolean;
}

/** The metric whose values are the x-axis, if any: what a chart asks the server to join. */
export const xMetricOf = (o: ChartOptions) => (o.x === "metric" && o.xMetric ? o.xMetric : undefined);

export interface Line {
  label: string;
  history: History;
}

function xValues(h: History, x: XAxis): number[] {
  if (x === "metric") return h.x || [];
  if (x === "step") return h.step;
  const t0 = h.timestamp.length ? Math.min(...h.timestamp.slice(0, 1000)) : 0;
  return x === "wall" ? h.timestamp.map((t) => t / 1000) : h.timestamp.map((t) => (t - t0) / 1000);
}

/** One series as [x, y] sorted by x (uPlot needs ascending x), y ready for a log axis. */
function table(h: History, opts: ChartOptions): [number[], (number | null)[]] {
  const xs = xValues(h, opts.x);
  let ys: (number | null)[] = h.value;
  if (opts.log) ys = ys.map((v) => (v !== null && v > 0 ? v : null));
  let order: number[] | null = null;
  for (let i = 1; i < xs.length; i++)
    if (xs[i] < xs[i - 1]) {
      order = xs.map((_, j) => j).sort((a, b) => xs[a] - xs[b]);
      break;
    }
  const sx = order ? order.map((i) => xs[i]) : xs;
  const sy = order ? order.map((i) => ys[i]) : ys;
  return [sx, smooth(sy, opts.smoothing)];
}

const xLabel = (o: ChartOptions) => (o.x === "step" ? "step" : o.x === "wall" ? "" : o.x === "metric" ? o.xMetric : "seconds");

export function MetricChart(props: { title: string; lines: Line[]; opts: ChartOptions; height?: number }) {
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const tables = props.lines.map((l) => table(l.history, props.opts));
    const data = (tables.length === 1 ? tables[0] : uPlot.join(tables as uPlot.AlignedData[])) as uPlot.AlignedData;
    const plot = new uPlot(
      {
        width: Math.max(200, el.clientWidth),
        height: props.height || 240,
        title: props.title,
        legend: { show: props.lines.length <= 12 },
        scales: { x: { time: props.opts.x === "wall" }, y: { distr: props.opts.log ? 3 : 1 } },
        axes: [{ label: xLabel(props.opts) }, {}],
        series: [props.opts.x === "metric" ? { label: props.opts.xMetric } : {}, ...props.lines.map((l, i) => ({ label: l.label, stroke: color(i), width: 1.5, points: { show: false } }))],
      },
      data,
      el,
    );
    const resize = new ResizeObserver(() => plot.setSize({ width: Math.max(200, el.clientWidth), height: props.height || 240 }));
    resize.observe(el);
    return () => {
      resize.disconnect();
      plot.destroy();
    };
  }, [props.lines, props.opts.x, props.opts.xMetric, props.opts.smoothing, props.opts.log, props.title]);
  return <div class="chart" ref={box} />;
}

/** The x-axis choice: step, wall time, relative time, or any of ``metrics`` ("metric:<key>"). */
export function ChartControls(props: { opts: ChartOptions; onChange: (o: ChartOptions) => void; metrics?: string[] }) {
  const { opts, onChange } = props;
  const value = opts.x === "metric" ? "metric:" + opts.xMetric : opts.x;
  const choose = (v: string) =>
    onChange(v.startsWith("metric:") ? { ...opts, x: "metric", xMetric: v.slice(7) } : { ...opts, x: v as XAxis, xMetric: "" });
  const metrics = [...(props.metrics || [])];
  if (opts.x === "metric" && opts.xMetric && !metrics.includes(opts.xMetric)) metrics.push(opts.xMetric);
  return (
    <div class="toolbar">
      <label>
        x-axis{" "}
        <select data-testid="x-axis" value={value} onChange={(e) => choose((e.target as HTMLSelectElement).value)}>
          <option value="step">step</option>
          <option value="wall">wall time</option>
          <option value="relative">relative time</option>
          {metrics.length > 0 && (
            <optgroup label="another metric">
              {metrics.map((m) => (
                <option value={"metric:" + m}>{m}</option>
              ))}
            </optgroup>
          )}
        </select>
      </label>
      <label>
        smoothing{" "}
        <input
          type="range"
          min="0"
          max="0.99"
          step="0.01"
          value={opts.smoothing}
          onInput={(e) => onChange({ ...opts, smoothing: Number((e.target as HTMLInputElement).value) })}
        />{" "}
        {opts.smoothing.toFixed(2)}
      </label>
      <label>
        <input type="checkbox" checked={opts.log} onChange={(e) => onChange({ ...opts, log: (e.target as HTMLInputElement).checked })} /> log
        scale
      </label>
    </div>
  );
}
