"""The rollup: a day of DynamoDB's hourly counters into Postgres.

For day D it reads the day's 24 hours, each with one Query per shard
partition (24 x USAGE_SHARDS queries, paged): the work is O(keys x hours) and
memory holds one hour at a time. The hours stream into `usage_hourly` with
COPY, and `usage_daily` is summed from them in SQL, so the two always agree.

Idempotent: in one transaction, under an advisory lock on the day, the day's
rows are deleted and written again from the counters, so a re-run gives the
same rows (late arrivals included) and never adds to them. A failure rolls
the whole day back: the previous rows stay as they were. Counters only grow,
so a re-run that finds fewer requests than are already rolled up (counters
past their 90-day TTL, or a restarted local emulator) fails instead of
erasing the day's history.

Every run has a `rollup_runs` row: `running` while in progress (and if the
process died), then `succeeded` with the rows written or `failed` with the
error. The metrics API serves a day from Postgres once a run of it that
began after the day ended has succeeded.

Nightly (the `rollup` Lambda) it rolls yesterday and re-rolls the day before
to catch late arrivals; `POST /api/rollups` rolls the days an operator asks.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from chalice.app import Request
from pydantic import BaseModel, ConfigDict, Field, field_validator

from chalicelib.counters import BUCKETS, hour_totals
from chalicelib.errors import GpuCloudError, InvalidRequest
from chalicelib.models import utcnow
from chalicelib.openai_schema import parse_json_body, validated
from chalicelib.services import Services

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger(__name__)

# Returns a new connection; the rollup owns it and closes it.
ConnectionFactory = Callable[[], "psycopg.Connection[Any]"]

RUNNING = "running"
SUCCEEDED = "succeeded"
FAILED = "failed"
MAX_DAYS = 366
# Advisory lock (class, day): two rollups of one day run one after the other.
_LOCK_CLASS = 7_411_903
_MAX_ERROR_CHARS = 2000

_COPY_HOURLY = (
    "COPY usage_hourly (hour, key_id, model, requests, errors, prompt_tokens,"
    " completion_tokens, latency_ms_sum, latency_buckets) FROM STDIN"
)
BUCKET_SUMS = ", ".join(f"sum(latency_buckets[{i + 1}])" for i in range(BUCKETS))
# Built from constants only; every value is a parameter.
_DAILY_FROM_HOURLY = (
    "INSERT INTO usage_daily (day, key_id, model, requests, errors, prompt_tokens,"  # noqa: S608
    " completion_tokens, latency_ms_sum, latency_buckets)"
    " SELECT %(day)s, key_id, model, sum(requests), sum(errors), sum(prompt_tokens),"
    f" sum(completion_tokens), sum(latency_ms_sum), ARRAY[{BUCKET_SUMS}]::bigint[]"
    " FROM usage_hourly WHERE hour >= %(start)s AND hour < %(end)s"
    " GROUP BY key_id, model"
)


@dataclass
class DayRollup:
    """The outcome of rolling up one day."""

    day: date
    status: str
    hourly_rows: int = 0
    daily_rows: int = 0
    requests: int = 0
    error: str | None = None
    seconds: float = 0.0

    def public(self) -> dict[str, Any]:
        return {
            "day": self.day.isoformat(),
            "status": self.status,
            "hourly_rows": self.hourly_rows,
            "daily_rows": self.daily_rows,
            "requests": self.requests,
            "error": self.error,
            "seconds": round(self.seconds, 3),
        }


class CountersLost(Exception):
    """A re-run would shrink a day: its counters are no longer all there."""


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return start, start + timedelta(days=1)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".strip()[:_MAX_ERROR_CHARS]


def _replace_day(connection: psycopg.Connection[Any], day: date) -> DayRollup:
    """Inside the caller's transaction: the day's rows, written again from DynamoDB."""
    start, end = day_bounds(day)
    connection.execute("SELECT pg_advisory_xact_lock(%s, %s)", (_LOCK_CLASS, day.toordinal()))
    row = connection.execute(
        "SELECT coalesce(sum(requests), 0) FROM usage_hourly WHERE hour >= %s AND hour < %s", (start, end)
    ).fetchone()
    already_rolled = int(row[0]) if row else 0
    connection.execute("DELETE FROM usage_hourly WHERE hour >= %s AND hour < %s", (start, end))
    result = DayRollup(day, RUNNING)
    with connection.cursor() as cursor, cursor.copy(_COPY_HOURLY) as copy:
        for offset in range(24):
            hour = start + timedelta(hours=offset)
            for (key_id, model), c in hour_totals(hour).items():
                copy.write_row(
                    (
                        hour,
                        key_id,
                        model,
                        c.requests,
                        c.errors,
                        c.prompt_tokens,
                        c.completion_tokens,
                        c.latency_ms_sum,
                        c.buckets,
                    )
                )
                result.hourly_rows += 1
                result.requests += c.requests
    if result.requests < already_rolled:
        # Counters only ever grow: fewer means they expired (TTL) or were lost (a
        # restarted emulator). Rolling them up would erase history, so keep it.
        raise CountersLost(
            f"the counters of {day.isoformat()} hold {result.requests} requests, fewer than the "
            f"{already_rolled} already rolled up (expired or lost counters); the rolled-up rows are kept"
        )
    connection.execute("DELETE FROM usage_daily WHERE day = %s", (day,))
    inserted = connection.execute(_DAILY_FROM_HOURLY, {"day": day, "start": start, "end": end})
    result.daily_rows = inserted.rowcount
    return result


def _record_failure(
    connection: psycopg.Connection[Any], run_id: int | None, day: date, started_at: datetime, error: str
) -> None:
    """Best effort: the database may be the thing that failed."""
    try:
        if run_id is None:
            connection.execute(
                "INSERT INTO rollup_runs (day, started_at, finished_at, status, error)"
                " VALUES (%s, %s, now(), %s, %s)",
                (day, started_at, FAILED, error),
            )
        else:
            connection.execute(
                "UPDATE rollup_runs SET status = %s, error = %s, finished_at = now() WHERE id = %s",
                (FAILED, error, run_id),
            )
    except Exception:  # noqa: BLE001 - the run already failed; say so in the log
        log.exception("could not record the failed rollup of %s", day)


def roll_up_day(day: date, connect: ConnectionFactory) -> DayRollup:
    """Roll up one UTC day; never raises: a failure comes back as status `failed`."""
    began = time.perf_counter()
    started_at = utcnow()
    try:
        connection = connect()
    except Exception as exc:  # noqa: BLE001 - reported as the run's outcome
        log.exception("rollup of %s: cannot connect to Postgres", day)
        return DayRollup(day, FAILED, error=_describe(exc), seconds=time.perf_counter() - began)
    with closing(connection):
        run_id: int | None = None
        try:
            if not connection.autocommit:
                connection.autocommit = True
            row = connection.execute(
                "INSERT INTO rollup_runs (day, started_at, status) VALUES (%s, %s, %s) RETURNING id",
                (day, started_at, RUNNING),
            ).fetchone()
            run_id = int(row[0]) if row else None
            with connection.transaction():
                result = _replace_day(connection, day)
                connection.execute(
                    "UPDATE rollup_runs SET status = %s, rows = %s, finished_at = now() WHERE id = %s",
                    (SUCCEEDED, result.hourly_rows + result.daily_rows, run_id),
                )
        except Exception as exc:  # noqa: BLE001 - reported as the run's outcome
            log.exception("rollup of %s failed", day)
            error = _describe(exc)
            _record_failure(connection, run_id, day, started_at, error)
            return DayRollup(day, FAILED, error=error, seconds=time.perf_counter() - began)
        result.status = SUCCEEDED
        result.seconds = time.perf_counter() - began
        log.info(
            "rolled up %s: %d requests, %d hourly and %d daily rows in %.2f s",
            day,
            result.requests,
            result.hourly_rows,
            result.daily_rows,
            result.seconds,
        )
        return result


def roll_up_days(days: list[date], connect: ConnectionFactory) -> list[DayRollup]:
    """Each day on its own: one day's failure does not undo or stop the others."""
    return [roll_up_day(day, connect) for day in days]


