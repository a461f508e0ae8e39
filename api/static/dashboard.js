// One deployment, live: SLO compliance predicted against actual over time, traffic against
// the specification, utilization, cost actual against planned, right-sizing advice, and a
// rollback through the session that deployed it. Numbers come only from recorded checks:
// before the first measured check there are none, and the page says so.
import { lineChart } from "./charts.js";
import { api, badge, busy, fill, h, hasRole, me, ms, num, tell, time, usd, when } from "./ui.js";

const root = document.getElementById("dashboard");
const id = root.dataset.deploymentId;
const METRICS = [
  ["ttft_p90_ms", "TTFT p90"],
  ["tpot_p90_ms", "TPOT p90"],
  ["e2e_p95_ms", "E2E p95"],
];
let session; // the session that deployed this (null: none of the caller's), looked up once
const drawn = {};

// Redraw a part only when its data changed, so a refresh never steals the keyboard focus.
function once(name, data, draw) {
  const key = JSON.stringify(data);
  if (drawn[name] !== key) {
    drawn[name] = key;
    draw();
  }
}

function tile(label, value, vs, status) {
  return h("div", { class: "tile" }, h("div", { class: "label" }, label),
    h("div", { class: `value ${status ?? ""}` }, value), vs ? h("div", { class: "vs" }, vs) : null);
}

function latestMeasured(checks) {
  return [...checks].reverse().find((c) => Object.keys(c.measurements).length) ?? null;
}

function drawTiles(report, state) {
  const last = latestMeasured(report.checks);
  const box = document.getElementById("tiles");
  if (!last) return fill(box, h("p", { class: "muted", id: "no-numbers" }, report.note));
  const m = last.measurements;
  const p = last.predicted ?? {};
  const tiles = METRICS.map(([key, label]) => {
    const target = last.targets[key];
    const value = m[key];
    const status = value == null || target == null ? "" : value <= target ? "ok" : "bad";
    return tile(label, ms(value), `target ${ms(target)} · predicted ${ms(p[key])}`, status);
  });
  tiles.push(tile("Load", m.requests_per_s == null ? "–" : `${num(m.requests_per_s, 2)} req/s`,
    state ? `spec: ${num(state.specification.traffic.steady_qps, 2)} steady, ${num(state.specification.traffic.peak_qps, 2)} peak` : null));
  tiles.push(tile("Replicas", num(m.replicas), state ? `planned ${state.selection.option.replicas_for_peak} at peak` : null));
  tiles.push(tile("KV cache used", m.kv_cache_usage == null ? "–" : `${num(m.kv_cache_usage * 100, m.kv_cache_usage < 0.1 ? 1 : 0)}%`,
    m.gpu_utilization == null ? "GPU utilization: no DCGM metrics" : `GPU ${num(m.gpu_utilization)}%`));
  const cost = actualCost(m, state);
  const price = state?.selection?.option?.price;
  const planned = p.usd_per_hour != null ? `planned ${usd(p.usd_per_hour, 2)}/h at peak` : null;
  tiles.push(tile("Cost", cost == null ? "–" : `${usd(cost, 2)}/h`,
    price?.stale ? `${planned ?? ""} (price of ${price.retrieved}: stale)` : planned));
  tiles.push(tile("Last check", time(last.at), `${last.status} · ${report.note}`, last.status === "ok" ? "ok" : "bad"));
  fill(box, tiles);
}

// What the replicas seen running cost, at the plan's price per GPU-hour.
function actualCost(m, state) {
  const price = state?.selection?.option?.price?.usd_per_gpu_hour;
  if (price == null || m.replicas == null) return null;
  return m.replicas * state.selection.option.tp * price;
}

