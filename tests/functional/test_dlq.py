"""A job that keeps failing lands in the DLQ; after a fix, a redrive completes it once."""

from __future__ import annotations

import uuid
from typing import Any

from chalice.test import Client

from chalicelib.models import UsageCounterRecord
from tests.functional.conftest import ADMIN, chat, create_key
from tests.functional.test_deployments import create, settled
from tests.upstream_server import UpstreamServer
from tests.waiting import wait_for


def counters(key_id: str) -> tuple[int, int]:
    rows = [c for c in UsageCounterRecord.scan() if c.key_model.startswith(key_id + "#")]
    return sum(int(c.requests) for c in rows), sum(int(c.errors) for c in rows)


def test_dead_letter_is_listed_and_redriven_after_the_fix(client: Client, workers: Any) -> None:
    key = create_key(client)
    name = f"flaky-{uuid.uuid4().hex[:6]}"
    with UpstreamServer(mode="error") as upstream:
        create(
            client,
            {
                "name": name,
                "backend": "openai",
                "config": {"base_url": upstream.url, "model": "up-model", "max_retries": 0},
            },
        )
        assert settled(client, name)["status"] == "running"
        # GIVEN an async job the upstream keeps failing
        request = {"model": name, "messages": [{"role": "user", "content": "hi"}]}
        job_id = chat(client, key["key"], request, asynchronous=True).json_body["id"]
        job_url = f"/v1/jobs/{job_id}"
        auth = {"Authorization": f"Bearer {key['key']}"}

        def dead_letter() -> Any:
            listed = client.http.get("/api/dlq", headers=ADMIN).json_body["data"]
            return next((d for d in listed if d["job_id"] == job_id), None)

        # THEN it ends failed with the reason, counted once as an error, and lands in the DLQ
        letter = wait_for(dead_letter)
        assert letter is not None, "the job never reached the DLQ"
        assert letter["job_status"] == "failed" and "HTTP 500" in letter["error_message"]
        assert client.http.get(job_url, headers=auth).json_body["status"] == "failed"
        # In-process moto applies a transaction's items one at a time, so the job can read as ended
        # a moment before its counters do: wait for them (a double count would never settle at 1).
        assert wait_for(lambda: counters(key["id"]) == (1, 1)), counters(key["id"])
        # WHEN the upstream is fixed and the operator redrives the DLQ
        upstream.mode = "ok"
        redriven = client.http.post("/api/dlq/redrive", headers=ADMIN).json_body
        assert job_id in [r["job_id"] for r in redriven["data"]]
        # THEN the job completes, and is metered once, as a success
        done = wait_for(lambda: client.http.get(job_url, headers=auth).json_body["status"] == "succeeded")
        assert done
        assert wait_for(lambda: counters(key["id"]) == (1, 0)), counters(key["id"])
        totals = client.http.get(f"/api/keys/{key['id']}", headers=ADMIN).json_body
        assert totals["request_count"] == 1 and totals["prompt_tokens"] == 7
        assert dead_letter() is None
