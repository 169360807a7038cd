"""The dashboard's overview with 30 days of usage across 100 keys: load time and bytes.

Run: `.venv/bin/python -m bench.dashboard_bench` (options: --keys, --days, --runs).

It starts its own local stack (Postgres database `gpucloud_bench`, so the
test database is never touched), creates the keys through the admin API, and
seeds usage where it lives in production:
- the past days as the nightly rollup leaves them: `usage_hourly` rows
  (COPY), `usage_daily` summed from them in SQL as the rollup does, and a
  succeeded `rollup_runs` row per day, started after the day ended;
- today, not rolled up yet, as the workers' live hourly counters in DynamoDB.
Then headless Chromium opens the overview cold (a new browser context each
run) for 24 hours, 7 days and 30 days and prints what the browser measured.
Figures only; nothing is asserted.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import httpx
import psycopg
from playwright.sync_api import sync_playwright

from chalicelib.counters import USAGE_SHARDS
from chalicelib.models import LATENCY_BUCKETS_MS
from chalicelib.rollup import BUCKET_SUMS
from infra.local.launcher import RunningStack, start_stack
from tests.browser import CHROMIUM, CHROMIUM_ARGS

MODELS = ("gpt-3.5-turbo", "text-embedding-3-small")
BUCKETS = len(LATENCY_BUCKETS_MS)
SHARDS = USAGE_SHARDS
VIEWS = ((24, "24 hours"), (168, "7 days"), (720, "30 days"))

_COPY_HOURLY = (
    "COPY usage_hourly (hour, key_id, model, requests, errors, prompt_tokens,"
    " completion_tokens, latency_ms_sum, latency_buckets) FROM STDIN"
)
_DAILY_FROM_HOURLY = (
    "INSERT INTO usage_daily (day, key_id, model, requests, errors, prompt_tokens,"  # noqa: S608
    " completion_tokens, latency_ms_sum, latency_buckets)"
    " SELECT (hour AT TIME ZONE 'UTC')::date, key_id, model, sum(requests), sum(errors),"
    f" sum(prompt_tokens), sum(completion_tokens), sum(latency_ms_sum), ARRAY[{BUCKET_SUMS}]::bigint[]"
    " FROM usage_hourly GROUP BY 1, key_id, model"
)
_RUNS_INSERT = (
    "INSERT INTO rollup_runs (day, started_at, finished_at, status, rows)"
    " VALUES (%s, %s, %s, 'succeeded', %s)"
)
# Where the browser's time and bytes went, read from the Performance API after the data is drawn.
_PERFORMANCE = """() => {
  const nav = performance.getEntriesByType('navigation')[0];
  const ready = performance.getEntriesByName('gpucloud:overview-ready')[0];
  const resources = performance.getEntriesByType('resource');
  const api = resources.filter((r) => r.name.includes('/api/'));
  const sum = (list) => list.reduce((total, r) => total + r.transferSize, 0);
  return {
    domContentLoaded: nav.domContentLoadedEventEnd,
    load: nav.loadEventEnd,
    ready: ready ? ready.startTime : null,
    requests: resources.length + 1,
    bytes: nav.transferSize + sum(resources),
    staticBytes: nav.transferSize + sum(resources.filter((r) => !r.name.includes('/api/'))),
    apiBytes: sum(api),
    api: api.map((r) => ({ url: r.name, ms: r.duration, bytes: r.transferSize })),
  };
}"""


class Usage:
    """Plausible usage of one key and model in one hour: a daily rhythm, some errors, latencies."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def hour(self, hour: datetime, weight: float) -> tuple[int, int, int, int, int, list[int]]:
        daytime = 0.35 + 0.65 * max(0.0, 1 - abs(hour.hour - 14) / 10)
        requests = max(0, int(self.rng.gauss(12 * weight * daytime, 3)))
        errors = sum(1 for _ in range(requests) if self.rng.random() < 0.02)
        prompt = requests * self.rng.randint(15, 60)
        completion = (requests - errors) * self.rng.randint(30, 200)
        buckets = [0] * BUCKETS
        latency_sum = 0
        for _ in range(requests):
            index = min(BUCKETS - 1, max(0, int(self.rng.gauss(4, 1.2))))
            buckets[index] += 1
            latency_sum += (10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000)[index]
        return requests, errors, prompt, completion, latency_sum, buckets


def seed_postgres(database_url: str, keys: list[str], days: list[date], usage: Usage) -> int:
    """The past days, as the nightly rollup leaves them."""
    rows = 0
    with psycopg.connect(database_url, autocommit=True) as connection:
        with connection.transaction():
            connection.execute("TRUNCATE usage_hourly, usage_daily, rollup_runs")  # the bench's own database
            with connection.cursor() as cursor, cursor.copy(_COPY_HOURLY) as copy:
                for day in days:
                    midnight = datetime(day.year, day.month, day.day, tzinfo=UTC)
                    for offset in range(24):
                        hour = midnight + timedelta(hours=offset)
                        for index, key_id in enumerate(keys):
                            for model in MODELS[: 1 + (index % 4 == 0)]:
                                weight = (1 + index % 10) / 5 if model == MODELS[0] else 0.3
                                requests, errors, prompt, completion, latency, buckets = usage.hour(
                                    hour, weight
                                )
                                if requests:
                                    copy.write_row(
                                        (
                                            hour,
                                            key_id,
                                            model,
                                            requests,
                                            errors,
                                            prompt,
                                            completion,
                                            latency,
                                            buckets,
                                        )
                                    )
                                    rows += 1
            connection.execute(_DAILY_FROM_HOURLY)
            for day in days:
                ended = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)
                connection.execute(
                    _RUNS_INSERT, (day, ended + timedelta(minutes=5), ended + timedelta(minutes=6), 0)
                )
    return rows


