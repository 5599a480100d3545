// Shared by the runs table, the run page and the compare view.
import { mlflow, uiConfig } from "./api.js";
import { h, num, tagsOf } from "./dom.js";

export const PARENT_TAG = "mlflow.parentRunId";
export const FLOW_RUN_TAG = "flowml.prefect.flow_run_id";
export const TASK_RUN_TAG = "flowml.prefect.task_run_id";

/** A key as the filter grammar wants it: bare when it is a plain word, else backquoted. */
export function quoteKey(key) {
  return /^[A-Za-z_][\w.\-/:]*$/.test(key) ? key : `\`${key.replaceAll("`", "``")}\``;
}

export function quoteString(text) {
  return `'${String(text).replaceAll("'", "''")}'`;
}

/** The run as flat maps: { info, params, metrics, tags }. */
export function flatRun(run) {
  const data = run.data || {};
  const params = {}, metrics = {};
  for (const p of data.params || []) params[p.key] = p.value;
  for (const m of data.metrics || []) metrics[m.key] = num(m.value);
  return { info: run.info, params, metrics, tags: tagsOf(data), name: runName(run) };
}

export function runName(run) {
  const info = run.info || {};
  return info.run_name || tagsOf(run.data || {})["mlflow.runName"] || (info.run_id || "").slice(0, 8);
}

/** A link to the Prefect flow (or task) run behind a run, when Prefect's UI URL is known. */
export async function prefectLink(tags) {
  const config = await uiConfig();
  const base = config.prefect_ui_url;
  const flowRun = tags[FLOW_RUN_TAG];
  const taskRun = tags[TASK_RUN_TAG];
  if (!flowRun && !taskRun) return null;
  const [kind, id] = taskRun ? ["task-run", taskRun] : ["flow-run", flowRun];
  if (!base) return h("span", { class: "mono", title: `Prefect ${kind}` }, id.slice(0, 8));
  return h("a", {
    href: `${base}/runs/${kind}/${encodeURIComponent(id)}`, target: "_blank", rel: "noopener noreferrer",
    class: "prefect-link", title: `Open the Prefect ${kind} in Prefect's UI`,
  }, `Prefect ${kind} ↗`);
}

/**
 * The runs of `runIds` in order, fetched side by side (runs/get: the compared runs may sit in
 * any experiment, which a search would have to name).
 */
export function getRuns(runIds) {
  return Promise.all(runIds.map(async (id) => (await mlflow.get("runs/get", { run_id: id })).run));
}

/** The 1-based position an error message names ("... at position 12 ..."), or null. */
export function errorPosition(message) {
  const match = /position (\d+)/.exec(message || "");
  return match ? Number(match[1]) : null;
}
