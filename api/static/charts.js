// Small SVG charts drawn here (no chart library to download): a scatter for the Pareto
// view and a line chart for latency against load and for values over time.

const SVG = "http://www.w3.org/2000/svg";
const W = 560;
const H = 300;
const PAD = { left: 62, right: 16, top: 14, bottom: 44 };
export const COLOURS = ["#1d4ed8", "#b45309", "#047857", "#7c3aed", "#be123c", "#0e7490"];

function s(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value !== null && value !== undefined) node.setAttribute(name, value);
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

function text(x, y, content, attrs = {}) {
  const node = s("text", { x, y, ...attrs });
  node.textContent = content;
  return node;
}

function scale(lo, hi, from, to, log = false) {
  const f = log ? Math.log10 : (v) => v;
  const a = f(lo);
  const b = f(hi) === a ? a + 1 : f(hi);
  return (v) => from + ((f(v) - a) / (b - a)) * (to - from);
}

function ticks(lo, hi, log, count = 5) {
  if (log) {
    const out = [];
    for (let p = Math.floor(Math.log10(lo)); p <= Math.ceil(Math.log10(hi)); p++) {
      for (const m of [1, 2, 5]) {
        const v = m * 10 ** p;
        if (v >= lo && v <= hi) out.push(v);
      }
    }
    return out;
  }
  const step = niceStep((hi - lo) / count);
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9; v += step) out.push(v);
  return out;
}

function niceStep(raw) {
  const p = 10 ** Math.floor(Math.log10(raw || 1));
  return [1, 2, 2.5, 5, 10].map((m) => m * p).find((v) => v >= raw) ?? 10 * p;
}

function short(v) {
  const a = Math.abs(v);
  if (a >= 1e6) return `${+(v / 1e6).toFixed(1)}M`;
  if (a >= 1e3) return `${+(v / 1e3).toFixed(1)}k`;
  return `${+v.toFixed(a < 10 ? 2 : 0)}`;
}

function frame(label, x, y, xs, ys, { xLabel, yLabel, xLog, yLog, xFormat = short, yFormat = short }) {
  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": label });
  const axes = s("g");
  for (const v of ticks(ys[0], ys[1], yLog)) {
    axes.append(s("line", { x1: PAD.left, x2: W - PAD.right, y1: y(v), y2: y(v), stroke: "#e5e7eb" }));
    axes.append(text(PAD.left - 6, y(v) + 4, yFormat(v), { "text-anchor": "end" }));
  }
  for (const v of ticks(xs[0], xs[1], xLog)) {
    axes.append(s("line", { x1: x(v), x2: x(v), y1: PAD.top, y2: H - PAD.bottom, stroke: "#f3f4f6" }));
    axes.append(text(x(v), H - PAD.bottom + 16, xFormat(v), { "text-anchor": "middle" }));
  }
  axes.append(s("rect", { x: PAD.left, y: PAD.top, width: W - PAD.left - PAD.right,
    height: H - PAD.top - PAD.bottom, fill: "none", stroke: "#9ca3af" }));
  axes.append(text((PAD.left + W - PAD.right) / 2, H - 6, xLabel, { "text-anchor": "middle" }));
  axes.append(text(14, (PAD.top + H - PAD.bottom) / 2, yLabel,
    { "text-anchor": "middle", transform: `rotate(-90 14 ${(PAD.top + H - PAD.bottom) / 2})` }));
  svg.append(axes);
  return svg;
}

function extent(values, log, floor = null) {
  const finite = values.filter((v) => Number.isFinite(v) && (!log || v > 0));
  let lo = Math.min(...finite);
  let hi = Math.max(...finite);
  if (floor !== null) lo = Math.min(lo, floor);
  if (!finite.length) return [log ? 1 : 0, 1];
  if (log) return [lo / 1.25, hi * 1.25];
  const pad = (hi - lo || Math.abs(hi) || 1) * 0.08;
  return [floor === null ? lo - pad : lo, hi + pad];
}

