"""Usage metering: a job's end and its usage are one DynamoDB transaction.

Each job's row moves to its terminal status only if it is not terminal yet
(the condition), in the same transaction that adds its usage to the hourly
counter and to the key's totals. A redelivered message therefore finds its
job already ended, the condition fails, and nothing is counted twice; a crash
before the commit leaves nothing counted, and the retry counts it once.

Counters of one batch are summed per (hour, key, model) before writing, so a
batch of 10 requests by one key costs one counter update, not ten.
"""

from __future__ import annotations

import logging
import random
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pynamodb.connection import Connection
from pynamodb.exceptions import TransactWriteError
from pynamodb.expressions.update import Action
from pynamodb.transactions import TransactWrite

from chalicelib.counters import BUCKETS, USAGE_SHARDS, Counters, hour_of, latency_bucket
from chalicelib.models import ApiKeyRecord, JobRecord, UsageCounterRecord

log = logging.getLogger(__name__)

COUNTER_RETENTION = timedelta(days=90)
_MAX_COMMIT_ATTEMPTS = 6


@dataclass
class JobOutcome:
    """How one job ended, with the usage it incurred."""

    job_id: str
    key_id: str
    key_hash: str
    model: str
    status: str
    created_at: datetime
    finished_at: datetime
    result: dict[str, Any] | None = None
    error_code: str | None = None
    error_message: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    queue_ms: int = 0
    model_ms: int = 0
    # A redrive takes a failure back (-1) before the job runs again; the
    # job must then be in `from_statuses` for the change to apply.
    sign: int = 1
    from_statuses: tuple[str, ...] = ("queued", "running")
    recorded_latency_ms: int | None = None

    @property
    def latency_ms(self) -> int:
        if self.recorded_latency_ms is not None:
            return self.recorded_latency_ms
        return max(int((self.finished_at - self.created_at).total_seconds() * 1000), 0)

    @property
    def is_error(self) -> bool:
        # A cancelled request is counted as a request, not as an error.
        return self.status == "failed"

    def notification(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "result": self.result,
            "error_code": self.error_code,
            "error_message": self.error_message,
        }


def _counted(outcome: JobOutcome) -> Counters:
    """What one outcome adds to its counter and its key's totals (a take-back subtracts)."""
    sign = outcome.sign
    buckets = [0] * BUCKETS
    buckets[latency_bucket(outcome.latency_ms)] = sign
    return Counters(
        requests=sign,
        errors=sign * int(outcome.is_error),
        prompt_tokens=sign * outcome.prompt_tokens,
        completion_tokens=sign * outcome.completion_tokens,
        latency_ms_sum=sign * outcome.latency_ms,
        buckets=buckets,
    )


def _job_actions(outcome: JobOutcome) -> list[Action]:
    if outcome.sign < 0:
        return [
            JobRecord.status.set("queued"),
            JobRecord.error_code.remove(),
            JobRecord.error_message.remove(),
            JobRecord.finished_at.remove(),
            JobRecord.latency_ms.remove(),
        ]
    actions: list[Action] = [
        JobRecord.status.set(outcome.status),
        JobRecord.finished_at.set(outcome.finished_at),
        JobRecord.prompt_tokens.set(outcome.prompt_tokens),
        JobRecord.completion_tokens.set(outcome.completion_tokens),
        JobRecord.queue_ms.set(outcome.queue_ms),
        JobRecord.model_ms.set(outcome.model_ms),
        JobRecord.latency_ms.set(outcome.latency_ms),
    ]
    if outcome.result is not None:
        actions.append(JobRecord.result.set(outcome.result))
    if outcome.error_code is not None:
        actions.append(JobRecord.error_code.set(outcome.error_code))
        actions.append(JobRecord.error_message.set(outcome.error_message or ""))
    return actions


def _write_transaction(connection: Connection, outcomes: list[JobOutcome], shard: int) -> None:
    counters: dict[tuple[str, str, str], Counters] = defaultdict(Counters)
    key_totals: dict[str, Counters] = defaultdict(Counters)
    last_used: dict[str, datetime] = {}
    for outcome in outcomes:
        counted = _counted(outcome)
        counters[(hour_of(outcome.created_at), outcome.key_id, outcome.model)].merge(counted)
        key_totals[outcome.key_hash].merge(counted)
        if outcome.sign > 0:
            last_used[outcome.key_hash] = max(
                last_used.get(outcome.key_hash, outcome.finished_at), outcome.finished_at
            )
    with TransactWrite(connection=connection) as transaction:
        # Jobs first: cancellation reasons come back in item order.
        for outcome in outcomes:
            transaction.update(
                JobRecord(job_id=outcome.job_id),
                actions=_job_actions(outcome),
                condition=JobRecord.status.is_in(*outcome.from_statuses),
            )
        for (hour, key_id, model), delta in counters.items():
            actions: list[Action] = [
                UsageCounterRecord.requests.add(delta.requests),
                UsageCounterRecord.errors.add(delta.errors),
                UsageCounterRecord.prompt_tokens.add(delta.prompt_tokens),
                UsageCounterRecord.completion_tokens.add(delta.completion_tokens),
                UsageCounterRecord.latency_ms_sum.add(delta.latency_ms_sum),
                UsageCounterRecord.expires_at.set(
                    datetime.strptime(hour, "%Y-%m-%dT%H").replace(tzinfo=UTC) + COUNTER_RETENTION
                ),
            ]
            for bucket, count in enumerate(delta.buckets):
                if count:
                    actions.append(getattr(UsageCounterRecord, f"lat_{bucket}").add(count))
            transaction.update(
                UsageCounterRecord(hour_shard=f"{hour}#{shard}", key_model=f"{key_id}#{model}"),
                actions=actions,
            )
        for key_hash, delta in key_totals.items():
            transaction.update(
                ApiKeyRecord(key_hash=key_hash),
                actions=[
                    ApiKeyRecord.request_count.add(delta.requests),
                    ApiKeyRecord.prompt_tokens.add(delta.prompt_tokens),
                    ApiKeyRecord.completion_tokens.add(delta.completion_tokens),
                ]
                + ([ApiKeyRecord.last_used_at.set(last_used[key_hash])] if key_hash in last_used else []),
                # Never create a phantom key row for a key that is gone.
                condition=ApiKeyRecord.key_hash.exists(),
            )


def commit_outcomes(connection: Connection, outcomes: list[JobOutcome]) -> list[JobOutcome]:
    """Commit job endings with their usage; return those that this call ended.

    Jobs that had already ended (a duplicate delivery, a cancellation) are
    left out and counted nothing. Raises if DynamoDB keeps refusing.
    """
    pending = list(outcomes)
    for attempt in range(_MAX_COMMIT_ATTEMPTS):
        if not pending:
            return []
        try:
            _write_transaction(connection, pending, shard=random.randrange(USAGE_SHARDS))
            return pending
        except TransactWriteError as exc:
            reasons = (
                exc.cancellation_reasons
                if exc.cause_response_code == ("TransactionCanceledException")
                else []
            )
            already_ended = {
                index
                for index, reason in enumerate(reasons[: len(pending)])
                if reason is not None and reason.code == "ConditionalCheckFailed"
            }
            if already_ended:
                for index in already_ended:
                    log.info("job %s had already ended; not counted again", pending[index].job_id)
                pending = [o for i, o in enumerate(pending) if i not in already_ended]
                continue
            if attempt == _MAX_COMMIT_ATTEMPTS - 1:
                raise
            # Another transaction touched the same counter: back off, retry.
            time.sleep(random.uniform(0, 0.02 * 2**attempt))
    raise RuntimeError("usage commit did not converge")
