// The home page: start a session from plain words, list your sessions and, for an
// approver, the sessions waiting for a decision.
import { api, busy, fill, h, hasRole, when } from "./ui.js";

const STAGE_NAMES = {
  collect: "collecting requirements", recommend: "recommending", explore: "exploring options",
  finalize: "awaiting approval", deploy: "deploying", validate: "validating",
  observe: "live, monitored", rolled_back: "rolled back", cancelled: "cancelled", closed: "closed",
};

document.getElementById("start-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const message = document.getElementById("describe").value.trim();
  if (!message) return;
  const button = event.submitter;
  const session = await busy(button, () => api("POST", "/sessions", { message }));
  if (session) location.assign(`/s/${session.session_id}`);
});

function row(s) {
  return h("tr", {},
    h("td", {}, when(s.started_at)),
    h("td", {}, h("a", { href: `/s/${s.session_id}` }, s.session_id.slice(8, 16))),
    h("td", {}, STAGE_NAMES[s.stage] ?? "unknown"),
    h("td", {}, s.status));
}

async function load() {
  const sessions = await busy(null, () => api("GET", "/sessions"));
  const body = document.querySelector("#sessions tbody");
  if (!sessions) return;
  fill(body, sessions.length ? sessions.map(row)
    : h("tr", {}, h("td", { colspan: 4, class: "muted" }, "No sessions yet: describe a use case above.")));
  if (hasRole("approver")) {
    const waiting = await busy(null, () => api("GET", "/sessions?awaiting_approval=true"));
    if (!waiting) return;
    document.getElementById("approvals-card").hidden = false;
    fill(document.getElementById("approvals"), waiting.length
      ? waiting.map((s) => h("li", {}, h("a", { href: `/s/${s.session_id}` },
          `Session ${s.session_id.slice(8, 16)} by ${s.owner}`), ` · ${when(s.started_at)}`))
      : h("li", { class: "muted" }, "Nothing waits for you."));
  }
}

load();
