"""Roll up one day of 1,000,000 requests across 1,000 keys; print time and memory.

Writes the counter items the worker would have left for that traffic (1,000
keys x 24 hours x 1 model, each (key, hour) spread over up to USAGE_SHARDS
shard items, request counts summing to exactly 1,000,000) into moto's
in-process DynamoDB, then times the real rollup into Postgres (database
`gpucloud_bench`, found or started like the local stack's). Figures only.

Most of the time is moto's (about a millisecond per item returned, in
process): the output says how much was spent inside the DynamoDB calls and
how much was the rollup's own work. Memory is the process's resident set,
sampled during the rollup, against the baseline of moto holding the table.

Run: `.venv/bin/python -m bench.rollup_bench [--requests N] [--keys K] [--rerun] [--tracemalloc]`.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import random
import resource
import threading
import time
import tracemalloc
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MODEL = "gpt-3.5-turbo"
# A day no other bench seeds (the dashboard bench fills the last 30 days of the same database).
BENCH_DAY = date(2001, 1, 1)
# Share of requests per latency bucket (≤10 ms ... open), a plausible GPU profile.
LATENCY_PROFILE = (0.0, 0.0, 0.01, 0.04, 0.15, 0.30, 0.25, 0.15, 0.06, 0.03, 0.008, 0.002)


def _environment() -> None:
    """Fake credentials and no endpoint: everything AWS is in-process moto."""
    os.environ.update(
        {
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "GPUCLOUD_STAGE": "bench",
        }
    )
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        os.environ.pop(name, None)


def split_exactly(total: int, weights: list[float]) -> list[int]:
    """`total` split in proportion to `weights`, summing to `total` (largest remainder)."""
    scale = total / sum(weights)
    shares = [w * scale for w in weights]
    counts = [math.floor(s) for s in shares]
    by_remainder = sorted(range(len(shares)), key=lambda i: shares[i] - counts[i], reverse=True)
    for i in by_remainder[: total - sum(counts)]:
        counts[i] += 1
    return counts


def traffic(requests: int, keys: int, rng: random.Random) -> list[tuple[int, int, int]]:
    """(key, hour, requests) with a long-tailed key mix and a daily curve."""
    key_weights = [1 / (k + 1) ** 0.8 for k in range(keys)]
    hour_weights = [1.0 + 0.6 * math.sin((h - 9) / 24 * 2 * math.pi) for h in range(24)]
    cells = [(k, h) for k in range(keys) for h in range(24)]
    counts = split_exactly(requests, [key_weights[k] * hour_weights[h] for k, h in cells])
    return [(k, h, n) for (k, h), n in zip(cells, counts, strict=True) if n > 0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=1_000_000)
    parser.add_argument("--keys", type=int, default=1_000)
    parser.add_argument("--rerun", action="store_true", help="roll the day up a second time, timed")
    parser.add_argument("--tracemalloc", action="store_true", help="one more run under tracemalloc (slow)")
    args = parser.parse_args()
    _environment()

    from moto import mock_aws

    from infra.local import dependencies, emulator

    database_url, stop_postgres = dependencies.postgres_url(ROOT / ".local" / "bench", "gpucloud_bench")
    os.environ["DATABASE_URL"] = database_url
    try:
        with mock_aws():
            outputs = emulator.deploy(None, "us-east-1")
            os.environ.update(emulator.environment_from_outputs(outputs))
            _run(args.requests, args.keys, database_url, rerun=args.rerun, traced=args.tracemalloc)
    finally:
        if stop_postgres is not None:
            stop_postgres()


def _run(requests: int, keys: int, database_url: str, *, rerun: bool, traced: bool) -> None:
    import psycopg

    from chalicelib.counters import USAGE_SHARDS
    from chalicelib.models import UsageCounterRecord
    from chalicelib.postgres import migrate
    from chalicelib.rollup import roll_up_day

    day = BENCH_DAY
    with psycopg.connect(database_url, autocommit=True) as connection:
        migrate(connection)
        # A fresh start for the bench's own day (a smaller run must not meet a bigger one's rows).
        connection.execute(
            "DELETE FROM usage_hourly WHERE hour >= %s AND hour < %s",
            (_hour(day, 0), _hour(day, 0) + timedelta(days=1)),
        )
        connection.execute("DELETE FROM usage_daily WHERE day = %s", (day,))
        connection.execute("DELETE FROM rollup_runs WHERE day = %s", (day,))

    rng = random.Random(20261127)
    cells = traffic(requests, keys, rng)
    began = time.perf_counter()
    items = 0
    with UsageCounterRecord.batch_write() as batch:
        for key, hour, n in cells:
            # The worker commits a batch's usage to one random shard: busy cells touch them all.
            per_shard = split_exactly(n, [rng.random() + 0.01 for _ in range(min(n, USAGE_SHARDS))])
            for shard, count in enumerate(per_shard):
                if count == 0:
                    continue
                record = UsageCounterRecord(
                    hour_shard=f"{_hour(day, hour):%Y-%m-%dT%H}#{shard}",
                    key_model=f"key_{key:06d}#{MODEL}",
                    requests=count,
                    errors=count // 100,
                    prompt_tokens=count * 120,
                    completion_tokens=count * 80,
                    latency_ms_sum=count * 800,
                )
                for bucket, in_bucket in enumerate(split_exactly(count, list(LATENCY_PROFILE))):
                    setattr(record, f"lat_{bucket}", in_bucket)
                batch.save(record)
                items += 1
    written_in = time.perf_counter() - began

    def connect() -> psycopg.Connection:
        return psycopg.connect(database_url, autocommit=True)

    in_dynamodb = DynamoDBClock(UsageCounterRecord)
    sampler = PeakRss().start()
    first = roll_up_day(day, connect)
    peak_rss, baseline_rss = sampler.stop()
    dynamodb_seconds, dynamodb_calls = in_dynamodb.seconds, in_dynamodb.calls
    second = roll_up_day(day, connect) if rerun else None
    tracemalloc_peak = None
    if traced:
        tracemalloc.start()
        roll_up_day(day, connect)
        tracemalloc_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    with psycopg.connect(database_url) as connection:
        row = connection.execute(
            "SELECT count(*), sum(requests) FROM usage_daily WHERE day = %s", (day,)
        ).fetchone()
    daily_keys, daily_requests = row if row else (0, 0)

    print(f"machine: {platform.machine()} {platform.python_implementation()} {platform.python_version()}")
    print(
        f"traffic: {requests:,} requests, {keys:,} keys x 24 h x 1 model, "
        f"{items:,} counter items in {USAGE_SHARDS} shards (written to moto in {written_in:.1f} s)"
    )
    print(
        f"rollup of {day}: {first.status} in {first.seconds:.1f} s: {first.requests:,} requests, "
        f"{first.hourly_rows:,} hourly + {first.daily_rows:,} daily rows"
    )
    print(
        f"  of which {dynamodb_seconds:.1f} s inside {dynamodb_calls} DynamoDB Query calls "
        f"(moto in-process, {1000 * dynamodb_seconds / max(items, 1):.2f} ms per item), "
        f"{first.seconds - dynamodb_seconds:.1f} s the rollup's own work (parsing, merging, COPY, SQL)"
    )
    print(
        f"memory: process RSS {baseline_rss / 1e6:.0f} MB before (moto holds the table), "
        f"peak {peak_rss / 1e6:.0f} MB during the rollup (+{(peak_rss - baseline_rss) / 1e6:.0f} MB)"
    )
    if tracemalloc_peak is not None:
        print(f"  tracemalloc peak during a traced re-run: {tracemalloc_peak / 1e6:.1f} MB")
    if second is not None:
        print(
            f"re-run (idempotent): {second.status} in {second.seconds:.1f} s, "
            f"{second.hourly_rows:,} hourly rows"
        )
    print(f"usage_daily for {day}: {daily_keys:,} rows, {int(daily_requests or 0):,} requests")


class DynamoDBClock:
    """Time spent inside the model's DynamoDB Query calls (botocore's before/after-call events)."""

    def __init__(self, model: Any) -> None:
        self.seconds = 0.0
        self.calls = 0
        self._began = 0.0
        events = model._get_connection().connection.client.meta.events
        events.register("before-call.dynamodb.Query", self._before)
        events.register("after-call.dynamodb.Query", self._after)

    def _before(self, **kwargs: Any) -> None:
        self._began = time.perf_counter()

    def _after(self, **kwargs: Any) -> None:
        self.seconds += time.perf_counter() - self._began
        self.calls += 1


class PeakRss:
    """The process's resident memory, sampled every 20 ms in a thread (Linux /proc)."""

    def __init__(self) -> None:
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self.baseline = self.peak = self.current()

    @staticmethod
    def current() -> int:
        try:
            pages = int(Path("/proc/self/statm").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        return pages * resource.getpagesize()

    def _sample(self) -> None:
        while not self._stopped.wait(0.02):
            self.peak = max(self.peak, self.current())

    def start(self) -> PeakRss:
        self._thread.start()
        return self

    def stop(self) -> tuple[int, int]:
        self._stopped.set()
        self._thread.join()
        self.peak = max(self.peak, self.current())
        return self.peak, self.baseline


def _hour(day: date, hour: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


if __name__ == "__main__":
    main()
