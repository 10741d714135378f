// app.js — the hotcb dashboard. It asks the server for a run's data once, then listens to
// /api/events (Server-Sent Events) for hints of what changed and asks only for what is new
// (since the last step or seq it has). Controls POST the hotcb command they stand for to
// /api/cli with the token from the address (#token=...), and the "Sent from this page" table
// follows each one until the ledger says what became of it.
"use strict";

const { Chart, colorFor, fmtNum, fmtBytes, fmtStep } = window.HotcbChart;
const $ = (sel) => document.querySelector(sel);

const S = {
  info: null,
  token: "",
  run: "",
  runs: [],
  tab: "metrics",
  metrics: {},      // name -> {steps, values}
  lastStep: null,   // the last_step of the metrics received
  zoom: null,       // [from, to] steps, when zoomed
  charts: {},       // metric name -> Chart
  timing: null,     // {series, last}
  system: null,
  tcharts: {},      // timing/system chart key -> Chart
  ledger: [],       // entries in seq order
  lastSeq: -1,
  status: null,     // /api/status
  overview: null,
  frames: [],
  galleryShown: 8,
  pending: [],      // commands sent from this page
  es: null,
  busy: {},         // kind -> promise running
  again: {},        // kind -> asked again while running
  cmpChart: null,
  cmpData: {},      // run -> {steps, values}
  firstChart: null, // ms after navigation start when a chart first drew points
  errors: [],       // the last requests that failed, "kind: message"
};
window.__hotcb = S;

// ---------- small helpers ----------

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) { continue; }
    if (k === "text") { e.textContent = v; } else if (k === "class") { e.className = v; } else if (k.startsWith("on")) { e.addEventListener(k.slice(2), v); } else if (k === "dataset") { Object.assign(e.dataset, v); } else { e.setAttribute(k, v === true ? "" : v); }
  }
  for (const k of kids.flat()) {
    if (k === null || k === undefined || k === false) { continue; }
    e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  }
  return e;
}

function num(v) {
  if (typeof v === "number") { return v; }
  if (v === "NaN") { return NaN; }
  if (v === "Infinity") { return Infinity; }
  if (v === "-Infinity") { return -Infinity; }
  return v === null || v === undefined ? NaN : Number(v);
}

function q(params) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== null && v !== undefined && v !== "") { u.set(k, v); }
  }
  return u.toString();
}

async function api(path, params) {
  const r = await fetch(path + "?" + q(Object.assign({ run: S.run }, params || {})), { cache: "no-store" });
  const body = await r.json().catch(() => ({ error: r.statusText }));
  if (!r.ok) { throw new Error(body.error || r.statusText); }
  return body;
}

async function post(path, body) {
  const r = await fetch(path + "?" + q({ run: S.run }), {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-Hotcb-Token": S.token },
    body: JSON.stringify(body),
  });
  const res = await r.json().catch(() => ({ error: r.statusText }));
  if (!r.ok) { throw new Error(res.error || r.statusText); }
  return res;
}

// once runs fn for kind, one at a time; a call while it runs makes it run once more after.
function once(kind, fn) {
  if (S.busy[kind]) { S.again[kind] = true; return S.busy[kind]; }
  const p = (async () => {
    try { await fn(); } catch (e) { console.warn(kind, e); S.errors.push(kind + ": " + e.message); S.errors.splice(0, S.errors.length - 20); }
    S.busy[kind] = null;
    if (S.again[kind]) { S.again[kind] = false; once(kind, fn); }
  })();
  S.busy[kind] = p;
  return p;
}

function fmtDur(s) {
  if (s === null || s === undefined || !isFinite(s)) { return "–"; }
  s = Math.round(s);
  if (s < 60) { return s + "s"; }
  if (s < 3600) { return Math.floor(s / 60) + "m " + (s % 60) + "s"; }
  return Math.floor(s / 3600) + "h " + Math.floor((s % 3600) / 60) + "m";
}

function fmtTime(wall) {
  if (!wall) { return "–"; }
  return new Date(wall * 1000).toLocaleTimeString();
}

function canWrite() { return S.info && !S.info.read_only && !!S.token; }

// ---------- start ----------

async function start() {
  const h = new URLSearchParams(location.hash.slice(1));
  if (h.get("token")) {
    sessionStorage.setItem("hotcb-token", h.get("token"));
    history.replaceState(null, "", location.pathname + location.search);
  }
  S.token = sessionStorage.getItem("hotcb-token") || "";
  S.info = await api("/api/info", { run: "" });
  $("#version").textContent = S.info.version || "";
  $("#mode").textContent = S.info.read_only ? "read-only" : (S.token ? "controls on" : "controls need the token");
  S.runs = S.info.runs;
  const want = new URLSearchParams(location.search).get("run");
  S.run = S.runs.includes(want) ? want : S.runs[0] || "";
  fillRuns();
  $("#run").addEventListener("change", () => switchRun($("#run").value));
  for (const b of document.querySelectorAll("#tabs button")) {
    b.addEventListener("click", () => showTab(b.dataset.tab));
  }
  $("#tabs button[data-tab=compare]").hidden = S.runs.length < 2;
  wireToolbar();
  wireControls();
  $("#lightbox").addEventListener("click", () => { $("#lightbox").hidden = true; });
  connect();
  await loadRun();
}

