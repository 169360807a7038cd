// Deployments: the models the API serves. Create (simulated or an upstream
// OpenAI-compatible URL), watch provisioning → running, stop/start, delete.
import { api, isAbort } from "../api.js";
import { confirmDialog, formDialog } from "../dialogs.js";
import { badge, clear, emptyState, errorBox, field, h, loading, table } from "../dom.js";
import { formatDate, formatNumber, formatRelative } from "../format.js";

const POLL_MS = 1500;
const STATUS_PHRASES = {
  running: "is running",
  failed: "could not start",
  stopped: "is stopped",
  provisioning: "is provisioning",
};

function settingsText(deployment) {
  const c = deployment.config || {};
  if (deployment.backend === "simulated") {
    return h(
      "div",
      { class: "limits" },
      h("span", {}, "Simulated model"),
      h(
        "span",
        { class: "muted" },
        // Settings left out take the simulated backend's defaults.
        `first token ${formatNumber(c.ttft_ms ?? 0)} ms · ${formatNumber(c.per_token_ms ?? 0)} ms/token · context ${formatNumber(c.max_context ?? 8192)} tokens`,
      ),
    );
  }
  return h(
    "div",
    { class: "limits" },
    h("span", {}, h("code", {}, c.model), " at ", h("code", { class: "break" }, c.base_url)),
    h(
      "span",
      { class: "muted" },
      `${c.api_key_set ? "API key set" : "no API key"} · timeout ${formatNumber(c.timeout_s)} s · ${formatNumber(c.max_retries)} retries`,
    ),
  );
}

function deploymentForm() {
  const simulated = h(
    "fieldset",
    { class: "backend-settings", "data-backend": "simulated" },
    h("legend", {}, "Simulated model settings"),
    field("Time to first token (ms)", h("input", { type: "number", name: "ttft_ms", min: 0, max: 60000, step: "any", value: 0 })),
    field("Time per token (ms)", h("input", { type: "number", name: "per_token_ms", min: 0, max: 10000, step: "any", value: 0 })),
    field("Context window (tokens)", h("input", { type: "number", name: "max_context", min: 1, max: 1000000, step: 1, value: 8192 })),
  );
  const upstream = h(
    "fieldset",
    { class: "backend-settings", "data-backend": "openai", hidden: true, disabled: true },
    h("legend", {}, "Upstream settings"),
    field(
      "Base URL",
      h("input", { type: "url", name: "base_url", required: true, placeholder: "https://api.example.com/v1", autocomplete: "off" }),
      "An OpenAI-compatible API, up to and including /v1.",
    ),
    field("Upstream model", h("input", { type: "text", name: "model", required: true, autocomplete: "off", placeholder: "gpt-4o-mini" })),
    field(
      "Upstream API key",
      h("input", { type: "password", name: "api_key", autocomplete: "off" }),
      "Optional. Kept in the secrets store; it is never shown again.",
    ),
    field("Timeout (seconds)", h("input", { type: "number", name: "timeout_s", min: 1, max: 300, step: "any", value: 60 })),
    field("Retries", h("input", { type: "number", name: "max_retries", min: 0, max: 5, step: 1, value: 2 })),
  );
  const choose = (event) => {
    const backend = event.target.value;
    for (const set of [simulated, upstream]) {
      const on = set.dataset.backend === backend;
      set.hidden = !on;
      set.disabled = !on;
    }
  };
  return h(
    "div",
    { class: "form-grid" },
    field(
      "Name",
      h("input", { type: "text", name: "name", required: true, maxlength: 128, autocomplete: "off" }),
      "The model name clients send, e.g. “llama-3-8b”: letters, digits and . _ : / -",
    ),
    h(
      "fieldset",
      { class: "field radio-group" },
      h("legend", {}, "Backend"),
      h("label", { class: "checkbox" }, h("input", { type: "radio", name: "backend", value: "simulated", checked: true, onchange: choose }), "Simulated (no GPU; for testing)"),
      h("label", { class: "checkbox" }, h("input", { type: "radio", name: "backend", value: "openai", onchange: choose }), "Upstream OpenAI-compatible URL"),
    ),
    simulated,
    upstream,
  );
}

function readDeploymentForm(form) {
  const data = new FormData(form); // disabled fieldsets are left out
  const number = (name) => {
    const raw = String(data.get(name) ?? "").trim();
    return raw === "" ? undefined : Number(raw);
  };
  const backend = String(data.get("backend"));
  const config =
    backend === "simulated"
      ? { ttft_ms: number("ttft_ms"), per_token_ms: number("per_token_ms"), max_context: number("max_context") }
      : {
          base_url: String(data.get("base_url") ?? "").trim(),
          model: String(data.get("model") ?? "").trim(),
          api_key: String(data.get("api_key") ?? "") || undefined,
          timeout_s: number("timeout_s"),
          max_retries: number("max_retries"),
        };
  for (const [name, value] of Object.entries(config)) if (value === undefined) delete config[name];
  return { name: String(data.get("name") ?? "").trim(), backend, config };
}

