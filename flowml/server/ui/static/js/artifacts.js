// A run's (or a model version's) artifacts: a lazily opened tree and a preview pane.
import { fetchText, flowml, mlflow, runArtifactUrl } from "./api.js";
import { add, clear, errorBox, h } from "./dom.js";

const IMAGE = /\.(png|jpe?g|gif|webp|bmp)$/i;
const TABLE = /\.(csv|tsv)$/i;
const PARQUET = /\.parquet$/i;
const JSON_FILE = /\.json$/i;
const TEXT = /(\.(ya?ml|txt|log|md|py|toml|cfg|ini|sql|sh|r|html?|xml|svg)|^MLmodel|^MLproject|requirements\.txt)$/i;
const PREVIEW_BYTES = 512 * 1024;
const TABLE_ROWS = 200;

function sizeText(bytes) {
  if (bytes === undefined) return "";
  const units = ["B", "KB", "MB", "GB"];
  let n = Number(bytes), u = 0;
  while (n >= 1024 && u < units.length - 1) { n /= 1024; u++; }
  return `${u ? n.toFixed(1) : n} ${units[u]}`;
}

/** Split one CSV line, honouring double-quoted fields (RFC 4180 quoting). */
export function csvRow(line, sep) {
  const out = [];
  let field = "", quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quoted) {
      if (c === '"' && line[i + 1] === '"') { field += '"'; i++; }
      else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === sep) { out.push(field); field = ""; }
    else field += c;
  }
  out.push(field);
  return out;
}

function table(columns, rows) {
  return h("div", { class: "table-wrap" }, h("table", { class: "grid preview-table" },
    h("thead", null, h("tr", null, columns.map((c) => h("th", null, c)))),
    h("tbody", null, rows.map((r) => h("tr", null, r.map((c) => h("td", null, c === null ? "" : String(c))))))));
}

/**
 * Render a preview of the file at `url` named `path` into `pane`; `tableOf(path)` reads
 * a Parquet file's first rows on the server (browsers cannot).
 */
export async function preview(pane, url, path, size, tableOf) {
  const name = path.split("/").pop();
  const download = h("a", { href: url, download: name, class: "download" }, "Download");
  const head = h("div", { class: "preview-head" }, h("strong", { class: "mono" }, path), " ", sizeText(size), " ", download);
  clear(pane, head);
  try {
    if (IMAGE.test(name)) {
      add(pane, h("img", { src: url, alt: path, class: "artifact-image" }));
      return;
    }
    if (PARQUET.test(name) && tableOf) {
      const data = await tableOf(path);
      add(pane, table(data.columns, data.rows),
        h("p", { class: "muted" }, `${data.rows.length} of ${data.total_rows} rows.`));
      return;
    }
    if (!(TABLE.test(name) || JSON_FILE.test(name) || TEXT.test(name))) {
      add(pane, h("p", { class: "muted" }, "No preview for this file type."));
      return;
    }
    const { text, truncated } = await fetchText(url, PREVIEW_BYTES);
    const note = truncated ? h("p", { class: "muted" }, `Showing the first ${sizeText(PREVIEW_BYTES)}.`) : null;
    if (TABLE.test(name)) {
      const lines = text.split(/\r?\n/).filter((l) => l.length);
      const sep = /\.tsv$/i.test(name) ? "\t" : ",";
      const rows = lines.slice(0, TABLE_ROWS + 1).map((l) => csvRow(l, sep));
      add(pane, table(rows[0] || [], rows.slice(1)),
        lines.length > TABLE_ROWS + 1 ? h("p", { class: "muted" }, `First ${TABLE_ROWS} rows.`) : null, note);
      return;
    }
    let shown = text;
    if (JSON_FILE.test(name) && !truncated) {
      try { shown = JSON.stringify(JSON.parse(text), null, 2); } catch { /* invalid JSON: show as is */ }
    }
    add(pane, h("pre", { class: `preview-text${name === "MLmodel" ? " mlmodel" : ""}` }, shown), note);
  } catch (err) {
    add(pane, errorBox(err));
  }
}

/** The artifact tree of a run, beside a preview pane. */
export function artifactBrowser(runId) {
  const list = async (path) => (await mlflow.get("artifacts/list", { run_id: runId, path })).files || [];
  const tableOf = (path) => flowml.get("artifacts/table", { run_id: runId, path });
  return browser(list, (path) => runArtifactUrl(runId, path), tableOf);
}

/** `list(path)` answers MLflow's artifacts/list entries; `urlOf(path)` a file's URL. */
export function browser(list, urlOf, tableOf) {
  const pane = h("div", { class: "preview", id: "artifact-preview" }, h("p", { class: "muted" }, "Select a file to preview it."));
  const tree = h("ul", { class: "tree", id: "artifact-tree" });
  const root = h("div", { class: "artifacts" }, h("div", { class: "tree-wrap" }, tree), pane);

  async function fill(ul, path) {
    let files;
    try {
      files = await list(path);
    } catch (err) {
      clear(ul, h("li", null, errorBox(err)));
      return;
    }
    files.sort((a, b) => (b.is_dir - a.is_dir) || a.path.localeCompare(b.path));
    clear(ul, files.length ? files.map(item) : h("li", { class: "muted" }, "No artifacts"));
  }

  function item(file) {
    const name = file.path.split("/").pop();
    if (file.is_dir) {
      const sub = h("ul", { class: "tree" });
      let open = false;
      const button = h("button", {
        class: "link dir", "data-path": file.path, "aria-expanded": "false",
        onclick: async () => {
          open = !open;
          button.setAttribute("aria-expanded", String(open));
          button.firstChild.textContent = open ? "▾ " : "▸ ";
          if (open) await fill(sub, file.path); else clear(sub);
        },
      }, h("span", null, "▸ "), `${name}/`);
      return h("li", null, button, sub);
    }
    return h("li", null, h("button", {
      class: "link file", "data-path": file.path,
      onclick: (e) => {
        for (const b of tree.querySelectorAll(".file.selected")) b.classList.remove("selected");
        e.currentTarget.classList.add("selected");
        preview(pane, urlOf(file.path), file.path, file.file_size, tableOf);
      },
    }, name), h("small", { class: "muted" }, ` ${sizeText(file.file_size)}`));
  }

  fill(tree, undefined);
  return root;
}
