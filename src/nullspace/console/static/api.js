// The /v1 API, as the SDK uses it. The key lives in this origin's sessionStorage only: never in
// a cookie, a URL or a frame. Every request says it comes from the console (X-Nullspace-Console),
// which a server started with --console-no-login accepts from this machine without a key.
const KEY = "nullspace.apiKey";

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export const session = {
  key: () => sessionStorage.getItem(KEY),
  set: (key) => sessionStorage.setItem(KEY, key),
  clear: () => sessionStorage.removeItem(KEY),
};

let onUnauthorized = () => {};
export function whenUnauthorized(callback) { onUnauthorized = callback; }

function headers(extra) {
  const result = { "X-Nullspace-Console": "1", ...extra };
  const key = session.key();
  if (key) result["X-API-Key"] = key;
  return result;
}

export async function request(method, path, { json, body, headers: extra, signal, probe = false } = {}) {
  const init = { method, headers: headers(extra || {}), signal, cache: "no-store", credentials: "omit" };
  if (json !== undefined) {
    init.body = JSON.stringify(json);
    init.headers["Content-Type"] = "application/json";
  } else if (body !== undefined) {
    init.body = body;
  }
  const response = await fetch(path, init);
  if (!response.ok) {
    let code = "error", message = `${response.status} ${response.statusText}`;
    try {
      const error = await response.json();
      code = error.code || code;
      message = error.message || message;
    } catch { /* not JSON */ }
    if (response.status === 401 && !probe) onUnauthorized();
    throw new ApiError(response.status, code, message);
  }
  return response;
}

export async function get(path, options) {
  return (await request("GET", path, options)).json();
}

export async function call(method, path, json) {
  const response = await request(method, path, { json });
  return response.status === 204 ? null : response.json();
}

export const sb = (id) => `/v1/sandboxes/${encodeURIComponent(id)}`;

async function* lines(response, separator) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let at;
    while ((at = buffer.indexOf(separator)) >= 0) {
      yield buffer.slice(0, at);
      buffer = buffer.slice(at + separator.length);
    }
  }
  if (buffer.trim()) yield buffer;
}

// NDJSON (runs, commands): one event per line.
export async function* ndjson(response) {
  for await (const line of lines(response, "\n")) {
    if (line.trim()) yield JSON.parse(line);
  }
}

// Server-sent events over fetch (EventSource cannot send the key header).
export async function* sse(path, signal) {
  const response = await request("GET", path, { signal, headers: { Accept: "text/event-stream" } });
  for await (const block of lines(response, "\n\n")) {
    let event = "message";
    const data = [];
    for (const line of block.split("\n")) {
      if (line.startsWith("event:")) event = line.slice(6).trim();
      else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
    }
    if (data.length) yield { event, data: JSON.parse(data.join("\n")) };
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Follow a stream, reconnecting after errors; stops on abort, 401 and 404. Returns a stop function.
export function follow(path, onEvent, onState = () => {}) {
  const control = new AbortController();
  (async () => {
    let delay = 500;
    while (!control.signal.aborted) {
      try {
        onState("connecting");
        for await (const event of sse(path, control.signal)) {
          onState("live");
          delay = 500;
          if (onEvent(event) === false) return;
        }
      } catch (error) {
        if (control.signal.aborted) return;
        onState("error", error);
        if (error instanceof ApiError && (error.status === 401 || error.status === 404)) return;
      }
      await sleep(delay);
      delay = Math.min(delay * 2, 5000);
    }
  })();
  return () => control.abort();
}

// Download a sandbox file: fetched with the key, handed to the browser as a blob.
export async function download(id, path) {
  const response = await request("GET", `${sb(id)}/files?path=${encodeURIComponent(path)}`);
  const url = URL.createObjectURL(await response.blob());
  const link = document.createElement("a");
  link.href = url;
  link.download = path.split("/").pop() || "download";
  document.body.appendChild(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
}
