// Small DOM and formatting helpers. Text from the server (and so from sandboxes) only ever
// enters the page as text nodes or attribute values, never as markup.
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "class") node.className = value;
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function bytes(n) {
  if (n === null || n === undefined || n < 0) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n < 10 && i ? n.toFixed(1) : Math.round(n)} ${units[i]}`;
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined || !isFinite(seconds)) return "–";
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, "0")}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}

export const seconds = (iso) => Date.parse(iso) / 1000;
export const now = () => Date.now() / 1000;
export const time = (epoch) => new Date(epoch * 1000).toLocaleTimeString();

// Tracebacks carry terminal colours.
export const stripAnsi = (text) => String(text).replace(/\u001b\[[0-9;?]*[ -\/]*[@-~]/g, "");

export function meter(used, limit, label, hotAbove = 0.85) {
  const fraction = limit > 0 && used !== null && used !== undefined ? Math.min(1, used / limit) : 0;
  const bar = el("span", { class: "bar" }, el("span", { class: fraction > hotAbove ? "fill hot" : "fill" }));
  bar.firstChild.style.width = `${(fraction * 100).toFixed(1)}%`;
  return el("span", { class: "meter" }, bar, el("span", { class: "meter-text" }, label));
}

export function parsePairs(text) {
  const pairs = {};
  for (const part of text.split(",")) {
    const at = part.indexOf("=");
    if (at > 0) pairs[part.slice(0, at).trim()] = part.slice(at + 1).trim();
  }
  return pairs;
}

export function notice(target, message, kind = "error") {
  target.replaceChildren(message ? el("div", { class: `notice ${kind}` }, message) : "");
}