export async function render(main, { signal, announce }) {
  const listArea = h("div", { "data-testid": "deployments", "data-state": "loading" });
  const messages = h("div", {});
  let timer = null;
  let known = new Map(); // name → status, to announce changes

  clear(
    main,
    h(
      "div",
      { class: "page-header" },
      h("h1", {}, "Deployments"),
      h("div", { class: "page-actions" }, h("button", { type: "button", class: "button button-primary", onclick: () => create() }, "Create deployment")),
    ),
    h("p", { class: "page-intro" }, "A deployment is a model the API serves under its name. It takes requests once it is running."),
    messages,
    listArea,
  );

  async function refresh() {
    clearTimeout(timer);
    if (!listArea.querySelector("table")) clear(listArea, loading("Loading deployments…"));
    try {
      const { data } = await api("/api/deployments", { signal });
      if (signal.aborted) return;
      announceChanges(data);
      clear(listArea, deploymentTable(data));
      listArea.dataset.state = "ready";
      // Watch provisioning ones until they settle; stop polling otherwise.
      if (data.some((d) => d.status === "provisioning")) timer = setTimeout(refresh, POLL_MS);
    } catch (exc) {
      if (isAbort(exc) || signal.aborted) return;
      listArea.dataset.state = "error";
      clear(listArea, errorBox(`The deployments could not be loaded. ${exc.message}`, refresh));
    }
  }

  function announceChanges(data) {
    const next = new Map(data.map((d) => [d.name, d.status]));
    for (const [name, status] of next) {
      const before = known.get(name);
      if (before && before !== status) announce(`Deployment “${name}” ${STATUS_PHRASES[status] || `is ${status}`}.`);
    }
    known = next;
  }

  function deploymentTable(deployments) {
    if (!deployments.length) {
      return emptyState(
        "No deployments.",
        "Without a deployment the API has no model to serve. Create one: a simulated model works without a GPU.",
        h("button", { type: "button", class: "button button-primary", onclick: () => create() }, "Create deployment"),
      );
    }
    const rows = deployments.map((d) => ({
      attributes: { "data-deployment": d.name },
      cells: [
        h("code", { class: "strong" }, d.name),
        d.backend === "simulated" ? "Simulated" : "Upstream",
        h(
          "div",
          { class: "status-cell" },
          h("span", { "data-testid": "deployment-status" }, badge(d.status)),
          d.status_reason ? h("span", { class: d.status === "failed" ? "reason reason-bad" : "reason muted" }, d.status_reason) : null,
        ),
        settingsText(d),
        h("span", { title: formatDate(d.updated_at) }, formatRelative(d.updated_at)),
        h(
          "div",
          { class: "row-actions" },
          d.status === "running" || d.status === "provisioning"
            ? h("button", { type: "button", class: "button button-small", "aria-label": `Stop ${d.name}`, onclick: () => setStatus(d, "stopped") }, "Stop")
            : h("button", { type: "button", class: "button button-small", "aria-label": `Start ${d.name}`, onclick: () => setStatus(d, "running") }, "Start"),
          h("button", { type: "button", class: "button button-small button-danger-quiet", "aria-label": `Delete ${d.name}`, onclick: () => remove(d) }, "Delete"),
        ),
      ],
    }));
    return table(
      "Deployments",
      [{ label: "Name" }, { label: "Backend" }, { label: "Status" }, { label: "Settings" }, { label: "Updated" }, { label: "Actions", class: "actions" }],
      rows,
    );
  }

  async function create() {
    const created = await formDialog({
      title: "Create a deployment",
      content: deploymentForm(),
      submitLabel: "Create deployment",
      wide: true,
      onSubmit: (form) => api("/api/deployments", { method: "POST", body: readDeploymentForm(form) }),
    });
    if (!created) return;
    announce(`Deployment “${created.name}” created; it is provisioning.`);
    known.set(created.name, created.status);
    await refresh();
  }

  async function setStatus(deployment, status) {
    messages.replaceChildren();
    try {
      await api(`/api/deployments/${encodeURIComponent(deployment.name)}`, { method: "PATCH", body: { status } });
    } catch (exc) {
      if (isAbort(exc)) return;
      clear(messages, errorBox(`“${deployment.name}” could not be ${status === "stopped" ? "stopped" : "started"}. ${exc.message}`));
    }
    await refresh();
  }

  async function remove(deployment) {
    const confirmed = await confirmDialog({
      title: `Delete deployment “${deployment.name}”?`,
      message: "Requests for this model will fail with “model not found”. Its usage history stays. This cannot be undone.",
      confirmLabel: "Delete deployment",
    });
    if (!confirmed) return;
    messages.replaceChildren();
    try {
      await api(`/api/deployments/${encodeURIComponent(deployment.name)}`, { method: "DELETE" });
      known.delete(deployment.name);
      announce(`Deployment “${deployment.name}” deleted.`);
    } catch (exc) {
      if (isAbort(exc)) return;
      clear(messages, errorBox(`“${deployment.name}” could not be deleted. ${exc.message}`));
    }
    await refresh();
  }

  await refresh();
  return () => clearTimeout(timer);
}
