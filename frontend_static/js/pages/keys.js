// API keys: create (the secret is shown once), list, edit limits, revoke.
import { api, apiOrigin, isAbort } from "../api.js";
import { confirmDialog, formDialog, openDialog } from "../dialogs.js";
import { badge, clear, emptyState, errorBox, field, h, loading, table, uniqueId } from "../dom.js";
import { formatDate, formatNumber, formatRelative, fromLocalInput, plural, toLocalInput } from "../format.js";
import { loadDeployments } from "../lookups.js";

const STATUS_ORDER = { active: 0, expired: 1, revoked: 2 };

function numberInput(name, value, { min = 1, max, placeholder = "Default" } = {}) {
  return h("input", {
    type: "number",
    name,
    inputmode: "numeric",
    min,
    max,
    step: 1,
    placeholder,
    value: value ?? "",
  });
}

function keyFormContent(models, key = null) {
  const allowed = new Set((key && key.allowed_models) || []);
  const choices = [...new Set([...models, ...allowed])].sort();
  const hintId = uniqueId("models-hint");
  return h(
    "div",
    { class: "form-grid" },
    field(
      "Name",
      h("input", { type: "text", name: "name", required: true, maxlength: 100, autocomplete: "off", value: key ? key.name : "" }),
      "Who or what uses the key, e.g. “billing service” or “Ana's laptop”.",
    ),
    field("Requests per minute", numberInput("rate_limit_rpm", key && key.rate_limit_rpm, { max: 1000000 }), "Empty: the platform's default limit."),
    field("Tokens per minute", numberInput("rate_limit_tpm", key && key.rate_limit_tpm, { max: 1000000000 }), "Empty: the platform's default limit."),
    field("Monthly token quota", numberInput("monthly_token_quota", key && key.monthly_token_quota, { min: 0, placeholder: "None" }), "Empty: no monthly quota."),
    field(
      "Expires",
      h("input", { type: "datetime-local", name: "expires_at", value: key ? toLocalInput(key.expires_at) : "" }),
      "In your local time. Empty: never expires.",
    ),
    h(
      "fieldset",
      { class: "field checkbox-group", "aria-describedby": hintId },
      h("legend", {}, "Allowed models"),
      h("p", { class: "hint", id: hintId }, "Leave all unticked to allow every model."),
      choices.length
        ? choices.map((model) =>
            h(
              "label",
              { class: "checkbox" },
              h("input", { type: "checkbox", name: "allowed_models", value: model, checked: allowed.has(model) }),
              h("code", {}, model),
            ),
          )
        : h("p", { class: "muted" }, "No deployments yet."),
    ),
  );
}

function readKeyForm(form) {
  const data = new FormData(form);
  const integer = (name) => {
    const raw = String(data.get(name) ?? "").trim();
    return raw === "" ? null : Number(raw);
  };
  const models = data.getAll("allowed_models").map(String);
  return {
    name: String(data.get("name") ?? "").trim(),
    rate_limit_rpm: integer("rate_limit_rpm"),
    rate_limit_tpm: integer("rate_limit_tpm"),
    monthly_token_quota: integer("monthly_token_quota"),
    expires_at: fromLocalInput(String(data.get("expires_at") ?? "")),
    allowed_models: models.length ? models : null,
  };
}

function limitsText(key) {
  const parts = [];
  if (key.rate_limit_rpm !== null) parts.push(`${formatNumber(key.rate_limit_rpm)} requests/min`);
  if (key.rate_limit_tpm !== null) parts.push(`${formatNumber(key.rate_limit_tpm)} tokens/min`);
  if (key.monthly_token_quota !== null) parts.push(`${formatNumber(key.monthly_token_quota)} tokens/month`);
  return h(
    "div",
    { class: "limits" },
    h("span", {}, parts.length ? parts.join(" · ") : "Default limits"),
    h("span", { class: "muted" }, key.allowed_models ? `Models: ${key.allowed_models.join(", ")}` : "All models"),
  );
}

