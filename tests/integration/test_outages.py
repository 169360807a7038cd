"""Redis and the AWS emulator go away during traffic and come back."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from infra.local.emulator import MotoServer
from infra.local.launcher import RunningStack, start_stack
from tests.conftest import OUTPUT, TEST_STATE
from tests.outages import OwnRedis, TcpProxy
from tests.waiting import wait_for

CHAT = {"model": "gpt-3.5-turbo", "messages": [{"role": "user", "content": "still there?"}]}


@pytest.fixture(scope="module")
def fragile() -> Iterator[tuple[RunningStack, OwnRedis, TcpProxy]]:
    """A stack whose Redis and AWS endpoint the test can take away."""
    redis_server = OwnRedis().start()
    moto = MotoServer().start()
    proxy = TcpProxy(moto.port).open()
    stack = start_stack(
        TEST_STATE / "fragile",
        OUTPUT / "fragile.log",
        REDIS_URL=redis_server.url,
        AWS_ENDPOINT_URL=proxy.url,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        LOCAL_STACK_NAME="gpucloud",
        RESULT_TIMEOUT_SECONDS="10",
        # A batch cut off mid-commit is redelivered in seconds, not the default 30.
        LOCAL_VISIBILITY_TIMEOUT="2",
        # No in-process key cache: an outage must reach storage on the next request.
        KEY_CACHE_SECONDS="0",
    )
    yield stack, redis_server, proxy
    stack.stop()
    proxy.cut()
    moto.stop()
    redis_server.stop()


def _admin(stack: RunningStack) -> dict[str, str]:
    return {"Authorization": f"Bearer {stack.admin_token}"}


def _key(stack: RunningStack) -> dict[str, Any]:
    url = f"{stack.api_url}/api/keys"
    created = httpx.post(url, headers=_admin(stack), json={"name": "outage"}, timeout=30)
    key: dict[str, Any] = created.json()
    return key


def _chat(stack: RunningStack, key: str, **extra: Any) -> httpx.Response:
    return httpx.post(
        f"{stack.base_url}/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={**CHAT, **extra},
        timeout=30,
    )


def test_redis_outage_fails_open_reports_it_and_recovers(
    fragile: tuple[RunningStack, OwnRedis, TcpProxy],
) -> None:
    stack, redis_server, _ = fragile
    key = _key(stack)["key"]
    assert _chat(stack, key).status_code == 200
    # WHEN Redis stops
    redis_server.stop()
    try:
        health = httpx.get(f"{stack.api_url}/health", timeout=30)
        assert health.status_code == 503 and health.json()["checks"]["redis"]["status"] == "down"
        # THEN requests are still served (limits fail open; waiters read DynamoDB), in time
        began = time.monotonic()
        answer = _chat(stack, key)
        assert answer.status_code == 200, answer.text
        assert time.monotonic() - began < 10
        assert "x-ratelimit-limit-requests" not in answer.headers
        streamed = _chat(stack, key, stream=True)
        assert streamed.status_code == 200 and streamed.text.endswith("data: [DONE]\n\n")
    finally:
        redis_server.start()
    # AND once it is back, everything recovers without a restart
    assert wait_for(lambda: httpx.get(f"{stack.api_url}/health", timeout=30).status_code == 200, timeout=10)

    def limited() -> bool:
        back = _chat(stack, key)
        return back.status_code == 200 and back.headers.get("x-ratelimit-limit-requests") == "100"

    assert wait_for(limited, timeout=10), "rate limits did not come back with Redis"


def test_emulator_outage_is_a_fast_503_and_traffic_recovers(
    fragile: tuple[RunningStack, OwnRedis, TcpProxy],
) -> None:
    stack, _, proxy = fragile
    created = _key(stack)
    key = created["key"]
    assert _chat(stack, key).status_code == 200
    # WHEN the SQS/DynamoDB endpoint becomes unreachable
    cut_at = datetime.now(UTC)
    proxy.cut()
    try:
        began = time.monotonic()
        refused = _chat(stack, key)
        elapsed = time.monotonic() - began
        # THEN the client gets a quick 503 in OpenAI's shape
        assert refused.status_code == 503, refused.text
        assert refused.json()["error"]["code"] == "service_unavailable"
        assert elapsed < 8, f"took {elapsed:.1f}s"
        assert (
            httpx.get(f"{stack.api_url}/health", timeout=30).json()["checks"]["dynamodb"]["status"] == "down"
        )
    finally:
        proxy.open()
        reopened_at = datetime.now(UTC)

    # AND traffic recovers without a restart, with no half-written job left behind
    def served() -> httpx.Response | None:
        response = _chat(stack, key)
        return response if response.status_code == 200 else None

    assert wait_for(served, timeout=20) is not None, "traffic did not recover"

    # The refused request left no job: every row of the key's log was created outside the outage, and
    # each is counted once (a request sent while the workers were still reconnecting may end later).
    def log_of_ended_jobs() -> list[dict[str, Any]] | None:
        query = {"apiKeyId": created["id"]}
        log = httpx.get(f"{stack.api_url}/api/requests", params=query, headers=_admin(stack), timeout=30)
        rows: list[dict[str, Any]] = log.json()["data"]
        return rows if all(row["status"] == "succeeded" for row in rows) else None

    rows = wait_for(log_of_ended_jobs, timeout=30)
    assert rows, "the key's jobs did not all succeed"
    assert not [row for row in rows if cut_at <= datetime.fromisoformat(row["created_at"]) <= reopened_at]
    totals = httpx.get(f"{stack.api_url}/api/keys/{created['id']}", headers=_admin(stack), timeout=30).json()
    assert totals["request_count"] == len(rows) >= 2
