"""The app behind an API Gateway HTTP API (infra/http_api.py): Lambda proxy events of payload format 1.0.

The events are built as AWS documents them for HTTP APIs (version "1.0": the REST proxy fields, lower-
case header names, `requestContext.resourcePath` the matched route's path, "$default" for the
catch-all route), and go to the real app, as API Gateway would invoke it.
"""

from __future__ import annotations

import json
from typing import Any

from chalice.local import LambdaContext

from infra.http_api import route_keys
from tests.functional.conftest import ADMIN, create_key


def http_api_event(
    method: str,
    path: str,
    route_path: str,
    headers: dict[str, str] | None = None,
    body: Any = None,
    query: dict[str, str] | None = None,
    path_parameters: dict[str, str] | None = None,
) -> dict[str, Any]:
    lowered = {name.lower(): value for name, value in (headers or {}).items()}
    resource_id = route_path if route_path == "$default" else f"{method} {route_path}"
    return {
        "version": "1.0",
        "resource": route_path,
        "path": path,
        "httpMethod": method,
        "headers": lowered,
        "multiValueHeaders": {name: [value] for name, value in lowered.items()},
        "queryStringParameters": query or None,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "api1234567",
            "domainName": "api1234567.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "api1234567",
            "extendedRequestId": "request-id",
            "httpMethod": method,
            "identity": {"sourceIp": "192.0.2.1", "userAgent": "OpenAI/Python"},
            "path": path,
            "protocol": "HTTP/1.1",
            "requestId": "id=",
            "requestTime": "27/Nov/2026:05:00:00 +0000",
            "requestTimeEpoch": 1795755600000,
            "resourceId": resource_id,
            "resourcePath": route_path,
            "stage": "$default",
        },
        "pathParameters": path_parameters,
        "stageVariables": None,
        "body": None if body is None else json.dumps(body),
        "isBase64Encoded": False,
    }


def invoke(app: Any, event: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
    response = app(event, LambdaContext("api_handler", 512, 30_000))
    body = json.loads(response["body"]) if response.get("body") else None
    return response["statusCode"], response["headers"], body


def test_chat_completion_models_and_a_job_through_the_http_api(app: Any, client: Any, workers: Any) -> None:
    key = create_key(client)["key"]
    auth = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    status, _, models = invoke(app, http_api_event("GET", "/v1/models", "/v1/models", auth))
    assert status == 200 and "gpt-3.5-turbo" in [m["id"] for m in models["data"]]
    request = {"model": "gpt-3.5-turbo", "messages": [{"role": "user", "content": "Hello"}]}
    status, headers, completion = invoke(
        app, http_api_event("POST", "/v1/chat/completions", "/v1/chat/completions", auth, request)
    )
    assert status == 200, completion
    assert completion["object"] == "chat.completion" and completion["choices"][0]["message"]["content"]
    assert headers["x-ratelimit-limit-requests"]
    job_id = completion["id"].removeprefix("chatcmpl-")
    job_path = f"/v1/jobs/{job_id}"
    event = http_api_event("GET", job_path, "/v1/jobs/{job_id}", auth, path_parameters={"job_id": job_id})
    status, _, job = invoke(app, event)
    assert status == 200 and job["id"] == job_id and job["status"] == "succeeded"


def test_admin_routes_and_query_strings_through_the_http_api(app: Any) -> None:
    status, _, keys = invoke(app, http_api_event("GET", "/api/keys", "/api/keys", ADMIN))
    assert status == 200 and keys["object"] == "list"
    status, _, error = invoke(
        app, http_api_event("GET", "/api/requests", "/api/requests", ADMIN, query={"limit": "0"})
    )
    assert status == 400 and error["error"]["param"] == "limit"
    status, _, error = invoke(app, http_api_event("GET", "/api/keys", "/api/keys"))
    assert status == 401 and error["error"]["type"] == "invalid_request_error"


def test_every_generated_route_reaches_its_handler(app: Any) -> None:
    # Unauthenticated, every route must be answered by our code (401 in OpenAI's shape, or a
    # public answer), never by Chalice's route table failing to match.
    for route_key in route_keys(app.routes):
        if route_key == "$default":
            continue
        method, route_path = route_key.split(" ", 1)
        parameters = {name.strip("{}"): "x" for name in route_path.split("/") if name.startswith("{")}
        path = route_path
        for name in parameters:
            path = path.replace("{" + name + "}", "x")
        status, _, body = invoke(
            app,
            http_api_event(
                method,
                path,
                route_path,
                {"Content-Type": "application/json"},
                {} if method in ("POST", "PATCH") else None,
                path_parameters=parameters or None,
            ),
        )
        assert status in (200, 401), (route_key, status, body)
        if status == 401:
            assert set(body["error"]) == {"message", "type", "param", "code"}, route_key


def test_urls_no_route_matches_are_an_openai_shaped_404(app: Any) -> None:
    for method, path, headers in (
        ("GET", "/v1/nothing-here", {}),
        ("POST", "/v2/chat/completions", {}),
        ("GET", "/api/unknown", ADMIN),
        ("GET", "/api/unknown", {}),
    ):
        status, _, body = invoke(app, http_api_event(method, path, "$default", headers))
        assert status == 404, (method, path, body)
        assert body["error"]["code"] == "unknown_url"
        assert f"{method} {path}" in body["error"]["message"]
