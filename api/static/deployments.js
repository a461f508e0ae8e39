// Every deployment the caller may see, newest first, each linking to its dashboard.
import { api, busy, fill, h, when } from "./ui.js";

const rows = await busy(null, () => api("GET", "/deployments"));
if (rows) {
  fill(document.querySelector("#deployments tbody"), rows.length
    ? rows.reverse().map((d) => h("tr", {},
        h("td", {}, h("a", { href: `/d/${d.id}` }, d.name)),
        h("td", {}, d.namespace),
        h("td", {}, d.target),
        h("td", {}, d.status),
        h("td", { class: "num" }, d.current_revision ?? "–"),
        h("td", {}, d.owner ?? "command line"),
        h("td", {}, when(d.created_at))))
    : h("tr", {}, h("td", { colspan: 7, class: "muted" }, "Nothing deployed yet.")));
}
