"""The one place that reads the environment.

Every other module asks `get_settings()`; nothing else touches `os.environ`.
Table and queue names come from the environment because CloudFormation owns
them (the deploy sets them from the stack, `infra/local` from the emulator's
stack outputs), so code and infrastructure cannot drift.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw else default


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    return float(raw) if raw else default


def _str(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip() or default


def _csv(name: str, default: str = "") -> tuple[str, ...]:
    return tuple(part.strip() for part in _str(name, default).split(",") if part.strip())


@dataclass(frozen=True)
class Settings:
    stage: str
    region: str
    aws_endpoint_url: str | None

    api_keys_table: str
    deployments_table: str
    jobs_table: str
    usage_table: str
    jobs_queue_name: str
    jobs_queue_url: str | None
    jobs_dlq_url: str | None

    redis_url: str
    database_url: str

    admin_token: str
    cors_allow_origin: str | None

    default_rpm: int
    default_tpm: int
    key_cache_seconds: float
    result_timeout_seconds: float
    max_body_bytes: int
    max_n: int
    max_tokens_cap: int
    default_max_tokens: int

    queue_max_receives: int
    request_log_retention_days: int
    default_models: tuple[str, ...]
    rollup_schedule: str
    debug: bool


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    stage = _str("GPUCLOUD_STAGE", "local")
    return Settings(
        stage=stage,
        region=_str("AWS_REGION", _str("AWS_DEFAULT_REGION", "us-east-1")),
        aws_endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None,
        api_keys_table=_str("API_KEYS_TABLE", "gpucloud-api-keys"),
        deployments_table=_str("DEPLOYMENTS_TABLE", "gpucloud-deployments"),
        jobs_table=_str("JOBS_TABLE", "gpucloud-jobs"),
        usage_table=_str("USAGE_TABLE", "gpucloud-usage"),
        jobs_queue_name=_str("JOBS_QUEUE_NAME", "gpucloud-inference-jobs"),
        jobs_queue_url=os.environ.get("JOBS_QUEUE_URL") or None,
        jobs_dlq_url=os.environ.get("JOBS_DLQ_URL") or None,
        redis_url=_str("REDIS_URL", "redis://127.0.0.1:6379/0"),
        database_url=_str("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
        admin_token=_str("ADMIN_TOKEN"),
        cors_allow_origin=os.environ.get("CORS_ALLOW_ORIGIN") or None,
        default_rpm=_int("DEFAULT_RPM", 100),
        default_tpm=_int("DEFAULT_TPM", 100_000),
        key_cache_seconds=_float("KEY_CACHE_SECONDS", 2.0),
        # API Gateway cuts a request at 29 s: answer 504 with the job id first.
        result_timeout_seconds=_float("RESULT_TIMEOUT_SECONDS", 25.0),
        # A job carries its request through SQS (256 KiB a message) and
        # DynamoDB (400 KB an item): larger bodies are refused with 413.
        max_body_bytes=_int("MAX_BODY_BYTES", 196_608),
        max_n=_int("MAX_N", 8),
        max_tokens_cap=_int("MAX_TOKENS_CAP", 4096),
        default_max_tokens=_int("DEFAULT_MAX_TOKENS", 256),
        queue_max_receives=_int("QUEUE_MAX_RECEIVES", 3),
        request_log_retention_days=_int("REQUEST_LOG_RETENTION_DAYS", 30),
        default_models=_csv("DEFAULT_MODELS", "gpt-3.5-turbo,text-embedding-3-small"),
        rollup_schedule=_str("ROLLUP_SCHEDULE", "cron(15 0 * * ? *)"),
        debug=_str("GPUCLOUD_DEBUG", "false").lower() in {"1", "true", "yes"},
    )
