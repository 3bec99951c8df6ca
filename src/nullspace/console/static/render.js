// Results rendered as Jupyter would, treating every byte as hostile:
// images as <img> (an SVG in <img> runs no script), markdown through a renderer that escapes
// first, LaTeX and JSON as text, and HTML and plotly figures in frame.html inside
// <iframe sandbox="allow-scripts">: an opaque origin that cannot reach this page, its storage
// (the API key) or the network.
import { el } from "./util.js";

const PLOTLY = "application/vnd.plotly.v1+json";
const frames = new Map(); // frame window → iframe element
let plotlyAvailable = null;

export async function detectPlotly() {
  if (plotlyAvailable === null) {
    try {
      plotlyAvailable = (await fetch("/console/plotly.min.js", { method: "HEAD" })).ok;
    } catch {
      plotlyAvailable = false;
    }
  }
  return plotlyAvailable;
}

window.addEventListener("message", (event) => {
  const frame = frames.get(event.source);
  if (!frame || !event.data || event.data.type !== "nullspace-height") return;
  const height = Number(event.data.height);
  if (Number.isFinite(height)) frame.style.height = `${Math.max(24, Math.min(1600, Math.ceil(height) + 4))}px`;
});

export function isolated(message, label) {
  const frame = el("iframe", {
    sandbox: "allow-scripts", src: "/console/frame.html", class: "output-frame",
    title: label, referrerpolicy: "no-referrer", loading: "eager",
  });
  frame.addEventListener("load", () => {
    frames.set(frame.contentWindow, frame);
    frame.contentWindow.postMessage(message, "*"); // the content is the sandbox's own output
  }, { once: true });
  return frame;
}

function image(mime, data) {
  const src = mime === "image/svg+xml"
    ? `data:image/svg+xml;charset=utf-8,${encodeURIComponent(data)}`
    : `data:${mime};base64,${String(data).replace(/\s/g, "")}`;
  return el("img", { src, class: "output-image", alt: mime });
}

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

function inline(text) {
  return escapeHtml(text)
    .replace(/`([^`]+)`/g, "<code>$1</code>")
    .replace(/\*\*([^*]+)\*\*/g, "<strong>$1</strong>")
    .replace(/(^|[^*])\*([^*]+)\*/g, "$1<em>$2</em>")
    .replace(/\[([^\]]+)\]\((https?:\/\/[^\s)"]+)\)/g, '<a href="$2" target="_blank" rel="noopener noreferrer">$1</a>');
}

// A small markdown subset: headings, lists, code blocks, emphasis, code, links, paragraphs.
export function markdown(source) {
  const out = [];
  const lines = String(source).split("\n");
  let list = null;
  let paragraph = [];
  const flush = () => {
    if (paragraph.length) out.push(`<p>${inline(paragraph.join(" "))}</p>`);
    paragraph = [];
    if (list) out.push(`</${list}>`);
    list = null;
  };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    let match;
    if (line.startsWith("```")) {
      flush();
      const code = [];
      while (++i < lines.length && !lines[i].startsWith("```")) code.push(lines[i]);
      out.push(`<pre><code>${escapeHtml(code.join("\n"))}</code></pre>`);
    } else if ((match = line.match(/^(#{1,6})\s+(.*)$/))) {
      flush();
      out.push(`<h${match[1].length}>${inline(match[2])}</h${match[1].length}>`);
    } else if ((match = line.match(/^\s*(?:[-*+]|(\d+)\.)\s+(.*)$/))) {
      if (paragraph.length) { out.push(`<p>${inline(paragraph.join(" "))}</p>`); paragraph = []; }
      const kind = match[1] ? "ol" : "ul";
      if (list !== kind) { if (list) out.push(`</${list}>`); out.push(`<${kind}>`); list = kind; }
      out.push(`<li>${inline(match[2])}</li>`);
    } else if (!line.trim()) {
      flush();
    } else {
      if (list) { out.push(`</${list}>`); list = null; }
      paragraph.push(line);
    }
  }
  flush();
  const node = el("div", { class: "output-markdown" });
  node.innerHTML = out.join(""); // built only from escaped text and fixed tags
  return node;
}

const text = (value, cls = "output-text") => el("pre", { class: cls }, value);

export function renderBundle(data) {
  if (data[PLOTLY] && plotlyAvailable) return isolated({ kind: "plotly", figure: data[PLOTLY] }, "plotly chart");
  if (data[PLOTLY] && data["image/png"]) return image("image/png", data["image/png"]);
  if (data["text/html"]) return isolated({ kind: "html", html: String(data["text/html"]) }, "HTML output");
  if (data["image/svg+xml"]) return image("image/svg+xml", data["image/svg+xml"]);
  if (data["image/png"]) return image("image/png", data["image/png"]);
  if (data["image/jpeg"]) return image("image/jpeg", data["image/jpeg"]);
  if (data["image/gif"]) return image("image/gif", data["image/gif"]);
  if (data["text/markdown"]) return markdown(data["text/markdown"]);
  if (data["text/latex"]) return text(data["text/latex"], "output-text latex");
  if (data["application/json"]) return text(JSON.stringify(data["application/json"], null, 2));
  if (data["text/plain"] !== undefined) return text(data["text/plain"]);
  const kinds = Object.keys(data).filter((k) => !k.startsWith("application/vnd.nullspace"));
  return text(`[${kinds.join(", ") || "empty result"}]`, "output-text muted");
}
