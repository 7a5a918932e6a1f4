// Line charts of metric histories (uPlot: canvas, draws a million points in milliseconds),
// with the x-axis as step, wall time or time relative to the first point.
import uPlot from "uplot";
import { useEffect, useRef } from "preact/hooks";
import type { History } from "./api";
import { color, smooth } from "./format";

export type XAxis = "step" | "wall" | "relative";

export interface ChartOptions {
  x: XAxis;
  smoothing: number;
  log: boolean;
}

export interface Line {
  label: string;
  history: History;
}

function xValues(h: History, x: XAxis): number[] {
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
        axes: [{ label: props.opts.x === "step" ? "step" : props.opts.x === "wall" ? "" : "seconds" }, {}],
        series: [{}, ...props.lines.map((l, i) => ({ label: l.label, stroke: color(i), width: 1.5, points: { show: false } }))],
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
  }, [props.lines, props.opts.x, props.opts.smoothing, props.opts.log, props.title]);
  return <div class="chart" ref={box} />;
}

export function ChartControls(props: { opts: ChartOptions; onChange: (o: ChartOptions) => void }) {
  const { opts, onChange } = props;
  return (
    <div class="toolbar">
      <label>
        x-axis{" "}
        <select value={opts.x} onChange={(e) => onChange({ ...opts, x: (e.target as HTMLSelectElement).value as XAxis })}>
          <option value="step">step</option>
          <option value="wall">wall time</option>
          <option value="relative">relative time</option>
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
