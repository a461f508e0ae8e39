// One assistant session: conversation, specification, options, what-ifs, approval and
// deployment. The workflow's state (GET /sessions/{id}) is the only truth: every action
// calls the API and renders the state it answers with; each section is redrawn only when
// its part of the state changed, so typing is never interrupted by a refresh.
import { lineChart, scatter } from "./charts.js";
import { api, badge, busy, fill, h, hasRole, me, ms, num, tell, usd } from "./ui.js";

const root = document.getElementById("session");
const id = root.dataset.sessionId;
const base = `/sessions/${id}`;
const STAGES = ["collect", "recommend", "explore", "finalize", "deploy", "validate", "observe"];
const ENDED = ["rolled_back", "cancelled", "closed"];
const LIVE = ["finalize", "deploy", "validate", "observe"];

let state = null;
let curveFor = null; // the option whose latency-versus-load curve is shown
const drawn = {};

// Redraw a section only when its data changed since it was last drawn.
function section(name, data, draw) {
  const key = JSON.stringify(data ?? null);
  if (drawn[name] === key) return;
  drawn[name] = key;
  draw(data);
}

// The owner (or an admin) changes the session; others may only read it.
const mayChange = () => state.owner === me() || hasRole("admin");
const transcript = () => state.history.filter((e) => ["message", "reply"].includes(e.action));

function show(next) {
  state = next;
  const owner = mayChange();
  document.title = `Session ${id.slice(8, 16)} · Preflight`;
  section("title", [state.stage, state.owner], () => {
    fill(document.getElementById("session-title"), `Session ${id.slice(8, 16)}`,
      state.owner !== me() ? h("span", { class: "muted" }, ` · ${state.owner}’s`) : null);
    drawStages();
  });
  section("chat", [transcript(), state.reply, state.stage], drawChat);
  section("questions", [state.questions, state.stage, owner], () => drawQuestions(owner));
  document.getElementById("chat-form").hidden = !owner || !["collect", "explore"].includes(state.stage);
  const spec = state.specification;
  document.getElementById("spec-card").hidden = !spec;
  if (spec) section("spec", [spec, state.stage, owner], () => drawSpec(spec, owner && state.stage === "explore"));
  const recs = state.recommendations;
  document.getElementById("options-card").hidden = !recs;
  if (recs) section("options", [recs, state.stage, state.selection?.id, owner], () => drawOptions(recs, owner));
  document.getElementById("whatif-card").hidden = !(recs && owner && state.stage === "explore");
  if (recs) section("scenarios", state.scenarios, drawScenarios);
  document.getElementById("deploy-card").hidden = !state.selection;
  const card = document.getElementById("deploy-card");
  // Once an option is chosen, approval and deployment come first (in the DOM, so the
  // keyboard order follows what is seen).
  if (state.selection && card.parentElement.firstElementChild !== card) card.parentElement.prepend(card);
  if (state.selection) {
    section("deploy", [state.stage, state.selection.id, state.approval, state.deployment, state.slo?.proposal],
      drawDeploy);
  }
}

async function load() {
  const next = await busy(null, () => api("GET", base));
  if (next) show(next);
}

// ---- stages ------------------------------------------------------------------------------

function drawStages() {
  const at = STAGES.indexOf(state.stage);
  const items = STAGES.map((stage, i) => {
    const current = stage === state.stage;
    return h("li", { class: current ? "current" : i < at || ENDED.includes(state.stage) ? "done" : "",
      "aria-current": current ? "step" : null }, stage);
  });
  if (ENDED.includes(state.stage)) items.push(h("li", { class: "ended", "aria-current": "step" }, state.stage.replace("_", " ")));
  fill(document.getElementById("stages"), items);
}

// ---- conversation ------------------------------------------------------------------------

function bubble(role, text, extra = "") {
  return h("li", { class: `${role} ${extra}` }, h("span", { class: "who" }, role === "user" ? "You" : "Preflight"), text);
}

function drawChat() {
  const entries = transcript();
  const items = entries.map((e) => bubble(e.action === "message" ? "user" : "assistant", e.detail));
  // Sessions from before replies were kept show the last reply only.
  if (state.reply && !entries.some((e) => e.action === "reply")) items.push(bubble("assistant", state.reply));
  // The reply is kept before the search for options starts: say that it is running.
  if (state.stage === "recommend") items.push(bubble("assistant", "Searching the catalog for options…", "pending"));
  const list = document.getElementById("messages");
  fill(list, items);
  list.scrollTop = list.scrollHeight;
}

