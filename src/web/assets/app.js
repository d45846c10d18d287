// stampede's web UI. Every text that comes from the target or the script is written with
// textContent (never as HTML). The state arrives once a second over server-sent events;
// chart points are the run's complete seconds only, so the second still being counted is
// never drawn as a drop.
"use strict";

const $ = (id) => document.getElementById(id);
let doc = null;            // the latest state document
let run = -1;              // the test the points belong to
let resets = 0;            // statistics resets of that test
let points = new Map();    // second -> Second
let prefilled = false;
let editing = false;

async function post(path, body) {
  const r = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body || {}),
  });
  const answer = await r.json().catch(() => ({ error: r.statusText }));
  if (!r.ok) throw new Error(answer.error || r.statusText);
  return answer;
}

function cell(tr, text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  tr.appendChild(td);
  return td;
}

function fill(tbody, rows, make) {
  const body = document.querySelector(tbody);
  body.replaceChildren(...rows.map((r) => { const tr = document.createElement("tr"); make(tr, r); return tr; }));
}

const ms = (v) => (v == null ? "" : v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));
const latest = () => { let best = null; for (const p of points.values()) if (!best || p.second > best.second) best = p; return best; };

function mergePoints(d) {
  if (d.run !== run || (d.resets || 0) !== resets) {
    run = d.run; resets = d.resets || 0; points = new Map();
  }
  for (const p of d.recent || []) points.set(p.second, p);
}

// The script's scenarios as checkboxes (built once; names are set as text).
function offerScenarios(offered) {
  const box = $("f-scenarios");
  if (!offered || !offered.length || box.dataset.built) return;
  for (const s of offered) {
    const label = document.createElement("label");
    label.className = "choice";
    const input = document.createElement("input");
    input.type = "checkbox";
    input.checked = true;
    input.value = s.name;
    label.append(input, document.createTextNode(` ${s.name} (${s.executor})`));
    box.appendChild(label);
  }
  box.dataset.built = "1";
  box.hidden = false;
  for (const id of ["users-label", "rate-label"]) $(id).hidden = true;
  for (const id of ["f-users", "f-rate"]) $(id).required = false;
}
const byRate = () => document.querySelector("input[name=model]:checked").value === "rate";
// Which fields the form shows: the script's scenarios, users, or an arrival rate; while a
// test runs, only what can change.
function showFields() {
  const scenarios = !!$("f-scenarios").dataset.built || (doc && doc.model === "shape");
  const running = doc && (doc.status === "running");
  const rate = running && editing ? doc.target && doc.target.rate != null : byRate();
  $("shape-note").hidden = !(doc && doc.model === "shape");
  $("f-model").hidden = scenarios || editing;
  $("arrival-label").hidden = scenarios || !rate;
  $("max-label").hidden = scenarios || !rate || editing;
  for (const id of ["users-label", "rate-label"]) $(id).hidden = scenarios || rate;
  $("f-users").required = !(scenarios || rate);
  $("f-rate").required = !(scenarios || rate);
}
for (const r of document.querySelectorAll("input[name=model]")) r.addEventListener("change", showFields);

const chosenScenarios = () => $("f-scenarios").dataset.built
  ? [...$("f-scenarios").querySelectorAll("input:checked")].map((i) => i.value) : null;

