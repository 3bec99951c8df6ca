// CPU and memory over time, as a share of the sandbox's limits, on a small canvas.
import { bytes } from "./util.js";

export function usageChart() {
  const canvas = document.createElement("canvas");
  canvas.className = "usage-chart";
  canvas.id = "usage-chart";
  const samples = []; // [time, cpu cores, memory bytes, pids]
  let limits = { cpu: 1, memory: 1 };

  function draw() {
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth || 360, height = canvas.clientHeight || 110;
    canvas.width = width * ratio;
    canvas.height = height * ratio;
    const g = canvas.getContext("2d");
    g.scale(ratio, ratio);
    g.clearRect(0, 0, width, height);
    const top = 16, bottom = height - 4, left = 2, right = width - 2;
    g.strokeStyle = "#e3e7eb";
    g.beginPath();
    for (const f of [0, 0.5, 1]) { const y = bottom - f * (bottom - top); g.moveTo(left, y); g.lineTo(right, y); }
    g.stroke();
    const last = samples[samples.length - 1];
    g.font = "11px system-ui, sans-serif";
    g.fillStyle = "#2563eb";
    g.fillText(`CPU ${last && last[1] !== null ? last[1].toFixed(2) : "–"} / ${limits.cpu} cores`, left + 2, 11);
    g.fillStyle = "#c2410c";
    g.fillText(`memory ${last ? bytes(last[2]) : "–"} / ${bytes(limits.memory)}`, left + width / 2, 11);
    if (samples.length < 2) return;
    const t0 = samples[0][0], t1 = last[0], span = Math.max(60, t1 - t0);
    const x = (t) => right - ((t1 - t) / span) * (right - left);
    const line = (color, value) => {
      g.strokeStyle = color;
      g.lineWidth = 1.5;
      g.beginPath();
      let started = false;
      for (const s of samples) {
        const v = value(s);
        if (v === null) continue;
        const y = bottom - Math.min(1, Math.max(0, v)) * (bottom - top);
        if (started) g.lineTo(x(s[0]), y); else g.moveTo(x(s[0]), y);
        started = true;
      }
      g.stroke();
    };
    line("#2563eb", (s) => (s[1] === null ? null : s[1] / limits.cpu));
    line("#c2410c", (s) => s[2] / limits.memory);
  }

  return {
    canvas,
    setLimits(cpu, memory) { limits = { cpu: cpu || 1, memory: memory > 0 ? memory : 1 }; draw(); },
    reset() { samples.length = 0; draw(); },
    add(sample) {
      samples.push(sample);
      while (samples.length > 300) samples.shift();
      canvas.dataset.samples = String(samples.length);
      draw();
    },
    draw,
  };
}
