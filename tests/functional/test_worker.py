"""The SQS worker: partial batch failures, redelivery, the last attempt."""

from __future__ import annotations

import json
from typing import Any

from chalice.local import LambdaContext
from chalice.test import Client

from chalicelib import jobs
from chalicelib.backends.simulated import FAILURE_TRIGGER
from chalicelib.deployments import resolve
from chalicelib.keys import authenticate
from chalicelib.models import ApiKeyRecord, JobRecord, UsageCounterRecord
from infra.local.poller import lambda_record
from tests.functional.conftest import create_key
from tests.waiting import wait_for


def submit(services: Any, key: str, content: str) -> str:
    api_key = authenticate(f"Bearer {key}", services.key_cache)
    deployment = resolve("gpt-3.5-turbo", services.deployment_cache)
    request = {"model": "gpt-3.5-turbo", "messages": [{"role": "user", "content": content}]}
    return jobs.submit(services, api_key, deployment, "chat.completion", request).job_id


def receive_all(services: Any, expected: int) -> list[dict[str, Any]]:
    """Receive until `expected` messages have arrived (a redelivery waits out the visibility timeout)."""
    messages: list[dict[str, Any]] = []

    def all_arrived() -> bool:
        received = services.sqs.receive_message(
            QueueUrl=services.queue_url(), MaxNumberOfMessages=10, AttributeNames=["All"], WaitTimeSeconds=1
        )
        messages.extend(received.get("Messages", []))
        return len(messages) >= expected

    assert wait_for(all_arrived, timeout=15), f"expected {expected} messages, got {len(messages)}"
    return messages


def event_of(messages: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "Records": [lambda_record(m, "arn:aws:sqs:us-east-1:123456789012:q", "us-east-1") for m in messages]
    }


def delete(services: Any, messages: list[dict[str, Any]]) -> None:
    for message in messages:
        services.sqs.delete_message(QueueUrl=services.queue_url(), ReceiptHandle=message["ReceiptHandle"])


def key_totals(key_id: str) -> tuple[int, int]:
    record = next(r for r in ApiKeyRecord.scan() if r.id == key_id)
    return int(record.request_count), int(record.completion_tokens)


def counter_requests(key_id: str) -> int:
    return sum(int(c.requests) for c in UsageCounterRecord.scan() if c.key_model.startswith(key_id + "#"))


def test_only_the_failing_record_of_a_batch_is_retried(client: Client, app: Any, services: Any) -> None:
    import app as application

    # GIVEN a batch of three jobs, the middle one poisoned
    key = create_key(client)
    ids = [submit(services, key["key"], text) for text in ("one", f"two {FAILURE_TRIGGER}", "three")]
    messages = receive_all(services, 3)
    by_job = {json.loads(m["Body"])["job_id"]: m for m in messages}
    # WHEN the worker handles it
    result = application.worker(event_of(messages), LambdaContext("worker", 512, 60_000))
    # THEN only the poisoned record comes back as a failure
    assert result == {"batchItemFailures": [{"itemIdentifier": by_job[ids[1]]["MessageId"]}]}
    assert [JobRecord.get(i).status for i in ids] == ["succeeded", "queued", "succeeded"]
    assert key_totals(key["id"])[0] == 2
    delete(services, messages)


def test_the_same_batch_delivered_twice_counts_usage_once(client: Client, app: Any, services: Any) -> None:
    import app as application

    key = create_key(client)
    ids = [submit(services, key["key"], f"hello {n}") for n in range(4)]
    messages = receive_all(services, 4)
    event = event_of(messages)
    first = application.worker(event, LambdaContext("worker", 512, 60_000))
    totals_after_first = key_totals(key["id"])
    results_after_first = {i: JobRecord.get(i).result for i in ids}
    # WHEN SQS delivers the very same batch again (at-least-once)
    second = application.worker(event, LambdaContext("worker", 512, 60_000))
    # THEN both deliveries succeed, and results and usage are those of one delivery
    assert first == second == {"batchItemFailures": []}
    assert key_totals(key["id"]) == totals_after_first
    assert totals_after_first[0] == 4
    assert counter_requests(key["id"]) == 4
    assert {i: JobRecord.get(i).result for i in ids} == results_after_first
    delete(services, messages)


def test_the_last_attempt_marks_the_job_failed_with_the_reason(
    client: Client, app: Any, services: Any
) -> None:
    import app as application

    key = create_key(client)
    job_id = submit(services, key["key"], f"always {FAILURE_TRIGGER}")
    [message] = receive_all(services, 1)
    record = lambda_record(message, "arn:aws:sqs:us-east-1:123456789012:q", "us-east-1")
    # An early attempt: the job stays queued for the retry.
    application.worker({"Records": [record]}, LambdaContext("worker", 512, 60_000))
    assert JobRecord.get(job_id).status == "queued"
    # The last allowed receive (the queue's maxReceiveCount is 2 in these tests).
    record["attributes"]["ApproximateReceiveCount"] = str(services.settings.queue_max_receives)
    result = application.worker({"Records": [record]}, LambdaContext("worker", 512, 60_000))
    assert result["batchItemFailures"] == [{"itemIdentifier": message["MessageId"]}]
    job = JobRecord.get(job_id)
    assert job.status == "failed"
    assert FAILURE_TRIGGER in (job.error_message or "") or "asked to fail" in (job.error_message or "")
    # The failure is metered once, as a request and an error.
    counters = [c for c in UsageCounterRecord.scan() if c.key_model.startswith(key["id"] + "#")]
    assert sum(int(c.requests) for c in counters) == 1
    assert sum(int(c.errors) for c in counters) == 1
    delete(services, [message])


def test_a_crash_between_the_result_write_and_the_delete_counts_once(
    client: Client, app: Any, services: Any
) -> None:
    import app as application

    # GIVEN a job whose worker commits the result, then dies before SQS's delete
    key = create_key(client)
    job_id = submit(services, key["key"], "crash after commit")
    [first] = receive_all(services, 1)
    application.worker(event_of([first]), LambdaContext("worker", 512, 60_000))
    assert JobRecord.get(job_id).status == "succeeded"
    # WHEN SQS delivers it again after the visibility timeout (1 s in these tests)
    [again] = receive_all(services, 1)
    assert json.loads(again["Body"])["job_id"] == job_id
    assert int(again["Attributes"]["ApproximateReceiveCount"]) == 2
    result = application.worker(event_of([again]), LambdaContext("worker", 512, 60_000))
    delete(services, [again])
    # THEN the redelivery succeeds without counting the request again
    assert result == {"batchItemFailures": []}
    assert key_totals(key["id"])[0] == 1
    assert counter_requests(key["id"]) == 1
