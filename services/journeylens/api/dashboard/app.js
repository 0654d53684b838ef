// JourneyLens dashboard: plain JavaScript, no dependencies, SVG drawn here. Served by the API
// (/static/app.js); everything it loads comes from the same origin (see the CSP header).
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";
const TOKEN_KEY = "journeylens.token";
const DEV_COOKIE = "journeylens_dev_token";
const RANGES = { "1h": 1, "6h": 6, "24h": 24, "7d": 168, "30d": 720 };
const CHARTS = [
  ["rum.lcp_ms.p75", "LCP p75", "ms"],
  ["rum.inp_ms.p75", "INP p75", "ms"],
  ["rum.cls.p75", "CLS p75", ""],
  ["rum.error_rate", "Error rate", "%"],
  ["rum.apdex", "Apdex", ""],
  ["synthetic.availability", "Synthetic availability", "%"],
  ["rum.page_views", "Page views", ""],
  ["funnel.completion_rate", "Completion rate", "%"],
];
const HEAT_COLUMNS = [
  ["lcp_p75_ms", "rum.lcp_ms.p75", "LCP p75", "ms"],
  ["inp_p75_ms", "rum.inp_ms.p75", "INP p75", "ms"],
  ["cls_p75", "rum.cls.p75", "CLS p75", ""],
  ["error_rate", "rum.error_rate", "Errors", "%"],
  ["apdex", "rum.apdex", "Apdex", ""],
];

// ------------------------------------------------------------------------------ helpers

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "text") node.textContent = value;
    else if (key === "onclick") node.addEventListener("click", value);
    else if (key === "onchange") node.addEventListener("change", value);
    else node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value !== null && value !== undefined) node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function fmt(value, unit) {
  if (value === null || value === undefined) return "–";
  if (unit === "%") return (value * 100).toFixed(value < 0.1 ? 2 : 1) + " %";
  if (unit === "ms") return value >= 10000 ? (value / 1000).toFixed(1) + " s" : Math.round(value) + " ms";
  if (unit === "money") return value.toLocaleString("en", { maximumFractionDigits: 0 });
  if (Math.abs(value) >= 1000) return Math.round(value).toLocaleString("en");
  return Number(value.toFixed(value < 1 ? 3 : 1)).toString();
}

function time(iso) {
  const d = new Date(iso);
  return d.toISOString().slice(5, 16).replace("T", " ");
}

function token() {
  const cookie = document.cookie.split("; ").find((c) => c.startsWith(DEV_COOKIE + "="));
  if (cookie) return decodeURIComponent(cookie.slice(DEV_COOKIE.length + 1));
  return localStorage.getItem(TOKEN_KEY);
}

class Unauthorized extends Error {}

async function api(path, params) {
  const url = new URL(path, location.origin);
  for (const [k, v] of Object.entries(params || {})) {
    if (v !== null && v !== undefined) url.searchParams.set(k, v);
  }
  const response = await fetch(url, { headers: { Authorization: "Bearer " + token() } });
  if (response.status === 401) throw new Unauthorized("token refused");
  const body = await response.json();
  if (!response.ok) throw new Error(body.detail || response.statusText);
  return body;
}

function rangeParams() {
  const key = new URLSearchParams(location.search).get("range") || "6h";
  const hours = RANGES[key] || 6;
  const to = new Date();
  const from = new Date(to.getTime() - hours * 3600 * 1000);
  return { key, params: { from: from.toISOString(), to: to.toISOString() } };
}

// ------------------------------------------------------------------------------- charts

