"""The dead-letter queue: what failed for good, and sending it back after a fix.

A job's message reaches the DLQ after `maxReceiveCount` failed receives; by
then the worker has ended its job as `failed` and metered it once as an
error. A redrive takes that failure back (job → queued, the failure's usage
subtracted, in one transaction that only applies to a job still `failed`),
sends the message to the main queue, then deletes it from the DLQ. Each step
is safe to repeat, so a redrive that crashes half-way can simply run again,
and the job is metered once for how it finally ends.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from pynamodb.exceptions import DoesNotExist

from chalicelib import jobs
from chalicelib.models import JobRecord
from chalicelib.services import Services
from chalicelib.usage import JobOutcome, commit_outcomes

log = logging.getLogger(__name__)

# SQS cannot peek: messages read while listing stay hidden this long, then
# reappear; a redrive waits that long for them.
_PEEK_VISIBILITY_SECONDS = 1


def _dead_letters(services: Services, limit: int, visibility: int, wait: int = 0) -> list[dict[str, Any]]:
    """Read up to `limit` distinct messages from the DLQ."""
    url = services.queue_url(services.dlq_name)
    seen: dict[str, dict[str, Any]] = {}
    while len(seen) < limit:
        batch = services.sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=min(10, limit - len(seen)),
            VisibilityTimeout=visibility,
            WaitTimeSeconds=wait,
            AttributeNames=["All"],
        ).get("Messages", [])
        fresh = [m for m in batch if m["MessageId"] not in seen]
        if not fresh:
            break
        for message in fresh:
            seen[message["MessageId"]] = message
    return list(seen.values())


def _describe(message: dict[str, Any]) -> dict[str, Any]:
    try:
        body = json.loads(message["Body"])
    except ValueError:
        body = {}
    view: dict[str, Any] = {
        "message_id": message["MessageId"],
        "kind": body.get("kind", "unknown"),
        "job_id": body.get("job_id"),
        "key_id": body.get("key_id"),
        "model": body.get("model") or body.get("deployment"),
        "receive_count": int(message.get("Attributes", {}).get("ApproximateReceiveCount", 0)),
        "job_status": None,
        "error_message": None,
    }
    if view["job_id"]:
        try:
            job = JobRecord.get(view["job_id"])
            view["job_status"], view["error_message"] = job.status, job.error_message
        except DoesNotExist:
            pass
    return view


def list_dead_letters(services: Services, limit: int = 100) -> dict[str, Any]:
    messages = _dead_letters(services, limit, _PEEK_VISIBILITY_SECONDS)
    return {"object": "list", "data": [_describe(m) for m in messages]}


def _take_back_failure(services: Services, job_id: str) -> None:
    try:
        job = JobRecord.get(job_id, consistent_read=True)
    except DoesNotExist:
        return
    if job.status != jobs.FAILED:
        return
    revert = JobOutcome(
        job_id=job.job_id,
        key_id=job.key_id,
        key_hash=job.key_hash or "",
        model=job.model,
        status=jobs.FAILED,
        created_at=job.created_at,
        finished_at=job.finished_at or job.created_at,
        error_code=job.error_code,
        sign=-1,
        from_statuses=(jobs.FAILED,),
        recorded_latency_ms=int(job.latency_ms or 0),
    )
    commit_outcomes(services.dynamodb, [revert])


def redrive(services: Services, limit: int = 100) -> dict[str, Any]:
    """Send up to `limit` dead letters back to the main queue."""
    # Hidden long enough to finish; a crash leaves them to reappear and be redriven again.
    messages = _dead_letters(services, limit, visibility=60, wait=_PEEK_VISIBILITY_SECONDS + 1)
    redriven = []
    for message in messages:
        body = json.loads(message["Body"]) if message["Body"].startswith("{") else {}
        resend = message["Body"]
        if body.get("job_id"):
            _take_back_failure(services, body["job_id"])
            # The failed run already returned its token reservation.
            resend = json.dumps({**body, "reserved_tokens": 0}, separators=(",", ":"))
        services.sqs.send_message(QueueUrl=services.queue_url(), MessageBody=resend)
        services.sqs.delete_message(
            QueueUrl=services.queue_url(services.dlq_name), ReceiptHandle=message["ReceiptHandle"]
        )
        redriven.append({"message_id": message["MessageId"], "job_id": body.get("job_id")})
    log.info("redrove %d dead letters", len(redriven))
    return {"object": "list", "redriven": len(redriven), "data": redriven}