function render(d) {
  doc = d;
  offerScenarios(d.scenarios_offered);
  $("status").textContent = d.status;
  $("status").className = "status " + d.status;
  $("script").textContent = d.script || "";
  const running = d.status === "running";
  const stopping = d.status === "stopping";
  $("stop").disabled = !running;
  $("reset").disabled = !running;
  if (!prefilled && d.defaults) {
    $("f-users").value = d.defaults.users;
    $("f-rate").value = d.defaults.spawn_rate;
    $("f-host").value = d.defaults.host || "";
    $("f-time").value = d.defaults.run_time_s || "";
    prefilled = true;
  }
  const idle = d.status === "ready" || d.status === "stopped";
  if (idle) editing = false;
  $("start-panel").hidden = !(d.status === "ready" || editing || (idle && $("start-panel").dataset.open === "1"));
  $("form-title").textContent = editing ? "Change the running test" : "Start a new test";
  $("start").hidden = editing;
  $("edit").hidden = !editing;
  $("host-label").hidden = editing;
  $("time-label").hidden = editing;
  showFields();
  if (!d.rows) return;
  mergePoints(d);
  const now = latest();
  const agg = d.rows[d.rows.length - 1] || { requests: 0, failures: 0 };
  $("m-users").textContent = d.users;
  $("m-rps").textContent = now ? now.requests : 0;
  const target = d.target && d.target.rate;
  $("m-arrivals-box").hidden = target == null;
  $("m-arrivals").textContent = now ? now.iterations : 0;
  $("m-target").textContent = target == null ? "" : +target.toFixed(1);
  $("m-fails").textContent = agg.requests ? ((100 * agg.failures) / agg.requests).toFixed(1) + "%" : "0%";
  const p = (row, label) => row.percentiles_ms[d.percentiles.indexOf(label)];
  fill("#stats tbody", d.rows, (tr, r) => {
    const last = r === agg ? now : now && now.by_name[`${r.method} ${r.name}`];
    cell(tr, r === agg ? "" : r.method);
    cell(tr, r.name);
    cell(tr, r.requests, "num");
    cell(tr, r.failures, r.failures ? "num bad" : "num");
    cell(tr, ms(p(r, "p50")), "num");
    cell(tr, ms(p(r, "p95")), "num");
    cell(tr, ms(p(r, "p99")), "num");
    cell(tr, ms(r.avg_ms), "num");
    cell(tr, ms(r.min_ms), "num");
    cell(tr, ms(r.max_ms), "num");
    cell(tr, r.requests ? Math.round(r.bytes / r.requests) : 0, "num");
    cell(tr, last ? last.requests : 0, "num");
    cell(tr, last ? last.failures : 0, "num");
    if (r === agg) tr.className = "total";
  });
  fill("#failures tbody", d.failures, (tr, f) => {
    cell(tr, f.count, "num bad"); cell(tr, f.kind); cell(tr, f.method); cell(tr, f.name); cell(tr, f.message);
  });
  $("n-failures").textContent = d.failures.length ? `(${d.failures.length})` : "";
  fill("#checks tbody", d.checks, (tr, c) => {
    cell(tr, c.name); cell(tr, c.passes, "num"); cell(tr, c.fails, c.fails ? "num bad" : "num");
  });
  fill("#thresholds tbody", d.thresholds, (tr, v) => {
    cell(tr, v.passed ? "✓" : "✗", v.passed ? "good" : "bad");
    cell(tr, v.threshold.text);
    cell(tr, v.measured == null ? "no data" : String(+v.measured.toFixed(3)), "num");
  });
  $("scenarios").hidden = !(d.scenarios && d.scenarios.length);
  fill("#scenarios tbody", d.scenarios || [], (tr, s) => {
    cell(tr, s.name); cell(tr, s.executor); cell(tr, s.progress); cell(tr, s.users, "num");
    cell(tr, s.iterations, "num");
    cell(tr, s.target_rate != null ? `${+s.target_rate.toFixed(1)} it/s` : s.target_users != null ? `${s.target_users} users` : "", "num");
    cell(tr, s.dropped, s.dropped ? "num bad" : "num");
  });
  $("warnings").textContent = (d.warnings || []).join("\n");
  $("log").textContent = (d.log || []).join("\n");
  draw();
}