function drawQuestions(owner) {
  const box = document.getElementById("questions");
  if (!owner || state.stage !== "collect") return fill(box);
  fill(box, state.questions.map((q, i) => h("div", { class: "question", role: "group", "aria-labelledby": `q-${i}` },
    h("p", { id: `q-${i}` }, q.text),
    h("div", { class: "quick" }, q.quick_answers.map((answer) =>
      h("button", { type: "button", onclick: (e) => send(answer, e.currentTarget) }, answer))))));
}

async function send(message, button) {
  const list = document.getElementById("messages");
  const mine = bubble("user", message);
  const thinking = bubble("assistant", "Thinking: reading your words, then searching the catalog…", "pending");
  list.append(mine, thinking);
  list.scrollTop = list.scrollHeight;
  // The workflow keeps the reply as soon as it has it and searches for options after: read
  // the state while the turn runs, so the reply shows before the options are ready.
  let waiting = true;
  const watch = (async () => {
    while (waiting) {
      await new Promise((resolve) => setTimeout(resolve, 400));
      const seen = waiting && (await api("GET", base).catch(() => null));
      if (seen && waiting && seen.history.length > state.history.length) show(seen);
    }
  })();
  const next = await busy(button, () => api("POST", `${base}/messages`, { message }));
  waiting = false;
  await watch;
  mine.remove();
  thinking.remove();
  if (next) {
    show(next);
    return true;
  }
  return false;
}

document.getElementById("chat-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = document.getElementById("chat-input");
  const message = input.value.trim();
  if (!message) return;
  input.value = "";
  if (!(await send(message, event.submitter))) input.value = message;
  input.focus();
});

// ---- specification -----------------------------------------------------------------------

const FIELDS = [
  { path: "use_case", key: "use_case", label: "Use case", type: "text" },
  { path: "priority", key: "priority", label: "Priority", choices: ["balanced", "cost", "latency", "accuracy"] },
  { path: "concurrent_users", key: "concurrent_users", label: "Users", unit: "people", min: 1, step: 1 },
  { path: "traffic.steady_qps", key: "traffic.steady_qps", label: "Steady load", unit: "req/s", min: 0.001 },
  { path: "traffic.peak_qps", key: "traffic.peak_qps", label: "Peak load", unit: "req/s", min: 0.001 },
  { path: "traffic.burstiness", key: "traffic.burstiness", label: "Burstiness", choices: ["low", "medium", "high"] },
  { path: "traffic.prompt_tokens_mean", key: "traffic.prompt_tokens_mean", label: "Prompt length, mean", unit: "tokens", min: 1, step: 1 },
  { path: "traffic.prompt_tokens_p95", key: "traffic.prompt_tokens_p95", label: "Prompt length, p95", unit: "tokens", min: 1, step: 1 },
  { path: "traffic.output_tokens_mean", key: "traffic.output_tokens_mean", label: "Answer length, mean", unit: "tokens", min: 1, step: 1 },
  { path: "traffic.output_tokens_p95", key: "traffic.output_tokens_p95", label: "Answer length, p95", unit: "tokens", min: 1, step: 1 },
  { path: "slo.ttft_p90_ms", key: "target_ttft_p90_ms", label: "TTFT p90 target", unit: "ms", min: 1 },
  { path: "slo.tpot_p90_ms", key: "target_tpot_p90_ms", label: "TPOT p90 target", unit: "ms", min: 1 },
  { path: "slo.e2e_p95_ms", key: "target_e2e_latency_p95_ms", label: "E2E p95 target", unit: "ms", min: 1 },
  { path: "budget.max_monthly_cost_usd", key: "budget.max_monthly_cost_usd", label: "Budget", unit: "$/month", min: 1 },
  { path: "max_context_tokens", key: "max_context_tokens", label: "Longest request", unit: "tokens", min: 1, step: 1 },
  { path: "quality_threshold", key: "quality_threshold", label: "Least quality", unit: "MMLU-Pro", min: 0, max: 100 },
  { path: "reliability_target", key: "reliability_target", label: "Availability", unit: "e.g. 0.999", min: 0.5, max: 0.99999 },
  { path: "engine.max_num_seqs", key: "engine.max_num_seqs", label: "vLLM max_num_seqs", unit: "sequences", min: 1, step: 1 },
  { path: "engine.gpu_memory_utilization", key: "engine.gpu_memory_utilization", label: "vLLM GPU memory share", unit: "0-1", min: 0.05, max: 0.98 },
  { path: "engine.kv_cache_dtype", key: "engine.kv_cache_dtype", label: "vLLM KV cache dtype", choices: ["auto", "fp8"] },
  { path: "engine.prefix_cache_hit_rate", key: "engine.prefix_cache_hit_rate", label: "Prefix-cache hit rate", unit: "0-1", min: 0, max: 0.95 },
];

