// A run's lineage, one hop each way, as five columns of an SVG graph:
// upstream runs -> inputs (datasets...) -> this run -> outputs (models, artifacts) -> downstream runs.
// Prefect task results are only glue between runs, so those links go straight run to run.
import { flowml, mlflow } from "./api.js";
import { clear, errorBox, h, route, s } from "./dom.js";
import { runName } from "./runs_common.js";

const GLUE = new Set(["prefect-task-run", "prefect-result", "prefect-flow-run"]);
const NODE_W = 190, NODE_H = 34, COL_GAP = 60, ROW_GAP = 12, PAD = 12;
const MAX_NODES = 40;

function label(entry) {
  return entry.name || entry.uri.replace(/^[a-z0-9.+-]+:\/*/i, "").split("/").slice(-2).join("/") || entry.uri;
}

/** `models:/name/3` -> the registry page of that version (else null). */
export function modelHref(uri) {
  const m = /^models:\/([^/@]+)\/(\d+)$/.exec(uri);
  return m ? route("models", decodeURIComponent(m[1]), "versions", m[2]) : null;
}

async function names(runIds) {
  const out = {};
  await Promise.all(runIds.slice(0, MAX_NODES).map(async (id) => {
    try {
      out[id] = runName((await mlflow.get("runs/get", { run_id: id })).run);
    } catch {
      out[id] = id.slice(0, 8); // a run this user may not read: its id only
    }
  }));
  return out;
}

export async function lineageGraph(container, runId, thisName) {
  clear(container, h("p", { class: "muted" }, "Loading lineage…"));
  try {
    const own = (await flowml.post("lineage/search", { run_ids: [runId] })).entries || [];
    const inputs = own.filter((e) => e.direction === "input");
    const outputs = own.filter((e) => e.direction === "output");
    const [up, down] = await Promise.all([
      inputs.length ? flowml.post("lineage/search", { uris: inputs.map((e) => e.uri), direction: "output" }) : { entries: [] },
      outputs.length ? flowml.post("lineage/search", { uris: outputs.map((e) => e.uri), direction: "input" }) : { entries: [] },
    ]);
    const upstream = (up.entries || []).filter((e) => e.run_id !== runId);
    const downstream = (down.entries || []).filter((e) => e.run_id !== runId);
    const runNames = await names([...new Set([...upstream, ...downstream].map((e) => e.run_id))]);
    draw(container, { runId, thisName, inputs, outputs, upstream, downstream, runNames });
  } catch (err) {
    clear(container, errorBox(err));
  }
}

function draw(container, g) {
  const cols = [[], [], [], [], []];
  const edges = [];
  const nodeOf = new Map();
  const add = (col, key, text, kind, href) => {
    if (!nodeOf.has(key) && cols[col].length < MAX_NODES) {
      const node = { col, row: cols[col].length, text, kind, href };
      cols[col].push(node);
      nodeOf.set(key, node);
    }
    return nodeOf.get(key);
  };
  const self = add(2, `run:${g.runId}`, g.thisName, "this", null);
  for (const e of g.inputs.filter((x) => !GLUE.has(x.kind))) {
    const n = add(1, `in:${e.uri}`, label(e), e.kind, modelHref(e.uri));
    if (n) edges.push([n, self]);
  }
  for (const e of g.outputs.filter((x) => !GLUE.has(x.kind))) {
    const n = add(3, `out:${e.uri}`, label(e), e.kind, modelHref(e.uri));
    if (n) edges.push([self, n]);
  }
  for (const e of g.upstream) {
    const n = add(0, `run:${e.run_id}`, g.runNames[e.run_id], "run", route("runs", e.run_id));
    const via = GLUE.has(e.kind) ? self : nodeOf.get(`in:${e.uri}`) || self;
    if (n) edges.push([n, via]);
  }
  for (const e of g.downstream) {
    const n = add(4, `run:${e.run_id}`, g.runNames[e.run_id], "run", route("runs", e.run_id));
    const via = GLUE.has(e.kind) ? self : nodeOf.get(`out:${e.uri}`) || self;
    if (n) edges.push([via, n]);
  }
  const rows = Math.max(...cols.map((c) => c.length), 1);
  const height = PAD * 2 + rows * (NODE_H + ROW_GAP);
  const width = PAD * 2 + 5 * NODE_W + 4 * COL_GAP;
  const pos = (n) => ({
    x: PAD + n.col * (NODE_W + COL_GAP),
    y: PAD + ((rows - cols[n.col].length) * (NODE_H + ROW_GAP)) / 2 + n.row * (NODE_H + ROW_GAP),
  });
  const svg = s("svg", { class: "lineage", id: "lineage-graph", viewBox: `0 0 ${width} ${height}`, width, height, role: "img", "aria-label": "Lineage graph" });
  for (const [a, b] of edges) {
    const p = pos(a), q = pos(b);
    const x1 = p.x + NODE_W, y1 = p.y + NODE_H / 2, x2 = q.x, y2 = q.y + NODE_H / 2;
    svg.append(s("path", { class: "edge", d: `M${x1},${y1} C${x1 + COL_GAP / 2},${y1} ${x2 - COL_GAP / 2},${y2} ${x2},${y2}` }));
  }
  for (const col of cols) {
    for (const n of col) {
      const p = pos(n);
      const text = n.text.length > 26 ? `${n.text.slice(0, 25)}…` : n.text;
      const box = s("g", { class: `node kind-${n.kind}`, transform: `translate(${p.x},${p.y})` },
        s("rect", { width: NODE_W, height: NODE_H, rx: 6 }),
        s("text", { x: 8, y: 14, class: "kind", text: n.kind }),
        s("text", { x: 8, y: 28, text }),
        s("title", { text: n.text }));
      svg.append(n.href ? s("a", { href: n.href }, box) : box);
    }
  }
  const heads = ["upstream runs", "inputs", "this run", "outputs", "downstream runs"];
  clear(container,
    h("div", { class: "lineage-heads", style: `width:${width}px` },
      heads.map((t) => h("span", { style: `width:${NODE_W + COL_GAP}px` }, t))),
    h("div", { class: "lineage-wrap" }, svg),
    edges.length ? null : h("p", { class: "muted" }, "No lineage recorded for this run."));
}
