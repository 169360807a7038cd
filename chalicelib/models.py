"""DynamoDB tables, one class each (the tables themselves are CloudFormation's).

`Meta` is read at import time (PynamoDB#287), so table names are resolved from
settings here and tests set the environment before importing this module.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pynamodb.attributes import (
    JSONAttribute,
    ListAttribute,
    NumberAttribute,
    TTLAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
)
from pynamodb.indexes import GlobalSecondaryIndex, KeysOnlyProjection
from pynamodb.models import Model

from chalicelib.settings import get_settings

_settings = get_settings()


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso_utc(value: datetime | None) -> str | None:
    """How the API writes a time: ISO 8601 in UTC with a Z."""
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def int_or_none(value: float | None) -> int | None:
    """A number attribute as the API shows it (DynamoDB hands numbers back as floats)."""
    return int(value) if value is not None else None


class _Meta:
    region = _settings.region
    host = _settings.aws_endpoint_url
    # A store that is away must turn into a quick 503, not a hung request.
    connect_timeout_seconds = 2
    read_timeout_seconds = 10
    max_retry_attempts = 2


class ApiKeyById(GlobalSecondaryIndex["ApiKeyRecord"]):
    class Meta:
        index_name = "by_id"
        projection = KeysOnlyProjection()

    id = UnicodeAttribute(hash_key=True)


class ApiKeyRecord(Model):
    """An API key. Keyed by the SHA-256 of the secret: the secret is never stored."""

    class Meta(_Meta):
        table_name = _settings.api_keys_table

    key_hash = UnicodeAttribute(hash_key=True)
    id = UnicodeAttribute()
    by_id = ApiKeyById()
    name = UnicodeAttribute()
    prefix = UnicodeAttribute()
    status = UnicodeAttribute(default="active")
    created_at = UTCDateTimeAttribute(default=utcnow)
    last_used_at = UTCDateTimeAttribute(null=True)
    expires_at = UTCDateTimeAttribute(null=True)
    rate_limit_rpm = NumberAttribute(null=True)
    rate_limit_tpm = NumberAttribute(null=True)
    monthly_token_quota = NumberAttribute(null=True)
    allowed_models = ListAttribute(of=UnicodeAttribute, null=True)
    request_count = NumberAttribute(default=0)
    prompt_tokens = NumberAttribute(default=0)
    completion_tokens = NumberAttribute(default=0)
    # Bumped by every change (revoke, new limits); API instances compare it
    # with Redis's copy to drop a stale cached key at once.
    version = NumberAttribute(default=0)


class DeploymentRecord(Model):
    """A model deployment; `name` is the public model id clients send."""

    class Meta(_Meta):
        table_name = _settings.deployments_table

    name = UnicodeAttribute(hash_key=True)
    backend = UnicodeAttribute(default="simulated")
    status = UnicodeAttribute(default="provisioning")
    status_reason = UnicodeAttribute(null=True)
    config = JSONAttribute(default=dict)
    created_at = UTCDateTimeAttribute(default=utcnow)
    updated_at = UTCDateTimeAttribute(default=utcnow)


# The job indexes hold keys only: the worker's update of a job then changes nothing an index holds,
# which saves two index writes per completion (docs/PERFORMANCE.md, 3.3); the request log, a rare admin
# read, fetches its page's rows from the table.
class JobsByKey(GlobalSecondaryIndex["JobRecord"]):
    class Meta:
        index_name = "jobs_of_key"
        projection = KeysOnlyProjection()

    key_id = UnicodeAttribute(hash_key=True)
    created_at = UTCDateTimeAttribute(range_key=True)


class JobsByDay(GlobalSecondaryIndex["JobRecord"]):
    class Meta:
        index_name = "jobs_of_day"
        projection = KeysOnlyProjection()

    day = UnicodeAttribute(hash_key=True)
    created_at = UTCDateTimeAttribute(range_key=True)


class JobRecord(Model):
    """One inference request: the queue's unit of work and the request log row."""

    class Meta(_Meta):
        table_name = _settings.jobs_table

    job_id = UnicodeAttribute(hash_key=True)
    key_id = UnicodeAttribute()
    # Which ApiKeyRecord to meter against (the SHA-256, never the key).
    key_hash = UnicodeAttribute(null=True)
    day = UnicodeAttribute()
    by_key = JobsByKey()
    by_day = JobsByDay()
    kind = UnicodeAttribute(default="chat.completion")
    model = UnicodeAttribute()
    status = UnicodeAttribute(default="queued")
    request = JSONAttribute()
    result = JSONAttribute(null=True)
    error_code = UnicodeAttribute(null=True)
    error_message = UnicodeAttribute(null=True)
    created_at = UTCDateTimeAttribute(default=utcnow)
    started_at = UTCDateTimeAttribute(null=True)
    finished_at = UTCDateTimeAttribute(null=True)
    prompt_tokens = NumberAttribute(default=0)
    completion_tokens = NumberAttribute(default=0)
    queue_ms = NumberAttribute(null=True)
    model_ms = NumberAttribute(null=True)
    latency_ms = NumberAttribute(null=True)
    attempts = NumberAttribute(default=0)
    # What the rate limiter reserved for this job, settled when it ends.
    reserved_tokens = NumberAttribute(default=0)
    reserved_month = UnicodeAttribute(null=True)
    expires_at = TTLAttribute(null=True)


class UsageCounterRecord(Model):
    """Usage of one (key, model) in one hour, in one of several shards.

    The partition is the hour plus a shard number so that a busy hour spreads
    its writes over several partitions and the rollup reads an hour with a
    bounded number of queries. The latency histogram has fixed buckets
    (`LATENCY_BUCKETS_MS`) so that it merges by addition across shards,
    hours and instances.
    """

    class Meta(_Meta):
        table_name = _settings.usage_table

    hour_shard = UnicodeAttribute(hash_key=True)
    key_model = UnicodeAttribute(range_key=True)
    requests = NumberAttribute(default=0)
    errors = NumberAttribute(default=0)
    prompt_tokens = NumberAttribute(default=0)
    completion_tokens = NumberAttribute(default=0)
    latency_ms_sum = NumberAttribute(default=0)
    lat_0 = NumberAttribute(default=0)
    lat_1 = NumberAttribute(default=0)
    lat_2 = NumberAttribute(default=0)
    lat_3 = NumberAttribute(default=0)
    lat_4 = NumberAttribute(default=0)
    lat_5 = NumberAttribute(default=0)
    lat_6 = NumberAttribute(default=0)
    lat_7 = NumberAttribute(default=0)
    lat_8 = NumberAttribute(default=0)
    lat_9 = NumberAttribute(default=0)
    lat_10 = NumberAttribute(default=0)
    lat_11 = NumberAttribute(default=0)
    expires_at = TTLAttribute(null=True)


# Upper bounds (ms) of the histogram buckets lat_0..lat_11; the last is open.
LATENCY_BUCKETS_MS: tuple[float, ...] = (
    10,
    25,
    50,
    100,
    250,
    500,
    1000,
    2500,
    5000,
    10000,
    30000,
    float("inf"),
)