function fillRuns() {
  const sel = $("#run");
  sel.replaceChildren(...S.runs.map((n) => el("option", { value: n, selected: n === S.run, text: n })));
}

async function switchRun(name) {
  S.run = name;
  const u = new URL(location.href);
  u.searchParams.set("run", name);
  history.replaceState(null, "", u.pathname + u.search);
  for (const c of Object.values(S.charts)) { c.remove(); }
  for (const c of Object.values(S.tcharts)) { c.remove(); }
  Object.assign(S, { metrics: {}, lastStep: null, zoom: null, charts: {}, timing: null, system: null, tcharts: {},
    ledger: [], lastSeq: -1, status: null, overview: null, frames: [], pending: [] });
  renderPending();
  connect();
  await loadRun();
}

async function loadRun() {
  if (!S.run) { $("#overview").replaceChildren(el("div", { class: "card" }, "no runs yet")); return; }
  await Promise.all([
    once("metrics", () => fetchMetrics(true)),
    once("ledger", fetchLedger),
    once("overview", fetchOverview),
    once("status", fetchStatus),
    once("timing", () => fetchSeries("timing")),
    once("system", () => fetchSeries("system")),
    once("gallery", fetchGallery),
  ]);
  if (S.tab === "compare") { once("compare", fetchCompare); }
}

// connect listens to the server's events: for this run, or for every run when there are several
// (the compare tab follows them all).
function connect() {
  if (S.es) { S.es.close(); }
  const url = "/api/events" + (S.runs.length > 1 ? "" : "?" + q({ run: S.run }));
  const es = new EventSource(url);
  S.es = es;
  const live = $("#live");
  es.onopen = () => { live.textContent = "live"; live.className = "live on"; };
  es.onerror = () => { live.textContent = "reconnecting"; live.className = "live off"; };
  let connected = false;
  es.addEventListener("hello", () => {
    live.textContent = "live"; live.className = "live on";
    if (connected) { loadRun(); } // back after a break: catch up on what was missed
    connected = true;
  });
  const on = (kind, fn) => es.addEventListener(kind, (e) => {
    const ev = JSON.parse(e.data);
    if (ev.run === S.run) { fn(ev); }
    if (S.tab === "compare" && (kind === "metrics" || kind === "status")) { once("compare", fetchCompare); }
  });
  on("metrics", () => { once("metrics", () => fetchMetrics(false)); once("overview", fetchOverview); });
  on("ledger", () => { once("ledger", fetchLedger); once("overview", fetchOverview); });
  on("status", () => { once("status", fetchStatus); once("overview", fetchOverview); });
  on("timing", () => { once("timing", () => fetchSeries("timing")); once("overview", fetchOverview); });
  on("system", () => once("system", () => fetchSeries("system")));
  on("gallery", () => once("gallery", fetchGallery));
  es.addEventListener("runs", (e) => {
    const ev = JSON.parse(e.data);
    S.runs = ev.runs || [];
    fillRuns();
    $("#tabs button[data-tab=compare]").hidden = S.runs.length < 2;
  });
}

function showTab(t) {
  S.tab = t;
  for (const b of document.querySelectorAll("#tabs button")) { b.classList.toggle("on", b.dataset.tab === t); }
  for (const s of document.querySelectorAll("main > .tab")) { s.hidden = s.id !== "tab-" + t; }
  if (t === "compare") { once("compare", fetchCompare); }
  if (t === "timing") { renderTiming(); }
  if (t === "metrics") { renderMetrics(); }
}

// ---------- overview ----------

async function fetchOverview() {
  const run = S.run;
  const o = await api("/api/overview");
  if (run !== S.run) { return; } // the page moved to another run meanwhile
  S.overview = o;
  renderOverview();
  // The overview is fetched on every metrics and status event: when it names a ledger entry
  // this page has not read (a ledger event missed, or answered before the file grew), read it.
  if (o.ledger_seq > S.lastSeq) { once("ledger", fetchLedger); }
}

function card(k, v, sub, cls) {
  return el("div", { class: "card " + (cls || ""), dataset: { k: k } }, el("div", { class: "k", text: k }), el("div", { class: "v", text: v }), sub ? el("div", { class: "s", text: sub }) : null);
}

