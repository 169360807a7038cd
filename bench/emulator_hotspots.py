"""The emulator's own cost per call at the sizes the drain reaches, moto as shipped vs patched.

In-process moto (`mock_aws`), one operation at a time, at a queue depth and a
jobs-table size of `--depth` (2,000): what a worker's batch costs the
emulator (ReceiveMessage of 10 + DeleteMessageBatch of 10, the
TransactWriteItems that ends 10 jobs) and what a submission costs it
(SendMessage). Run by `python -m bench drain` in two fresh interpreters, one
with infra/local/moto_server.py's patches applied:

    .venv/bin/python -m bench.emulator_hotspots [--patched] [--depth 2000]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
import uuid
from typing import Any

REPEATS = 5


def measure(depth: int) -> dict[str, float]:
    import boto3
    from moto import mock_aws
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.sqs.models import Message, sqs_backends

    body = json.dumps(
        {"job_id": "x" * 32, "request": {"messages": [{"role": "user", "content": "benchmark"}]}}
    )
    out: dict[str, float] = {}
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        url = sqs.create_queue(QueueName="jobs", Attributes={"VisibilityTimeout": "30"})["QueueUrl"]
        queue = sqs_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].get_queue("jobs")
        for _ in range(depth):  # straight into the model: filling through the API is itself O(depth)
            message = Message(str(uuid.uuid4()), body)
            message.mark_sent()
            queue.add_message(message)
        batch = []
        for _ in range(REPEATS):
            began = time.perf_counter()
            messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"])[
                "Messages"
            ]
            sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
            )
            batch.append((time.perf_counter() - began) * 1000)
        out["receive 10 + delete 10 (one worker batch), ms"] = statistics.median(batch)
        sends = []
        for _ in range(REPEATS):
            began = time.perf_counter()
            sqs.send_message(QueueUrl=url, MessageBody=body)
            sends.append((time.perf_counter() - began) * 1000)
        out["SendMessage (one submission), ms"] = statistics.median(sends)

        ddb = boto3.client("dynamodb", region_name="us-east-1")
        ddb.create_table(
            TableName="jobs",
            KeySchema=[{"AttributeName": "job_id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "job_id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        item: dict[str, Any] = {"status": {"S": "queued"}, "request": {"S": body}, "result": {"S": "y" * 600}}
        for index in range(depth):
            ddb.put_item(TableName="jobs", Item={"job_id": {"S": f"job-{index}"}, **item})
        commits = []
        for attempt in range(REPEATS):
            updates = [
                {
                    "Update": {
                        "TableName": "jobs",
                        "Key": {"job_id": {"S": f"job-{attempt * 10 + j}"}},
                        "UpdateExpression": "SET #s = :done",
                        "ConditionExpression": "#s IN (:queued)",
                        "ExpressionAttributeNames": {"#s": "status"},
                        "ExpressionAttributeValues": {
                            ":done": {"S": "succeeded"},
                            ":queued": {"S": "queued"},
                        },
                    }
                }
                for j in range(10)
            ]
            began = time.perf_counter()
            ddb.transact_write_items(TransactItems=updates)
            commits.append((time.perf_counter() - began) * 1000)
        out["TransactWriteItems of 10 jobs (one worker commit), ms"] = statistics.median(commits)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.emulator_hotspots")
    parser.add_argument("--patched", action="store_true")
    parser.add_argument("--depth", type=int, default=2000)
    args = parser.parse_args(argv)
    os.environ.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"})
    if args.patched:
        from infra.local import moto_server

        moto_server.apply()
    print(json.dumps({"depth": args.depth, "patched": args.patched, "ms": measure(args.depth)}))


if __name__ == "__main__":
    main()