function bandRects(band, y, x0, x1, yTop, yBottom) {
  if (!band) return [];
  const clamp = (v) => Math.max(yTop, Math.min(yBottom, v));
  const gy = clamp(y(band.good));
  const py = clamp(y(band.poor));
  const rect = (cls, a, b) =>
    svg("rect", { class: cls, x: x0, width: x1 - x0, y: Math.min(a, b), height: Math.abs(b - a) });
  const lines = [
    svg("line", { class: "limit good", x1: x0, x2: x1, y1: gy, y2: gy }),
    svg("line", { class: "limit poor", x1: x0, x2: x1, y1: py, y2: py }),
  ];
  if (band.direction === "above") {
    return [rect("band-good", yBottom, gy), rect("band-warn", gy, py), rect("band-poor", py, yTop), ...lines];
  }
  return [rect("band-good", yTop, gy), rect("band-warn", gy, py), rect("band-poor", py, yBottom), ...lines];
}

function lineChart(series, title, unit) {
  const W = 560, H = 190, L = 58, R = 12, T = 12, B = 26;
  const t0 = new Date(series.from).getTime();
  const t1 = new Date(series.to).getTime();
  const values = series.points.map((p) => p.value).filter((v) => v !== null);
  const ratio = unit === "%" || series.metric === "rum.apdex";
  let top = Math.max(1e-9, ...values);
  if (series.threshold && series.threshold.direction === "above") top = Math.max(top, series.threshold.poor * 1.1);
  if (ratio && series.metric !== "rum.error_rate") top = 1;
  top *= ratio ? 1 : 1.08;
  const x = (t) => L + ((t - t0) / Math.max(1, t1 - t0)) * (W - L - R);
  const y = (v) => T + (1 - v / top) * (H - T - B);
  const parts = [];
  parts.push(...bandRects(series.threshold, y, L, W - R, T, H - B));
  for (let i = 0; i <= 4; i++) {
    const v = (top * i) / 4;
    parts.push(svg("line", { class: "axis", x1: L - 4, x2: L, y1: y(v), y2: y(v) }));
    parts.push(svg("text", { x: L - 6, y: y(v) + 4, "text-anchor": "end" }, fmt(v, unit)));
  }
  parts.push(svg("line", { class: "axis", x1: L, x2: L, y1: T, y2: H - B }));
  parts.push(svg("line", { class: "axis", x1: L, x2: W - R, y1: H - B, y2: H - B }));
  parts.push(svg("text", { x: L, y: H - 8 }, time(series.from)));
  parts.push(svg("text", { x: W - R, y: H - 8, "text-anchor": "end" }, time(series.to)));
  let d = "";
  let pen = false;
  const dots = [];
  for (const p of series.points) {
    if (p.value === null) { pen = false; continue; }
    const px = x(new Date(p.t).getTime()).toFixed(1);
    const py = y(p.value).toFixed(1);
    d += (pen ? "L" : "M") + px + "," + py;
    pen = true;
    dots.push(svg("circle", { class: "pt", cx: px, cy: py, r: 2.5 },
      svg("title", {}, time(p.t) + "  " + fmt(p.value, unit))));
  }
  if (d) parts.push(svg("path", { class: "series", d }));
  parts.push(...dots);
  if (!values.length) parts.push(svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle" }, "no data"));
  const last = values.length ? values[values.length - 1] : null;
  return el("div", { class: "card chart", "data-metric": series.metric },
    el("div", { class: "head" },
      el("h3", { text: title }),
      el("span", { class: "muted", text: `${fmt(last, unit)} · ${series.resolution} · ${series.source}` })),
    svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": title }, parts));
}

function barChart(rows, { label, value, max, unit, rating, text }) {
  const W = 560, rowH = 26, L = 150, R = 90;
  const H = Math.max(rowH, rows.length * rowH) + 6;
  const top = max !== undefined ? max : Math.max(1, ...rows.map(value));
  const parts = rows.map((row, i) => {
    const w = ((W - L - R) * (value(row) || 0)) / (top || 1);
    const y = 4 + i * rowH;
    return svg("g", {},
      svg("text", { class: "label", x: L - 8, y: y + 15, "text-anchor": "end" }, label(row)),
      svg("rect", { class: "bar " + (rating ? rating(row) : ""), x: L, y, width: Math.max(0, w).toFixed(1), height: rowH - 8 }),
      svg("text", { x: L + Math.max(0, w) + 6, y: y + 15 }, text ? text(row) : fmt(value(row), unit)));
  });
  return svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "bars" }, parts);
}

