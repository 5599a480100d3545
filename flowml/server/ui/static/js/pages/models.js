// The model registry: models, a model's versions, aliases and audit trail, one version's
// details with its signature, input example and the decisions that promoted it.
import { fetchText, flowml, mlflow, versionArtifactUrl } from "../api.js";
import { add, clear, errorBox, fmtTime, h, route, tagsOf } from "../dom.js";
import { quoteString } from "../runs_common.js";
import { likeText } from "./experiments.js";

const PAGE_SIZE = 50;

function aliasChips(aliases) {
  return (aliases || []).map((a) => h("span", { class: "chip alias" }, typeof a === "string" ? `@${a}` : `@${a.alias} → v${a.version}`));
}

function stageBadge(stage) {
  return stage && stage !== "None" ? h("span", { class: `badge stage-${stage.toLowerCase()}` }, stage) : null;
}

export async function modelsPage(root, _args, query, alive) {
  const state = { search: query.get("q") || "", tokens: [null], page: 0 };
  const box = h("div", { class: "table-wrap" });
  const error = h("div");
  const search = h("input", { type: "search", id: "model-search", placeholder: "Filter by name", value: state.search });
  async function load() {
    clear(error);
    try {
      const data = await mlflow.get("registered-models/search", {
        filter: state.search ? `name ILIKE '%${likeText(state.search)}%'` : undefined,
        max_results: PAGE_SIZE, order_by: "name ASC", page_token: state.tokens[state.page] || undefined,
      });
      if (!alive()) return;
      state.tokens[state.page + 1] = data.next_page_token || null;
      const models = data.registered_models || [];
      clear(box, h("table", { class: "grid", id: "models" },
        h("thead", null, h("tr", null, ["Name", "Latest versions", "Aliases", "Updated"].map((c) => h("th", null, c)))),
        h("tbody", null, models.length ? models.map((m) => h("tr", { "data-model": m.name },
          h("td", null, h("a", { href: route("models", m.name) }, m.name)),
          h("td", null, (m.latest_versions || []).map((v) => h("a", { class: "chip", href: route("models", m.name, "versions", v.version) },
            `v${v.version}`, v.current_stage && v.current_stage !== "None" ? ` ${v.current_stage}` : ""))),
          h("td", null, aliasChips(m.aliases)),
          h("td", null, fmtTime(m.last_updated_timestamp))))
          : h("tr", null, h("td", { colspan: 4, class: "muted" }, "No registered models")))),
      h("div", { class: "pager" },
        h("button", { disabled: state.page === 0, onclick: () => { state.page--; load(); } }, "‹ Previous"),
        h("span", null, `Page ${state.page + 1}`),
        h("button", { disabled: !state.tokens[state.page + 1], onclick: () => { state.page++; load(); } }, "Next ›")));
    } catch (err) {
      if (alive()) error.append(errorBox(err));
    }
  }
  let timer = null;
  search.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => { state.search = search.value.trim(); state.tokens = [null]; state.page = 0; load(); }, 250);
  });
  add(root, h("h1", null, "Registered models"), h("div", { class: "toolbar" }, search), error, box);
  await load();
}

function auditTable(entries, withVersion) {
  if (!entries.length) return h("p", { class: "muted" }, "No audit entries.");
  return h("table", { class: "grid audit", id: "audit" },
    h("thead", null, h("tr", null, ["When", withVersion ? "Version" : null, "Action", "From", "To", "Who", "Why", "Prefect flow run", "Details"]
      .filter((c) => c !== null).map((c) => h("th", null, c)))),
    h("tbody", null, entries.map((e) => h("tr", { "data-action": e.action },
      h("td", null, fmtTime(e.timestamp)),
      withVersion ? h("td", null, e.version ? `v${e.version}` : "") : null,
      h("td", null, h("span", { class: "chip" }, e.action)),
      h("td", null, e.from_value || ""), h("td", null, e.to_value || ""),
      h("td", null, e.user_id || ""), h("td", null, e.reason || ""),
      h("td", { class: "mono" }, e.flow_run_id ? e.flow_run_id.slice(0, 8) : ""),
      h("td", null, e.details && Object.keys(e.details).length
        ? h("details", null, h("summary", null, Object.keys(e.details).join(", ")), h("pre", null, JSON.stringify(e.details, null, 2)))
        : "")))));
}

async function auditOf(name) {
  const entries = [];
  let after = 0;
  for (let i = 0; i < 20; i++) { // at most 20,000 entries on one page
    const data = await flowml.get("registry/audit", { name, after_id: after || undefined });
    const got = data.entries || [];
    entries.push(...got);
    if (got.length < 1000) break;
    after = got[got.length - 1].id;
  }
  return entries;
}

