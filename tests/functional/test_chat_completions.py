"""The request path through the Chalice app: key, validation, queue, worker, answer."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from chalice.test import Client

from chalicelib.backends.simulated import FAILURE_TRIGGER
from chalicelib.models import ApiKeyRecord, JobRecord
from tests.functional.conftest import ADMIN, chat, create_key

HELLO = {"model": "gpt-3.5-turbo", "messages": [{"role": "user", "content": "Hello there"}]}


def assert_openai_error(
    response: Any, status: int, code: str | None = None, param: str | None = None
) -> dict[str, Any]:
    assert response.status_code == status, response.body
    error = response.json_body["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["message"]
    if code is not None:
        assert error["code"] == code
    if param is not None:
        assert error["param"] == param
    return error


def test_a_key_gets_a_chat_completion_from_the_simulated_model(client: Client, workers: Any) -> None:
    # GIVEN a new key
    key = create_key(client)["key"]
    # WHEN it asks for a completion
    response = chat(client, key, HELLO)
    # THEN the answer is an OpenAI chat.completion with consistent usage
    assert response.status_code == 200, response.body
    body = response.json_body
    assert body["object"] == "chat.completion"
    assert body["model"] == "gpt-3.5-turbo"
    choice = body["choices"][0]
    assert choice["message"]["role"] == "assistant"
    assert choice["message"]["content"]
    assert choice["finish_reason"] == "stop"
    usage = body["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 0


def test_usage_lands_on_the_key_once_per_request(client: Client, workers: Any) -> None:
    created = create_key(client)
    for _ in range(3):
        assert chat(client, created["key"], HELLO).status_code == 200
    listed = client.http.get(f"/api/keys/{created['id']}", headers=ADMIN).json_body
    assert listed["request_count"] == 3
    assert listed["completion_tokens"] > 0
    assert listed["last_used_at"] is not None


def test_missing_unknown_and_revoked_keys_are_401(client: Client, workers: Any) -> None:
    assert_openai_error(chat(client, None, HELLO), 401, "invalid_api_key")
    assert_openai_error(chat(client, "sk-not-ours", HELLO), 401, "invalid_api_key")
    unknown = create_key(client)["key"]
    # A well-formed key with a valid checksum that was never issued:
    from chalicelib.keys import generate_key

    assert_openai_error(chat(client, generate_key(), HELLO), 401, "invalid_api_key")
    created = create_key(client)
    assert chat(client, created["key"], HELLO).status_code == 200
    assert client.http.delete(f"/api/keys/{created['id']}", headers=ADMIN).status_code == 200
    error = assert_openai_error(chat(client, created["key"], HELLO), 401, "invalid_api_key")
    assert "revoked" in error["message"]
    assert chat(client, unknown, HELLO).status_code == 200


def test_a_typo_in_a_key_is_rejected_by_its_checksum(client: Client) -> None:
    key = create_key(client)["key"]
    typo = key[:-1] + ("A" if key[-1] != "A" else "B")
    error = assert_openai_error(chat(client, typo, HELLO), 401, "invalid_api_key")
    assert "typo" in error["message"]


def test_bad_bodies_are_400_naming_the_param(client: Client) -> None:
    key = create_key(client)["key"]
    assert_openai_error(chat(client, key, None, raw=b'{"model": '), 400)
    assert_openai_error(chat(client, key, {"model": "gpt-3.5-turbo"}), 400, param="messages")
    assert_openai_error(chat(client, key, {**HELLO, "temperature": 3}), 400, param="temperature")
    assert_openai_error(
        chat(client, key, {**HELLO, "messages": [{"role": "robot", "content": "x"}]}),
        400,
        param="messages[0].role",
    )
    too_many = assert_openai_error(chat(client, key, {**HELLO, "n": 99}), 400, param="n")
    assert too_many["message"] == "Invalid value for 'n': at most 8 is supported."
    assert_openai_error(chat(client, key, {**HELLO, "stop": ["a", "b", "c", "d", "e"]}), 400, param="stop")


def test_an_unknown_model_is_404_model_not_found(client: Client) -> None:
    key = create_key(client)["key"]
    error = assert_openai_error(
        chat(client, key, {**HELLO, "model": "gpt-9"}), 404, "model_not_found", "model"
    )
    assert "gpt-9" in error["message"]


def test_admin_endpoints_need_the_admin_token(client: Client) -> None:
    key = create_key(client)["key"]
    assert_openai_error(client.http.get("/api/keys"), 401)
    assert_openai_error(client.http.get("/api/keys", headers={"Authorization": "Bearer wrong"}), 401)
    # An API key is not an admin token.
    assert_openai_error(client.http.get("/api/keys", headers={"Authorization": f"Bearer {key}"}), 401)
    listed = client.http.get("/api/keys", headers=ADMIN).json_body
    assert all("key" not in item and "key_hash" not in item for item in listed["data"])


def test_the_full_key_is_shown_once_and_only_its_hash_is_stored(client: Client) -> None:
    created = create_key(client, name="shown-once")
    secret = created["key"]
    assert secret.startswith(created["prefix"])
    fetched = client.http.get(f"/api/keys/{created['id']}", headers=ADMIN)
    assert secret not in fetched.body.decode()
    stored = [r for r in ApiKeyRecord.scan() if r.id == created["id"]][0]
    assert secret not in json.dumps(stored.attribute_values, default=str)


def test_no_result_in_time_is_504_carrying_the_job_id(client: Client, services: Any) -> None:
    # GIVEN no worker is running and a short result timeout
    key = create_key(client)["key"]
    original = services.settings
    services.settings = replace(original, result_timeout_seconds=0.3)
    try:
        response = chat(client, key, HELLO)
    finally:
        services.settings = original
    # THEN the call ends with 504 and names the job so it can be fetched later
    error = assert_openai_error(response, 504, "timeout")
    job_id = response.headers["x-gpucloud-job-id"]
    assert job_id in error["message"]
    assert JobRecord.get(job_id).status == "queued"
    _drain_queue(services)


def _drain_queue(services: Any) -> None:
    sqs = services.sqs
    url = services.queue_url()
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return
        for message in messages:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def test_a_failing_model_gets_a_5xx_in_openai_shape_not_a_hang(client: Client, workers: Any) -> None:
    key = create_key(client)["key"]
    poison = {**HELLO, "messages": [{"role": "user", "content": f"please {FAILURE_TRIGGER}"}]}
    error = assert_openai_error(chat(client, key, poison), 500, "model_error")
    assert "fail" in error["message"]