const at = (object, path) => path.split(".").reduce((o, k) => (o == null ? o : o[k]), object);

function drawSpec(spec, editable) {
  const form = document.getElementById("spec-form");
  const fields = FIELDS.map((f) => {
    const inputId = `spec-${f.path.replace(/\./g, "-")}`;
    const value = at(spec, f.path);
    const isDefault = spec.defaults.includes(f.path);
    const errorId = `${inputId}-error`;
    const common = { id: inputId, name: f.key, disabled: !editable, "aria-describedby": errorId, "data-path": f.path };
    const input = f.choices
      ? h("select", common, f.choices.map((c) => h("option", { value: c, selected: c === value }, c)))
      : h("input", { ...common, type: f.type ?? "number", value: value ?? "", min: f.min, max: f.max,
          step: f.step ?? "any", inputmode: f.type ? null : "decimal", placeholder: f.type ? null : "not set" });
    if (f.type !== "text" && !f.choices && typeof value === "number" && !Number.isInteger(value)) input.value = +value.toFixed(3);
    input.addEventListener("change", () => edit(f, input));
    return h("div", { class: "field" },
      h("label", { for: inputId }, f.label, " ", isDefault ? badge("default") : null),
      h("div", { class: "row" }, input, f.unit ? h("span", { class: "unit" }, f.unit) : null),
      h("p", { class: "field-error", id: errorId, "aria-live": "polite" }));
  });
  fill(form, editable ? null : h("p", { class: "help" }, state.stage === "collect"
      ? "Answer the assistant’s question first (“I don’t know” is fine); then every value is editable."
      : "The specification is fixed once an option is selected."),
    h("div", { class: "spec" }, fields),
    h("p", { class: "help" }, "Load: ", spec.traffic_formula));
}

async function edit(field, input) {
  const error = document.getElementById(input.getAttribute("aria-describedby"));
  const raw = input.value.trim();
  let value = raw === "" ? null : raw;
  if (value !== null && input.type === "number") {
    value = Number(raw);
    if (!input.checkValidity() || !Number.isFinite(value)) {
      input.setAttribute("aria-invalid", "true");
      fill(error, `${field.label}: ${input.validationMessage || "not a number"}`);
      return;
    }
  }
  input.removeAttribute("aria-invalid");
  fill(error, "Re-planning…");
  const next = await busy(null, () => api("PATCH", `${base}/spec`, { changes: { [field.key]: value } }));
  if (next) {
    fill(error);
    drawn.spec = null;
    show(next);
    document.getElementById(input.id)?.focus();
  } else {
    input.setAttribute("aria-invalid", "true");
    fill(error, document.getElementById("notice").textContent);
  }
}

// ---- options -----------------------------------------------------------------------------

// Each latency an option is judged by: its SLO margin's key, the stats and percentile in
// the option, and the uncertainty band's prefix (none for E2E).
const TARGETS = [
  { margin: "ttft_p90", stat: "ttft_ms", q: "p90", band: "ttft", label: "TTFT p90" },
  { margin: "tpot_p90", stat: "tpot_ms", q: "p90", band: "tpot", label: "TPOT p90" },
  { margin: "e2e_p95", stat: "e2e_ms", q: "p95", band: null, label: "E2E p95" },
];

