"""No secret reaches a log line, an error or a response after its creation."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import openai
import pytest

from chalicelib.backends.simulated import FAILURE_TRIGGER
from infra.local.launcher import RunningStack


def test_keys_admin_token_and_upstream_secrets_stay_out_of_logs_and_answers(
    stack: RunningStack, admin: httpx.Client, new_key: dict[str, Any]
) -> None:
    key = new_key["key"]
    upstream_secret = f"upstream-{uuid.uuid4().hex}"
    client = openai.OpenAI(base_url=stack.base_url, api_key=key, max_retries=0)
    answers: list[str] = []
    # Exercise every path a key travels: success, stream, async, model failure, bad input.
    answers.append(
        client.chat.completions.create(
            model="gpt-3.5-turbo", messages=[{"role": "user", "content": "hi"}]
        ).model_dump_json()
    )
    answers.extend(
        c.model_dump_json()
        for c in client.chat.completions.create(
            model="gpt-3.5-turbo", messages=[{"role": "user", "content": "hi"}], stream=True
        )
    )
    accepted = httpx.post(
        f"{stack.base_url}/chat/completions",
        headers={"Authorization": f"Bearer {key}", "X-GPUCloud-Async": "true"},
        json={"model": "gpt-3.5-turbo", "messages": [{"role": "user", "content": "hi"}]},
    )
    answers.append(accepted.text)
    with pytest.raises(openai.InternalServerError) as failed:
        client.chat.completions.create(
            model="gpt-3.5-turbo", messages=[{"role": "user", "content": FAILURE_TRIGGER}]
        )
    answers.append(str(failed.value.body))
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(
            model="gpt-3.5-turbo", messages=[{"role": "user", "content": "hi"}], n=100
        )
    answers.append(str(bad.value.body))
    answers.append(admin.get("/api/keys").text)
    answers.append(admin.get(f"/api/keys/{new_key['id']}").text)
    deployment = admin.post(
        "/api/deployments",
        json={
            "name": f"leak-{uuid.uuid4().hex[:6]}",
            "backend": "openai",
            "config": {"base_url": "http://127.0.0.1:1/v1", "model": "m", "api_key": upstream_secret},
        },
    )
    answers.append(deployment.text)
    answers.append(admin.get("/api/deployments").text)
    answers.append(admin.delete(f"/api/deployments/{deployment.json()['name']}").text)

    for answer in answers:
        assert key not in answer
        assert stack.admin_token not in answer
        assert upstream_secret not in answer
    log = stack.log_path.read_text()
    assert key not in log
    assert upstream_secret not in log
    # The admin token is printed once, in the start-up banner `make run` shows its operator.
    assert [line for line in log.splitlines() if stack.admin_token in line] == [
        line for line in log.splitlines() if line.startswith("Admin token:")
    ]
