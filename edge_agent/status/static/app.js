/* Edge gateway status page: plant overview and machine detail, live over Server-Sent Events.
 * No build step, no external assets: uPlot is vendored next to this file. */
"use strict";

const S = {
  devices: new Map(),      // name -> summary (meta, derived, stale)
  alarms: new Map(),       // id -> alarm needing attention
  status: null,            // last status heartbeat
  session: { user: null, role: null, can: [], open_viewing: true, login_enabled: false },
  gateway: "",
  route: { view: "overview", device: null },
  twin: null,              // full twin of the detail device
  events: [],              // recent events of the detail device
  timeline: [],
  timelineFrom: null,
  selectedTag: null,
  sparks: new Map(),       // tag -> {plot, t, v}
  chart: null,             // {plot, tag, t, v, min, max}
  lastMessage: 0,
  connected: false,
  downSince: null,
  es: null,
  dirty: false,
  serverOffset: 0,
};

const CATEGORY_LABEL = {
  running: "Running", unplanned_stop: "Stopped", planned_stop: "Planned stop", changeover: "Changeover",
  excluded: "No order", unknown: "No state", offline: "Offline", monitoring: "Monitoring",
};
const CATEGORY_COLOR = {
  running: "#1e7d36", unplanned_stop: "#c4261d", planned_stop: "#2f62b8", changeover: "#a35c00",
  excluded: "#6b7585", unknown: "#9aa3b2", offline: "#3b4250", monitoring: "#0f6f7a",
};
const LOSS_LABEL = {
  breakdowns: "Breakdowns", setup_adjustments: "Setup & adjustments", small_stops: "Small stops",
  reduced_speed: "Reduced speed", quality: "Quality (scrap)", startup_rejects: "Startup rejects",
};
const UNIT = { degC: "°C", degF: "°F", pct: "%" };
const WATCHDOG_MS = 7000;

// -- helpers -----------------------------------------------------------------------------------

