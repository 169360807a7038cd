"""GET /api/metrics and /api/metrics/summary: usage over a period, hour by hour or day by day.

Two sources, stitched by whole UTC days so that no hour is missing or counted
twice: a day that has a succeeded rollup (started after the day ended) is
read from Postgres (`usage_hourly` / `usage_daily`); every other day is read
from DynamoDB's live hourly counters (one Query per shard partition per hour,
hours in the future and past the counters' retention skipped). Rows from both
are added into the same groups (a period, or a key and model), and every
period of the series is present, zeros included.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from chalice.app import Request, Response
from pynamodb.exceptions import PynamoDBException

from chalicelib.admission import answer
from chalicelib.counters import BUCKETS, Counters, read_hour
from chalicelib.errors import InvalidRequest, ServiceUnavailable
from chalicelib.models import utcnow
from chalicelib.rollup import BUCKET_SUMS, days_rolled_up
from chalicelib.services import Services
from chalicelib.usage import COUNTER_RETENTION

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
GRANULARITIES = {"hour": HOUR, "day": DAY}
MAX_PERIOD = timedelta(days=366)
MAX_HOURLY_PERIOD = timedelta(days=31)
# Without `granularity`, periods up to this long are shown hour by hour.
HOURLY_BY_DEFAULT_UP_TO = timedelta(days=7)
DEFAULT_HOURS = 24
TOP_KEYS = 10
MAX_FILTER_CHARS = 200
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

Group = tuple[Any, ...]


def query_params(request: Request) -> dict[str, str]:
    """The query string as name → value (the last one when repeated)."""
    return dict(request.query_params or {})


def int_param(params: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidRequest(f"Invalid value for '{name}': expected an integer.", param=name) from None
    if not low <= value <= high:
        raise InvalidRequest(f"Invalid value for '{name}': must be between {low} and {high}.", param=name)
    return value


def text_param(params: Mapping[str, str], name: str) -> str | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    if len(value) > MAX_FILTER_CHARS or any(ch < " " for ch in value):
        raise InvalidRequest(f"Invalid value for '{name}'.", param=name)
    return value


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def floor_to(moment: datetime, step: timedelta) -> datetime:
    moment = moment.astimezone(UTC)
    if step == DAY:
        return moment.replace(hour=0, minute=0, second=0, microsecond=0)
    return moment.replace(minute=0, second=0, microsecond=0)


def ceil_to(moment: datetime, step: timedelta) -> datetime:
    floor = floor_to(moment, step)
    return floor if floor == moment else floor + step


@dataclass(frozen=True)
class Period:
    """[start, end) in UTC, both on a boundary of the granularity."""

    start: datetime
    end: datetime
    granularity: str

    @property
    def step(self) -> timedelta:
        return GRANULARITIES[self.granularity]

    def points(self) -> list[datetime]:
        count = int((self.end - self.start) / self.step)
        return [self.start + n * self.step for n in range(count)]

    def days(self) -> list[date]:
        first, last = self.start.date(), (self.end - timedelta(microseconds=1)).date()
        return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def _instant(params: Mapping[str, str], name: str, *, end: bool) -> datetime | None:
    """An ISO date (a whole day: `to` includes it) or datetime (naive means UTC)."""
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    try:
        if _DATE.match(raw):
            day = date.fromisoformat(raw)
            midnight = datetime(day.year, day.month, day.day, tzinfo=UTC)
            return midnight + DAY if end else midnight
        # An unencoded "+01:00" in a query string arrives as " 01:00".
        moment = datetime.fromisoformat(raw.replace(" ", "+"))
    except ValueError:
        raise InvalidRequest(
            f"Invalid value for '{name}': expected an ISO date (YYYY-MM-DD) or datetime.", param=name
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def parse_period(params: Mapping[str, str], now: datetime) -> Period:
    """`hours` (default 24, ending with the current hour), or `from`/`to`; `granularity`."""
    granularity = params.get("granularity") or None
    if granularity is not None and granularity not in GRANULARITIES:
        raise InvalidRequest("Invalid value for 'granularity': use 'hour' or 'day'.", param="granularity")
    start = _instant(params, "from", end=False)
    end = _instant(params, "to", end=True)
    has_hours = bool(params.get("hours"))
    if has_hours and start is not None and end is not None:
        raise InvalidRequest("Give 'hours', or 'from' and 'to', not all three.", param="hours")
    hours = HOUR * int_param(params, "hours", DEFAULT_HOURS, 1, MAX_PERIOD // HOUR)
    if start is None:
        if end is None:
            end = ceil_to(now, HOUR)
        start = end - hours
    elif end is None:
        end = start + hours if has_hours else now
    if end <= start:
        raise InvalidRequest("The period is empty: 'to' must be after 'from'.", param="to")
    if end - start > MAX_PERIOD:
        param = "from" if params.get("from") else "hours"
        raise InvalidRequest(f"The period may be at most {MAX_PERIOD.days} days long.", param=param)
    if granularity is None:
        granularity = "hour" if end - start <= HOURLY_BY_DEFAULT_UP_TO else "day"
    step = GRANULARITIES[granularity]
    start, end = floor_to(start, step), ceil_to(end, step)
    if granularity == "hour" and end - start > MAX_HOURLY_PERIOD:
        raise InvalidRequest(
            f"Hourly points cover at most {MAX_HOURLY_PERIOD.days} days; use granularity=day.",
            param="granularity",
        )
    return Period(start, end, granularity)


@dataclass(frozen=True)
class UsageFilter:
    key_id: str | None = None
    model: str | None = None

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> UsageFilter:
        return cls(key_id=text_param(params, "apiKeyId"), model=text_param(params, "model"))


# ---- reading both sources into groups ----------------------------------------

_SUMS = (
    "sum(requests), sum(errors), sum(prompt_tokens), sum(completion_tokens), sum(latency_ms_sum), "
    + BUCKET_SUMS
)


def _select(table: str, dims: tuple[str, ...], unit: str, usage: UsageFilter) -> str:
    """A grouped sum over one rollup table; every piece is one of a few constants."""
    if table == "usage_daily":
        ts = "day::timestamp"
        where = "day = ANY(%(days)s)"
    else:
        ts = "date_trunc('day', hour AT TIME ZONE 'UTC')" if unit == "day" else "hour AT TIME ZONE 'UTC'"
        where = "hour >= %(start)s AND hour < %(end)s AND (hour AT TIME ZONE 'UTC')::date = ANY(%(days)s)"
    if usage.key_id is not None:
        where += " AND key_id = %(key_id)s"
    if usage.model is not None:
        where += " AND model = %(model)s"
    columns = ", ".join(ts if dim == "ts" else dim for dim in dims)
    positions = ", ".join(str(n + 1) for n in range(len(dims)))
    return f"SELECT {columns}, {_SUMS} FROM {table} WHERE {where} GROUP BY {positions}"  # noqa: S608


def _postgres_rows(
    services: Services,
    period: Period,
    rolled: set[date],
    dims: tuple[str, ...],
    unit: str,
    usage: UsageFilter,
) -> Iterator[tuple[Group, Counters]]:
    whole = {d for d in rolled if period.start <= _midnight(d) and _midnight(d) + DAY <= period.end}
    daily = whole if unit == "day" else set()
    hourly = rolled - daily
    arguments = {"start": period.start, "end": period.end, "key_id": usage.key_id, "model": usage.model}
    for table, days in (("usage_daily", daily), ("usage_hourly", hourly)):
        if not days:
            continue
        query = _select(table, dims, unit, usage)
        for row in services.postgres().execute(query, {**arguments, "days": sorted(days)}).fetchall():
            group = tuple(
                value.replace(tzinfo=UTC) if isinstance(value, datetime) else value
                for value in row[: len(dims)]
            )
            yield group, Counters.from_sums(row[len(dims) : len(dims) + 5 + BUCKETS])


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _live_rows(
    period: Period, rolled: set[date], dims: tuple[str, ...], unit: str, usage: UsageFilter, now: datetime
) -> Iterator[tuple[Group, Counters]]:
    current_hour = floor_to(now, HOUR)
    oldest = floor_to(now - COUNTER_RETENTION, HOUR)
    step = GRANULARITIES[unit]
    hour = period.start
    while hour < period.end and hour <= current_hour:
        if hour.date() not in rolled and hour >= oldest:
            bucket = floor_to(hour, step)
            for key_id, model, counters in read_hour(hour, usage.key_id, usage.model):
                values = {"ts": bucket, "key_id": key_id, "model": model}
                yield tuple(values[dim] for dim in dims), counters
        hour += HOUR


def collect(
    services: Services, period: Period, usage: UsageFilter, dims: tuple[str, ...], unit: str, now: datetime
) -> dict[Group, Counters]:
    """Usage in `period`, summed per group of `dims` ("ts" truncated to `unit`, "key_id", "model")."""
    import psycopg  # imported here: the worker Lambda shares this code and never needs it

    groups: dict[Group, Counters] = {}

    def add(rows: Iterator[tuple[Group, Counters]]) -> None:
        for group, counters in rows:
            found = groups.get(group)
            if found is None:
                groups[group] = counters
            else:
                found.merge(counters)

    try:
        rolled = days_rolled_up(services.postgres(), period.days())
        add(_postgres_rows(services, period, rolled, dims, unit, usage))
    except psycopg.Error as exc:
        raise ServiceUnavailable(
            f"The usage database (Postgres) is unavailable: {type(exc).__name__}.",
            code="database_unavailable",
        ) from exc
    try:
        add(_live_rows(period, rolled, dims, unit, usage, now))
    except PynamoDBException as exc:
        raise ServiceUnavailable(
            f"The usage counters (DynamoDB) are unavailable: {type(exc).__name__}.",
            code="dynamodb_unavailable",
        ) from exc
    return groups


def _total(groups: Mapping[Group, Counters]) -> Counters:
    total = Counters()
    for counters in groups.values():
        total.merge(counters)
    return total


# ---- the endpoints -----------------------------------------------------------


def usage_series(request: Request, services: Services) -> dict[str, Any]:
    """GET /api/metrics: one point per hour or day of the period, and the totals."""
    return series_of(query_params(request), services)


def own_usage(request: Request, services: Services) -> Response:
    """GET /v1/usage: the same series, for the calling key only, with its own key."""
    params = query_params(request)
    # It reads many counters: it counts against the key's requests per minute.
    return answer(
        request, services, lambda api_key: series_of({**params, "apiKeyId": api_key.id}, services), requests=1
    )


def series_of(params: Mapping[str, str], services: Services) -> dict[str, Any]:
    now = utcnow()
    period = parse_period(params, now)
    usage = UsageFilter.from_params(params)
    groups = collect(services, period, usage, ("ts",), period.granularity, now)
    series = []
    for point in period.points():
        counters = groups.get((point,)) or Counters()
        series.append({"ts": iso(point), **counters.public()})
    return {
        "object": "usage.series",
        "granularity": period.granularity,
        "from": iso(period.start),
        "to": iso(period.end),
        "series": series,
        "totals": _total(groups).public(),
    }


def _ranked(groups: Mapping[str, Counters], label: str) -> list[dict[str, Any]]:
    ordered = sorted(groups.items(), key=lambda item: (-item[1].total_tokens, -item[1].requests, item[0]))
    return [{label: name, **counters.public()} for name, counters in ordered]


def usage_summary(request: Request, services: Services) -> dict[str, Any]:
    """GET /api/metrics/summary: totals per key and per model, and the top keys by tokens."""
    params = query_params(request)
    now = utcnow()
    period = parse_period(params, now)
    usage = UsageFilter.from_params(params)
    groups = collect(services, period, usage, ("key_id", "model"), "day", now)
    by_key: dict[str, Counters] = {}
    by_model: dict[str, Counters] = {}
    for (key_id, model), counters in groups.items():
        by_key.setdefault(key_id, Counters()).merge(counters)
        by_model.setdefault(model, Counters()).merge(counters)
    keys = _ranked(by_key, "key_id")
    return {
        "object": "usage.summary",
        "from": iso(period.start),
        "to": iso(period.end),
        "totals": _total(groups).public(),
        "by_key": keys,
        "by_model": _ranked(by_model, "model"),
        "top_keys": keys[:TOP_KEYS],
    }