function showNewKey(created) {
  const titleId = uniqueId("dialog-title");
  const input = h("input", {
    type: "text",
    id: uniqueId("new-key"),
    readonly: true,
    value: created.key,
    class: "secret",
    spellcheck: "false",
    "data-testid": "new-key",
  });
  const copied = h("p", { class: "copy-status", role: "status" });
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(created.key);
    } catch {
      input.select();
      document.execCommand("copy");
    }
    copied.textContent = "Copied to the clipboard.";
  };
  const example =
    `from openai import OpenAI\n\nclient = OpenAI(\n    base_url="${apiOrigin()}/v1",\n    api_key="${created.key}",\n)\n` +
    `reply = client.chat.completions.create(\n    model="gpt-3.5-turbo",\n    messages=[{"role": "user", "content": "Hello"}],\n)`;
  const dialog = h(
    "dialog",
    { class: "dialog dialog-wide", "aria-labelledby": titleId, "data-testid": "new-key-dialog" },
    h("h2", { id: titleId }, "Your new API key"),
    h(
      "div",
      { class: "notice notice-warning" },
      h("p", {}, h("strong", {}, "Copy this key now. It will not be shown again. "),
        "GPU Cloud keeps only a hash of it. If you lose it, revoke it and create a new one."),
    ),
    h("label", { for: input.id }, `API key “${created.name}”`),
    h("div", { class: "copy-row" }, input, h("button", { type: "button", class: "button button-primary", onclick: copy }, "Copy")),
    copied,
    h("details", {}, h("summary", {}, "Use it with the OpenAI SDK"), h("pre", { class: "code" }, h("code", {}, example))),
    h("div", { class: "dialog-actions" }, h("button", { type: "button", class: "button", onclick: () => dialog.close() }, "Done")),
  );
  openDialog(dialog);
  input.focus();
  input.select();
  return new Promise((resolve) => dialog.addEventListener("close", resolve));
}

