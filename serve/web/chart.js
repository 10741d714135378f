// chart.js — a small canvas line chart for the hotcb dashboard: several series over steps,
// linear or log y, EMA smoothing, vertical markers (ledger ops), drag to zoom, double-click to
// reset, a crosshair with the values under the pointer. No dependencies.
(() => {
"use strict";

const PALETTE = ["#2f6fdf", "#e0572a", "#1d9a6c", "#9b4fd1", "#c99a06", "#d13f7a", "#0f8fa8", "#6b7a23",
  "#8a5a44", "#4a58a8", "#b5442f", "#3e8e41"];

function colorFor(i) { return PALETTE[i % PALETTE.length]; }

// niceTicks returns about n round values covering [lo, hi].
function niceTicks(lo, hi, n) {
  if (!(hi > lo)) { return [lo]; }
  const span = hi - lo;
  const raw = span / Math.max(1, n);
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const f = raw / mag;
  const step = (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * mag;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) {
    out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
  }
  return out;
}

function fmtNum(v) {
  if (v === null || v === undefined) { return "–"; }
  if (typeof v !== "number") { return String(v); }
  if (!isFinite(v)) { return isNaN(v) ? "NaN" : (v > 0 ? "+Inf" : "-Inf"); }
  const a = Math.abs(v);
  if (a === 0) { return "0"; }
  if (a >= 1e6 || a < 1e-3) { return v.toExponential(2); }
  if (a >= 100) { return v.toFixed(0); }
  if (a >= 10) { return v.toFixed(1); }
  if (a >= 1) { return v.toFixed(2); }
  return v.toPrecision(3);
}

function fmtBytes(v) {
  if (!isFinite(v)) { return fmtNum(v); }
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  let x = Math.abs(v);
  while (x >= 1024 && i < u.length - 1) { x /= 1024; i++; }
  return (v < 0 ? "-" : "") + (x >= 100 ? x.toFixed(0) : x.toFixed(1)) + " " + u[i];
}

// ema smooths finite values with weight w (0: none), debiased as TensorBoard does.
function ema(values, w) {
  if (!(w > 0)) { return values; }
  const out = new Array(values.length);
  let s = 0, n = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (!isFinite(v)) { out[i] = v; continue; }
    n++;
    s = w * s + (1 - w) * v;
    out[i] = s / (1 - Math.pow(w, n));
  }
  return out;
}

class Chart {
  // opts: {title, height, yFormat, onZoom(from, to | null), logY, smoothing}
  constructor(parent, opts) {
    this.opts = opts || {};
    this.series = [];
    this.markers = [];
    this.logY = !!this.opts.logY;
    this.smoothing = this.opts.smoothing || 0;
    this.xRange = null; // [from, to] when zoomed
    this.root = document.createElement("div");
    this.root.className = "chart";
    const head = document.createElement("div");
    head.className = "chart-head";
    this.titleEl = document.createElement("span");
    this.titleEl.className = "chart-title";
    this.titleEl.textContent = this.opts.title || "";
    this.legendEl = document.createElement("span");
    this.legendEl.className = "chart-legend";
    head.append(this.titleEl, this.legendEl);
    this.canvas = document.createElement("canvas");
    this.canvas.height = 10;
    this.tip = document.createElement("div");
    this.tip.className = "chart-tip";
    this.tip.hidden = true;
    const body = document.createElement("div");
    body.className = "chart-body";
    body.append(this.canvas, this.tip);
    this.root.append(head, body);
    parent.append(this.root);
    this.height = this.opts.height || 190;
    this.drag = null;
    this.hoverX = null;
    this.pending = false;
    this.canvas.addEventListener("mousedown", (e) => this.onDown(e));
    this.canvas.addEventListener("mousemove", (e) => this.onMove(e));
    this.canvas.addEventListener("mouseleave", () => { this.hoverX = null; this.tip.hidden = true; this.redraw(); });
    window.addEventListener("mouseup", (e) => this.onUp(e));
    this.canvas.addEventListener("dblclick", () => { if (this.opts.onZoom) { this.opts.onZoom(null); } });
    if (window.ResizeObserver) {
      new ResizeObserver(() => this.redraw()).observe(body);
    }
  }

  setSeries(list) { this.series = list; this.redraw(); }
  setMarkers(list) { this.markers = list || []; this.redraw(); }
  setLog(b) { this.logY = b; this.redraw(); }
  setSmoothing(w) { this.smoothing = w; this.redraw(); }
  setXRange(r) { this.xRange = r; this.redraw(); }
  remove() { this.root.remove(); }

  redraw() {
    if (this.pending) { return; }
    this.pending = true;
    requestAnimationFrame(() => { this.pending = false; this.draw(); });
  }

  geometry() {
    const w = this.canvas.clientWidth || this.root.clientWidth || 400;
    return { w: w, h: this.height, l: 58, r: 10, t: 8, b: 22 };
  }

  // bounds of what is shown: x from the data (or the zoom), y from the visible points.
  bounds(prepared) {
    let x0 = Infinity, x1 = -Infinity;
    for (const s of prepared) {
      if (s.steps.length) { x0 = Math.min(x0, s.steps[0]); x1 = Math.max(x1, s.steps[s.steps.length - 1]); }
    }
    if (this.xRange) { x0 = this.xRange[0]; x1 = this.xRange[1]; }
    if (!isFinite(x0)) { x0 = 0; x1 = 1; }
    if (x1 <= x0) { x1 = x0 + 1; }
    let y0 = Infinity, y1 = -Infinity;
    for (const s of prepared) {
      for (let i = 0; i < s.steps.length; i++) {
        const st = s.steps[i];
        if (st < x0 || st > x1) { continue; }
        for (const v of [s.values[i], s.raw ? s.raw[i] : NaN]) {
          if (!isFinite(v) || (this.logY && v <= 0)) { continue; }
          if (v < y0) { y0 = v; }
          if (v > y1) { y1 = v; }
        }
      }
    }
    if (!isFinite(y0)) { y0 = this.logY ? 1 : 0; y1 = this.logY ? 10 : 1; }
    if (this.logY) {
      y0 = Math.log10(y0); y1 = Math.log10(y1);
      if (y1 - y0 < 0.1) { y0 -= 0.05; y1 += 0.05; }
    } else if (y1 === y0) {
      const d = Math.abs(y0) * 0.05 || 1; y0 -= d; y1 += d;
    } else {
      const pad = (y1 - y0) * 0.04; y0 -= pad; y1 += pad;
    }
    return { x0, x1, y0, y1 };
  }

  draw() {
    const g = this.geometry();
    const dpr = window.devicePixelRatio || 1;
    if (this.canvas.width !== Math.round(g.w * dpr) || this.canvas.height !== Math.round(g.h * dpr)) {
      this.canvas.width = Math.round(g.w * dpr);
      this.canvas.height = Math.round(g.h * dpr);
      this.canvas.style.height = g.h + "px";
    }
    const c = this.canvas.getContext("2d");
    c.setTransform(dpr, 0, 0, dpr, 0, 0);
    c.clearRect(0, 0, g.w, g.h);
    const prepared = this.series.map((s, i) => ({
      name: s.name, color: s.color || colorFor(i), steps: s.steps,
      values: ema(s.values, this.smoothing), raw: this.smoothing > 0 ? s.values : null,
    }));
    const b = this.bounds(prepared);
    this.b = b; this.g = g; this.prepared = prepared;
    const pw = g.w - g.l - g.r, ph = g.h - g.t - g.b;
    const X = (st) => g.l + (st - b.x0) / (b.x1 - b.x0) * pw;
    const Y = (v) => {
      const y = this.logY ? Math.log10(v) : v;
      return g.t + ph - (y - b.y0) / (b.y1 - b.y0) * ph;
    };
    this.X = X;
    // grid and axes
    c.font = "11px system-ui, sans-serif";
    c.fillStyle = "#667";
    c.strokeStyle = "#e6e8ee";
    c.lineWidth = 1;
    const yt = this.logY ? logTicks(b.y0, b.y1) : niceTicks(b.y0, b.y1, Math.max(2, Math.floor(ph / 36)));
    c.textAlign = "right"; c.textBaseline = "middle";
    for (const t of yt) {
      const y = this.logY ? g.t + ph - (t - b.y0) / (b.y1 - b.y0) * ph : Y(t);
      if (y < g.t - 1 || y > g.t + ph + 1) { continue; }
      c.beginPath(); c.moveTo(g.l, y + 0.5); c.lineTo(g.l + pw, y + 0.5); c.stroke();
      const label = this.logY ? fmtNum(Math.pow(10, t)) : (this.opts.yFormat || fmtNum)(t);
      c.fillText(label, g.l - 4, y);
    }
    const xt = niceTicks(b.x0, b.x1, Math.max(2, Math.floor(pw / 90)));
    c.textAlign = "center"; c.textBaseline = "top";
    for (const t of xt) {
      const x = X(t);
      if (x < g.l - 1 || x > g.l + pw + 1) { continue; }
      c.beginPath(); c.moveTo(x + 0.5, g.t); c.lineTo(x + 0.5, g.t + ph); c.stroke();
      c.fillText(fmtStep(t), x, g.t + ph + 5);
    }
    c.save();
    c.beginPath(); c.rect(g.l, g.t, pw, ph); c.clip();
    // markers
    for (const m of this.markers) {
      if (m.step < b.x0 || m.step > b.x1) { continue; }
      const x = Math.round(X(m.step)) + 0.5;
      c.strokeStyle = m.color || "#999";
      c.globalAlpha = 0.7;
      c.setLineDash([3, 3]);
      c.beginPath(); c.moveTo(x, g.t); c.lineTo(x, g.t + ph); c.stroke();
      c.setLineDash([]);
      c.globalAlpha = 1;
      c.fillStyle = m.color || "#999";
      c.beginPath(); c.moveTo(x - 4, g.t); c.lineTo(x + 4, g.t); c.lineTo(x, g.t + 6); c.fill();
    }
    // lines
    let drawn = 0;
    for (const s of prepared) {
      if (s.raw) { drawn += this.line(c, s.steps, s.raw, X, Y, s.color, 0.22, b); }
      drawn += this.line(c, s.steps, s.values, X, Y, s.color, 1, b);
    }
    // non-finite values: a red cross at the top
    c.strokeStyle = "#d22"; c.lineWidth = 1.5;
    for (const s of prepared) {
      const vals = s.raw || s.values;
      for (let i = 0; i < s.steps.length; i++) {
        if (isFinite(vals[i]) || s.steps[i] < b.x0 || s.steps[i] > b.x1) { continue; }
        const x = X(s.steps[i]);
        c.beginPath(); c.moveTo(x - 3, g.t + 3); c.lineTo(x + 3, g.t + 9); c.moveTo(x + 3, g.t + 3); c.lineTo(x - 3, g.t + 9); c.stroke();
      }
    }
    c.restore();
    c.strokeStyle = "#b8bdc9"; c.lineWidth = 1;
    c.strokeRect(g.l + 0.5, g.t + 0.5, pw, ph);
    // zoom selection
    if (this.drag && this.drag.x1 !== undefined) {
      c.fillStyle = "rgba(47,111,223,0.12)";
      const a = Math.min(this.drag.x0, this.drag.x1), w = Math.abs(this.drag.x1 - this.drag.x0);
      c.fillRect(a, g.t, w, ph);
    }
    if (this.hoverX !== null) {
      c.strokeStyle = "#889"; c.beginPath(); c.moveTo(this.hoverX + 0.5, g.t); c.lineTo(this.hoverX + 0.5, g.t + ph); c.stroke();
    }
    this.root.dataset.points = String(drawn);
    this.root.dataset.series = String(prepared.length);
    this.legendEl.replaceChildren();
    if (prepared.length > 1 || this.opts.legend) {
      for (const s of prepared) {
        const sp = document.createElement("span");
        sp.className = "legend-item";
        const sw = document.createElement("i");
        sw.style.background = s.color;
        sp.append(sw, document.createTextNode(s.name));
        this.legendEl.append(sp);
      }
    }
  }

  line(c, steps, values, X, Y, color, alpha, b) {
    c.strokeStyle = color;
    c.globalAlpha = alpha;
    c.lineWidth = 1.4;
    c.beginPath();
    let pen = false, n = 0;
    for (let i = 0; i < steps.length; i++) {
      const v = values[i];
      if (!isFinite(v) || (this.logY && v <= 0)) { pen = false; continue; }
      if (steps[i] < b.x0 && i + 1 < steps.length && steps[i + 1] < b.x0) { continue; }
      if (steps[i] > b.x1 && i > 0 && steps[i - 1] > b.x1) { break; }
      const x = X(steps[i]), y = Y(v);
      if (pen) { c.lineTo(x, y); } else { c.moveTo(x, y); pen = true; }
      n++;
    }
    c.stroke();
    c.globalAlpha = 1;
    return n;
  }

  stepAt(px) {
    const g = this.g, b = this.b;
    return b.x0 + (px - g.l) / (g.w - g.l - g.r) * (b.x1 - b.x0);
  }

  onDown(e) {
    if (e.button !== 0 || !this.g) { return; }
    const x = e.offsetX;
    if (x < this.g.l) { return; }
    this.drag = { x0: x };
    e.preventDefault();
  }

  onUp(e) {
    if (!this.drag) { return; }
    const d = this.drag;
    this.drag = null;
    if (d.x1 !== undefined && Math.abs(d.x1 - d.x0) > 5 && this.opts.onZoom) {
      const a = this.stepAt(Math.min(d.x0, d.x1)), z = this.stepAt(Math.max(d.x0, d.x1));
      this.opts.onZoom(Math.floor(a), Math.ceil(z));
    }
    this.redraw();
  }

  onMove(e) {
    if (!this.g) { return; }
    const x = Math.max(this.g.l, Math.min(e.offsetX, this.g.w - this.g.r));
    if (this.drag) { this.drag.x1 = x; }
    this.hoverX = x;
    this.redraw();
    const step = this.stepAt(x);
    const rows = [];
    let at = null;
    for (const s of this.prepared) {
      const i = nearest(s.steps, step);
      if (i < 0) { continue; }
      at = at === null ? s.steps[i] : at;
      rows.push([s.color, s.name, (this.opts.yFormat || fmtNum)(s.values[i]), s.steps[i]]);
    }
    const near = this.markers.filter((m) => Math.abs(this.X(m.step) - x) <= 4);
    this.tip.replaceChildren();
    if (!rows.length && !near.length) { this.tip.hidden = true; return; }
    const head = document.createElement("div");
    head.className = "tip-head";
    head.textContent = "step " + fmtStep(at === null ? Math.round(step) : at);
    this.tip.append(head);
    for (const r of rows) {
      const d = document.createElement("div");
      const sw = document.createElement("i");
      sw.style.background = r[0];
      d.append(sw, document.createTextNode(r[1] + ": " + r[2] + (r[3] !== at ? " (step " + fmtStep(r[3]) + ")" : "")));
      this.tip.append(d);
    }
    for (const m of near) {
      const d = document.createElement("div");
      d.className = "tip-marker";
      d.textContent = m.label;
      this.tip.append(d);
    }
    this.tip.hidden = false;
    const left = x + 14 + 260 > this.g.w ? x - 14 - Math.min(260, this.tip.offsetWidth || 200) : x + 14;
    this.tip.style.left = Math.max(0, left) + "px";
    this.tip.style.top = "6px";
  }
}

function fmtStep(v) {
  const a = Math.abs(v);
  if (a >= 1e6) { return (v / 1e6).toFixed(a >= 1e7 ? 0 : 1) + "M"; }
  if (a >= 1e4) { return (v / 1e3).toFixed(0) + "k"; }
  return String(Math.round(v));
}

function logTicks(lo, hi) {
  const out = [];
  for (let e = Math.floor(lo); e <= Math.ceil(hi); e++) {
    out.push(e);
    if (hi - lo < 3) { out.push(e + Math.log10(2), e + Math.log10(5)); }
  }
  return out.sort((a, b) => a - b);
}

// nearest is the index of the step closest to s in sorted steps (-1 when empty).
function nearest(steps, s) {
  if (!steps.length) { return -1; }
  let lo = 0, hi = steps.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (steps[mid] < s) { lo = mid + 1; } else { hi = mid; }
  }
  if (lo > 0 && Math.abs(steps[lo - 1] - s) < Math.abs(steps[lo] - s)) { return lo - 1; }
  return lo;
}

window.HotcbChart = { Chart, colorFor, fmtNum, fmtBytes, fmtStep, ema, niceTicks };
})();