function drawSlo(report) {
  const checks = report.checks.filter((c) => Object.keys(c.measurements).length);
  const box = document.getElementById("slo-charts");
  if (!checks.length) return fill(box, h("p", { class: "muted" }, "The charts fill in as checks measure the deployment."));
  const t0 = new Date(checks[0].at).getTime();
  const x = (c) => (new Date(c.at).getTime() - t0) / 1000;
  fill(box, METRICS.map(([key, label]) => {
    const div = h("div", { class: "chart", id: `chart-${key}` });
    const target = report.targets[key];
    lineChart(div, {
      label: `${label}: actual and predicted at each check${target ? `, against the ${ms(target)} target` : ""}`,
      xLabel: "seconds since the first measured check", yLabel: `${label} (ms)`,
      series: [
        { name: `${label} actual`, points: checks.map((c) => ({ x: x(c), y: c.measurements[key] })) },
        { name: `${label} predicted at the observed load`, dashed: true,
          points: checks.filter((c) => c.predicted).map((c) => ({ x: x(c), y: c.predicted[key] })) },
      ],
      lines: target ? [{ y: target, label: `target ${ms(target)}` }] : [],
    });
    return h("figure", {}, h("figcaption", {}, label), div);
  }));
}

function drawTraffic(report, state) {
  const checks = report.checks.filter((c) => Object.keys(c.measurements).length);
  const box = document.getElementById("traffic");
  if (!checks.length) return fill(box, h("p", { class: "muted" }, "No traffic measured yet."));
  const t0 = new Date(checks[0].at).getTime();
  const x = (c) => (new Date(c.at).getTime() - t0) / 1000;
  const load = h("div", { class: "chart" });
  const spec = state?.specification?.traffic;
  lineChart(load, {
    label: "Observed requests per second at each check, against the specification's steady and peak load",
    xLabel: "seconds since the first measured check", yLabel: "requests per second",
    series: [{ name: "observed load", points: checks.map((c) => ({ x: x(c), y: c.measurements.requests_per_s })) }],
    lines: spec ? [{ y: spec.steady_qps, label: `spec steady ${num(spec.steady_qps, 2)}` }, { y: spec.peak_qps, label: `spec peak ${num(spec.peak_qps, 2)}` }] : [],
  });
  const use = h("div", { class: "chart" });
  lineChart(use, {
    label: "KV cache usage and requests running at each check",
    xLabel: "seconds since the first measured check", yLabel: "% of KV cache, or requests",
    series: [
      { name: "KV cache used (%)", points: checks.map((c) => ({ x: x(c), y: c.measurements.kv_cache_usage * 100 })) },
      { name: "requests running", dashed: true, points: checks.map((c) => ({ x: x(c), y: c.measurements.running })) },
    ],
  });
  fill(box, h("figure", {}, h("figcaption", {}, "Observed traffic against the specification"), load),
    h("figure", {}, h("figcaption", {}, "Utilization"), use));
}

function drawAdvice(state) {
  const box = document.getElementById("advice");
  const advice = state?.slo?.last?.advice ?? [];
  const proposal = state?.slo?.proposal;
  const items = advice.map((a) => h("li", {}, h("strong", {}, a.kind.replace("_", " ")), `: ${a.text}`,
    a.usd_per_month_change != null ? ` (${a.usd_per_month_change < 0 ? "saves" : "costs"} ${usd(Math.abs(a.usd_per_month_change))}/month)` : ""));
  if (proposal) items.unshift(h("li", { class: "bad" }, `Sustained breach: ${proposal}`));
  fill(box, items.length ? h("ul", {}, items) : h("p", { class: "muted" }, "The deployment runs as planned: nothing to change."));
}

