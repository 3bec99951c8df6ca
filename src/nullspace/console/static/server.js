// The server: warm pools and their levels, templates (size, build date), recent errors.
import { get } from "./api.js";
import { bytes, el, meter, notice, time } from "./util.js";

export function serverView(root) {
  const message = el("div");
  const pools = el("tbody");
  const templates = el("tbody");
  const errors = el("tbody");
  const scope = el("span", { class: "muted" });
  root.append(el("h1", {}, "Server"), message,
    el("section", { class: "panel" }, el("h2", {}, "Warm pools"),
      el("table", { class: "grid", id: "pools" }, el("thead", {}, el("tr", {}, ["Template", "Ready / target", "Min–max", "Starting", "Claimed", "Missed", "Claims / min"].map((h) => el("th", {}, h)))), pools)),
    el("section", { class: "panel" }, el("h2", {}, "Templates"),
      el("table", { class: "grid", id: "templates" }, el("thead", {}, el("tr", {}, ["Template", "Size", "Built", "Base", "Layers", "Running", "Kernels"].map((h) => el("th", {}, h)))), templates)),
    el("section", { class: "panel" }, el("h2", {}, "Recent errors ", scope),
      el("table", { class: "grid", id: "errors" }, el("thead", {}, el("tr", {}, ["Time", "Level", "Source", "Message"].map((h) => el("th", {}, h)))), errors)));

  async function refresh() {
    try {
      const [p, t, e] = await Promise.all([get("/v1/pools"), get("/v1/templates"), get("/v1/server/errors")]);
      pools.replaceChildren(...Object.entries(p).map(([name, s]) => el("tr", {},
        el("td", {}, name),
        el("td", {}, meter(s.ready, s.target, `${s.ready} / ${s.target}`, Infinity)),
        el("td", { class: "num" }, s.min !== undefined ? `${s.min}–${s.max}` : "–"),
        el("td", { class: "num" }, s.starting ?? "–"),
        el("td", { class: "num" }, s.claimed ?? "–"),
        el("td", { class: "num" }, s.missed ?? "–"),
        el("td", { class: "num" }, s.claims_per_minute ?? "–"))));
      if (!Object.keys(p).length) pools.append(el("tr", {}, el("td", { colspan: 7, class: "muted" }, "no warm pools")));
      templates.replaceChildren(...t.map((x) => el("tr", {},
        el("td", {}, x.name, x.builtin ? el("span", { class: "tag" }, "built-in") : ""),
        el("td", { class: "num" }, bytes(x.size_bytes)),
        el("td", {}, new Date(x.built_at).toLocaleString()),
        el("td", {}, x.base),
        el("td", { class: "num" }, x.layers),
        el("td", { class: "num" }, x.running_sandboxes),
        el("td", {}, Object.keys(x.kernels || {}).join(", ")))));
      scope.textContent = e.scope === "tenant" ? "(your sandboxes)" : "(whole server)";
      errors.replaceChildren(...e.errors.map((r) => el("tr", {},
        el("td", {}, r.at ? time(r.at) : ""), el("td", {}, el("span", { class: `level ${r.level}` }, r.level)),
        el("td", { class: "mono" }, r.logger), el("td", { class: "message" }, r.message))));
      if (!e.errors.length) errors.append(el("tr", {}, el("td", { colspan: 4, class: "muted" }, "none")));
      notice(message, "");
    } catch (error) {
      notice(message, error.message);
    }
  }
  refresh();
  const timer = setInterval(refresh, 5000);
  return () => clearInterval(timer);
}
