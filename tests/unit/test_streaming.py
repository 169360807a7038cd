"""The Redis stream of deltas, against the real Redis of the test run."""

from __future__ import annotations

import os
import uuid

import redis

from chalicelib.streaming import DeltaWriter, read_deltas, sse_body, stream_key


def test_a_retry_replaces_the_deltas_of_the_failed_attempt() -> None:
    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    job_id = uuid.uuid4().hex
    first = DeltaWriter(client, job_id, attempt=1)
    first(0, "Half")
    first.flush()  # the attempt dies here
    second = DeltaWriter(client, job_id, attempt=2)
    for piece in ["Whole", " answer", "."] * 10:
        second(0, piece)
    second.flush()
    assert read_deltas(client, job_id) == {0: ["Whole", " answer", "."] * 10}
    assert 0 < client.ttl(stream_key(job_id)) <= 300
    client.delete(stream_key(job_id))


def test_sse_body_falls_back_to_the_stored_answer_when_deltas_disagree() -> None:
    completion = {
        "id": "chatcmpl-1",
        "created": 1,
        "model": "m",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "Hi there."}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 3, "total_tokens": 4},
    }
    body = sse_body(completion, {0: ["Bye"]}, include_usage=False)
    assert '"content":"Hi"' in body and '"content":" there"' in body and "Bye" not in body
