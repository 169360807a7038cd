"""`stream: true`: the worker writes deltas to a Redis stream as the model
produces them; the API assembles them into one server-sent-events body.

Python Lambdas behind API Gateway cannot stream a response, so the body is
delivered whole; it is still valid SSE for every client. Each attempt of a
job starts its part of the stream with a `start` entry, so deltas of a failed
attempt are never mixed into the answer. If the stream is gone (Redis was
restarted) or disagrees with the stored result, the chunks are rebuilt from
the result itself, which DynamoDB holds: the body always equals the answer.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

import redis

from chalicelib.responses import SYSTEM_FINGERPRINT
from chalicelib.tokens import split_pieces

STREAM_TTL_SECONDS = 300
CHAT_CHUNK = "chat.completion.chunk"
TEXT_CHUNK = "text_completion"
# Deltas are written in pipelined groups: one Redis round trip per group.
FLUSH_EVERY_PIECES = 16


def stream_key(job_id: str) -> str:
    return f"job:{job_id}:stream"


class DeltaWriter:
    """Buffers a job's deltas and XADDs them to its stream in groups."""

    def __init__(self, client: redis.Redis, job_id: str, attempt: int) -> None:
        self._client = client
        self._key = stream_key(job_id)
        self._buffer: list[dict[str, str]] = [{"start": str(attempt)}]
        self.broken = False

    def __call__(self, index: int, piece: str) -> None:
        self._buffer.append({"i": str(index), "d": piece})
        if len(self._buffer) >= FLUSH_EVERY_PIECES:
            self.flush()

    def flush(self) -> None:
        if not self._buffer or self.broken:
            self._buffer.clear()
            return
        try:
            pipe = self._client.pipeline(transaction=False)
            for fields in self._buffer:
                pipe.xadd(self._key, fields)  # type: ignore[arg-type]
            pipe.expire(self._key, STREAM_TTL_SECONDS)
            pipe.execute()
        except redis.RedisError:
            # Streaming is a view of the answer; the answer itself is in
            # DynamoDB, and the API rebuilds the chunks from it.
            self.broken = True
        self._buffer.clear()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def read_deltas(client: redis.Redis, job_id: str) -> dict[int, list[str]]:
    """The deltas of the job's last attempt, per choice index."""
    entries = client.xrange(stream_key(job_id)) or []
    deltas: dict[int, list[str]] = defaultdict(list)
    for _entry_id, fields in entries:
        decoded = {_text(k): _text(v) for k, v in (fields or {}).items()}
        if "start" in decoded:
            deltas = defaultdict(list)
        elif "i" in decoded:
            deltas[int(decoded["i"])].append(decoded.get("d", ""))
    return deltas


def _chunk(
    completion: dict[str, Any], choices: list[dict[str, Any]], include_usage: bool, object_type: str
) -> dict[str, Any]:
    chunk: dict[str, Any] = {
        "id": completion["id"],
        "object": object_type,
        "created": completion["created"],
        "model": completion["model"],
        "choices": choices,
    }
    if object_type == CHAT_CHUNK:
        chunk["system_fingerprint"] = completion.get("system_fingerprint", SYSTEM_FINGERPRINT)
    if include_usage:
        chunk["usage"] = None
    return chunk


def _pieces(text: str, index: int, deltas: dict[int, list[str]] | None) -> list[str]:
    """The streamed pieces if they add up to the stored answer, else the answer cut anew."""
    pieces = (deltas or {}).get(index)
    if pieces is None or "".join(pieces) != text:
        return split_pieces(text)
    return pieces


def _sse(
    events: list[dict[str, Any]], completion: dict[str, Any], include_usage: bool, object_type: str
) -> str:
    if include_usage:
        final = _chunk(completion, [], False, object_type)
        final["usage"] = completion["usage"]
        events.append(final)
    lines = [f"data: {json.dumps(event, separators=(',', ':'))}\n\n" for event in events]
    lines.append("data: [DONE]\n\n")
    return "".join(lines)


def sse_body(completion: dict[str, Any], deltas: dict[int, list[str]] | None, include_usage: bool) -> str:
    """The SSE body of a finished chat completion."""

    def chunk(index: int, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        choice = {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return _chunk(completion, [choice], include_usage, CHAT_CHUNK)

    events: list[dict[str, Any]] = []
    for choice in completion["choices"]:
        index = choice["index"]
        message = choice["message"]
        events.append(chunk(index, {"role": "assistant", "content": ""}))
        if message.get("tool_calls"):
            calls = [{"index": n, **call} for n, call in enumerate(message["tool_calls"])]
            events.append(chunk(index, {"tool_calls": calls}))
        for piece in _pieces(message.get("content") or "", index, deltas):
            events.append(chunk(index, {"content": piece}))
        events.append(chunk(index, {}, choice["finish_reason"]))
    return _sse(events, completion, include_usage, CHAT_CHUNK)


def text_sse_body(
    completion: dict[str, Any], deltas: dict[int, list[str]] | None, include_usage: bool
) -> str:
    """The SSE body of a finished legacy text completion."""

    def chunk(index: int, text: str, finish_reason: str | None = None) -> dict[str, Any]:
        choice = {"text": text, "index": index, "logprobs": None, "finish_reason": finish_reason}
        return _chunk(completion, [choice], include_usage, TEXT_CHUNK)

    events: list[dict[str, Any]] = []
    for choice in completion["choices"]:
        index = choice["index"]
        events.extend(chunk(index, piece) for piece in _pieces(choice["text"], index, deltas))
        events.append(chunk(index, "", choice["finish_reason"]))
    return _sse(events, completion, include_usage, TEXT_CHUNK)