const $ = (sel, root = document) => root.querySelector(sel);
function esc(s) {
  return String(s ?? "").replace(/[&<>"']/g, c => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}
function now() { return Date.now() / 1000 + S.serverOffset; }
function unit(u) { return UNIT[u] ?? u ?? ""; }
function label(tag) { const t = String(tag).replace(/[_.]+/g, " "); return t.charAt(0).toUpperCase() + t.slice(1); }
function pct(x) { return x == null || !isFinite(x) ? "–" : (x * 100).toFixed(x >= 0.995 ? 0 : 1) + "%"; }
function int(n) { return n == null ? "–" : Number(n).toLocaleString("en-US"); }
function clock(ts) {
  if (!ts) return "–";
  const d = new Date(ts * 1000);
  return d.toLocaleTimeString("en-GB", { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}
function hm(ts) { return ts ? new Date(ts * 1000).toLocaleTimeString("en-GB", { hour: "2-digit", minute: "2-digit" }) : "–"; }
function dur(s) {
  if (s == null || !isFinite(s)) return "–";
  s = Math.max(0, Math.floor(s));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  if (h > 0) return `${h} h ${String(m).padStart(2, "0")} min`;
  return `${m}:${String(sec).padStart(2, "0")}`;
}
function mins(s) { return s == null ? "–" : s >= 3600 ? (s / 3600).toFixed(1) + " h" : Math.round(s / 60) + " min"; }
function fmtValue(v, tagType) {
  if (v === null || v === undefined) return "–";
  if (typeof v === "boolean") return v ? "ON" : "OFF";
  if (typeof v === "number") {
    if (Number.isInteger(v)) return v.toLocaleString("en-US");
    const a = Math.abs(v);
    const d = a >= 1000 ? 0 : a >= 100 ? 1 : a >= 10 ? 1 : a >= 1 ? 2 : 3;
    return v.toLocaleString("en-US", { minimumFractionDigits: d, maximumFractionDigits: d });
  }
  return String(v);
}
function isNum(v) { return typeof v === "number" && isFinite(v); }
async function api(path, opts = {}) {
  const init = { cache: "no-store", credentials: "same-origin", ...opts };
  if (opts.body !== undefined) {
    init.method = opts.method || "POST";
    init.headers = { "Content-Type": "application/json" };
    init.body = JSON.stringify(opts.body);
  }
  const r = await fetch(path, init);
  let data = null;
  try { data = await r.json(); } catch (e) { data = null; }
  if (!r.ok) {
    const err = new Error((data && data.detail && (typeof data.detail === "string" ? data.detail : JSON.stringify(data.detail))) || r.statusText);
    err.status = r.status;
    throw err;
  }
  return data;
}
function categoryOf(dev) {
  const d = dev.derived || {};
  const conn = d.connection?.state;
  if (conn === "disconnected" || conn === "stopped") return "offline";
  if (!dev.has_state) return "monitoring";
  return d.state?.category || "unknown";
}

// -- live stream -------------------------------------------------------------------------------

function connect() {
  if (S.es) S.es.close();
  const es = new EventSource("/api/v1/stream");
  S.es = es;
  es.addEventListener("open", () => markLive());
  es.addEventListener("error", () => { if (es.readyState !== EventSource.OPEN) markDown(); });
  es.addEventListener("snapshot", e => { markLive(); onSnapshot(JSON.parse(e.data)); });
  es.addEventListener("twin", e => { markLive(); onTwin(JSON.parse(e.data)); });
  es.addEventListener("alarm", e => { markLive(); onAlarm(JSON.parse(e.data)); });
  es.addEventListener("event", e => { markLive(); onEvent(JSON.parse(e.data)); });
  es.addEventListener("status", e => { markLive(); onStatus(JSON.parse(e.data)); });
  es.addEventListener("resync", () => { markLive(); resync(); });
}
function markLive() {
  S.lastMessage = Date.now();
  if (!S.connected) {
    S.connected = true;
    S.downSince = null;
    $("#banner").hidden = true;
    document.body.classList.remove("stale");
    const ls = $("#link-state");
    ls.className = "link-state live";
    $(".label", ls).textContent = "Live";
  }
}
function markDown() {
  if (S.connected || S.downSince == null) {
    S.connected = false;
    S.downSince = S.downSince || Date.now();
    $("#banner").hidden = false;
    document.body.classList.add("stale");
    const ls = $("#link-state");
    ls.className = "link-state down";
    $(".label", ls).textContent = "Disconnected";
  }
}
setInterval(() => {
  if (S.connected && Date.now() - S.lastMessage > WATCHDOG_MS) {
    markDown();
    connect();  // a stream that went quiet: start over
  }
  if (!S.connected && S.downSince) {
    $("#banner-since").textContent = "since " + new Date(S.downSince).toLocaleTimeString("en-GB");
  }
}, 1000);

async function resync() {
  try {
    const [devs, alarms] = await Promise.all([api("/api/v1/devices"), api("/api/v1/alarms?state=active")]);
    S.devices = new Map(devs.devices.map(d => [d.name, d]));
    S.alarms = new Map(alarms.alarms.map(a => [a.id, a]));
    if (S.route.view === "device") await loadDetail(S.route.device, false);
    render();
  } catch (e) { /* the watchdog shows the banner */ }
}

function onSnapshot(snap) {
  S.gateway = snap.gateway_id || S.gateway;
  $("#gateway-id").textContent = S.gateway;
  if (snap.ts) S.serverOffset = snap.ts - Date.now() / 1000;
  S.devices = new Map(snap.devices.map(d => [d.name, d]));
  S.alarms = new Map(snap.alarms.map(a => [a.id, a]));
  if (snap.status && snap.status.gateway_id) S.status = snap.status;
  if (S.route.view === "device" && S.route.device) loadDetail(S.route.device, false);
  render();
}
function onTwin(cs) {
  const dev = S.devices.get(cs.device);
  for (const [path, value] of Object.entries(cs.changes)) {
    const [section, key] = [path.slice(0, path.indexOf(".")), path.slice(path.indexOf(".") + 1)];
    if (dev && section === "derived") { dev.derived[key] = value; }
    if (dev && section === "reported") {
      if (!value.stale) dev.stale = false;
      if (dev.key_values && key in dev.key_values) dev.key_values[key] = value;
    }
    if (S.twin && S.twin.name === cs.device) {
      if (section === "derived") S.twin.derived[key] = value;
      else if (section === "reported") { S.twin.reported[key] = value; liveValue(key, value); }
      else if (section === "desired") S.twin.desired[key] = value;
      if (path === "derived.state") refreshTimeline();
    }
  }
  schedule();
}
function onAlarm(msg) {
  const a = msg.alarm;
  const attention = a.state !== "normal" || a.status === "shelved" || (a.suppressed && a.active);
  if (attention) S.alarms.set(a.id, a); else S.alarms.delete(a.id);
  schedule();
}
function onEvent(ev) {
  if (S.route.view === "device" && ev.device === S.route.device) {
    S.events.unshift(ev);
    S.events.length = Math.min(S.events.length, 40);
    schedule();
  }
}
function onStatus(st) { S.status = st; if (st.ts) S.serverOffset = st.ts - Date.now() / 1000; schedule(); }

function schedule() {
  if (S.dirty) return;
  S.dirty = true;
  requestAnimationFrame(() => { S.dirty = false; render(); });
}

// -- routing -----------------------------------------------------------------------------------

function route() {
  const m = location.hash.match(/^#\/device\/([^/?]+)/);
  if (m) {
    const name = decodeURIComponent(m[1]);
    S.route = { view: "device", device: name };
    S.twin = null; S.events = []; S.timeline = []; S.selectedTag = null;
    destroyCharts();
    $("#main").innerHTML = `<div class="loading">Loading ${esc(name)}&hellip;</div>`;
    loadDetail(name, true);
  } else {
    S.route = { view: "overview", device: null };
    S.twin = null;
    destroyCharts();
    $("#main").innerHTML = "";
    render();
  }
  renderCrumbs();
}
window.addEventListener("hashchange", route);

function renderCrumbs() {
  const c = $("#crumbs");
  if (S.route.view === "device") {
    c.innerHTML = `<a href="#/">Plant overview</a><span class="sep">›</span><strong>${esc(S.route.device)}</strong>`;
  } else {
    c.innerHTML = `<strong>Plant overview</strong>`;
  }
}

// -- rendering: shared pieces --------------------------------------------------------------------

function gauge(oee, cls = "gauge") {
  const v = oee == null ? null : Math.max(0, Math.min(1, oee));
  const r = 52, cx = 65, cy = 66, len = Math.PI * r;
  const color = v == null ? "#c3cad5" : v >= 0.85 ? "#1e7d36" : v >= 0.6 ? "#c98a00" : "#c4261d";
  const dash = v == null ? 0 : len * v;
  return `<svg class="${cls}" viewBox="0 0 130 84" role="img" aria-label="OEE ${v == null ? "not available" : pct(v)}">
    <path class="track" d="M${cx - r},${cy} A${r},${r} 0 0 1 ${cx + r},${cy}" fill="none" stroke-width="13" stroke-linecap="round"/>
    <path d="M${cx - r},${cy} A${r},${r} 0 0 1 ${cx + r},${cy}" fill="none" stroke="${color}" stroke-width="13" stroke-linecap="round"
      stroke-dasharray="${dash} ${len}" ${v == null || v === 0 ? 'stroke-opacity="0"' : ""}/>
    <text class="val" x="${cx}" y="${cy - 6}" text-anchor="middle">${v == null ? "–" : Math.round(v * 100) + "%"}</text>
    <text class="lbl" x="${cx}" y="${cy + 14}" text-anchor="middle">OEE</text>
  </svg>`;
}
function apq(o) {
  const row = (k, x) => `<div class="apq-row"><b>${k}</b><div class="bar"><span style="width:${x == null ? 0 : Math.min(100, x * 100)}%"></span></div><span class="pct">${pct(x)}</span></div>`;
  return `<div class="apq">${row("A", o?.availability)}${row("P", o?.performance)}${row("Q", o?.quality)}</div>`;
}
function partsBlock(p) {
  if (!p) return "";
  const target = p.target;
  const fill = target ? Math.min(100, (p.good / target) * 100) : 0;
  return `<div class="parts">
    <div class="parts-line"><span><span class="good">${int(p.good)}</span> good</span>
      <span><span class="scrap">${int(p.scrap)}</span> scrap</span>
      <span class="target">${target != null ? "target " + int(target) : "this shift"}</span></div>
    ${target ? `<div class="bar" title="${Math.round(fill)}% of target"><span style="width:${fill}%"></span></div>` : ""}
  </div>`;
}
function healthPill(h) {
  if (!h || h.index == null) return "";
  const cls = h.anomaly || h.index < 50 ? "bad" : h.index < 75 ? "warn" : "good";
  return `<span class="pill ${cls}" title="${esc(h.detail || "")}">Health ${Math.round(h.index)}${h.anomaly ? " · anomaly" : ""}</span>`;
}
function alarmPill(list) {
  const n = (list || []).filter(a => a.status !== "shelved" && a.status !== "suppressed").length;
  if (!n) return "";
  const worst = (list || []).some(a => a.priority === "high" || a.priority === "urgent") ? "" : (list || []).some(a => a.priority === "medium") ? "medium" : "low";
  return `<span class="pill alarms-n ${worst}">${n} alarm${n > 1 ? "s" : ""}</span>`;
}
function stateLabel(cat) { return CATEGORY_LABEL[cat] || cat; }
function sinceOf(dev, cat) {
  const d = dev.derived || {};
  if (cat === "offline") return d.connection?.since;
  if (cat === "monitoring") return null;
  return d.state?.since;
}
function reasonLine(dev, cat) {
  const st = dev.derived?.state || {};
  if (cat === "offline") {
    const err = dev.derived?.connection?.last_error;
    return `<div class="reason offline">No connection${err ? " – " + esc(err) : ""}</div>`;
  }
  if (cat === "unplanned_stop" || cat === "planned_stop" || cat === "changeover") {
    const text = st.reason_text || (st.reason ? "reason " + st.reason : "reason not given");
    const cls = cat === "planned_stop" ? "planned" : cat === "changeover" ? "changeover" : "";
    return `<div class="reason ${cls}">${esc(text)}</div>`;
  }
  return "";
}

// -- rendering: overview -----------------------------------------------------------------------

function render() {
  if (S.route.view === "device") return renderDetail();
  const main = $("#main");
  if (!main.querySelector("#tiles")) {
    main.innerHTML = `
      <div class="summary" id="summary"></div>
      <div class="section-title">Machines <span class="hint">click a machine for its live values, timeline and alarms</span></div>
      <div class="tiles" id="tiles"></div>
      <div class="split">
        <div><div class="section-title">Active alarms <span class="hint" id="alarm-hint"></span></div><div id="alarms" class="card card-pad"></div></div>
        <div><div class="section-title">Gateway health</div><div id="gateway" class="card card-pad"></div></div>
      </div>`;
  }
  renderSummary();
  renderTiles();
  renderAlarmList($("#alarms"), [...S.alarms.values()], true);
  $("#alarm-hint").textContent = S.session.user ? "" : "log in to acknowledge or shelve";
  renderGateway();
}

function renderSummary() {
  const counts = { running: 0, stopped: 0, planned: 0, offline: 0 };
  const oees = [];
  for (const dev of S.devices.values()) {
    const c = categoryOf(dev);
    if (c === "running") counts.running++;
    else if (c === "unplanned_stop") counts.stopped++;
    else if (c === "planned_stop" || c === "changeover" || c === "excluded") counts.planned++;
    else if (c === "offline") counts.offline++;
    if (dev.derived?.oee?.oee != null) oees.push(dev.derived.oee.oee);
  }
  const unacked = [...S.alarms.values()].filter(a => a.state === "unack" || a.state === "rtn_unack").length;
  const total = [...S.alarms.values()].filter(a => a.status !== "shelved" && a.status !== "suppressed").length;
  const oee = oees.length ? oees.reduce((a, b) => a + b, 0) / oees.length : null;
  $("#summary").innerHTML = `
    <div class="card stat running"><div class="k">Running</div><div class="v" data-testid="count-running">${counts.running}</div></div>
    <div class="card stat stopped"><div class="k">Stopped</div><div class="v" data-testid="count-stopped">${counts.stopped}</div></div>
    <div class="card stat planned"><div class="k">Planned / changeover</div><div class="v">${counts.planned}</div></div>
    <div class="card stat offline"><div class="k">Offline</div><div class="v">${counts.offline}</div></div>
    <div class="card stat alarms ${unacked ? "hot" : ""}"><div class="k">Alarms (unack.)</div><div class="v">${total}<span style="font-size:1.1rem;color:var(--muted)"> (${unacked})</span></div></div>
    <div class="card stat oee"><div class="k">Plant OEE (shift)</div><div class="v">${pct(oee)}</div></div>`;
}

function tileHtml(dev) {
  const cat = categoryOf(dev);
  const d = dev.derived || {};
  const since = sinceOf(dev, cat);
  const loc = dev.meta?.location || {};
  const where = [loc.area, loc.line].filter(Boolean).join(" · ");
  let body;
  if (dev.has_state) {
    body = `${reasonLine(dev, cat)}
      <div class="tile-kpis">${gauge(d.oee?.oee)}${apq(d.oee)}</div>
      ${partsBlock(d.parts)}`;
  } else {
    body = `${reasonLine(dev, cat)}<div class="sensor-values">${sensorValues(dev)}</div>`;
  }
  return `<a class="card tile ${cat}" href="#/device/${encodeURIComponent(dev.name)}" data-testid="tile-${esc(dev.name)}" data-state="${cat}">
    <div class="tile-head bg-${cat}"><span class="tile-state">${stateLabel(cat)}</span>
      <span class="tile-time" data-since="${since ?? ""}">${since ? "@@TIME@@" : ""}</span></div>
    <div class="tile-body">
      <div class="tile-name"><h2>${esc(dev.name)}</h2><span class="model">${esc(dev.meta?.model || dev.meta?.profile || "")}</span></div>
      <div class="tile-where">${esc(where)}${dev.stale ? ' <span class="stale-note">· last known values</span>' : ""}</div>
      ${body}
      <div class="tile-foot">${alarmPill(d.alarms)}${healthPill(d.health)}</div>
    </div></a>`;
}
function sensorValues(dev) {
  const vals = Object.entries(dev.key_values || {});
  if (!vals.length) return `<div class="sv"><div class="k">Values</div><div class="v">–</div></div>`;
  return vals.map(([tag, v]) => `<div class="sv"><div class="k">${esc(label(tag))}</div>
    <div class="v">${esc(fmtValue(v.value))} <span class="u">${esc(unit(v.unit))}</span></div></div>`).join("");
}

function renderTiles() {
  const html = [...S.devices.values()].map(tileHtml).join("");
  const tiles = $("#tiles");
  if (tiles.dataset.html === html) return;
  tiles.dataset.html = html;
  tiles.innerHTML = html.replace(/@@TIME@@/g, "");
  for (const el of tiles.querySelectorAll("[data-since]")) {
    const s = Number(el.dataset.since);
    if (s) el.textContent = dur(now() - s);
  }
}

function renderAlarmList(el, list, showDevice) {
  if (!el) return;
  list.sort((a, b) => rankAlarm(a) - rankAlarm(b) || (b.raised_at || 0) - (a.raised_at || 0));
  if (!list.length) { el.innerHTML = `<div class="empty">No active alarms.</div>`; return; }
  const canAct = true;
  el.innerHTML = `<div class="alarm-list">${list.map(a => {
    const unack = a.state === "unack" || a.state === "rtn_unack";
    const tags = `<span class="status-tag ${esc(a.status)}">${esc(statusText(a))}</span>${a.chattering ? '<span class="status-tag chatter">chattering</span>' : ""}`;
    const who = a.acked_by ? ` · ack. by ${esc(a.acked_by)}${a.ack_note ? " (" + esc(a.ack_note) + ")" : ""}` : "";
    const shelf = a.status === "shelved" ? ` · shelved by ${esc(a.shelved_by)} until ${hm(a.shelved_until)}` : "";
    const val = a.value != null && typeof a.value === "number" ? ` · value ${esc(fmtValue(a.value))}` : "";
    const actions = [];
    if (canAct && unack) actions.push(`<button class="btn small primary" data-ack="${esc(a.id)}">Acknowledge</button>`);
    if (canAct && a.status !== "shelved") actions.push(`<button class="btn small" data-shelve="${esc(a.id)}">Shelve</button>`);
    if (canAct && a.status === "shelved") actions.push(`<button class="btn small" data-unshelve="${esc(a.id)}">Unshelve</button>`);
    return `<div class="alarm ${esc(a.priority)} ${unack ? "unack" : ""}" data-alarm-id="${esc(a.id)}" data-status="${esc(a.status)}">
      <span class="prio" title="${esc(a.priority)} priority"></span>
      <div><div class="msg">${showDevice ? `<a href="#/device/${encodeURIComponent(a.device)}">${esc(a.device)}</a> – ` : ""}${esc(a.message)}</div>
        <div class="meta">${tags}${esc(a.priority)} · raised ${hm(a.raised_at)}${val}${who}${shelf}</div></div>
      <div class="actions">${actions.join("")}</div></div>`;
  }).join("")}</div>`;
}
function rankAlarm(a) {
  const unack = a.state === "unack" || a.state === "rtn_unack" ? 0 : 10;
  return unack + ({ urgent: 0, high: 1, medium: 2, low: 3 }[a.priority] ?? 4);
}
function statusText(a) {
  return { unack: "unacknowledged", acked: "acknowledged", rtn_unack: "cleared, unack.", shelved: "shelved",
    suppressed: "suppressed", normal: "normal" }[a.status] || a.status;
}

function renderGateway() {
  const el = $("#gateway");
  const st = S.status;
  if (!st || !st.buffer) { el.innerHTML = `<div class="empty">Waiting for the gateway status&hellip;</div>`; return; }
  const rows = Object.entries(st.devices || {}).map(([name, d]) => `<tr>
      <td><a href="#/device/${encodeURIComponent(name)}">${esc(name)}</a></td><td>${esc(d.protocol || "")}</td>
      <td><span class="conn ${esc(d.state)}">${esc(d.state)}</span></td>
      <td class="r">${int(d.samples)}</td><td class="r">${int(d.errors)}</td></tr>`).join("");
  const b = st.buffer, y = st.sync || {}, un = b.unsynced || {};
  const fill = b.max_rows ? b.samples_rows / b.max_rows : 0;
  const bytes = b.max_bytes ? b.used_bytes / b.max_bytes : 0;
  const age = y.last_success ? now() - y.last_success : null;
  const syncBad = y.last_result && y.last_result !== "ok" && y.last_result !== "disabled";
  el.innerHTML = `
    <table class="table"><thead><tr><th>Connector</th><th>Protocol</th><th>State</th><th class="r">Samples</th><th class="r">Errors</th></tr></thead>
    <tbody>${rows}</tbody></table>
    <div class="gw-grid">
      <div class="gw-item"><div class="k">Buffer fill</div><div class="v">${pct(Math.max(fill, bytes))}</div>
        <div class="bar"><span style="width:${Math.min(100, Math.max(fill, bytes) * 100)}%;background:${Math.max(fill, bytes) > 0.8 ? "var(--bad)" : "var(--accent)"}"></span></div></div>
      <div class="gw-item ${(un.samples || 0) > 100000 ? "bad" : ""}"><div class="k">Unsynced backlog</div><div class="v">${int(un.samples)} samples · ${int(un.events)} events</div></div>
      <div class="gw-item ${syncBad ? "bad" : ""}"><div class="k">Last sync</div><div class="v">${y.last_result === "disabled" ? "sync disabled" : y.last_success ? hm(y.last_success) + " (" + dur(age) + " ago)" : "never"}${syncBad ? " · " + esc(y.last_result) : ""}</div></div>
      <div class="gw-item ${b.dropped ? "bad" : ""}"><div class="k">Dropped samples</div><div class="v">${int(b.dropped)}</div></div>
      <div class="gw-item"><div class="k">Uptime</div><div class="v">${dur(st.uptime_s)}</div></div>
      <div class="gw-item"><div class="k">Live clients</div><div class="v">${int(st.stream?.clients)} · ${int(st.stream?.dropped)} msgs dropped</div></div>
    </div>`;
}

// -- detail ------------------------------------------------------------------------------------

async function loadDetail(name, first) {
  try {
    const [twin, tl, ev] = await Promise.all([
      api(`/api/v1/devices/${encodeURIComponent(name)}`),
      api(`/api/v1/devices/${encodeURIComponent(name)}/timeline`),
      api(`/api/v1/devices/${encodeURIComponent(name)}/events?limit=40`),
    ]);
    if (S.route.device !== name) return;
    S.twin = twin; S.timeline = tl.segments; S.timelineFrom = tl.from; S.events = ev.events;
    if (first || !$("#live-chart")) { buildDetail(); }
    render();
  } catch (e) {
    if (e.status === 404) $("#main").innerHTML = `<div class="card card-pad">No device named <b>${esc(name)}</b>. <a href="#/">Back to the overview</a></div>`;
  }
}
async function refreshTimeline() {
  const name = S.route.device;
  try {
    const tl = await api(`/api/v1/devices/${encodeURIComponent(name)}/timeline`);
    if (S.route.device === name) { S.timeline = tl.segments; S.timelineFrom = tl.from; schedule(); }
  } catch (e) { /* kept */ }
}
setInterval(() => { if (S.route.view === "device" && S.connected) refreshTimeline(); }, 15000);

function numericTags(twin) {
  return twin.meta.tags.map(t => t.name).filter(t => isNum(twin.reported[t]?.value) || typeof twin.reported[t]?.value === "boolean")
    .concat(Object.keys(twin.reported).filter(t => !twin.meta.tags.some(x => x.name === t) && isNum(twin.reported[t].value)));
}
function defaultTag(twin) {
  const limited = (twin.meta.alarm_limits || []).map(a => a.tag).find(t => twin.reported[t]);
  return limited || numericTags(twin)[0] || null;
}

function buildDetail() {
  const twin = S.twin;
  S.selectedTag = S.selectedTag || defaultTag(twin);
  $("#main").innerHTML = `
    <div class="card detail-head" id="d-head"></div>
    <div class="grid-3">
      <div class="card card-pad"><h3>Shift performance</h3><div id="d-kpi"></div></div>
      <div class="card card-pad"><h3>Losses this shift</h3><div id="d-losses"></div></div>
      <div class="card card-pad narrow"><h3>Alarms</h3><div id="d-alarms"></div></div>
    </div>
    <div class="card card-pad chart-card"><h3>State timeline of the shift</h3><div id="d-timeline"></div></div>
    <div class="card card-pad chart-card">
      <div class="chart-head"><h3 id="chart-title">Live chart</h3><span class="hint" id="chart-hint">last 15 minutes</span><span class="now" id="chart-now"></span></div>
      <div id="live-chart" data-testid="live-chart"></div>
    </div>
    <div class="two">
      <div class="card card-pad"><h3>Live values</h3><table class="values" id="d-values"><thead><tr><th>Tag</th><th style="text-align:right">Value</th><th>Unit</th><th>Trend</th><th>Last 15 min</th></tr></thead><tbody></tbody></table></div>
      <div class="stack">
        <div class="card card-pad" id="d-desired-card" hidden><h3>Setpoints</h3><div id="d-desired"></div></div>
        <div class="card card-pad"><h3>Recent events</h3><ul class="events" id="d-events"></ul></div>
      </div>
    </div>`;
  buildValues();
  buildChart(S.selectedTag);
}

function renderDetail() {
  const twin = S.twin;
  if (!twin || !$("#d-head")) return;
  const dev = S.devices.get(twin.name) || { name: twin.name, derived: twin.derived, has_state: twin.has_state, meta: twin.meta };
  dev.derived = twin.derived;
  const cat = categoryOf({ ...dev, has_state: twin.has_state });
  const since = sinceOf(dev, cat);
  const loc = twin.meta.location || {};
  const st = twin.derived.state || {};
  const reason = (cat === "unplanned_stop" || cat === "planned_stop" || cat === "changeover") ? (st.reason_text || (st.reason ? "reason " + st.reason : "reason not given")) : "";
  $("#d-head").innerHTML = `
    <div class="detail-state bg-${cat}" data-testid="detail-state" data-state="${cat}"><div class="s">${stateLabel(cat)}</div>
      <div class="t" data-since="${since ?? ""}">${since ? dur(now() - since) : ""}</div></div>
    <div class="detail-title"><h1>${esc(twin.name)}</h1>
      <div class="sub">${esc(twin.meta.model)} · ${esc([loc.site, loc.area, loc.line].filter(Boolean).join(" / "))} · ${esc(twin.meta.protocol)}</div>
      ${reason ? `<div class="reason ${cat === "planned_stop" ? "planned" : cat === "changeover" ? "changeover" : ""}" style="align-self:flex-start">${esc(reason)}</div>` : ""}
      ${cat === "offline" ? reasonLine(dev, cat).replace('class="reason', 'style="align-self:flex-start" class="reason') : ""}
    </div>
    <div class="detail-side">${alarmPill(twin.derived.alarms)}${healthPill(twin.derived.health)}${twin.stale ? '<span class="pill warn">last known values</span>' : ""}</div>`;
  const o = twin.derived.oee;
  $("#d-kpi").innerHTML = twin.has_state ? `<div class="kpi-row">${gauge(o?.oee)}${apq(o)}</div><div style="margin-top:.8rem">${partsBlock(twin.derived.parts)}</div>
    ${o && (o.mtbf_s != null || o.mttr_s != null) ? `<div class="legend" style="margin-top:.6rem"><span>MTBF <b>${mins(o.mtbf_s)}</b></span><span>MTTR <b>${mins(o.mttr_s)}</b></span></div>` : ""}`
    : `<div class="empty">This device reports no machine state (a sensor): no OEE.</div>`;
  renderLosses(o);
  renderAlarmList($("#d-alarms"), [...S.alarms.values()].filter(a => a.device === twin.name), false);
  renderTimeline();
  updateValues();
  renderDesired();
  renderEvents();
}

function renderLosses(o) {
  const el = $("#d-losses");
  if (!o || !o.losses || !Object.keys(o.losses).length) {
    el.innerHTML = `<div class="empty">${S.twin.has_state ? "Loss figures come with the OEE engine." : "No OEE for this device."}</div>`;
    return;
  }
  const entries = Object.entries(o.losses);
  const max = Math.max(60, ...entries.map(([, v]) => Math.max(0, v)));
  el.innerHTML = `<div class="losses">${entries.map(([k, v]) => `<div class="loss"><span>${esc(LOSS_LABEL[k] || label(k))}</span>
    <div class="bar"><span style="width:${Math.max(0, v) / max * 100}%"></span></div><span class="m">${mins(v)}</span></div>`).join("")}</div>`;
}

function renderTimeline() {
  const el = $("#d-timeline");
  const segs = S.timeline || [];
  if (!segs.length) { el.innerHTML = `<div class="empty">${S.twin.has_state ? "No state recorded yet this shift." : "This device reports no machine state."}</div>`; return; }
  const t0 = S.timelineFrom || segs[0].start, t1 = Math.max(now(), segs[segs.length - 1].end || 0);
  const span = Math.max(1, t1 - t0);
  const totals = {};
  const bars = [];
  let cursor = t0;
  for (const s of segs) {
    const end = s.end || t1;
    if (s.start > cursor) bars.push(`<div class="seg" style="width:${(s.start - cursor) / span * 100}%;background:transparent" title="no data"></div>`);
    const w = (end - Math.max(s.start, cursor)) / span * 100;
    totals[s.category] = (totals[s.category] || 0) + (end - s.start);
    const why = s.reason_text || (s.reason ? "reason " + s.reason : "");
    bars.push(`<div class="seg" style="width:${w}%;background:${CATEGORY_COLOR[s.category] || "#999"}" title="${esc(stateLabel(s.category))} ${hm(s.start)}–${hm(end)} (${dur(end - s.start)})${why ? " – " + esc(why) : ""}"></div>`);
    cursor = end;
  }
  const ticks = [];
  const stepH = span > 6 * 3600 ? 3600 : span > 2 * 3600 ? 1800 : span > 3600 ? 900 : 300;
  for (let t = Math.ceil(t0 / stepH) * stepH; t < t1; t += stepH) ticks.push(`<span style="left:${(t - t0) / span * 100}%">${hm(t)}</span>`);
  const legend = Object.entries(totals).sort((a, b) => b[1] - a[1]).map(([c, s]) => `<span><i style="background:${CATEGORY_COLOR[c]}"></i>${stateLabel(c)} <b>${dur(s)}</b></span>`).join("");
  el.innerHTML = `<div class="timeline" data-testid="timeline">${bars.join("")}</div><div class="axis">${ticks.join("")}</div><div class="legend">${legend}</div>`;
}

function buildValues() {
  const twin = S.twin;
  const tbody = $("#d-values tbody");
  const names = twin.meta.tags.map(t => t.name).concat(Object.keys(twin.reported).filter(t => !twin.meta.tags.some(x => x.name === t)));
  const desc = Object.fromEntries(twin.meta.tags.map(t => [t.name, t.description]));
  tbody.innerHTML = names.map(t => `<tr data-tag="${esc(t)}" class="${t === S.selectedTag ? "sel" : ""}">
    <td><div class="tag">${esc(label(t))}</div><div class="desc">${esc(desc[t] || "")}</div></td>
    <td class="val">–</td><td class="unit"></td><td class="trend"></td><td><div class="spark"></div></td></tr>`).join("");
  tbody.onclick = e => {
    const tr = e.target.closest("tr[data-tag]");
    if (!tr) return;
    const tag = tr.dataset.tag;
    const v = S.twin.reported[tag]?.value;
    if (!isNum(v) && typeof v !== "boolean") return;
    S.selectedTag = tag;
    tbody.querySelectorAll("tr").forEach(r => r.classList.toggle("sel", r.dataset.tag === tag));
    buildChart(tag);
  };
  for (const t of numericTags(twin)) loadSpark(t);
}

function updateValues() {
  const twin = S.twin;
  for (const tr of document.querySelectorAll("#d-values tr[data-tag]")) {
    const r = twin.reported[tr.dataset.tag];
    if (!r) continue;
    const text = valueText(twin, tr.dataset.tag, r);
    const cell = tr.children[1];
    if (cell.textContent !== text) {
      cell.textContent = text;
      cell.classList.remove("flash"); void cell.offsetWidth; cell.classList.add("flash");
    }
    tr.children[2].textContent = unit(r.unit);
    tr.className = (tr.dataset.tag === S.selectedTag ? "sel " : "") + (r.quality !== "good" ? "q-bad " : "") + (r.stale ? "stale" : "");
    tr.children[3].textContent = trendText(r);
  }
  const r = S.selectedTag ? twin.reported[S.selectedTag] : null;
  $("#chart-now").innerHTML = r ? `${esc(fmtValue(r.value))}<span class="u">${esc(unit(r.unit))}</span>` : "";
}
function valueText(twin, tag, r) {
  const m = twin.meta;
  const code = r.value === true ? "1" : r.value === false ? "0" : String(r.value);
  if (tag === m.state_tag && m.state_codes && m.state_codes[code]) return `${code} · ${stateLabel(m.state_codes[code])}`;
  if (tag === m.reason_tag && m.reason_texts && m.reason_texts[code]) return `${code} · ${m.reason_texts[code]}`;
  return fmtValue(r.value);
}
function trendText(r) {
  if (r.stale) return "stale";
  if (r.rate == null || !isNum(r.rate) || r.rate === 0) return "";
  const perMin = r.rate * 60;
  const arrow = perMin > 0 ? "▲" : "▼";
  const a = Math.abs(perMin);
  return `${arrow} ${a >= 100 ? a.toFixed(0) : a >= 1 ? a.toFixed(1) : a.toFixed(3)}/min`;
}

function renderDesired() {
  const entries = Object.values(S.twin.desired || {});
  $("#d-desired-card").hidden = !entries.length;
  $("#d-desired").innerHTML = entries.map(sp => `<div class="parts-line"><b>${esc(label(sp.tag))}</b> → ${esc(fmtValue(sp.value))}
    <span class="pill ${sp.status === "confirmed" || sp.status === "written" ? "good" : sp.status === "requested" ? "warn" : "bad"}">${esc(sp.status)}</span>
    <span class="target">${esc(sp.user)} · ${hm(sp.updated_at || sp.requested_at)}</span></div>`).join("");
}

function renderEvents() {
  const el = $("#d-events");
  if (!S.events.length) { el.innerHTML = `<li class="empty">No events yet.</li>`; return; }
  el.innerHTML = S.events.slice(0, 40).map(e => {
    const a = e.attributes || {};
    const who = a.user ? ` <span class="who">${esc(a.user)}</span>` : "";
    const extra = a.message || a.error || a.note || (a.tag && a.value !== undefined ? `${a.tag} = ${fmtValue(a.value)}` : "");
    return `<li><span class="when">${clock(e.ts)}</span><span class="what"><b>${esc(e.kind.replace(/_/g, " "))}</b>${who}${extra ? " – " + esc(extra) : ""}</span></li>`;
  }).join("");
}

// -- charts (uPlot) ----------------------------------------------------------------------------

function destroyCharts() {
  for (const s of S.sparks.values()) s.plot.destroy();
  S.sparks.clear();
  if (S.chart) { S.chart.plot.destroy(); S.chart = null; }
}
async function loadSpark(tag) {
  const name = S.twin.name;
  let h;
  try { h = await api(`/api/v1/devices/${encodeURIComponent(name)}/history?tag=${encodeURIComponent(tag)}&from=-900&points=90`); }
  catch (e) { return; }
  if (!S.twin || S.twin.name !== name) return;
  const cell = document.querySelector(`#d-values tr[data-tag="${CSS.escape(tag)}"] .spark`);
  if (!cell) return;
  const old = S.sparks.get(tag);
  if (old) old.plot.destroy();
  const data = { t: h.t.slice(), v: h.v.slice() };
  const opts = {
    width: 140, height: 34, cursor: { show: false }, legend: { show: false }, select: { show: false },
    scales: { x: { time: true }, y: { auto: true } }, axes: [{ show: false }, { show: false }],
    series: [{}, { stroke: "#175cd3", width: 1.5, fill: "rgba(23,92,211,.08)", points: { show: false } }],
  };
  const plot = new uPlot(opts, [data.t, data.v], cell);
  S.sparks.set(tag, { plot, ...data });
}
function limitsFor(tag) {
  const a = (S.twin.meta.alarm_limits || []).find(x => x.tag === tag);
  if (!a) return [];
  return [["hihi", "#c4261d"], ["hi", "#c25e00"], ["lo", "#c25e00"], ["lolo", "#c4261d"]].filter(([k]) => a[k] != null).map(([k, c]) => ({ k, v: a[k], c }));
}
async function buildChart(tag) {
  if (S.chart) { S.chart.plot.destroy(); S.chart = null; }
  const el = $("#live-chart");
  if (!tag || !el) { if (el) el.innerHTML = `<div class="empty">No numeric values to chart.</div>`; return; }
  const name = S.twin.name;
  const r = S.twin.reported[tag];
  $("#chart-title").textContent = `${label(tag)}${r?.unit ? " (" + unit(r.unit) + ")" : ""}`;
  let h;
  try { h = await api(`/api/v1/devices/${encodeURIComponent(name)}/history?tag=${encodeURIComponent(tag)}&from=-900&points=300`); }
  catch (e) { h = { t: [], v: [], min: [], max: [] }; }
  if (!S.twin || S.twin.name !== name || S.selectedTag !== tag) return;
  el.innerHTML = "";
  const limits = limitsFor(tag);
  const width = Math.max(320, el.clientWidth);
  const opts = {
    width, height: 300, legend: { show: false }, cursor: { drag: { x: false, y: false } },
    scales: { x: { time: true }, y: { auto: true, range: (u, lo, hi) => {
      const vals = limits.map(l => l.v).filter(v => v >= lo - (hi - lo) && v <= hi + (hi - lo));
      const a = Math.min(lo, ...vals), b = Math.max(hi, ...vals);
      const pad = (b - a) * 0.08 || 1;
      return [a - pad, b + pad];
    } } },
    axes: [
      { stroke: "#344054", grid: { stroke: "#e6eaf0" }, ticks: { stroke: "#d0d7e2" }, font: "13px sans-serif", space: 90,
        values: (u, splits) => splits.map(v => hm(v)) },
      { stroke: "#344054", grid: { stroke: "#e6eaf0" }, ticks: { stroke: "#d0d7e2" }, font: "13px sans-serif", size: 60 },
    ],
    series: [{}, { label: label(tag), stroke: "#175cd3", width: 2, fill: "rgba(23,92,211,.07)", points: { show: false } }],
    hooks: { draw: [u => {
      const ctx = u.ctx;
      for (const l of limits) {
        const y = u.valToPos(l.v, "y", true);
        if (y < u.bbox.top || y > u.bbox.top + u.bbox.height) continue;
        ctx.save(); ctx.strokeStyle = l.c; ctx.setLineDash([6, 4]); ctx.lineWidth = 1.5 * devicePixelRatio;
        ctx.beginPath(); ctx.moveTo(u.bbox.left, y); ctx.lineTo(u.bbox.left + u.bbox.width, y); ctx.stroke();
        ctx.fillStyle = l.c; ctx.font = `bold ${12 * devicePixelRatio}px sans-serif`;
        const text = l.k.toUpperCase() + " " + l.v;
        const x = u.bbox.left + u.bbox.width - ctx.measureText(text).width - 6 * devicePixelRatio;
        ctx.fillText(text, x, y - 5 * devicePixelRatio);
        ctx.restore();
      }
    }] },
  };
  const data = { t: h.t.slice(), v: h.v.slice() };
  const plot = new uPlot(opts, [data.t, data.v], el);
  S.chart = { plot, tag, ...data };
  updateValues();
}
function toNum(v) { return typeof v === "boolean" ? (v ? 1 : 0) : v; }
function liveValue(tag, r) {
  const v = toNum(r.value);
  if (!isNum(v) || r.stale) return;
  const sp = S.sparks.get(tag);
  if (sp) {
    sp.t.push(r.ts); sp.v.push(v);
    while (sp.t.length && sp.t[0] < r.ts - 900) { sp.t.shift(); sp.v.shift(); }
    sp.plot.setData([sp.t, sp.v]);
  }
  if (S.chart && S.chart.tag === tag) {
    const c = S.chart;
    if (c.t.length && r.ts <= c.t[c.t.length - 1]) return;
    c.t.push(r.ts); c.v.push(v);
    while (c.t.length && c.t[0] < r.ts - 900) { c.t.shift(); c.v.shift(); }
    c.plot.setData([c.t, c.v]);
  }
}
window.addEventListener("resize", () => {
  if (S.chart) { const el = $("#live-chart"); S.chart.plot.setSize({ width: Math.max(320, el.clientWidth), height: 300 }); }
});

// -- session and actions -----------------------------------------------------------------------

async function loadSession() {
  try { S.session = await api("/api/v1/session"); } catch (e) { /* keep */ }
  renderUser();
}
function renderUser() {
  const box = $("#user-box");
  if (S.session.user) {
    box.innerHTML = `<span class="who" data-testid="user">${esc(S.session.user)}</span><span class="role">${esc(S.session.role)}</span>
      <button class="btn small" id="logout">Log out</button>`;
    $("#logout").onclick = async () => { try { await api("/api/v1/logout", { body: {} }); } catch (e) { /* gone anyway */ } await loadSession(); schedule(); };
  } else if (S.session.login_enabled) {
    box.innerHTML = `<button class="btn small" id="login">Operator log in</button>`;
    $("#login").onclick = () => login();
  } else {
    box.innerHTML = "";
  }
}

let dialogResolve = null;
function dialog(title, bodyHtml, okText, onOk) {
  const d = $("#dialog");
  $("#dialog-title").textContent = title;
  $("#dialog-body").innerHTML = bodyHtml;
  $("#dialog-error").textContent = "";
  $("#dialog-ok").textContent = okText;
  return new Promise(resolve => {
    dialogResolve = resolve;
    $("#dialog-form").onsubmit = async ev => {
      ev.preventDefault();
      $("#dialog-ok").disabled = true;
      try {
        const result = await onOk(d);
        d.close();
        resolve(result);
      } catch (e) {
        $("#dialog-error").textContent = e.message || String(e);
      } finally {
        $("#dialog-ok").disabled = false;
      }
    };
    $("#dialog-cancel").onclick = () => { d.close(); resolve(null); };
    d.showModal();
    const first = d.querySelector("input, select, textarea");
    if (first) first.focus();
  });
}
async function login() {
  return dialog("Operator log in", `
    <label>Name <input name="name" id="login-name" autocomplete="username" required></label>
    <label>Password <input name="password" id="login-password" type="password" autocomplete="current-password" required></label>`,
  "Log in", async () => {
    const res = await api("/api/v1/login", { body: { name: $("#login-name").value.trim(), password: $("#login-password").value } });
    await loadSession();
    schedule();
    return res;
  });
}
async function ensureLogin(permission) {
  if (!S.session.user) { if (!(await login())) return false; }
  if (!S.session.can.includes(permission)) {
    await dialog("Not allowed", `<p class="info">Your role (${esc(S.session.role)}) may not ${esc(permission)} alarms. Ask a shift lead.</p>`, "OK", async () => null);
    return false;
  }
  return true;
}
async function ackAlarm(id) {
  if (!(await ensureLogin("ack"))) return;
  const a = S.alarms.get(id);
  await dialog("Acknowledge alarm", `<p class="info">${esc(a ? a.device + " – " + a.message : id)}</p>
    <label>Note (optional) <input id="ack-note" maxlength="500" placeholder="e.g. checked coolant level"></label>`, "Acknowledge",
  async () => {
    const res = await api(`/api/v1/alarms/${encodeURIComponent(id)}/ack`, { body: { note: $("#ack-note").value } });
    S.alarms.set(res.id, res); schedule();
    return res;
  });
}
async function shelveAlarm(id) {
  if (!(await ensureLogin("shelve"))) return;
  const a = S.alarms.get(id);
  await dialog("Shelve alarm", `<p class="info">${esc(a ? a.device + " – " + a.message : id)}</p>
    <label>For <select id="shelve-for"><option value="900">15 minutes</option><option value="3600" selected>1 hour</option>
      <option value="14400">4 hours</option><option value="28800">8 hours (end of shift)</option></select></label>
    <label>Reason <input id="shelve-note" maxlength="500" required placeholder="e.g. sensor being replaced"></label>`, "Shelve",
  async () => {
    const res = await api(`/api/v1/alarms/${encodeURIComponent(id)}/shelve`, { body: { duration_s: Number($("#shelve-for").value), note: $("#shelve-note").value } });
    S.alarms.set(res.id, res); schedule();
    return res;
  });
}
async function unshelveAlarm(id) {
  if (!(await ensureLogin("shelve"))) return;
  try {
    const res = await api(`/api/v1/alarms/${encodeURIComponent(id)}/unshelve`, { body: {} });
    if (res.state === "normal" && res.status !== "shelved") S.alarms.delete(res.id); else S.alarms.set(res.id, res);
    schedule();
  } catch (e) { alert(e.message); }
}
document.addEventListener("click", e => {
  const b = e.target.closest("button[data-ack], button[data-shelve], button[data-unshelve]");
  if (!b) return;
  e.preventDefault();
  if (b.dataset.ack) ackAlarm(b.dataset.ack);
  else if (b.dataset.shelve) shelveAlarm(b.dataset.shelve);
  else unshelveAlarm(b.dataset.unshelve);
});

// -- clock and "time in state" -------------------------------------------------------------------

setInterval(() => {
  $("#clock").textContent = clock(now());
  for (const el of document.querySelectorAll("[data-since]")) {
    const s = Number(el.dataset.since);
    if (s) el.textContent = dur(now() - s);
  }
}, 1000);

// -- start -------------------------------------------------------------------------------------

(async function start() {
  $("#clock").textContent = clock(now());
  await loadSession();
  if (!S.session.open_viewing && !S.session.user) {
    $("#main").innerHTML = `<div class="card card-pad">Viewing this gateway needs a login.</div>`;
    if (!(await login())) return;
  }
  route();
  connect();
})();
