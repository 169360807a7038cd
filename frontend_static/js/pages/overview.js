// Overview: usage over the last 24 hours / 7 days / 30 days, from /api/metrics
// (series and totals) and /api/metrics/summary (per key and per model).
import { api, isAbort } from "../api.js";
import { lineChart, loadChartLibrary } from "../charts.js";
import { clear, emptyState, errorBox, field, h, table } from "../dom.js";
import { formatMs, formatNumber, formatPercent, formatTime } from "../format.js";
import { keyLabel, loadDeployments, loadKeys } from "../lookups.js";

const RANGES = [
  { hours: 24, label: "24 hours" },
  { hours: 168, label: "7 days" },
  { hours: 720, label: "30 days" },
];
const REFRESH_MS = 60_000;
// Remembered while the tab is open, so coming back keeps the filters.
const state = { hours: 24, key: "", model: "" };

function periodText(hours) {
  return `the last ${RANGES.find((r) => r.hours === hours)?.label ?? `${hours} hours`}`;
}

function card(label, testId, value, detail, format = formatNumber) {
  return h(
    "div",
    { class: "card" },
    h("p", { class: "card-label", id: `${testId}-label` }, label),
    h(
      "p",
      { class: "card-value", "data-testid": testId, "data-value": value ?? "", "aria-labelledby": `${testId}-label` },
      format(value),
    ),
    detail ? h("p", { class: "card-detail" }, detail) : null,
  );
}

function totalsCards(totals) {
  return [
    card("Requests", "total-requests", totals.requests),
    card(
      "Tokens",
      "total-tokens",
      totals.total_tokens,
      `${formatNumber(totals.prompt_tokens)} prompt · ${formatNumber(totals.completion_tokens)} completion`,
    ),
    card("Errors", "total-errors", totals.errors, `${formatPercent(totals.errors, totals.requests)} of requests`),
    card("Latency p50", "latency-p50", totals.latency_ms.p50, "half the requests took at most this", formatMs),
    card("Latency p95", "latency-p95", totals.latency_ms.p95, `p99: ${formatMs(totals.latency_ms.p99)}`, formatMs),
  ];
}

function chartFigure(title, summary) {
  const body = h("div", { class: "chart-body", role: "img", "aria-label": summary });
  const figure = h("figure", { class: "chart" }, h("figcaption", {}, title), body);
  return { figure, body };
}

function peak(values) {
  return values.reduce((best, v) => (v !== null && v > best ? v : best), 0);
}

function breakdownTables(summary, keysById) {
  const total = summary.totals.total_tokens;
  const share = (tokens) =>
    h(
      "span",
      { class: "share" },
      h("span", { class: "share-bar", "aria-hidden": "true" }, h("span", { style: `width:${total ? (100 * tokens) / total : 0}%` })),
      formatPercent(tokens, total),
    );
  const usageColumns = [
    { label: "Requests", class: "num" },
    { label: "Tokens", class: "num" },
    { label: "Errors", class: "num" },
    { label: "p95 latency", class: "num" },
    { label: "Share of tokens" },
  ];
  const usageCells = (row) => [
    formatNumber(row.requests),
    formatNumber(row.total_tokens),
    formatNumber(row.errors),
    formatMs(row.latency_ms.p95),
    share(row.total_tokens),
  ];
  const keyRows = summary.top_keys.map((row) => ({
    attributes: { "data-key-id": row.key_id },
    cells: [keyLabel(keysById.get(row.key_id), row.key_id), ...usageCells(row)],
  }));
  const modelRows = summary.by_model.map((row) => ({
    attributes: { "data-model": row.model },
    cells: [h("code", {}, row.model), ...usageCells(row)],
  }));
  const more = summary.by_key.length - summary.top_keys.length;
  return h(
    "div",
    { class: "breakdown" },
    h(
      "section",
      { "aria-labelledby": "top-keys-title" },
      h("h2", { id: "top-keys-title" }, "Top keys by tokens"),
      keyRows.length
        ? table("Top API keys by tokens", [{ label: "Key" }, ...usageColumns], keyRows, { "data-testid": "top-keys" })
        : h("p", { class: "muted" }, "No key was used in this period."),
      more > 0 ? h("p", { class: "muted" }, `and ${formatNumber(more)} more keys.`) : null,
    ),
    h(
      "section",
      { "aria-labelledby": "models-title" },
      h("h2", { id: "models-title" }, "Models"),
      modelRows.length
        ? table("Usage by model", [{ label: "Model" }, ...usageColumns], modelRows, { "data-testid": "models" })
        : h("p", { class: "muted" }, "No model was used in this period."),
    ),
  );
}

