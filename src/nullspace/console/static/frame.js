// Runs in <iframe sandbox="allow-scripts"> (an opaque origin, no network: see routes.py FRAME_CSP).
// The console posts one message: {kind: "html", html} or {kind: "plotly", figure}. Whatever
// the content does afterwards stays in this frame.
"use strict";
(function () {
  const STYLE = "<style>body{margin:4px;font:13px/1.4 system-ui,sans-serif;color:#1b1f24;background:#fff}" +
    "table{border-collapse:collapse;font-size:12px}th,td{border:1px solid #d0d7de;padding:2px 8px;text-align:right}" +
    "thead th{background:#f3f5f7}tbody tr:nth-child(odd){background:#fafbfc}</style>";
  const HEIGHT = "<script>(function(){function r(){parent.postMessage({type:'nullspace-height'," +
    "height:Math.max(document.documentElement.scrollHeight,document.body?document.body.scrollHeight:0)},'*')}" +
    "addEventListener('load',r);if(window.ResizeObserver){new ResizeObserver(r).observe(document.documentElement)}" +
    "setTimeout(r,50);r()})()<\/script>";

  function reportHeight() {
    parent.postMessage({ type: "nullspace-height", height: document.documentElement.scrollHeight }, "*");
  }

  function plot(figure) {
    const div = document.createElement("div");
    div.style.width = "100%";
    document.body.style.margin = "0";
    document.body.appendChild(div);
    const script = document.createElement("script");
    script.src = "/console/plotly.min.js";
    script.onload = function () {
      const layout = Object.assign({ height: 380 }, figure.layout || {}, { autosize: true });
      window.Plotly.newPlot(div, figure.data || [], layout, { responsive: true, displaylogo: false })
        .then(reportHeight);
    };
    script.onerror = function () {
      div.textContent = "plotly.js is not available on this server";
      reportHeight();
    };
    document.head.appendChild(script);
  }

  addEventListener("message", function (event) {
    if (event.source !== parent || !event.data || typeof event.data !== "object") return;
    const message = event.data;
    if (message.kind === "html" && typeof message.html === "string") {
      document.open();
      document.write("<!doctype html><meta charset='utf-8'>" + STYLE + message.html + HEIGHT);
      document.close();
    } else if (message.kind === "plotly" && message.figure && typeof message.figure === "object") {
      plot(message.figure);
    }
  });
})();
