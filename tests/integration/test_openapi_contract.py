"""docs/openapi.yaml against the running stack: real requests, every endpoint, every
main error status, each answer (status, headers, content type, body) validated
against the operation's documented response, and the OpenAI-compatible ones
also against OpenAI's own published shapes.

The last section holds regression tests for the bugs these tests found.
"""

from __future__ import annotations

import base64
import json
import re
import struct
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import SchemaError
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from chalicelib.backends.simulated import FAILURE_TRIGGER
from infra.local.launcher import RunningStack
from tests.waiting import wait_for

SPEC_PATH = Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml"
SPEC_URI = "urn:gpucloud:openapi"
CHAT_MODEL = "gpt-3.5-turbo"
EMBEDDING_MODEL = "text-embedding-3-small"
MESSAGES = [{"role": "user", "content": "Say something about contracts."}]
HTTP_METHODS = {"get", "post", "put", "patch", "delete"}
RATE_LIMIT_HEADERS = (
    "x-ratelimit-limit-requests",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-reset-requests",
    "x-ratelimit-limit-tokens",
    "x-ratelimit-remaining-tokens",
    "x-ratelimit-reset-tokens",
)

# ---- formats ------------------------------------------------------------------------

_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
FORMATS = FormatChecker()


@FORMATS.checks("date-time", raises=ValueError)
def _is_date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if not _RFC3339.match(value):
        return False
    datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    return True


@FORMATS.checks("date", raises=ValueError)
def _is_date(value: object) -> bool:
    if not isinstance(value, str):
        return True
    date.fromisoformat(value)
    return len(value) == 10


@FORMATS.checks("uri")
def _is_uri(value: object) -> bool:
    return not isinstance(value, str) or re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:\S+$", value) is not None


# ---- the contract ---------------------------------------------------------------------


