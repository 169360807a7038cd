"""The SQS-triggered worker: run each job's model, record result and usage.

Records are processed independently; the ones that fail are reported as
`batchItemFailures` so only they are retried. On a record's last allowed
receive a failure also ends its job as `failed` with the reason (and the
message then moves to the DLQ), so the waiting client gets an answer.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import redis

from chalicelib import jobs
from chalicelib.backends import backend_for
from chalicelib.backends.base import ModelError, failure_reason
from chalicelib.deployment_admin import PROVISION_KIND, provision
from chalicelib.inference import CHAT, perform
from chalicelib.jobs import FAILED, RESULT_KEY_TTL_SECONDS, SUCCEEDED, running_key
from chalicelib.models import utcnow
from chalicelib.ratelimit import Settlement
from chalicelib.services import Services
from chalicelib.streaming import DeltaWriter
from chalicelib.usage import JobOutcome, commit_outcomes

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class QueueMessage:
    message_id: str
    body: str
    receive_count: int

    @classmethod
    def from_lambda_record(cls, record: dict[str, Any]) -> QueueMessage:
        attributes = record.get("attributes") or {}
        return cls(
            message_id=record["messageId"],
            body=record["body"],
            receive_count=int(attributes.get("ApproximateReceiveCount", "1")),
        )


def run_job(message: dict[str, Any], services: Services, deltas: DeltaWriter | None = None) -> JobOutcome:
    """Run the model for one queued job and describe how it ended.

    With `deltas` (a streamed request), each token is written to the job's
    Redis stream as the model produces it.
    """
    created_at = datetime.fromisoformat(message["created_at"])
    started_at = utcnow()
    backend = backend_for(message["backend"], message.get("backend_config") or {}, services)
    began = time.perf_counter()
    answer = perform(
        message.get("kind", CHAT),
        message["request"],
        backend,
        message["job_id"],
        message["model"],
        int(created_at.timestamp()),
        deltas,
    )
    if deltas is not None:
        deltas.flush()
    model_ms = int((time.perf_counter() - began) * 1000)
    return _ended(
        message,
        SUCCEEDED,
        result=answer.body,
        prompt_tokens=answer.prompt_tokens,
        completion_tokens=answer.completion_tokens,
        queue_ms=max(int((started_at - created_at).total_seconds() * 1000), 0),
        model_ms=model_ms,
    )


def failed_outcome(message: dict[str, Any], reason: str) -> JobOutcome:
    return _ended(message, FAILED, error_code="model_error", error_message=reason)


def _ended(message: dict[str, Any], status: str, **details: Any) -> JobOutcome:
    """The job of a queue message, ended now with `status`."""
    return JobOutcome(
        job_id=message["job_id"],
        key_id=message["key_id"],
        key_hash=message["key_hash"],
        model=message["model"],
        status=status,
        created_at=datetime.fromisoformat(message["created_at"]),
        finished_at=utcnow(),
        **details,
    )


def handle_batch(messages: Iterable[QueueMessage], services: Services) -> dict[str, Any]:
    outcomes: list[JobOutcome] = []
    outcome_message_ids: list[str] = []
    failures: list[str] = []
    parsed: list[tuple[QueueMessage, dict[str, Any]]] = []
    for queued in messages:
        try:
            message = json.loads(queued.body)
        except ValueError:
            log.error("message %s is not JSON; leaving it for the DLQ", queued.message_id)
            failures.append(queued.message_id)
            continue
        if message.get("kind") == PROVISION_KIND:
            try:
                provision(message, services)
            except Exception as exc:  # noqa: BLE001 - retried, then the DLQ
                log.warning("provisioning %s failed: %s", message.get("deployment"), exc.__class__.__name__)
                failures.append(queued.message_id)
            continue
        parsed.append((queued, message))
    mark_running(services, [message["job_id"] for _, message in parsed])
    reservations = {
        message["job_id"]: (int(message.get("reserved_tokens") or 0), message.get("reserved_month"))
        for _, message in parsed
    }
    for queued, message in parsed:
        deltas = None
        if message.get("request", {}).get("stream"):
            deltas = DeltaWriter(services.redis, message["job_id"], queued.receive_count)
        try:
            outcomes.append(run_job(message, services, deltas))
            outcome_message_ids.append(queued.message_id)
        except Exception as exc:  # noqa: BLE001 - any model failure is retried
            reason = failure_reason(exc)
            log.warning(
                "job %s failed on receive %d: %s: %s",
                message.get("job_id"),
                queued.receive_count,
                exc.__class__.__name__,
                exc,
                exc_info=not isinstance(exc, ModelError),
            )
            failures.append(queued.message_id)
            if queued.receive_count >= services.settings.queue_max_receives:
                outcomes.append(failed_outcome(message, reason))
                outcome_message_ids.append("")
    try:
        ended = commit_outcomes(services.dynamodb, outcomes)
    except Exception as exc:  # noqa: BLE001 - nothing committed: retry the batch
        log.error("could not record the batch's results: %s", exc.__class__.__name__)
        failures.extend(mid for mid in outcome_message_ids if mid)
        ended = []
    jobs.settle_and_publish(
        services,
        ended,
        [
            Settlement.of_job(
                o.key_id,
                reservations[o.job_id][1],
                reservations[o.job_id][0],
                o.prompt_tokens + o.completion_tokens,
            )
            for o in ended
        ],
    )
    return {"batchItemFailures": [{"itemIdentifier": mid} for mid in failures]}


def mark_running(services: Services, job_ids: list[str]) -> None:
    """Tell job readers the batch's jobs are running: one Redis round trip,
    no DynamoDB write (the Job row goes from queued to its end directly)."""
    if not job_ids:
        return
    try:
        pipe = services.redis.pipeline(transaction=False)
        for job_id in job_ids:
            pipe.set(running_key(job_id), "1", ex=RESULT_KEY_TTL_SECONDS)
        pipe.execute()
    except redis.RedisError as exc:
        log.warning("could not mark jobs running: %s", exc.__class__.__name__)
