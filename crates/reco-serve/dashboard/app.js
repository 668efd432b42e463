// The reco serve dashboard: plain JavaScript over the server's own JSON API, charts drawn as
// SVG here (nothing is fetched from elsewhere). Every panel loads on its own, so one failing
// route leaves the others readable.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const REFRESH_MS = 30000;
const state = { experiment: null, titles: new Map() };

// ---- API -----------------------------------------------------------------------------------

function key() {
  return sessionStorage.getItem("reco-key") || "";
}

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function api(path) {
  const headers = { Accept: "application/json" };
  if (key()) headers["Authorization"] = "Bearer " + key();
  const r = await fetch(path, { headers });
  let body = null;
  try {
    body = await r.json();
  } catch (_) {
    body = null;
  }
  if (r.status === 401) {
    document.getElementById("key-form").hidden = false;
    throw new ApiError(401, "this server needs its write key: enter it above");
  }
  if (!r.ok) {
    const msg = body && body.error ? body.error.message : r.statusText;
    throw new ApiError(r.status, msg);
  }
  return body;
}

// ---- formatting and DOM --------------------------------------------------------------------

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null) e.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function svg(tag, attrs, ...children) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

const pct = (x, d = 1) => (x === null || x === undefined ? "–" : (100 * x).toFixed(d) + "%");
const num = (x, d = 3) => (x === null || x === undefined ? "–" : Number(x).toFixed(d));
const when = (t) => (t ? new Date(t * 1000).toLocaleString() : "–");
const clock = (t) => {
  const d = new Date(t * 1000);
  return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
};

function fill(id, ...children) {
  const e = document.getElementById(id);
  e.replaceChildren(...children.flat());
  return e;
}

function failed(id, err) {
  fill(id, el("p", { class: "error" }, err.message || String(err)));
}

async function title(id) {
  if (state.titles.has(id)) return state.titles.get(id);
  let t = null;
  try {
    t = (await api("/v1/items/" + encodeURIComponent(id))).title || null;
  } catch (_) {
    t = null;
  }
  state.titles.set(id, t);
  return t;
}

async function itemLabel(id) {
  const t = await title(id);
  return t ? `${t} (${id})` : id;
}

// ---- charts --------------------------------------------------------------------------------

const W = 480;
const H = 200;
const PAD = { l: 44, r: 12, t: 10, b: 26 };

function scale(d0, d1, r0, r1) {
  const span = d1 - d0 || 1;
  return (v) => r0 + ((v - d0) / span) * (r1 - r0);
}

function axes(g, x, y, xs, ys, fmtX, fmtY) {
  g.append(svg("line", { class: "axis", x1: PAD.l, x2: W - PAD.r, y1: H - PAD.b, y2: H - PAD.b }));
  for (const v of ys) {
    g.append(svg("line", { class: "axis", x1: PAD.l, x2: W - PAD.r, y1: y(v), y2: y(v), "stroke-opacity": 0.5 }));
    g.append(svg("text", { x: PAD.l - 6, y: y(v) + 4, "text-anchor": "end" }, fmtY(v)));
  }
  for (const v of xs) {
    g.append(svg("text", { x: x(v), y: H - 8, "text-anchor": "middle" }, fmtX(v)));
  }
}

function ticks(lo, hi, n) {
  if (hi <= lo) return [lo];
  const out = [];
  for (let k = 0; k <= n; k++) out.push(lo + ((hi - lo) * k) / n);
  return out;
}

