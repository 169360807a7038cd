"""One local stack for all integration and end-to-end tests (started once)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from infra.local.launcher import RunningStack, start_stack
from tests.conftest import ROOT, TEST_STATE

OUTPUT = ROOT / "test-output"


@pytest.fixture(scope="session")
def stack() -> Iterator[RunningStack]:
    running = start_stack(
        TEST_STATE / "stack",
        OUTPUT / "stack.log",
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
