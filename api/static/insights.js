// The assistant's own numbers (admins): acceptance, specification edits, reply latency, time
// to a working deployment and deploy success, each against its target where one is set.
import { api, busy, fill, h, num } from "./ui.js";

const percent = (v) => (v === null || v === undefined ? "–" : `${num(v * 100, 0)} %`);
const seconds = (v) => (v === null || v === undefined ? "–" : `${num(v, v < 10 ? 1 : 0)} s`);
const MEASURES = [
  ["acceptance_rate", "Recommendations accepted", percent, null],
  ["spec_edit_rate", "Specifications edited (lower: better defaults)", percent, null],
  ["reply_latency_p90_s", "Reply latency, p90", seconds, "at most"],
  ["time_to_deploy_p90_s", "First message to a working deployment, p90", seconds, "at most"],
  ["deploy_success_rate", "Deploys that succeed", percent, "at least"],
];

const found = await busy(null, () => api("GET", "/insights"));
if (found) {
  fill(document.querySelector("#insights tbody"), MEASURES.map(([key, label, show, way]) => {
    const m = found[key];
    return h("tr", {},
      h("th", { scope: "row" }, label),
      h("td", { class: "num" }, show(m.value)),
      h("td", { class: "num" }, m.target === null ? "–" : `${way} ${show(m.target)}`),
      h("td", {}, m.met === null ? "–" : m.met ? "yes" : "no"));
  }), h("tr", {}, h("th", { scope: "row" }, "Sessions"), h("td", { class: "num" }, num(found.sessions)),
    h("td", { class: "num" }, "–"), h("td", {}, "–")),
  h("tr", {}, h("th", { scope: "row" }, "Sessions now, by stage"),
    h("td", { colspan: 3 }, Object.entries(found.counts.stages).map(([s, n]) => `${s} ${n}`).join(" · ") || "–")));
}