function latencyCell(rec, { margin, stat, q, band, label }) {
  const value = rec.option[stat][q];
  const m = rec.slo_margin[margin];
  const factors = band && rec.uncertainty;
  const range = factors
    ? h("span", { class: "range" }, `likely ${ms(value * factors[`${band}_low`])} – ${ms(value * factors[`${band}_high`])}`)
    : null;
  const verdict = m === undefined ? null
    : m >= 0 ? h("span", { class: "ok verdict" }, `✓ ${num(m * 100)}% under target`)
      : h("span", { class: "bad verdict" }, `✗ ${num(-m * 100)}% over target`);
  return h("td", { class: "num", "aria-label": `${label} ${ms(value)}${m === undefined ? "" : m >= 0 ? ", meets the target" : ", misses the target"}` },
    ms(value), verdict, range);
}

function drawOptions(recs, owner) {
  const spec = recs.specification;
  fill(document.getElementById("options-summary"),
    `${num(recs.feasible)} configurations meet every target; the best ${recs.options.length} of different models are shown. `,
    "Latencies are at the peak load each replica takes; each number says where it comes from.");
  const selectable = owner && state.stage === "explore";
  const head = h("thead", {}, h("tr", {},
    ["Model", "Deployment", "TTFT p90", "TPOT p90", "E2E p95", "Cost", "Actions"]
      .map((c) => h("th", { scope: "col" }, c))));
  const rows = recs.options.map((rec, i) => {
    const o = rec.option;
    const chosen = state.selection?.id === rec.id;
    return h("tr", { class: chosen ? "chosen" : null, "data-option": rec.id },
      h("th", { scope: "row" }, `${i + 1}. ${rec.display_name}`,
        h("span", { class: "range" }, rec.quality_score == null ? "quality unknown" : `MMLU-Pro ${num(rec.quality_score, 1)}`),
        h("span", { class: "range" }, badge(rec.source ?? "modelled")),
        h("details", {}, h("summary", {}, "Why"), h("p", { class: "rationale" }, rec.rationale,
          rec.uncertainty ? ` The “likely” ranges are the 10th to 90th percentile of the model's errors on ${rec.uncertainty.basis}.` : ""))),
      h("td", {}, `${o.replicas_for_peak} × ${o.tp} × ${o.gpu_id}`, h("span", { class: "range" },
        `${o.precision}; ${o.min_replicas} replica${o.min_replicas === 1 ? "" : "s"} at steady load`)),
      TARGETS.map((t) => latencyCell(rec, t)),
      h("td", { class: "num" }, `${usd(o.usd_per_month)}/month`,
        h("span", { class: "range" }, o.usd_per_1k_tokens == null ? "" : `$${num(o.usd_per_1k_tokens, 4)} per 1k tokens`),
        h("span", { class: "range" }, o.usd_per_month_steady != null && o.usd_per_month_steady !== o.usd_per_month
          ? `${usd(o.usd_per_month_steady)} autoscaled` : ""),
        o.price == null ? null : h("span", { class: o.price.stale ? "range price stale" : "range price" },
          `${o.price.provider} ${o.price.instance_type}, price of ${o.price.retrieved}${o.price.stale ? " (stale)" : ""}`)),
      h("td", { class: "actions-cell" },
        h("button", { type: "button", class: "small", "aria-label": `Latency against load for ${rec.display_name}`,
          onclick: () => drawCurve(rec, spec) }, "Load curve"),
        selectable ? h("button", { type: "button", class: "small primary", "aria-label": `Select ${rec.display_name} for deployment`,
          onclick: (e) => select(rec, e.currentTarget) }, "Select") : null));
  });
  fill(document.getElementById("options"),
    h("caption", { class: "sr-only" }, "Recommended options with predicted latency against each target, cost and quality"),
    head, h("tbody", {}, rows));
  const left = [...recs.left_out.map((l) => `${l.name} (${l.kind}): ${l.reason}`), ...recs.relax];
  const cluster = recs.cluster ?? [];
  fill(document.getElementById("left-out"),
    cluster.length
      ? h("details", {}, h("summary", {}, `The cluster: ${cluster[0]}`), h("ul", {}, cluster.slice(1).map((t) => h("li", {}, t))))
      : null,
    left.length
      ? h("details", {}, h("summary", {}, `Left out or to relax (${left.length})`), h("ul", {}, left.map((t) => h("li", {}, t))))
      : null);
  drawPareto(recs, spec);
  drawLists(recs);
  const shown = recs.options.find((r) => r.id === (curveFor ?? state.selection?.id)) ?? recs.options[0];
  if (shown) drawCurve(shown, spec);
}

