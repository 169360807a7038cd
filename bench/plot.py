"""The latency-against-concurrency plot, as a hand-written SVG (no plotting library).

Left: latency percentiles of the end-to-end run and the floors' p50 (log
scale). Right: throughput per level. With a second e2e report (a variant with
the proposed infra/local fixes), its end-to-end series are drawn over the first.

    .venv/bin/python -m bench.plot [out.svg] [--overlay moto-as-shipped]

draws the last saved `e2e` run (.local/bench/e2e.json), with `--overlay V`
also `e2e-V.json`.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

WIDTH, HEIGHT = 920, 446
PANEL_W, PANEL_H = 340, 260
TOP = 78
LEFT_X, RIGHT_X = 80, 540
DASHES = {"p50": "", "p95": "6 3", "p99": "2 3"}
E2E, OVERLAY, HTTP, QUEUE = "#1f5fbf", "#8e44ad", "#2a9d5c", "#d2691e"
HTTP_OVERLAY = "#93d3a8"


@dataclass
class Series:
    label: str
    colour: str
    rows: list[dict[str, Any]]
    quantiles: tuple[str, ...]
    annotate: bool


def _log_ticks(low: float, high: float) -> list[float]:
    ticks = []
    exponent = math.floor(math.log10(low))
    while 10**exponent <= high * 1.0001:
        for mantissa in (1, 2, 5):
            value = mantissa * 10**exponent
            if low <= value <= high:
                ticks.append(float(value))
        exponent += 1
    return ticks


def _nice_step(top: float) -> float:
    raw = top / 5
    magnitude = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1
    for factor in (1, 2, 2.5, 5, 10):
        if raw <= factor * magnitude:
            return factor * magnitude
    return 10 * magnitude


def _fmt(value: float) -> str:
    return f"{value:g}" if value >= 1 else f"{value:.2g}"


def _series(report: dict[str, Any], overlay: dict[str, Any] | None) -> list[Series]:
    variant = report.get("variant", "stock")
    out = [
        Series(f"end to end ({variant})", E2E, report["e2e"], ("p50", "p95", "p99"), True),
        Series(f"HTTP floor (401 route, {variant})", HTTP, report["http_floor"], ("p50",), False),
        Series("queue floor (send/receive/delete)", QUEUE, report["queue_floor"], ("p50",), False),
    ]
    if overlay is not None:
        label = f"end to end ({overlay.get('variant', 'variant')}: proposed infra/local fixes)"
        out.insert(1, Series(label, OVERLAY, overlay["e2e"], ("p50", "p95"), True))
        name = overlay.get("variant", "variant")
        rows = overlay["http_floor"]
        floor = Series(f"HTTP floor (401 route, {name})", HTTP_OVERLAY, rows, ("p50",), False)
        out.append(floor)
    return out


def latency_svg(report: dict[str, Any], overlay: dict[str, Any] | None = None) -> str:
    levels: list[int] = report["levels"]
    series = _series(report, overlay)
    parts: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="Helvetica, Arial, sans-serif" font-size="12">',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
        '<text x="20" y="24" font-size="15" font-weight="bold">GPU Cloud, local stack: non-streaming chat '
        "completions (official SDK), latency and throughput against concurrency</text>",
        f'<text x="20" y="42" fill="#555">{escape(_subtitle(report))}</text>',
    ]
    x_min, x_max = math.log2(min(levels)), math.log2(max(levels))

    def x_at(origin: float, level: int) -> float:
        span = (x_max - x_min) or 1
        return origin + 20 + (math.log2(level) - x_min) / span * (PANEL_W - 40)

    # ---- left panel: latency, log scale
    values = [
        row["latency_ms"][q]
        for s in series
        for row in s.rows
        for q in s.quantiles
        if row["latency_ms"].get("n")
    ]
    low = 10 ** math.floor(math.log10(max(min(values), 0.01)))
    high = 10 ** math.ceil(math.log10(max(values)))

    def y_lat(value: float) -> float:
        span = math.log10(high) - math.log10(low)
        return TOP + PANEL_H - (math.log10(max(value, low)) - math.log10(low)) / span * PANEL_H

    parts += _frame(LEFT_X, "latency per request (ms, log scale)", levels, lambda lv: x_at(LEFT_X, lv))
    for tick in _log_ticks(low, high):
        y = y_lat(tick)
        parts.append(f'<line x1="{LEFT_X}" x2="{LEFT_X + PANEL_W}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>')
        parts.append(f'<text x="{LEFT_X - 6}" y="{y + 4:.1f}" text-anchor="end">{_fmt(tick)}</text>')
    for s in series:
        rows = [row for row in s.rows if row["latency_ms"].get("n")]
        for q in s.quantiles:
            points = [(x_at(LEFT_X, row["concurrency"]), y_lat(row["latency_ms"][q])) for row in rows]
            parts.append(_polyline(points, s.colour, DASHES[q]))
        for row in rows:
            x, y = x_at(LEFT_X, row["concurrency"]), y_lat(row["latency_ms"]["p50"])
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{s.colour}"/>')
            parts.append(
                f'<text x="{x + 5:.1f}" y="{y + (12 if s.colour == OVERLAY else -5):.1f}" fill="{s.colour}" '
                f'font-size="10">{_fmt(round(row["latency_ms"]["p50"], 1))}</text>'
            )

    # ---- right panel: throughput, linear scale
    tput = [row["throughput_per_s"] for s in series for row in s.rows]
    step = _nice_step(max(tput))
    top_value = math.ceil(max(tput) / step) * step

    def y_tput(value: float) -> float:
        return TOP + PANEL_H - value / top_value * PANEL_H

    parts += _frame(RIGHT_X, "throughput (requests per second)", levels, lambda lv: x_at(RIGHT_X, lv))
    tick = 0.0
    while tick <= top_value + 1e-9:
        y = y_tput(tick)
        parts.append(
            f'<line x1="{RIGHT_X}" x2="{RIGHT_X + PANEL_W}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>'
        )
        parts.append(f'<text x="{RIGHT_X - 6}" y="{y + 4:.1f}" text-anchor="end">{tick:g}</text>')
        tick += step
    for s in series:
        points = [(x_at(RIGHT_X, row["concurrency"]), y_tput(row["throughput_per_s"])) for row in s.rows]
        parts.append(_polyline(points, s.colour, ""))
        for (x, y), row in zip(points, s.rows, strict=True):
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{s.colour}"/>')
            if s.annotate:
                parts.append(
                    f'<text x="{x + 5:.1f}" y="{y - 5:.1f}" fill="{s.colour}" font-size="10">'
                    f"{row['throughput_per_s']:.0f}/s</text>"
                )

    # ---- legend, two columns
    for index, s in enumerate(series):
        x = 20 + (index % 2) * 450
        y = HEIGHT - 52 + (index // 2) * 16
        parts.append(
            f'<line x1="{x}" x2="{x + 22}" y1="{y - 4}" y2="{y - 4}" stroke="{s.colour}" stroke-width="2"/>'
        )
        quantiles = ", ".join(f"{q} {('solid', 'dashed', 'dotted')[i]}" for i, q in enumerate(s.quantiles))
        parts.append(f'<text x="{x + 28}" y="{y}">{escape(s.label)}: {quantiles}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _subtitle(report: dict[str, Any]) -> str:
    info = report["machine"]
    return (
        f"{info['cpus']} x {info['cpu']} (shared), {info['python']}, {report['workers']} worker pollers, "
        f"{report['seconds_per_level']:g} s per level, commit {info['commit']}, {info['date']}"
    )


def _frame(origin: float, title: str, levels: list[int], x_at: Any) -> list[str]:
    bottom = TOP + PANEL_H
    parts = [
        f'<rect x="{origin}" y="{TOP}" width="{PANEL_W}" height="{PANEL_H}" fill="none" stroke="#999"/>',
        f'<text x="{origin + PANEL_W / 2}" y="{TOP - 8}" text-anchor="middle" font-weight="bold">'
        f"{escape(title)}</text>",
        f'<text x="{origin + PANEL_W / 2}" y="{bottom + 34}" text-anchor="middle">concurrency '
        "(requests in flight)</text>",
    ]
    for level in levels:
        x = x_at(level)
        parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{bottom}" y2="{bottom + 5}" stroke="#999"/>')
        parts.append(f'<text x="{x:.1f}" y="{bottom + 18}" text-anchor="middle">{level}</text>')
    return parts


def _polyline(points: list[tuple[float, float]], colour: str, dash: str) -> str:
    coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
    return f'<polyline points="{coords}" fill="none" stroke="{colour}" stroke-width="2"{dash_attr}/>'


def write_latency_svg(report: dict[str, Any], path: Path, overlay: dict[str, Any] | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(latency_svg(report, overlay))


def main(argv: list[str] | None = None) -> None:
    from bench.common import RESULTS, load

    parser = argparse.ArgumentParser(prog="python -m bench.plot")
    parser.add_argument("out", nargs="?", type=Path, default=RESULTS / "perf-latency.svg")
    parser.add_argument("--overlay", default=None, help="variant whose e2e run is drawn over (e.g. fixed)")
    args = parser.parse_args(argv)
    base = load("e2e")
    if base is None:
        raise SystemExit("no e2e results yet: run `python -m bench e2e` first")
    overlay = load(f"e2e-{args.overlay}") if args.overlay else None
    if args.overlay and overlay is None:
        raise SystemExit(f"no e2e-{args.overlay} results: run `python -m bench e2e --variant {args.overlay}`")
    write_latency_svg(base, args.out, overlay)
    print(args.out)


if __name__ == "__main__":
    main()