// A time series: `points` are {t, y, lo, hi} (lo/hi optional, drawn as a band); `second` an
// optional second series {t, y} on its own right-hand scale.
function lineChart(points, opts) {
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": opts.label });
  const have = points.filter((p) => p.y !== null && p.y !== undefined);
  if (!points.length) return root;
  const t0 = points[0].t;
  const t1 = points[points.length - 1].t;
  const x = scale(t0, t1, PAD.l, W - PAD.r);
  const top = Math.max(opts.min || 0, ...have.map((p) => (p.hi !== undefined ? p.hi : p.y)));
  const y = scale(0, top || 1, H - PAD.b, PAD.t);
  const g = svg("g", {});
  const xt = ticks(t0, t1, Math.min(4, points.length - 1) || 1);
  axes(g, x, y, xt, ticks(0, top || 1, 3), clock, opts.fmt);
  if (have.some((p) => p.lo !== undefined)) {
    const up = have.map((p) => `${x(p.t)},${y(p.hi)}`);
    const down = have.map((p) => `${x(p.t)},${y(p.lo)}`).reverse();
    g.append(svg("polygon", { class: "band", points: up.concat(down).join(" ") }));
  }
  if (opts.threshold !== undefined && opts.threshold !== null) {
    const ty = y(Math.min(opts.threshold, top || 1));
    g.append(svg("line", { class: "threshold", x1: PAD.l, x2: W - PAD.r, y1: ty, y2: ty }));
  }
  g.append(svg("polyline", { class: "line", points: have.map((p) => `${x(p.t)},${y(p.y)}`).join(" ") }));
  for (const p of have) g.append(svg("circle", { class: "dot", cx: x(p.t), cy: y(p.y), r: 2.5 }));
  if (opts.second) {
    const s = opts.second.filter((p) => p.y !== null && p.y !== undefined);
    if (s.length) {
      const lo = Math.min(0, ...s.map((p) => p.y));
      const hi = Math.max(...s.map((p) => p.y), lo + 0.1);
      const y2 = scale(lo, hi, H - PAD.b, PAD.t);
      g.append(svg("polyline", { class: "line second", points: s.map((p) => `${x(p.t)},${y2(p.y)}`).join(" ") }));
      g.append(svg("text", { x: W - PAD.r, y: PAD.t + 8, "text-anchor": "end" }, `${opts.secondLabel} ${num(lo, 2)}…${num(hi, 2)}`));
    }
  }
  root.append(g);
  return root;
}

// Stacked shares per bucket: `rows` are {t, parts: [[name, share], …]}.
function stackedChart(rows, label) {
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": label });
  if (!rows.length) return root;
  const bw = (W - PAD.l - PAD.r) / rows.length;
  const y = scale(0, 1, H - PAD.b, PAD.t);
  const g = svg("g", {});
  axes(g, (i) => PAD.l + bw * (i + 0.5), y, ticks(0, rows.length - 1, Math.min(4, rows.length - 1) || 1).map(Math.round), [0, 0.5, 1], (i) => clock(rows[i].t), (v) => pct(v, 0));
  rows.forEach((r, i) => {
    let acc = 0;
    for (const [name, share] of r.parts) {
      if (share <= 0) continue;
      g.append(svg("rect", { x: PAD.l + bw * i + 1, width: Math.max(bw - 2, 1), y: y(acc + share), height: y(acc) - y(acc + share), class: "g-" + name },
        svg("title", {}, `${name}: ${pct(share)}`)));
      acc += share;
    }
  });
  root.append(g);
  return root;
}

// Horizontal bars with 95% whiskers: `bars` are {label, value, lo, hi}.
function barChart(bars, opts) {
  const rowH = 26;
  const h = PAD.t + bars.length * rowH + 10;
  const root = svg("svg", { viewBox: `0 0 ${W} ${h}`, role: "img", "aria-label": opts.label });
  const left = 110;
  const top = Math.max(opts.min || 0, ...bars.map((b) => (b.hi !== undefined ? b.hi : b.value)), 1e-9);
  const x = scale(0, top, left, W - 70);
  bars.forEach((b, i) => {
    const cy = PAD.t + i * rowH;
    root.append(svg("text", { x: left - 8, y: cy + 15, "text-anchor": "end" }, b.label));
    root.append(svg("rect", { class: "bar" + (b.over ? " over" : ""), x: left, y: cy + 4, height: rowH - 10, width: Math.max(x(b.value) - left, 1) }));
    if (b.lo !== undefined) {
      root.append(svg("line", { class: "whisker", x1: x(b.lo), x2: x(b.hi), y1: cy + 12, y2: cy + 12 }));
    }
    root.append(svg("text", { x: W - 64, y: cy + 15 }, opts.fmt(b.value)));
  });
  if (opts.threshold !== undefined) {
    const tx = x(Math.min(opts.threshold, top));
    root.append(svg("line", { class: "threshold", x1: tx, x2: tx, y1: PAD.t, y2: h - 6 }));
  }
  return root;
}