# How far back a nightly run looks for days that an earlier night missed
# (Postgres down, a failed run): those are rolled up too.
CATCH_UP_DAYS = 7


def scheduled_days(now: datetime, connect: ConnectionFactory | None = None) -> list[date]:
    """Yesterday (UTC), the day before for late arrivals, and any day of the
    last week that no run has rolled up since it ended; oldest first."""
    yesterday = now.astimezone(UTC).date() - timedelta(days=1)
    days = {yesterday - timedelta(days=1), yesterday}
    if connect is not None:
        days |= _missed_days(yesterday, connect)
    return sorted(days)


def days_rolled_up(connection: psycopg.Connection[Any], days: Sequence[date]) -> set[date]:
    """Of `days`, those whose rollup succeeded in a run that began after the day was over (so the
    day's counters were complete)."""
    rows = connection.execute(
        "SELECT DISTINCT day FROM rollup_runs WHERE status = %s AND day = ANY(%s)"
        " AND started_at >= (day + 1)::timestamp AT TIME ZONE 'UTC'",
        (SUCCEEDED, list(days)),
    ).fetchall()
    return {row[0] for row in rows}


def _missed_days(yesterday: date, connect: ConnectionFactory) -> set[date]:
    first = yesterday - timedelta(days=CATCH_UP_DAYS - 1)
    window = {first + timedelta(days=n) for n in range(CATCH_UP_DAYS)}
    try:
        with closing(connect()) as connection:
            return window - days_rolled_up(connection, sorted(window))
    except Exception:  # noqa: BLE001 - the day's own run will report Postgres being down
        log.warning("could not read past rollup runs; rolling the usual days only")
        return set()


