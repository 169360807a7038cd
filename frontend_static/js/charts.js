// Time-series charts with the vendored uPlot (vendor/uPlot.iife.min.js),
// loaded the first time a chart is drawn so other pages never download it.
import { h } from "./dom.js";
import { formatNumber } from "./format.js";

let loading = null;

export function loadChartLibrary() {
  if (window.uPlot) return Promise.resolve(window.uPlot);
  if (!loading) {
    loading = new Promise((resolve, reject) => {
      document.head.append(h("link", { rel: "stylesheet", href: "vendor/uPlot.min.css" }));
      const script = h("script", { src: "vendor/uPlot.iife.min.js" });
      script.onload = () => resolve(window.uPlot);
      script.onerror = () => {
        loading = null;
        script.remove();
        reject(new Error("The chart library (vendor/uPlot.iife.min.js) could not be loaded."));
      };
      document.head.append(script);
    });
  }
  return loading;
}

// Whole-number steps for counts: no "0.5 requests" on an axis.
const COUNT_STEPS = [];
for (let power = 0; power <= 12; power += 1) {
  for (const m of [1, 2, 5]) COUNT_STEPS.push(m * 10 ** power);
}

const compact = new Intl.NumberFormat(undefined, { notation: "compact", maximumFractionDigits: 1 });
const dayFormat = new Intl.DateTimeFormat(undefined, { weekday: "short", month: "short", day: "numeric" });
const hourFormat = new Intl.DateTimeFormat(undefined, {
  month: "short",
  day: "numeric",
  hour: "2-digit",
  minute: "2-digit",
});

/**
 * Draw a line chart into `container`.
 * xs: seconds since the epoch; series: [{ label, color, values, fill }]; unit: "" or "ms".
 * Returns { destroy() }.
 */
export function lineChart(container, { xs, series, unit = "", granularity = "hour", height = 200 }) {
  const uPlot = window.uPlot;
  const suffix = unit ? ` ${unit}` : "";
  const formatValue = (value) => (value === null || value === undefined ? "—" : `${formatNumber(value)}${suffix}`);
  const formatX = (seconds) =>
    seconds === null || seconds === undefined
      ? "—"
      : (granularity === "day" ? dayFormat : hourFormat).format(new Date(seconds * 1000));
  const axis = { stroke: "#4b5563", grid: { stroke: "#eceef2", width: 1 }, ticks: { stroke: "#d1d5db", width: 1 } };
  const options = {
    width: Math.max(container.clientWidth, 240),
    height,
    series: [
      { value: (u, seconds) => formatX(seconds) },
      ...series.map((s) => ({
        label: s.label,
        stroke: s.color,
        width: 2,
        fill: s.fill || undefined,
        spanGaps: false,
        // Sparse series (latency: no value in an hour without requests) always show their points.
        points: { show: s.points || xs.length <= 48, size: 5 },
        value: (u, value) => formatValue(value),
      })),
    ],
    axes: [
      { ...axis },
      {
        ...axis,
        size: unit ? 72 : 56,
        incrs: unit ? undefined : COUNT_STEPS,
        values: (u, splits) => splits.map((v) => (v === null ? "" : compact.format(v) + (unit ? suffix : ""))),
      },
    ],
    scales: {
      x: { time: true },
      y: { range: (u, min, max) => [0, max > 0 ? max * 1.12 : 1] },
    },
    cursor: { drag: { x: false, y: false }, points: { size: 7 } },
    legend: { live: true },
  };
  const data = [xs, ...series.map((s) => s.values)];
  const chart = new uPlot(options, data, container);
  const observer = new ResizeObserver(() => {
    const width = Math.max(container.clientWidth, 240);
    if (Math.abs(width - chart.width) > 1) chart.setSize({ width, height });
  });
  observer.observe(container);
  return {
    destroy() {
      observer.disconnect();
      chart.destroy();
    },
  };
}