// Swatches: `entries` are [label, class of the swatch].
function legend(entries) {
  return el("div", { class: "legend" }, entries.map(([k, c]) => el("span", {}, el("i", { class: c }), k)));
}

// ---- panels --------------------------------------------------------------------------------

async function loadStatus() {
  const s = document.getElementById("status");
  try {
    const r = await fetch("/health/ready");
    const body = await r.json();
    if (r.ok) {
      s.textContent = `ready · version ${body.model_version}`;
      s.className = "badge good";
    } else {
      s.textContent = "not ready: " + (body.error ? body.error.message : r.statusText);
      s.className = "badge bad";
    }
  } catch (e) {
    s.textContent = "unreachable";
    s.className = "badge bad";
  }
}

function gateValue(m) {
  if (!m || !m.metric || !m.candidate || !m.candidate[m.metric]) return "–";
  const v = m.candidate[m.metric];
  return `${num(v.mean)} ± ${num(v.ci95)}`;
}

async function loadModels() {
  try {
    const versions = await api("/v1/models");
    if (!versions.length) {
      fill("models", el("p", { class: "muted" }, "No version trained yet."));
      return;
    }
    const metric = (versions.find((v) => v.metrics && v.metrics.metric) || {}).metrics;
    const rows = versions.map((v) =>
      el("tr", { class: v.status === "active" ? "selected" : "" },
        el("td", { class: "num" }, v.version),
        el("td", {}, el("span", { class: "badge " + (v.status === "active" ? "good" : v.status === "rejected" || v.status === "failed" ? "bad" : "") }, v.status)),
        el("td", {}, (v.spec && (v.spec.kind || v.spec.name)) || "model"),
        el("td", {}, when(v.created)),
        el("td", { class: "num" }, v.users),
        el("td", { class: "num" }, v.items),
        el("td", { class: "num" }, v.interactions),
        el("td", { class: "num" }, gateValue(v.metrics)),
        el("td", { class: "num" }, num(v.train_seconds, 1) + " s"),
        el("td", { class: "muted" }, v.message || "")));
    fill("models", el("table", { id: "models-table" },
      el("thead", {}, el("tr", {}, ["version", "status", "model", "created", "users", "items", "events", `hold-out ${metric ? metric.metric : "metric"}`, "training", "note"].map((h) => el("th", {}, h)))),
      el("tbody", {}, rows)));
  } catch (e) {
    failed("models", e);
  }
}