function drawPareto(recs, spec) {
  const points = (recs.landscape ?? []).filter((p) => p.usd_per_month);
  const shown = new Set(recs.options.map((r) => r.id));
  const qualities = points.map((p) => p.quality ?? 0);
  const qmin = Math.min(...qualities);
  const qmax = Math.max(...qualities);
  scatter(document.getElementById("pareto"), {
    label: `Cost per month against TTFT p90 for ${points.length} feasible options; the shaded area meets the TTFT target and the budget; larger dots are higher-quality models`,
    xLabel: "cost per month (USD, log scale)",
    yLabel: "TTFT p90 at peak (ms)",
    box: { x: spec.budget.max_monthly_cost_usd, y: spec.slo.ttft_p90_ms },
    points: points.map((p) => ({
      id: p.id, x: p.usd_per_month, y: p.ttft_p90_ms, pareto: p.pareto,
      chosen: p.id === (state.selection?.id ?? curveFor), selectable: shown.has(p.id),
      size: qmax > qmin ? ((p.quality ?? qmin) - qmin) / (qmax - qmin) : 0.5,
      label: `${p.model} on ${p.replicas} × ${p.tp} × ${p.gpu_id}: ${usd(p.usd_per_month)}/month, TTFT p90 ${ms(p.ttft_p90_ms)}, quality ${p.quality ?? "unknown"}${p.pareto ? " (Pareto-optimal)" : ""}`,
    })),
    onSelect: (optionId) => {
      const rec = recs.options.find((r) => r.id === optionId);
      if (rec) drawCurve(rec, spec);
    },
  });
}

function drawLists(recs) {
  const gpus = new Set((recs.landscape ?? []).map((p) => p.gpu_id));
  const models = new Set(recs.options.map((r) => r.option.model_id));
  fill(document.getElementById("gpu-names"), [...gpus].sort().map((g) => h("option", { value: g })));
  fill(document.getElementById("model-names"), [...models].sort().map((m) => h("option", { value: m })));
}

async function drawCurve(rec, spec) {
  curveFor = rec.id;
  const o = rec.option;
  const caption = document.getElementById("curve-caption");
  fill(caption, `Latency against load for one replica of ${rec.display_name} on ${o.tp} × ${o.gpu_id}`);
  const curve = await busy(null, () => api("POST", "/load-curve", {
    model_id: o.model_id, gpu_id: o.gpu_id, tp: o.tp, precision: o.precision,
    traffic: spec.traffic, up_to_qps: o.max_qps_per_replica, points: 16,
  }));
  if (!curve || curveFor !== rec.id) return;
  const series = [
    ["TTFT p90", "ttft_p90_ms"], ["TPOT p90", "tpot_p90_ms"], ["E2E p95", "e2e_p95_ms"],
  ].map(([name, key], i) => ({ name, dashed: i === 2,
    points: curve.points.filter((p) => p[key] != null).map((p) => ({ x: p.qps, y: p[key] })) }));
  const slo = spec.slo;
  lineChart(document.getElementById("curve"), {
    label: `Predicted latency of one replica as its load grows to ${num(o.max_qps_per_replica, 2)} requests a second, where the first target is reached`,
    xLabel: "requests per second, one replica", yLabel: "milliseconds (log scale)", yLog: true, series,
    lines: [[slo.ttft_p90_ms, "TTFT target"], [slo.tpot_p90_ms, "TPOT target"], [slo.e2e_p95_ms, "E2E target"]]
      .filter(([v]) => v).map(([y, label]) => ({ y, label: `${label} ${ms(y)}` })),
    marks: [{ x: o.max_qps_per_replica, label: `SLO limit ${num(o.max_qps_per_replica, 2)}/s (${o.binding_slo})` },
      { x: spec.traffic.peak_qps / o.replicas_for_peak, label: "peak" }],
  });
}

async function select(rec, button) {
  const next = await busy(button, () => api("POST", `${base}/select`, { option_id: rec.id }));
  if (next) {
    show(next);
    document.getElementById("deploy-card").scrollIntoView();
    document.getElementById("deploy-title").focus?.();
  }
}

// ---- what-if -----------------------------------------------------------------------------