function heatmap(items, journeyHasData) {
  const W = 560, rowH = 26, L = 120, colW = (W - L) / HEAT_COLUMNS.length;
  const H = 24 + Math.max(1, items.length) * rowH;
  const parts = HEAT_COLUMNS.map(([, , title], c) =>
    svg("text", { x: L + c * colW + colW / 2, y: 14, "text-anchor": "middle" }, title));
  items.forEach((row, r) => {
    const y = 22 + r * rowH;
    parts.push(svg("text", { class: "label", x: L - 8, y: y + 16, "text-anchor": "end" }, row.value));
    HEAT_COLUMNS.forEach(([field, metric, , unit], c) => {
      const rating = row.ratings[metric] || "no_data";
      parts.push(svg("rect", { class: "cell " + rating, x: L + c * colW + 1, y, width: colW - 2, height: rowH - 2, rx: 3 }));
      parts.push(svg("text", { class: "cell-text", x: L + c * colW + colW / 2, y: y + 16, "text-anchor": "middle" }, fmt(row[field], unit)));
    });
  });
  if (!items.length) parts.push(svg("text", { x: W / 2, y: 40, "text-anchor": "middle" }, journeyHasData ? "no segments" : "no data"));
  return svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "heatmap" }, parts);
}

// ------------------------------------------------------------------------------- pieces

function badge(text, cls) {
  return el("span", { class: "badge " + (cls || text), text: String(text).replace("_", " ") });
}

function vitalsRow(vitals) {
  return el("div", { class: "vitals" }, vitals.map((v) =>
    el("div", { class: "vital " + v.rating, title: `threshold ${v.threshold.good} / poor ${v.threshold.poor}` },
      el("b", { text: v.name.toUpperCase() }), fmt(v.p75, v.name === "cls" ? "" : "ms"))));
}

function incidentBox(incident) {
  const evidence = [
    incident.suspected_step && `step ${incident.suspected_step}`,
    incident.suspected_dependency && `dependency ${incident.suspected_dependency}`,
    incident.segment_dimension && `${incident.segment_dimension}=${incident.segment_value}`,
    incident.failing_locations.length && `locations ${incident.failing_locations.join(", ")}`,
  ].filter(Boolean).join(" · ");
  return el("div", { class: "incident " + incident.status },
    el("div", { class: "head" },
      el("strong", { text: incident.title }),
      badge(incident.status)),
    el("div", {}, incident.summary),
    el("div", { class: "kv" },
      el("div", {}, el("b", { text: "Revenue at risk" }),
        el("span", { class: "money", text: `${fmt(incident.revenue_at_risk, "money")} ${incident.currency}` })),
      el("div", {}, el("b", { text: "Sessions affected" }), fmt(incident.sessions_affected)),
      el("div", {}, el("b", { text: "Scope" }), incident.scope),
      el("div", {}, el("b", { text: "Since" }), time(incident.started_at))),
    evidence ? el("div", { class: "muted" }, "Evidence: " + evidence) : null,
    incident.signals.length
      ? el("div", { class: "muted" }, incident.signals.map((s) =>
          `${s.kind} ${s.step} ${s.metric} = ${fmt(s.value)}${s.threshold !== null ? " (threshold " + fmt(s.threshold) + ")" : ""}`).join(" · "))
      : null);
}

function table(headers, rows) {
  return el("table", {},
    el("thead", {}, el("tr", {}, headers.map(([h, cls]) => el("th", { class: cls, text: h })))),
    el("tbody", {}, rows.map((cells) => el("tr", {}, cells.map(([v, cls]) => el("td", { class: cls }, v))))));
}

// -------------------------------------------------------------------------------- pages

