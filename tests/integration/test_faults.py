"""Faults against the running local stack: nothing is lost, nothing counted twice."""

from __future__ import annotations

import os
import signal
import uuid
from typing import Any

import httpx

from infra.local.launcher import RunningStack
from tests.waiting import wait_for


def test_killing_the_pollers_mid_batch_loses_no_job_and_counts_each_once(
    stack: RunningStack, admin: httpx.Client, new_key: dict[str, Any]
) -> None:
    # GIVEN a slow model, so that batches are in flight when the pollers die
    name = f"slow-{uuid.uuid4().hex[:6]}"
    admin.post("/api/deployments", json={"name": name, "config": {"per_token_ms": 15}})
    assert wait_for(lambda: admin.get(f"/api/deployments/{name}").json()["status"] == "running")
    auth = {"Authorization": f"Bearer {new_key['key']}"}
    body = {"model": name, "messages": [{"role": "user", "content": "count me once"}]}
    with httpx.Client(base_url=stack.base_url, headers=auth, timeout=30) as client:
        job_ids = [
            client.post("/chat/completions", json=body, headers={"X-GPUCloud-Async": "true"}).json()["id"]
            for _ in range(12)
        ]

        def statuses() -> list[str]:
            return [client.get(f"/jobs/{job_id}").json()["status"] for job_id in job_ids]

        # WHEN every poller is killed (SIGKILL) while jobs are running
        assert wait_for(lambda: "running" in statuses(), timeout=15)
        for pid in stack.state["child_pids"][1:]:  # type: ignore[index]
            os.kill(int(pid), signal.SIGKILL)
        # THEN new pollers pick the messages up after the visibility timeout, and
        # every job ends succeeded, metered exactly once
        assert wait_for(lambda: statuses() == ["succeeded"] * len(job_ids), timeout=60), statuses()
    key = admin.get(f"/api/keys/{new_key['id']}").json()
    assert key["request_count"] == len(job_ids)
    assert "poller-0 exited" in stack.log_path.read_text() or "poller-1 exited" in stack.log_path.read_text()
