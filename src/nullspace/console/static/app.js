// Entry point: log in (or find that this server needs no login), then route by the URL hash:
// #/ sandboxes, #/sandbox/ID one sandbox, #/server the server.
import { ApiError, get, session, whenUnauthorized } from "./api.js";
import { el, notice } from "./util.js";
import { listView } from "./list.js";
import { sandboxView } from "./sandbox.js";
import { serverView } from "./server.js";

const main = document.getElementById("main");
let cleanup = () => {};

async function probe() {
  try {
    await get("/v1/pools", { probe: true });
    return true;
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return false;
    throw error;
  }
}

function showSession(mode) {
  const label = document.getElementById("session");
  const logout = document.getElementById("logout");
  label.textContent = mode === "key" ? "API key in this tab's session" : mode === "local" ? "local server, no login" : "";
  logout.hidden = mode !== "key";
}

function loginView(message) {
  cleanup();
  cleanup = () => {};
  showSession(null);
  const input = el("input", { id: "api-key", type: "password", autocomplete: "off", placeholder: "ns_…", required: true });
  const status = el("div");
  const form = el("form", { class: "login", id: "login" },
    el("h1", {}, "nullspace console"),
    el("label", { for: "api-key" }, "API key"),
    input,
    el("button", { type: "submit" }, "Log in"),
    el("p", { class: "muted" }, "The key is kept in this browser tab's session storage until you log out or close the tab."),
    status);
  if (message) notice(status, message);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    session.set(input.value.trim());
    try {
      if (await probe()) return start();
      session.clear();
      notice(status, "That key was refused.");
    } catch (error) {
      session.clear();
      notice(status, `Cannot reach the server: ${error.message}`);
    }
  });
  main.replaceChildren(form);
  input.focus();
}

function route() {
  cleanup();
  const hash = location.hash || "#/";
  for (const link of document.querySelectorAll("[data-nav]")) {
    link.classList.toggle("active", (link.dataset.nav === "server") === hash.startsWith("#/server"));
  }
  const view = el("div", { class: "view" });
  main.replaceChildren(view);
  const match = hash.match(/^#\/sandbox\/([A-Za-z0-9_-]+)$/);
  if (match) cleanup = sandboxView(view, match[1]);
  else if (hash.startsWith("#/server")) cleanup = serverView(view);
  else cleanup = listView(view);
}

async function start() {
  let allowed;
  try {
    allowed = await probe();
  } catch (error) {
    main.replaceChildren(el("div", { class: "notice error" }, `Cannot reach the server: ${error.message}`));
    return;
  }
  if (!allowed) {
    session.clear();
    return loginView();
  }
  showSession(session.key() ? "key" : "local");
  route();
}

whenUnauthorized(() => loginView("The server refused the key; log in again."));
window.addEventListener("hashchange", () => { if (document.getElementById("login") === null) route(); });
document.getElementById("logout").addEventListener("click", () => { session.clear(); loginView(); });
start();
