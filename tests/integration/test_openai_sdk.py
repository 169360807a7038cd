"""The official openai SDK, unmodified, against the running local stack."""

from __future__ import annotations

import json
import socket
import time
from typing import Any
from urllib.parse import urlsplit

import boto3
import httpx
import openai
import pytest

from chalicelib.backends.simulated import FAILURE_TRIGGER
from infra.local.launcher import RunningStack
from tests.waiting import wait_for

MESSAGES: Any = [{"role": "user", "content": "Say something about queues."}]


def sdk(stack: RunningStack, key: str, **options: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=stack.base_url, api_key=key, **options)


def test_chat_completion_through_the_whole_stack(stack: RunningStack, new_key: dict[str, Any]) -> None:
    client = sdk(stack, new_key["key"])
    completion = client.chat.completions.create(model="gpt-3.5-turbo", messages=MESSAGES)
    assert completion.object == "chat.completion"
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].message.content
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert (
        completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens
    )
    again = client.chat.completions.create(model="gpt-3.5-turbo", messages=MESSAGES, seed=7)
    same = client.chat.completions.create(model="gpt-3.5-turbo", messages=MESSAGES, seed=7)
    assert again.choices[0].message.content == same.choices[0].message.content


def test_simulated_model_honours_max_tokens_n_and_stop(stack: RunningStack, new_key: dict[str, Any]) -> None:
    client = sdk(stack, new_key["key"])
    cut = client.chat.completions.create(model="gpt-3.5-turbo", messages=MESSAGES, max_tokens=3)
    assert cut.choices[0].finish_reason == "length"
    assert cut.usage is not None and cut.usage.completion_tokens == 3
    two = client.chat.completions.create(model="gpt-3.5-turbo", messages=MESSAGES, n=2, seed=1)
    assert [c.index for c in two.choices] == [0, 1]
    full = two.choices[0].message.content or ""
    stop_word = full.split()[3]
    stopped = client.chat.completions.create(
        model="gpt-3.5-turbo", messages=MESSAGES, seed=1, stop=[stop_word]
    )
    assert stop_word not in (stopped.choices[0].message.content or "")
    assert full.startswith(stopped.choices[0].message.content or "")


def test_models_list_shows_the_default_deployment(stack: RunningStack, new_key: dict[str, Any]) -> None:
    models = sdk(stack, new_key["key"]).models.list()
    assert "gpt-3.5-turbo" in [m.id for m in models.data]


def test_sdk_raises_its_own_error_classes(stack: RunningStack, new_key: dict[str, Any]) -> None:
    client = sdk(stack, new_key["key"], max_retries=0)
    with pytest.raises(openai.AuthenticationError) as auth:
        sdk(stack, "gpc_wrong", max_retries=0).chat.completions.create(
            model="gpt-3.5-turbo", messages=MESSAGES
        )
    assert auth.value.code == "invalid_api_key"
    with pytest.raises(openai.NotFoundError) as missing:
        client.chat.completions.create(model="no-such-model", messages=MESSAGES)
    assert missing.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(model="gpt-3.5-turbo", messages=MESSAGES, temperature=5)
    assert bad.value.param == "temperature"


def test_a_poisoned_job_fails_cleanly_and_lands_in_the_dlq(
    stack: RunningStack, new_key: dict[str, Any]
) -> None:
    client = sdk(stack, new_key["key"], max_retries=0)
    poison: Any = [{"role": "user", "content": f"{FAILURE_TRIGGER} {time.time()}"}]
    with pytest.raises(openai.InternalServerError) as failed:
        client.chat.completions.create(model="gpt-3.5-turbo", messages=poison)
    job_id = failed.value.response.headers["x-gpucloud-job-id"]
    assert "asked to fail" in failed.value.message
    # The message moves to the DLQ on its next receive after the last attempt.
    sqs = boto3.client("sqs", endpoint_url=str(stack.state["aws_endpoint_url"]), region_name="us-east-1")
    dlq = sqs.get_queue_url(QueueName="gpucloud-inference-jobs-dlq")["QueueUrl"]

    def taken_from_the_dlq() -> bool:
        messages = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        for message in messages.get("Messages", []):
            if job_id in message["Body"]:
                sqs.delete_message(QueueUrl=dlq, ReceiptHandle=message["ReceiptHandle"])
                return True
        return False

    assert wait_for(taken_from_the_dlq, timeout=20), f"job {job_id} never reached the DLQ"


def test_health_reports_every_dependency(stack: RunningStack) -> None:
    health = httpx.get(f"{stack.api_url}/health").json()
    assert health["status"] == "ok"
    assert set(health["checks"]) == {"sqs", "dynamodb", "redis", "postgres"}


def test_unknown_urls_are_404_in_openai_shape(stack: RunningStack) -> None:
    response = httpx.get(f"{stack.api_url}/v1/nothing-here")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "unknown_url"


def test_requests_the_http_front_refuses_are_in_openai_shape_too(stack: RunningStack) -> None:
    # An unknown method, and a malformed Content-Length, never reach the app: the front answers them.
    unknown_method = httpx.request("BREW", f"{stack.api_url}/v1/models")
    assert unknown_method.status_code == 501
    assert unknown_method.json()["error"]["type"] == "server_error"
    host, port = urlsplit(stack.api_url).netloc.split(":")
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        raw.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: many\r\n\r\n")
        answer = raw.makefile("rb").read().decode()
    head, _, body = answer.partition("\r\n\r\n")
    assert head.startswith("HTTP/1.1 400")
    assert json.loads(body)["error"]["message"] == "Content-Length must be a number of bytes."