async function loadQuality() {
  const span = Number(document.getElementById("span").value);
  const buckets = span <= 3600 ? 12 : 24;
  try {
    const q = await api(`/v1/monitoring/quality?seconds=${span}&buckets=${buckets}`);
    document.getElementById("group-name").textContent = q.groups;
    const w = q.window;
    fill("alerts",
      el("span", { class: "alert" }, `latest window: ${w.impressions} lists, CTR ${pct(w.ctr.rate)}, conversion ${pct(w.conversion.rate)}`),
      q.alerts.length
        ? q.alerts.map((a) => el("span", { class: "alert" + (a.firing ? " firing" : ""), "data-alert": a.name },
            `${a.firing ? "▲ " : "✓ "}${a.name.replace("_", " ")} ${num(a.value)} (${a.kind} ${num(a.threshold)})`))
        : el("span", { class: "alert muted" }, "no alert thresholds configured"));
    const pts = q.series.map((p) => ({ t: p.start, y: p.impressions ? p.ctr.rate : null, lo: p.ctr.low, hi: p.ctr.high }));
    const ctrAlert = q.alerts.find((a) => a.name === "ctr");
    fill("ctr-chart", lineChart(pts, { label: "click-through over time", fmt: (v) => pct(v, 0), threshold: ctrAlert ? ctrAlert.threshold : null }));
    fill("coverage-chart",
      lineChart(q.series.map((p) => ({ t: p.start, y: p.impressions ? p.coverage : null })), {
        label: "coverage over time", fmt: (v) => pct(v, 0),
        second: q.series.map((p) => ({ t: p.start, y: p.popularity_lift })), secondLabel: "lift",
      }),
      legend([["coverage", "s-first"], ["popularity lift (right scale)", "s-second"]]));
    fill("exposure-chart",
      stackedChart(q.series.map((p) => ({ t: p.start, parts: p.exposure })), "exposure by popularity group"),
      legend([["head", "g-head"], ["mid", "g-mid"], ["tail", "g-tail"]]));
    const groups = w.by_group.map(([g, r]) => ({ label: g, value: r.rate, lo: r.low, hi: r.high }));
    fill("group-chart", groups.length
      ? barChart(groups, { label: "click-through by user group", fmt: (v) => pct(v) })
      : el("p", { class: "muted" }, "No lists for known users in the window."));
  } catch (e) {
    failed("alerts", e);
  }
}

async function loadExperiments() {
  try {
    const list = await api("/v1/experiments");
    if (!list.length) {
      fill("experiments", el("p", { class: "muted" }, "No experiment yet: POST /v1/experiments starts one."));
      return;
    }
    const rows = list.map((x) => el("tr", {
        class: "clickable" + (state.experiment === x.name ? " selected" : ""),
        "data-experiment": x.name,
        onclick: () => { state.experiment = x.name; loadExperiments(); },
      },
      el("td", {}, x.name),
      el("td", {}, el("span", { class: "badge " + (x.status === "running" ? "good" : "") }, x.status)),
      el("td", {}, x.spec.design || "split"),
      el("td", {}, (x.spec.arms || []).map((a) => `${a.name} (v${a.version})`).join(" vs ")),
      el("td", {}, when(x.created)),
      el("td", { class: "muted" }, x.message || "")));
    fill("experiments", el("table", { id: "experiments-table" },
      el("thead", {}, el("tr", {}, ["name", "status", "design", "arms", "started", "note"].map((h) => el("th", {}, h)))),
      el("tbody", {}, rows)));
    if (!state.experiment) state.experiment = list[0].name;
    await loadExperiment(state.experiment);
  } catch (e) {
    failed("experiments", e);
  }
}

function offlineValue(metrics) {
  if (!metrics || !metrics.metric || !metrics.candidate) return "–";
  const v = metrics.candidate[metrics.metric];
  return v ? `${metrics.metric} ${num(v.mean)}` : "–";
}