function renderOverview() {
  const o = S.overview;
  if (!o) { return; }
  const h = o.health || { state: "?", problems: [] };
  const cards = [
    card("step", o.step >= 0 ? o.step.toLocaleString("en-US") : "–", o.total_steps ? "of " + fmtStep(o.total_steps) : (o.phase || "")),
    card("epoch", o.epoch !== undefined ? fmtNum(o.epoch) : "–"),
    card("loss", o.loss ? fmtNum(num(o.loss.value)) : "–", o.loss ? o.loss.name + " @ " + fmtStep(o.loss.step) : "", o.loss && !isFinite(num(o.loss.value)) ? "error" : ""),
    card("lr", o.lr ? fmtNum(num(o.lr.value)) : "–", o.lr ? o.lr.name : ""),
    card("steps/s", o.steps_per_s !== undefined ? fmtNum(num(o.steps_per_s)) : "–", o.steps_per_s_from || ""),
    card("ETA", o.eta_s !== undefined ? fmtDur(num(o.eta_s)) : "–", o.total_steps ? "" : "total steps unknown"),
    card("freeze", o.freeze_mode || "off", "", o.freeze_mode && o.freeze_mode !== "off" ? "warn" : ""),
    card("device", o.device || "–"),
    card("health", h.state, h.problems.length ? h.problems.length + " problem" + (h.problems.length > 1 ? "s" : "") : (o.status_age_s !== undefined ? "status " + fmtDur(num(o.status_age_s)) + " old" : ""), h.state),
    card("ledger", o.ledger_seq >= 0 ? "seq " + o.ledger_seq : "–", o.ledger_failed ? o.ledger_failed + " failed" : o.ledger_entries + " entries", o.ledger_failed ? "warn" : ""),
  ];
  $("#overview").replaceChildren(...cards);
  const p = $("#problems");
  p.hidden = !h.problems.length;
  p.replaceChildren(...h.problems.map((x) => el("div", { text: "⚠ " + x })));
  $("#freeze-now").textContent = o.freeze_mode || "off";
  document.title = "hotcb · " + o.run + " · step " + (o.step >= 0 ? o.step : "–");
  checkPending();
}

// ---------- metrics ----------

function normSeries(raw) {
  const out = {};
  for (const [name, s] of Object.entries(raw || {})) {
    out[name] = { steps: s.steps, values: s.values.map(num), total: s.total };
  }
  return out;
}

async function fetchMetrics(full) {
  const zoomed = !!S.zoom;
  if (zoomed && !full) { return; } // a zoomed view is a fixed range: live points wait for the unzoom
  const run = S.run;
  if (full || zoomed || S.lastStep === null) {
    const r = await api("/api/metrics", zoomed ? { from: S.zoom[0], to: S.zoom[1] } : {});
    if (run !== S.run) { return; }
    S.metrics = normSeries(r.series);
    S.lastStep = zoomed ? null : r.last_step;
    renderMetrics();
    return;
  }
  const r = await api("/api/metrics", { since: S.lastStep });
  if (run !== S.run) { return; }
  if (r.last_step < S.lastStep) { return fetchMetrics(true); } // resumed from an earlier step
  const add = normSeries(r.series);
  let refetch = false;
  for (const [name, s] of Object.entries(add)) {
    if (!s.steps.length) { continue; }
    if (s.steps.length < s.total) { refetch = true; break; } // decimated: ask for the whole again
    const m = S.metrics[name] || (S.metrics[name] = { steps: [], values: [] });
    m.steps.push(...s.steps);
    m.values.push(...s.values);
    if (m.steps.length > 3 * S.info.default_points) { refetch = true; }
  }
  S.lastStep = r.last_step;
  if (refetch) { return fetchMetrics(true); }
  renderMetrics();
}

function metricOrder(a, b) {
  const rank = (n) => (/loss/.test(n) ? 0 : /(^|[._/])lr$/.test(n) ? 1 : /acc/.test(n) ? 2 : 3);
  return rank(a) - rank(b) || a.localeCompare(b);
}

function ledgerMarkers() {
  if (!$("#markers").checked) { return []; }
  const color = { applied: "#1d9a6c", failed: "#d22", ignored_freeze: "#999", ignored_replay: "#999", skipped_noop: "#bbb" };
  return S.ledger.filter((e) => e.source !== "restore").map((e) => ({
    step: e.step,
    color: color[e.decision] || "#888",
    label: "#" + e.seq + " step " + e.step + ": " + e.module + " " + e.op + (e.id ? " " + e.id : "") + " — " + e.decision + (e.error ? " (" + e.error + ")" : "") + paramsText(e.payload),
  }));
}

function paramsText(p) {
  if (!p || !p.params) { return ""; }
  return " " + JSON.stringify(p.params);
}

function onZoom(from, to) {
  S.zoom = from === null ? null : [from, to];
  $("#unzoom").hidden = !S.zoom;
  for (const c of Object.values(S.charts)) { c.setXRange(S.zoom); }
  for (const c of Object.values(S.tcharts)) { c.setXRange(S.zoom); }
  once("metrics", () => fetchMetrics(true));
}

