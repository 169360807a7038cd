"""Usage rollup and metrics: counters → Postgres, the metrics API stitched over both, the request log.

Counters are written into moto as the worker writes them (ADD to the hour's
shard item) for fixed past days, one day per test, with key ids unique to the
test. Postgres is the real test database; the module first clears the days
it owns (`OWN_DAYS`), so which of them count as rolled up is decided here only.
"""

from __future__ import annotations

import json
import math
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import psycopg
import pytest
from chalice.test import Client
from pynamodb.expressions.update import Action

from chalicelib.counters import USAGE_SHARDS, latency_bucket
from chalicelib.models import LATENCY_BUCKETS_MS, UsageCounterRecord
from chalicelib.request_log import Cursor
from chalicelib.rollup import FAILED, SUCCEEDED, roll_up_day, roll_up_days
from chalicelib.services import Services
from infra.local.scheduler import start_scheduler
from tests.functional.conftest import ADMIN, chat, create_key

TODAY = datetime.now(UTC).date()
MODELS = ("model-a", "model-b")
# Hours with no traffic at all in the generated pattern.
QUIET_HOURS = frozenset({3, 4, 17})


# Each test writes and rolls up its own day in this range (days ago); no other test uses them.
OWN_DAYS = range(40, 80)


def days_ago(days: int) -> date:
    return TODAY - timedelta(days=days)


