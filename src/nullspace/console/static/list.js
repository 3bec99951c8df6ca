// The sandboxes list: live over /v1/watch/sandboxes (SSE), filters, create, extend, kill.
import { call, follow, get } from "./api.js";
import { bytes, duration, el, meter, notice, now, parsePairs, seconds } from "./util.js";

const STATES = ["running", "paused", "", "killed", "timed_out", "dead"];
const EXTEND = 300;

export function listView(root) {
  const filters = { state: sessionStorage.getItem("nullspace.filter.state") ?? "running", metadata: sessionStorage.getItem("nullspace.filter.metadata") ?? "" };
  const status = el("div", { class: "status" });
  const message = el("div");
  const stateSelect = el("select", { id: "filter-state" }, STATES.map((s) => el("option", { value: s, selected: s === filters.state }, s || "all")));
  const metaInput = el("input", { id: "filter-metadata", placeholder: "metadata: key=value, …", value: filters.metadata });
  const templateSelect = el("select", { id: "create-template" }, el("option", { value: "code-interpreter" }, "code-interpreter"));
  const timeoutInput = el("input", { id: "create-timeout", type: "number", min: 1, value: 300, class: "narrow" });
  const createMeta = el("input", { id: "create-metadata", placeholder: "metadata: key=value, …" });
  const body = el("tbody");
  let rows = [];
  let stop = () => {};

  const toolbar = el("section", { class: "toolbar" },
    el("form", { class: "inline", onsubmit: (e) => { e.preventDefault(); applyFilters(); } },
      el("label", {}, "State ", stateSelect), el("label", {}, "Metadata ", metaInput),
      el("button", { type: "submit", id: "sandboxes-filter" }, "Filter")),
    el("form", { class: "inline", id: "create", onsubmit: (e) => { e.preventDefault(); create(); } },
      el("label", {}, "Template ", templateSelect), el("label", {}, "Timeout (s) ", timeoutInput),
      el("label", {}, "Metadata ", createMeta), el("button", { type: "submit", id: "create-button" }, "Create sandbox")));
  const table = el("table", { id: "sandboxes", class: "grid" },
    el("thead", {}, el("tr", {}, ["Sandbox", "State", "Template", "Age", "Time left", "CPU", "Memory", "Metadata", ""].map((h) => el("th", {}, h)))),
    body);
  root.append(el("h1", {}, "Sandboxes ", status), toolbar, message, table);

  function query() {
    const params = new URLSearchParams();
    if (filters.state) params.set("state", filters.state);
    for (const [k, v] of Object.entries(parsePairs(filters.metadata))) params.set(`metadata.${k}`, v);
    return params.toString();
  }

  function connect() {
    stop();
    stop = follow(`/v1/watch/sandboxes?${query()}`, (event) => {
      if (event.event === "sandboxes") { rows = event.data; render(); }
    }, (state, error) => {
      status.textContent = state === "live" ? "● live" : state === "error" ? "○ reconnecting" : "○ connecting";
      if (error) notice(message, error.message);
      else if (state === "live" && status.classList.contains("error")) notice(message, "");  // back after an error
      status.className = `status ${state}`;
    });
  }

  function applyFilters() {
    filters.state = stateSelect.value;
    filters.metadata = metaInput.value;
    sessionStorage.setItem("nullspace.filter.state", filters.state);
    sessionStorage.setItem("nullspace.filter.metadata", filters.metadata);
    connect();
  }

  async function create() {
    const button = document.getElementById("create-button");
    button.disabled = true;
    try {
      const info = await call("POST", "/v1/sandboxes", {
        template: templateSelect.value, timeout: Number(timeoutInput.value) || undefined,
        metadata: Object.keys(parsePairs(createMeta.value)).length ? parsePairs(createMeta.value) : undefined,
      });
      notice(message, `Created ${info.sandbox_id}.`, "ok");
    } catch (error) {
      notice(message, `Create failed: ${error.message}`);
    } finally {
      button.disabled = false;
    }
  }

  async function act(label, work) {
    try { await work(); } catch (error) { notice(message, `${label} failed: ${error.message}`); }
  }

  const armed = new Map();  // sandbox id → time its "Really kill?" expires (rows re-render every second)
  function killButton(id) {
    const live = (armed.get(id) || 0) > Date.now();
    const button = el("button", { class: "danger", "data-action": "kill" }, live ? "Really kill?" : "Kill");
    button.addEventListener("click", () => {
      if ((armed.get(id) || 0) <= Date.now()) {
        armed.set(id, Date.now() + 4000);
        button.textContent = "Really kill?";
        return;
      }
      armed.delete(id);
      button.disabled = true;
      act("Kill", () => call("DELETE", `/v1/sandboxes/${encodeURIComponent(id)}`));
    });
    return button;
  }

  const built = new Map();  // sandbox id → {key, row, cpu, memory}: rows are updated in place

  function usageCells(s, cpu, memory) {
    const u = s.usage;
    const running = s.state === "running";
    cpu.replaceChildren(running && u ? meter(u.cpu_used, u.cpu_limit, `${u.cpu_used === null ? "–" : u.cpu_used.toFixed(2)} / ${u.cpu_limit} cores`) : `${s.cpu} cores`);
    memory.replaceChildren(running && u ? meter(u.memory_used, u.memory_limit, `${bytes(u.memory_used)} / ${bytes(u.memory_limit)}`) : `${s.memory_mb} MiB`);
  }

  function buildRow(s) {
    const t = now();
    const running = s.state === "running" || s.state === "paused";
    const meta = Object.entries(s.metadata).map(([k, v]) => el("span", { class: "tag" }, `${k}=${v}`));
    const cpu = el("td", { class: "cpu" });
    const memory = el("td", { class: "memory" });
    const row = el("tr", { "data-id": s.sandbox_id, class: running ? "" : "ended" },
      el("td", {}, el("a", { href: `#/sandbox/${s.sandbox_id}`, class: "mono" }, s.sandbox_id)),
      el("td", {}, el("span", { class: `state ${s.state}` }, s.state)),
      el("td", {}, s.template),
      el("td", { "data-age": seconds(s.created_at) }, duration(t - seconds(s.created_at))),
      el("td", { "data-left": running ? seconds(s.end_at) : "" }, running ? duration(seconds(s.end_at) - t) : (s.end_reason || "")),
      cpu, memory,
      el("td", {}, meta),
      el("td", { class: "actions" }, running ? [
        el("a", { href: `#/sandbox/${s.sandbox_id}`, class: "button" }, "Open"),
        el("button", { "data-action": "extend", title: `time left + ${EXTEND / 60} min`, onclick: () => act("Extend", () =>
          call("POST", `/v1/sandboxes/${encodeURIComponent(s.sandbox_id)}/timeout`, { timeout: Math.round(seconds(s.end_at) - now()) + EXTEND })) }, "+5 min"),
        killButton(s.sandbox_id),
      ] : []));
    return { row, cpu, memory };
  }

  function render() {
    const seen = new Set();
    const ordered = rows.map((s) => {
      seen.add(s.sandbox_id);
      const key = JSON.stringify({ ...s, usage: null });
      let entry = built.get(s.sandbox_id);
      if (!entry || entry.key !== key) {
        entry = { key, ...buildRow(s) };
        built.set(s.sandbox_id, entry);
      }
      usageCells(s, entry.cpu, entry.memory);
      return entry.row;
    });
    for (const id of [...built.keys()]) if (!seen.has(id)) built.delete(id);
    const empty = el("tr", { class: "empty" }, el("td", { colspan: 9, class: "muted" }, "No sandboxes match."));
    const wanted = ordered.length ? ordered : [empty];
    if (wanted.length !== body.children.length || wanted.some((row, i) => body.children[i] !== row)) body.replaceChildren(...wanted);
  }

  const ticker = setInterval(() => {
    const t = now();
    for (const cell of body.querySelectorAll("[data-age]")) cell.textContent = duration(t - Number(cell.dataset.age));
    for (const cell of body.querySelectorAll("[data-left]")) if (cell.dataset.left) cell.textContent = duration(Number(cell.dataset.left) - t);
  }, 1000);

  get("/v1/templates").then((templates) => {
    templateSelect.replaceChildren(...templates.map((t) => el("option", { value: t.name, selected: t.name === "code-interpreter" }, t.name)));
  }).catch(() => {});
  connect();
  return () => { stop(); clearInterval(ticker); };
}