function renderMetrics() {
  if (S.tab !== "metrics" && S.firstChart !== null) { return; }
  const filter = $("#metric-filter").value.trim().toLowerCase();
  const names = Object.keys(S.metrics).sort(metricOrder).filter((n) => !filter || n.toLowerCase().includes(filter));
  const grid = $("#metric-charts");
  for (const [n, c] of Object.entries(S.charts)) {
    if (!names.includes(n)) { c.remove(); delete S.charts[n]; }
  }
  const markers = ledgerMarkers();
  const logY = $("#logy").checked, sm = Number($("#smooth").value);
  for (const n of names) {
    let c = S.charts[n];
    if (!c) {
      c = new Chart(grid, { title: n, onZoom: onZoom, logY: logY, smoothing: sm });
      c.root.dataset.metric = n;
      S.charts[n] = c;
    }
    c.xRange = S.zoom;
    c.setSeries([{ name: n, steps: S.metrics[n].steps, values: S.metrics[n].values, color: colorFor(names.indexOf(n)) }]);
    c.setMarkers(markers);
  }
  // keep the grid in metric order
  for (const n of names) { grid.append(S.charts[n].root); }
  $("#metrics-empty").hidden = Object.keys(S.metrics).length > 0;
  if (S.firstChart === null && names.some((n) => S.metrics[n].steps.length)) {
    requestAnimationFrame(() => requestAnimationFrame(() => {
      if (S.firstChart === null) { S.firstChart = performance.now(); document.body.dataset.firstChart = String(S.firstChart); }
    }));
  }
}

function wireToolbar() {
  $("#metric-filter").addEventListener("input", renderMetrics);
  $("#logy").addEventListener("change", () => {
    for (const c of Object.values(S.charts)) { c.setLog($("#logy").checked); }
    if (S.cmpChart) { S.cmpChart.setLog($("#logy").checked); }
  });
  $("#smooth").addEventListener("input", () => {
    const v = Number($("#smooth").value);
    $("#smooth-val").textContent = v.toFixed(2);
    for (const c of Object.values(S.charts)) { c.setSmoothing(v); }
    if (S.cmpChart) { S.cmpChart.setSmoothing(v); }
  });
  $("#markers").addEventListener("change", renderMetrics);
  $("#unzoom").addEventListener("click", () => onZoom(null));
  for (const id of ["#ledger-filter", "#ledger-decision", "#ledger-module"]) {
    $(id).addEventListener("input", renderLedger);
  }
  $("#cmp-metric").addEventListener("change", () => once("compare", fetchCompare));
}

// ---------- timing and system ----------

async function fetchSeries(kind) {
  const run = S.run;
  const r = await api("/api/series", { kind: kind });
  if (run !== S.run) { return; }
  S[kind] = { series: normSeries(r.series), last: r.last || null };
  if (S.tab === "timing") { renderTiming(); }
}

function tchart(parent, key, title, series, yFormat) {
  let c = S.tcharts[key];
  if (!c) {
    c = new Chart(parent, { title: title, yFormat: yFormat, onZoom: onZoom, legend: true });
    c.root.dataset.chart = key;
    S.tcharts[key] = c;
  }
  c.xRange = S.zoom;
  c.setSeries(series);
  return c;
}

function pick(src, names) {
  return names.filter((n) => src.series[n]).map((n, i) => ({ name: n, steps: src.series[n].steps, values: src.series[n].values, color: colorFor(i) }));
}

