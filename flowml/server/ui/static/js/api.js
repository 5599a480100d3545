// The server's REST API, as the browser sees it: same origin, the user's own credentials
// (cookies or the browser's HTTP auth), so the UI shows exactly what the user may read.

export const MLFLOW = "ajax-api/2.0/mlflow";
export const FLOWML = "ajax-api/2.0/flowml";

// The server's 401 speaks to API clients (a Bearer header); a person in the browser signs in
// through the browser's own prompt. A 403's message already names the permission to ask for.
const HINTS = {
  401: "Sign in: reload the page and give the browser's prompt your user name, with an " +
    "access token as the password (an admin creates one with `flowml server tokens create`).",
};

/** A refused request: MLflow's error code and message, the HTTP status, what to do about it. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
    this.hint = HINTS[status] || "";
  }
}

function query(params) {
  const q = new URLSearchParams();
  for (const [key, value] of Object.entries(params || {})) {
    if (value === undefined || value === null || value === "") continue;
    for (const v of Array.isArray(value) ? value : [value]) q.append(key, String(v));
  }
  const text = q.toString();
  return text ? `?${text}` : "";
}

async function send(method, path, { params, body } = {}) {
  const init = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  const response = await fetch(path + query(params), init);
  const text = await response.text();
  let data = {};
  try {
    data = text ? JSON.parse(text) : {};
  } catch {
    data = { message: text.slice(0, 300) };
  }
  if (!response.ok) {
    throw new ApiError(response.status, data.error_code || `HTTP_${response.status}`,
      data.message || response.statusText);
  }
  return data;
}

export const get = (path, params) => send("GET", path, { params });
export const post = (path, body) => send("POST", path, { body: body || {} });
export const patch = (path, body) => send("PATCH", path, { body: body || {} });
export const del = (path, body) => send("DELETE", path, { body: body || {} });

export const mlflow = {
  get: (p, params) => get(`${MLFLOW}/${p}`, params),
  post: (p, body) => post(`${MLFLOW}/${p}`, body),
  patch: (p, body) => patch(`${MLFLOW}/${p}`, body),
  del: (p, body) => del(`${MLFLOW}/${p}`, body),
};
export const flowml = {
  get: (p, params) => get(`${FLOWML}/${p}`, params),
  post: (p, body) => post(`${FLOWML}/${p}`, body),
};

/** URL of one run artifact (run-scoped, so the server can check the user may read the run). */
export function runArtifactUrl(runId, path) {
  return `get-artifact${query({ run_uuid: runId, path })}`;
}

export function versionArtifactUrl(name, version, path) {
  return `model-versions/get-artifact${query({ name, version, path })}`;
}

/**
 * At most `limit` bytes of a file as text, and whether it was cut: previews never pull a
 * whole large artifact into the page.
 */
export async function fetchText(url, limit = 512 * 1024) {
  const response = await fetch(url, { credentials: "same-origin" });
  if (!response.ok) {
    let message = response.statusText;
    try {
      message = (await response.json()).message || message;
    } catch { /* a non-JSON error body: keep the status text */ }
    throw new ApiError(response.status, `HTTP_${response.status}`, message);
  }
  const reader = response.body.getReader();
  const chunks = [];
  let size = 0;
  let truncated = false;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    size += value.length;
    if (size >= limit) {
      truncated = true;
      await reader.cancel();
      break;
    }
  }
  const bytes = new Uint8Array(Math.min(size, limit));
  let offset = 0;
  for (const c of chunks) {
    const part = c.subarray(0, Math.min(c.length, bytes.length - offset));
    bytes.set(part, offset);
    offset += part.length;
    if (offset >= bytes.length) break;
  }
  return { text: new TextDecoder().decode(bytes), truncated };
}

let configPromise = null;
/** What the server tells the pages (Prefect's UI address). */
export function uiConfig() {
  configPromise ||= get("ui-config.json").catch(() => ({}));
  return configPromise;
}
