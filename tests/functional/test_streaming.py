"""stream: true answers as server-sent events that add up to the same answer."""

from __future__ import annotations

import json
from typing import Any

from chalice.test import Client

from tests.functional.conftest import chat, create_key


def sse_events(body: bytes) -> list[Any]:
    text = body.decode()
    assert text.endswith("data: [DONE]\n\n")
    events = []
    for block in text.strip().split("\n\n"):
        assert block.startswith("data: ")
        payload = block[len("data: ") :]
        events.append(payload if payload == "[DONE]" else json.loads(payload))
    return events


def test_stream_chunks_add_up_to_the_non_streamed_answer(client: Client, workers: Any) -> None:
    key = create_key(client)["key"]
    request = {"model": "gpt-3.5-turbo", "messages": [{"role": "user", "content": "stream me"}], "seed": 11}
    plain = chat(client, key, request).json_body
    assert "choices" in plain, plain
    streamed = chat(client, key, {**request, "stream": True, "stream_options": {"include_usage": True}})
    assert streamed.status_code == 200
    assert streamed.headers["Content-Type"].startswith("text/event-stream")
    events = sse_events(streamed.body)
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == plain["choices"][0]["message"]["content"]
    finish = [
        c["choices"][0]["finish_reason"] for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]
    ]
    assert finish == ["stop"]
    # include_usage: one last chunk with no choices carries the usage; the others say null.
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"] == plain["usage"]
    assert all(c["usage"] is None for c in chunks[:-1])


def test_stream_without_include_usage_has_no_usage_field(client: Client, workers: Any) -> None:
    key = create_key(client)["key"]
    body = {
        "model": "gpt-3.5-turbo",
        "messages": [{"role": "user", "content": "x"}],
        "stream": True,
        "max_tokens": 2,
    }
    chunks = sse_events(chat(client, key, body).body)[:-1]
    assert all("usage" not in c for c in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"
    assert sum(1 for c in chunks if c["choices"][0]["delta"].get("content")) == 2