def hour_at(day: date, hour: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def new_key_id() -> str:
    return "key_" + uuid.uuid4().hex[:24]


@dataclass
class Usage:
    """What was written for one (key, model, hour): the test's own oracle."""

    requests: int = 0
    errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latencies: list[int] = field(default_factory=list)

    def add(self, other: Usage) -> None:
        self.requests += other.requests
        self.errors += other.errors
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.latencies += other.latencies


def write_counter(hour: datetime, shard: int, key_id: str, model: str, usage: Usage) -> None:
    """ADD to one counter item, as the worker's transaction does."""
    buckets = [0] * len(LATENCY_BUCKETS_MS)
    for latency in usage.latencies:
        buckets[latency_bucket(latency)] += 1
    actions: list[Action] = [
        UsageCounterRecord.requests.add(usage.requests),
        UsageCounterRecord.errors.add(usage.errors),
        UsageCounterRecord.prompt_tokens.add(usage.prompt_tokens),
        UsageCounterRecord.completion_tokens.add(usage.completion_tokens),
        UsageCounterRecord.latency_ms_sum.add(sum(usage.latencies)),
    ]
    actions += [getattr(UsageCounterRecord, f"lat_{i}").add(n) for i, n in enumerate(buckets) if n]
    UsageCounterRecord(hour_shard=f"{hour:%Y-%m-%dT%H}#{shard}", key_model=f"{key_id}#{model}").update(
        actions=actions
    )


Written = dict[tuple[str, str, datetime], Usage]


def write_usage(
    hour: datetime, key_id: str, model: str, usage: Usage, written: Written, shard: int = 0
) -> None:
    write_counter(hour, shard % USAGE_SHARDS, key_id, model, usage)
    written.setdefault((key_id, model, hour), Usage()).add(usage)


def write_day(day: date, key_ids: list[str], hours: range = range(24)) -> Written:
    """A known traffic pattern: varying counts, gaps, each hour split over two shards."""
    written: Written = {}
    for k, key_id in enumerate(key_ids):
        for m, model in enumerate(MODELS):
            for h in hours:
                if h in QUIET_HOURS or (h + k + m) % 5 == 0:
                    continue
                n = 2 + (h * 7 + k * 3 + m) % 6
                latencies = [(h * 37 + j * 53 + k * 11) % 3000 + 5 for j in range(n)]
                half = n // 2
                for part, shard in ((slice(0, half), h + k), (slice(half, n), h + k + 1)):
                    chunk = latencies[part]
                    usage = Usage(
                        requests=len(chunk),
                        errors=len(chunk) // 3,
                        prompt_tokens=10 * len(chunk) + h,
                        completion_tokens=5 * len(chunk) + k,
                        latencies=chunk,
                    )
                    write_usage(hour_at(day, h), key_id, model, usage, written, shard)
    return written


def total_of(written: Written, **where: Any) -> Usage:
    total = Usage()
    for (key_id, model, hour), usage in written.items():
        wanted = {"key_id": key_id, "model": model, "hour": hour}
        if all(wanted[name] == value for name, value in where.items()):
            total.add(usage)
    return total


def assert_counts(point: dict[str, Any], expected: Usage) -> None:
    assert point["requests"] == expected.requests
    assert point["errors"] == expected.errors
    assert point["prompt_tokens"] == expected.prompt_tokens
    assert point["completion_tokens"] == expected.completion_tokens
    assert point["total_tokens"] == expected.prompt_tokens + expected.completion_tokens


def true_percentile(latencies: list[int], quantile: float) -> int:
    ordered = sorted(latencies)
    return ordered[max(math.ceil(quantile * len(ordered)), 1) - 1]


def bucket_bound(latency: float) -> float:
    return LATENCY_BUCKETS_MS[latency_bucket(latency)]


@pytest.fixture(scope="module")
def pg(aws: dict[str, str]) -> Iterator[psycopg.Connection[Any]]:
    from chalicelib.services import get_services

    connection = get_services().postgres()
    # Only the days this module owns: other tests may keep rollups of their own here.
    first, last = days_ago(OWN_DAYS.stop - 1), days_ago(OWN_DAYS.start)
    connection.execute(
        "DELETE FROM usage_hourly WHERE hour >= %s AND hour < %s",
        (hour_at(first, 0), hour_at(last, 0) + timedelta(days=1)),
    )
    connection.execute("DELETE FROM usage_daily WHERE day BETWEEN %s AND %s", (first, last))
    connection.execute("DELETE FROM rollup_runs WHERE day BETWEEN %s AND %s", (first, last))
    yield connection


def metrics(client: Client, path: str = "/api/metrics", **params: Any) -> dict[str, Any]:
    query = urlencode(params)
    response = client.http.get(f"{path}?{query}", headers=ADMIN)
    assert response.status_code == 200, response.body
    body: dict[str, Any] = response.json_body
    return body


def daily_rows(pg: psycopg.Connection[Any], day: date, key_ids: list[str]) -> list[tuple[Any, ...]]:
    return pg.execute(
        "SELECT key_id, model, requests, errors, prompt_tokens, completion_tokens, latency_ms_sum,"
        " latency_buckets FROM usage_daily WHERE day = %s AND key_id = ANY(%s) ORDER BY key_id, model",
        (day, key_ids),
    ).fetchall()


def hourly_rows(pg: psycopg.Connection[Any], day: date, key_ids: list[str]) -> list[tuple[Any, ...]]:
    return pg.execute(
        "SELECT hour, key_id, model, requests, errors, prompt_tokens, completion_tokens, latency_ms_sum,"
        " latency_buckets FROM usage_hourly WHERE hour >= %s AND hour < %s AND key_id = ANY(%s)"
        " ORDER BY hour, key_id, model",
        (hour_at(day, 0), hour_at(day, 0) + timedelta(days=1), key_ids),
    ).fetchall()


def runs_of(pg: psycopg.Connection[Any], day: date) -> list[tuple[Any, ...]]:
    return pg.execute(
        "SELECT status, rows, error FROM rollup_runs WHERE day = %s ORDER BY id", (day,)
    ).fetchall()


def buckets_of(latencies: list[int]) -> list[int]:
    buckets = [0] * len(LATENCY_BUCKETS_MS)
    for latency in latencies:
        buckets[latency_bucket(latency)] += 1
    return buckets


# ---- the rollup ----------------------------------------------------------------


def test_rollup_writes_exact_totals_and_a_rerun_replaces_them(pg: Any, services: Services) -> None:
    # GIVEN a day of known traffic for two keys and two models
    day = days_ago(60)
    keys = sorted([new_key_id(), new_key_id()])
    written = write_day(day, keys)
    # WHEN the day is rolled up
    first = roll_up_day(day, services.new_postgres_connection)
    # THEN the daily rows are the exact sums of what was written
    assert first.status == SUCCEEDED, first.error
    expected_daily = []
    for key_id in keys:
        for model in MODELS:
            usage = total_of(written, key_id=key_id, model=model)
            expected_daily.append(
                (
                    key_id,
                    model,
                    usage.requests,
                    usage.errors,
                    usage.prompt_tokens,
                    usage.completion_tokens,
                    sum(usage.latencies),
                    buckets_of(usage.latencies),
                )
            )
    assert daily_rows(pg, day, keys) == expected_daily
    # ... and there is one hourly row per (hour, key, model) that had traffic, summed over shards
    hourly = hourly_rows(pg, day, keys)
    expected_hourly = sorted(
        (hour, key_id, model, u.requests, u.errors, u.prompt_tokens, u.completion_tokens, sum(u.latencies))
        for (key_id, model, hour), u in written.items()
    )
    assert [row[:8] for row in hourly] == expected_hourly
    assert first.requests == sum(u.requests for u in written.values())
    # WHEN it runs again: the same rows, not doubled
    second = roll_up_day(day, services.new_postgres_connection)
    assert second.status == SUCCEEDED
    assert (second.hourly_rows, second.daily_rows) == (first.hourly_rows, first.daily_rows)
    assert hourly_rows(pg, day, keys) == hourly
    assert daily_rows(pg, day, keys) == expected_daily
    # WHEN a late arrival lands in that day and the day is rolled again
    late = Usage(requests=3, errors=1, prompt_tokens=30, completion_tokens=12, latencies=[20, 40, 4000])
    write_usage(hour_at(day, 23), keys[0], MODELS[0], late, written, shard=2)
    third = roll_up_day(day, services.new_postgres_connection)
    # THEN the day's rows are replaced with the new sums
    assert third.status == SUCCEEDED
    late_total = total_of(written, key_id=keys[0], model=MODELS[0])
    first_row = daily_rows(pg, day, keys)[0]
    assert first_row[:6] == (
        keys[0],
        MODELS[0],
        late_total.requests,
        late_total.errors,
        late_total.prompt_tokens,
        late_total.completion_tokens,
    )
    # AND every run is recorded with the rows it wrote
    rows = first.hourly_rows + first.daily_rows
    assert runs_of(pg, day) == [
        (SUCCEEDED, rows, None),
        (SUCCEEDED, rows, None),
        (SUCCEEDED, third.hourly_rows + third.daily_rows, None),
    ]


def test_the_rollup_fails_cleanly_when_postgres_is_unreachable(
    client: Client, pg: Any, services: Services
) -> None:
    # GIVEN counters for a day, and services whose DATABASE_URL points nowhere
    day = days_ago(44)
    keys = [new_key_id()]
    written = write_day(day, keys, hours=range(6))
    unreachable = Services(
        replace(services.settings, database_url="postgresql://postgres@127.0.0.1:1/nowhere")
    )
    # WHEN the rollup runs with it
    result = roll_up_day(day, unreachable.new_postgres_connection)
    # THEN it reports the failure and wrote nothing
    assert result.status == FAILED
    assert result.error and "OperationalError" in result.error
    assert hourly_rows(pg, day, keys) == []
    assert daily_rows(pg, day, keys) == []
    assert runs_of(pg, day) == []
    # AND the day is still served, from the live counters
    body = metrics(client, apiKeyId=keys[0], **{"from": day.isoformat(), "to": day.isoformat()})
    assert body["totals"]["requests"] == total_of(written).requests


def test_a_failed_rerun_keeps_the_previous_rows(pg: Any, services: Services) -> None:
    # GIVEN a rolled-up day, then a late arrival
    day = days_ago(52)
    keys = [new_key_id()]
    written = write_day(day, keys, hours=range(8))
    assert roll_up_day(day, services.new_postgres_connection).status == SUCCEEDED
    before_hourly, before_daily = hourly_rows(pg, day, keys), daily_rows(pg, day, keys)
    write_usage(hour_at(day, 7), keys[0], MODELS[1], Usage(requests=5, latencies=[30] * 5), written)
    # WHEN the re-run cannot finish: usage_daily is locked by another session and the
    # rollup's connection gives up waiting after its hourly rows were already written
    url = services.settings.database_url

    def impatient() -> psycopg.Connection[Any]:
        return psycopg.connect(url, autocommit=True, options="-c lock_timeout=200")

    with psycopg.connect(url) as blocker:
        blocker.execute("LOCK TABLE usage_daily IN EXCLUSIVE MODE")
        result = roll_up_day(day, impatient)
        blocker.rollback()
    # THEN it failed, recorded why, and the day's rows are those of the last good run
    assert result.status == FAILED
    assert result.error and "LockNotAvailable" in result.error
    assert hourly_rows(pg, day, keys) == before_hourly
    assert daily_rows(pg, day, keys) == before_daily
    status, _, error = runs_of(pg, day)[-1]
    assert status == FAILED and "lock" in error
    # AND the next run succeeds with the late arrival included
    assert roll_up_day(day, services.new_postgres_connection).status == SUCCEEDED
    assert daily_rows(pg, day, keys)[1][2] == total_of(written, model=MODELS[1]).requests


def test_a_rerun_never_erases_a_day_whose_counters_are_gone(pg: Any, services: Services) -> None:
    # GIVEN a rolled-up day
    day = days_ago(41)
    keys = [new_key_id()]
    write_day(day, keys, hours=range(4))
    assert roll_up_day(day, services.new_postgres_connection).status == SUCCEEDED
    before_hourly, before_daily = hourly_rows(pg, day, keys), daily_rows(pg, day, keys)
    # WHEN some of its counters disappear (as they do after their TTL) and it is rolled again
    for shard in range(USAGE_SHARDS):
        for model in MODELS:
            UsageCounterRecord(
                hour_shard=f"{hour_at(day, 1):%Y-%m-%dT%H}#{shard}", key_model=f"{keys[0]}#{model}"
            ).delete()
    result = roll_up_day(day, services.new_postgres_connection)
    # THEN the run fails and the day keeps its rows
    assert result.status == FAILED
    assert result.error and "fewer" in result.error
    assert (hourly_rows(pg, day, keys), daily_rows(pg, day, keys)) == (before_hourly, before_daily)


def test_post_api_rollups_rolls_the_days_asked_for(client: Client, pg: Any) -> None:
    day = days_ago(58)
    keys = [new_key_id()]
    written = write_day(day, keys, hours=range(4, 10))

    def post(body: Any) -> Any:
        return client.http.post(
            "/api/rollups", headers={**ADMIN, "Content-Type": "application/json"}, body=json.dumps(body)
        )

    response = post({"day": day.isoformat()})
    assert response.status_code == 200, response.body
    [ran] = response.json_body["days"]
    assert ran["day"] == day.isoformat() and ran["status"] == SUCCEEDED
    assert ran["requests"] >= total_of(written).requests
    assert [row[2] for row in daily_rows(pg, day, keys)] == [
        total_of(written, model=m).requests for m in MODELS
    ]
    ranged = post({"from": days_ago(57).isoformat(), "to": days_ago(56).isoformat()})
    assert ranged.status_code == 200, ranged.body
    assert [d["day"] for d in ranged.json_body["days"]] == [
        days_ago(57).isoformat(),
        days_ago(56).isoformat(),
    ]
    # Bad requests are 400 naming the param.
    too_long = {"from": days_ago(400).isoformat(), "to": days_ago(33).isoformat()}
    for body, param in (
        ({}, "day"),
        ({"day": "2026-13-01"}, "day"),
        ({"day": 20260101}, "day"),
        ({"day": (TODAY + timedelta(days=1)).isoformat()}, "day"),
        ({"day": day.isoformat(), "from": day.isoformat()}, "day"),
        ({"from": day.isoformat()}, "to"),
        ({"from": day.isoformat(), "to": days_ago(59).isoformat()}, "to"),
        (too_long, "to"),
        ({"day": day.isoformat(), "hours": 3}, "hours"),
    ):
        rejected = post(body)
        assert rejected.status_code == 400, (body, rejected.body)
        assert rejected.json_body["error"]["param"] == param, (body, rejected.body)
    assert client.http.post("/api/rollups", body="{}").status_code == 401


def test_the_scheduler_fires_the_rollup_handler_for_yesterday_and_the_day_before(app: Any, pg: Any) -> None:
    import app as application

    # GIVEN counters on two consecutive days
    day = days_ago(54)
    keys = [new_key_id()]
    written = write_day(day - timedelta(days=1), keys, hours=range(2)) | write_day(
        day, keys, hours=range(20, 24)
    )
    # AND a local scheduler whose clock is 50 ms before 00:15 UTC of the next day
    fire_at = hour_at(day + timedelta(days=1), 0) + timedelta(minutes=15)
    offset = fire_at - timedelta(milliseconds=50) - datetime.now(UTC)
    results: list[dict[str, Any]] = []
    fired = threading.Event()

    def rollup_lambda(event: dict[str, Any], context: Any) -> Any:
        results.append(event)
        results.append(application.rollup(event, context))
        fired.set()

    stop = start_scheduler(rollup_lambda, "cron(15 0 * * ? *)", now=lambda: datetime.now(UTC) + offset)
    try:
        # WHEN the schedule comes
        assert fired.wait(timeout=60)
    finally:
        stop()
    # THEN the real handler ran with an EventBridge event and rolled D-1 and D
    event, outcome = results
    assert event["time"] == fire_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert event["detail-type"] == "Scheduled Event"
    # (with any day of the week before that no run rolled up: none had succeeded here)
    assert [d["day"] for d in outcome["days"]][-2:] == [
        (day - timedelta(days=1)).isoformat(),
        day.isoformat(),
    ]
    assert all(d["status"] == SUCCEEDED for d in outcome["days"])
    for rolled in (day - timedelta(days=1), day):
        in_day = [u for (k, m, hour), u in written.items() if hour.date() == rolled]
        assert sum(row[2] for row in daily_rows(pg, rolled, keys)) == sum(u.requests for u in in_day)


def test_nights_missed_while_postgres_was_down_are_caught_up(pg: Any, services: Services) -> None:
    from chalicelib.rollup import run_scheduled, scheduled_days

    # GIVEN a day's counters, and two nights on which Postgres was unreachable
    day = days_ago(70)
    keys = [new_key_id()]
    written = write_day(day, keys, hours=range(4))
    unreachable = Services(
        replace(services.settings, database_url="postgresql://postgres@127.0.0.1:1/nowhere")
    )
    for night in (1, 2):
        now = hour_at(day + timedelta(days=night), 0) + timedelta(minutes=15)
        runs = roll_up_days(
            scheduled_days(now, unreachable.new_postgres_connection), unreachable.new_postgres_connection
        )
        assert runs and all(run.status == FAILED for run in runs)
    assert daily_rows(pg, day, keys) == []
    # WHEN the third night's rollup runs with Postgres back
    third_night = hour_at(day + timedelta(days=3), 0) + timedelta(minutes=15)
    outcome = run_scheduled(third_night.isoformat(), services)
    # THEN it also rolls the day that neither failed night could
    assert day.isoformat() in [d["day"] for d in outcome["days"]]
    assert sum(row[2] for row in daily_rows(pg, day, keys)) == total_of(written).requests


# ---- the metrics API -------------------------------------------------------------


def test_the_series_has_every_hour_and_is_the_same_before_and_after_the_rollup(
    client: Client, pg: Any, services: Services
) -> None:
    # GIVEN a day of traffic for one key (and another key that must not show)
    day = days_ago(45)
    key_id, other = new_key_id(), new_key_id()
    written = write_day(day, [key_id, other])
    params = {"apiKeyId": key_id, "from": day.isoformat(), "to": day.isoformat(), "granularity": "hour"}
    # WHEN the day is read live from the counters
    live = metrics(client, **params)
    # THEN there are 24 points, one per hour, zeros included, with exactly what was written
    assert [p["ts"] for p in live["series"]] == [f"{day.isoformat()}T{h:02d}:00:00Z" for h in range(24)]
    for h, point in enumerate(live["series"]):
        expected = total_of(written, key_id=key_id, hour=hour_at(day, h))
        assert_counts(point, expected)
        if h in QUIET_HOURS:
            assert point["requests"] == 0 and point["latency_ms"] == {"p50": None, "p95": None, "p99": None}
    assert_counts(live["totals"], total_of(written, key_id=key_id))
    # WHEN the day is rolled up, it is served from Postgres: the same answer
    assert roll_up_day(day, services.new_postgres_connection).status == SUCCEEDED
    assert metrics(client, **params) == live
    # AND by day it is one point with the totals; a model filter narrows it
    daily = metrics(client, **{**params, "granularity": "day"})
    assert [p["ts"] for p in daily["series"]] == [f"{day.isoformat()}T00:00:00Z"]
    assert daily["series"][0] == {"ts": daily["series"][0]["ts"], **live["totals"]}
    by_model = metrics(client, **{**params, "model": MODELS[1]})
    assert_counts(by_model["totals"], total_of(written, key_id=key_id, model=MODELS[1]))


def test_stitched_metrics_count_every_hour_once(client: Client, pg: Any, services: Services) -> None:
    # GIVEN a rolled-up day and, the next day, hours only in the live counters
    rolled_day, live_day = days_ago(50), days_ago(49)
    key_id = new_key_id()
    written = write_day(rolled_day, [key_id])
    assert roll_up_day(rolled_day, services.new_postgres_connection).status == SUCCEEDED
    live_usage = Usage(
        requests=4, errors=1, prompt_tokens=40, completion_tokens=20, latencies=[15, 30, 60, 700]
    )
    write_usage(hour_at(live_day, 2), key_id, MODELS[0], live_usage, written, shard=1)
    write_usage(hour_at(live_day, 2), key_id, MODELS[0], live_usage, written, shard=3)
    # WHEN the metrics span both (from 20:00 on the rolled day to 03:00 on the live one)
    start, end = hour_at(rolled_day, 20), hour_at(live_day, 3)
    body = metrics(client, apiKeyId=key_id, **{"from": start.isoformat(), "to": end.isoformat()})
    # THEN each hour is there once, with what was written
    assert len(body["series"]) == 7
    for n, point in enumerate(body["series"]):
        assert_counts(point, total_of(written, hour=start + timedelta(hours=n)))
    in_period = Usage()
    for (_, _, hour), usage in written.items():
        if start <= hour < end:
            in_period.add(usage)
    assert_counts(body["totals"], in_period)
    # AND the whole of both days, by day, adds up to everything written
    both = metrics(
        client,
        apiKeyId=key_id,
        granularity="day",
        **{"from": rolled_day.isoformat(), "to": live_day.isoformat()},
    )
    assert_counts(both["totals"], total_of(written))
    assert [p["requests"] for p in both["series"]] == [
        total_of(written).requests - 2 * live_usage.requests,
        2 * live_usage.requests,
    ]


def test_percentiles_are_the_bucket_of_the_true_percentile(
    client: Client, pg: Any, services: Services
) -> None:
    day = days_ago(43)
    key_id = new_key_id()
    latencies = [8] * 50 + [80] * 45 + [400] * 4 + [40_000]
    written: Written = {}
    write_usage(hour_at(day, 10), key_id, MODELS[0], Usage(requests=60, latencies=latencies[:60]), written, 0)
    write_usage(hour_at(day, 10), key_id, MODELS[0], Usage(requests=40, latencies=latencies[60:]), written, 1)
    params = {"apiKeyId": key_id, "from": day.isoformat(), "to": day.isoformat()}
    live = metrics(client, **params)["totals"]["latency_ms"]
    assert roll_up_day(day, services.new_postgres_connection).status == SUCCEEDED
    rolled = metrics(client, **params)["totals"]["latency_ms"]
    assert live == rolled == {"p50": 10, "p95": 100, "p99": 500}
    for name, quantile in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
        true = true_percentile(latencies, quantile)
        assert rolled[name] == bucket_bound(true)
        assert true <= rolled[name]


def test_the_summary_has_totals_per_key_and_model_and_the_top_ten_keys(
    client: Client, pg: Any, services: Services
) -> None:
    # GIVEN twelve keys with distinct token usage over a rolled day and a live one
    rolled_day, live_day = days_ago(48), days_ago(47)
    keys = [new_key_id() for _ in range(12)]
    written: Written = {}
    for n, key_id in enumerate(keys):
        usage = Usage(
            requests=n + 1, prompt_tokens=100 * (n + 1), completion_tokens=n, latencies=[50] * (n + 1)
        )
        write_usage(hour_at(rolled_day, n), key_id, MODELS[n % 2], usage, written)
        write_usage(hour_at(live_day, n), key_id, MODELS[0], usage, written, shard=n)
    assert roll_up_day(rolled_day, services.new_postgres_connection).status == SUCCEEDED
    # WHEN the summary covers both days
    body = metrics(
        client, "/api/metrics/summary", **{"from": rolled_day.isoformat(), "to": live_day.isoformat()}
    )
    # THEN totals per key and per model are exact, and the top keys are the ten biggest
    assert_counts(body["totals"], total_of(written))
    assert {row["key_id"] for row in body["by_key"]} == set(keys)
    for row in body["by_key"]:
        assert_counts(row, total_of(written, key_id=row["key_id"]))
    assert {row["model"]: row["requests"] for row in body["by_model"]} == {
        m: total_of(written, model=m).requests for m in MODELS
    }
    assert [row["key_id"] for row in body["top_keys"]] == list(reversed(keys))[:10]
    one_key = metrics(
        client,
        "/api/metrics/summary",
        apiKeyId=keys[3],
        **{"from": rolled_day.isoformat(), "to": live_day.isoformat()},
    )
    assert (
        [row["key_id"] for row in one_key["by_key"]]
        == [row["key_id"] for row in one_key["top_keys"]]
        == [keys[3]]
    )
    assert_counts(one_key["totals"], total_of(written, key_id=keys[3]))


def test_bad_metrics_params_are_400_naming_the_param(client: Client, pg: Any) -> None:
    for query, param in (
        ("granularity=week", "granularity"),
        ("hours=0", "hours"),
        ("hours=ten", "hours"),
        ("hours=9000", "hours"),
        ("from=yesterday", "from"),
        ("from=2026-01-02&to=2026-01-01", "to"),
        ("from=2024-01-01&to=2025-06-01", "from"),
        ("from=2026-01-01&to=2026-03-01&granularity=hour", "granularity"),
        ("from=2026-01-01&to=2026-01-02&hours=3", "hours"),
    ):
        for path in ("/api/metrics", "/api/metrics/summary"):
            response = client.http.get(f"{path}?{query}", headers=ADMIN)
            assert response.status_code == 400, (path, query, response.body)
            assert response.json_body["error"]["param"] == param, (path, query)
    assert client.http.get("/api/metrics").status_code == 401


# ---- real traffic: the request log and live metrics ---------------------------------


def test_real_requests_show_in_the_log_newest_first_and_in_the_metrics(
    client: Client, workers: Any, pg: Any
) -> None:
    # GIVEN a key that made five requests through the queue and the worker
    created = create_key(client)
    job_ids, prompt_tokens, completion_tokens = [], 0, 0
    for n in range(5):
        request = {"model": "gpt-3.5-turbo", "messages": [{"role": "user", "content": f"hello {n}"}]}
        response = chat(client, created["key"], request)
        assert response.status_code == 200, response.body
        body = response.json_body
        job_ids.append(body["id"].removeprefix("chatcmpl-"))
        prompt_tokens += body["usage"]["prompt_tokens"]
        completion_tokens += body["usage"]["completion_tokens"]
    # WHEN the request log is read two at a time
    seen: list[dict[str, Any]] = []
    cursor: str | None = None
    pages = 0
    while True:
        query = f"apiKeyId={created['id']}&limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = client.http.get(f"/api/requests?{query}", headers=ADMIN)
        assert page.status_code == 200, page.body
        pages += 1
        assert len(page.json_body["data"]) <= 2
        seen += page.json_body["data"]
        cursor = page.json_body["next_cursor"]
        if cursor is None:
            break
    # THEN it has every request once, newest first, with its usage and never its body or result
    assert pages == 3
    assert [row["id"] for row in seen] == list(reversed(job_ids))
    assert [row["created_at"] for row in seen] == sorted((row["created_at"] for row in seen), reverse=True)
    assert all(row["status"] == "succeeded" and row["key_id"] == created["id"] for row in seen)
    assert sum(row["prompt_tokens"] for row in seen) == prompt_tokens
    assert sum(row["completion_tokens"] for row in seen) == completion_tokens
    assert set(seen[0]) == {
        "id",
        "key_id",
        "model",
        "status",
        "prompt_tokens",
        "completion_tokens",
        "queue_ms",
        "model_ms",
        "latency_ms",
        "error_code",
        "error_message",
        "created_at",
        "finished_at",
    }
    assert all(row["latency_ms"] is not None and row["finished_at"] for row in seen)
    # AND the filters and the day index agree
    filtered = client.http.get(f"/api/requests?apiKeyId={created['id']}&status=failed", headers=ADMIN)
    assert filtered.json_body == {"object": "list", "data": [], "next_cursor": None}
    by_model = client.http.get(f"/api/requests?apiKeyId={created['id']}&model=gpt-3.5-turbo", headers=ADMIN)
    assert [row["id"] for row in by_model.json_body["data"]] == list(reversed(job_ids))
    latest = client.http.get("/api/requests?limit=3", headers=ADMIN).json_body
    assert [row["id"] for row in latest["data"]] == list(reversed(job_ids))[:3]
    assert latest["next_cursor"] is not None
    after = client.http.get(f"/api/requests?limit=2&cursor={latest['next_cursor']}", headers=ADMIN).json_body
    assert [row["id"] for row in after["data"]] == list(reversed(job_ids))[3:5]
    # AND the live metrics count exactly these requests
    totals = metrics(client, apiKeyId=created["id"], hours=2)["totals"]
    assert totals["requests"] == 5 and totals["errors"] == 0
    assert totals["prompt_tokens"] == prompt_tokens
    assert totals["completion_tokens"] == completion_tokens
    assert totals["latency_ms"]["p50"] is not None


def test_the_log_filters_rows_and_pages_through_them_by_key_and_by_day(client: Client, pg: Any) -> None:
    # GIVEN six async jobs of one key, no worker running, every other one cancelled
    created = create_key(client)
    auth = {"Authorization": f"Bearer {created['key']}"}
    job_ids = []
    for n in range(6):
        request = {"model": "gpt-3.5-turbo", "messages": [{"role": "user", "content": str(n)}]}
        response = chat(client, created["key"], request, asynchronous=True)
        assert response.status_code == 202, response.body
        job_ids.append(response.json_body["id"])
    cancelled = job_ids[1::2]
    for job_id in cancelled:
        assert client.http.delete(f"/v1/jobs/{job_id}", headers=auth).status_code == 200
    newest_first = list(reversed(cancelled))
    # WHEN the cancelled ones are listed a row at a time, for the key and for the whole day
    for scope in (f"apiKeyId={created['id']}&", ""):
        seen: list[dict[str, Any]] = []
        cursor: str | None = None
        for _ in range(50):
            query = f"{scope}status=cancelled&model=gpt-3.5-turbo&limit=1"
            query += f"&cursor={cursor}" if cursor else ""
            page = client.http.get(f"/api/requests?{query}", headers=ADMIN)
            assert page.status_code == 200, page.body
            seen += page.json_body["data"]
            cursor = page.json_body["next_cursor"]
            if cursor is None:
                break
        # THEN every row is a cancelled one, and this key's are exactly its cancelled jobs, newest first
        assert {row["status"] for row in seen} == {"cancelled"}, scope
        assert [row["id"] for row in seen if row["key_id"] == created["id"]] == newest_first, scope
    # AND without the filter the key's log has all six, queued ones included
    everything = client.http.get(f"/api/requests?apiKeyId={created['id']}", headers=ADMIN).json_body
    assert [row["id"] for row in everything["data"]] == list(reversed(job_ids))
    assert {row["status"] for row in everything["data"]} == {"queued", "cancelled"}


def test_bad_request_log_params_are_400(client: Client, pg: Any) -> None:
    day_cursor = Cursor("by_day", TODAY.isoformat(), "2026-01-01T00:00:00.000000+0000", "job").encode()
    key_cursor = Cursor("by_key", "key_one", "2026-01-01T00:00:00.000000+0000", "job").encode()
    for query, param in (
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("status=done", "status"),
        ("cursor=not-a-cursor", "cursor"),
        ("cursor=e30", "cursor"),
        (f"cursor={day_cursor}&apiKeyId=key_one", "cursor"),
        (f"cursor={key_cursor}", "cursor"),
        (f"cursor={key_cursor}&apiKeyId=key_other", "cursor"),
    ):
        response = client.http.get(f"/api/requests?{query}", headers=ADMIN)
        assert response.status_code == 400, (query, response.body)
        assert response.json_body["error"]["param"] == param
