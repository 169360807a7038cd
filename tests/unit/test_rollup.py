"""Pure parts of the rollup and metrics: percentiles, periods, days, cursors, cron."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from chalicelib.counters import Counters, percentile, split_key_model
from chalicelib.errors import InvalidRequest
from chalicelib.metrics import Period, parse_period
from chalicelib.models import LATENCY_BUCKETS_MS
from chalicelib.request_log import Cursor
from chalicelib.rollup import RollupRequest, requested_days, scheduled_days
from infra.local.rollup_cli import request_body
from infra.local.scheduler import parse_cron, scheduled_event

NOW = datetime(2026, 3, 10, 14, 25, 7, tzinfo=UTC)


def buckets(**counts: int) -> list[int]:
    values = [0] * len(LATENCY_BUCKETS_MS)
    for name, count in counts.items():
        values[int(name.removeprefix("b"))] = count
    return values


# ---- percentiles ------------------------------------------------------------


def test_a_percentile_is_the_upper_bound_of_the_bucket_where_the_count_crosses_it() -> None:
    histogram = buckets(b0=50, b3=45, b5=4, b11=1)  # ≤10 ms, ≤100 ms, ≤500 ms, open
    assert percentile(histogram, 0.50) == 10
    assert percentile(histogram, 0.51) == 100
    assert percentile(histogram, 0.95) == 100
    assert percentile(histogram, 0.96) == 500
    assert percentile(histogram, 0.99) == 500
    assert percentile(histogram, 1.0) == 30_000  # the open bucket reports its lower bound


def test_no_requests_have_no_percentiles() -> None:
    assert percentile(buckets(), 0.5) is None
    assert Counters().public()["latency_ms"] == {"p50": None, "p95": None, "p99": None}


def test_one_request_is_its_own_percentile() -> None:
    assert [percentile(buckets(b6=1), q) for q in (0.5, 0.95, 0.99)] == [1000, 1000, 1000]


def test_counters_merge_by_addition() -> None:
    total = Counters(1, 0, 10, 5, 8, buckets(b0=1))
    total.merge(Counters(3, 1, 20, 7, 900, buckets(b3=2, b7=1)))
    assert (total.requests, total.errors, total.total_tokens, total.latency_ms_sum) == (4, 1, 42, 908)
    assert total.buckets == buckets(b0=1, b3=2, b7=1)
    assert Counters.from_sums([4, 1, 30, 12, 908, *total.buckets]) == total


def test_a_model_name_may_contain_the_separator() -> None:
    assert split_key_model("key_abc#org#model") == ("key_abc", "org#model")


# ---- periods ----------------------------------------------------------------


def period(**params: str) -> Period:
    return parse_period(params, NOW)


def test_hours_end_with_the_current_hour() -> None:
    assert period() == Period(
        datetime(2026, 3, 9, 15, tzinfo=UTC), datetime(2026, 3, 10, 15, tzinfo=UTC), "hour"
    )
    assert len(period(hours="3").points()) == 3
    assert period(hours="3").points()[-1] == datetime(2026, 3, 10, 14, tzinfo=UTC)


def test_dates_are_whole_days_and_to_includes_its_day() -> None:
    got = period(**{"from": "2026-03-01", "to": "2026-03-02"})
    assert (got.start, got.end, got.granularity) == (
        datetime(2026, 3, 1, tzinfo=UTC),
        datetime(2026, 3, 3, tzinfo=UTC),
        "hour",
    )
    assert len(got.points()) == 48
    assert got.days() == [date(2026, 3, 1), date(2026, 3, 2)]


def test_datetimes_are_widened_to_whole_periods_and_naive_means_utc() -> None:
    got = period(**{"from": "2026-03-01T10:30:00+02:00", "to": "2026-03-01T12:10"})
    assert (got.start, got.end) == (datetime(2026, 3, 1, 8, tzinfo=UTC), datetime(2026, 3, 1, 13, tzinfo=UTC))
    by_day = period(**{"from": "2026-03-01T10:30:00Z", "granularity": "day"})
    assert (by_day.start, by_day.end) == (datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 11, tzinfo=UTC))
    assert len(by_day.points()) == 10


def test_long_periods_default_to_days() -> None:
    assert period(hours="168").granularity == "hour"
    assert period(hours="169").granularity == "day"
    assert period(**{"from": "2026-01-01"}).granularity == "day"


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"hours": "0"}, "hours"),
        ({"hours": "-1"}, "hours"),
        ({"hours": "1.5"}, "hours"),
        ({"granularity": "minute"}, "granularity"),
        ({"from": "2026-02-30"}, "from"),
        ({"to": "soon"}, "to"),
        ({"from": "2026-03-05", "to": "2026-03-04"}, "to"),
        ({"from": "2025-01-01", "to": "2026-03-01"}, "from"),
        ({"from": "2026-01-01", "to": "2026-03-01", "granularity": "hour"}, "granularity"),
        ({"from": "2026-01-01", "to": "2026-01-02", "hours": "5"}, "hours"),
    ],
)
def test_bad_periods_name_the_param(params: dict[str, str], param: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        period(**params)
    assert raised.value.param == param


# ---- which days a rollup covers -----------------------------------------------


def test_the_nightly_run_rolls_yesterday_and_the_day_before() -> None:
    assert scheduled_days(datetime(2026, 3, 1, 0, 15, tzinfo=UTC)) == [date(2026, 2, 27), date(2026, 2, 28)]


def test_requested_days_are_inclusive_and_bounded() -> None:
    today = date(2026, 3, 10)

    def days(**body: str) -> list[date]:
        return requested_days(RollupRequest.model_validate(body), today)

    assert days(day="2026-03-09") == [date(2026, 3, 9)]
    assert days(**{"from": "2026-02-27", "to": "2026-03-01"}) == [
        date(2026, 2, 27),
        date(2026, 2, 28),
        date(2026, 3, 1),
    ]
    assert len(days(**{"from": "2025-03-10", "to": "2026-03-10"})) == 366
    for body, param in (
        ({"from": "2025-03-09", "to": "2026-03-10"}, "to"),
        ({"day": "2026-03-11"}, "day"),
        ({"to": "2026-03-01"}, "from"),
        ({}, "day"),
    ):
        with pytest.raises(InvalidRequest) as raised:
            days(**body)
        assert raised.value.param == param


def test_the_cli_rolls_yesterday_by_default() -> None:
    today = date(2026, 3, 10)
    assert request_body([], today) == {"day": "2026-03-09"}
    assert request_body(["2026-01-05"], today) == {"day": "2026-01-05"}
    assert request_body(["2026-01-05", "2026-01-07"], today) == {"from": "2026-01-05", "to": "2026-01-07"}
    with pytest.raises(ValueError):
        request_body(["yesterday"], today)


# ---- request log cursors --------------------------------------------------------


def test_a_cursor_round_trips_and_garbage_is_400() -> None:
    cursor = Cursor("by_day", "2026-03-10", "2026-03-10T01:02:03.000004+0000", "abc123")
    encoded = cursor.encode()
    assert "=" not in encoded and "/" not in encoded and "+" not in encoded
    assert Cursor.decode(encoded) == cursor
    assert cursor.start_key() == {
        "job_id": {"S": "abc123"},
        "day": {"S": "2026-03-10"},
        "created_at": {"S": "2026-03-10T01:02:03.000004+0000"},
    }
    for garbage in ("", "!!!", "e30", Cursor("by_day", "yesterday", "x", "y").encode(), encoded[:-3]):
        with pytest.raises(InvalidRequest) as raised:
            Cursor.decode(garbage)
        assert raised.value.param == "cursor"


# ---- the local scheduler's cron ---------------------------------------------------


def test_cron_fires_at_the_next_matching_utc_minute() -> None:
    nightly = parse_cron("cron(15 0 * * ? *)")
    assert nightly.next_after(datetime(2026, 3, 10, 0, 14, 59, tzinfo=UTC)) == datetime(
        2026, 3, 10, 0, 15, tzinfo=UTC
    )
    # Strictly after: at 00:15 exactly, the next one is tomorrow's.
    assert nightly.next_after(datetime(2026, 3, 10, 0, 15, tzinfo=UTC)) == datetime(
        2026, 3, 11, 0, 15, tzinfo=UTC
    )
    assert nightly.next_after(datetime(2026, 12, 31, 23, 0, tzinfo=UTC)) == datetime(
        2027, 1, 1, 0, 15, tzinfo=UTC
    )
    hourly = parse_cron("cron(0,30 * ? * * *)")
    assert hourly.next_after(NOW) == datetime(2026, 3, 10, 14, 30, tzinfo=UTC)
    every_minute = parse_cron("cron(* * * * ? *)")
    assert every_minute.next_after(NOW) == datetime(2026, 3, 10, 14, 26, tzinfo=UTC)
    offset = datetime(2026, 3, 10, 3, 0, tzinfo=timezone(timedelta(hours=2)))  # 01:00 UTC
    assert nightly.next_after(offset) == datetime(2026, 3, 11, 0, 15, tzinfo=UTC)


@pytest.mark.parametrize(
    "expression",
    [
        "rate(1 day)",
        "cron(15 0 * * ?)",
        "cron(15 0 1 * ? *)",
        "cron(15 0 * * MON *)",
        "cron(60 0 * * ? *)",
        "cron(15 24 * * ? *)",
        "cron(*/5 * * * ? *)",
        "15 0 * * ? *",
    ],
)
def test_unsupported_cron_expressions_are_refused(expression: str) -> None:
    with pytest.raises(ValueError):
        parse_cron(expression)


def test_the_scheduled_event_is_shaped_like_eventbridge_s() -> None:
    event = scheduled_event(datetime(2026, 3, 10, 0, 15, tzinfo=UTC), "rollup", "eu-west-1")
    assert event["time"] == "2026-03-10T00:15:00Z"
    assert event["source"] == "aws.events" and event["detail-type"] == "Scheduled Event"
    assert event["resources"] == ["arn:aws:events:eu-west-1:123456789012:rule/rollup"]
    from chalice.app import CloudWatchEvent

    assert CloudWatchEvent(event, None).time == "2026-03-10T00:15:00Z"
