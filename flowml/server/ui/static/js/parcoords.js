// Parallel coordinates in SVG: one vertical axis per param (numeric or categorical) and the
// chosen metric last; one polyline per run, coloured by that metric (blue low, red high).
import { h, s } from "./dom.js";

const W_AXIS = 150, H = 300, PAD_T = 30, PAD_B = 24, PAD_X = 90;

function axisOf(values) {
  const numbers = values.filter((v) => v !== undefined && v !== "" && !Number.isNaN(Number(v))).map(Number);
  if (numbers.length === values.filter((v) => v !== undefined).length && numbers.length) {
    let lo = Math.min(...numbers), hi = Math.max(...numbers);
    if (lo === hi) { lo -= 1; hi += 1; }
    return { kind: "number", lo, hi, at: (v) => (Number(v) - lo) / (hi - lo), ticks: [lo, hi] };
  }
  const cats = [...new Set(values.filter((v) => v !== undefined).map(String))].sort();
  const at = (v) => (cats.length < 2 ? 0.5 : cats.indexOf(String(v)) / (cats.length - 1));
  return { kind: "category", cats, at, ticks: cats };
}

function colour(t) {
  const r = Math.round(31 + t * (209 - 31)), g = Math.round(111 - t * (111 - 36)), b = Math.round(235 - t * (235 - 47));
  return `rgb(${r},${g},${b})`;
}

/**
 * rows: [{ label, values: { axisName: value } }]; axes: names (metric last).
 */
export function parallelCoordinates(container, rows, axes) {
  const width = PAD_X * 2 + (axes.length - 1) * W_AXIS;
  const scales = axes.map((a) => axisOf(rows.map((r) => r.values[a])));
  const y = (t) => PAD_T + (1 - t) * (H - PAD_T - PAD_B);
  const svg = s("svg", { class: "parcoords", id: "parallel-coordinates", width, height: H, viewBox: `0 0 ${width} ${H}` });
  const metric = scales[scales.length - 1];
  rows.forEach((row) => {
    const points = [];
    axes.forEach((a, i) => {
      const v = row.values[a];
      if (v === undefined) return;
      points.push(`${PAD_X + i * W_AXIS},${y(scales[i].at(v))}`);
    });
    const last = row.values[axes[axes.length - 1]];
    const c = last === undefined || metric.kind !== "number" ? "#8c959f" : colour(metric.at(last));
    svg.append(s("polyline", { points: points.join(" "), stroke: c, class: "pc-line" }, s("title", { text: row.label })));
  });
  axes.forEach((a, i) => {
    const x = PAD_X + i * W_AXIS;
    svg.append(s("line", { x1: x, x2: x, y1: PAD_T, y2: H - PAD_B, class: "pc-axis" }));
    svg.append(s("text", { x, y: 16, class: "pc-name", "text-anchor": "middle", text: a.length > 22 ? `${a.slice(0, 21)}…` : a }));
    const sc = scales[i];
    const ticks = sc.kind === "number" ? sc.ticks : sc.cats.slice(0, 12);
    for (const t of ticks) {
      svg.append(s("text", { x: x + 4, y: y(sc.at(t)) + 4, class: "pc-tick", text: typeof t === "number" ? +t.toPrecision(4) : t }));
    }
  });
  container.replaceChildren(h("div", { class: "scroll-x" }, svg));
}