async function loadExperiment(name) {
  try {
    const r = await api("/v1/experiments/" + encodeURIComponent(name));
    const arms = r.arms.map((a) => el("tr", { "data-arm": a.name },
      el("td", {}, a.name, a.stopped ? el("span", { class: "badge bad" }, " stopped") : ""),
      el("td", { class: "num" }, a.version),
      el("td", { class: "num" }, a.impressions),
      el("td", { class: "num ctr" }, `${pct(a.ctr.rate, 2)} [${pct(a.ctr.low)}, ${pct(a.ctr.high)}]`),
      el("td", { class: "num" }, pct(a.conversion.rate, 2)),
      el("td", { class: "num" }, a.vs_control ? `${a.vs_control.diff >= 0 ? "+" : ""}${pct(a.vs_control.diff, 2)} [${pct(a.vs_control.low)}, ${pct(a.vs_control.high)}]` : "control"),
      el("td", { class: "num" }, a.vs_control ? num(a.vs_control.p_value) : ""),
      el("td", { class: "num" }, a.vs_control ? num(a.vs_control.p_sequential) : ""),
      el("td", {}, offlineValue(r.offline[a.name]))));
    const parts = [
      el("h3", {}, `Results of ${name}`),
      el("div", { class: "scroll" }, el("table", { id: "arms-table" },
        el("thead", {}, el("tr", {}, ["arm", "version", "lists", "CTR [95%]", "conversion", "vs control [95%]", "p", "p (sequential)", "offline"].map((h) => el("th", {}, h)))),
        el("tbody", {}, arms))),
      el("div", { class: "chart bars" }, barChart(r.arms.map((a) => ({ label: a.name, value: a.ctr.rate, lo: a.ctr.low, hi: a.ctr.high })), { label: "click-through per arm", fmt: (v) => pct(v, 2) })),
    ];
    if (r.preference) {
      const p = r.preference;
      parts.push(el("p", { id: "preference" }, `Interleaving: ${p.wins_first} lists favoured ${r.arms[0].name}, ${p.wins_second} favoured ${r.arms[1].name}, ${p.ties} ties; Δ = ${num(p.delta)}, p = ${num(p.p_value)}.`));
    }
    if (r.experiment.message) parts.push(el("p", { class: "muted" }, r.experiment.message));
    fill("experiment-detail", parts);
  } catch (e) {
    failed("experiment-detail", e);
  }
}

async function loadDrift() {
  try {
    const d = await api("/v1/monitoring/drift");
    if (d.model_version === null) {
      fill("drift", el("p", { class: "muted" }, "No active version to compare with."));
      return;
    }
    // Below min_events the indices are noise: shown, but neither red nor a verdict.
    const enough = d.events >= d.min_events;
    const bars = d.fields.map((f) => ({ label: f.field, value: f.psi, over: enough && f.psi > d.threshold }));
    const verdict = d.stale
      ? el("span", { id: "stale", class: "badge bad" }, "stale: retrain")
      : enough
        ? el("span", { id: "stale", class: "badge good" }, "fresh")
        : el("span", { id: "stale", class: "badge" }, `collecting: ${d.events} of ${d.min_events} events`);
    const detail = d.fields.map((f) => el("details", {},
      el("summary", {}, `${f.field}: PSI ${num(f.psi)}`),
      el("table", {}, el("thead", {}, el("tr", {}, el("th", {}, "bucket"), el("th", { class: "num" }, "training"), el("th", { class: "num" }, "recent"))),
        el("tbody", {}, bucketRows(f)))));
    fill("drift",
      el("p", {}, verdict, ` version ${d.model_version}, ${d.events} recent events, threshold ${d.threshold}`),
      el("div", { class: "chart bars" }, barChart(bars, { label: "drift per field", fmt: (v) => num(v), threshold: d.threshold, min: d.threshold * 1.2 })),
      detail);
  } catch (e) {
    failed("drift", e);
  }
}

function bucketRows(f) {
  const cur = new Map(f.current);
  const names = new Set(f.reference.map((r) => r[0]).concat(f.current.map((c) => c[0])));
  const ref = new Map(f.reference);
  return [...names].slice(0, 12).map((n) => el("tr", {}, el("td", {}, n), el("td", { class: "num" }, pct(ref.get(n) || 0)), el("td", { class: "num" }, pct(cur.get(n) || 0))));
}

async function loadPopular() {
  try {
    const r = await api("/v1/popular?n=10&preview=true");
    const items = await Promise.all(r.items.map(async (it) => el("li", {}, await itemLabel(it.id), el("span", { class: "muted" }, ` · ${num(it.score, 0)}`))));
    fill("popular", items);
  } catch (e) {
    failed("popular", e);
  }
}