def _outcome(runs: list[DayRollup]) -> dict[str, Any]:
    failed = [run for run in runs if run.status != SUCCEEDED]
    if failed:
        details = "; ".join(f"{run.day.isoformat()}: {run.error}" for run in failed)
        succeeded = [run.day.isoformat() for run in runs if run.status == SUCCEEDED]
        raise GpuCloudError(
            f"The rollup failed for {len(failed)} of {len(runs)} day(s) ({details})."
            + (f" These days succeeded: {', '.join(succeeded)}." if succeeded else ""),
            code="rollup_failed",
        )
    return {"object": "rollup", "status": SUCCEEDED, "days": [run.public() for run in runs]}


def run_scheduled(event_time: str | None, services: Services) -> dict[str, Any]:
    """The nightly Lambda: roll yesterday and the day before (relative to the event's time).

    Raises when a day failed, so the invocation shows as failed.
    """
    now = utcnow()
    if event_time:
        try:
            now = datetime.fromisoformat(event_time)
        except ValueError:
            log.warning("unreadable event time %r; using the clock", event_time)
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    connect = services.new_postgres_connection
    return _outcome(roll_up_days(scheduled_days(now, connect), connect))


class RollupRequest(BaseModel):
    """`{"day": "YYYY-MM-DD"}` or `{"from": "YYYY-MM-DD", "to": "YYYY-MM-DD"}` (inclusive)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    day: date | None = None
    from_: date | None = Field(default=None, alias="from")
    to: date | None = None

    @field_validator("day", "from_", "to", mode="before")
    @classmethod
    def _iso_date(cls, value: Any) -> Any:
        if value is None:
            return None
        if not isinstance(value, str):
            raise ValueError("expected a date as 'YYYY-MM-DD'")
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise ValueError("expected a date as 'YYYY-MM-DD'") from None


def requested_days(spec: RollupRequest, today: date) -> list[date]:
    if spec.day is not None:
        if spec.from_ is not None or spec.to is not None:
            raise InvalidRequest("Give either 'day' or 'from' and 'to', not both.", param="day")
        first = last = spec.day
        last_param = "day"
    elif spec.from_ is not None and spec.to is not None:
        first, last = spec.from_, spec.to
        last_param = "to"
        if last < first:
            raise InvalidRequest("'to' must not be before 'from'.", param="to")
        if (last - first).days + 1 > MAX_DAYS:
            raise InvalidRequest(f"At most {MAX_DAYS} days can be rolled up at once.", param="to")
    else:
        missing = "to" if spec.from_ is not None else "from" if spec.to is not None else "day"
        raise InvalidRequest(
            f'Missing required parameter: \'{missing}\'. Send {{"day": "YYYY-MM-DD"}} '
            'or {"from": "YYYY-MM-DD", "to": "YYYY-MM-DD"}.',
            param=missing,
        )
    if last > today:
        raise InvalidRequest(f"'{last.isoformat()}' is in the future (UTC).", param=last_param)
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def run_requested(request: Request, services: Services) -> dict[str, Any]:
    """POST /api/rollups: roll up the days asked for, now."""
    spec = validated(RollupRequest, parse_json_body(request.raw_body, services.settings.max_body_bytes))
    days = requested_days(spec, utcnow().date())
    return _outcome(roll_up_days(days, services.new_postgres_connection))