function drawChecks(report) {
  const rows = [...report.checks].reverse().slice(0, 20);
  fill(document.getElementById("checks"),
    h("caption", { class: "sr-only" }, "The latest SLO checks, newest first"),
    h("thead", {}, h("tr", {}, ["Time", "Status", "TTFT p90", "TPOT p90", "E2E p95", "Load", "Detail"].map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, rows.map((c) => h("tr", {},
      h("td", {}, time(c.at)), h("td", { class: c.status === "ok" ? "ok" : "bad" }, c.status),
      METRICS.map(([key]) => h("td", { class: "num" }, ms(c.measurements[key]),
        c.predicted?.[key] != null ? h("span", { class: "range" }, `predicted ${ms(c.predicted[key])}`) : null)),
      h("td", { class: "num" }, c.measurements.requests_per_s == null ? "–" : `${num(c.measurements.requests_per_s, 2)}/s`),
      h("td", { class: "rationale" }, c.detail)))));
}

function drawHistory(detail) {
  fill(document.getElementById("history"),
    h("h3", {}, "Revisions"),
    h("ul", {}, detail.revisions.map((r) => h("li", {}, `Revision ${r.number}, ${when(r.applied_at)}: ${r.objects.length} objects`,
      r.previous_number ? ` (replaced revision ${r.previous_number})` : ""))),
    h("h3", {}, "Audit trail"),
    h("ul", {}, detail.audit.map((a) => h("li", {}, `${when(a.at)} · ${a.actor} · ${a.action}`, a.detail ? `: ${a.detail}` : ""))));
}

function drawHeader(detail, state) {
  const d = detail.deployment;
  fill(document.getElementById("dash-title"), `Deployment: ${d.name}`);
  document.title = `${d.name} · Preflight`;
  const sel = state?.selection;
  fill(document.getElementById("dash-summary"),
    `${d.namespace} · ${d.target} · status ${d.status} · revision ${d.current_revision ?? "none"}`,
    sel ? ` · ${sel.display_name} on ${sel.option.replicas_for_peak} × ${sel.option.tp} × ${sel.option.gpu_id}` : "",
    state ? [" · ", h("a", { href: `/s/${state.session_id}` }, "session")] : "");
  fill(document.getElementById("rehearsal-note"), state?.deployment?.rehearsal
    ? h("p", {}, badge("rehearsal", "REHEARSAL"), " No cluster: an emulator on this machine serves as the performance model predicts, and a little traffic runs against it. These numbers are never learned from.")
    : null);
  const actions = document.getElementById("dash-actions");
  const live = state && ["validate", "observe"].includes(state.stage);
  const allowed = state && (state.owner === me() || hasRole("admin") || hasRole("approver"));
  fill(actions, live && allowed
    ? h("button", { type: "button", class: "danger", id: "rollback", onclick: (e) => rollback(e.currentTarget) }, "Roll back")
    : state && !live ? h("span", { class: "muted" }, `Session ${state.stage.replace("_", " ")}`) : null);
}

async function rollback(button) {
  if (!confirm("Roll back this deployment to what ran before it?")) return;
  const done = await busy(button, () => api("POST", `/sessions/${session}/rollback`, { reason: "from the dashboard" }));
  if (done) tell(`${done.detail}`, "info");
}

async function findSession() {
  const sessions = await api("GET", "/sessions?limit=200").catch(() => null);
  if (!sessions) return undefined; // not known yet: asked again at the next refresh
  const live = sessions.filter((s) => s.deployment_id === id);
  return (live.find((s) => ["validate", "observe", "deploy"].includes(s.stage)) ?? live[0])?.session_id ?? null;
}

async function load() {
  const [detail, report] = await Promise.all([api("GET", `/deployments/${id}`), api("GET", `/deployments/${id}/slo`)]);
  // Listing sessions asks each one its state: once per page, not on every refresh.
  if (session === undefined) session = await findSession();
  const state = session ? await api("GET", `/sessions/${session}`).catch(() => null) : null;
  const live = [state?.stage, state?.deployment, state?.slo];
  once("header", [detail, live], () => drawHeader(detail, state));
  once("report", [report, live], () => {
    drawTiles(report, state);
    drawSlo(report);
    drawTraffic(report, state);
    drawChecks(report);
  });
  once("advice", live, () => drawAdvice(state?.slo ? state : null));
  once("history", detail, () => drawHistory(detail));
}

async function refresh() {
  await busy(null, load);
  setTimeout(refresh, 3000);
}
refresh();
