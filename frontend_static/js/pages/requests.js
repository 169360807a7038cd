// Requests: the request log, newest first, filtered by key, model and status,
// a page at a time (the API's cursors; "Newer" walks back through them).
import { api, isAbort } from "../api.js";
import { badge, clear, emptyState, errorBox, field, h, loading, table } from "../dom.js";
import { formatDate, formatMs, formatNumber, formatRelative, formatTime } from "../format.js";
import { keyLabel, loadDeployments, loadKeys } from "../lookups.js";

const PAGE_SIZE = 25;
const STATUSES = ["succeeded", "failed", "queued", "running", "cancelled"];
const filters = { apiKeyId: "", model: "", status: "" };

export async function render(main, { signal }) {
  let cursors = [null]; // cursors[i] opens page i
  let page = 0;
  let keysById = new Map();

  const keySelect = h("select", { name: "apiKeyId" }, h("option", { value: "" }, "All keys"));
  const modelSelect = h("select", { name: "model" }, h("option", { value: "" }, "All models"));
  const statusSelect = h(
    "select",
    { name: "status" },
    h("option", { value: "" }, "All statuses"),
    STATUSES.map((s) => h("option", { value: s }, s)),
  );
  statusSelect.value = filters.status;
  for (const select of [keySelect, modelSelect, statusSelect]) {
    select.addEventListener("change", () => {
      filters[select.name] = select.value;
      restart();
    });
  }
  const listArea = h("div", { "data-testid": "requests", "data-state": "loading" });
  const status = h("p", { class: "updated", role: "status" });
  const newer = h("button", { type: "button", class: "button", onclick: () => go(page - 1) }, "← Newer");
  const older = h("button", { type: "button", class: "button", onclick: () => go(page + 1) }, "Older →");
  const position = h("span", { class: "muted" });
  const pager = h("nav", { class: "pager", "aria-label": "Pages of the request log", hidden: true }, newer, position, older);

  clear(
    main,
    h(
      "div",
      { class: "page-header" },
      h("h1", {}, "Requests"),
      h("div", { class: "page-actions" }, status, h("button", { type: "button", class: "button", onclick: () => restart() }, "Refresh")),
    ),
    h("p", { class: "page-intro" }, "Every API request, newest first. Prompts and answers are not stored here, only their sizes and timings."),
    h("div", { class: "filters", role: "group", "aria-label": "Filters" }, field("API key", keySelect), field("Model", modelSelect), field("Status", statusSelect)),
    listArea,
    pager,
  );

  const lookups = Promise.all([loadKeys(signal), loadDeployments(signal)])
    .then(([keyList, deployments]) => {
      keysById = new Map(keyList.map((k) => [k.id, k]));
      for (const key of keyList) keySelect.append(h("option", { value: key.id }, `${key.name} (${key.prefix}…)`));
      for (const d of deployments) modelSelect.append(h("option", { value: d.name }, d.name));
      keySelect.value = filters.apiKeyId;
      modelSelect.value = filters.model;
    })
    .catch(() => {});

  function restart() {
    cursors = [null];
    go(0);
  }

  async function go(index) {
    listArea.dataset.state = "loading";
    listArea.setAttribute("aria-busy", "true");
    newer.disabled = older.disabled = true;
    if (!listArea.querySelector("table")) clear(listArea, loading("Loading requests…"));
    try {
      const answer = await api("/api/requests", {
        signal,
        query: { ...filters, limit: PAGE_SIZE, cursor: cursors[index] || "" },
      });
      await lookups;
      if (signal.aborted) return;
      page = index;
      cursors[index + 1] = answer.next_cursor;
      clear(listArea, requestTable(answer.data));
      listArea.dataset.state = "ready";
      const first = page * PAGE_SIZE + 1;
      position.textContent = answer.data.length
        ? `Showing ${formatNumber(first)}–${formatNumber(first + answer.data.length - 1)}`
        : "";
      newer.disabled = page === 0;
      older.disabled = !answer.next_cursor;
      pager.hidden = page === 0 && !answer.next_cursor;
      status.textContent = `Updated at ${formatTime(new Date())}`;
    } catch (exc) {
      if (isAbort(exc) || signal.aborted) return;
      listArea.dataset.state = "error";
      clear(listArea, errorBox(`The request log could not be loaded. ${exc.message}`, () => go(index)));
      newer.disabled = page === 0;
    } finally {
      listArea.removeAttribute("aria-busy");
    }
  }

  function requestTable(rows) {
    if (!rows.length) {
      const filtered = filters.apiKeyId || filters.model || filters.status;
      return emptyState(
        filtered ? "No requests match these filters." : "No requests yet.",
        filtered
          ? "Try other filters: the log keeps the last 30 days."
          : "Requests show here as soon as an application calls the API with one of your keys.",
      );
    }
    return table(
      "Requests, newest first",
      [
        { label: "Time" },
        { label: "Key" },
        { label: "Model" },
        { label: "Status" },
        { label: "Tokens", class: "num" },
        { label: "Latency", class: "num" },
        { label: "Error" },
      ],
      rows.map((r) => ({
        attributes: { "data-request-id": r.id, "data-key-id": r.key_id },
        cells: [
          h("span", { title: formatDate(r.created_at) }, formatRelative(r.created_at)),
          keyLabel(keysById.get(r.key_id), r.key_id),
          h("code", {}, r.model),
          h("span", { "data-testid": "request-status" }, badge(r.status)),
          h(
            "span",
            { title: `${formatNumber(r.prompt_tokens)} prompt + ${formatNumber(r.completion_tokens)} completion` },
            `${formatNumber(r.prompt_tokens)} + ${formatNumber(r.completion_tokens)}`,
          ),
          h(
            "div",
            { class: "usage" },
            h("span", {}, formatMs(r.latency_ms)),
            r.queue_ms !== null || r.model_ms !== null
              ? h("span", { class: "muted" }, `queue ${formatMs(r.queue_ms)} · model ${formatMs(r.model_ms)}`)
              : null,
          ),
          r.error_code || r.error_message
            ? h("span", { class: "reason reason-bad" }, r.error_code ? h("code", {}, r.error_code) : null, r.error_message ? ` ${r.error_message}` : "")
            : h("span", { class: "muted" }, "—"),
        ],
      })),
    );
  }

  await go(0);
}