// "#/overview?hours=720" opens the 30-day view (links and bookmarks keep the period).
function periodFromHash() {
  const hours = Number(new URLSearchParams(location.hash.split("?")[1] || "").get("hours"));
  return RANGES.some((r) => r.hours === hours) ? hours : null;
}

export async function render(main, { signal }) {
  state.hours = periodFromHash() ?? state.hours;
  const chartLibrary = loadChartLibrary(); // in parallel with the data
  chartLibrary.catch(() => {});
  let charts = [];
  let timer = null;

  const rangeButtons = RANGES.map((range) =>
    h(
      "button",
      {
        type: "button",
        class: "segment",
        "aria-pressed": String(range.hours === state.hours),
        "data-hours": range.hours,
        onclick: (event) => {
          state.hours = range.hours;
          history.replaceState(null, "", `#/overview?hours=${range.hours}`);
          for (const b of rangeButtons) b.setAttribute("aria-pressed", String(b === event.currentTarget));
          refresh();
        },
      },
      range.label,
    ),
  );
  const keySelect = h("select", { name: "apiKeyId", id: "overview-key" }, h("option", { value: "" }, "All keys"));
  const modelSelect = h("select", { name: "model", id: "overview-model" }, h("option", { value: "" }, "All models"));
  keySelect.addEventListener("change", () => {
    state.key = keySelect.value;
    refresh();
  });
  modelSelect.addEventListener("change", () => {
    state.model = modelSelect.value;
    refresh();
  });
  const status = h("p", { class: "updated", role: "status" });
  const refreshButton = h("button", { type: "button", class: "button", onclick: () => refresh() }, "Refresh");
  const totals = h("div", { class: "cards", "data-testid": "totals" });
  const chartsArea = h("div", { class: "charts" });
  const breakdown = h("div", {});
  const problem = h("div", {});
  const region = h(
    "div",
    { class: "overview-data", "data-testid": "overview", "data-state": "loading", "aria-busy": "true" },
    problem,
    h("section", { "aria-label": "Totals" }, totals),
    h("section", { "aria-label": "Usage over time" }, chartsArea),
    breakdown,
  );

  clear(
    main,
    h("div", { class: "page-header" }, h("h1", {}, "Overview"), h("div", { class: "page-actions" }, status, refreshButton)),
    h(
      "div",
      { class: "filters", role: "group", "aria-label": "Filters" },
      h("div", { class: "segmented", role: "group", "aria-label": "Period" }, rangeButtons),
      field("API key", keySelect),
      field("Model", modelSelect),
    ),
    region,
  );
  totals.append(...totalsCards({ requests: null, total_tokens: null, prompt_tokens: null, completion_tokens: null, errors: null, latency_ms: {} }));

  // Filter choices: every key and deployment (and any model seen in the usage).
  let keysById = new Map();
  const lookups = Promise.all([loadKeys(signal), loadDeployments(signal)]).then(([keyList, deployments]) => {
    keysById = new Map(keyList.map((k) => [k.id, k]));
    for (const key of keyList) keySelect.append(h("option", { value: key.id }, `${key.name} (${key.prefix}…)`));
    for (const d of deployments) modelSelect.append(h("option", { value: d.name }, d.name));
    keySelect.value = state.key;
    modelSelect.value = state.model;
    return keysById;
  });
  lookups.catch(() => {});

  function destroyCharts() {
    for (const chart of charts) chart.destroy();
    charts = [];
  }

  async function refresh() {
    clearTimeout(timer);
    region.dataset.state = "loading";
    region.setAttribute("aria-busy", "true");
    status.textContent = "Loading usage…";
    const query = { hours: state.hours, apiKeyId: state.key, model: state.model };
    try {
      const [series, summary] = await Promise.all([
        api("/api/metrics", { query, signal }),
        api("/api/metrics/summary", { query, signal }),
      ]);
      try {
        await lookups;
      } catch {
        // names are a nicety: the ids are shown instead
      }
      if (signal.aborted) return;
      for (const row of summary.by_model) {
        if (![...modelSelect.options].some((o) => o.value === row.model)) {
          modelSelect.append(h("option", { value: row.model }, row.model));
        }
      }
      problem.replaceChildren();
      clear(totals, totalsCards(series.totals));
      await drawCharts(series);
      if (signal.aborted) return;
      clear(breakdown, breakdownTables(summary, keysById));
      region.dataset.state = "ready";
      status.textContent = `Updated at ${formatTime(new Date())}`;
      performance.mark("gpucloud:overview-ready");
    } catch (exc) {
      if (isAbort(exc) || signal.aborted) return;
      region.dataset.state = "error";
      status.textContent = "";
      clear(problem, errorBox(`Usage could not be loaded. ${exc.message}`, () => refresh()));
    } finally {
      region.removeAttribute("aria-busy");
      if (!signal.aborted) timer = setTimeout(refresh, REFRESH_MS);
    }
  }

  async function drawCharts(series) {
    destroyCharts();
    const period = periodText(state.hours);
    if (series.totals.requests === 0) {
      const filtered = state.key || state.model;
      clear(
        chartsArea,
        emptyState(
          filtered ? `No requests match these filters in ${period}.` : `No requests in ${period}.`,
          filtered
            ? "Choose “All keys” and “All models” to see all usage, or a longer period."
            : "Usage shows here a few seconds after an API key is used. Create a key, then call the API with it, for example with the OpenAI SDK.",
          filtered ? null : h("a", { class: "button button-primary", href: "#/keys" }, "Create an API key"),
        ),
      );
      return;
    }
    let uPlot;
    try {
      uPlot = await chartLibrary;
    } catch (exc) {
      clear(chartsArea, errorBox(`${exc.message} The totals and tables above are still right.`));
      return;
    }
    if (!uPlot || signal.aborted) return;
    const points = series.series;
    const xs = points.map((p) => Date.parse(p.ts) / 1000);
    const per = series.granularity === "day" ? "day" : "hour";
    const pick = (f) => points.map(f);
    const requests = pick((p) => p.requests);
    const errors = pick((p) => p.errors);
    const prompt = pick((p) => p.prompt_tokens);
    const completion = pick((p) => p.completion_tokens);
    const p50 = pick((p) => p.latency_ms.p50);
    const p95 = pick((p) => p.latency_ms.p95);
    const specs = [
      {
        title: `Requests per ${per}`,
        summary: `Requests per ${per} over ${period}: ${formatNumber(series.totals.requests)} in total, at most ${formatNumber(peak(requests))} in one ${per}.`,
        options: { series: [{ label: "Requests", color: "#4338ca", fill: "rgba(67,56,202,0.08)", values: requests }] },
      },
      {
        title: `Tokens per ${per}`,
        summary: `Tokens per ${per} over ${period}: ${formatNumber(series.totals.prompt_tokens)} prompt and ${formatNumber(series.totals.completion_tokens)} completion tokens.`,
        options: {
          series: [
            { label: "Prompt", color: "#0e7490", values: prompt },
            { label: "Completion", color: "#7c3aed", values: completion },
          ],
        },
      },
      {
        title: `Errors per ${per}`,
        summary: `Errors per ${per} over ${period}: ${formatNumber(series.totals.errors)} in total.`,
        options: { series: [{ label: "Errors", color: "#b91c1c", fill: "rgba(185,28,28,0.08)", values: errors }] },
      },
      {
        title: "Latency (end to end)",
        summary: `Latency over ${period}: p50 ${formatMs(series.totals.latency_ms.p50)}, p95 ${formatMs(series.totals.latency_ms.p95)}.`,
        options: {
          unit: "ms",
          series: [
            { label: "p50", color: "#047857", values: p50, points: true },
            { label: "p95", color: "#b45309", values: p95, points: true },
          ],
        },
      },
    ];
    const figures = specs.map((spec) => ({ spec, ...chartFigure(spec.title, spec.summary) }));
    clear(
      chartsArea,
      figures.map((f) => f.figure),
      h(
        "p",
        { class: "muted chart-note" },
        "Latency is measured from the request's arrival to its answer, time in the queue included. Percentiles are the upper bounds of histogram buckets (10, 25, 50, 100, 250 ms…).",
      ),
    );
    charts = figures.map(({ spec, body }) =>
      lineChart(body, { xs, granularity: series.granularity, ...spec.options }),
    );
  }

  await refresh();
  return () => {
    clearTimeout(timer);
    destroyCharts();
  };
}