async function overview(main) {
  const [journeys, incidents] = await Promise.all([
    api("/api/v1/journeys"),
    api("/api/v1/incidents", { limit: 20 }),
  ]);
  main.replaceChildren(
    el("h1", { text: "Journeys" }),
    el("p", { class: "muted", text: `as of ${time(journeys.generated_at)} UTC` }),
    el("div", { class: "grid", id: "journeys" }, journeys.items.map((j) =>
      el("div", { class: "card journey", "data-journey": j.id },
        el("div", { class: "head" },
          el("h3", {}, el("a", { href: `/journeys/${encodeURIComponent(j.id)}`, text: j.name })),
          badge(j.status)),
        el("div", { class: "muted" }, `${j.category} · ${j.criticality}` + (j.window_start ? ` · last window ${time(j.window_start)}` : "")),
        vitalsRow(j.vitals),
        el("div", { class: "kv" },
          el("div", {}, el("b", { text: "Errors" }), fmt(j.error_rate, "%")),
          el("div", {}, el("b", { text: "Apdex" }), fmt(j.apdex)),
          el("div", {}, el("b", { text: "Availability 1h" }), fmt(j.availability, "%")),
          el("div", {}, el("b", { text: "Revenue at risk" }), j.open_incidents.length ? `${fmt(j.revenue_at_risk, "money")} ${j.currency}` : "–")),
        j.reasons.length ? el("div", { class: "reasons", text: j.reasons.join("; ") }) : null,
        j.open_incidents.map(incidentBox)))),
    el("h2", { class: "section-title", text: "Incidents" }),
    el("div", { class: "card" }, incidents.items.length
      ? incidents.items.map(incidentBox)
      : el("p", { class: "muted", text: "No incidents." })));
}

