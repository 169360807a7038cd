"""Test environment, set before anything imports chalicelib.

pynamodb reads table names when the models are imported (PynamoDB#287), so the
environment is fixed here, first. Redis and Postgres are real servers: the
ones configured or running on 127.0.0.1, else the embedded ones `make run`
would use (infra/local/dependencies.py decides, for both).
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEST_STATE = ROOT / ".local" / "test"

os.environ.update(
    {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "GPUCLOUD_STAGE": "test",
        "ADMIN_TOKEN": "test-admin-token",
        "API_KEYS_TABLE": "gpucloud-api-keys",
        "DEPLOYMENTS_TABLE": "gpucloud-deployments",
        "JOBS_TABLE": "gpucloud-jobs",
        "USAGE_TABLE": "gpucloud-usage",
        "JOBS_QUEUE_NAME": "gpucloud-inference-jobs",
        "RESULT_TIMEOUT_SECONDS": "10",
        "QUEUE_MAX_RECEIVES": "2",
    }
)
for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN", "JOBS_QUEUE_URL", "JOBS_DLQ_URL"):
    os.environ.pop(name, None)

from collections.abc import Iterator  # noqa: E402
from typing import Any  # noqa: E402

import httpx  # noqa: E402
import pytest  # noqa: E402

from infra.local import dependencies  # noqa: E402
from infra.local.launcher import RunningStack, start_stack  # noqa: E402

_redis_url, _ = dependencies.redis_url(TEST_STATE, database=1)
_database_url, _ = dependencies.postgres_url(TEST_STATE, "gpucloud_test")
os.environ["REDIS_URL"] = _redis_url
os.environ["DATABASE_URL"] = _database_url


def _migrate_test_database() -> None:
    """The schema `make run` applies at start-up, so tests of the app find it on a new database too."""
    import psycopg

    from chalicelib.postgres import migrate

    with psycopg.connect(_database_url, autocommit=True) as connection:
        migrate(connection)


_migrate_test_database()


# One local stack for all integration and end-to-end tests, started on first use.
OUTPUT = ROOT / "test-output"


@pytest.fixture(scope="session")
def stack() -> Iterator[RunningStack]:
    # Per test process, so that two test runs on one machine never share a stack's files.
    running = start_stack(
        TEST_STATE / f"stack-{os.getpid()}",
        OUTPUT / f"stack-{os.getpid()}.log",
        LOCAL_VISIBILITY_TIMEOUT="2",
        QUEUE_MAX_RECEIVES="2",
        RESULT_TIMEOUT_SECONDS="20",
    )
    yield running
    running.stop()


@pytest.fixture(scope="session")
def admin(stack: RunningStack) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=stack.api_url, headers={"Authorization": f"Bearer {stack.admin_token}"}, timeout=30
    ) as client:
        yield client


@pytest.fixture()
def new_key(admin: httpx.Client) -> dict[str, Any]:
    response = admin.post("/api/keys", json={"name": "integration"})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created
