// Fleet page of the collector: reads the analytics API with the key kept in this browser and draws it.
// No framework, no build step; every text from the API goes in through textContent.
"use strict";
(() => {
  const KEY_STORE = "edge-collector.fleet.key";
  const REFRESH_MS = 30000;

  const FUNNELS = {
    parts: {
      label: "Parts: loaded \u2192 machined \u2192 inspected OK \u2192 packed",
      request: {
        entity_key: "part_id",
        steps: [
          { kind: "part_loaded", label: "loaded" },
          { kind: "part_machined", label: "machined" },
          { kind: "part_inspected", where: { result: "ok" }, label: "inspected OK" },
          { kind: "part_packed", label: "packed" },
        ],
      },
      entity: "parts",
    },
    alarms: {
      label: "Alarms: raised \u2192 acknowledged \u2192 cleared",
      request: {
        entity_key: "occurrence_id",
        steps: [
          { kind: "alarm_raised", label: "raised" },
          { kind: "alarm_acknowledged", label: "acknowledged" },
          { kind: "alarm_cleared", label: "cleared" },
        ],
      },
      entity: "alarm occurrences",
    },
  };

  const COHORTS = {
    devices: {
      label: "Devices by first connection \u2192 unplanned stops",
      request: {
        entity_key: "device",
        first: { kind: "device_connected" },
        return: { kind: "stop_ended", where: { category: "unplanned_stop" } },
      },
    },
    orders: {
      label: "Orders by first part loaded \u2192 parts failing inspection",
      request: {
        entity_key: "order_id",
        first: { kind: "part_loaded" },
        return: { kind: "part_inspected", where: { result: "nok" } },
      },
    },
    operators: {
      label: "Operators by first login \u2192 alarm acknowledgements",
      request: {
        entity_key: "user",
        first: { kind: "operator_login" },
        return: { kind: "alarm_acknowledged" },
      },
    },
  };
  const PERIOD_S = { day: 86400, week: 7 * 86400, month: 31 * 86400 };

  const $ = (id) => document.getElementById(id);
  const state = { key: null, fixed: null, timer: null, loading: 0 };

  // -- helpers ---------------------------------------------------------------------------------

  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(props || {})) {
      if (value === null || value === undefined) continue;
      if (name === "text") node.textContent = String(value);
      else if (name === "class") node.className = value;
      else if (name === "style") node.style.cssText = value;  // CSSOM: allowed by the page's CSP
      else node.setAttribute(name, String(value));
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function setStatus(id, kind, text) {
    const node = $(id);
    node.className = "status" + (kind ? " " + kind : "");
    node.textContent = text || "";
    node.dataset.state = kind || "ok";
  }

  const pct = (v) => (v === null || v === undefined ? "n/a" : (100 * v).toFixed(1) + "%");
  const int = (v) => (v === null || v === undefined ? "n/a" : Math.round(v).toLocaleString("en-US"));

  function duration(s) {
    if (s === null || s === undefined) return "n/a";
    if (s < 90) return s.toFixed(s < 10 ? 1 : 0) + " s";
    if (s < 5400) return (s / 60).toFixed(1) + " min";
    if (s < 172800) return (s / 3600).toFixed(1) + " h";
    return (s / 86400).toFixed(1) + " d";
  }

  function when(ts) {
    if (!ts) return "never";
    const d = new Date(ts * 1000);
    return d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
  }

  function ago(ts, now) {
    if (!ts) return "never";
    return duration(Math.max(0, now - ts)) + " ago";
  }

  function ratioCell(v, testid) {
    const td = el("td", { class: "n", "data-testid": testid, "data-value": v === null ? "" : v });
    if (v === null || v === undefined) {
      td.append(el("span", { class: "muted", text: "n/a" }));
      return td;
    }
    const level = v >= 0.85 ? "" : v >= 0.6 ? " warn" : " bad";
    const bar = el("span", { class: "ratio-bar" },
      el("span", { class: "ratio-fill" + level, style: `display:block;width:${Math.min(100, 100 * v).toFixed(1)}%` }));
    td.append(el("span", { class: "ratio" }, el("span", { text: pct(v) }), bar));
    return td;
  }

  function parseInstant(text) {
    if (text === null || text === "") return null;
    if (/^[+-]?\d+(\.\d*)?$/.test(text.trim())) return Number(text);
    const ms = Date.parse(/[zZ]|[+-]\d\d:?\d\d$/.test(text) ? text : text + "Z");
    return Number.isNaN(ms) ? null : ms / 1000;
  }

  function timeWindow() {
    if (state.fixed) return state.fixed;
    const to = Date.now() / 1000;
    return { from: to - Number($("range").value), to };
  }

  // -- the API key -----------------------------------------------------------------------------

  function loadKey() {
    const hash = new URLSearchParams(location.hash.replace(/^#/, ""));
    const fromLink = hash.get("key");
    if (fromLink) {
      try { localStorage.setItem(KEY_STORE, fromLink); } catch (e) { /* private mode: keep it in memory */ }
      history.replaceState(null, "", location.pathname + location.search);
      return fromLink;
    }
    try { return localStorage.getItem(KEY_STORE); } catch (e) { return null; }
  }

  function askKey(message) {
    $("key-panel").hidden = false;
    $("key-error").hidden = !message;
    $("key-error").textContent = message || "";
    $("key-cancel").hidden = !state.key;
    $("key-input").focus();
  }

  // -- the API ---------------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }

  async function api(method, path, body) {
    const headers = { accept: "application/json" };
    if (state.key) headers["x-api-key"] = state.key;
    if (body !== undefined) headers["content-type"] = "application/json";
    let response;
    try {
      response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    } catch (e) {
      throw new ApiError(0, "the collector cannot be reached (" + e.message + ")");
    }
    let data = null;
    try { data = await response.json(); } catch (e) { data = null; }
    if (!response.ok) {
      let text = (data && data.detail) || response.statusText || "request failed";
      if (data && Array.isArray(data.errors) && data.errors.length) {
        text += ": " + data.errors.slice(0, 3).map((p) => p.field + ": " + p.message).join("; ");
      }
      throw new ApiError(response.status, `${response.status} ${text}`);
    }
    return data;
  }

  function failed(statusId, error) {
    if (error.status === 401) {
      setStatus(statusId, "error", "The collector refused the API key.");
      return true;
    }
    setStatus(statusId, "error", "Could not load: " + error.message);
    return false;
  }

  // -- overview --------------------------------------------------------------------------------

  function kpi(testid, value, sub, subId, level) {
    const node = document.querySelector(`[data-testid="${testid}"]`);
    node.textContent = value;
    node.parentElement.className = "kpi" + (level ? " " + level : "");
    if (subId) $(subId).textContent = sub || "";
  }

  function renderOverview(o) {
    const devices = o.devices.length;
    kpi("kpi-gateways", `${o.gateways_online} / ${o.gateways_total}`,
      o.gateways_total ? `${o.gateways_total - o.gateways_online} offline` : "none seen yet", "kpi-gateways-sub",
      o.gateways_total === 0 ? "" : o.gateways_online === o.gateways_total ? "good" : "bad");
    const stopped = o.devices_by_state.unplanned_stop || 0;
    kpi("kpi-devices", int(devices), devices ? `${int(o.devices_by_state.running || 0)} running, ${int(stopped)} stopped` : "none seen yet",
      "kpi-devices-sub", stopped ? "warn" : devices ? "good" : "");
    kpi("kpi-backlog", int(o.backlog_total), null, null, o.backlog_total > 10000 ? "warn" : "");
    const fleet = o.oee.find((g) => g.level === "fleet");
    kpi("kpi-oee", fleet && fleet.oee !== null ? pct(fleet.oee) : "n/a",
      fleet ? `A ${pct(fleet.availability)} \u00b7 P ${pct(fleet.performance)} \u00b7 Q ${pct(fleet.quality)}` : "no machine profiles yet",
      "kpi-oee-sub", fleet && fleet.oee !== null ? (fleet.oee >= 0.6 ? "good" : "warn") : "");
    const a = o.alarms;
    kpi("kpi-alarms", int(a.alarms),
      a.avg_per_10min === null ? "no alarm KPIs yet" : `${a.avg_per_10min.toFixed(2)} per 10 min and position`,
      "kpi-alarms-sub", a.flood_share ? "bad" : "");
    kpi("kpi-unacked", int(a.unacknowledged), `peak ${int(a.peak_10min)} in 10 min`, "kpi-unacked-sub",
      a.unacknowledged ? "warn" : "");

    // devices by state
    const states = $("states");
    states.replaceChildren();
    const entries = Object.entries(o.devices_by_state).sort((x, y) => y[1] - x[1] || x[0].localeCompare(y[0]));
    if (!entries.length) setStatus("states-status", "empty", "No data yet: no device has reported a state or connection in this window.");
    else setStatus("states-status", "", "");
    for (const [name, count] of entries) {
      const colour = `var(--${name.replace(/[^a-z_]/g, "")}, var(--unknown))`;
      states.append(el("div", { class: "state-row", "data-testid": `state-${name}`, "data-count": count },
        el("span", { class: "state-name" }, el("span", { class: "dot", style: `background:${colour}` }), name.replace(/_/g, " ")),
        el("span", { class: "state-bar" }, el("span", { class: "state-fill", style: `display:block;width:${(100 * count / devices).toFixed(1)}%;background:${colour}` })),
        el("span", { class: "state-count", text: count })));
    }

    // gateways
    const gw = $("gateways");
    gw.replaceChildren();
    if (!o.gateways.length) setStatus("gateways-status", "empty", "No data yet: no gateway has synced to this collector.");
    else {
      setStatus("gateways-status", "", "");
      gw.append(el("tr", {}, el("th", { text: "Gateway" }), el("th", { text: "Link" }), el("th", { text: "Last seen" }),
        el("th", { class: "n", text: "Backlog" }), el("th", { text: "By stream" })));
      for (const g of o.gateways) {
        const streams = Object.entries(g.backlog).map(([k, v]) => `${k} ${int(v)}`).join(", ");
        gw.append(el("tr", { "data-testid": `gateway-${g.gateway_id}` },
          el("td", { text: g.gateway_id }),
          el("td", {}, el("span", { class: "pill " + (g.online ? "online" : "offline"), "data-testid": "online", text: g.online ? "online" : "offline" })),
          el("td", { title: when(g.last_seen), text: ago(g.last_seen, o.now) }),
          el("td", { class: "n", "data-testid": "backlog", text: int(g.backlog_total) }),
          el("td", { class: "muted", text: streams || "-" })));
      }
    }

    // worst losses
    const losses = $("losses");
    losses.replaceChildren();
    if (!o.worst_losses.length) setStatus("losses-status", "empty", "No data yet: no unplanned stops in the machine profiles of this window.");
    else {
      setStatus("losses-status", "", "");
      losses.append(el("tr", {}, el("th", { text: "Reason" }), el("th", { class: "n", text: "Stops" }),
        el("th", { class: "n", text: "Time lost" }), el("th", { text: "Share" }), el("th", { class: "n", text: "Devices" })));
      for (const l of o.worst_losses) {
        losses.append(el("tr", { "data-testid": "loss" },
          el("td", { text: l.reason || "(no reason)" }),
          el("td", { class: "n", text: int(l.count) }),
          el("td", { class: "n", text: duration(l.duration_s) }),
          el("td", {}, el("span", { class: "ratio" }, el("span", { class: "num", text: pct(l.share) }),
            el("span", { class: "ratio-bar" }, el("span", { class: "loss-bar", style: `display:block;width:${(100 * l.share).toFixed(1)}%` })))),
          el("td", { class: "n", text: int(l.devices) })));
      }
    }

    // alarm KPIs
    const box = $("alarms");
    box.replaceChildren();
    if (!a.positions) setStatus("alarms-status", "empty", "No data yet: no alarm KPI roll-ups (alarm_kpis events) in this window.");
    else {
      setStatus("alarms-status", "", "");
      const t = el("table", { class: "table" });
      const row = (label, value, testid) => t.append(el("tr", {}, el("td", { text: label }), el("td", { class: "n", "data-testid": testid, text: value })));
      row("Operator positions", int(a.positions), "alarm-positions");
      row("Alarms per 10 min and position (ISA-18.2 target: about 1)", a.avg_per_10min === null ? "n/a" : a.avg_per_10min.toFixed(2), "alarm-rate");
      row("10-min intervals in flood (more than 10 alarms)", pct(a.flood_share), "alarm-flood");
      row("Peak alarms in 10 min", int(a.peak_10min), "alarm-peak");
      row("Chattering", a.chattering.length ? a.chattering.join(", ") : "none", "alarm-chattering");
      row("Stale", a.stale.length ? a.stale.join(", ") : "none", "alarm-stale");
      box.append(t);
      if (a.top.length) {
        const top = el("table", { class: "table" }, el("tr", {}, el("th", { text: "Most frequent alarms" }),
          el("th", { class: "n", text: "Count" }), el("th", { class: "n", text: "Share" })));
        for (const e of a.top) top.append(el("tr", { "data-testid": "alarm-top" }, el("td", { text: e.alarm_id }),
          el("td", { class: "n", text: int(e.count) }), el("td", { class: "n", text: pct(e.share) })));
        box.append(top);
      }
    }

    // OEE
    const oee = $("oee");
    oee.replaceChildren();
    if (!o.oee.length) setStatus("oee-status", "empty", "No data yet: OEE needs the gateways' hourly machine profiles (machine_profile events).");
    else {
      setStatus("oee-status", "", "");
      oee.append(el("tr", {}, el("th", { text: "Fleet / site / area / line" }), el("th", { class: "n", text: "Devices" }),
        el("th", { class: "n", text: "Planned" }), el("th", { class: "n", text: "Availability" }),
        el("th", { class: "n", text: "Performance" }), el("th", { class: "n", text: "Quality" }), el("th", { class: "n", text: "OEE" })));
      // a tree: the fleet, each site, its areas, each area's lines (the API lists them level by level)
      const depth = { fleet: 0, site: 1, area: 2, line: 3 };
      const path = (g) => [g.site, g.area, g.line].slice(0, depth[g.level]).map((v) => v === null ? "" : "\u0001" + v);
      const rows = [...o.oee].sort((x, y) => {
        const px = path(x), py = path(y);
        for (let i = 0; i < Math.min(px.length, py.length); i++) if (px[i] !== py[i]) return px[i] < py[i] ? -1 : 1;
        return px.length - py.length;
      });
      for (const g of rows) {
        const name = g.level === "fleet" ? "Fleet" : g.level === "site" ? (g.site || "(no site)")
          : g.level === "area" ? (g.area || "(no area)") : (g.line || "(no line)");
        const id = ["oee", g.level, g.site, g.area, g.line].filter((x) => x !== null).join("-");
        oee.append(el("tr", { class: "level-" + g.level, "data-testid": id },
          el("td", { text: name, title: [g.site, g.area, g.line].filter(Boolean).join(" / ") }),
          el("td", { class: "n", text: int(g.devices) }),
          el("td", { class: "n", text: duration(g.planned_s) }),
          ratioCell(g.availability, "availability"), ratioCell(g.performance, "performance"),
          ratioCell(g.quality, "quality"), ratioCell(g.oee, "oee")));
      }
    }
  }

  // -- funnel ----------------------------------------------------------------------------------

  function renderFunnel(f, choice) {
    const box = $("funnel");
    box.replaceChildren();
    box.dataset.entities = f.entities;
    if (!f.entities) {
      setStatus("funnel-status", "empty",
        `No data yet: no ${f.steps[0].kind} events with a ${f.entity_key} in this window.`);
      return;
    }
    setStatus("funnel-status", "", `${int(f.entities)} ${choice.entity} entered the funnel (entity: ${f.entity_key}).`);
    const first = f.entities;
    for (const s of f.steps) {
      const share = first ? s.entities / first : 0;
      const meta = el("div", { class: "funnel-meta" });
      if (s.step === 1) meta.append(el("span", { text: "100% of the first step" }));
      else {
        meta.append(el("span", { "data-testid": "conversion", text: `${pct(s.conversion_from_previous)} of previous` }),
          " \u00b7 ", el("span", { class: "drop", "data-testid": "drop-off", text: `${int(s.drop_off)} dropped` }),
          el("br"), el("span", { class: "muted", text: `median ${duration(s.median_s)}, p90 ${duration(s.p90_s)} after previous` }));
      }
      const count = el("span", { class: "funnel-count" + (share < 0.12 ? " outside" : ""), "data-testid": "count", text: int(s.entities) });
      if (share < 0.12) count.style.left = `calc(${(100 * share).toFixed(1)}% + .5rem)`;
      box.append(el("div", { class: "funnel-step", "data-testid": `funnel-step-${s.step}`, "data-entities": s.entities },
        el("div", { class: "funnel-label" }, s.label || s.kind, el("small", { text: s.kind })),
        el("div", { class: "funnel-track" },
          el("div", { class: "funnel-fill", style: `width:${(100 * share).toFixed(2)}%` }), count),
        meta));
    }
  }

  // -- cohort ----------------------------------------------------------------------------------

  function cellText(v, metric) {
    if (v === null) return "\u00b7";
    if (metric === "share") return pct(v);
    if (metric === "events_per_entity") return v.toFixed(2);
    return int(v);
  }

  function renderCohort(c) {
    const table = $("cohort");
    table.replaceChildren();
    if (!c.cohorts.length) {
      setStatus("cohort-status", "empty", "No data yet: no entity had its first event in this window.");
      return;
    }
    const values = c.cohorts.flatMap((row) => row.values).filter((v) => v !== null);
    const max = c.metric === "share" ? 1 : Math.max(1e-9, ...values);
    setStatus("cohort-status", "", `${c.cohorts.length} cohort(s) by ${c.period}; cells: ${c.metric.replace(/_/g, " ")}` +
      "; hatched cells are periods not observed yet.");
    const head = el("tr", {}, el("th", { class: "row", text: "Cohort" }), el("th", { text: "Size" }));
    for (const off of c.offsets) head.append(el("th", { text: off === 0 ? c.period + " 0" : "+" + off }));
    table.append(head);
    c.cohorts.forEach((row, i) => {
      const tr = el("tr", { "data-testid": `cohort-row-${i}`, "data-period": row.period },
        el("th", { class: "row", text: row.period }), el("td", { class: "size", "data-testid": "size", text: int(row.size) }));
      row.values.forEach((v, j) => {
        const td = el("td", { "data-testid": `cohort-cell-${i}-${j}`, "data-value": v === null ? "null" : v, text: cellText(v, c.metric) });
        if (v === null) td.className = "unobserved";
        else {
          const t = Math.max(0, Math.min(1, v / max));
          td.style.background = `rgba(23, 92, 211, ${(0.06 + 0.84 * t).toFixed(3)})`;
          td.style.color = t > 0.5 ? "#fff" : "var(--ink)";
        }
        tr.append(td);
      });
      table.append(tr);
    });
  }

  // -- segments --------------------------------------------------------------------------------

  function renderSegments(s) {
    const table = $("segments");
    const devices = $("segment-devices");
    table.replaceChildren();
    devices.replaceChildren();
    $("segment-devices-box").hidden = !s.devices.length;
    if (!s.segments.length) {
      setStatus("segments-status", "empty",
        "No data yet: segments need the devices' hourly machine profiles (machine_profile events) in this window.");
      return;
    }
    setStatus("segments-status", "", `${s.devices.length} device(s) in ${s.k} segment(s).`);
    table.append(el("tr", {}, el("th", { text: "Segment" }), el("th", { class: "n", text: "Devices" }),
      el("th", { text: "Why" }), el("th", { class: "n", text: "MTBF" }), el("th", { class: "n", text: "MTTR" }),
      el("th", { class: "n", text: "Micro-stops/h" }), el("th", { text: "Members" })));
    for (const seg of s.segments) {
      const c = seg.centroid;
      table.append(el("tr", { "data-testid": `segment-${seg.id}`, "data-name": seg.name, "data-size": seg.size },
        el("td", { class: "segment-name", text: seg.name }),
        el("td", { class: "n", "data-testid": "size", text: int(seg.size) }),
        el("td", { text: seg.explanation }),
        el("td", { class: "n", text: duration(c.mtbf_s) }),
        el("td", { class: "n", text: duration(c.mttr_s) }),
        el("td", { class: "n", text: c.micro_stops_per_h === null ? "n/a" : c.micro_stops_per_h.toFixed(2) }),
        el("td", { class: "segment-devices", "data-testid": "members", text: seg.devices.join(", ") })));
    }
    devices.append(el("tr", {}, el("th", { text: "Device" }), el("th", { text: "Segment" }),
      el("th", { class: "n", text: "Run" }), el("th", { class: "n", text: "Failures" }), el("th", { class: "n", text: "MTBF" }),
      el("th", { class: "n", text: "MTTR" }), el("th", { class: "n", text: "A" }), el("th", { class: "n", text: "P" }),
      el("th", { class: "n", text: "Q" })));
    for (const d of s.devices) {
      devices.append(el("tr", { "data-testid": `segment-device-${d.gateway_id}/${d.device}`, "data-segment": d.segment_name },
        el("td", { text: `${d.gateway_id}/${d.device}` }), el("td", { text: d.segment_name }),
        el("td", { class: "n", text: duration(d.run_s) }), el("td", { class: "n", text: int(d.failures) }),
        el("td", { class: "n", text: duration(d.mtbf_s) }), el("td", { class: "n", text: duration(d.mttr_s) }),
        el("td", { class: "n", text: pct(d.availability) }), el("td", { class: "n", text: pct(d.performance) }),
        el("td", { class: "n", text: pct(d.quality) })));
    }
  }

  // -- loading ---------------------------------------------------------------------------------

  function funnelRequest(w) {
    return { from: w.from, to: w.to, ...FUNNELS[$("funnel-choice").value].request };
  }

  function cohortRequest(w) {
    const period = $("cohort-period").value;
    const periods = Math.max(1, Math.min(12, Math.ceil((w.to - w.from) / PERIOD_S[period])));
    return { from: w.from, to: w.to, period, periods, metric: $("cohort-metric").value,
      ...COHORTS[$("cohort-choice").value].request };
  }

  const SECTIONS = {
    overview: {
      ids: ["states-status", "gateways-status", "losses-status", "alarms-status", "oee-status"],
      load: (w) => api("GET", `/api/v1/analytics/overview?from=${w.from}&to=${w.to}`).then(renderOverview),
    },
    funnel: {
      ids: ["funnel-status"],
      load: (w) => api("POST", "/api/v1/analytics/funnel", funnelRequest(w))
        .then((f) => renderFunnel(f, FUNNELS[$("funnel-choice").value])),
    },
    cohort: {
      ids: ["cohort-status"],
      load: (w) => api("POST", "/api/v1/analytics/cohort", cohortRequest(w)).then(renderCohort),
    },
    segments: {
      ids: ["segments-status"],
      load: (w) => api("GET", `/api/v1/analytics/segments?from=${w.from}&to=${w.to}&k=4&period=hour`).then(renderSegments),
    },
  };

  async function load(names) {
    if (!state.key) {
      askKey(null);
      document.body.dataset.loaded = "no-key";
      return;
    }
    const w = timeWindow();
    $("window-text").textContent = `${when(w.from)} \u2013 ${when(w.to)}`;
    document.body.dataset.loaded = "loading";
    let refused = false;
    const problems = [];
    await Promise.all((names || Object.keys(SECTIONS)).map(async (name) => {
      const section = SECTIONS[name];
      for (const id of section.ids) if (!$(id).textContent) setStatus(id, "loading", "Loading\u2026");
      try {
        await section.load(w);
      } catch (error) {
        problems.push(error.message);
        for (const id of section.ids) refused = failed(id, error) || refused;
      }
    }));
    const banner = $("banner");
    if (refused) {
      banner.textContent = "The collector refused the API key (missing, unknown or revoked): enter another one.";
      banner.hidden = false;
      askKey("That key was refused.");
    } else if (problems.length) {
      banner.textContent = "Some data could not be loaded: " + problems[0];
      banner.hidden = false;
    } else {
      banner.hidden = true;
      $("key-panel").hidden = true;
    }
    $("updated").textContent = "updated " + new Date().toLocaleTimeString();
    document.body.dataset.loaded = problems.length ? "error" : "ok";
  }

  function schedule() {
    clearInterval(state.timer);
    if (!state.fixed) state.timer = setInterval(() => { if (!document.hidden) load(); }, REFRESH_MS);
  }

  function init() {
    for (const [value, f] of Object.entries(FUNNELS)) $("funnel-choice").append(el("option", { value, text: f.label }));
    for (const [value, c] of Object.entries(COHORTS)) $("cohort-choice").append(el("option", { value, text: c.label }));
    const query = new URLSearchParams(location.search);
    if (query.get("funnel") in FUNNELS) $("funnel-choice").value = query.get("funnel");
    if (query.get("cohort") in COHORTS) $("cohort-choice").value = query.get("cohort");
    if (["day", "week", "month"].includes(query.get("period"))) $("cohort-period").value = query.get("period");
    const from = parseInstant(query.get("from") || ""), to = parseInstant(query.get("to") || "");
    if (from !== null && to !== null && to > from) {
      state.fixed = { from, to };
      $("range").append(el("option", { value: "fixed", text: "as in the link" }));
      $("range").value = "fixed";
      $("range").disabled = true;
      $("range").title = "fixed by the link (from, to)";
    }
    state.key = loadKey();
    $("range").addEventListener("change", () => load());
    $("refresh").addEventListener("click", () => load());
    $("funnel-choice").addEventListener("change", () => load(["funnel"]));
    for (const id of ["cohort-choice", "cohort-period", "cohort-metric"]) $(id).addEventListener("change", () => load(["cohort"]));
    $("change-key").addEventListener("click", () => askKey(null));
    $("key-cancel").addEventListener("click", () => { $("key-panel").hidden = true; });
    $("key-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const key = $("key-input").value.trim();
      if (!key) return;
      state.key = key;
      try { localStorage.setItem(KEY_STORE, key); } catch (e) { /* kept in memory only */ }
      $("key-input").value = "";
      $("key-panel").hidden = true;
      load();
    });
    schedule();
    load();
  }

  init();
})();
