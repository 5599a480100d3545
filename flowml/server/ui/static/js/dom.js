// Building the page: every value from the server goes in as text (never parsed as HTML).

/**
 * An element: h("a", { href: "#/", class: "x", onclick: fn }, "text", child, [more]).
 * Attributes starting with "on" become listeners; `null`/`false` children are skipped.
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (key === "dataset") {
      Object.assign(el.dataset, value);
    } else if (key === "value" || key === "checked") {
      el[key] = value;
    } else {
      el.setAttribute(key, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Append children to `el`, skipping null/false (the DOM's own append would print "null"). */
export function add(el, ...children) {
  append(el, children);
  return el;
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

const SVG_NS = "http://www.w3.org/2000/svg";
/** An SVG element with attributes (text content through `text`). */
export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null) continue;
    if (key === "text") el.textContent = String(value);
    else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, String(value));
  }
  for (const child of children.flat()) if (child) el.append(child);
  return el;
}

/** "#/run/abc" style links, with each part encoded. */
export function route(...parts) {
  return `#/${parts.map((p) => encodeURIComponent(String(p))).join("/")}`;
}

export function fmtTime(ms) {
  if (!ms) return "";
  const d = new Date(Number(ms));
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function fmtDuration(start, end) {
  if (!start) return "";
  const ms = Number(end || Date.now()) - Number(start);
  if (ms < 0) return "";
  if (ms < 1000) return `${ms} ms`;
  const sec = ms / 1000;
  if (sec < 60) return `${sec.toFixed(1)} s`;
  const min = sec / 60;
  if (min < 60) return `${Math.floor(min)} min ${Math.round(sec % 60)} s`;
  return `${Math.floor(min / 60)} h ${Math.round(min % 60)} min`;
}

export function fmtValue(value) {
  if (typeof value === "number") {
    if (Number.isInteger(value)) return String(value);
    const abs = Math.abs(value);
    return abs !== 0 && (abs < 1e-3 || abs >= 1e6) ? value.toExponential(4) : String(+value.toPrecision(6));
  }
  return value === undefined || value === null ? "" : String(value);
}

/** MLflow sends non-finite doubles as strings ("NaN", "Infinity"). */
export function num(value) {
  if (typeof value === "number") return value;
  if (value === "NaN") return NaN;
  if (value === "Infinity") return Infinity;
  if (value === "-Infinity") return -Infinity;
  const n = Number(value);
  return Number.isNaN(n) ? NaN : n;
}

export function statusBadge(status) {
  return h("span", { class: `badge status-${String(status || "").toLowerCase()}` }, status || "");
}

/** A message in the page's status area (errors stay until the next one). */
export function notify(message, kind = "info") {
  const el = document.getElementById("status");
  if (!el) return;
  el.textContent = message;
  el.className = kind;
  if (kind !== "error") setTimeout(() => { if (el.textContent === message) el.textContent = ""; }, 4000);
}

export function errorBox(err) {
  return h("div", { class: "error", role: "alert" },
    err && err.code ? h("strong", null, `${err.code}: `) : null, err ? err.message || String(err) : "",
    err && err.hint ? h("p", { class: "hint" }, err.hint) : null);
}

/** Run names and params are arbitrary text: compare them as numbers when both are. */
export function compareValues(a, b) {
  const x = Number(a), y = Number(b);
  if (a !== "" && b !== "" && !Number.isNaN(x) && !Number.isNaN(y)) return x - y;
  return String(a ?? "").localeCompare(String(b ?? ""));
}

export function tagsOf(entity) {
  const out = {};
  for (const t of (entity && entity.tags) || []) out[t.key] = t.value;
  return out;
}