function renderTiming() {
  if (S.tab !== "timing") { return; }
  const t = S.timing, sys = S.system;
  const tg = $("#timing-charts"), sg = $("#system-charts");
  $("#timing-empty").hidden = !!(t && Object.keys(t.series).length);
  $("#system-empty").hidden = !!(sys && Object.keys(sys.series).length);
  if (t && Object.keys(t.series).length) {
    const ms = (v) => fmtNum(v) + " ms";
    tchart(tg, "t-step", "step time (ms, rolling)", pick(t, ["step_ms.p50", "step_ms.mean", "step_ms.p95", "device_step_ms.p50"]), ms);
    const order = (t.last && t.last.order) || Object.keys(t.series).filter((n) => /^intervals\.[^.]+\.host_ms\.mean$/.test(n)).map((n) => n.split(".")[1]);
    tchart(tg, "t-phases", "phases (host ms, mean per step)", pick(t, order.map((k) => "intervals." + k + ".host_ms.mean")).map((s) => Object.assign(s, { name: s.name.replace(/^intervals\./, "").replace(/\.host_ms\.mean$/, "") })), ms);
    const dev = order.map((k) => "intervals." + k + ".device_ms.mean").filter((n) => t.series[n]);
    if (dev.length) {
      tchart(tg, "t-dphases", "phases (device ms, mean per step)", pick(t, dev).map((s) => Object.assign(s, { name: s.name.split(".")[1] })), ms);
    }
    tchart(tg, "t-rate", "steps per second", pick(t, ["steps_per_s"]));
    if (t.series["samples_per_s"]) { tchart(tg, "t-samples", "samples per second", pick(t, ["samples_per_s"])); }
    const dp = Object.keys(t.series).filter((n) => n.startsWith("data_parallel.") && /ms|share/.test(n)).sort();
    if (dp.length) { tchart(tg, "t-dp", "data parallel (all-reduce wait)", pick(t, dp)); }
  }
  if (sys && Object.keys(sys.series).length) {
    const names = Object.keys(sys.series).sort();
    const bytes = names.filter((n) => n.endsWith("_bytes"));
    if (bytes.length) { tchart(sg, "s-mem", "memory", pick(sys, bytes), fmtBytes); }
    if (sys.series["cpu_percent"]) { tchart(sg, "s-cpu", "CPU %", pick(sys, ["cpu_percent"])); }
    const counts = ["goroutines", "threads"].filter((n) => sys.series[n]);
    if (counts.length) { tchart(sg, "s-counts", "goroutines and threads", pick(sys, counts)); }
    const gc = names.filter((n) => n.startsWith("gc_"));
    if (gc.length) { tchart(sg, "s-gc", "garbage collector", pick(sys, gc)); }
    const used = new Set([...bytes, "cpu_percent", ...counts, ...gc, "epoch"]);
    for (const n of names.filter((n) => !used.has(n))) { tchart(sg, "s-" + n, n, pick(sys, [n])); }
  }
}

// ---------- status and callbacks ----------

async function fetchStatus() {
  const run = S.run;
  const st = await api("/api/status");
  if (run !== S.run) { return; }
  if (S.shownStatusRun !== run) { $("#cb-table").replaceChildren(); S.shownStatusRun = run; } // rows are keyed by id within a run
  S.status = st;
  renderCallbacks();
}

function kvLines(obj) {
  return Object.entries(obj || {}).map(([k, v]) => k + "=" + (typeof v === "string" ? v : JSON.stringify(v))).join("\n");
}

function lines(text) {
  return text.split("\n").map((s) => s.trim()).filter((s) => s);
}

function renderCallbacks() {
  const st = S.status && S.status.status;
  const t = $("#cb-table");
  const empty = $("#cb-empty");
  const write = canWrite();
  if (!st) {
    t.replaceChildren();
    $("#params-form").hidden = true;
    empty.hidden = false;
    empty.textContent = "No status yet: no training process has written hotcb.status.json.";
  } else {
    const cbs = st.callbacks || [];
    empty.hidden = cbs.length > 0;
    empty.textContent = "No callbacks loaded.";
    // Rows are kept and updated in place, keyed by id, so that a button under the pointer is
    // the same element from mousedown to mouseup while the status refreshes every second.
    if (!t.tHead) {
      t.append(el("thead", {}, el("tr", {}, ["id", "enabled", "loaded", "target", "params", "calls", "µs per call", "max µs", "errors", "last error", ""].map((h) => el("th", { text: h })))), el("tbody"));
    }
    const body = t.tBodies[0];
    const keep = new Set();
    cbs.forEach((cb, i) => {
      keep.add(cb.id);
      let tr = body.querySelector("tr[data-cb=\"" + CSS.escape(cb.id) + "\"]");
      if (!tr) { tr = newCallbackRow(cb.id); }
      // In the status's order; a row already in place is not moved (a moved row loses the
      // press of a button in it).
      if (body.rows[i] !== tr) { body.insertBefore(tr, body.rows[i] || null); }
      const target = cb.target ? cb.target.kind + ":" + cb.target.path + "#" + cb.target.symbol : "–";
      const params = cb.pending_params ? "pending " + JSON.stringify(cb.pending_params) : (cb.params ? JSON.stringify(cb.params) : "–");
      const c = tr.cells;
      badge(c[1], cb.enabled);
      badge(c[2], cb.loaded);
      setText(c[3], target);
      setText(c[4], params);
      setText(c[5], String(cb.calls));
      setText(c[6], cb.calls ? fmtNum(cb.mean_us) : "–");
      setText(c[7], cb.calls ? fmtNum(cb.max_us) : "–");
      setText(c[8], String(cb.errors));
      setText(c[9], cb.last_error ? "step " + cb.last_error_step + ": " + cb.last_error : "");
      const toggle = tr.querySelector("button[data-role=toggle]");
      const action = cb.enabled ? "disable" : "enable";
      if (toggle.dataset.action !== action) { toggle.dataset.action = action; toggle.textContent = action; }
      for (const b of tr.querySelectorAll("button")) { b.disabled = !write; }
    });
    for (const tr of [...body.rows]) {
      if (!keep.has(tr.dataset.cb)) { tr.remove(); }
    }
    const opts = (st.extra && st.extra.optimizers) || {};
    $("#opt-now").textContent = Object.keys(opts).length ? Object.entries(opts).map(([id, gs]) => id + ": " + gs.map((g, i) => "group " + i + " " + JSON.stringify(g)).join("; ")).join(" | ") : "no optimizer registered in the status";
  }
  for (const b of document.querySelectorAll(".controls button, .controls a.button")) {
    if (b.id !== "recipe-dl") { b.disabled = !write; }
  }
  const note = $("#token-note");
  note.hidden = write || (S.info && S.info.read_only);
  if (!note.hidden && !note.firstChild) {
    const inp = el("input", { type: "password", placeholder: "token" });
    note.append("The controls need the token hotcb serve printed (open the address it printed, with #token=…), or paste it: ", inp,
      el("button", { type: "button", text: "use", onclick: () => { S.token = inp.value.trim(); sessionStorage.setItem("hotcb-token", S.token); $("#mode").textContent = "controls on"; renderCallbacks(); } }));
  }
  if (S.info && S.info.read_only) {
    for (const x of document.querySelectorAll(".controls, td button")) { x.hidden = true; }
  }
}

