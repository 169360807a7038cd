"""Deployments: provisioned through the queue, served only while running."""

from __future__ import annotations

import json
import uuid
from typing import Any

from chalice.test import Client

from tests.functional.conftest import ADMIN, chat, create_key
from tests.upstream_server import UPSTREAM_TEXT, UpstreamServer
from tests.waiting import wait_for

JSON = {**ADMIN, "Content-Type": "application/json"}


def create(client: Client, body: dict[str, Any]) -> Any:
    return client.http.post("/api/deployments", headers=JSON, body=json.dumps(body))


def settled(client: Client, name: str, timeout: float = 15) -> dict[str, Any]:
    """Read the deployment until provisioning is over (or the deadline passes)."""

    def read() -> dict[str, Any]:
        view: dict[str, Any] = client.http.get(f"/api/deployments/{name}", headers=ADMIN).json_body
        return view

    wait_for(lambda: read()["status"] != "provisioning", timeout=timeout, interval=0.05)
    return read()


def chat_with(client: Client, key: str, model: str, **extra: Any) -> Any:
    return chat(client, key, {"model": model, "messages": [{"role": "user", "content": "hi"}], **extra})


def test_simulated_deployment_lifecycle(client: Client, workers: Any) -> None:
    name = f"sim-{uuid.uuid4().hex[:8]}"
    key = create_key(client)["key"]
    created = create(client, {"name": name, "backend": "simulated", "config": {"ttft_ms": 1}})
    assert created.status_code == 201, created.body
    assert created.json_body["status"] == "provisioning"
    assert settled(client, name)["status"] == "running"
    assert chat_with(client, key, name).status_code == 200
    models = client.http.get("/v1/models", headers={"Authorization": f"Bearer {key}"}).json_body
    assert name in [m["id"] for m in models["data"]]
    # Stopped: a clear 503, and gone from /v1/models.
    stopped = client.http.patch(
        f"/api/deployments/{name}", headers=JSON, body=json.dumps({"status": "stopped"})
    )
    assert stopped.json_body["status"] == "stopped"
    refused = chat_with(client, key, name)
    assert refused.status_code == 503
    assert "stopped" in refused.json_body["error"]["message"]
    # Started again: provisioned again, then serving.
    client.http.patch(f"/api/deployments/{name}", headers=JSON, body=json.dumps({"status": "running"}))
    assert settled(client, name)["status"] == "running"
    assert chat_with(client, key, name).status_code == 200
    assert client.http.delete(f"/api/deployments/{name}", headers=ADMIN).status_code == 200
    assert chat_with(client, key, name).status_code == 404


def test_deployment_input_is_validated(client: Client) -> None:
    assert create(client, {"name": "bad name!"}).json_body["error"]["param"] == "name"
    bad_config = create(client, {"name": "x1", "backend": "simulated", "config": {"ttft_ms": -1}})
    assert bad_config.status_code == 400 and bad_config.json_body["error"]["param"] == "config.ttft_ms"
    assert bad_config.json_body["error"]["message"].startswith("Invalid value for 'config.ttft_ms': ")
    no_url = create(client, {"name": "x2", "backend": "openai", "config": {"model": "m"}})
    assert no_url.status_code == 400 and no_url.json_body["error"]["param"] == "config.base_url"
    assert no_url.json_body["error"]["message"] == "Missing required parameter: 'config.base_url'."
    duplicate = create(client, {"name": "gpt-3.5-turbo"})
    assert duplicate.status_code == 409


def test_upstream_backend_serves_meters_and_hides_its_key(client: Client, workers: Any) -> None:
    name = f"up-{uuid.uuid4().hex[:8]}"
    key = create_key(client)
    with UpstreamServer() as upstream:
        created = create(
            client,
            {
                "name": name,
                "backend": "openai",
                "config": {"base_url": upstream.url, "model": "up-model", "api_key": upstream.api_key},
            },
        )
        assert created.status_code == 201
        view = settled(client, name)
        assert view["status"] == "running", view
        assert view["config"]["api_key_set"] is True
        assert upstream.api_key not in json.dumps(view)
        assert upstream.api_key not in client.http.get("/api/deployments", headers=ADMIN).body.decode()
        answer = chat_with(client, key["key"], name)
        assert answer.status_code == 200
        assert answer.json_body["choices"][0]["message"]["content"] == UPSTREAM_TEXT
        # The upstream's own usage is what gets metered.
        assert answer.json_body["usage"] == {"prompt_tokens": 7, "completion_tokens": 4, "total_tokens": 11}
        streamed = chat_with(client, key["key"], name, stream=True)
        text = "".join(
            json.loads(line[6:])["choices"][0]["delta"].get("content", "")
            for line in streamed.body.decode().split("\n\n")
            if line.startswith("data: {") and json.loads(line[6:])["choices"]
        )
        assert text == UPSTREAM_TEXT
        assert set(upstream.seen_auth) == {f"Bearer {upstream.api_key}"}
    totals = client.http.get(f"/api/keys/{key['id']}", headers=ADMIN).json_body
    assert totals["prompt_tokens"] == 14 and totals["completion_tokens"] == 8


def test_an_upstream_that_is_down_fails_provisioning_with_the_reason(client: Client, workers: Any) -> None:
    name = f"down-{uuid.uuid4().hex[:8]}"
    with UpstreamServer(mode="down") as upstream:
        create(
            client, {"name": name, "backend": "openai", "config": {"base_url": upstream.url, "model": "m"}}
        )
        view = settled(client, name)
    assert view["status"] == "failed"
    assert "500" in view["status_reason"]


def test_an_upstream_500_or_timeout_becomes_a_clear_model_error(client: Client, workers: Any) -> None:
    key = create_key(client)["key"]
    for mode in ("error", "hang"):
        name = f"{mode}-{uuid.uuid4().hex[:8]}"
        with UpstreamServer(mode=mode) as upstream:
            config = {"base_url": upstream.url, "model": "up-model", "timeout_s": 0.3, "max_retries": 1}
            create(client, {"name": name, "backend": "openai", "config": config})
            assert settled(client, name)["status"] == "running"
            answer = chat_with(client, key, name)
            assert answer.status_code == 500, answer.body
            error = answer.json_body["error"]
            assert error["code"] == "model_error"
            assert (
                ("HTTP 500" in error["message"])
                if mode == "error"
                else ("did not answer" in error["message"])
            )
            # Retried with backoff before giving up (max_retries=1 → 2 calls per attempt).
            assert upstream.chat_calls >= 2