export async function modelPage(root, [name], _query, alive) {
  const [model, versions, audit] = await Promise.all([
    mlflow.get("registered-models/get", { name }).then((d) => d.registered_model),
    mlflow.get("model-versions/search", { filter: `name = ${quoteString(name)}`, max_results: 1000, order_by: "version_number DESC" })
      .then((d) => d.model_versions || []),
    auditOf(name),
  ]);
  if (!alive()) return;
  const tags = Object.entries(tagsOf(model));
  add(root, 
    h("div", { class: "crumbs" }, h("a", { href: "#/models" }, "Models"), " / "),
    h("h1", { id: "model-title" }, model.name, " ", aliasChips(model.aliases)),
    model.description ? h("p", null, model.description) : null,
    tags.length ? h("p", null, tags.map(([k, v]) => h("span", { class: "chip" }, `${k}=${v}`))) : null,
    h("section", null, h("h2", null, "Versions"),
      h("table", { class: "grid", id: "versions" },
        h("thead", null, h("tr", null, ["Version", "Stage", "Aliases", "Status", "Created", "Run", "Source"].map((c) => h("th", null, c)))),
        h("tbody", null, versions.map((v) => h("tr", { "data-version": v.version },
          h("td", null, h("a", { href: route("models", name, "versions", v.version) }, `v${v.version}`)),
          h("td", null, stageBadge(v.current_stage)),
          h("td", null, aliasChips(v.aliases)),
          h("td", null, v.status || ""),
          h("td", null, fmtTime(v.creation_timestamp)),
          h("td", null, v.run_id ? h("a", { href: route("runs", v.run_id) }, v.run_id.slice(0, 8)) : ""),
          h("td", { class: "mono small" }, v.source || "")))))),
    h("section", null, h("h2", null, "Audit trail"), auditTable(audit, true)));
}

function signatureTable(title, json) {
  let columns;
  try { columns = typeof json === "string" ? JSON.parse(json) : json; } catch { columns = null; }
  if (!Array.isArray(columns)) return json ? h("pre", null, String(json)) : null;
  return h("div", null, h("h3", null, title), h("table", { class: "grid kv signature" },
    h("thead", null, h("tr", null, h("th", null, "name"), h("th", null, "type"), h("th", null, "shape / optional"))),
    h("tbody", null, columns.map((c) => h("tr", null,
      h("td", { class: "mono" }, c.name ?? ""), h("td", { class: "mono" }, c.type ?? (c["tensor-spec"] ? `tensor ${c["tensor-spec"].dtype}` : "")),
      h("td", { class: "mono" }, c["tensor-spec"] ? JSON.stringify(c["tensor-spec"].shape) : c.required === false ? "optional" : ""))))));
}

async function modelFiles(box, name, number) {
  try {
    const mlmodel = (await flowml.get("model-versions/mlmodel", { name, version: number })).mlmodel;
    const sig = mlmodel.signature || {};
    const example = mlmodel.saved_input_example_info;
    const exampleBox = h("div", { id: "input-example" });
    clear(box,
      h("p", null, "Flavors: ", Object.keys(mlmodel.flavors || {}).map((f) => h("span", { class: "chip" }, f))),
      h("div", { id: "signature" }, sig.inputs || sig.outputs
        ? [signatureTable("Inputs", sig.inputs), signatureTable("Outputs", sig.outputs), signatureTable("Params", sig.params)]
        : h("p", { class: "muted" }, "No signature recorded.")),
      h("h3", null, "Input example"), exampleBox,
      h("details", null, h("summary", null, "MLmodel"), h("pre", { class: "preview-text" }, JSON.stringify(mlmodel, null, 2))));
    if (example && example.artifact_path) {
      const { text } = await fetchText(versionArtifactUrl(name, number, example.artifact_path), 256 * 1024);
      let shown = text;
      try { shown = JSON.stringify(JSON.parse(text), null, 2); } catch { /* not JSON: as is */ }
      exampleBox.append(h("pre", { class: "preview-text" }, shown));
    } else {
      exampleBox.append(h("p", { class: "muted" }, "No input example saved."));
    }
  } catch (err) {
    clear(box, errorBox(err));
  }
}

export async function versionPage(root, [name, number], _query, alive) {
  const [version, audit] = await Promise.all([
    mlflow.get("model-versions/get", { name, version: number }).then((d) => d.model_version),
    auditOf(name),
  ]);
  if (!alive()) return;
  const mine = audit.filter((e) => String(e.version) === String(version.version));
  const files = h("div", { id: "model-files" }, h("p", { class: "muted" }, "Reading the MLmodel file…"));
  const tags = Object.entries(tagsOf(version));
  add(root, 
    h("div", { class: "crumbs" }, h("a", { href: "#/models" }, "Models"), " / ", h("a", { href: route("models", name) }, name), " / "),
    h("h1", { id: "version-title" }, `${name} v${version.version} `, stageBadge(version.current_stage), " ", aliasChips(version.aliases)),
    h("dl", { class: "facts" },
      h("dt", null, "Status"), h("dd", null, version.status || ""),
      h("dt", null, "Created"), h("dd", null, fmtTime(version.creation_timestamp)),
      h("dt", null, "By"), h("dd", null, version.user_id || ""),
      h("dt", null, "Source"), h("dd", { class: "mono" }, version.source || ""),
      version.run_id ? [h("dt", null, "Run"), h("dd", null, h("a", { href: route("runs", version.run_id) }, version.run_id))] : null,
      version.description ? [h("dt", null, "Description"), h("dd", null, version.description)] : null),
    tags.length ? h("p", null, tags.map(([k, v]) => h("span", { class: "chip" }, `${k}=${v}`))) : null,
    h("section", null, h("h2", null, "Signature and input example"), files),
    h("section", null, h("h2", null, "Promotion decisions and history"), auditTable(mine, false)));
  await modelFiles(files, name, version.version);
}
