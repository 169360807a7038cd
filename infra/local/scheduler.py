"""EventBridge's part, offline: fire a scheduled Chalice handler at its cron times.

`start_scheduler(app.rollup, settings.rollup_schedule)` runs a daemon thread
that waits for the next UTC time matching the expression and invokes the real
handler with a CloudWatch scheduled-event dict and a Lambda context, as
EventBridge does, then waits for the next one. It returns the function that
stops it.

Supported: AWS cron expressions `cron(M H * * ? *)` where the minute and hour
fields are `*`, a number or a comma-separated list of numbers, and the other
four fields are `*` or `?`. Anything else is refused with a ValueError, so a
schedule that cannot be emulated is noticed at start-up.
"""

from __future__ import annotations

import logging
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any], Any], Any]
Clock = Callable[[], datetime]

_CRON = re.compile(r"^cron\((?P<fields>[^()]*)\)$")
_MINUTES_PER_DAY = 24 * 60
# Longest single wait, so that a changed wall clock is noticed within a minute.
_MAX_WAIT_SECONDS = 60.0


@dataclass(frozen=True)
class CronSchedule:
    """The minutes and hours (UTC) at which the schedule fires, every day."""

    minutes: frozenset[int]
    hours: frozenset[int]

    def matches(self, moment: datetime) -> bool:
        return moment.minute in self.minutes and moment.hour in self.hours

    def next_after(self, moment: datetime) -> datetime:
        """The first matching whole minute strictly after `moment`."""
        candidate = moment.astimezone(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
        for _ in range(_MINUTES_PER_DAY):
            if self.matches(candidate):
                return candidate
            candidate += timedelta(minutes=1)
        raise ValueError("the schedule never fires")  # unreachable: both sets are non-empty


def _field(raw: str, name: str, limit: int) -> frozenset[int]:
    if raw == "*":
        return frozenset(range(limit))
    values = set()
    for part in raw.split(","):
        if not part.isdigit() or not 0 <= int(part) < limit:
            raise ValueError(f"unsupported {name} field {raw!r}: use *, a number or numbers 0-{limit - 1}")
        values.add(int(part))
    return frozenset(values)


def parse_cron(expression: str) -> CronSchedule:
    """`cron(15 0 * * ? *)` → fires at 00:15 UTC every day."""
    match = _CRON.match(expression.strip())
    fields = match.group("fields").split() if match else []
    if len(fields) != 6:
        raise ValueError(f"not an AWS cron expression with 6 fields: {expression!r}")
    minute, hour, *rest = fields
    for value, name in zip(rest, ("day-of-month", "month", "day-of-week", "year"), strict=True):
        if value not in ("*", "?"):
            raise ValueError(f"unsupported {name} field {value!r} in {expression!r}: only * or ? locally")
    return CronSchedule(minutes=_field(minute, "minute", 60), hours=_field(hour, "hour", 24))


def scheduled_event(moment: datetime, rule: str, region: str) -> dict[str, Any]:
    """The event EventBridge sends a Lambda for a scheduled rule."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [f"arn:aws:events:{region}:123456789012:rule/{rule}"],
        "detail": {},
    }


def _utcnow() -> datetime:
    return datetime.now(UTC)


def start_scheduler(
    handler: Handler,
    expression: str,
    *,
    name: str = "rollup",
    region: str = "us-east-1",
    now: Clock = _utcnow,
) -> Callable[[], None]:
    """Invoke `handler(event, context)` at each time `expression` matches; return the stopper.

    `now` is the clock the schedule is read against (UTC); the waiting itself
    is real time. A handler that raises is logged and the schedule goes on,
    as a failed invocation does not disable an EventBridge rule.
    """
    from chalice.local import LambdaContext

    schedule = parse_cron(expression)
    stopped = threading.Event()

    def wait_until(target: datetime) -> bool:
        """True when `target` is reached, False when stopped first."""
        while True:
            remaining = (target - now()).total_seconds()
            if remaining <= 0:
                return True
            if stopped.wait(min(remaining, _MAX_WAIT_SECONDS)):
                return False

    def run() -> None:
        last_fired: datetime | None = None
        while not stopped.is_set():
            current = now()
            target = schedule.next_after(max(current, last_fired) if last_fired else current)
            if not wait_until(target):
                return
            last_fired = target
            log.info("%s: scheduled invocation for %s", name, target.isoformat())
            try:
                handler(scheduled_event(target, name, region), LambdaContext(name, 512, 900_000))
            except Exception:  # noqa: BLE001 - like a failed Lambda invocation: logged, schedule goes on
                log.exception("%s: the scheduled invocation failed", name)

    thread = threading.Thread(target=run, name=f"scheduler-{name}", daemon=True)
    thread.start()

    def stop() -> None:
        stopped.set()
        thread.join(timeout=5)

    return stop
