"""The process's clients, each built once on first use and then reused.

A Lambda container serves many invocations: building a boto3 client, a Redis
pool or a Postgres connection per request would cost more than the request.
"""

from __future__ import annotations

import threading
from functools import cached_property
from typing import TYPE_CHECKING, Any

import boto3
import redis
from botocore.config import Config
from pynamodb.connection import Connection
from redis.backoff import ExponentialWithJitterBackoff
from redis.retry import Retry

from chalicelib.cache import TtlCache
from chalicelib.deployments import Deployment
from chalicelib.keys import ApiKey
from chalicelib.ratelimit import RateLimiter
from chalicelib.secrets import SecretStore
from chalicelib.settings import Settings, get_settings

if TYPE_CHECKING:
    import psycopg

# redis-py re-sends a command after a timeout by default, but a timed-out EVALSHA may have run, and the
# rate-limit and settle scripts are not idempotent: a re-sent settle would add a job's tokens to the
# monthly quota again. Only a failed connection (nothing was sent, or the server is gone) is retried.
REDIS_RETRY = Retry(
    ExponentialWithJitterBackoff(base=0.01, cap=1), retries=10, supported_errors=(redis.ConnectionError,)
)


class Services:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._queue_urls: dict[str, str] = {}
        self._pg: psycopg.Connection[Any] | None = None

    @cached_property
    def key_cache(self) -> TtlCache[ApiKey]:
        return TtlCache(self.settings.key_cache_seconds)

    @cached_property
    def deployment_cache(self) -> TtlCache[Deployment]:
        return TtlCache(self.settings.key_cache_seconds)

    @cached_property
    def sqs(self) -> Any:
        # Short timeouts and few retries: a dead endpoint must turn into a
        # fast 503, not a request that hangs until API Gateway gives up.
        config = Config(
            connect_timeout=2,
            read_timeout=10,
            retries={"max_attempts": 2, "mode": "standard"},
            max_pool_connections=50,
        )
        return boto3.client(
            "sqs",
            region_name=self.settings.region,
            endpoint_url=self.settings.aws_endpoint_url,
            config=config,
        )

    @cached_property
    def dynamodb(self) -> Connection:
        """For transactions; models use their own per-table connections."""
        return Connection(region=self.settings.region, host=self.settings.aws_endpoint_url)

    @cached_property
    def redis(self) -> redis.Redis:
        # socket_timeout is longer than the longest BLPOP so a wait is never
        # cut by the socket.
        return redis.Redis.from_url(
            self.settings.redis_url,
            socket_connect_timeout=1,
            socket_timeout=self.settings.result_timeout_seconds + 5,
            health_check_interval=30,
            retry=REDIS_RETRY,
        )

    @cached_property
    def secrets(self) -> SecretStore:
        client = boto3.client(
            "secretsmanager", region_name=self.settings.region, endpoint_url=self.settings.aws_endpoint_url
        )
        return SecretStore(client)

    @cached_property
    def rate_limiter(self) -> RateLimiter:
        return RateLimiter(self.redis)

    def queue_url(self, name: str | None = None) -> str:
        name = name or self.settings.jobs_queue_name
        if name == self.settings.jobs_queue_name and self.settings.jobs_queue_url:
            return self.settings.jobs_queue_url
        if name == self.dlq_name and self.settings.jobs_dlq_url:
            return self.settings.jobs_dlq_url
        url = self._queue_urls.get(name)
        if url is None:
            url = self.sqs.get_queue_url(QueueName=name)["QueueUrl"]
            self._queue_urls[name] = url
        return url

    @property
    def dlq_name(self) -> str:
        return self.settings.jobs_queue_name + "-dlq"

    def postgres(self) -> psycopg.Connection[Any]:
        """One autocommit connection per process, reopened if it broke."""
        import psycopg  # imported here: only the rollup and metrics need it

        with self._lock:
            if self._pg is None or self._pg.closed or self._pg.broken:
                self._pg = psycopg.connect(self.settings.database_url, autocommit=True, connect_timeout=3)
            return self._pg

    def new_postgres_connection(self) -> psycopg.Connection[Any]:
        """A connection of the caller's own (autocommit; the caller closes it).

        For work that holds a transaction, like the rollup: the shared
        connection above is used by concurrent requests on the local stack.
        """
        import psycopg

        return psycopg.connect(self.settings.database_url, autocommit=True, connect_timeout=5)


_services: Services | None = None


def get_services() -> Services:
    global _services
    if _services is None:
        _services = Services(get_settings())
    return _services


def reset_services() -> None:
    """Forget every client, e.g. after tests change the environment."""
    global _services
    _services = None
    get_settings.cache_clear()