def seed_counters(stack: RunningStack, keys: list[str], now: datetime, usage: Usage) -> int:
    """Today's hours so far, as the workers' live counters (not rolled up yet)."""
    endpoint = str(stack.state["aws_endpoint_url"])
    # The stack's own emulator: it accepts any credentials, and these keep boto3 off real ones.
    session = boto3.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    )
    cloudformation = session.client("cloudformation", endpoint_url=endpoint)
    outputs = cloudformation.describe_stacks(StackName="gpucloud")["Stacks"][0]["Outputs"]
    table = next(o["OutputValue"] for o in outputs if o["OutputKey"] == "UsageTableName")
    dynamodb = session.client("dynamodb", endpoint_url=endpoint)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    items = []
    for offset in range(now.hour + 1):
        hour = midnight + timedelta(hours=offset)
        for index, key_id in enumerate(keys):
            requests, errors, prompt, completion, latency, buckets = usage.hour(hour, (1 + index % 10) / 5)
            if not requests:
                continue
            item: dict[str, Any] = {
                "hour_shard": {"S": f"{hour:%Y-%m-%dT%H}#{index % SHARDS}"},
                "key_model": {"S": f"{key_id}#{MODELS[0]}"},
                "requests": {"N": str(requests)},
                "errors": {"N": str(errors)},
                "prompt_tokens": {"N": str(prompt)},
                "completion_tokens": {"N": str(completion)},
                "latency_ms_sum": {"N": str(latency)},
                "expires_at": {"N": str(int((hour + timedelta(days=90)).timestamp()))},
            }
            item.update({f"lat_{i}": {"N": str(count)} for i, count in enumerate(buckets)})
            items.append(item)
    for start in range(0, len(items), 25):
        batch = {table: [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]}
        while batch:
            batch = dynamodb.batch_write_item(RequestItems=batch).get("UnprocessedItems") or {}
    return len(items)


def measure(stack: RunningStack, runs: int) -> None:
    url = f"{stack.api_url}/dashboard/"
    token = stack.admin_token
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            for hours, label in VIEWS:
                results = []
                for _ in range(runs):
                    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
                    context.add_init_script(f"sessionStorage.setItem('gpucloud.adminToken', {token!r})")
                    page = context.new_page()
                    page.goto(f"{url}#/overview?hours={hours}")
                    page.wait_for_selector("[data-testid=overview][data-state=ready]", timeout=120_000)
                    results.append(page.evaluate(_PERFORMANCE))
                    context.close()
                report(label, results)
        finally:
            browser.close()


def report(label: str, results: list[dict[str, Any]]) -> None:
    def median(name: str) -> float:
        return statistics.median(float(r[name]) for r in results)

    print(f"overview, last {label} (median of {len(results)} cold loads):")
    print(
        f"  DOMContentLoaded {median('domContentLoaded'):.0f} ms   load event {median('load'):.0f} ms"
        f"   data drawn (charts + tables) {median('ready'):.0f} ms"
    )
    print(
        f"  transferred {median('bytes') / 1024:.1f} KiB in {median('requests'):.0f} requests"
        f" (static files {median('staticBytes') / 1024:.1f} KiB, API {median('apiBytes') / 1024:.1f} KiB)"
    )
    by_endpoint: dict[str, list[tuple[float, float]]] = {}
    for result in results:
        for call in result["api"]:
            path = call["url"].split("//", 1)[1].split("/", 1)[1].split("?")[0]
            by_endpoint.setdefault(f"/{path}", []).append((call["ms"], call["bytes"]))
    for path, calls in sorted(by_endpoint.items()):
        ms = statistics.median(c[0] for c in calls)
        size = statistics.median(c[1] for c in calls)
        print(f"    {path:<24} {ms:7.0f} ms  {size / 1024:6.1f} KiB")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--keys", type=int, default=100)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if not CHROMIUM.exists():
        print(f"{CHROMIUM} is missing: install Debian's chromium to run this benchmark.")
        return
    usage = Usage(random.Random(7))
    with tempfile.TemporaryDirectory() as state:
        stack = start_stack(
            Path(state), Path(state) / "stack.log", WORKERS="1", LOCAL_DATABASE="gpucloud_bench"
        )
        try:
            admin = httpx.Client(
                base_url=stack.api_url, headers={"Authorization": f"Bearer {stack.admin_token}"}, timeout=60
            )
            began = time.perf_counter()
            keys = [
                admin.post("/api/keys", json={"name": f"bench key {n:03d}"}).json()["id"]
                for n in range(args.keys)
            ]
            now = datetime.now(UTC)
            today = now.date()
            days = [today - timedelta(days=n) for n in range(args.days, 0, -1)]
            rolled = seed_postgres(str(stack.state["database_url"]), keys, days, usage)
            live = seed_counters(stack, keys, now, usage)
            print(
                f"seeded {args.keys} keys x {args.days} days: {rolled:,} usage_hourly rows (rolled up),"
                f" {live:,} live counters for today ({now.hour + 1} hours)"
                f" in {time.perf_counter() - began:.1f} s"
            )
            totals = admin.get("/api/metrics", params={"hours": 720}).json()["totals"]
            print(f"30-day totals: {totals['requests']:,} requests, {totals['total_tokens']:,} tokens")
            measure(stack, args.runs)
        finally:
            stack.stop()


if __name__ == "__main__":
    main()