function setText(td, text) {
  if (td.textContent !== text) { td.textContent = text; }
}

function badge(td, yes) {
  const text = yes ? "yes" : "no";
  if (td.textContent !== text) { td.replaceChildren(el("span", { class: "badge " + text, text: text })); }
}

// newCallbackRow makes the row of callback id; its buttons read the callback's state when clicked.
function newCallbackRow(id) {
  const current = () => ((S.status && S.status.status && S.status.status.callbacks) || []).find((c) => c.id === id) || { id: id };
  return el("tr", { dataset: { cb: id } },
    el("td", { class: "id", text: id }), el("td"), el("td"), el("td", { class: "mono" }), el("td", { class: "mono" }),
    el("td", { class: "num" }), el("td", { class: "num" }), el("td", { class: "num" }), el("td", { class: "num" }), el("td", { class: "err" }),
    el("td", {},
      el("button", { type: "button", dataset: { role: "toggle", action: "disable", id: id }, onclick: (e) => send(["cb", e.currentTarget.dataset.action, id]), text: "disable" }),
      el("button", { type: "button", dataset: { action: "params", id: id }, onclick: () => openParams(current()), text: "set params" }),
      el("button", { type: "button", dataset: { action: "unload", id: id }, onclick: () => { if (confirm("unload " + id + "?")) { send(["cb", "unload", id]); } }, text: "unload" })));
}

function openParams(cb) {
  const f = $("#params-form");
  f.dataset.id = cb.id;
  $("#params-id").textContent = cb.id;
  f.elements.params.value = kvLines(cb.pending_params || cb.params);
  f.hidden = false;
  f.elements.params.focus();
}

function wireControls() {
  $("#params-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const f = e.target;
    const kv = lines(f.elements.params.value);
    if (!kv.length) { return; }
    send(["cb", "set_params", f.dataset.id, ...kv]);
    f.hidden = true;
  });
  $("#params-cancel").addEventListener("click", () => { $("#params-form").hidden = true; });
  $("#load-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const f = e.target.elements;
    const args = ["cb", "load", f.id.value.trim(), f.kind.value === "file" ? "--file" : "--path", f.source.value.trim(), "--symbol", f.symbol.value.trim()];
    for (const kv of lines(f.init.value)) { args.push("--init", kv); }
    if (!f.enabled.checked) { args.push("--no-enabled"); }
    send(args);
  });
  $("#opt-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const f = e.target.elements;
    const kv = lines(f.params.value);
    if (!kv.length) { return; }
    send(["opt", "set_params", "--id", f.id.value.trim() || "main", ...kv]);
  });
  $("#freeze-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const f = e.target.elements;
    const args = ["freeze", "--mode", f.mode.value];
    if (f.mode.value.startsWith("replay")) {
      args.push("--policy", f.policy.value);
      if (Number(f.offset.value)) { args.push("--step-offset=" + Number(f.offset.value)); }
    }
    send(args, { freeze: f.mode.value });
  });
  $("#recipe-export").addEventListener("click", () => send(["recipe", "export"]));
  $("#recipe-dl").addEventListener("click", () => { $("#recipe-dl").href = "/api/recipe?" + q({ run: S.run }); });
}

