"""Async jobs: /v1/jobs/{id} to read or cancel a job, for the key that made it."""

from __future__ import annotations

from typing import Any

import redis
from chalice.app import Request, Response
from pynamodb.exceptions import DoesNotExist

from chalicelib import jobs
from chalicelib.admission import answer
from chalicelib.errors import Conflict, NotFound
from chalicelib.keys import ApiKey
from chalicelib.models import JobRecord, iso_utc, utcnow
from chalicelib.ratelimit import Settlement
from chalicelib.responses import usage_body
from chalicelib.services import Services
from chalicelib.usage import JobOutcome, commit_outcomes


def job_view(job: JobRecord, running: bool = False) -> dict[str, Any]:
    status = jobs.RUNNING if job.status == jobs.QUEUED and running else job.status
    ended = job.status in jobs.TERMINAL
    return {
        "id": job.job_id,
        "object": "job",
        "status": status,
        "model": job.model,
        "kind": job.kind,
        "created_at": iso_utc(job.created_at),
        "finished_at": iso_utc(job.finished_at),
        "result": job.result if job.status == jobs.SUCCEEDED else None,
        "error": (
            {"code": job.error_code, "message": job.error_message}
            if job.status in (jobs.FAILED, jobs.CANCELLED)
            else None
        ),
        "usage": usage_body(int(job.prompt_tokens), int(job.completion_tokens)) if ended else None,
    }


def _owned_job(api_key: ApiKey, job_id: str) -> JobRecord:
    """The key's own job; another key's job is 'not found', not 'forbidden'."""
    try:
        job = JobRecord.get(job_id, consistent_read=True)
    except DoesNotExist:
        job = None
    if job is None or job.key_id != api_key.id:
        raise NotFound(f"No job with id '{job_id}' for this API key.", param="job_id", code="job_not_found")
    return job


def _is_running(services: Services, job_id: str) -> bool:
    try:
        return bool(services.redis.exists(jobs.running_key(job_id)))
    except redis.RedisError:
        return False


def get_job(request: Request, services: Services, job_id: str) -> Response:
    def read(api_key: ApiKey) -> dict[str, Any]:
        job = _owned_job(api_key, job_id)
        return job_view(job, running=job.status == jobs.QUEUED and _is_running(services, job_id))

    return answer(request, services, read)


def cancel_job(request: Request, services: Services, job_id: str) -> Response:
    return answer(request, services, lambda api_key: _cancel(services, api_key, job_id))


def _cancel(services: Services, api_key: ApiKey, job_id: str) -> dict[str, Any]:
    """Cancel a queued job; it is metered once, as a request with no tokens."""
    job = _owned_job(api_key, job_id)
    if job.status == jobs.QUEUED and _is_running(services, job_id):
        raise Conflict(f"The job '{job_id}' is already running and can no longer be cancelled.")
    if job.status != jobs.QUEUED:
        raise Conflict(f"The job '{job_id}' is already {job.status}; only queued jobs can be cancelled.")
    outcome = JobOutcome(
        job_id=job.job_id,
        key_id=api_key.id,
        key_hash=api_key.key_hash,
        model=job.model,
        status=jobs.CANCELLED,
        created_at=job.created_at,
        finished_at=utcnow(),
        error_code="cancelled",
        error_message="Cancelled by the client before it ran.",
    )
    ended = commit_outcomes(services.dynamodb, [outcome])
    if ended:
        jobs.settle_and_publish(
            services, ended, [Settlement.of_job(api_key.id, job.reserved_month, job.reserved_tokens, 0)]
        )
    job.refresh(consistent_read=True)
    if job.status != jobs.CANCELLED:
        raise Conflict(f"The job '{job_id}' is already {job.status}; only queued jobs can be cancelled.")
    return job_view(job)
