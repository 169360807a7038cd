"""Functional tests: the Chalice app through chalice.test.Client, AWS in moto.

The tables and queues are created by deploying infra/template.json to moto's
in-process CloudFormation, the same definitions AWS gets. Jobs are worked by
infra/local's SQS event-source poller, in a thread, invoking the real worker.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from chalice.test import Client
from moto import mock_aws

from infra.local import emulator, moto_server
from infra.local.poller import EventSourcePoller

ADMIN = {"Authorization": "Bearer test-admin-token"}


@pytest.fixture(scope="session")
def aws() -> Iterator[dict[str, str]]:
    # The local stack's moto, patched: without it a cancelled transaction restores whole tables from
    # a copy taken when it began, erasing another thread's writes made meanwhile (a job submitted
    # while the worker thread commits a batch), which DynamoDB never does.
    moto_server.apply_if_supported()
    with mock_aws():
        outputs = emulator.deploy(
            None,
            "us-east-1",
            parameters={"VisibilityTimeout": "1", "MaxReceiveCount": os.environ["QUEUE_MAX_RECEIVES"]},
        )
        from chalicelib.deployments import ensure_default_deployments
        from chalicelib.services import reset_services

        reset_services()
        ensure_default_deployments(("gpt-3.5-turbo", "text-embedding-3-small"))
        yield outputs
        reset_services()


@pytest.fixture(scope="session")
def app(aws: dict[str, str]) -> Any:
    import app as application

    return application.app


@pytest.fixture()
def client(app: Any) -> Iterator[Client]:
    with Client(app) as test_client:
        yield test_client


@pytest.fixture()
def services(aws: dict[str, str]) -> Any:
    from chalicelib.services import get_services

    return get_services()


class PollerThread:
    """Runs the local SQS event source in a thread until stopped."""

    def __init__(self, handler: Any) -> None:
        sqs = boto3.client("sqs", region_name="us-east-1")
        url = sqs.get_queue_url(QueueName="gpucloud-inference-jobs")["QueueUrl"]
        self.poller = EventSourcePoller(sqs, url, handler, "us-east-1")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.poller.poll_once()

    def __enter__(self) -> PollerThread:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


@pytest.fixture()
def workers(app: Any) -> Iterator[PollerThread]:
    import app as application

    with PollerThread(application.worker) as poller:
        yield poller


def chat(
    client: Client, key: str | None, body: Any, *, asynchronous: bool = False, raw: bytes | None = None
) -> Any:
    """POST /v1/chat/completions as a client would: JSON, the key as a bearer token (if any)."""
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    if asynchronous:
        headers["X-GPUCloud-Async"] = "true"
    return client.http.post(
        "/v1/chat/completions", headers=headers, body=raw if raw is not None else json.dumps(body)
    )


def create_key(client: Client, **fields: Any) -> dict[str, Any]:
    response = client.http.post(
        "/api/keys",
        headers={**ADMIN, "Content-Type": "application/json"},
        body=json.dumps({"name": "test", **fields}),
    )
    assert response.status_code == 201, response.body
    created: dict[str, Any] = response.json_body
    return created