// send runs a hotcb command on the run and adds it to the table of commands sent.
async function send(args, extra) {
  const p = Object.assign({ at: new Date(), args: args, command: "hotcb " + args.join(" "), lines: [], state: "sending", detail: "" }, extra || {});
  S.pending.unshift(p);
  renderPending();
  try {
    const r = await post("/api/cli", { args: args });
    p.command = r.command;
    p.lines = r.lines;
    p.seq = r.ledger_seq;
    p.matches = r.lines.map((l) => { const o = JSON.parse(l); return { module: o.module || "cb", op: o.op, id: o.id || "" }; });
    if (p.matches.length) {
      p.state = "queued";
      p.detail = "waiting for the training process to apply it" + (r.notes ? " — " + r.notes.trim() : "");
    } else if (p.freeze) {
      p.state = "queued";
      p.detail = r.output.trim();
    } else {
      p.state = "done";
      p.detail = r.output.trim();
    }
  } catch (e) {
    p.state = "refused";
    p.detail = e.message;
  }
  checkPending();
  renderPending();
  once("ledger", fetchLedger);
}

// checkPending marks each queued command with what the ledger (or, for freeze, the status)
// says became of it.
function checkPending() {
  let changed = false;
  for (const p of S.pending) {
    if (p.state !== "queued") { continue; }
    if (p.freeze) {
      if (S.overview && S.overview.freeze_mode === p.freeze) { p.state = "applied"; p.detail = "the process is in mode " + p.freeze; changed = true; }
      continue;
    }
    const m = p.matches[0];
    const e = S.ledger.find((e) => e.seq > p.seq && e.module === m.module && e.op === m.op && (e.id || "") === m.id && (!e.source || e.source === "external"));
    if (e) {
      p.state = e.decision;
      p.detail = (e.decision === "applied" ? "applied" : e.decision) + " at step " + e.step + " (ledger seq " + e.seq + ")" + (e.error ? ": " + e.error : "") + (e.notes ? " — " + e.notes : "");
      changed = true;
    }
  }
  if (changed) { renderPending(); }
}

function renderPending() {
  const body = $("#pending tbody");
  body.replaceChildren(...S.pending.map((p) => el("tr", { class: p.state, dataset: { state: p.state } },
    el("td", { text: p.at.toLocaleTimeString() }),
    el("td", { class: "mono", text: p.command }),
    el("td", { class: "mono", text: p.lines.join("\n") }),
    el("td", {}, el("span", { class: "badge " + p.state, text: p.state }), " ", p.detail))));
}

// ---------- ledger ----------

async function fetchLedger() {
  const run = S.run;
  const r = await api("/api/ledger", { since: S.lastSeq });
  if (run !== S.run) { return; }
  if (r.last_seq < S.lastSeq) { S.ledger = []; S.lastSeq = -1; return fetchLedger(); } // a new ledger
  if (r.entries.length) {
    S.ledger.push(...r.entries);
    S.lastSeq = r.last_seq;
    if (S.ledger.length > 50000) { S.ledger = S.ledger.slice(-50000); }
  }
  renderLedger();
  checkPending();
  renderMetrics();
}

function renderLedger() {
  const text = $("#ledger-filter").value.trim().toLowerCase();
  const dec = $("#ledger-decision").value, mod = $("#ledger-module").value;
  const rows = [];
  let n = 0;
  for (let i = S.ledger.length - 1; i >= 0; i--) {
    const e = S.ledger[i];
    if (dec && e.decision !== dec) { continue; }
    if (mod && e.module !== mod) { continue; }
    const detail = [e.error ? "error: " + e.error : "", e.payload && Object.keys(e.payload).length ? JSON.stringify(e.payload) : "", e.notes ? "(" + e.notes + ")" : ""].filter((x) => x).join(" ");
    const cells = [String(e.seq), fmtTime(e.wall_time), String(e.step), e.module, e.op, e.id || "–", e.decision, e.source, detail];
    if (text && !cells.join(" ").toLowerCase().includes(text)) { continue; }
    n++;
    if (rows.length < 1000) {
      rows.push(el("tr", { class: e.decision, dataset: { seq: e.seq } }, cells.map((c, j) => j === 6 ? el("td", {}, el("span", { class: "badge " + c, text: c })) : el("td", { class: j === 8 ? "mono" : (j === 0 || j === 2 ? "num" : ""), text: c }))));
    }
  }
  const head = el("tr", {}, ["seq", "time", "step", "module", "op", "id", "decision", "source", "detail"].map((h) => el("th", { text: h })));
  $("#ledger-table").replaceChildren(el("thead", {}, head), el("tbody", {}, rows));
  $("#ledger-count").textContent = n + " of " + S.ledger.length + " entries" + (rows.length < n ? " (newest 1000 shown)" : "");
}

// ---------- gallery ----------

async function fetchGallery() {
  const run = S.run;
  const r = await api("/api/gallery");
  if (run !== S.run) { return; }
  S.frames = r.frames;
  renderGallery();
}

function fileURL(p, v) {
  return "/files/" + encodeURIComponent(S.run) + "/" + p.split("/").map(encodeURIComponent).join("/") + "?v=" + v;
}

