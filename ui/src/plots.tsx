// Plots uPlot does not draw: parallel coordinates and a scatter, on a plain canvas.
// Labels are drawn with fillText, so no value ever becomes markup.
import { useEffect, useRef } from "preact/hooks";
import { num } from "./format";

/** An axis of values that may be numbers or categories (params are strings). */
export interface Axis {
  label: string;
  values: (string | number | undefined)[];
}

interface Scale {
  pos: (v: string | number | undefined) => number | null; // 0..1, or null when missing
  ticks: [number, string][];
}

function scale(axis: Axis): Scale {
  const present = axis.values.filter((v) => v !== undefined && v !== "") as (string | number)[];
  const numbers = present.map((v) => (typeof v === "number" ? v : Number(v)));
  if (present.length && numbers.every(Number.isFinite)) {
    const lo = Math.min(...numbers);
    const hi = Math.max(...numbers);
    const span = hi - lo || 1;
    return {
      pos: (v) => (v === undefined || v === "" ? null : (Number(v) - lo) / span),
      ticks: [
        [0, num(lo)],
        [0.5, num(lo + span / 2)],
        [1, num(hi)],
      ],
    };
  }
  const cats = [...new Set(present.map(String))].sort();
  const at = (i: number) => (cats.length === 1 ? 0.5 : i / (cats.length - 1));
  return { pos: (v) => (v === undefined || v === "" ? null : at(cats.indexOf(String(v)))), ticks: cats.slice(0, 20).map((c, i) => [at(i), c]) };
}

function useCanvas(draw: (ctx: CanvasRenderingContext2D, w: number, h: number) => void, deps: unknown[], height: number) {
  const ref = useRef<HTMLCanvasElement>(null);
  useEffect(() => {
    const canvas = ref.current!;
    const paint = () => {
      const ratio = window.devicePixelRatio || 1;
      const w = canvas.clientWidth;
      canvas.width = w * ratio;
      canvas.height = height * ratio;
      const ctx = canvas.getContext("2d")!;
      ctx.scale(ratio, ratio);
      ctx.font = "11px system-ui, sans-serif";
      draw(ctx, w, height);
    };
    paint();
    const resize = new ResizeObserver(paint);
    resize.observe(canvas);
    return () => resize.disconnect();
  }, deps);
  return <canvas class="plain" ref={ref} style={{ height: height + "px" }} />;
}

const clip = (s: string, n = 18) => (s.length > n ? s.slice(0, n - 1) + "…" : s);

/** Blue (low) to red (high), for the value of the last axis. */
const heat = (t: number) => `hsl(${Math.round(240 - 240 * t)}, 70%, 45%)`;

export function ParallelCoordinates(props: { axes: Axis[]; height?: number }) {
  const height = props.height || 320;
  return useCanvas(
    (ctx, w, h) => {
      const axes = props.axes;
      if (axes.length < 2) return;
      const scales = axes.map(scale);
      const top = 28;
      const bottom = h - 24;
      const left = 60;
      const step = (w - left - 60) / (axes.length - 1);
      const x = (i: number) => left + i * step;
      const y = (p: number) => bottom - p * (bottom - top);
      const target = scales[axes.length - 1];
      ctx.globalAlpha = axes[0].values.length > 100 ? 0.35 : 0.8;
      axes[0].values.forEach((_, run) => {
        const t = target.pos(axes[axes.length - 1].values[run]);
        ctx.strokeStyle = t === null ? "#999" : heat(t);
        ctx.beginPath();
        let drawing = false;
        scales.forEach((s, i) => {
          const p = s.pos(axes[i].values[run]);
          if (p === null) return void (drawing = false);
          drawing ? ctx.lineTo(x(i), y(p)) : ctx.moveTo(x(i), y(p));
          drawing = true;
        });
        ctx.stroke();
      });
      ctx.globalAlpha = 1;
      ctx.strokeStyle = "#333";
      ctx.fillStyle = "#333";
      scales.forEach((s, i) => {
        ctx.beginPath();
        ctx.moveTo(x(i), top);
        ctx.lineTo(x(i), bottom);
        ctx.stroke();
        ctx.textAlign = "center";
        ctx.fillText(clip(axes[i].label), x(i), top - 12);
        ctx.textAlign = "left";
        for (const [p, label] of s.ticks) ctx.fillText(clip(label, 12), x(i) + 4, y(p) + 4);
      });
    },
    [props.axes],
    height,
  );
}

export function Scatter(props: { x: Axis; y: Axis; colors: string[]; height?: number }) {
  const height = props.height || 320;
  return useCanvas(
    (ctx, w, h) => {
      const sx = scale(props.x);
      const sy = scale(props.y);
      const left = 70;
      const right = w - 20;
      const top = 12;
      const bottom = h - 36;
      const px = (p: number) => left + 10 + p * (right - left - 20); // inset: no point on the frame
      const py = (p: number) => bottom - 10 - p * (bottom - top - 20);
      ctx.strokeStyle = "#333";
      ctx.fillStyle = "#333";
      ctx.strokeRect(left, top, right - left, bottom - top);
      ctx.textAlign = "center";
      for (const [p, label] of sx.ticks) ctx.fillText(clip(label, 14), px(p), bottom + 14);
      ctx.fillText(clip(props.x.label, 40), (left + right) / 2, h - 6);
      ctx.textAlign = "right";
      for (const [p, label] of sy.ticks) ctx.fillText(clip(label, 10), left - 4, py(p) + 4);
      ctx.save();
      ctx.translate(12, (top + bottom) / 2);
      ctx.rotate(-Math.PI / 2);
      ctx.textAlign = "center";
      ctx.fillText(clip(props.y.label, 40), 0, 0);
      ctx.restore();
      props.x.values.forEach((v, i) => {
        const a = sx.pos(v);
        const b = sy.pos(props.y.values[i]);
        if (a === null || b === null) return;
        ctx.fillStyle = props.colors[i];
        ctx.beginPath();
        ctx.arc(px(a), py(b), 4, 0, 2 * Math.PI);
        ctx.fill();
      });
    },
    [props.x, props.y],
    height,
  );
}
