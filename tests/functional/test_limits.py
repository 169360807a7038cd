"""Per-key limits and quota through the API, and key changes seen at once."""

from __future__ import annotations

import json
import uuid
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis
from chalice.test import Client
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError
from redis.retry import Retry

from chalicelib.admission import admit
from chalicelib.errors import InvalidApiKey
from chalicelib.models import JobRecord
from chalicelib.ratelimit import RateLimiter, Settlement, current_month
from chalicelib.services import REDIS_RETRY, Services
from tests.functional.conftest import ADMIN, chat, create_key
from tests.outages import TcpProxy

HELLO = {"model": "gpt-3.5-turbo", "messages": [{"role": "user", "content": "Hello"}], "max_tokens": 20}


def test_requests_per_minute_with_openai_headers_and_retry_after(client: Client, workers: Any) -> None:
    key = create_key(client, rate_limit_rpm=2)["key"]
    first = chat(client, key, HELLO)
    assert first.status_code == 200
    assert first.headers["x-ratelimit-limit-requests"] == "2"
    assert first.headers["x-ratelimit-remaining-requests"] == "1"
    assert first.headers["x-ratelimit-reset-requests"].endswith("s")
    assert first.headers["x-ratelimit-limit-tokens"] == "100000"
    assert chat(client, key, HELLO).status_code == 200
    refused = chat(client, key, HELLO)
    assert refused.status_code == 429
    error = refused.json_body["error"]
    assert error["code"] == "rate_limit_exceeded"
    assert "2 requests per minute" in error["message"]
    assert 1 <= int(refused.headers["retry-after"]) <= 30
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"
    # Another key is not affected.
    assert chat(client, create_key(client)["key"], HELLO).status_code == 200


def test_a_request_larger_than_the_token_limit_is_refused_naming_max_tokens(client: Client) -> None:
    key = create_key(client, rate_limit_tpm=50)["key"]
    refused = chat(client, key, {**HELLO, "max_tokens": 200})
    assert refused.status_code == 429
    assert refused.json_body["error"]["param"] == "max_tokens"


def test_tokens_are_reserved_then_refunded_to_what_was_used(client: Client, workers: Any) -> None:
    # 4 requests reserving 1000 tokens each would not fit 2500/min, but they
    # use far fewer tokens, and the refunds make room.
    key = create_key(client, rate_limit_tpm=2500)["key"]
    codes = [chat(client, key, {**HELLO, "max_tokens": 990}).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 200]
    remaining = int(chat(client, key, {**HELLO, "max_tokens": 1}).headers["x-ratelimit-remaining-tokens"])
    assert remaining > 2000


def test_refunds_are_made_when_redis_has_forgotten_the_scripts(
    client: Client, workers: Any, services: Services
) -> None:
    # Redis restarted or its script cache was flushed before each request: the worker's settlement
    # meets NOSCRIPT and must still refund, or the fourth request would not fit the limit.
    key = create_key(client, rate_limit_tpm=2500)["key"]
    codes = []
    for _ in range(4):
        services.redis.script_flush()
        codes.append(chat(client, key, {**HELLO, "max_tokens": 990}).status_code)
    assert codes == [200, 200, 200, 200]
    remaining = int(chat(client, key, {**HELLO, "max_tokens": 1}).headers["x-ratelimit-remaining-tokens"])
    assert remaining > 2000


def test_one_failed_settlement_does_not_stop_the_others_being_redone(services: Services) -> None:
    # GIVEN a settle pipeline whose replies are: the script load, an error, a NOSCRIPT
    month = current_month()
    key_id = f"key_{uuid.uuid4().hex[:24]}"
    broken, unscripted = Settlement("key_other", month, 0, 5), Settlement(key_id, month, 0, 7)
    replies: list[object] = ["sha", redis.ResponseError("WRONGTYPE"), NoScriptError("NOSCRIPT")]
    # WHEN they are checked, THEN the NOSCRIPT one is redone, and only then is the error raised
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        services.rate_limiter.resettle_unscripted([broken, unscripted], replies)
    assert services.redis.get(f"quota:{key_id}:{month}") == b"7"


def test_a_settlement_whose_reply_is_lost_is_counted_once(services: Services) -> None:
    # GIVEN a Redis client with the product's retry policy, through a proxy, its connection open
    url = urlsplit(services.settings.redis_url)
    proxy = TcpProxy(url.port or 6379).open()
    database = int(url.path.strip("/") or 0)
    client = redis.Redis(port=proxy.port, db=database, socket_timeout=0.5, retry=REDIS_RETRY)
    client.ping()
    month, key_id = current_month(), f"key_{uuid.uuid4().hex[:24]}"
    try:
        # WHEN Redis runs a settlement of 7 tokens but its reply is lost
        proxy.lose_replies()
        RateLimiter(client).settle([Settlement(key_id, month, 0, 7)])
        # THEN the tokens count once towards the month's quota: a timed-out script is never re-sent
        # (redis-py's default policy re-sent it on a new connection and counted 14)
        assert services.redis.get(f"quota:{key_id}:{month}") == b"7"
    finally:
        proxy.cut()


