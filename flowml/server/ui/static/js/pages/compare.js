// Several runs side by side: metric histories on one chart, parallel coordinates of params
// against a chosen metric, a scatter of any two values, and a diff table.
import { fetchHistories, lineChart, scatterChart } from "../charts.js";
import { add, clear, fmtValue, h, route } from "../dom.js";
import { parallelCoordinates } from "../parcoords.js";
import { flatRun, getRuns } from "../runs_common.js";
import { chartControls } from "./run.js";

const MAX_RUNS = 100;

function select(id, options, value) {
  return h("select", { id }, options.map((o) => h("option", { value: o, selected: o === value }, o)));
}

export async function comparePage(root, _args, query, alive) {
  const ids = (query.get("runs") || "").split(",").filter(Boolean).slice(0, MAX_RUNS);
  if (ids.length < 2) {
    add(root, h("p", null, "Select two or more runs in a runs table to compare them."));
    return;
  }
  const runs = (await getRuns(ids)).map(flatRun);
  if (!alive()) return;
  const metricKeys = [...new Set(runs.flatMap((r) => Object.keys(r.metrics)))].sort();
  const paramKeys = [...new Set(runs.flatMap((r) => Object.keys(r.params)))].sort();
  const valueKeys = [...metricKeys.map((k) => `metrics.${k}`), ...paramKeys.map((k) => `params.${k}`)];
  const valueOf = (r, key) => (key.startsWith("metrics.") ? r.metrics[key.slice(8)] : r.params[key.slice(7)]);
  const label = (r) => `${r.name} (${r.info.run_id.slice(0, 6)})`;

  // One chart, every run's history of one metric.
  const chartBox = h("div", { class: "chart", id: "compare-chart" });
  const metricSelect = select("compare-metric", metricKeys, metricKeys[0]);
  const controls = chartControls(() => drawHistory());
  const cache = {};
  async function drawHistory() {
    const key = metricSelect.value;
    if (!key) { clear(chartBox, h("p", { class: "muted" }, "These runs logged no metrics.")); return; }
    if (!cache[key]) cache[key] = await fetchHistories(ids, [key]);
    if (!alive()) return;
    lineChart(chartBox, runs.map((r) => ({ label: label(r), series: cache[key][`${r.info.run_id}\u0000${key}`], start: r.info.start_time })),
      { ...controls.read(), title: key, height: 320 });
  }
  metricSelect.addEventListener("change", drawHistory);

  // Parallel coordinates: every param that varies, then the chosen metric.
  const pcBox = h("div", { class: "pc-box" });
  const pcMetric = select("pc-metric", metricKeys, metricKeys[0]);
  function drawParallel() {
    const varying = paramKeys.filter((k) => new Set(runs.map((r) => r.params[k])).size > 1);
    const axes = [...(varying.length ? varying : paramKeys).map((k) => `params.${k}`), ...(pcMetric.value ? [`metrics.${pcMetric.value}`] : [])];
    if (axes.length < 2) { clear(pcBox, h("p", { class: "muted" }, "Needs at least one param and one metric.")); return; }
    parallelCoordinates(pcBox, runs.map((r) => ({ label: label(r), values: Object.fromEntries(axes.map((a) => [a, valueOf(r, a)])) })), axes);
  }
  pcMetric.addEventListener("change", drawParallel);

  // Scatter of any two values.
  const scatterBox = h("div", { class: "chart", id: "scatter-chart" });
  const xSelect = select("scatter-x", valueKeys, paramKeys.length ? `params.${paramKeys[0]}` : valueKeys[0]);
  const ySelect = select("scatter-y", valueKeys, metricKeys.length ? `metrics.${metricKeys[0]}` : valueKeys[1]);
  function drawScatter() {
    scatterChart(scatterBox, runs.map((r) => ({ x: Number(valueOf(r, xSelect.value)), y: Number(valueOf(r, ySelect.value)), label: label(r) })),
      { xLabel: xSelect.value, yLabel: ySelect.value });
  }
  xSelect.addEventListener("change", drawScatter);
  ySelect.addEventListener("change", drawScatter);

  // The diff table: params, then latest metrics; rows that differ are marked.
  const onlyDiff = h("input", { type: "checkbox", id: "only-diff" });
  const diffBox = h("div", { class: "table-wrap" });
  function drawDiff() {
    const rows = [];
    const section = (title, keys, pick) => {
      rows.push(h("tr", { class: "section" }, h("th", { colspan: runs.length + 1 }, title)));
      for (const k of keys) {
        const values = runs.map((r) => pick(r)[k]);
        const differs = new Set(values.map(String)).size > 1;
        if (onlyDiff.checked && !differs) continue;
        rows.push(h("tr", { class: differs ? "differs" : null, "data-key": k },
          h("th", { class: "mono" }, k), values.map((v) => h("td", { class: "mono" }, fmtValue(v)))));
      }
    };
    section("Parameters", paramKeys, (r) => r.params);
    section("Metrics", metricKeys, (r) => r.metrics);
    clear(diffBox, h("table", { class: "grid diff", id: "diff-table" },
      h("thead", null, h("tr", null, h("th", null, ""), runs.map((r) => h("th", null, h("a", { href: route("runs", r.info.run_id) }, label(r)))))),
      h("tbody", null, rows)));
  }
  onlyDiff.addEventListener("change", drawDiff);

  add(root, 
    h("h1", null, `Comparing ${runs.length} runs`),
    h("section", null, h("h2", null, "Metric history"), h("div", { class: "toolbar" }, metricSelect), controls.el, chartBox),
    h("section", null, h("h2", null, "Parameters vs metric"), h("div", { class: "toolbar" }, "Colour by ", pcMetric), pcBox),
    h("section", null, h("h2", null, "Scatter"), h("div", { class: "toolbar" }, "x ", xSelect, " y ", ySelect), scatterBox),
    h("section", null, h("h2", null, "Differences"), h("label", { class: "check" }, onlyDiff, "Only rows that differ"), diffBox));
  drawDiff();
  drawParallel();
  drawScatter();
  await drawHistory();
}