document.getElementById("whatif-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const read = (name) => document.getElementById(name).value.trim();
  const changes = {};
  if (read("wi-gpu")) changes.gpu = read("wi-gpu");
  if (read("wi-model")) changes.model = read("wi-model");
  if (read("wi-ttft")) changes.target_ttft_p90_ms = Number(read("wi-ttft"));
  if (read("wi-peak")) changes["traffic.peak_qps"] = Number(read("wi-peak"));
  if (!Object.keys(changes).length) {
    tell("Pin a GPU or a model, or change the TTFT target or the load, to compare.");
    return;
  }
  const name = read("wi-name") || Object.entries(changes).map(([k, v]) => `${k.replace("target_", "").replace("traffic.", "")} ${v}`).join(", ");
  const next = await busy(event.submitter, () => api("POST", `${base}/what-if`, { name: name.slice(0, 80), changes }));
  if (next) {
    event.target.reset();
    show(next);
  }
});

function drawScenarios(rows) {
  const table = document.getElementById("scenarios");
  table.hidden = !rows.length;
  if (!rows.length) return fill(table);
  const measures = [
    ["Model", (r) => r.model ?? "nothing feasible"],
    ["GPUs", (r) => r.gpus ?? "–"],
    ["Cost / month", (r) => usd(r.usd_per_month)],
    ["TTFT p90", (r) => ms(r.ttft_p90_ms)],
    ["TPOT p90", (r) => ms(r.tpot_p90_ms)],
    ["Capacity", (r) => (r.capacity_qps == null ? "–" : `${num(r.capacity_qps, 1)} req/s`)],
    ["Quality", (r) => (r.quality == null ? "unknown" : num(r.quality, 1))],
    ["Feasible options", (r) => num(r.feasible)],
    ["Differences", (r, i) => (i === 0 ? "the current plan" : r.differences.length ? r.differences.join("; ") : "the same best option")],
  ];
  fill(table, h("caption", {}, "Scenarios side by side: the best option of each"),
    h("thead", {}, h("tr", {}, h("td"), rows.map((r) => h("th", { scope: "col" }, r.scenario)))),
    h("tbody", {}, measures.map(([label, value]) => h("tr", {}, h("th", { scope: "row" }, label),
      rows.map((r, i) => h("td", {}, value(r, i)))))));
}

// ---- approval and deployment -------------------------------------------------------------

const MARK = { ok: "✓", failed: "✗", skipped: "–" };

function steps(list, label) {
  return h("ol", { class: "steps", "aria-label": label }, list.map((s) =>
    h("li", {}, h("span", { class: `mark ${s.status === "ok" ? "ok" : s.status === "failed" ? "bad" : ""}`, "aria-hidden": "true" }, MARK[s.status]),
      h("strong", {}, s.name), ` ${s.status}`, s.detail ? `: ${s.detail}` : "")));
}

function drawDeploy() {
  const body = document.getElementById("deploy-body");
  const sel = state.selection;
  const o = sel.option;
  const approval = state.approval;
  const d = state.deployment;
  const parts = [h("p", {}, h("strong", {}, sel.display_name), ` on ${o.replicas_for_peak} × ${o.tp} × ${o.gpu_id} (${o.precision}), ${usd(o.usd_per_month)}/month`,
    state.prepared ? ` as ${state.prepared.plan.name} in ${state.prepared.plan.namespace}` : "")];
  const manifests = h("div", { id: "manifests" }, h("p", { class: "muted" }, "Loading the manifests…"));
  parts.push(manifests);
  if (approval) {
    const who = approval.approver ? ` by ${approval.approver}` : "";
    parts.push(h("p", { id: "approval-status" }, h("strong", {}, "Approval: "), `${approval.status}${who}`,
      approval.comment ? ` (“${approval.comment}”)` : "",
      approval.status === "pending" ? ` · requested by ${approval.requested_by}` : ""));
  }
  if (state.stage === "finalize" && approval?.status === "pending") {
    if (hasRole("approver") && approval.requested_by !== me() && state.owner !== me()) parts.push(decisionForm());
    else parts.push(h("p", { class: "help" }, "Waiting for someone with the approver role. They find this session under “Awaiting your approval”."));
  }
  if (d) {
    parts.push(h("h3", {}, `Deployment: ${d.status.replace("_", " ")}`));
    if (d.rehearsal) parts.push(h("p", {}, badge("rehearsal", "REHEARSAL"), " No cluster: the numbers come from the emulator on this machine, serving as the performance model predicts."));
    parts.push(steps(d.steps, "Deployment steps"));
    if (d.error) parts.push(h("p", { class: "error", role: "alert" }, `Failed: ${d.error}`));
    if (d.compensations.length) parts.push(h("h3", {}, "Undone after the failure"), steps(d.compensations, "Compensation steps"));
    if (d.smoke) parts.push(h("p", {}, `First real request: TTFT ${ms(d.smoke.ttft_ms)}, TPOT ${ms(d.smoke.tpot_ms)} (${d.smoke.tokens} tokens).`));
    if (state.slo?.proposal) parts.push(h("p", { class: "error" }, `Sustained breach: ${state.slo.proposal}`));
    if (d.deployment_id) parts.push(h("p", {}, h("a", { href: `/d/${d.deployment_id}`, id: "dashboard-link" }, "Open the live dashboard →")));
  }
  if (mayChange() && ["validate", "observe"].includes(state.stage)) parts.push(rollbackForm());
  fill(body, parts);
  loadManifests(manifests);
}

