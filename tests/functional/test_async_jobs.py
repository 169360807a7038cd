"""Async jobs: 202 at once, read by the key that made them, cancel while queued."""

from __future__ import annotations

from typing import Any

from chalice.local import LambdaContext
from chalice.test import Client

from chalicelib.models import ApiKeyRecord
from tests.functional.conftest import chat, create_key
from tests.functional.test_worker import delete, event_of, receive_all

HELLO = {"model": "gpt-3.5-turbo", "messages": [{"role": "user", "content": "Hello async"}]}


def post_async(client: Client, key: str) -> Any:
    return chat(client, key, HELLO, asynchronous=True)


def get_job(client: Client, key: str, job_id: str) -> Any:
    return client.http.get(f"/v1/jobs/{job_id}", headers={"Authorization": f"Bearer {key}"})


def test_async_job_lifecycle_and_its_result(client: Client, app: Any, services: Any) -> None:
    import app as application

    key = create_key(client)["key"]
    # WHEN a request is sent with the async header
    accepted = post_async(client, key)
    # THEN it is accepted at once with a job id
    assert accepted.status_code == 202, accepted.body
    job = accepted.json_body
    assert job["status"] == "queued" and job["result"] is None
    assert accepted.headers["Location"] == f"/v1/jobs/{job['id']}"
    assert get_job(client, key, job["id"]).json_body["status"] == "queued"
    # WHEN a worker has run it
    messages = receive_all(services, 1)
    application.worker(event_of(messages), LambdaContext("worker", 512, 60_000))
    delete(services, messages)
    # THEN the job reads succeeded with the chat.completion and its usage
    done = get_job(client, key, job["id"]).json_body
    assert done["status"] == "succeeded"
    assert done["result"]["object"] == "chat.completion"
    assert done["usage"]["total_tokens"] == done["result"]["usage"]["total_tokens"]


def test_another_keys_job_is_not_found(client: Client, services: Any) -> None:
    owner = create_key(client)["key"]
    stranger = create_key(client)["key"]
    job_id = post_async(client, owner).json_body["id"]
    response = get_job(client, stranger, job_id)
    assert response.status_code == 404
    assert response.json_body["error"]["code"] == "job_not_found"
    assert (
        client.http.delete(f"/v1/jobs/{job_id}", headers={"Authorization": f"Bearer {stranger}"}).status_code
        == 404
    )
    delete(services, receive_all(services, 1))


def test_cancelling_a_queued_job_is_final_and_metered_once(client: Client, app: Any, services: Any) -> None:
    import app as application

    created = create_key(client)
    key = created["key"]
    job_id = post_async(client, key).json_body["id"]
    cancelled = client.http.delete(f"/v1/jobs/{job_id}", headers={"Authorization": f"Bearer {key}"})
    assert cancelled.status_code == 200, cancelled.body
    assert cancelled.json_body["status"] == "cancelled"
    # A second cancel is a conflict, not a second count.
    again = client.http.delete(f"/v1/jobs/{job_id}", headers={"Authorization": f"Bearer {key}"})
    assert again.status_code == 409
    # The queued message still reaches a worker: it must not resurrect the job.
    messages = receive_all(services, 1)
    result = application.worker(event_of(messages), LambdaContext("worker", 512, 60_000))
    assert result == {"batchItemFailures": []}
    delete(services, messages)
    final = get_job(client, key, job_id).json_body
    assert final["status"] == "cancelled" and final["result"] is None
    record = next(r for r in ApiKeyRecord.scan() if r.id == created["id"])
    assert int(record.request_count) == 1
    assert int(record.completion_tokens) == 0
