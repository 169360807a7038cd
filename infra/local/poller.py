"""Lambda's SQS event source mapping, offline.

Each poller is a process (as Lambda scales out by instances): it long-polls
the queue for up to 10 messages, invokes the real worker handler of `app.py`
with a Lambda-shaped SQS event, and deletes only the records that did not
come back in `batchItemFailures`. Failed records become visible again after
the queue's visibility timeout; the queue's redrive policy moves a message
that keeps failing to the DLQ, exactly as on AWS. If the handler raises, the
whole batch is left for retry, as Lambda does.
"""

from __future__ import annotations

import hashlib
import logging
import multiprocessing
import os
import signal
import threading
import time
from typing import Any

log = logging.getLogger(__name__)

BATCH_SIZE = 10
LONG_POLL_SECONDS = 1


def lambda_record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    attributes = message.get("Attributes", {})
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": {
            "ApproximateReceiveCount": attributes.get("ApproximateReceiveCount", "1"),
            "SentTimestamp": attributes.get("SentTimestamp", str(int(time.time() * 1000))),
            "SenderId": attributes.get("SenderId", "local"),
            "ApproximateFirstReceiveTimestamp": attributes.get(
                "ApproximateFirstReceiveTimestamp", str(int(time.time() * 1000))
            ),
        },
        "messageAttributes": {},
        "md5OfBody": message.get("MD5OfBody") or hashlib.md5(message["Body"].encode()).hexdigest(),  # noqa: S324 - SQS's own checksum
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


class EventSourcePoller:
    def __init__(self, sqs: Any, queue_url: str, handler: Any, region: str) -> None:
        self.sqs = sqs
        self.queue_url = queue_url
        self.handler = handler
        self.region = region
        self.queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]

    def poll_once(self) -> int:
        """Receive one batch, invoke the handler, delete what succeeded."""
        from chalice.local import LambdaContext

        messages = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=BATCH_SIZE,
            WaitTimeSeconds=LONG_POLL_SECONDS,
            AttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            return 0
        event = {"Records": [lambda_record(m, self.queue_arn, self.region) for m in messages]}
        try:
            result = self.handler(event, LambdaContext("worker", 512, 60_000))
        except Exception:  # noqa: BLE001 - a crashed invocation retries the whole batch
            log.exception("worker invocation failed; the batch will be retried")
            return len(messages)
        failed = {f["itemIdentifier"] for f in (result or {}).get("batchItemFailures", [])}
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
            )
        return len(messages)


def run_poller(index: int, stop: Any) -> None:
    """A poller process's main loop; the environment is the stack's."""
    import boto3

    logging.basicConfig(
        level=os.environ.get("LOG_LEVEL", "INFO"),
        format=f"poller-{index} %(levelname)s %(name)s: %(message)s",
    )
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the stack stops us via `stop`
    import app as application  # noqa: PLC0415 - after the environment is set

    sqs = boto3.client("sqs", endpoint_url=os.environ.get("AWS_ENDPOINT_URL"))
    poller = EventSourcePoller(sqs, os.environ["JOBS_QUEUE_URL"], application.worker, sqs.meta.region_name)
    while not stop.is_set():
        try:
            poller.poll_once()
        except Exception as exc:  # noqa: BLE001 - the emulator may be briefly away
            log.warning("poll failed (%s); retrying", exc.__class__.__name__)
            stop.wait(0.5)


class PollerPool:
    """N poller processes, replaced when one dies, as Lambda starts new instances."""

    def __init__(self, count: int) -> None:
        self._context = multiprocessing.get_context("spawn")
        self._stop = self._context.Event()
        self._processes: list[Any] = [self._spawn(index) for index in range(count)]
        self._supervisor = threading.Thread(target=self._supervise, name="poller-supervisor", daemon=True)
        self._supervisor.start()

    def _spawn(self, index: int) -> Any:
        process = self._context.Process(
            target=run_poller, args=(index, self._stop), name=f"poller-{index}", daemon=True
        )
        process.start()
        return process

    def _supervise(self) -> None:
        while not self._stop.wait(0.5):
            for index, process in enumerate(self._processes):
                if not process.is_alive() and not self._stop.is_set():
                    log.warning("poller-%d exited (%s); starting a new one", index, process.exitcode)
                    self._processes[index] = self._spawn(index)

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._processes]

    def stop(self) -> None:
        self._stop.set()
        self._supervisor.join(timeout=2)
        for process in self._processes:
            process.join(timeout=5)
            if process.is_alive():
                process.terminate()
