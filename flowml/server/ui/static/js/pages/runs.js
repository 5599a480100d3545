// An experiment's runs: the filter grammar in a box, sortable columns the user picks,
// server-side pages, nested runs as a tree under their flow run, a compare selection.
import { mlflow } from "../api.js";
import { add, clear, compareValues, errorBox, fmtDuration, fmtTime, fmtValue, h, route, statusBadge } from "../dom.js";
import { PARENT_TAG, errorPosition, flatRun, prefectLink, quoteKey, quoteString } from "../runs_common.js";

const PAGE_SIZES = [25, 50, 100, 500];
const DEFAULT_COLUMNS = 6;
const MAX_CHILDREN = 1000;

export async function runsPage(root, [experimentId], query, alive) {
  const state = {
    filter: query.get("filter") || "",
    order: query.get("order") || "attributes.start_time DESC",
    size: Number(query.get("size")) || 50,
    tree: query.get("tree") !== "0",
    view: query.get("view") || "ACTIVE_ONLY",
    tokens: [null],
    page: 0,
    columns: null, // chosen "kind:key" columns; null until the first page shows what exists
    shown: { runs: [], children: [] }, // the page on screen
    selected: new Set(),
    expanded: new Set(),
  };
  const experiment = (await mlflow.get("experiments/get", { experiment_id: experimentId })).experiment;
  if (!alive()) return;

  const filterBox = h("input", {
    type: "search", id: "run-filter", class: "mono wide", value: state.filter, spellcheck: "false",
    placeholder: "metrics.accuracy > 0.9 and (params.model = 'rf' or tags.team LIKE 'ml%')",
    "aria-label": "Run filter",
  });
  const filterError = h("div", { id: "filter-error" });
  const table = h("div", { class: "table-wrap" });
  const pickerBody = h("div", { class: "picker-body" });
  const compareButton = h("button", { id: "compare-selected", disabled: true, onclick: compare }, "Compare");
  const sizeSelect = h("select", { "aria-label": "Runs per page" },
    PAGE_SIZES.map((n) => h("option", { value: n, selected: n === state.size }, `${n} / page`)));
  const treeToggle = h("input", { type: "checkbox", id: "tree-toggle", checked: state.tree });
  const viewSelect = h("select", { "aria-label": "Which runs" },
    ["ACTIVE_ONLY", "DELETED_ONLY", "ALL"].map((v) =>
      h("option", { value: v, selected: v === state.view }, v.replace("_ONLY", "").toLowerCase())));

  function keepInHash() {
    const q = new URLSearchParams();
    if (state.filter) q.set("filter", state.filter);
    q.set("order", state.order);
    q.set("size", String(state.size));
    if (!state.tree) q.set("tree", "0");
    if (state.view !== "ACTIVE_ONLY") q.set("view", state.view);
    history.replaceState(null, "", `${route("experiments", experimentId)}?${q}`);
  }

  // With no filter the tree shows top-level runs a page at a time and their children beside
  // them; a filter searches every run, and matching children still sit under a listed parent.
  function serverFilter() {
    if (state.tree && !state.filter) return `tags.${quoteKey(PARENT_TAG)} IS NULL`;
    return state.filter || undefined;
  }

  async function load() {
    keepInHash();
    clear(filterError);
    filterBox.classList.remove("invalid");
    let data;
    try {
      data = await mlflow.post("runs/search", {
        experiment_ids: [experimentId], filter: serverFilter(), order_by: [state.order],
        max_results: state.size, page_token: state.tokens[state.page] || undefined,
        run_view_type: state.view,
      });
    } catch (err) {
      if (alive()) showFilterError(err);
      return;
    }
    let runs = (data.runs || []).map(flatRun);
    state.tokens[state.page + 1] = data.next_page_token || null;
    let children = [];
    if (state.tree && !state.filter && runs.length) {
      const ids = runs.map((r) => quoteString(r.info.run_id)).join(", ");
      try {
        const found = await mlflow.post("runs/search", {
          experiment_ids: [experimentId], filter: `tags.${quoteKey(PARENT_TAG)} IN (${ids})`,
          order_by: ["attributes.start_time ASC"], max_results: MAX_CHILDREN, run_view_type: state.view,
        });
        children = (found.runs || []).map(flatRun);
      } catch (err) {
        if (alive()) filterError.append(errorBox(err));
      }
    }
    if (!alive()) return;
    if (state.columns === null) state.columns = defaultColumns(runs.concat(children));
    state.shown = { runs, children };
    redraw();
  }

  // Columns and expanded rows change only the drawing: no new request.
  function redraw() {
    const { runs, children } = state.shown;
    renderPicker(runs.concat(children));
    renderTable(runs, children);
  }

  function showFilterError(err) {
    const at = errorPosition(err.message);
    filterBox.classList.add("invalid");
    const parts = [errorBox(err)];
    if (at !== null && state.filter) {
      // The query with a caret under the position the server named.
      parts.push(h("pre", { class: "caret mono", "aria-label": "Error position" },
        `${state.filter}\n${" ".repeat(Math.max(0, at - 1))}^`));
      filterBox.focus();
      filterBox.setSelectionRange(Math.max(0, at - 1), Math.min(state.filter.length, at));
    }
    clear(filterError, parts);
    clear(table);
  }

  function defaultColumns(runs) {
    const metrics = new Set(), params = new Set();
    for (const r of runs) {
      Object.keys(r.metrics).forEach((k) => metrics.add(k));
      Object.keys(r.params).forEach((k) => params.add(k));
    }
    return [...[...metrics].sort().slice(0, DEFAULT_COLUMNS).map((k) => `metrics:${k}`),
      ...[...params].sort().slice(0, DEFAULT_COLUMNS).map((k) => `params:${k}`)];
  }

  function renderPicker(runs) {
    const keys = { metrics: new Set(), params: new Set(), tags: new Set() };
    for (const r of runs) for (const kind of Object.keys(keys)) Object.keys(r[kind]).forEach((k) => keys[kind].add(k));
    for (const c of state.columns) { const [kind, key] = split(c); keys[kind]?.add(key); }
    clear(pickerBody, Object.entries(keys).map(([kind, set]) => h("fieldset", null, h("legend", null, kind),
      [...set].sort().map((key) => {
        const id = `${kind}:${key}`;
        return h("label", { class: "check" }, h("input", {
          type: "checkbox", checked: state.columns.includes(id), "data-column": id,
          onchange: (e) => {
            state.columns = e.target.checked ? [...state.columns, id] : state.columns.filter((c) => c !== id);
            redraw();
          },
        }), key);
      }))));
  }

  function split(column) {
    const at = column.indexOf(":");
    return [column.slice(0, at), column.slice(at + 1)];
  }

  function sortHeader(label, orderKey) {
    const [, current, direction] = /^(.*) (ASC|DESC)$/.exec(state.order) || [null, state.order, "ASC"];
    const active = current === orderKey;
    return h("th", {
      class: `sortable${active ? " sorted" : ""}`, title: `Sort by ${orderKey}`, "data-order": orderKey,
      onclick: () => {
        state.order = `${orderKey} ${active && direction === "DESC" ? "ASC" : "DESC"}`;
        state.tokens = [null]; state.page = 0;
        load();
      },
    }, label, active ? (direction === "DESC" ? " ▼" : " ▲") : "");
  }

  function renderTable(runs, children) {
    const byParent = new Map();
    const listed = new Set(runs.map((r) => r.info.run_id));
    const rows = [];
    const top = [];
    for (const r of runs.concat(children)) {
      const parent = r.tags[PARENT_TAG];
      if (state.tree && parent && listed.has(parent) && parent !== r.info.run_id) {
        if (!byParent.has(parent)) byParent.set(parent, []);
        byParent.get(parent).push(r);
      } else if (runs.includes(r)) {
        top.push(r);
      }
    }
    const visit = (r, depth) => {
      const kids = byParent.get(r.info.run_id) || [];
      rows.push(runRow(r, depth, kids.length));
      if (kids.length && state.expanded.has(r.info.run_id)) {
        kids.sort((a, b) => compareValues(a.info.start_time, b.info.start_time)).forEach((k) => visit(k, depth + 1));
      }
    };
    top.forEach((r) => visit(r, 0));
    const columnHeads = state.columns.map((c) => {
      const [kind, key] = split(c);
      return sortHeader(h("span", null, h("small", { class: "muted" }, `${kind.replace(/s$/, "")} `), key),
        `${kind}.${quoteKey(key)}`);
    });
    clear(table,
      h("table", { class: "grid", id: "runs" },
        h("thead", null, h("tr", null,
          h("th", null, ""), sortHeader("Run", "attributes.run_name"), sortHeader("Status", "attributes.status"),
          sortHeader("Started", "attributes.start_time"), h("th", null, "Duration"), h("th", null, "Prefect"),
          columnHeads)),
        h("tbody", null, rows.length ? rows
          : h("tr", null, h("td", { colspan: 6 + state.columns.length, class: "muted" }, "No runs match")))),
      h("div", { class: "pager" },
        h("button", { id: "prev-page", disabled: state.page === 0, onclick: () => { state.page--; load(); } }, "‹ Previous"),
        h("span", { id: "page-number" }, `Page ${state.page + 1}`),
        h("button", { id: "next-page", disabled: !state.tokens[state.page + 1], onclick: () => { state.page++; load(); } }, "Next ›")));
    updateCompare();
  }

  function runRow(r, depth, kidCount) {
    const id = r.info.run_id;
    const expanded = state.expanded.has(id);
    const toggle = kidCount
      ? h("button", {
        class: "twisty", "aria-expanded": String(expanded), title: `${kidCount} child runs`,
        onclick: () => { expanded ? state.expanded.delete(id) : state.expanded.add(id); redraw(); },
      }, expanded ? "▾" : "▸")
      : h("span", { class: "twisty-space" });
    const prefect = h("td");
    prefectLink(r.tags).then((link) => link && prefect.append(link));
    const cells = state.columns.map((c) => {
      const [kind, key] = split(c);
      return h("td", { class: kind === "metrics" ? "num" : null }, fmtValue(r[kind][key]));
    });
    return h("tr", { "data-run-id": id, class: r.info.lifecycle_stage === "deleted" ? "deleted" : null },
      h("td", null, h("input", {
        type: "checkbox", "aria-label": `Select ${r.name}`, checked: state.selected.has(id),
        onchange: (e) => { e.target.checked ? state.selected.add(id) : state.selected.delete(id); updateCompare(); },
      })),
      h("td", { class: "run-name", style: `padding-left:${0.5 + depth * 1.4}rem` }, toggle,
        h("a", { href: route("runs", id) }, r.name), kidCount ? h("small", { class: "muted" }, ` (${kidCount})`) : null),
      h("td", null, statusBadge(r.info.status)),
      h("td", null, fmtTime(r.info.start_time)),
      h("td", null, fmtDuration(r.info.start_time, r.info.end_time)),
      prefect, cells);
  }

  function updateCompare() {
    compareButton.disabled = state.selected.size < 2;
    compareButton.textContent = `Compare (${state.selected.size})`;
  }

  function compare() {
    location.hash = `#/compare?runs=${[...state.selected].map(encodeURIComponent).join(",")}`;
  }

  function search(event) {
    event.preventDefault();
    state.filter = filterBox.value.trim();
    state.tokens = [null]; state.page = 0;
    load();
  }

  sizeSelect.addEventListener("change", () => { state.size = Number(sizeSelect.value); state.tokens = [null]; state.page = 0; load(); });
  treeToggle.addEventListener("change", () => { state.tree = treeToggle.checked; state.tokens = [null]; state.page = 0; load(); });
  viewSelect.addEventListener("change", () => { state.view = viewSelect.value; state.tokens = [null]; state.page = 0; load(); });

  add(root, 
    h("div", { class: "crumbs" }, h("a", { href: "#/" }, "Experiments"), " / "),
    h("h1", null, experiment.name, h("small", { class: "muted" }, ` #${experiment.experiment_id}`)),
    h("form", { class: "filter", onsubmit: search }, filterBox, h("button", { type: "submit", id: "run-search" }, "Search")),
    filterError,
    h("div", { class: "toolbar" },
      h("details", { class: "picker" }, h("summary", { id: "column-picker" }, "Columns"), pickerBody),
      h("label", { class: "check" }, treeToggle, "Nested runs as a tree"),
      viewSelect, sizeSelect, h("span", { class: "spacer" }), compareButton),
    table);
  await load();
}