class Contract:
    """docs/openapi.yaml, with its schemas addressed by JSON pointer, and the checks of an answer."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        resource = DRAFT202012.create_resource(document)
        self.registry: Registry[Any] = Registry().with_resource(SPEC_URI, resource)

    def lookup(self, pointer: str) -> Any:
        node: Any = self.document
        for part in pointer.removeprefix("#/").split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            node = node[int(part)] if isinstance(node, list) else node[part]
        return node

    def follow(self, pointer: str) -> tuple[str, Any]:
        """The pointer and the node a chain of `$ref` objects ends at."""
        node = self.lookup(pointer)
        while isinstance(node, dict) and "$ref" in node:
            pointer = node["$ref"]
            node = self.lookup(pointer)
        return pointer, node

    def assert_valid(self, instance: Any, pointer: str, what: str) -> None:
        """`instance` against the schema at `pointer` of the document."""
        validator = Draft202012Validator(
            {"$ref": SPEC_URI + pointer}, registry=self.registry, format_checker=FORMATS
        )
        problems = [
            f"{'/'.join(str(p) for p in error.absolute_path) or '<root>'}: {error.message}"
            for error in sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
        ]
        assert not problems, f"{what} does not match {pointer}:\n" + "\n".join(problems[:20])

    @staticmethod
    def schema(name: str) -> str:
        return f"#/components/schemas/{name}"

    def check(self, response: httpx.Response, template: str, expected_status: int | None = None) -> Any:
        """Validate a real answer against the documented response of its operation; return the body."""
        method = response.request.method.lower()
        request_path = response.request.url.path
        pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$"
        assert re.match(pattern, request_path), f"{request_path} is not an instance of {template}"
        label = f"{method.upper()} {template}"
        status = str(response.status_code)
        if expected_status is not None:
            assert response.status_code == expected_status, f"{label}: {status} {response.text[:500]}"
        operation = pointer_to("paths", template, method)
        assert status in self.lookup(operation)["responses"], (
            f"{label} answered {status}, which the spec does not document: {response.text[:500]}"
        )
        at, documented = self.follow(pointer_to(operation, "responses", status))
        for name in documented.get("headers") or {}:
            header_at, header = self.follow(pointer_to(at, "headers", name))
            value = response.headers.get(name)
            if value is None:
                assert not header.get("required"), f"{label} {status}: header {name} is required"
                continue
            self.assert_valid(
                value, pointer_to(header_at, "schema"), f"{label} {status} header {name}={value!r}"
            )
        content = documented.get("content")
        if not content:
            assert not response.content, f"{label} {status} has no documented body: {response.text[:200]}"
            return None
        media_type = content_type_of(response)
        assert media_type is not None, f"{label} {status} has a body but no Content-Type"
        assert media_type in content, f"{label} {status}: {media_type} is not one of {sorted(content)}"
        schema_at = pointer_to(at, "content", media_type, "schema")
        if media_type == "text/event-stream":
            return self._check_event_stream(response.text, schema_at, f"{label} {status}")
        body = response.json()
        self.assert_valid(body, schema_at, f"{label} {status} body")
        return body

    def _check_event_stream(self, text: str, schema_at: str, what: str) -> list[Any]:
        """Each event against the event schema, and each `data` against its `contentSchema`."""
        event_at, event_schema = self.follow(schema_at)
        branches = event_schema["properties"]["data"].get("anyOf", [])
        data_at = [
            pointer_to(event_at, "properties", "data", "anyOf", str(n), "contentSchema")
            for n, branch in enumerate(branches)
            if "contentSchema" in branch
        ]
        assert len(data_at) == 1, f"{what}: the event schema names no contentSchema"
        chunks: list[Any] = []
        events = parse_sse(text)
        assert events, f"{what}: no events"
        for number, event in enumerate(events):
            self.assert_valid(event, schema_at, f"{what} event {number}")
            if event["data"] == "[DONE]":
                assert number == len(events) - 1, f"{what}: events after [DONE]"
                continue
            chunk = json.loads(event["data"])
            self.assert_valid(chunk, data_at[0], f"{what} event {number} data")
            chunks.append(chunk)
        assert events[-1]["data"] == "[DONE]", f"{what}: the stream does not end with [DONE]"
        return chunks


def pointer_to(base: str, *parts: str) -> str:
    """A JSON pointer (`#/...`) extended by `parts`, escaped."""
    escaped = [part.replace("~", "~0").replace("/", "~1") for part in parts]
    if not base.startswith("#"):
        return "#/" + "/".join([base.replace("~", "~0").replace("/", "~1"), *escaped])
    return "/".join([base, *escaped])


def content_type_of(response: httpx.Response) -> str | None:
    value = response.headers.get("content-type")
    return value.split(";")[0].strip().lower() if value else None


def parse_sse(text: str) -> list[dict[str, str]]:
    """Server-sent events as {"data": ..., "event": ...}, as the WHATWG parser reads them."""
    events: list[dict[str, str]] = []
    data: list[str] = []
    event_type = "message"
    for line in re.split(r"\r\n|\r|\n", text):
        if line == "":
            if data:
                events.append({"data": "\n".join(data), "event": event_type})
            data, event_type = [], "message"
            continue
        field, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if field == "data":
            data.append(value)
        elif field == "event":
            event_type = value
    if data:
        events.append({"data": "\n".join(data), "event": event_type})
    return events


# ---- OpenAI's published shapes (openai/openai-openapi, commit f85dbe2), trimmed ----------
# Transcribed here so the tests do not read files outside the repository: the required
# keys and types of each object GPU Cloud answers, independent of docs/openapi.yaml.


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


_USAGE = {
    "type": "object",
    "required": ["prompt_tokens", "completion_tokens", "total_tokens"],
    "properties": {k: {"type": "integer"} for k in ("prompt_tokens", "completion_tokens", "total_tokens")},
}
_FINISH = {"type": "string", "enum": ["stop", "length", "tool_calls", "content_filter", "function_call"]}
_TOOL_CALL = {
    "type": "object",
    "required": ["id", "type", "function"],
    "properties": {
        "id": {"type": "string"},
        "type": {"enum": ["function"]},
        "function": {
            "type": "object",
            "required": ["name", "arguments"],
            "properties": {"name": {"type": "string"}, "arguments": {"type": "string"}},
        },
    },
}
OPENAI: dict[str, dict[str, Any]] = {
    "ErrorResponse": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["type", "message", "param", "code"],
                "properties": {
                    "code": _nullable({"type": "string"}),
                    "message": {"type": "string"},
                    "param": _nullable({"type": "string"}),
                    "type": {"type": "string"},
                },
            }
        },
    },
    "CreateChatCompletionResponse": {
        "type": "object",
        "required": ["choices", "created", "id", "model", "object"],
        "properties": {
            "choices": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["finish_reason", "index", "message", "logprobs"],
                    "properties": {
                        "finish_reason": _FINISH,
                        "index": {"type": "integer"},
                        "logprobs": _nullable(
                            {
                                "type": "object",
                                "required": ["content", "refusal"],
                            }
                        ),
                        "message": {
                            "type": "object",
                            "required": ["role", "content", "refusal"],
                            "properties": {
                                "content": _nullable({"type": "string"}),
                                "refusal": _nullable({"type": "string"}),
                                "role": {"enum": ["assistant"]},
                                "tool_calls": {"type": "array", "items": _TOOL_CALL},
                            },
                        },
                    },
                },
            },
            "created": {"type": "integer"},
            "id": {"type": "string"},
            "model": {"type": "string"},
            "object": {"enum": ["chat.completion"]},
            "system_fingerprint": {"type": "string"},
            "usage": _USAGE,
        },
    },
    "CreateChatCompletionStreamResponse": {
        "type": "object",
        "required": ["choices", "created", "id", "model", "object"],
        "properties": {
            "choices": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["delta", "finish_reason", "index"],
                    "properties": {
                        "delta": {
                            "type": "object",
                            "properties": {
                                "content": _nullable({"type": "string"}),
                                "refusal": _nullable({"type": "string"}),
                                "role": {"enum": ["developer", "system", "user", "assistant", "tool"]},
                                "tool_calls": {
                                    "type": "array",
                                    "items": {"type": "object", "required": ["index"]},
                                },
                            },
                        },
                        "finish_reason": _nullable(_FINISH),
                        "index": {"type": "integer"},
                        "logprobs": _nullable({"type": "object", "required": ["content", "refusal"]}),
                    },
                },
            },
            "created": {"type": "integer"},
            "id": {"type": "string"},
            "model": {"type": "string"},
            "object": {"enum": ["chat.completion.chunk"]},
            "usage": _nullable(_USAGE),
        },
    },
    "CreateCompletionResponse": {
        "type": "object",
        "required": ["id", "object", "created", "model", "choices"],
        "properties": {
            "choices": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["finish_reason", "index", "logprobs", "text"],
                    "properties": {
                        "finish_reason": {"enum": ["stop", "length", "content_filter"]},
                        "index": {"type": "integer"},
                        "logprobs": _nullable({"type": "object"}),
                        "text": {"type": "string"},
                    },
                },
            },
            "created": {"type": "integer"},
            "id": {"type": "string"},
            "model": {"type": "string"},
            "object": {"enum": ["text_completion"]},
            "usage": _USAGE,
        },
    },
    "CreateEmbeddingResponse": {
        "type": "object",
        "required": ["object", "model", "data", "usage"],
        "properties": {
            "data": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["index", "object", "embedding"],
                    "properties": {
                        "embedding": {"type": "array", "items": {"type": "number"}},
                        "index": {"type": "integer"},
                        "object": {"enum": ["embedding"]},
                    },
                },
            },
            "model": {"type": "string"},
            "object": {"enum": ["list"]},
            "usage": {
                "type": "object",
                "required": ["prompt_tokens", "total_tokens"],
                "properties": {"prompt_tokens": {"type": "integer"}, "total_tokens": {"type": "integer"}},
            },
        },
    },
    "Model": {
        "type": "object",
        "required": ["id", "object", "created", "owned_by"],
        "properties": {
            "created": {"type": "integer"},
            "id": {"type": "string"},
            "object": {"enum": ["model"]},
            "owned_by": {"type": "string"},
        },
    },
}
OPENAI["ListModelsResponse"] = {
    "type": "object",
    "required": ["object", "data"],
    "properties": {"data": {"type": "array", "items": OPENAI["Model"]}, "object": {"enum": ["list"]}},
}


def assert_openai_shape(instance: Any, name: str) -> None:
    validator = Draft202012Validator(OPENAI[name])
    problems = [
        f"{'/'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message}"
        for e in validator.iter_errors(instance)
    ]
    assert not problems, f"not OpenAI's {name}:\n" + "\n".join(problems)


# ---- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def contract() -> Contract:
    document = yaml.safe_load(SPEC_PATH.read_text())
    assert document["openapi"].startswith("3.1"), "the contract is written for OpenAPI 3.1"
    return Contract(document)


@pytest.fixture(scope="module")
def api(stack: RunningStack, admin: httpx.Client) -> Iterator[httpx.Client]:
    """An httpx client with a fresh key of generous limits."""
    created = admin.post(
        "/api/keys", json={"name": "contract", "rate_limit_rpm": 100_000, "rate_limit_tpm": 100_000_000}
    )
    assert created.status_code == 201, created.text
    with httpx.Client(
        base_url=stack.api_url, headers={"Authorization": f"Bearer {created.json()['key']}"}, timeout=60
    ) as client:
        yield client


@pytest.fixture(scope="module")
def anonymous(stack: RunningStack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.api_url, timeout=60) as client:
        yield client


def key_client(stack: RunningStack, admin: httpx.Client, **fields: Any) -> httpx.Client:
    created = admin.post("/api/keys", json={"name": "contract", **fields})
    assert created.status_code == 201, created.text
    return httpx.Client(
        base_url=stack.api_url, headers={"Authorization": f"Bearer {created.json()['key']}"}, timeout=60
    )


def assert_rate_limit_headers(response: httpx.Response) -> None:
    missing = [name for name in RATE_LIMIT_HEADERS if name not in response.headers]
    assert not missing, f"{response.request.method} {response.request.url.path}: no {missing}"


def error_of(body: Any) -> dict[str, Any]:
    assert isinstance(body, dict) and isinstance(body.get("error"), dict), body
    error: dict[str, Any] = body["error"]
    return error


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


# ---- the spec itself ------------------------------------------------------------------------


def test_the_spec_is_valid_openapi_and_covers_every_route(contract: Contract) -> None:
    import schemathesis

    import app

    # The document against the OpenAPI 3.1 meta-schema, and each schema against JSON Schema 2020-12.
    schemathesis.openapi.from_dict(contract.document).validate()
    for name, schema in contract.document["components"]["schemas"].items():
        try:
            Draft202012Validator.check_schema(schema)
        except SchemaError as error:
            pytest.fail(f"components/schemas/{name} is not a valid JSON Schema: {error.message}")
    served = {
        (method.lower(), path)
        for path, methods in app.app.routes.items()
        for method in methods
        if path.startswith(("/v1/", "/api/", "/health")) and method.lower() in HTTP_METHODS
    }
    documented = {
        (method, path)
        for path, item in contract.document["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }
    assert served == documented, f"served, undocumented: {served - documented}; gone: {documented - served}"
    for path, item in contract.document["paths"].items():
        for method in set(item) - {"parameters"}:
            for status in item[method]["responses"]:
                if not status.startswith(("4", "5")):
                    continue
                at, response = contract.follow(pointer_to("paths", path, method, "responses", status))
                schema = response["content"]["application/json"]["schema"]
                # Every error body is OpenAI's error shape (health's 503 adds its checks to it).
                assert "#/components/schemas/ErrorResponse" in json.dumps(
                    [schema, contract.follow(pointer_to(at, "content", "application/json", "schema"))[1]]
                ), (method, path, status)


# ---- /health ----------------------------------------------------------------------------------


def test_health(contract: Contract, anonymous: httpx.Client) -> None:
    body = contract.check(anonymous.get("/health"), "/health", 200)
    assert body["status"] == "ok"


# ---- /v1/models -------------------------------------------------------------------------------


def test_models_list_and_retrieve(contract: Contract, api: httpx.Client) -> None:
    listed = api.get("/v1/models")
    body = contract.check(listed, "/v1/models", 200)
    assert_openai_shape(body, "ListModelsResponse")
    assert_rate_limit_headers(listed)
    assert CHAT_MODEL in [m["id"] for m in body["data"]]
    one = api.get(f"/v1/models/{CHAT_MODEL}")
    model = contract.check(one, "/v1/models/{model_id}", 200)
    assert_openai_shape(model, "Model")
    assert model["id"] == CHAT_MODEL
    missing = api.get("/v1/models/no-such-model")
    error = error_of(contract.check(missing, "/v1/models/{model_id}", 404))
    assert error["code"] == "model_not_found"
    assert_openai_shape(missing.json(), "ErrorResponse")


# ---- /v1/chat/completions ---------------------------------------------------------------------


def test_chat_completion_json_matches_spec_and_openai(contract: Contract, api: httpx.Client) -> None:
    response = api.post(
        "/v1/chat/completions", json={"model": CHAT_MODEL, "messages": MESSAGES, "n": 2, "max_tokens": 5}
    )
    body = contract.check(response, "/v1/chat/completions", 200)
    assert content_type_of(response) == "application/json"
    assert_openai_shape(body, "CreateChatCompletionResponse")
    assert_rate_limit_headers(response)
    assert [c["index"] for c in body["choices"]] == [0, 1]
    for choice in body["choices"]:
        # OpenAI requires these keys, null allowed: clients index them without .get().
        assert "refusal" in choice["message"] and "logprobs" in choice
    usage = body["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_chat_completion_with_required_tool(contract: Contract, api: httpx.Client) -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "lookup",
                "parameters": {"type": "object", "properties": {"id": {"type": "integer"}}},
            },
        }
    ]
    response = api.post(
        "/v1/chat/completions",
        json={"model": CHAT_MODEL, "messages": MESSAGES, "tools": tools, "tool_choice": "required"},
    )
    body = contract.check(response, "/v1/chat/completions", 200)
    assert_openai_shape(body, "CreateChatCompletionResponse")
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["tool_calls"][0]["function"]["name"] == "lookup"


def test_chat_completion_stream(contract: Contract, api: httpx.Client) -> None:
    response = api.post(
        "/v1/chat/completions",
        json={
            "model": CHAT_MODEL,
            "messages": MESSAGES,
            "max_tokens": 4,
            "stream": True,
            "stream_options": {"include_usage": True},
        },
    )
    assert content_type_of(response) == "text/event-stream"
    chunks = contract.check(response, "/v1/chat/completions", 200)
    assert_rate_limit_headers(response)
    for chunk in chunks:
        assert_openai_shape(chunk, "CreateChatCompletionStreamResponse")
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert all(c["usage"] is None for c in chunks[:-1])
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 4
    assert chunks[-2]["choices"][0]["finish_reason"] == "length"


def test_async_chat_completion_is_a_job(contract: Contract, api: httpx.Client) -> None:
    accepted = api.post(
        "/v1/chat/completions",
        json={"model": CHAT_MODEL, "messages": MESSAGES, "max_tokens": 3},
        headers={"X-GPUCloud-Async": "true"},
    )
    job = contract.check(accepted, "/v1/chat/completions", 202)
    assert accepted.headers["location"] == f"/v1/jobs/{job['id']}"
    assert_rate_limit_headers(accepted)
    # Whatever state it has reached by now, the job reads and cancels as documented.
    read = contract.check(api.get(accepted.headers["location"]), "/v1/jobs/{job_id}", 200)
    assert read["id"] == job["id"] and read["kind"] == "chat.completion"
    cancel = api.delete(accepted.headers["location"])
    assert cancel.status_code in (200, 409), cancel.text
    ended = contract.check(cancel, "/v1/jobs/{job_id}")
    if cancel.status_code == 200:
        assert ended["status"] == "cancelled" and ended["error"]["code"] == "cancelled"
        assert ended["usage"] == {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}


def test_a_finished_job_reads_with_its_result_and_cannot_be_cancelled(
    contract: Contract, api: httpx.Client
) -> None:
    completion = contract.check(
        api.post("/v1/chat/completions", json={"model": CHAT_MODEL, "messages": MESSAGES, "max_tokens": 2}),
        "/v1/chat/completions",
        200,
    )
    job_id = completion["id"].removeprefix("chatcmpl-")
    job = contract.check(api.get(f"/v1/jobs/{job_id}"), "/v1/jobs/{job_id}", 200)
    assert job["status"] == "succeeded" and job["result"] == completion
    assert job["usage"] == completion["usage"]
    error = error_of(contract.check(api.delete(f"/v1/jobs/{job_id}"), "/v1/jobs/{job_id}", 409))
    assert error["code"] == "conflict"
    missing = error_of(contract.check(api.get("/v1/jobs/no-such-job"), "/v1/jobs/{job_id}", 404))
    assert missing["code"] == "job_not_found"
    gone = error_of(contract.check(api.delete("/v1/jobs/no-such-job"), "/v1/jobs/{job_id}", 404))
    assert gone["code"] == "job_not_found"


def test_another_keys_job_is_not_found(
    contract: Contract, stack: RunningStack, admin: httpx.Client, api: httpx.Client
) -> None:
    completion = api.post(
        "/v1/chat/completions", json={"model": CHAT_MODEL, "messages": MESSAGES, "max_tokens": 1}
    ).json()
    with key_client(stack, admin) as other:
        response = other.get(f"/v1/jobs/{completion['id'].removeprefix('chatcmpl-')}")
        assert error_of(contract.check(response, "/v1/jobs/{job_id}", 404))["code"] == "job_not_found"


def test_a_failing_model_is_500_with_the_job_id(contract: Contract, api: httpx.Client) -> None:
    poison = [{"role": "user", "content": f"{FAILURE_TRIGGER} {uuid.uuid4().hex}"}]
    response = api.post("/v1/chat/completions", json={"model": CHAT_MODEL, "messages": poison})
    error = error_of(contract.check(response, "/v1/chat/completions", 500))
    assert_openai_shape(response.json(), "ErrorResponse")
    assert error["type"] == "server_error"
    job_id = response.headers["x-gpucloud-job-id"]
    assert job_id in error["message"]
    job = contract.check(api.get(f"/v1/jobs/{job_id}"), "/v1/jobs/{job_id}", 200)
    assert job["status"] == "failed" and job["error"]["code"] == error["code"]


# ---- /v1/completions and /v1/embeddings -----------------------------------------------------------


def test_text_completion_json_and_stream(contract: Contract, api: httpx.Client) -> None:
    request = {"model": CHAT_MODEL, "prompt": ["Once", "Twice"], "n": 2, "max_tokens": 3, "seed": 1}
    body = contract.check(api.post("/v1/completions", json=request), "/v1/completions", 200)
    assert_openai_shape(body, "CreateCompletionResponse")
    assert sorted(c["index"] for c in body["choices"]) == [0, 1, 2, 3]
    streamed = api.post("/v1/completions", json={**request, "stream": True})
    chunks = contract.check(streamed, "/v1/completions", 200)
    assert content_type_of(streamed) == "text/event-stream"
    texts: dict[int, str] = {}
    for chunk in chunks:
        for choice in chunk["choices"]:
            texts[choice["index"]] = texts.get(choice["index"], "") + choice["text"]
    assert texts == {c["index"]: c["text"] for c in body["choices"]}
    accepted = api.post("/v1/completions", json=request, headers={"X-GPUCloud-Async": "1"})
    assert contract.check(accepted, "/v1/completions", 202)["kind"] == "text_completion"


def test_embeddings_float_and_base64(contract: Contract, api: httpx.Client) -> None:
    request = {"model": EMBEDDING_MODEL, "input": ["queues", "keys"], "dimensions": 8}
    floats = contract.check(api.post("/v1/embeddings", json=request), "/v1/embeddings", 200)
    assert_openai_shape(floats, "CreateEmbeddingResponse")
    assert [d["index"] for d in floats["data"]] == [0, 1]
    packed = contract.check(
        api.post("/v1/embeddings", json={**request, "encoding_format": "base64"}), "/v1/embeddings", 200
    )
    decoded = struct.unpack("<8f", base64.b64decode(packed["data"][0]["embedding"]))
    assert decoded == pytest.approx(floats["data"][0]["embedding"], abs=1e-6)
    accepted = api.post("/v1/embeddings", json=request, headers={"X-GPUCloud-Async": "yes"})
    assert contract.check(accepted, "/v1/embeddings", 202)["kind"] == "embedding"


# ---- 400 --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "body", "param"),
    [
        (
            "/v1/chat/completions",
            {"model": CHAT_MODEL, "messages": MESSAGES, "temperature": 5},
            "temperature",
        ),
        ("/v1/chat/completions", {"model": CHAT_MODEL, "messages": MESSAGES, "n": 9}, "n"),
        (
            "/v1/chat/completions",
            {"model": CHAT_MODEL, "messages": MESSAGES, "max_tokens": 4097},
            "max_tokens",
        ),
        ("/v1/chat/completions", {"model": CHAT_MODEL, "messages": []}, "messages"),
        ("/v1/chat/completions", {"model": CHAT_MODEL}, "messages"),
        ("/v1/chat/completions", {"model": CHAT_MODEL, "messages": [{"role": "robot"}]}, "messages[0].role"),
        ("/v1/chat/completions", {"model": CHAT_MODEL, "messages": MESSAGES, "logprobs": True}, "logprobs"),
        ("/v1/chat/completions", {"model": CHAT_MODEL, "messages": MESSAGES, "stop": list("abcde")}, "stop"),
        (
            "/v1/chat/completions",
            {"model": CHAT_MODEL, "messages": MESSAGES, "tool_choice": "required"},
            "tool_choice",
        ),
        ("/v1/completions", {"model": CHAT_MODEL, "prompt": "x", "echo": True}, "echo"),
        ("/v1/embeddings", {"model": EMBEDDING_MODEL, "input": "x", "dimensions": 257}, "dimensions"),
        ("/v1/embeddings", {"model": EMBEDDING_MODEL, "input": ["a", ""]}, "input"),
    ],
)
def test_invalid_inference_requests_are_400_naming_the_param(
    contract: Contract, api: httpx.Client, template: str, body: dict[str, Any], param: str
) -> None:
    response = api.post(template, json=body)
    error = error_of(contract.check(response, template, 400))
    assert_openai_shape(response.json(), "ErrorResponse")
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param, error


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b""])
def test_unreadable_bodies_are_400(contract: Contract, api: httpx.Client, raw: bytes) -> None:
    response = api.post("/v1/chat/completions", content=raw, headers={"Content-Type": "application/json"})
    assert error_of(contract.check(response, "/v1/chat/completions", 400))["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    ("method", "template", "path", "body", "param"),
    [
        ("POST", "/api/keys", "/api/keys", {"name": "x", "colour": "red"}, "colour"),
        ("POST", "/api/keys", "/api/keys", {}, "name"),
        ("POST", "/api/keys", "/api/keys", {"name": "x", "rate_limit_rpm": 0}, "rate_limit_rpm"),
        ("POST", "/api/keys", "/api/keys", {"name": "a\nb"}, "name"),
        ("POST", "/api/deployments", "/api/deployments", {"name": "-bad"}, "name"),
        ("POST", "/api/deployments", "/api/deployments", {"name": "ok", "extra": 1}, "extra"),
        (
            "POST",
            "/api/deployments",
            "/api/deployments",
            {"name": "ok", "config": {"ttft_ms": -1}},
            "config.ttft_ms",
        ),
        ("PATCH", "/api/deployments/{name}", f"/api/deployments/{CHAT_MODEL}", {}, "config"),
        ("PATCH", "/api/deployments/{name}", f"/api/deployments/{CHAT_MODEL}", {"status": "x"}, "status"),
        ("POST", "/api/rollups", "/api/rollups", {}, "day"),
        ("POST", "/api/rollups", "/api/rollups", {"day": "2020-01-01", "from": "2020-01-01"}, "day"),
        ("POST", "/api/rollups", "/api/rollups", {"day": "2999-01-01"}, "day"),
        ("POST", "/api/rollups", "/api/rollups", {"day": "yesterday"}, "day"),
    ],
)
def test_invalid_admin_requests_are_400_naming_the_param(
    contract: Contract,
    admin: httpx.Client,
    method: str,
    template: str,
    path: str,
    body: dict[str, Any],
    param: str,
) -> None:
    response = admin.request(method, path, json=body)
    error = error_of(contract.check(response, template, 400))
    assert error["param"] == param, error


@pytest.mark.parametrize(
    ("template", "query", "param"),
    [
        ("/api/metrics", {"hours": "0"}, "hours"),
        ("/api/metrics", {"hours": "abc"}, "hours"),
        ("/api/metrics", {"granularity": "week"}, "granularity"),
        ("/api/metrics", {"from": "2026-02-30"}, "from"),
        ("/api/metrics/summary", {"hours": "9000"}, "hours"),
        ("/api/requests", {"status": "done"}, "status"),
        ("/api/requests", {"limit": "201"}, "limit"),
        ("/api/requests", {"cursor": "garbage"}, "cursor"),
    ],
)
def test_invalid_usage_queries_are_400(
    contract: Contract, admin: httpx.Client, template: str, query: dict[str, str], param: str
) -> None:
    error = error_of(contract.check(admin.get(template, params=query), template, 400))
    assert error["param"] == param, error


# ---- 401 / 403 --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization", [None, "Bearer", "Basic abc", "Bearer gpc_wrong", "Bearer gpc_" + "A" * 36]
)
def test_bad_api_keys_are_401(contract: Contract, anonymous: httpx.Client, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    for method, template, path, body in (
        ("POST", "/v1/chat/completions", "/v1/chat/completions", {"model": CHAT_MODEL, "messages": MESSAGES}),
        ("GET", "/v1/models", "/v1/models", None),
        ("GET", "/v1/jobs/{job_id}", "/v1/jobs/x", None),
    ):
        response = anonymous.request(method, path, json=body, headers=headers)
        error = error_of(contract.check(response, template, 401))
        assert_openai_shape(response.json(), "ErrorResponse")
        assert error["code"] == "invalid_api_key"


def test_a_revoked_key_is_401_at_once(contract: Contract, stack: RunningStack, admin: httpx.Client) -> None:
    created = admin.post("/api/keys", json={"name": "contract revoked"}).json()
    with httpx.Client(
        base_url=stack.api_url, headers={"Authorization": f"Bearer {created['key']}"}
    ) as client:
        assert client.get("/v1/models").status_code == 200
        revoked = contract.check(admin.delete(f"/api/keys/{created['id']}"), "/api/keys/{key_id}", 200)
        assert revoked["status"] == "revoked"
        error = error_of(contract.check(client.get("/v1/models"), "/v1/models", 401))
        assert error["code"] == "invalid_api_key"


@pytest.mark.parametrize("authorization", [None, "Bearer nope", "Basic dGVzdA==", "Bearer"])
def test_admin_api_without_the_admin_token_is_401(
    contract: Contract, anonymous: httpx.Client, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    for method, template in (
        ("GET", "/api/keys"),
        ("POST", "/api/keys"),
        ("GET", "/api/deployments"),
        ("GET", "/api/metrics"),
        ("GET", "/api/metrics/summary"),
        ("GET", "/api/requests"),
        ("POST", "/api/rollups"),
    ):
        response = anonymous.request(method, template, json={} if method == "POST" else None, headers=headers)
        assert error_of(contract.check(response, template, 401))["code"] == "invalid_admin_token"


def test_a_model_outside_allowed_models_is_403(
    contract: Contract, stack: RunningStack, admin: httpx.Client
) -> None:
    with key_client(stack, admin, allowed_models=[EMBEDDING_MODEL]) as client:
        response = client.post("/v1/chat/completions", json={"model": CHAT_MODEL, "messages": MESSAGES})
        error = error_of(contract.check(response, "/v1/chat/completions", 403))
        assert error["code"] == "model_not_allowed" and error["param"] == "model"
        assert_rate_limit_headers(response)
        models = contract.check(client.get("/v1/models"), "/v1/models", 200)
        assert [m["id"] for m in models["data"]] == [EMBEDDING_MODEL]


# ---- 404 / 405 / 409 / 413 / 415 ---------------------------------------------------------------------


def test_unknown_objects_are_404(contract: Contract, admin: httpx.Client, api: httpx.Client) -> None:
    response = api.post("/v1/chat/completions", json={"model": "no-such-model", "messages": MESSAGES})
    error = error_of(contract.check(response, "/v1/chat/completions", 404))
    assert (error["code"], error["param"]) == ("model_not_found", "model")
    assert_rate_limit_headers(response)
    embedding = api.post("/v1/embeddings", json={"model": "no-such-model", "input": "x"})
    assert error_of(contract.check(embedding, "/v1/embeddings", 404))["code"] == "model_not_found"
    for method in ("GET", "PATCH", "DELETE"):
        key = admin.request(
            method, "/api/keys/key_000000000000000000000000", json={} if method == "PATCH" else None
        )
        assert error_of(contract.check(key, "/api/keys/{key_id}", 404))["code"] == "key_not_found"
        body = {"status": "stopped"} if method == "PATCH" else None
        deployment = admin.request(method, "/api/deployments/no-such-deployment", json=body)
        assert error_of(contract.check(deployment, "/api/deployments/{name}", 404))["code"] == (
            "deployment_not_found"
        )


@pytest.mark.parametrize("path", ["/v1/nothing", "/api/nothing", "/v2/chat/completions", "/"])
def test_unknown_urls_are_404_unknown_url(contract: Contract, admin: httpx.Client, path: str) -> None:
    response = admin.get(path)
    assert response.status_code == 404
    assert content_type_of(response) == "application/json"
    contract.assert_valid(response.json(), contract.schema("ErrorResponse"), f"GET {path} 404")
    assert_openai_shape(response.json(), "ErrorResponse")
    assert error_of(response.json())["code"] == "unknown_url"


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("GET", "/v1/chat/completions", {"POST"}),
        ("PUT", "/v1/chat/completions", {"POST"}),
        ("DELETE", "/v1/models", {"GET"}),
        ("POST", "/v1/jobs/x", {"GET", "DELETE"}),
        ("GET", "/api/rollups", {"POST"}),
        ("PUT", "/api/keys/key_x", {"GET", "PATCH", "DELETE"}),
        ("POST", "/health", {"GET"}),
    ],
)
def test_unsupported_methods_are_405_with_allow(
    contract: Contract, admin: httpx.Client, method: str, path: str, allowed: set[str]
) -> None:
    response = admin.request(method, path)
    assert response.status_code == 405, response.text
    assert content_type_of(response) == "application/json"
    contract.assert_valid(response.json(), contract.schema("ErrorResponse"), f"{method} {path} 405")
    assert error_of(response.json())["code"] == "method_not_allowed"
    assert {m.strip() for m in response.headers["allow"].split(",")} == allowed


def test_a_duplicate_deployment_is_409(contract: Contract, admin: httpx.Client) -> None:
    response = admin.post("/api/deployments", json={"name": CHAT_MODEL})
    error = error_of(contract.check(response, "/api/deployments", 409))
    assert (error["code"], error["param"]) == ("conflict", "name")


@pytest.mark.parametrize(
    ("method", "template", "path"),
    [
        ("POST", "/v1/chat/completions", "/v1/chat/completions"),
        ("POST", "/v1/embeddings", "/v1/embeddings"),
        ("POST", "/api/keys", "/api/keys"),
        ("PATCH", "/api/deployments/{name}", f"/api/deployments/{CHAT_MODEL}"),
        ("POST", "/api/rollups", "/api/rollups"),
    ],
)
def test_bodies_over_the_limit_are_413(
    contract: Contract, api: httpx.Client, admin: httpx.Client, method: str, template: str, path: str
) -> None:
    client = api if template.startswith("/v1/") else admin
    big = json.dumps({"model": CHAT_MODEL, "padding": "x" * (1 << 20)}).encode()
    response = client.request(method, path, content=big, headers={"Content-Type": "application/json"})
    assert error_of(contract.check(response, template, 413))["code"] == "request_too_large"


@pytest.mark.parametrize(
    ("method", "template", "path"),
    [
        ("POST", "/v1/chat/completions", "/v1/chat/completions"),
        ("POST", "/v1/completions", "/v1/completions"),
        ("POST", "/api/keys", "/api/keys"),
        ("PATCH", "/api/keys/{key_id}", "/api/keys/key_x"),
        ("POST", "/api/deployments", "/api/deployments"),
    ],
)
def test_bodies_that_are_not_json_are_415(
    contract: Contract, api: httpx.Client, admin: httpx.Client, method: str, template: str, path: str
) -> None:
    client = api if template.startswith("/v1/") else admin
    response = client.request(method, path, content=b"name=x", headers={"Content-Type": "text/plain"})
    assert error_of(contract.check(response, template, 415))["code"] == "unsupported_media_type"


# ---- 429 --------------------------------------------------------------------------------------


def test_rate_limited_requests_are_429_with_retry_after(
    contract: Contract, stack: RunningStack, admin: httpx.Client
) -> None:
    with key_client(stack, admin, rate_limit_rpm=1) as client:
        request = {"model": EMBEDDING_MODEL, "input": "x"}
        contract.check(client.post("/v1/embeddings", json=request), "/v1/embeddings", 200)
        refused = client.post("/v1/embeddings", json=request)
        error = error_of(contract.check(refused, "/v1/embeddings", 429))
        assert_openai_shape(refused.json(), "ErrorResponse")
        assert (error["type"], error["code"]) == ("requests", "rate_limit_exceeded")
        assert_rate_limit_headers(refused)
        assert refused.headers["x-ratelimit-remaining-requests"] == "0"
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert 0 < int(refused.headers["retry-after-ms"]) <= 60_000


def test_a_request_larger_than_the_tokens_per_minute_is_429(
    contract: Contract, stack: RunningStack, admin: httpx.Client
) -> None:
    with key_client(stack, admin, rate_limit_tpm=10) as client:
        response = client.post(
            "/v1/chat/completions", json={"model": CHAT_MODEL, "messages": MESSAGES, "max_tokens": 100}
        )
        error = error_of(contract.check(response, "/v1/chat/completions", 429))
        assert (error["code"], error["param"]) == ("rate_limit_exceeded", "max_tokens")


def test_an_exhausted_monthly_quota_is_429_insufficient_quota(
    contract: Contract, stack: RunningStack, admin: httpx.Client
) -> None:
    with key_client(stack, admin, monthly_token_quota=0) as client:
        response = client.post("/v1/chat/completions", json={"model": CHAT_MODEL, "messages": MESSAGES})
        error = error_of(contract.check(response, "/v1/chat/completions", 429))
        assert (error["type"], error["code"]) == ("insufficient_quota", "insufficient_quota")


# ---- 503: a stopped deployment ----------------------------------------------------------------------


def test_deployment_lifecycle_and_a_stopped_model_is_503(
    contract: Contract, admin: httpx.Client, api: httpx.Client
) -> None:
    name = unique("contract-sim")
    created = contract.check(
        admin.post("/api/deployments", json={"name": name, "config": {"ttft_ms": 1}}), "/api/deployments", 201
    )
    assert (created["status"], created["config"]["ttft_ms"]) == ("provisioning", 1)
    listed = contract.check(admin.get("/api/deployments"), "/api/deployments", 200)
    assert name in [d["name"] for d in listed["data"]]
    contract.check(admin.get(f"/api/deployments/{name}"), "/api/deployments/{name}", 200)
    changed = contract.check(
        admin.patch(f"/api/deployments/{name}", json={"config": {"per_token_ms": 0}}),
        "/api/deployments/{name}",
        200,
    )
    assert changed["status"] == "provisioning"
    stopped = contract.check(
        admin.patch(f"/api/deployments/{name}", json={"status": "stopped"}), "/api/deployments/{name}", 200
    )
    assert stopped["status"] == "stopped" and stopped["status_reason"]
    refused = api.post("/v1/chat/completions", json={"model": name, "messages": MESSAGES})
    error = error_of(contract.check(refused, "/v1/chat/completions", 503))
    assert error["code"] == "model_not_running"
    assert_rate_limit_headers(refused)
    assert name not in [m["id"] for m in api.get("/v1/models").json()["data"]]
    retrieve = api.get(f"/v1/models/{name}")
    assert error_of(contract.check(retrieve, "/v1/models/{model_id}", 503))["code"] == "model_not_running"
    deleted = contract.check(admin.delete(f"/api/deployments/{name}"), "/api/deployments/{name}", 200)
    assert deleted == {"id": name, "object": "deployment", "deleted": True}
    contract.check(admin.get(f"/api/deployments/{name}"), "/api/deployments/{name}", 404)


def test_an_upstream_deployment_never_shows_its_api_key(contract: Contract, admin: httpx.Client) -> None:
    name = unique("contract-upstream")
    # Port 9 (discard) on loopback: provisioning fails without leaving this machine.
    config = {"base_url": "http://127.0.0.1:9/v1", "model": "m", "api_key": "sk-secret", "max_retries": 0}
    created = admin.post("/api/deployments", json={"name": name, "backend": "openai", "config": config})
    body = contract.check(created, "/api/deployments", 201)
    assert body["config"]["api_key_set"] is True and "sk-secret" not in created.text
    read = admin.get(f"/api/deployments/{name}")
    contract.check(read, "/api/deployments/{name}", 200)
    assert "sk-secret" not in read.text
    contract.check(admin.delete(f"/api/deployments/{name}"), "/api/deployments/{name}", 200)


# ---- keys -------------------------------------------------------------------------------------------


def test_key_lifecycle(contract: Contract, admin: httpx.Client) -> None:
    expires = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    created = contract.check(
        admin.post(
            "/api/keys",
            json={
                "name": "  contract lifecycle  ",
                "expires_at": expires,
                "rate_limit_rpm": 10,
                "monthly_token_quota": 1000,
                "allowed_models": [CHAT_MODEL],
            },
        ),
        "/api/keys",
        201,
    )
    assert created["name"] == "contract lifecycle" and created["key"].startswith(created["prefix"])
    key_id = created["id"]
    listed = contract.check(admin.get("/api/keys"), "/api/keys", 200)
    assert key_id in [k["id"] for k in listed["data"]]
    assert all("key" not in listed_key for listed_key in listed["data"]), "a listing shows a secret"
    one = contract.check(admin.get(f"/api/keys/{key_id}"), "/api/keys/{key_id}", 200)
    assert one == {k: v for k, v in created.items() if k != "key"}
    changed = contract.check(
        admin.patch(f"/api/keys/{key_id}", json={"rate_limit_rpm": None, "name": "renamed"}),
        "/api/keys/{key_id}",
        200,
    )
    assert (changed["rate_limit_rpm"], changed["name"]) == (None, "renamed")
    cleared = admin.patch(f"/api/keys/{key_id}", json={"name": None})
    assert error_of(contract.check(cleared, "/api/keys/{key_id}", 400))["param"] == "name"
    revoked = contract.check(admin.delete(f"/api/keys/{key_id}"), "/api/keys/{key_id}", 200)
    assert revoked["status"] == "revoked"


# ---- usage --------------------------------------------------------------------------------------------


def test_usage_metrics_summary_and_request_log(
    contract: Contract, admin: httpx.Client, api: httpx.Client
) -> None:
    contract.check(
        api.post("/v1/chat/completions", json={"model": CHAT_MODEL, "messages": MESSAGES, "max_tokens": 2}),
        "/v1/chat/completions",
        200,
    )
    series = contract.check(admin.get("/api/metrics"), "/api/metrics", 200)
    assert series["granularity"] == "hour" and len(series["series"]) == 24
    assert series["totals"]["requests"] >= 1
    today = datetime.now(UTC).date()
    daily = contract.check(
        admin.get(
            "/api/metrics",
            params={
                "from": (today - timedelta(days=2)).isoformat(),
                "to": today.isoformat(),
                "granularity": "day",
            },
        ),
        "/api/metrics",
        200,
    )
    assert [p["ts"][:10] for p in daily["series"]] == [
        (today - timedelta(days=n)).isoformat() for n in (2, 1, 0)
    ]
    summary = contract.check(
        admin.get("/api/metrics/summary", params={"hours": 2}), "/api/metrics/summary", 200
    )
    assert summary["totals"]["requests"] == sum(k["requests"] for k in summary["by_key"])
    page = contract.check(admin.get("/api/requests", params={"limit": 1}), "/api/requests", 200)
    assert len(page["data"]) == 1 and page["next_cursor"]
    following = contract.check(
        admin.get("/api/requests", params={"limit": 1, "cursor": page["next_cursor"]}), "/api/requests", 200
    )
    assert following["data"] and following["data"][0]["id"] != page["data"][0]["id"]
    filtered = contract.check(
        admin.get("/api/requests", params={"status": "succeeded", "model": CHAT_MODEL, "limit": 5}),
        "/api/requests",
        200,
    )
    assert filtered["data"], "this session's chat completions are not in the log"
    assert all(r["status"] == "succeeded" and r["model"] == CHAT_MODEL for r in filtered["data"])


def test_rollup_of_a_past_day(contract: Contract, admin: httpx.Client) -> None:
    day = (datetime.now(UTC).date() - timedelta(days=400)).isoformat()
    result = contract.check(admin.post("/api/rollups", json={"day": day}), "/api/rollups", 200)
    assert [d["day"] for d in result["days"]] == [day]
    ranged = contract.check(admin.post("/api/rollups", json={"from": day, "to": day}), "/api/rollups", 200)
    assert ranged["days"][0]["requests"] == result["days"][0]["requests"]


# ---- dead letters ------------------------------------------------------------------------------------


def test_dead_letter_listing_and_redrive(contract: Contract, admin: httpx.Client, api: httpx.Client) -> None:
    # GIVEN a job the model always fails on, which ends in the DLQ
    poison = [{"role": "user", "content": f"{FAILURE_TRIGGER} {uuid.uuid4()}"}]
    request = {"model": CHAT_MODEL, "messages": poison}
    accepted = api.post("/v1/chat/completions", json=request, headers={"X-GPUCloud-Async": "1"})
    job_id = accepted.json()["id"]

    def listed_with_it() -> dict[str, Any] | None:
        listed: dict[str, Any] = contract.check(admin.get("/api/dlq"), "/api/dlq", 200)
        return listed if any(letter["job_id"] == job_id for letter in listed["data"]) else None

    listed = wait_for(listed_with_it, timeout=30)
    assert listed, f"job {job_id} never reached the DLQ"
    assert all(letter["receive_count"] >= 1 for letter in listed["data"])
    # WHEN the DLQ is redriven, THEN the answer lists that job among the ones sent back
    redriven = contract.check(admin.post("/api/dlq/redrive"), "/api/dlq/redrive", 200)
    assert job_id in [letter["job_id"] for letter in redriven["data"]]
    assert redriven["redriven"] == len(redriven["data"])


# ---- known product bugs found by the contract tests, fixed, kept as regression tests ----------------


def test_json_answers_say_they_are_json(
    admin: httpx.Client, api: httpx.Client, anonymous: httpx.Client
) -> None:
    responses = [
        anonymous.get("/health"),
        api.get("/v1/models"),
        api.post("/v1/embeddings", json={"model": EMBEDDING_MODEL, "input": "x"}),
        api.post("/v1/chat/completions", json={"model": CHAT_MODEL, "messages": MESSAGES, "temperature": 5}),
        anonymous.get("/v1/models"),
        admin.get("/api/keys"),
    ]
    missing = [
        f"{r.request.method} {r.request.url.path} {r.status_code}"
        for r in responses
        if not content_type_of(r)
    ]
    assert not missing, f"no Content-Type: {missing}"


@pytest.mark.parametrize("expires_at", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_an_out_of_range_expiry_is_400(contract: Contract, admin: httpx.Client, expires_at: str) -> None:
    response = admin.post("/api/keys", json={"name": "contract", "expires_at": expires_at})
    assert error_of(contract.check(response, "/api/keys", 400))["param"] == "expires_at"


def test_a_blank_key_name_is_400(contract: Contract, admin: httpx.Client) -> None:
    response = admin.post("/api/keys", json={"name": "   "})
    assert error_of(contract.check(response, "/api/keys", 400))["param"] == "name"


def test_a_key_too_large_to_store_is_400(contract: Contract, admin: httpx.Client) -> None:
    response = admin.post("/api/keys", json={"name": "big", "allowed_models": ["m" * 5000] * 30})
    assert error_of(contract.check(response, "/api/keys", 400))["param"].startswith("allowed_models")


def test_a_malformed_tool_schema_is_400(contract: Contract, api: httpx.Client) -> None:
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "array", "items": 1}}}]
    response = api.post(
        "/v1/chat/completions",
        json={"model": CHAT_MODEL, "messages": MESSAGES, "tools": tools, "tool_choice": "required"},
    )
    assert error_of(contract.check(response, "/v1/chat/completions", 400))["param"].startswith("tools[0]")


def test_percent_encoded_path_parameters_are_decoded(contract: Contract, api: httpx.Client) -> None:
    response = api.get("/v1/models/gpt%2D3.5-turbo")
    assert contract.check(response, "/v1/models/{model_id}", 200)["id"] == CHAT_MODEL


@pytest.mark.parametrize("template", ["/v1/chat/completions", "/api/keys"])
def test_a_deeply_nested_body_is_400(
    contract: Contract, api: httpx.Client, admin: httpx.Client, template: str
) -> None:
    client = api if template.startswith("/v1/") else admin
    nested = b"[" * 50_000 + b"]" * 50_000  # deep, yet under MAX_BODY_BYTES
    response = client.post(template, content=nested, headers={"Content-Type": "application/json"})
    contract.check(response, template, 400)


def test_an_empty_stop_string_is_ignored(contract: Contract, api: httpx.Client) -> None:
    request = {"model": CHAT_MODEL, "messages": MESSAGES, "seed": 5}
    plain = contract.check(api.post("/v1/chat/completions", json=request), "/v1/chat/completions", 200)
    stopped = contract.check(
        api.post("/v1/chat/completions", json={**request, "stop": ""}), "/v1/chat/completions", 200
    )
    assert stopped["choices"][0]["message"]["content"] == plain["choices"][0]["message"]["content"]


def test_a_model_outside_allowed_models_cannot_be_retrieved(
    contract: Contract, stack: RunningStack, admin: httpx.Client
) -> None:
    with key_client(stack, admin, allowed_models=[EMBEDDING_MODEL]) as client:
        response = client.get(f"/v1/models/{CHAT_MODEL}")
        contract.check(response, "/v1/models/{model_id}")
        assert response.status_code in (403, 404)


def test_a_refused_request_does_not_count_in_the_remaining_headers(
    contract: Contract, stack: RunningStack, admin: httpx.Client
) -> None:
    with key_client(stack, admin, rate_limit_rpm=2, monthly_token_quota=0) as client:
        refused = client.post("/v1/embeddings", json={"model": EMBEDDING_MODEL, "input": "x"})
        assert error_of(contract.check(refused, "/v1/embeddings", 429))["code"] == "insufficient_quota"
        after = client.get("/v1/models")
        contract.check(after, "/v1/models", 200)
        assert after.headers["x-ratelimit-remaining-requests"] == "2"
        assert refused.headers["x-ratelimit-remaining-requests"] == "2"


def test_a_body_too_large_for_a_job_is_413(contract: Contract, api: httpx.Client) -> None:
    request = {"model": CHAT_MODEL, "max_tokens": 1, "messages": [{"role": "user", "content": "x" * 500_000}]}
    response = api.post("/v1/chat/completions", json=request)
    assert error_of(contract.check(response, "/v1/chat/completions", 413))["code"] == "request_too_large"