async function loadManifests(box) {
  const found = await busy(null, () => api("GET", `${base}/manifests`));
  if (!found) return fill(box);
  const all = h("pre", { class: "diff", tabindex: "0", "aria-label": "Rendered manifests" }, found.yaml);
  if (state.stage !== "finalize") {
    // Applied (or being applied): what was deployed is what matters now.
    return fill(box, h("details", {}, h("summary", {}, "Deployed manifests"), all));
  }
  const lines = found.diff.split("\n").map((line) => h("span", {
    class: /^(@@|\+\+\+ |--- )/.test(line) ? "hunk" : line.startsWith("+") ? "add" : line.startsWith("-") ? "del" : null }, `${line}\n`));
  fill(box,
    h("p", {}, h("strong", {}, "Against what runs now: "), found.summary,
      found.running_revision ? ` (revision ${found.running_revision})` : ""),
    found.diff
      ? h("details", { open: true }, h("summary", {}, "Changes to the cluster"), h("pre", { class: "diff", tabindex: "0", "aria-label": "Manifest diff" }, lines))
      : h("p", {}, "Approving changes nothing that runs."),
    h("details", {}, h("summary", {}, "All rendered manifests"), all));
}

function decisionForm() {
  const comment = h("input", { id: "decision-comment", maxlength: 2000, placeholder: "optional for approval, needed to reject" });
  const decide = async (verb, button) => {
    const text = comment.value.trim();
    if (verb === "reject" && !text) return tell("Say why you reject it: the requester reads it.");
    const body = verb === "approve" ? { comment: text } : { reason: text };
    const done = await busy(button, () => api("POST", `${base}/${verb}`, body));
    if (done) {
      tell(done.detail, "info");
      await load();
    }
  };
  return h("form", { class: "decision", onsubmit: (e) => { e.preventDefault(); decide("approve", e.submitter); } },
    h("label", { for: "decision-comment" }, "Comment for the requester"), comment,
    h("button", { type: "submit", class: "primary" }, "Approve and deploy"), " ",
    h("button", { type: "button", onclick: (e) => decide("reject", e.currentTarget) }, "Reject"));
}

function rollbackForm() {
  const reason = h("input", { id: "rollback-reason", maxlength: 2000, placeholder: "e.g. latency regression" });
  return h("form", { onsubmit: async (e) => {
      e.preventDefault();
      const done = await busy(e.submitter, () => api("POST", `${base}/rollback`, { reason: reason.value.trim() }));
      if (done) {
        tell(done.detail, "info");
        await load();
      }
    } },
    h("label", { for: "rollback-reason" }, "Reason to roll back"), reason,
    h("button", { type: "submit", class: "danger" }, "Roll back"));
}

// ---- refresh -----------------------------------------------------------------------------

// While something happens without the user (approval, deploy, monitoring), poll the state
// often; an ended session changes no more.
async function refresh() {
  await load();
  if (state && ENDED.includes(state.stage)) return;
  setTimeout(refresh, state && LIVE.includes(state.stage) ? 2000 : 8000);
}
refresh();
