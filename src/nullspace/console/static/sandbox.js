// One sandbox: a notebook onto its contexts (every run anyone makes appears live, from
// /v1/sandboxes/{id}/events), usage over time, files, commands and packages.
import { call, follow, get, ndjson, request, sb } from "./api.js";
import { usageChart } from "./chart.js";
import { commandsPanel, filesPanel, packagesPanel } from "./panels.js";
import { detectPlotly, renderBundle } from "./render.js";
import { duration, el, notice, now, seconds, stripAnsi, time } from "./util.js";

const LANGUAGES = ["python", "r", "javascript", "typescript", "java", "bash"];
const MiB = 1 << 20;

export function sandboxView(root, id) {
  const cells = new Map(); // run id → cell
  const ownCode = []; // code this page sent and has not seen start yet
  const message = el("div");
  const header = el("div", { class: "sandbox-head" }, el("h1", { class: "mono" }, id));
  const status = el("span", { class: "status" });
  const left = el("span", { id: "time-left" });
  const chart = usageChart();
  const notebook = el("div", { id: "notebook", class: "notebook" });
  const target = el("select", { id: "language" }, LANGUAGES.map((l) => el("option", { value: `lang:${l}` }, `${l} (default context)`)));
  const code = el("textarea", { id: "code", spellcheck: "false", rows: 6, placeholder: "Code to run — Ctrl+Enter" });
  const runButton = el("button", { id: "run", type: "submit" }, "Run");
  const files = filesPanel(id);
  const commands = commandsPanel(id);
  const packages = packagesPanel(id);
  let info = null;
  let ended = false;
  let localRuns = 0;

  const editor = el("form", { class: "editor", onsubmit: (e) => { e.preventDefault(); run(); } },
    el("div", { class: "inline" }, target,
      el("button", { type: "button", onclick: newContext, title: "a new context (own kernel) for this language" }, "+ context"),
      runButton),
    code);
  code.addEventListener("keydown", (e) => { if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); run(); } });

  root.append(
    el("div", { class: "sandbox-top" }, header,
      el("div", { class: "sandbox-facts" }, status, left,
        el("button", { id: "extend", onclick: () => extend() }, "+5 min"),
        el("button", { id: "kill", class: "danger", onclick: kill }, "Kill")),
      chart.canvas),
    message,
    el("div", { class: "sandbox-grid" },
      el("div", { class: "notebook-col" }, notebook, editor),
      el("div", { class: "side" }, files.section, commands.section, packages.section)));

  async function loadContexts(select) {
    try {
      const contexts = await get(`${sb(id)}/contexts`);
      const options = LANGUAGES.map((l) => el("option", { value: `lang:${l}` }, `${l} (default context)`));
      for (const c of contexts) options.push(el("option", { value: `ctx:${c.id}` }, `${c.language} · ${c.id.slice(0, 8)} · ${c.cwd}`));
      const keep = select || target.value;
      target.replaceChildren(...options);
      if ([...target.options].some((o) => o.value === keep)) target.value = keep;
    } catch { /* the sandbox may be gone; the stream says so */ }
  }

  async function newContext() {
    const value = target.value.startsWith("lang:") ? target.value.slice(5) : "python";
    try {
      const context = await call("POST", `${sb(id)}/contexts`, { language: value });
      await loadContexts(`ctx:${context.id}`);
    } catch (error) { notice(message, error.message); }
  }

  async function run() {
    const source = code.value;
    if (!source.trim() || ended) return;
    const body = { code: source };
    if (target.value.startsWith("ctx:")) body.context_id = target.value.slice(4);
    else body.language = target.value.slice(5);
    ownCode.push(source);
    runButton.disabled = true;
    try {
      // What the run prints arrives on the event stream, like anyone else's run; this
      // response is only read to its end.
      const response = await request("POST", `${sb(id)}/execute`, { json: body });
      const events = [];
      for await (const event of ndjson(response)) events.push(event);
      code.value = "";
      // If the event stream missed the run (it was reconnecting), show it from the answer.
      setTimeout(() => {
        const at = ownCode.indexOf(source);
        if (at < 0) return;
        ownCode.splice(at, 1);
        const run = `local_${++localRuns}`;
        cellFor({ type: "run_start", run, code: source, language: body.language, context_id: body.context_id, at: now(), own: true });
        for (const event of events) onRunEvent({ ...event, run });
      }, 1000);
    } catch (error) {
      ownCode.splice(ownCode.indexOf(source), 1);
      notice(message, `Run failed: ${error.message}`);
    } finally {
      runButton.disabled = false;
    }
  }

  async function extend() {
    if (!info) return;
    try {
      const updated = await call("POST", `${sb(id)}/timeout`, { timeout: Math.round(seconds(info.end_at) - now()) + 300 });
      info.end_at = updated.end_at;
      tick();
    } catch (error) { notice(message, error.message); }
  }

  async function kill(event) {
    const button = event.currentTarget;
    if (button.dataset.armed !== "1") {  // a second click within 4 s kills
      button.dataset.armed = "1";
      button.textContent = "Really kill?";
      setTimeout(() => { button.dataset.armed = ""; button.textContent = "Kill"; }, 4000);
      return;
    }
    try { await call("DELETE", sb(id)); } catch (error) { notice(message, error.message); }
  }

  function tick() {
    if (info && !ended) left.textContent = `time left ${duration(seconds(info.end_at) - now())}`;
  }

  function cellFor(event) {
    let cell = cells.get(event.run);
    if (cell) return cell;
    const own = event.own || (event.type === "run_start" && ownCode.indexOf(event.code) >= 0);
    if (own && !event.own) ownCode.splice(ownCode.indexOf(event.code), 1);
    const language = event.context_id ? `context ${String(event.context_id).slice(0, 8)}` : (event.language || "python");
    const prompt = el("span", { class: "prompt" }, "In [ ]");
    const badge = el("span", { class: "badge running" }, "running");
    const outputs = el("div", { class: "outputs" });
    const root = el("div", { class: "cell", "data-run": event.run, "data-origin": own ? "console" : "other" },
      el("div", { class: "cell-head" }, prompt, el("span", {}, language),
        el("span", { class: "muted" }, own ? "this page" : `another client${event.key_id ? ` (${event.key_id})` : ""}`),
        el("span", { class: "muted" }, event.at ? time(event.at) : ""), badge),
      el("pre", { class: "cell-code" }, event.code ?? "(started before this page opened)"),
      outputs);
    cell = { root, prompt, badge, outputs, stream: null };
    cells.set(event.run, cell);
    notebook.append(root);
    root.scrollIntoView({ block: "nearest" });
    return cell;
  }

  function onRunEvent(event) {
    const cell = cellFor(event);
    const { outputs } = cell;
    switch (event.type) {
      case "run_start":
        break;
      case "number_of_executions":
        cell.prompt.textContent = `In [${event.execution_count}]`;
        break;
      case "stdout":
      case "stderr":
        if (!cell.stream || cell.stream.kind !== event.type || cell.stream.node !== outputs.lastChild) {
          const node = el("pre", { class: `output-${event.type}` });
          outputs.append(node);
          cell.stream = { kind: event.type, node };
        }
        cell.stream.node.append(event.text);
        break;
      case "result":
        outputs.append(el("div", { class: "output-result" }, renderBundle(event.data || {})));
        break;
      case "error":
        outputs.append(el("div", { class: "output-error" },
          el("strong", {}, `${event.name}: ${event.value}`),
          event.traceback ? el("pre", {}, stripAnsi(Array.isArray(event.traceback) ? event.traceback.join("\n") : event.traceback)) : ""));
        break;
      case "limit":
        outputs.append(el("div", { class: "output-error" }, event.message || `limit: ${event.resource}`));
        break;
      case "artifacts":
        outputs.append(el("div", { class: "artifacts" }, "Files written: ",
          (event.artifacts || []).map((a) => el("span", { class: "tag" }, `${a.path} (${a.change || "changed"})`))));
        break;
      case "end_of_execution":
        cell.badge.textContent = event.status;
        cell.badge.className = `badge ${event.status}`;
        files.refresh();
        break;
      default:
        break;
    }
  }

  function onEvent({ event, data }) {
    if (event === "sandbox") {
      info = data;
      status.replaceChildren(el("span", { class: `state ${data.state}` }, data.state), ` ${data.template} · ${data.cpu} cores · ${data.memory_mb} MiB`);
      chart.setLimits(data.cpu, data.memory_mb * MiB);
      chart.reset();  // a reconnected stream sends the history again
      for (const sample of data.history || []) chart.add(sample);
      tick();
    } else if (event === "stats") {
      chart.setLimits(data.cpu_limit, data.memory_limit);
      chart.add(data.sample);
    } else if (event === "dropped") {
      notebook.append(el("div", { class: "notice warn" }, `${data.count} events were dropped: this page fell behind.`));
    } else if (event === "sandbox_end") {
      ended = true;
      runButton.disabled = true;
      left.textContent = "";
      status.replaceChildren(el("span", { class: `state ${data.state}` }, data.state));
      notice(message, `This sandbox has ended: ${data.reason}`, "warn");
      return false;
    } else if (data && data.run) {
      onRunEvent(data);
    }
    return true;
  }

  const stop = follow(`${sb(id)}/events`, onEvent, (state, error) => {
    status.dataset.stream = state;
    if (error && error.status === 404) {
      ended = true;
      runButton.disabled = true;
      notice(message, error.message, "warn");
    }
  });
  const timers = [setInterval(tick, 1000), setInterval(() => { if (!ended) commands.refresh(); }, 3000)];
  detectPlotly();
  loadContexts();
  return () => { stop(); timers.forEach(clearInterval); };
}