// ---- charts: SVG polylines over the complete seconds -------------------------------
const SVGNS = "http://www.w3.org/2000/svg";
function chart(id, series) {
  const svg = $(id);
  const all = [...points.values()].sort((a, b) => a.second - b.second);
  const W = Math.max(400, Math.round(svg.clientWidth || 800)), H = 200, L = 48, B = 20;
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  const xs = all.map((p) => p.second);
  const x0 = xs[0] || 0, x1 = Math.max(xs[xs.length - 1] || 1, x0 + 1);
  let top = 0;
  for (const s of series) for (const p of all) top = Math.max(top, s.value(p) || 0);
  top = top > 0 ? top * 1.1 : 1;
  const nodes = [];
  const line = (x1_, y1_, x2_, y2_, cls) => { const l = document.createElementNS(SVGNS, "line"); l.setAttribute("x1", x1_); l.setAttribute("y1", y1_); l.setAttribute("x2", x2_); l.setAttribute("y2", y2_); l.setAttribute("class", cls); return l; };
  const text = (x, y, t, anchor) => { const e = document.createElementNS(SVGNS, "text"); e.setAttribute("x", x); e.setAttribute("y", y); e.setAttribute("text-anchor", anchor || "end"); e.textContent = t; return e; };
  for (let i = 0; i <= 4; i++) {
    const y = H - B - ((H - B - 10) * i) / 4;
    nodes.push(line(L, y, W, y, "grid"), text(L - 4, y + 4, String(+((top * i) / 4).toPrecision(3))));
  }
  nodes.push(text(L, H - 4, `${x0}s`, "start"), text(W, H - 4, `${x1}s`));
  for (const s of series) {
    const pts = all.filter((p) => s.value(p) != null)
      .map((p) => `${L + ((W - L) * (p.second - x0)) / (x1 - x0)},${H - B - ((H - B - 10) * s.value(p)) / top}`);
    const pl = document.createElementNS(SVGNS, "polyline");
    pl.setAttribute("points", pts.join(" "));
    pl.setAttribute("class", "series " + s.cls);
    nodes.push(pl);
  }
  svg.replaceChildren(...nodes);
}
function draw() {
  if ($("tab-charts").hidden) return;
  chart("chart-rps", [{ cls: "rps", value: (p) => p.requests }, { cls: "fails", value: (p) => p.failures }]);
  chart("chart-latency", [{ cls: "p50", value: (p) => p.p50_ms }, { cls: "p95", value: (p) => p.p95_ms }, { cls: "p99", value: (p) => p.p99_ms }]);
  const target = doc && doc.target && doc.target.rate;
  chart("chart-iterations", [
    { cls: "rps", value: (p) => p.iterations },
    ...(target != null ? [{ cls: "target", value: () => target }] : []),
  ]);
  chart("chart-users", [{ cls: "users", value: (p) => p.users }]);
}

// ---- controls ------------------------------------------------------------------------
function formError(e) { $("form-error").textContent = e ? e.message : ""; }

$("start-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  formError(null);
  if (editing) { $("edit").click(); return; }   // Enter while changing a running test
  const t = parseFloat($("f-time").value);
  if (byRate() && !(parseFloat($("f-arrival").value) >= 0)) {
    formError(new Error("Enter an arrival rate (iterations a second)."));
    return;
  }
  try {
    await post("/api/start", {
      users: parseInt($("f-users").value, 10),
      spawn_rate: parseFloat($("f-rate").value),
      host: $("f-host").value,
      run_time_s: t > 0 ? t : null,
      scenarios: chosenScenarios(),
      rate: byRate() ? parseFloat($("f-arrival").value) : null,
      max_users: byRate() ? parseInt($("f-max").value, 10) : null,
    });
    $("start-panel").dataset.open = "0";
  } catch (e) { formError(e); }
});
$("edit").addEventListener("click", async () => {
  formError(null);
  try {
    const rate = doc.target && doc.target.rate != null;
    await post("/api/edit", rate
      ? { rate: parseFloat($("f-arrival").value) }
      : { users: parseInt($("f-users").value, 10), spawn_rate: parseFloat($("f-rate").value) });
    editing = false;
    render(doc);
  } catch (e) { formError(e); }
});
$("stop").addEventListener("click", () => post("/api/stop").catch(formError));
$("reset").addEventListener("click", () => post("/api/reset").catch(formError));
$("new-test").addEventListener("click", () => {
  if (!doc) return;
  if (doc && doc.status === "running") { editing = true; } else { $("start-panel").dataset.open = "1"; }
  render(doc);
});
for (const b of document.querySelectorAll("nav.tabs button[data-tab]")) {
  b.addEventListener("click", () => {
    for (const o of document.querySelectorAll("nav.tabs button[data-tab]")) o.classList.toggle("active", o === b);
    for (const s of document.querySelectorAll("section.tab")) s.hidden = s.id !== "tab-" + b.dataset.tab;
    draw();
  });
}

// ---- data ----------------------------------------------------------------------------
async function boot() {
  const d = await (await fetch("/api/state")).json();
  if (d.rows) {
    run = d.run;
    for (const p of await (await fetch("/api/history")).json()) points.set(p.second, p);
  }
  render(d);
  const events = new EventSource("/api/events");
  events.onmessage = (m) => render(JSON.parse(m.data));
  events.onerror = () => { $("status").textContent = "disconnected, retrying…"; };
}
boot();
