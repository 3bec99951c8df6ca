// The side panels of one sandbox: files (browse, upload, download), running commands, packages.
import { call, download, get, ndjson, request, sb } from "./api.js";
import { bytes, el, notice } from "./util.js";

const HOME = "/home/user";
const PACKAGES = "import importlib.metadata as m, json; " +
  "print(json.dumps(sorted({(d.metadata['Name'] or '?', d.version) for d in m.distributions()})))";

function join(dir, name) {
  return `${dir.replace(/\/+$/, "")}/${name}`;
}

export function filesPanel(id) {
  let dir = HOME;
  const message = el("div");
  const pathInput = el("input", { id: "files-path", value: dir, class: "mono" });
  const upload = el("input", { id: "upload", type: "file", multiple: true });
  const body = el("tbody");
  const section = el("section", { class: "panel", id: "files" },
    el("h2", {}, "Files"),
    el("form", { class: "inline", onsubmit: (e) => { e.preventDefault(); open(pathInput.value || HOME); } },
      pathInput, el("button", { type: "submit" }, "Go"),
      el("button", { type: "button", onclick: () => open(dir.replace(/\/[^/]+\/?$/, "") || "/") }, "Up")),
    el("label", { class: "upload" }, "Upload to this folder: ", upload),
    message,
    el("table", { class: "grid compact", id: "files-table" },
      el("thead", {}, el("tr", {}, el("th", {}, "Name"), el("th", {}, "Size"), el("th", {}, "Modified"), el("th", {}, ""))), body));

  async function open(path) {
    try {
      const entries = await get(`${sb(id)}/files/list?path=${encodeURIComponent(path)}&depth=1`);
      dir = path;
      pathInput.value = path;
      notice(message, "");
      body.replaceChildren(...entries.map((entry) => el("tr", { "data-name": entry.name },
        el("td", {}, entry.type === "dir"
          ? el("a", { href: "#", class: "dir", onclick: (e) => { e.preventDefault(); open(entry.path); } }, `${entry.name}/`)
          : el("span", { class: "mono" }, entry.name)),
        el("td", { class: "num" }, entry.type === "dir" ? "" : bytes(entry.size)),
        el("td", {}, new Date(entry.modified_time).toLocaleString()),
        el("td", {}, entry.type === "file"
          ? el("button", { "data-action": "download", onclick: () => download(id, entry.path).catch((err) => notice(message, err.message)) }, "Download")
          : ""))));
      if (!entries.length) body.append(el("tr", {}, el("td", { colspan: 4, class: "muted" }, "empty")));
    } catch (error) {
      notice(message, error.message);
    }
  }

  upload.addEventListener("change", async () => {
    const outcomes = [];
    for (const file of upload.files) {
      try {
        const info = await request("PUT", `${sb(id)}/files?path=${encodeURIComponent(join(dir, file.name))}`,
          { body: file, headers: { "Content-Type": "application/octet-stream" } }).then((r) => r.json());
        outcomes.push([`Uploaded ${info.path} (${bytes(info.size)}).`, "ok"]);
      } catch (error) {
        outcomes.push([`Upload of ${file.name} failed: ${error.message}`, "error"]);
      }
    }
    upload.value = "";
    await open(dir);
    const failed = outcomes.find(([, kind]) => kind === "error");
    if (outcomes.length) notice(message, ...(failed || outcomes[outcomes.length - 1]));
  });

  open(dir);
  return { section, refresh: () => open(dir) };
}

export function commandsPanel(id) {
  const body = el("tbody");
  const message = el("div");
  const section = el("section", { class: "panel", id: "commands" },
    el("h2", {}, "Running commands"), message,
    el("table", { class: "grid compact" },
      el("thead", {}, el("tr", {}, el("th", {}, "Command"), el("th", {}, "PID"), el("th", {}, "Started"), el("th", {}, ""))), body));

  async function refresh() {
    try {
      const commands = await get(`${sb(id)}/commands`);
      body.replaceChildren(...commands.map((c) => el("tr", {},
        el("td", { class: "mono" }, Array.isArray(c.cmd) ? c.cmd.join(" ") : c.cmd),
        el("td", { class: "num" }, c.pid),
        el("td", {}, new Date(c.started_at).toLocaleTimeString()),
        el("td", {}, el("button", { class: "danger", onclick: () => call("POST", `${sb(id)}/commands/${c.id}/kill`, { signal: "SIGKILL" }).then(refresh) }, "Kill")))));
      if (!commands.length) body.append(el("tr", {}, el("td", { colspan: 4, class: "muted" }, "none")));
      notice(message, "");
    } catch (error) {
      notice(message, error.message);
    }
  }
  refresh();
  return { section, refresh };
}

export function packagesPanel(id) {
  const body = el("tbody");
  const message = el("div");
  const filter = el("input", { placeholder: "filter", id: "packages-filter" });
  let all = [];
  const show = () => {
    const q = filter.value.toLowerCase();
    body.replaceChildren(...all.filter(([name]) => name.toLowerCase().includes(q))
      .map(([name, version]) => el("tr", {}, el("td", {}, name), el("td", { class: "mono" }, version))));
  };
  filter.addEventListener("input", show);
  const button = el("button", { id: "packages-load", onclick: load }, "List Python packages");
  const section = el("section", { class: "panel", id: "packages" },
    el("h2", {}, "Installed packages"), el("div", { class: "inline" }, button, filter), message,
    el("table", { class: "grid compact" }, el("thead", {}, el("tr", {}, el("th", {}, "Package"), el("th", {}, "Version"))), body));

  async function load() {
    button.disabled = true;
    try {
      const response = await request("POST", `${sb(id)}/commands`, { json: { cmd: ["python", "-c", PACKAGES], timeout: 60 } });
      let out = "";
      for await (const event of ndjson(response)) if (event.type === "stdout") out += event.text;
      const parsed = JSON.parse(out);
      all = Array.isArray(parsed) ? parsed.filter((p) => Array.isArray(p)).map((p) => [String(p[0]), String(p[1])]) : [];
      notice(message, `${all.length} Python distributions`, "ok");
      show();
    } catch (error) {
      notice(message, `Could not list packages: ${error.message}`);
    } finally {
      button.disabled = false;
    }
  }
  return { section };
}
