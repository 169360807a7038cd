// The dashboard shell: sign-in, sign-out and a router over location.hash.
// Each page is a module loaded on first visit, exporting
// render(main, { signal, announce }) and optionally returning a cleanup function.
import { api, clearToken, getToken, isAbort, setToken } from "./api.js";
import { errorBox, h, loading } from "./dom.js";

const PAGES = {
  overview: { title: "Overview", load: () => import("./pages/overview.js") },
  keys: { title: "API keys", load: () => import("./pages/keys.js") },
  deployments: { title: "Deployments", load: () => import("./pages/deployments.js") },
  requests: { title: "Requests", load: () => import("./pages/requests.js") },
  health: { title: "Health", load: () => import("./pages/health.js") },
};
const DEFAULT_PAGE = "overview";

const signinView = document.getElementById("signin-view");
const appView = document.getElementById("app-view");
const main = document.getElementById("main");
const announcer = document.getElementById("announcer");
let current = null; // { controller, cleanup }
let announceTimer = null;

export function announce(text) {
  announcer.textContent = text;
  announcer.classList.add("toast-visible");
  clearTimeout(announceTimer);
  announceTimer = setTimeout(() => announcer.classList.remove("toast-visible"), 4000);
}

function pageName() {
  const name = location.hash.replace(/^#\/?/, "").split(/[/?]/)[0];
  return Object.hasOwn(PAGES, name) ? name : null;
}

function leavePage() {
  if (!current) return;
  current.controller.abort();
  if (typeof current.cleanup === "function") current.cleanup();
  current = null;
}

async function route({ focus = true } = {}) {
  if (!getToken()) return;
  const name = pageName();
  if (!name) {
    history.replaceState(null, "", `#/${DEFAULT_PAGE}`);
    return route({ focus });
  }
  leavePage();
  const page = PAGES[name];
  document.title = `${page.title} · GPU Cloud`;
  for (const link of document.querySelectorAll("[data-route]")) {
    if (link.dataset.route === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  const controller = new AbortController();
  const state = { controller, cleanup: null };
  current = state;
  // The previous page's content goes at once: nothing stale is shown (or found by tests) under the new name.
  main.replaceChildren(h("h1", {}, page.title), loading(`Loading ${page.title.toLowerCase()}…`));
  main.dataset.page = name;
  try {
    const module = await page.load();
    if (controller.signal.aborted) return;
    state.cleanup = await module.render(main, { signal: controller.signal, announce });
  } catch (exc) {
    if (isAbort(exc) || controller.signal.aborted) return;
    main.replaceChildren(h("h1", {}, page.title), errorBox(`This page could not be shown: ${exc.message}`, () => route()));
  }
  if (focus && !controller.signal.aborted) {
    const heading = main.querySelector("h1");
    if (heading) {
      heading.setAttribute("tabindex", "-1");
      heading.focus({ preventScroll: true });
    }
  }
}

function showApp() {
  signinView.hidden = true;
  appView.hidden = false;
}

function showSignIn(message) {
  leavePage();
  main.replaceChildren();
  appView.hidden = true;
  signinView.hidden = false;
  document.title = "Sign in · GPU Cloud";
  const error = document.getElementById("signin-error");
  error.replaceChildren(message ? h("p", {}, message) : "");
  const input = document.getElementById("signin-token");
  input.value = "";
  input.toggleAttribute("aria-invalid", Boolean(message));
  input.focus();
}

async function signIn(event) {
  event.preventDefault();
  const input = document.getElementById("signin-token");
  const error = document.getElementById("signin-error");
  const button = document.getElementById("signin-submit");
  const token = input.value.trim();
  error.replaceChildren();
  input.removeAttribute("aria-invalid");
  if (!token) {
    error.append(h("p", {}, "Enter the admin token."));
    input.setAttribute("aria-invalid", "true");
    input.focus();
    return;
  }
  button.disabled = true;
  button.textContent = "Signing in…";
  try {
    await api("/api/deployments", { token });
    setToken(token);
    input.value = "";
    showApp();
    await route({ focus: true });
  } catch (exc) {
    const message =
      exc.status === 401
        ? "That admin token is not correct. Check it and try again."
        : `Could not sign in: ${exc.message}`;
    error.append(h("p", {}, message));
    input.setAttribute("aria-invalid", "true");
    input.focus();
    input.select();
  } finally {
    button.disabled = false;
    button.textContent = "Sign in";
  }
}

function signOut() {
  clearToken();
  showSignIn("");
  announce("You are signed out.");
}

document.getElementById("signin-form").addEventListener("submit", signIn);
document.getElementById("signout").addEventListener("click", signOut);
document.getElementById("skip-link").addEventListener("click", (event) => {
  event.preventDefault(); // the hash is the router's
  const target = appView.hidden ? document.getElementById("signin-token") : main;
  target.focus();
});
window.addEventListener("hashchange", () => route());
window.addEventListener("gpucloud:unauthorized", () => {
  clearToken();
  showSignIn("The admin token was not accepted any more (it may have been changed). Sign in again.");
});

if (getToken()) {
  showApp();
  route({ focus: false });
} else {
  showSignIn("");
}
