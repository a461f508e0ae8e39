// What every page shares: building elements, calling the API, formatting numbers.
// Elements are built with `h`, never from HTML strings, so user text cannot become markup.

export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "class") node.className = value;
    else node.setAttribute(name, value === true ? "" : value);
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function fill(node, ...children) {
  node.replaceChildren();
  append(node, children);
  return node;
}

export class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

// The API with the signed-in user's cookie; the header tells it the page itself asks.
export async function api(method, path, body) {
  const response = await fetch(path, {
    method,
    credentials: "same-origin",
    headers: { "X-Preflight-UI": "1", ...(body ? { "Content-Type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  if (response.status === 401) {
    location.assign(`/sign-in?next=${encodeURIComponent(location.pathname)}`);
    throw new ApiError(401, "signed out");
  }
  const data = response.headers.get("content-type")?.includes("json") ? await response.json() : null;
  if (!response.ok) throw new ApiError(response.status, data?.detail ?? response.statusText);
  return data;
}

const notice = () => document.getElementById("notice");

export function tell(message, kind = "error") {
  const box = notice();
  box.className = kind === "error" ? "notice" : "notice info";
  fill(box, message);
  box.hidden = false;
}

export function clearNotice() {
  notice().hidden = true;
}

// Run `work` with `button` disabled; a refusal is shown, never swallowed.
export async function busy(button, work) {
  if (button) button.disabled = true;
  try {
    clearNotice();
    return await work();
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 401)) tell(error.message);
    return undefined;
  } finally {
    if (button) button.disabled = false;
  }
}

export const me = () => document.body.dataset.user;
export const hasRole = (role) => {
  const roles = document.body.dataset.roles.split(",");
  return roles.includes(role) || roles.includes("admin");
};

export function num(value, digits = 0) {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  return Number(value).toLocaleString("en-US", {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}

export const ms = (value) => (value === null || value === undefined ? "–" : `${num(value, value < 10 ? 1 : 0)} ms`);
export const usd = (value, digits = 0) => (value === null || value === undefined ? "price unknown" : `$${num(value, digits)}`);
export const when = (iso) => new Date(iso).toLocaleString("en-GB", { dateStyle: "medium", timeStyle: "short" });
export const time = (iso) => new Date(iso).toLocaleTimeString("en-GB");

export function badge(kind, text = kind) {
  return h("span", { class: `badge ${kind}` }, text);
}
