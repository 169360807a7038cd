"""The API side of the queue: write a Job, send it, wait for its result.

The wait is a push: the worker LPUSHes the outcome to `job:{id}:done` and the
API BLPOPs it. DynamoDB stays the source of truth: when Redis is down or the
wait times out, the Job row decides.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from datetime import timedelta
from typing import Any

import redis
from botocore.exceptions import BotoCoreError, ClientError
from pynamodb.exceptions import DoesNotExist, PynamoDBException

from chalicelib.deployments import Deployment
from chalicelib.errors import Conflict, JobFailed, JobTimeout, ServiceUnavailable
from chalicelib.keys import ApiKey
from chalicelib.models import JobRecord, utcnow
from chalicelib.ratelimit import Settlement
from chalicelib.services import Services
from chalicelib.usage import JobOutcome

log = logging.getLogger(__name__)

QUEUED = "queued"
RUNNING = "running"
SUCCEEDED = "succeeded"
FAILED = "failed"
CANCELLED = "cancelled"
TERMINAL = (SUCCEEDED, FAILED, CANCELLED)
# Outcomes stay in Redis long enough for a late waiter, then expire.
RESULT_KEY_TTL_SECONDS = 300


def result_key(job_id: str) -> str:
    return f"job:{job_id}:done"


def running_key(job_id: str) -> str:
    return f"job:{job_id}:running"


def new_job_id() -> str:
    return uuid.uuid4().hex


def submit(
    services: Services,
    api_key: ApiKey,
    deployment: Deployment,
    kind: str,
    request: dict[str, Any],
    reserved_tokens: int = 0,
    reserved_month: str | None = None,
) -> JobRecord:
    """Write the Job (queued) and send it to the queue."""
    now = utcnow()
    retention = timedelta(days=services.settings.request_log_retention_days)
    job = JobRecord(
        job_id=new_job_id(),
        key_id=api_key.id,
        key_hash=api_key.key_hash,
        day=now.strftime("%Y-%m-%d"),
        kind=kind,
        model=deployment.name,
        status=QUEUED,
        request=request,
        created_at=now,
        expires_at=now + retention,
        reserved_tokens=reserved_tokens,
        reserved_month=reserved_month,
    )
    message = {
        "job_id": job.job_id,
        "key_id": api_key.id,
        "key_hash": api_key.key_hash,
        "kind": kind,
        "model": deployment.name,
        "backend": deployment.backend,
        "backend_config": deployment.config,
        "request": request,
        "created_at": now.isoformat(),
        # What the rate limiter reserved, so the worker can settle it.
        "reserved_tokens": reserved_tokens,
        "reserved_month": reserved_month,
    }
    try:
        job.save()
        services.sqs.send_message(
            QueueUrl=services.queue_url(), MessageBody=json.dumps(message, separators=(",", ":"))
        )
    except (PynamoDBException, BotoCoreError, ClientError) as exc:
        log.warning("could not enqueue job %s: %s", job.job_id, exc.__class__.__name__)
        _mark_unsent(job)
        raise ServiceUnavailable(
            "The job queue is unavailable right now; nothing was charged. Retry in a few seconds."
        ) from None
    return job


def _mark_unsent(job: JobRecord) -> None:
    """A job that never reached the queue must not sit 'queued' forever."""
    try:
        job.update(
            actions=[
                JobRecord.status.set(FAILED),
                JobRecord.error_code.set("enqueue_failed"),
                JobRecord.error_message.set("The job could not be sent to the queue."),
            ],
            condition=JobRecord.status == QUEUED,
        )
    except PynamoDBException:
        # The table is unreachable too: the row (if written) is swept by TTL.
        pass


def outcome_of(job: JobRecord) -> dict[str, Any] | None:
    if job.status not in TERMINAL:
        return None
    return {
        "status": job.status,
        "result": job.result,
        "error_code": job.error_code,
        "error_message": job.error_message,
    }


def read_outcome(job_id: str) -> dict[str, Any] | None:
    try:
        return outcome_of(JobRecord.get(job_id, consistent_read=True))
    except DoesNotExist:
        return None


def wait_for_outcome(services: Services, job_id: str, timeout: float) -> dict[str, Any]:
    """Block until the job ends; JobTimeout (504, with the job id) otherwise."""
    deadline = time.monotonic() + timeout
    try:
        popped = services.redis.blpop([result_key(job_id)], timeout=max(timeout, 0.01))
        if popped is not None:
            outcome: dict[str, Any] = json.loads(popped[1])
            return outcome
    except redis.RedisError as exc:
        log.warning("result wait fell back to DynamoDB: %s", exc.__class__.__name__)
        return _poll_outcome(job_id, deadline)
    outcome_or_none = read_outcome(job_id)
    if outcome_or_none is not None:
        return outcome_or_none
    raise _timeout(job_id, timeout)


def _poll_outcome(job_id: str, deadline: float) -> dict[str, Any]:
    """Without Redis, read the Job row with backoff until the deadline."""
    delay = 0.05
    while True:
        outcome = read_outcome(job_id)
        if outcome is not None:
            return outcome
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _timeout(job_id, None)
        time.sleep(min(delay, remaining))
        delay = min(delay * 2, 1.0)


def _timeout(job_id: str, timeout: float | None) -> JobTimeout:
    waited = f" after {timeout:g} s" if timeout is not None else ""
    return JobTimeout(
        f"The model did not answer in time{waited}. The job '{job_id}' is still queued or "
        f"running; fetch its result later with GET /v1/jobs/{job_id}.",
        code="timeout",
        headers={"x-gpucloud-job-id": job_id},
    )


def result_or_error(job_id: str, outcome: dict[str, Any]) -> dict[str, Any]:
    if outcome["status"] == SUCCEEDED and outcome.get("result") is not None:
        result: dict[str, Any] = outcome["result"]
        return result
    if outcome["status"] == CANCELLED:
        raise Conflict(f"The job '{job_id}' was cancelled before it ran.", code="job_cancelled")
    reason = outcome.get("error_message") or "the job did not complete"
    raise JobFailed(
        f"The model failed to complete job '{job_id}': {reason}.",
        code=outcome.get("error_code") or "job_failed",
        headers={"x-gpucloud-job-id": job_id},
    )


def settle_and_publish(services: Services, ended: list[JobOutcome], settlements: list[Settlement]) -> None:
    """Settle the ended jobs' token reservations, then push each outcome to its waiting API call, in
    one Redis round trip. A pipeline runs its commands in order, so a client woken by its result
    already sees its refund. Best effort: DynamoDB has every outcome, and an unsettled reservation
    only holds tokens until the rate window passes."""
    if not ended and not settlements:
        return
    try:
        pipe = services.redis.pipeline(transaction=False)
        queued = services.rate_limiter.add_settlements(pipe, settlements)
        for outcome in ended:
            key = result_key(outcome.job_id)
            pipe.lpush(key, json.dumps(outcome.notification(), separators=(",", ":")))
            pipe.expire(key, RESULT_KEY_TTL_SECONDS)
        replies = pipe.execute(raise_on_error=False)
        services.rate_limiter.resettle_unscripted(settlements, replies[:queued])
        failed = next((reply for reply in replies[queued:] if isinstance(reply, redis.RedisError)), None)
        if failed is not None:
            raise failed
    except redis.RedisError as exc:
        log.warning("could not settle or notify, waiters will read DynamoDB: %s", exc.__class__.__name__)
