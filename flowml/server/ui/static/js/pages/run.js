// One run: its facts, params, latest metrics, metric charts, tags, artifacts and lineage.
import { mlflow } from "../api.js";
import { artifactBrowser } from "../artifacts.js";
import { fetchHistories, lineChart } from "../charts.js";
import { add, clear, fmtDuration, fmtTime, fmtValue, h, route, statusBadge } from "../dom.js";
import { lineageGraph } from "../lineage.js";
import { PARENT_TAG, flatRun, prefectLink } from "../runs_common.js";

const DEFAULT_CHARTS = 6;

/** The x-axis / log / smoothing controls shared by run and compare charts. */
export function chartControls(onChange) {
  const xAxis = h("select", { class: "x-axis", "aria-label": "X axis" },
    h("option", { value: "step" }, "x: step"), h("option", { value: "time" }, "x: time"),
    h("option", { value: "relative" }, "x: since start"));
  const log = h("input", { type: "checkbox", class: "log-scale" });
  const smoothing = h("input", { type: "range", min: 0, max: 0.99, step: 0.01, value: 0, class: "smoothing", "aria-label": "Smoothing" });
  const shown = h("span", { class: "mono" }, "0");
  const read = () => ({ xAxis: xAxis.value, log: log.checked, smoothing: Number(smoothing.value) });
  xAxis.addEventListener("change", () => onChange(read()));
  log.addEventListener("change", () => onChange(read()));
  smoothing.addEventListener("input", () => { shown.textContent = smoothing.value; onChange(read()); });
  const el = h("div", { class: "toolbar chart-controls" }, xAxis,
    h("label", { class: "check" }, log, "log scale"),
    h("label", { class: "check" }, "smoothing ", smoothing, shown),
    h("span", { class: "muted" }, "Drag on a chart to zoom, double-click to reset."));
  return { el, read };
}

function kvTable(id, entries, empty) {
  return h("table", { class: "grid kv", id },
    h("tbody", null, entries.length
      ? entries.map(([k, v]) => h("tr", null, h("th", { class: "mono" }, k), h("td", { class: "mono" }, fmtValue(v))))
      : h("tr", null, h("td", { class: "muted" }, empty))));
}

export async function runPage(root, [runId], _query, alive) {
  const run = (await mlflow.get("runs/get", { run_id: runId })).run;
  if (!alive()) return;
  const r = flatRun(run);
  const info = r.info;
  const experiment = (await mlflow.get("experiments/get", { experiment_id: info.experiment_id })).experiment;
  if (!alive()) return;
  const prefect = await prefectLink(r.tags);
  const parent = r.tags[PARENT_TAG];
  const metricKeys = Object.keys(r.metrics).sort();
  const chosen = new Set(metricKeys.slice(0, DEFAULT_CHARTS));

  const charts = h("div", { class: "charts", id: "metric-charts" });
  const controls = chartControls(() => drawCharts());
  let histories = {};

  async function drawCharts() {
    const keys = [...chosen];
    const missing = keys.filter((k) => !histories[`${runId}\u0000${k}`]);
    if (missing.length) Object.assign(histories, await fetchHistories([runId], missing));
    if (!alive()) return;
    const options = controls.read();
    clear(charts, keys.map((key) => {
      const box = h("div", { class: "chart", "data-metric": key });
      queueMicrotask(() => lineChart(box, [{ label: key, series: histories[`${runId}\u0000${key}`], start: info.start_time }],
        { ...options, title: key }));
      return box;
    }));
    if (!keys.length) charts.append(h("p", { class: "muted" }, "No metrics logged."));
  }

  const metricRows = metricKeys.map((k) => h("tr", null,
    h("th", { class: "mono" }, h("label", { class: "check" }, h("input", {
      type: "checkbox", checked: chosen.has(k), "data-metric": k, title: "Chart this metric",
      onchange: (e) => { e.target.checked ? chosen.add(k) : chosen.delete(k); drawCharts(); },
    }), k)),
    h("td", { class: "mono num" }, fmtValue(r.metrics[k]))));

  const systemTags = Object.entries(r.tags).filter(([k]) => !k.startsWith("mlflow.") && !k.startsWith("flowml."));
  const lineage = h("div", { class: "lineage-box" });
  add(root, 
    h("div", { class: "crumbs" }, h("a", { href: "#/" }, "Experiments"), " / ",
      h("a", { href: route("experiments", info.experiment_id) }, experiment.name), " / "),
    h("h1", { id: "run-title" }, r.name, " ", statusBadge(info.status)),
    h("dl", { class: "facts" },
      h("dt", null, "Run ID"), h("dd", { class: "mono" }, info.run_id),
      h("dt", null, "Started"), h("dd", null, fmtTime(info.start_time)),
      h("dt", null, "Duration"), h("dd", null, fmtDuration(info.start_time, info.end_time)),
      h("dt", null, "User"), h("dd", null, info.user_id || r.tags["mlflow.user"] || ""),
      parent ? [h("dt", null, "Parent run"), h("dd", null, h("a", { href: route("runs", parent) }, parent.slice(0, 8)))] : null,
      prefect ? [h("dt", null, "Prefect"), h("dd", null, prefect)] : null,
      h("dt", null, "Artifacts"), h("dd", { class: "mono" }, info.artifact_uri || "")),
    h("div", { class: "columns" },
      h("section", null, h("h2", null, "Parameters"), kvTable("params", Object.entries(r.params).sort(), "No parameters")),
      h("section", null, h("h2", null, "Metrics (latest)"),
        h("table", { class: "grid kv", id: "metrics" }, h("tbody", null,
          metricRows.length ? metricRows : h("tr", null, h("td", { class: "muted" }, "No metrics")))))),
    h("section", null, h("h2", null, "Metric history"), controls.el, charts),
    h("section", null, h("h2", null, "Tags"),
      kvTable("tags", systemTags.sort(), "No tags"),
      h("details", null, h("summary", null, "System tags"),
        kvTable("system-tags", Object.entries(r.tags).filter(([k]) => k.startsWith("mlflow.") || k.startsWith("flowml.")).sort(), "None"))),
    h("section", null, h("h2", null, "Artifacts"), artifactBrowser(runId)),
    h("section", null, h("h2", null, "Lineage"), lineage));
  lineageGraph(lineage, runId, r.name);
  await drawCharts();
}