// points: [{x, y, size, label, pareto, chosen, id}]; box: {x, y} limits of the feasible region.
export function scatter(container, { points, box, label, xLabel, yLabel, onSelect }) {
  const xs = extent([...points.map((p) => p.x), box.x].filter(Boolean), true);
  const ys = extent([...points.map((p) => p.y), box.y].filter(Boolean), false, 0);
  const x = scale(xs[0], xs[1], PAD.left, W - PAD.right, true);
  const y = scale(ys[0], ys[1], H - PAD.bottom, PAD.top);
  const svg = frame(label, x, y, xs, ys, { xLabel, yLabel, xLog: true, xFormat: (v) => `$${short(v)}` });
  const right = box.x ? x(Math.min(box.x, xs[1])) : W - PAD.right;
  const top = box.y ? y(Math.min(box.y, ys[1])) : PAD.top;
  svg.insertBefore(s("rect", { x: PAD.left, y: top, width: right - PAD.left,
    height: H - PAD.bottom - top, fill: "#dcfce7", opacity: 0.6 }), svg.firstChild.nextSibling);
  if (box.y) svg.append(text(PAD.left + 4, y(box.y) - 4, `TTFT target ${short(box.y)} ms`));
  if (box.x) svg.append(text(x(box.x) - 4, H - PAD.bottom - 6, `budget $${short(box.x)}`, { "text-anchor": "end" }));
  for (const p of [...points].sort((a, b) => a.chosen - b.chosen)) {
    const dot = s("circle", { cx: x(p.x), cy: y(p.y), r: 3 + p.size * 7,
      fill: p.chosen ? "#b45309" : p.pareto ? "#1d4ed8" : "#93c5fd",
      stroke: p.chosen ? "#111827" : "#1e3a8a", "stroke-width": p.chosen ? 2 : 0.6,
      "fill-opacity": 0.85, "data-id": p.id }, s("title"));
    dot.firstChild.textContent = p.label;
    if (onSelect && p.selectable) {
      dot.style.cursor = "pointer";
      dot.addEventListener("click", () => onSelect(p.id));
    }
    svg.append(dot);
  }
  container.replaceChildren(svg);
}

// series: [{name, points: [{x, y}], dashed, colour}]; lines: horizontal [{y, label}];
// marks: vertical [{x, label}].
export function lineChart(container, { series, lines = [], marks = [], label, xLabel, yLabel, xFormat, yLog = false }) {
  const all = series.flatMap((d) => d.points);
  const xs = extent(all.map((p) => p.x), false);
  const ys = extent([...all.map((p) => p.y), ...lines.map((l) => l.y)], yLog, yLog ? null : 0);
  const x = scale(xs[0], xs[1], PAD.left, W - PAD.right);
  const y = scale(ys[0], ys[1], H - PAD.bottom, PAD.top, yLog);
  const svg = frame(label, x, y, xs, ys, { xLabel, yLabel, yLog, xFormat: xFormat || short });
  for (const l of lines) {
    svg.append(s("line", { x1: PAD.left, x2: W - PAD.right, y1: y(l.y), y2: y(l.y), stroke: "#be123c", "stroke-dasharray": "6 4" }));
    svg.append(text(W - PAD.right - 4, y(l.y) - 4, l.label, { fill: "#9f1239", "text-anchor": "end" }));
  }
  marks.forEach((m, i) => {
    svg.append(s("line", { x1: x(m.x), x2: x(m.x), y1: PAD.top, y2: H - PAD.bottom, stroke: "#6b7280", "stroke-dasharray": "2 3" }));
    // Labels alternate bottom and top, and sit on the side with room, so two never collide.
    const left = x(m.x) > (PAD.left + W - PAD.right) / 2;
    svg.append(text(x(m.x) + (left ? -4 : 4), i % 2 ? PAD.top + 12 : H - PAD.bottom - 6, m.label,
      { "text-anchor": left ? "end" : "start" }));
  });
  series.forEach((d, i) => {
    const colour = d.colour || COLOURS[i % COLOURS.length];
    const pts = d.points.filter((p) => Number.isFinite(p.y));
    if (pts.length > 1) {
      svg.append(s("polyline", { points: pts.map((p) => `${x(p.x)},${y(p.y)}`).join(" "), fill: "none",
        stroke: colour, "stroke-width": 2, "stroke-dasharray": d.dashed ? "5 4" : null }));
    }
    for (const p of pts) svg.append(s("circle", { cx: x(p.x), cy: y(p.y), r: 2.5, fill: colour }));
  });
  const legend = document.createElement("p");
  legend.className = "legend";
  series.forEach((d, i) => {
    const key = document.createElement("span");
    key.style.color = d.colour || COLOURS[i % COLOURS.length];
    key.textContent = d.dashed ? "- - - " : "——— ";
    key.setAttribute("aria-hidden", "true");
    legend.append(key, `${d.name}   `);
  });
  container.replaceChildren(svg, legend);
}
