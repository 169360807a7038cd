// Health: each dependency as GET /health reports it (no admin token needed).
import { api, isAbort } from "../api.js";
import { badge, clear, errorBox, h, loading } from "../dom.js";
import { formatMs, formatNumber, formatTime } from "../format.js";

const REFRESH_MS = 10_000;
const DEPENDENCIES = [
  ["sqs", "Job queue (SQS)", "Carries requests to the workers. Failed jobs end in the dead-letter queue."],
  ["dynamodb", "Tables (DynamoDB)", "Keys, deployments, jobs and hourly usage counters."],
  ["redis", "Redis", "Rate limits, and waking the API up when a job is done."],
  ["postgres", "Postgres", "Usage history rolled up every night."],
];

function checkCard(id, title, purpose, check) {
  if (!check) {
    return h("div", { class: "card health-card" }, h("h2", {}, title), h("p", { class: "muted" }, "Not reported by this API."));
  }
  const ok = check.status === "ok";
  const facts = [["Response time", formatMs(check.latency_ms)]];
  if (id === "sqs") {
    facts.push(["Jobs waiting", formatNumber(check.queue_depth)]);
    facts.push(["Dead-letter queue", formatNumber(check.dlq_depth)]);
  }
  return h(
    "section",
    { class: `card health-card ${ok ? "" : "health-down"}`, "data-dependency": id, "aria-labelledby": `health-${id}` },
    h("div", { class: "health-head" }, h("h2", { id: `health-${id}` }, title), badge(ok ? "ok" : "down")),
    h("p", { class: "muted" }, purpose),
    ok ? null : h("p", { class: "reason reason-bad" }, `Not working${check.error ? ` (${check.error})` : ""}. Requests that need it fail until it is back.`),
    h("dl", { class: "facts" }, facts.map(([label, value]) => [h("dt", {}, label), h("dd", {}, value)])),
    id === "sqs" && check.dlq_depth > 0
      ? h(
          "p",
          { class: "notice notice-warning" },
          `${formatNumber(check.dlq_depth)} message(s) failed repeatedly and wait in the dead-letter queue. Their jobs are marked failed; look for errors on the Requests page.`,
        )
      : null,
  );
}

export async function render(main, { signal }) {
  let timer = null;
  const area = h("div", { "data-testid": "health", "data-state": "loading" }, loading("Checking the services…"));
  const status = h("p", { class: "updated", role: "status" });
  clear(
    main,
    h(
      "div",
      { class: "page-header" },
      h("h1", {}, "Health"),
      h("div", { class: "page-actions" }, status, h("button", { type: "button", class: "button", onclick: () => refresh() }, "Check now")),
    ),
    area,
  );

  async function refresh() {
    clearTimeout(timer);
    area.setAttribute("aria-busy", "true");
    try {
      const report = await api("/health", { auth: false, signal, acceptStatus: [503] });
      if (signal.aborted) return;
      const down = DEPENDENCIES.filter(([id]) => report.checks[id] && report.checks[id].status !== "ok");
      clear(
        area,
        h(
          "div",
          { class: `notice ${down.length ? "notice-error" : "notice-ok"}`, "data-testid": "health-summary" },
          h(
            "p",
            {},
            down.length
              ? `Not working: ${down.map(([, title]) => title).join(", ")}. The API answers “service unavailable” to requests that need it.`
              : "All services are working.",
          ),
        ),
        h("div", { class: "health-grid" }, DEPENDENCIES.map(([id, title, purpose]) => checkCard(id, title, purpose, report.checks[id]))),
      );
      area.dataset.state = "ready";
      status.textContent = `Checked at ${formatTime(new Date())}`;
    } catch (exc) {
      if (isAbort(exc) || signal.aborted) return;
      area.dataset.state = "error";
      clear(area, errorBox(`The health check could not be read. ${exc.message}`, () => refresh()));
    } finally {
      area.removeAttribute("aria-busy");
      if (!signal.aborted) timer = setTimeout(refresh, REFRESH_MS);
    }
  }

  await refresh();
  return () => clearTimeout(timer);
}
