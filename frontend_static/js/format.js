// Numbers and dates as a person reads them.

const integer = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
const percent = new Intl.NumberFormat(undefined, { style: "percent", maximumFractionDigits: 1 });
const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
const timeOnly = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
const relative = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });

export function formatNumber(value) {
  return value === null || value === undefined ? "—" : integer.format(value);
}

// "1 request", "2 requests".
export function plural(count, word) {
  return `${formatNumber(count)} ${word}${count === 1 ? "" : "s"}`;
}

export function formatPercent(part, whole) {
  return whole ? percent.format(part / whole) : "—";
}

export function formatMs(value) {
  return value === null || value === undefined ? "—" : `${integer.format(value)} ms`;
}

export function formatDate(iso) {
  return iso ? dateTime.format(new Date(iso)) : "—";
}

export function formatTime(date) {
  return timeOnly.format(date);
}

// "3 minutes ago", with the exact time for a title attribute.
export function formatRelative(iso, now = Date.now()) {
  if (!iso) return "never";
  const seconds = (new Date(iso).getTime() - now) / 1000;
  const units = [
    ["year", 31536000],
    ["month", 2592000],
    ["day", 86400],
    ["hour", 3600],
    ["minute", 60],
  ];
  for (const [unit, size] of units) {
    if (Math.abs(seconds) >= size) return relative.format(Math.round(seconds / size), unit);
  }
  return Math.abs(seconds) < 10 ? "just now" : relative.format(Math.round(seconds), "second");
}

// An ISO timestamp as the value of <input type="datetime-local">, in local time.
export function toLocalInput(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  const pad = (n) => String(n).padStart(2, "0");
  return (
    `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}` +
    `T${pad(date.getHours())}:${pad(date.getMinutes())}`
  );
}

export function fromLocalInput(value) {
  return value ? new Date(value).toISOString() : null;
}