def test_with_redis_away_nothing_is_reserved_so_the_worker_refunds_nothing(
    client: Client, services: Services
) -> None:
    # GIVEN the API's limiter cannot reach Redis (limits fail open)
    key = create_key(client, rate_limit_tpm=2500)["key"]
    unreachable = redis.Redis(port=1, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
    services.__dict__["rate_limiter"] = RateLimiter(unreachable)
    try:
        accepted = chat(client, key, {**HELLO, "max_tokens": 990}, asynchronous=True)
    finally:
        del services.__dict__["rate_limiter"]
    # THEN the request is served, and its job records no reservation for the worker to give back
    assert accepted.status_code == 202, accepted.body
    job = JobRecord.get(accepted.json_body["id"])
    assert job.reserved_tokens == 0 and job.reserved_month == current_month()


def test_monthly_quota_exhausted_is_insufficient_quota(client: Client, workers: Any) -> None:
    key = create_key(client, monthly_token_quota=10)["key"]
    assert chat(client, key, HELLO).status_code == 200  # uses more than 10 tokens
    refused = chat(client, key, HELLO)
    assert refused.status_code == 429
    assert refused.json_body["error"]["code"] == "insufficient_quota"
    assert refused.json_body["error"]["type"] == "insufficient_quota"
    streamed = chat(client, key, {**HELLO, "stream": True})
    assert streamed.status_code == 429


def test_model_outside_allowed_models_is_403(client: Client) -> None:
    key = create_key(client, allowed_models=["some-other-model"])["key"]
    refused = chat(client, key, HELLO)
    assert refused.status_code == 403
    assert refused.json_body["error"]["code"] == "model_not_allowed"


def test_an_expired_key_is_401_saying_it_expired(client: Client) -> None:
    created = create_key(client, expires_at="2020-01-01T00:00:00Z")
    refused = chat(client, created["key"], HELLO)
    assert refused.status_code == 401
    assert "expired" in refused.json_body["error"]["message"]


def test_revocation_and_new_limits_reach_another_instance_on_its_next_request(
    client: Client, services: Services
) -> None:
    # GIVEN two API instances (separate processes' worth of caches) that both
    # have the key cached
    created = create_key(client)
    header = f"Bearer {created['key']}"
    other_instance = Services(services.settings)
    assert admit(header, other_instance).api_key.rate_limit_rpm is None
    # WHEN the admin changes the key's limits through this instance
    patched = client.http.patch(
        f"/api/keys/{created['id']}",
        headers={**ADMIN, "Content-Type": "application/json"},
        body=json.dumps({"rate_limit_rpm": 7, "name": "renamed"}),
    )
    assert patched.status_code == 200 and patched.json_body["rate_limit_rpm"] == 7
    # THEN the other instance applies them on its very next request
    admission = admit(header, other_instance, requests=1)
    assert admission.api_key.rate_limit_rpm == 7
    assert admission.headers()["x-ratelimit-limit-requests"] == "7"
    # AND a revocation too, although its cache entry has not expired
    assert client.http.delete(f"/api/keys/{created['id']}", headers=ADMIN).status_code == 200
    with pytest.raises(InvalidApiKey, match="revoked"):
        admit(header, other_instance, requests=1)


def test_patch_validates_its_body(client: Client) -> None:
    created = create_key(client)
    bad = client.http.patch(
        f"/api/keys/{created['id']}",
        headers={**ADMIN, "Content-Type": "application/json"},
        body=json.dumps({"rate_limit_rpm": 0}),
    )
    assert bad.status_code == 400 and bad.json_body["error"]["param"] == "rate_limit_rpm"
    missing = client.http.patch(
        "/api/keys/key_nope",
        headers={**ADMIN, "Content-Type": "application/json"},
        body=json.dumps({"name": "x"}),
    )
    assert missing.status_code == 404


def test_a_key_reads_its_own_usage_and_only_its_own(client: Client, workers: Any) -> None:
    mine = create_key(client)["key"]
    other = create_key(client)
    for _ in range(2):
        assert chat(client, mine, HELLO).status_code == 200
    assert chat(client, other["key"], HELLO).status_code == 200
    # Asking for another key's id changes nothing: /v1/usage is always the caller's.
    usage = client.http.get(
        f"/v1/usage?hours=2&apiKeyId={other['id']}", headers={"Authorization": f"Bearer {mine}"}
    )
    assert usage.status_code == 200
    assert usage.json_body["totals"]["requests"] == 2
    assert "x-ratelimit-limit-requests" in usage.headers


def test_revoked_and_expired_keys_are_refused_for_streaming_and_async_too(client: Client) -> None:
    revoked = create_key(client)
    assert client.http.delete(f"/api/keys/{revoked['id']}", headers=ADMIN).status_code == 200
    expired = create_key(client, expires_at="2020-01-01T00:00:00Z")
    for key in (revoked["key"], expired["key"]):
        assert chat(client, key, {**HELLO, "stream": True}).status_code == 401
        assert chat(client, key, HELLO, asynchronous=True).status_code == 401
        assert client.http.get("/v1/usage", headers={"Authorization": f"Bearer {key}"}).status_code == 401


def test_a_request_refused_before_the_queue_gives_its_tokens_back(client: Client, workers: Any) -> None:
    key = create_key(client, rate_limit_tpm=1000)["key"]
    missing = chat(client, key, {**HELLO, "model": "no-such-model", "max_tokens": 900})
    assert missing.status_code == 404
    # Without the refund, 900 + 900 reserved tokens would not fit 1000 per minute.
    assert chat(client, key, {**HELLO, "max_tokens": 900}).status_code == 200
