// The UI's router: "#/<page>/<id>?<query>" picks one page module and hands it the main area.
import { clear, errorBox, h } from "./dom.js";
import { experimentsPage } from "./pages/experiments.js";
import { runsPage } from "./pages/runs.js";
import { runPage } from "./pages/run.js";
import { comparePage } from "./pages/compare.js";
import { modelPage, modelsPage, versionPage } from "./pages/models.js";

const ROUTES = [
  [/^$/, "experiments", () => experimentsPage],
  [/^experiments\/([^/]+)$/, "experiments", () => runsPage],
  [/^runs\/([^/]+)$/, "experiments", () => runPage],
  [/^compare$/, "experiments", () => comparePage],
  [/^models$/, "models", () => modelsPage],
  [/^models\/([^/]+)$/, "models", () => modelPage],
  [/^models\/([^/]+)\/versions\/([^/]+)$/, "models", () => versionPage],
];

let generation = 0;

/** The current page's query parameters (after the "?" of the hash). */
export function hashQuery() {
  const hash = location.hash.replace(/^#\/?/, "");
  const at = hash.indexOf("?");
  return new URLSearchParams(at >= 0 ? hash.slice(at + 1) : "");
}

async function render() {
  const mine = ++generation;
  const hash = location.hash.replace(/^#\/?/, "");
  const at = hash.indexOf("?");
  const path = at >= 0 ? hash.slice(0, at) : hash;
  const app = document.getElementById("app");
  document.getElementById("status").textContent = ""; // a notice belongs to the page it was on
  for (const [pattern, nav, page] of ROUTES) {
    const match = pattern.exec(path);
    if (!match) continue;
    for (const a of document.querySelectorAll("[data-nav]")) {
      a.classList.toggle("active", a.dataset.nav === nav);
    }
    const args = match.slice(1).map(decodeURIComponent);
    const root = h("div", { class: "page" });
    clear(app, root);
    try {
      // A page checks `alive()` after each await so a slow answer never paints over a newer page.
      await page()(root, args, hashQuery(), () => mine === generation);
    } catch (err) {
      if (mine === generation) root.append(errorBox(err));
    }
    return;
  }
  clear(app, h("p", null, "No such page. ", h("a", { href: "#/" }, "Back to experiments")));
}

const here = new URL(document.URL); // location.href hides the credentials, document.URL not
if (here.username || here.password) {
  // Opened as http://user:token@host/: fetch refuses a page URL that carries credentials,
  // and the token should not stay in the address bar. The browser keeps the credentials it
  // was challenged for on this origin, so the same page without them is signed in.
  here.username = "";
  here.password = "";
  location.replace(here.href);
} else {
  window.addEventListener("hashchange", render);
  render();
}