function renderGallery() {
  const g = $("#gallery");
  $("#gallery-empty").hidden = S.frames.length > 0;
  const dirs = {};
  for (const f of S.frames) { (dirs[f.dir] = dirs[f.dir] || []).push(f); }
  const out = [];
  for (const [dir, frames] of Object.entries(dirs)) {
    const layers = [...new Set(frames.map((f) => f.layer))].sort();
    const steps = [...new Set(frames.map((f) => f.step))].sort((a, b) => b - a);
    const at = {};
    for (const f of frames) { at[f.step + "/" + f.layer] = f; }
    const grid = el("div", { class: "gal-grid" });
    grid.style.gridTemplateColumns = "70px repeat(" + layers.length + ", minmax(96px, 200px))";
    grid.append(el("div", { class: "gh", text: "step" }), ...layers.map((l) => el("div", { class: "gh mono", text: l })));
    for (const s of steps.slice(0, S.galleryShown)) {
      grid.append(el("div", { class: "gh", text: String(s) }));
      for (const l of layers) {
        const f = at[s + "/" + l];
        grid.append(f ? el("img", { src: fileURL(f.path, f.mtime_ms), alt: l + " at step " + s, loading: "lazy", onclick: () => lightbox(f) }) : el("div"));
      }
    }
    const more = steps.length > S.galleryShown ? el("button", { type: "button", text: "show " + Math.min(8, steps.length - S.galleryShown) + " more of " + (steps.length - S.galleryShown) + " older steps", onclick: () => { S.galleryShown += 8; renderGallery(); } }) : null;
    out.push(el("div", { class: "gal-dir" }, el("h3", { text: dir + "/ — " + steps.length + " steps × " + layers.length + " layers" }), grid, more));
  }
  g.replaceChildren(...out);
}

function lightbox(f) {
  const lb = $("#lightbox");
  lb.querySelector("img").src = fileURL(f.path, f.mtime_ms);
  lb.querySelector(".caption").textContent = f.layer + " at step " + f.step + " (" + f.path + ")";
  lb.hidden = false;
}

// ---------- compare ----------

async function fetchCompare() {
  const all = await api("/api/runs", { run: "" });
  const names = new Set();
  for (const o of all.runs) { for (const m of o.metrics || []) { names.add(m); } }
  const sel = $("#cmp-metric");
  const cur = sel.value;
  const sorted = [...names].sort(metricOrder);
  if (sel.options.length !== sorted.length) {
    sel.replaceChildren(...sorted.map((n) => el("option", { value: n, text: n })));
    sel.value = sorted.includes(cur) ? cur : sorted[0] || "";
  }
  const metric = sel.value;
  const box = $("#cmp-runs");
  const checked = new Set([...box.querySelectorAll("input:checked")].map((i) => i.value));
  const first = !box.children.length;
  box.replaceChildren(...all.runs.map((o) => el("label", {}, el("input", { type: "checkbox", value: o.run, checked: first || checked.has(o.run), onchange: () => once("compare", fetchCompare) }), " " + o.run)));
  const runs = [...box.querySelectorAll("input:checked")].map((i) => i.value);
  const series = [];
  for (const [i, o] of all.runs.entries()) {
    if (!runs.includes(o.run) || !metric) { continue; }
    const r = await api("/api/metrics", { run: o.run, names: metric });
    const s = normSeries(r.series)[metric];
    if (s) { series.push({ name: o.run, steps: s.steps, values: s.values, color: colorFor(i) }); }
  }
  if (!S.cmpChart) {
    S.cmpChart = new Chart($("#cmp-chart"), { title: "", height: 360, legend: true, onZoom: (a, b) => S.cmpChart.setXRange(a === null ? null : [a, b]) });
  }
  S.cmpChart.titleEl.textContent = metric ? metric + " across runs" : "no metrics yet";
  S.cmpChart.setLog($("#logy").checked);
  S.cmpChart.setSmoothing(Number($("#smooth").value));
  S.cmpChart.setSeries(series);
  const head = el("tr", {}, ["run", "step", "loss", "lr", "steps/s", "freeze", "health"].map((h) => el("th", { text: h })));
  $("#cmp-table").replaceChildren(el("thead", {}, head), el("tbody", {}, all.runs.map((o) => el("tr", {},
    el("td", { class: "mono", text: o.run }), el("td", { class: "num", text: o.step >= 0 ? o.step : "–" }),
    el("td", { class: "num", text: o.loss ? fmtNum(num(o.loss.value)) : "–" }), el("td", { class: "num", text: o.lr ? fmtNum(num(o.lr.value)) : "–" }),
    el("td", { class: "num", text: o.steps_per_s !== undefined ? fmtNum(num(o.steps_per_s)) : "–" }), el("td", { text: o.freeze_mode }),
    el("td", { text: o.health.state + (o.health.problems.length ? ": " + o.health.problems.join("; ") : "") })))));
}

start().catch((e) => {
  document.body.prepend(el("div", { class: "problems", text: "hotcb: " + e.message }));
});