function reasonText(r) {
  switch (r.kind) {
    case "item": return `because of ${r.item}`;
    case "users": return `${r.count} similar users`;
    case "feature": return `${r.field}: ${r.value}`;
    case "source": return `from ${r.source} (#${r.rank + 1})`;
    case "signal": return `${r.name}`;
    case "popular": return `popular (${r.count})`;
    default: return r.kind || JSON.stringify(r);
  }
}

async function lookUp(user) {
  const out = document.getElementById("user");
  out.replaceChildren(el("p", { class: "muted" }, "Loading…"));
  const enc = encodeURIComponent(user);
  const [profile, recs, exp] = await Promise.allSettled([
    api("/v1/users/" + enc),
    api(`/v1/recommend/${enc}?n=10&explain=true&preview=true`),
    api(`/v1/users/${enc}/export`),
  ]);
  const facts = el("dl", { class: "kv" });
  const add = (k, v) => facts.append(el("dt", {}, k), el("dd", {}, v));
  if (profile.status === "fulfilled") {
    add("events", profile.value.events);
    add("in model", profile.value.in_model ? "yes" : "no");
    for (const [k, v] of Object.entries(profile.value.fields || {})) add(k, Array.isArray(v) ? v.join(", ") : v);
  } else {
    add("profile", profile.reason.status === 404 ? "unknown user" : profile.reason.message);
  }
  if (exp.status === "fulfilled") {
    add("opted out", exp.value.opt_out ? "yes" : "no");
    add("experiment", exp.value.experiment ? exp.value.experiment.join(" / ") : "none");
  }
  const history = el("ol", { class: "items", id: "user-history" });
  if (exp.status === "fulfilled") {
    const events = exp.value.events.slice(-15).reverse();
    for (const e of events) history.append(el("li", {}, `${await itemLabel(e.item)} `, el("span", { class: "muted" }, `${e.type} · ${when(e.timestamp)}`)));
    if (!events.length) history.append(el("li", { class: "muted" }, "no events"));
  }
  const list = el("ol", { class: "items", id: "user-recommendations" });
  let note = null;
  if (recs.status === "fulfilled") {
    const r = recs.value;
    note = el("p", { class: "muted" }, `version ${r.model_version ?? "–"}` + (r.cold_start ? ` · cold start: ${r.cold_start}` : "") + (r.arm ? ` · arm ${r.arm}` : ""));
    for (const it of r.items) {
      list.append(el("li", {}, await itemLabel(it.id), it.new ? el("span", { class: "badge" }, " new") : "",
        it.reasons && it.reasons.length ? el("div", { class: "reasons" }, it.reasons.map(reasonText).join(" · ")) : ""));
    }
  } else {
    note = el("p", { class: "error" }, recs.reason.message);
  }
  out.replaceChildren(el("div", { class: "columns" },
    el("div", {}, el("h3", {}, `User ${user}`), facts),
    el("div", {}, el("h3", {}, "Recent history"), history),
    el("div", {}, el("h3", {}, "Recommendations"), note, list)));
}

// ---- wiring --------------------------------------------------------------------------------

async function refresh() {
  document.getElementById("error").hidden = true;
  await Promise.all([loadStatus(), loadModels(), loadQuality(), loadExperiments(), loadDrift(), loadPopular()]);
  document.body.dataset.loaded = String(Date.now());
}

document.getElementById("key-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  sessionStorage.setItem("reco-key", document.getElementById("key").value);
  refresh();
});
document.getElementById("span").addEventListener("change", loadQuality);
document.getElementById("user-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const u = document.getElementById("user-id").value.trim();
  if (!u) return;
  history.replaceState(null, "", "#user=" + encodeURIComponent(u));
  lookUp(u).catch((e) => failed("user", e));
});

refresh();
setInterval(refresh, REFRESH_MS);
const fromHash = /^#user=(.+)$/.exec(location.hash);
if (fromHash) {
  document.getElementById("user-id").value = decodeURIComponent(fromHash[1]);
  lookUp(decodeURIComponent(fromHash[1])).catch((e) => failed("user", e));
}