async function journeyPage(main, id) {
  const range = rangeParams();
  const rp = range.params;
  const dimension = new URLSearchParams(location.search).get("dimension") || "country";
  const [journeys, funnel, deps, locations, breakdown, compare, incidents, ...series] = await Promise.all([
    api("/api/v1/journeys"),
    api(`/api/v1/journeys/${encodeURIComponent(id)}/funnel`, rp),
    api(`/api/v1/journeys/${encodeURIComponent(id)}/dependencies`, rp),
    api(`/api/v1/journeys/${encodeURIComponent(id)}/locations`, rp),
    api(`/api/v1/journeys/${encodeURIComponent(id)}/breakdown`, { ...rp, dimension }),
    api(`/api/v1/journeys/${encodeURIComponent(id)}/compare`, rp),
    api("/api/v1/incidents", { journey: id, limit: 20 }),
    ...CHARTS.map(([metric]) => api(`/api/v1/journeys/${encodeURIComponent(id)}/timeseries`, { ...rp, metric })),
  ]);
  const j = journeys.items.find((item) => item.id === id);
  const dimSelect = el("select", { class: "select", id: "dimension", onchange: (e) => {
    const q = new URLSearchParams(location.search); q.set("dimension", e.target.value);
    location.search = q.toString();
  } }, ["country", "device_class", "browser", "connection_type"].map((d) =>
    el("option", { value: d, selected: d === dimension ? "selected" : null, text: d })));
  main.replaceChildren(
    el("p", {}, el("a", { href: "/", text: "← all journeys" })),
    el("div", { class: "head" },
      el("h1", { text: j.name }), badge(j.status)),
    el("div", { class: "muted" }, `${j.category} · ${j.criticality} · ${j.value_per_completion} ${j.currency} per completion · scope ${j.scope}`),
    vitalsRow(j.vitals),
    j.reasons.length ? el("div", { class: "reasons", text: j.reasons.join("; ") }) : null,
    el("div", { class: "grid2", id: "charts" }, series.map((s, i) => lineChart(s, CHARTS[i][1], CHARTS[i][2]))),
    el("div", { class: "grid2" },
      el("div", { class: "card", id: "funnel" },
        el("h2", { text: `Funnel · completion ${fmt(funnel.completion_rate, "%")} (${funnel.sessions_completed} of ${funnel.sessions_entered} sessions)` }),
        barChart(funnel.steps, { label: (s) => s.name || s.step, value: (s) => s.sessions_entered,
          text: (s) => `${s.sessions_entered}` + (s.share_of_first !== null ? ` · ${fmt(s.share_of_first, "%")}` : "") })),
      el("div", { class: "card", id: "locations" },
        el("h2", { text: "Synthetic availability per location" }),
        locations.items.length
          ? barChart(locations.items, { label: (r) => r.location, value: (r) => r.availability, max: 1, unit: "%",
              rating: (r) => (r.availability === null ? "" : r.availability >= j.availability_threshold ? "good" : "poor"),
              text: (r) => `${fmt(r.availability, "%")} (${r.runs - r.failures}/${r.runs})` })
          : el("p", { class: "muted", text: "No probe runs in range." })),
      el("div", { class: "card", id: "heatmap" },
        el("h2", {}, "Segments by", dimSelect),
        heatmap(breakdown.items, true)),
      el("div", { class: "card", id: "dependencies" },
        el("h2", { text: "Dependencies by impact" }),
        deps.items.length
          ? table([["Host"], ["Provider"], ["Requests", "num"], ["Failures", "num"], ["Failure rate", "num"], ["p75", "num"]],
              deps.items.map((d) => [[d.host], [d.provider || "–"], [fmt(d.requests), "num"], [fmt(d.failures), "num"],
                [fmt(d.failure_rate, "%"), "num"], [fmt(d.p75_ms, "ms"), "num"]]))
          : el("p", { class: "muted", text: "No dependency timings in range." })),
      el("div", { class: "card wide", id: "compare" },
        el("h2", { text: "RUM and synthetic per step" }),
        table([["Step"], ["Views", "num"], ["LCP p75", "num"], ["Errors", "num"], ["Apdex", "num"], ["Runs", "num"], ["Availability", "num"], ["Probe p95", "num"]],
          compare.steps.map((s) => [[s.name || s.step], [fmt(s.rum.page_views), "num"], [fmt(s.rum.lcp_p75_ms, "ms"), "num"],
            [fmt(s.rum.error_rate, "%"), "num"], [fmt(s.rum.apdex), "num"], [fmt(s.synthetic.runs), "num"],
            [fmt(s.synthetic.availability, "%"), "num"], [fmt(s.synthetic.duration_p95_ms, "ms"), "num"]]))),
      el("div", { class: "card", id: "incidents" },
        el("h2", { text: "Incidents" }),
        incidents.items.length ? incidents.items.map(incidentBox) : el("p", { class: "muted", text: "No incidents." }))));
  const nav = document.getElementById("range");
  nav.hidden = false;
  nav.replaceChildren(...Object.keys(RANGES).map((key) =>
    el("button", { type: "button", class: key === range.key ? "on" : null, text: key, onclick: () => {
      const q = new URLSearchParams(location.search); q.set("range", key); location.search = q.toString();
    } })));
}

function askToken(main, message) {
  main.replaceChildren(document.getElementById("login").content.cloneNode(true));
  document.getElementById("login-error").textContent = message || "";
  document.getElementById("login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    localStorage.setItem(TOKEN_KEY, document.getElementById("token").value.trim());
    start();
  });
}

async function start() {
  const main = document.getElementById("main");
  const forget = document.getElementById("forget");
  if (!token()) return askToken(main);
  forget.hidden = false;
  forget.onclick = () => { localStorage.removeItem(TOKEN_KEY); askToken(main); };
  const match = location.pathname.match(/^\/journeys\/([^/]+)$/);
  try {
    if (match) await journeyPage(main, decodeURIComponent(match[1]));
    else await overview(main);
    document.body.dataset.ready = "true";
  } catch (error) {
    if (error instanceof Unauthorized) {
      localStorage.removeItem(TOKEN_KEY);
      return askToken(main, "The API refused this token.");
    }
    main.replaceChildren(el("p", { class: "error", text: "Could not load: " + error.message }));
    document.body.dataset.ready = "error";
  }
}

document.addEventListener("DOMContentLoaded", start);