def test_streaming_with_the_sdk_matches_the_plain_answer(
    stack: RunningStack, new_key: dict[str, Any]
) -> None:
    client = sdk(stack, new_key["key"])
    plain = client.chat.completions.create(model="gpt-3.5-turbo", messages=MESSAGES, seed=42)
    stream = client.chat.completions.create(
        model="gpt-3.5-turbo", messages=MESSAGES, seed=42, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == plain.choices[0].message.content
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None and plain.usage is not None
    assert chunks[-1].usage.total_tokens == plain.usage.total_tokens
    no_usage = list(
        client.chat.completions.create(model="gpt-3.5-turbo", messages=MESSAGES, seed=42, stream=True)
    )
    assert all(c.usage is None for c in no_usage)
    assert no_usage[-1].choices[0].finish_reason == "stop"


def test_embeddings_are_deterministic_unit_vectors(stack: RunningStack, new_key: dict[str, Any]) -> None:
    client = sdk(stack, new_key["key"])
    # The SDK asks for base64 by default and decodes it itself.
    first = client.embeddings.create(model="text-embedding-3-small", input=["queues", "keys"])
    again = client.embeddings.create(model="text-embedding-3-small", input="queues", encoding_format="float")
    assert [d.index for d in first.data] == [0, 1]
    vector = first.data[0].embedding
    assert len(vector) == 256
    assert abs(sum(v * v for v in vector) - 1.0) < 1e-4
    assert vector == pytest.approx(again.data[0].embedding, abs=1e-6)
    assert first.data[0].embedding != first.data[1].embedding
    assert first.usage.prompt_tokens == first.usage.total_tokens == 2
    small = client.embeddings.create(model="text-embedding-3-small", input="x", dimensions=8)
    assert len(small.data[0].embedding) == 8


def test_legacy_completions_plain_and_streamed(stack: RunningStack, new_key: dict[str, Any]) -> None:
    client = sdk(stack, new_key["key"])
    plain = client.completions.create(model="gpt-3.5-turbo", prompt="Once upon a time", seed=3, max_tokens=5)
    assert plain.object == "text_completion"
    assert plain.choices[0].finish_reason == "length"
    assert plain.usage is not None and plain.usage.completion_tokens == 5
    streamed = list(
        client.completions.create(
            model="gpt-3.5-turbo", prompt="Once upon a time", seed=3, max_tokens=5, stream=True
        )
    )
    assert "".join(c.choices[0].text for c in streamed) == plain.choices[0].text
    assert streamed[-1].choices[0].finish_reason == "length"
    two = client.completions.create(model="gpt-3.5-turbo", prompt=["a", "b"], n=2, max_tokens=3)
    assert sorted(c.index for c in two.choices) == [0, 1, 2, 3]


def test_json_mode_and_required_tools_through_the_sdk(stack: RunningStack, new_key: dict[str, Any]) -> None:
    client = sdk(stack, new_key["key"])
    as_json = client.chat.completions.create(
        model="gpt-3.5-turbo", messages=MESSAGES, response_format={"type": "json_object"}
    )
    assert isinstance(json.loads(as_json.choices[0].message.content or ""), dict)
    tools: Any = [
        {
            "type": "function",
            "function": {
                "name": "lookup_order",
                "parameters": {
                    "type": "object",
                    "properties": {"order_id": {"type": "integer", "minimum": 1}},
                    "required": ["order_id"],
                },
            },
        }
    ]
    called = client.chat.completions.create(
        model="gpt-3.5-turbo", messages=MESSAGES, tools=tools, tool_choice="required"
    )
    choice = called.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert call.type == "function"
    assert call.function.name == "lookup_order"
    assert json.loads(call.function.arguments)["order_id"] >= 1


def test_rate_limits_raise_the_sdks_rate_limit_error(stack: RunningStack, admin: Any) -> None:
    key = admin.post("/api/keys", json={"name": "tight", "rate_limit_rpm": 1}).json()["key"]
    client = sdk(stack, key, max_retries=0)
    client.models.list()  # a read reserves nothing
    client.chat.completions.create(model="gpt-3.5-turbo", messages=MESSAGES)
    with pytest.raises(openai.RateLimitError) as limited:
        client.chat.completions.create(model="gpt-3.5-turbo", messages=MESSAGES)
    assert limited.value.code == "rate_limit_exceeded"
    assert int(limited.value.response.headers["retry-after"]) >= 1


def test_a_deployment_can_use_another_gpu_cloud_as_its_upstream(
    stack: RunningStack, admin: Any, new_key: dict[str, Any]
) -> None:
    # GIVEN a deployment whose upstream is a real OpenAI-compatible server: this very stack
    upstream_key = admin.post("/api/keys", json={"name": "as-upstream"}).json()["key"]
    name = f"proxied-{time.time_ns()}"
    config = {"base_url": stack.base_url, "model": "gpt-3.5-turbo", "api_key": upstream_key}
    assert (
        admin.post("/api/deployments", json={"name": name, "backend": "openai", "config": config}).status_code
        == 201
    )
    assert wait_for(lambda: admin.get(f"/api/deployments/{name}").json()["status"] == "running")
    client = sdk(stack, new_key["key"])
    # WHEN a client asks it, plain and streamed
    direct = client.chat.completions.create(model="gpt-3.5-turbo", messages=MESSAGES, seed=21)
    proxied = client.chat.completions.create(model=name, messages=MESSAGES, seed=21)
    streamed = list(client.chat.completions.create(model=name, messages=MESSAGES, seed=21, stream=True))
    # THEN the upstream's answer and usage come back
    assert proxied.choices[0].message.content == direct.choices[0].message.content
    assert proxied.usage == direct.usage
    assert (
        "".join(c.choices[0].delta.content or "" for c in streamed if c.choices)
        == direct.choices[0].message.content
    )
