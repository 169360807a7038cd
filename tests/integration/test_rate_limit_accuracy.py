"""The limiter against the real Redis: accuracy under concurrency, failing open."""

from __future__ import annotations

import os
import threading
import time
import uuid

import pytest
import redis

from chalicelib.errors import RateLimited
from chalicelib.ratelimit import RateLimiter, format_duration


def test_limit_holds_across_two_instances_and_four_clients() -> None:
    # GIVEN two API instances (own Redis clients and scripts) and one key with limit L
    limit = 60
    instances = [RateLimiter(redis.Redis.from_url(os.environ["REDIS_URL"])) for _ in range(2)]
    key_id = f"key_{uuid.uuid4().hex}"
    accepted = 0
    refused = 0
    lock = threading.Lock()
    deadline = time.monotonic() + 2.0

    def hammer(limiter: RateLimiter) -> None:
        nonlocal accepted, refused
        while time.monotonic() < deadline:
            try:
                limiter.check(key_id, rpm=limit, tpm=10_000_000, requests=1, tokens=1, monthly_quota=None)
                with lock:
                    accepted += 1
            except RateLimited:
                with lock:
                    refused += 1

    began = time.monotonic()
    # WHEN 4 clients hammer it, two through each instance, for a bounded time
    threads = [threading.Thread(target=hammer, args=(instances[i % 2],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - began
    # THEN the accepted count is the burst L plus what refilled, never more
    refill = limit * elapsed / 60
    print(f"\nrate limit {limit}/min over {elapsed:.2f}s: accepted {accepted}, refused {refused}")
    assert limit <= accepted <= limit + refill + 1
    assert refused > 0
    # AND another key is unaffected
    other = instances[0].check(
        f"key_{uuid.uuid4().hex}", rpm=limit, tpm=100, requests=1, tokens=1, monthly_quota=None
    )
    assert other is not None and other.remaining_requests == limit - 1


def test_redis_down_fails_open() -> None:
    unreachable = RateLimiter(redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2))
    assert unreachable.check("key_x", rpm=1, tpm=1, requests=1, tokens=1, monthly_quota=None) is None


@pytest.mark.parametrize(
    ("ms", "text"), [(12, "12ms"), (1000, "1s"), (1500, "1.5s"), (360_000, "6m0s"), (3_723_000, "1h2m3s")]
)
def test_reset_durations_are_written_as_openai_does(ms: int, text: str) -> None:
    assert format_duration(ms) == text