export async function render(main, { signal, announce }) {
  const listArea = h("div", { "data-testid": "keys", "data-state": "loading" });
  const messages = h("div", {});
  const createButton = h("button", { type: "button", class: "button button-primary", onclick: () => createKey() }, "Create key");
  clear(
    main,
    h("div", { class: "page-header" }, h("h1", {}, "API keys"), h("div", { class: "page-actions" }, createButton)),
    h(
      "p",
      { class: "page-intro" },
      "Keys let applications call the OpenAI-compatible API. Each key has its own limits; revoking one stops it on its next request.",
    ),
    messages,
    listArea,
  );
  let models = [];
  const modelsLoaded = loadDeployments(signal)
    .then((deployments) => {
      models = deployments.map((d) => d.name);
    })
    .catch(() => {});

  async function refresh() {
    listArea.dataset.state = "loading";
    if (!listArea.querySelector("table")) clear(listArea, loading("Loading API keys…"));
    try {
      const { data } = await api("/api/keys", { signal });
      if (signal.aborted) return;
      clear(listArea, keyTable(data));
      listArea.dataset.state = "ready";
    } catch (exc) {
      if (isAbort(exc) || signal.aborted) return;
      clear(listArea, errorBox(`The API keys could not be loaded. ${exc.message}`, refresh));
      listArea.dataset.state = "error";
    }
  }

  function keyTable(keys) {
    if (!keys.length) {
      return emptyState(
        "No API keys yet.",
        "Create a key to call the API from an application or the OpenAI SDK.",
        h("button", { type: "button", class: "button button-primary", onclick: () => createKey() }, "Create your first key"),
      );
    }
    keys.sort(
      (a, b) => STATUS_ORDER[a.status] - STATUS_ORDER[b.status] || String(b.created_at).localeCompare(String(a.created_at)),
    );
    const revoked = keys.filter((k) => k.status !== "active").length;
    const rows = keys.map((key) => ({
      attributes: { "data-key-id": key.id, "data-key-name": key.name },
      cells: [
        h("span", { class: "strong" }, key.name),
        h("code", {}, `${key.prefix}…`),
        h("span", { "data-testid": "key-status" }, badge(key.status)),
        h(
          "div",
          { class: "usage" },
          h("span", {}, plural(key.request_count, "request")),
          h("span", { class: "muted" }, plural(key.prompt_tokens + key.completion_tokens, "token")),
        ),
        h("span", { title: key.last_used_at ? formatDate(key.last_used_at) : "" }, formatRelative(key.last_used_at)),
        limitsText(key),
        h("span", {}, key.expires_at ? formatDate(key.expires_at) : "Never"),
        key.status === "revoked"
          ? h("span", { class: "muted" }, "—")
          : h(
              "div",
              { class: "row-actions" },
              h("button", { type: "button", class: "button button-small", "aria-label": `Edit key ${key.name}`, onclick: () => editKey(key) }, "Edit"),
              h(
                "button",
                { type: "button", class: "button button-small button-danger-quiet", "aria-label": `Revoke key ${key.name}`, onclick: () => revokeKey(key) },
                "Revoke",
              ),
            ),
      ],
    }));
    return h(
      "div",
      {},
      h("p", { class: "muted table-summary" }, `${plural(keys.length, "key")}${revoked ? `, ${formatNumber(revoked)} revoked or expired` : ""}.`),
      table(
        "API keys",
        [
          { label: "Name" },
          { label: "Key" },
          { label: "Status" },
          { label: "Usage" },
          { label: "Last used" },
          { label: "Limits" },
          { label: "Expires" },
          { label: "Actions", class: "actions" },
        ],
        rows,
      ),
    );
  }

  async function createKey() {
    await modelsLoaded;
    const created = await formDialog({
      title: "Create an API key",
      content: keyFormContent(models),
      submitLabel: "Create key",
      wide: true,
      onSubmit: (form) => {
        const values = readKeyForm(form);
        const body = Object.fromEntries(Object.entries(values).filter(([, v]) => v !== null));
        return api("/api/keys", { method: "POST", body });
      },
    });
    if (!created) return;
    await refresh();
    await showNewKey(created);
    announce(`Key “${created.name}” created.`);
  }

  async function editKey(key) {
    await modelsLoaded;
    const updated = await formDialog({
      title: `Edit key “${key.name}”`,
      intro: "Changes apply to the key's next request, on every API instance.",
      content: keyFormContent(models, key),
      submitLabel: "Save changes",
      wide: true,
      onSubmit: async (form) => {
        const values = readKeyForm(form);
        const changes = {};
        for (const [name, value] of Object.entries(values)) {
          const before = key[name];
          const same =
            name === "expires_at"
              ? toLocalInput(before) === toLocalInput(value)
              : JSON.stringify(before ?? null) === JSON.stringify(value);
          if (!same) changes[name] = value;
        }
        if (!Object.keys(changes).length) return key;
        return api(`/api/keys/${encodeURIComponent(key.id)}`, { method: "PATCH", body: changes });
      },
    });
    if (!updated) return;
    announce(`Key “${updated.name}” saved.`);
    await refresh();
  }

  async function revokeKey(key) {
    const confirmed = await confirmDialog({
      title: `Revoke key “${key.name}”?`,
      message: `Applications using ${key.prefix}… will get “401 invalid API key” errors within a few seconds. A revoked key cannot be restored.`,
      confirmLabel: "Revoke key",
    });
    if (!confirmed) return;
    messages.replaceChildren();
    try {
      await api(`/api/keys/${encodeURIComponent(key.id)}`, { method: "DELETE" });
      announce(`Key “${key.name}” revoked.`);
    } catch (exc) {
      if (isAbort(exc)) return;
      clear(messages, errorBox(`Key “${key.name}” could not be revoked. ${exc.message}`));
    }
    await refresh();
  }

  await refresh();
}
