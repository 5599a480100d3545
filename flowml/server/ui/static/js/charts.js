// Charts drawn by uPlot (vendored, MIT): metric histories and scatters. Drag to zoom,
// double-click to reset; the x axis is the step, the wall-clock time or the time since start.
import { flowml } from "./api.js";
import { h, num } from "./dom.js";

export const PALETTE = ["#1f6feb", "#d1242f", "#1a7f37", "#9a6700", "#8250df", "#bf3989",
  "#0a7f8f", "#fb8500", "#57606a", "#3d5a80"];
const MAX_POINTS = 1000;

/**
 * Downsampled histories, min/max preserving (flowml's /metrics/history): at most
 * MAX_POINTS per series whatever the run logged. Returns { "<run>\u0000<key>": series }.
 */
export async function fetchHistories(runIds, keys, maxPoints = MAX_POINTS) {
  const out = {};
  // The server caps one request at 1000 series; ask in slices below that.
  const perRequest = Math.max(1, Math.floor(500 / keys.length));
  for (let i = 0; i < runIds.length; i += perRequest) {
    const data = await flowml.post("metrics/history", {
      run_ids: runIds.slice(i, i + perRequest), metric_keys: keys, max_points: maxPoints,
    });
    for (const s of data.series || []) out[`${s.run_id}\u0000${s.key}`] = s;
  }
  return out;
}

/** Exponential moving average with bias correction (TensorBoard's smoothing). */
export function smooth(values, weight) {
  if (!weight) return values;
  let last = 0, count = 0;
  return values.map((v) => {
    if (v === null || !Number.isFinite(v)) return v;
    last = last * weight + (1 - weight) * v;
    count++;
    return last / (1 - weight ** count);
  });
}

function xsOf(series, xAxis, start) {
  if (xAxis === "step") return series.steps;
  if (xAxis === "time") return series.timestamps.map((t) => t / 1000);
  return series.timestamps.map((t) => (t - start) / 1000);
}

/**
 * Draw several series on one uPlot chart into `container`.
 * lines: [{ label, series (from fetchHistories), start (run start ms) }]
 * options: { xAxis: "step"|"time"|"relative", log: bool, smoothing: 0..0.99, title, height }
 */
export function lineChart(container, lines, options) {
  const { xAxis = "step", log = false, smoothing = 0, title = "", height = 260 } = options;
  const usable = lines.filter((l) => l.series && l.series.values.length);
  if (!usable.length) {
    container.replaceChildren(h("p", { class: "muted" }, `${title}: no values`));
    return null;
  }
  const tables = usable.map((l) => {
    let ys = l.series.values.map(num);
    ys = smooth(ys.map((v) => (Number.isFinite(v) ? v : null)), smoothing);
    if (log) ys = ys.map((v) => (v !== null && v > 0 ? v : null));
    const xs = xsOf(l.series, xAxis, l.start);
    // uPlot wants increasing x; histories come ordered by step, so re-sort for time axes.
    const order = xs.map((_, i) => i).sort((a, b) => xs[a] - xs[b]);
    return [order.map((i) => xs[i]), order.map((i) => ys[i])];
  });
  const data = uPlot.join(tables);
  const width = Math.max(320, container.clientWidth || 600);
  const opts = {
    title, width, height,
    scales: { x: { time: xAxis === "time" }, y: log ? { distr: 3 } : {} },
    axes: [{ label: { step: "step", time: "time", relative: "seconds since start" }[xAxis] }, {}],
    cursor: { drag: { x: true, y: false, setScale: true } },
    series: [{}, ...usable.map((l, i) => ({
      label: l.label, stroke: PALETTE[i % PALETTE.length], width: 1.5, spanGaps: true,
      // Dots only where a line alone would hide values (one point, or a few).
      points: { show: l.series.values.length <= 30, size: 6 },
    }))],
  };
  container.replaceChildren();
  const plot = new uPlot(opts, data, container);
  container.title = "Drag to zoom, double-click to reset";
  return plot;
}

/** A scatter of points [{x, y, label}] (each run one point). */
export function scatterChart(container, points, { xLabel, yLabel, height = 320 }) {
  const usable = points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y)).sort((a, b) => a.x - b.x);
  if (!usable.length) {
    container.replaceChildren(h("p", { class: "muted" }, "No run has both values as numbers"));
    return null;
  }
  const width = Math.max(320, container.clientWidth || 600);
  const opts = {
    width, height,
    scales: { x: { time: false } },
    axes: [{ label: xLabel }, { label: yLabel }],
    cursor: { drag: { x: true, y: true, setScale: true } },
    legend: { show: true },
    series: [{ label: xLabel }, {
      label: yLabel, stroke: PALETTE[0], fill: PALETTE[0], paths: () => null,
      points: { show: true, size: 9, fill: PALETTE[0] },
    }],
  };
  container.replaceChildren();
  return new uPlot(opts, [usable.map((p) => p.x), usable.map((p) => p.y)], container);
}
