// Experiments: list and search, create, rename, delete and restore.
import { mlflow } from "../api.js";
import { add, clear, errorBox, fmtTime, h, notify, route } from "../dom.js";

const PAGE_SIZE = 100;

/** Text matched literally inside a quoted LIKE pattern (quotes doubled, wildcards escaped). */
export function likeText(text) {
  return text.replace(/[\\%_]/g, (c) => `\\${c}`).replaceAll("'", "''");
}

export async function experimentsPage(root, _args, query, alive) {
  const state = {
    search: query.get("q") || "",
    view: query.get("view") || "ACTIVE_ONLY",
    tokens: [null],
  };
  const list = h("div", { class: "table-wrap" });
  const error = h("div");
  const searchBox = h("input", {
    type: "search", id: "experiment-search", placeholder: "Filter by name (e.g. wine)",
    value: state.search,
  });
  const viewSelect = h("select", { id: "experiment-view", "aria-label": "Which experiments" },
    ["ACTIVE_ONLY", "DELETED_ONLY", "ALL"].map((v) =>
      h("option", { value: v, selected: v === state.view }, v.replace("_ONLY", "").toLowerCase())));
  const newName = h("input", { id: "new-experiment", placeholder: "New experiment name" });

  async function load(pageIndex = 0) {
    clear(error);
    const filter = state.search ? `name ILIKE '%${likeText(state.search)}%'` : undefined;
    try {
      const data = await mlflow.post("experiments/search", {
        max_results: PAGE_SIZE, filter, view_type: state.view,
        order_by: ["last_update_time DESC"], page_token: state.tokens[pageIndex] || undefined,
      });
      if (!alive()) return;
      state.tokens[pageIndex + 1] = data.next_page_token || null;
      renderTable(data.experiments || [], pageIndex);
    } catch (err) {
      if (alive()) error.append(errorBox(err));
    }
  }

  function renderTable(experiments, pageIndex) {
    const rows = experiments.map((e) => {
      const deleted = e.lifecycle_stage === "deleted";
      return h("tr", { "data-experiment-id": e.experiment_id, class: deleted ? "deleted" : null },
        h("td", null, h("a", { href: route("experiments", e.experiment_id) }, e.name)),
        h("td", { class: "mono" }, e.experiment_id),
        h("td", null, fmtTime(e.creation_time)),
        h("td", null, fmtTime(e.last_update_time)),
        h("td", { class: "actions" },
          deleted ? null : h("button", { onclick: () => rename(e) }, "Rename"),
          deleted
            ? h("button", { onclick: () => lifecycle(e, "restore") }, "Restore")
            : h("button", { class: "danger", onclick: () => lifecycle(e, "delete") }, "Delete")));
    });
    clear(list, h("table", { class: "grid", id: "experiments" },
      h("thead", null, h("tr", null, ["Name", "ID", "Created", "Updated", ""].map((c) => h("th", null, c)))),
      h("tbody", null, rows.length ? rows : h("tr", null, h("td", { colspan: 5, class: "muted" }, "No experiments")))),
    pager(pageIndex));
  }

  function pager(pageIndex) {
    return h("div", { class: "pager" },
      h("button", { disabled: pageIndex === 0, onclick: () => load(pageIndex - 1) }, "‹ Previous"),
      h("span", null, `Page ${pageIndex + 1}`),
      h("button", { disabled: !state.tokens[pageIndex + 1], onclick: () => load(pageIndex + 1) }, "Next ›"));
  }

  async function rename(e) {
    const name = prompt(`New name for experiment "${e.name}"`, e.name);
    if (!name || name === e.name) return;
    await act(() => mlflow.post("experiments/update", { experiment_id: e.experiment_id, new_name: name }),
      `Renamed to ${name}`);
  }

  async function lifecycle(e, verb) {
    if (verb === "delete" && !confirm(`Delete experiment "${e.name}"? It can be restored.`)) return;
    await act(() => mlflow.post(`experiments/${verb}`, { experiment_id: e.experiment_id }),
      `${verb === "delete" ? "Deleted" : "Restored"} ${e.name}`);
  }

  async function act(call, message) {
    try {
      await call();
      notify(message);
      await load(0);
    } catch (err) {
      clear(error, errorBox(err));
    }
  }

  async function create(event) {
    event.preventDefault();
    const name = newName.value.trim();
    if (!name) return;
    try {
      const data = await mlflow.post("experiments/create", { name });
      location.hash = route("experiments", data.experiment_id);
    } catch (err) {
      clear(error, errorBox(err));
    }
  }

  let timer = null;
  searchBox.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => { state.search = searchBox.value.trim(); state.tokens = [null]; load(0); }, 250);
  });
  viewSelect.addEventListener("change", () => { state.view = viewSelect.value; state.tokens = [null]; load(0); });

  add(root, 
    h("h1", null, "Experiments"),
    h("div", { class: "toolbar" }, searchBox, viewSelect,
      h("form", { class: "inline", onsubmit: create }, newName, h("button", { type: "submit" }, "Create"))),
    error, list);
  await load(0);
}
