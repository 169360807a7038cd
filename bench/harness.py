"""In one process: the Chalice app's handlers called the way Lambda calls them,
with every AWS call, Redis round trip and Redis command counted.

- AWS: moto's server in a child process (so the handlers' CPU time is theirs
  alone; with moto's in-process `mock_aws` the emulator would run on the
  handler's thread), the tables and queues deployed from infra/template.json
  with `infra.local.emulator.deploy`, as the tests do.
- Redis: the real server (`REDIS_URL`, else 127.0.0.1:6379), database 4.
- Counting AWS calls: `botocore.session.Session.create_client` is wrapped so
  that every client made in this process (boto3's, and pynamodb's, which makes
  its own botocore session per thread) gets `before-parameter-build.*.*` (one
  per API call, with its parameters) and `after-call.*.*` hooks.
- Counting Redis: redis-py's connection class is wrapped: one
  `send_packed_command` is one round trip; `send_command` / `pack_commands`
  name the commands (a pipeline is one round trip carrying several commands).
- Who made a call: a thread-local role. `api` is the API Lambda's handler
  (`app.app`), `worker` the worker Lambda's (`app.worker`), `esm` Lambda's
  SQS event source mapping (receive, delete), played by infra/local's poller.

A "round" is what a busy system does: `batch` API calls in flight at once
(threads, each a Lambda instance's invocation), then one worker invocation for
their batch of messages. Each API call blocks in BLPOP until its result is
pushed, as on AWS.
"""

from __future__ import annotations

import copy
import json
import os
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from bench.common import INPROCESS_REDIS_DB, MESSAGES, MODEL, UNLIMITED, stack_redis_url
from infra.local.emulator import MotoServer

SDK_HEADERS = {
    "host": "127.0.0.1",
    "accept": "application/json",
    "content-type": "application/json",
    "user-agent": "OpenAI/Python 3.51.0",
    "x-stainless-lang": "python",
    "x-stainless-package-version": "3.51.0",
    "x-stainless-os": "Linux",
    "x-stainless-arch": "x64",
    "x-stainless-runtime": "CPython",
    "x-stainless-runtime-version": "3.11.7",
    "x-stainless-retry-count": "0",
    "x-stainless-read-timeout": "600",
}


@dataclass
class CallStats:
    """What one handler invocation did, measured on its own thread."""

    wall_ms: float = 0.0
    cpu_ms: float = 0.0
    aws_ms: float = 0.0
    redis_ms: float = 0.0
    blpop_ms: float = 0.0
    status: int = 0


@dataclass
class Tally:
    aws: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    aws_ms: defaultdict[tuple[str, str, str], float] = field(default_factory=lambda: defaultdict(float))
    # (role, operation, table or queue name) for DynamoDB and SQS calls
    by_resource: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    redis_round_trips: Counter[str] = field(default_factory=Counter)
    redis_commands: Counter[tuple[str, str]] = field(default_factory=Counter)
    dynamodb_writes: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)


class Recorder:
    """Counts AWS calls and Redis traffic by the calling thread's role."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._lock = threading.Lock()
        self.sent = threading.Condition()
        self.sends = 0
        self.tally = Tally()
        self.record_writes = False

    # ---- roles and per-invocation stats
    @property
    def role(self) -> str | None:
        return getattr(self._local, "role", None)

    @contextmanager
    def as_role(self, role: str | None) -> Iterator[None]:
        previous = self.role
        self._local.role = role
        try:
            yield
        finally:
            self._local.role = previous

    def _stats(self) -> CallStats | None:
        return getattr(self._local, "stats", None)

    @contextmanager
    def invocation(self, role: str) -> Iterator[CallStats]:
        """One handler invocation on this thread: wall and thread CPU time, time in I/O."""
        stats = CallStats()
        self._local.stats = stats
        with self.as_role(role):
            wall, cpu = time.perf_counter(), time.thread_time()
            try:
                yield stats
            finally:
                stats.wall_ms = (time.perf_counter() - wall) * 1000
                stats.cpu_ms = (time.thread_time() - cpu) * 1000
                self._local.stats = None

    def reset(self) -> Tally:
        with self._lock:
            old, self.tally = self.tally, Tally()
        return old

    # ---- botocore
    def _before_call(self, model: Any, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        role = self.role
        if role is None:
            return
        service = model.service_model.service_name
        key = (role, service, model.name)
        context["bench"] = (key, time.perf_counter())
        resource = params.get("TableName") or str(params.get("QueueUrl", "")).rsplit("/", 1)[-1]
        with self._lock:
            self.tally.aws[key] += 1
            self.tally.by_resource[(role, model.name, resource or "-")] += 1
            if (
                self.record_writes
                and service == "dynamodb"
                and model.name
                in (
                    "PutItem",
                    "UpdateItem",
                    "TransactWriteItems",
                    "BatchWriteItem",
                )
            ):
                self.tally.dynamodb_writes.append((role, model.name, copy.deepcopy(params)))

    def _after_call(self, model: Any, context: dict[str, Any], **_: Any) -> None:
        mark = context.pop("bench", None)
        if mark is None:
            return
        key, began = mark
        elapsed = (time.perf_counter() - began) * 1000
        with self._lock:
            self.tally.aws_ms[key] += elapsed
        stats = self._stats()
        if stats is not None:
            stats.aws_ms += elapsed
        if model.name == "SendMessage":
            with self.sent:
                self.sends += 1
                self.sent.notify_all()

    def install(self) -> None:
        """Hook every botocore client and every Redis connection made from now on."""
        import botocore.session
        import redis.client
        from redis.connection import AbstractConnection

        recorder = self
        create_client = botocore.session.Session.create_client

        def hooked_create_client(session: Any, *args: Any, **kwargs: Any) -> Any:
            client = create_client(session, *args, **kwargs)
            # before-parameter-build carries the API parameters (before-call has the wire form).
            client.meta.events.register("before-parameter-build.*.*", recorder._before_call)
            client.meta.events.register("after-call.*.*", recorder._after_call)
            client.meta.events.register("after-call-error.*.*", recorder._after_call)
            return client

        botocore.session.Session.create_client = hooked_create_client

        send_packed = AbstractConnection.send_packed_command
        send_command = AbstractConnection.send_command
        pack_commands = AbstractConnection.pack_commands

        def hooked_send_packed(conn: Any, command: Any, check_health: bool = True) -> Any:
            role = recorder.role
            if role is not None:
                with recorder._lock:
                    recorder.tally.redis_round_trips[role] += 1
            return send_packed(conn, command, check_health)

        def hooked_send_command(conn: Any, *args: Any, **kwargs: Any) -> Any:
            role = recorder.role
            if role is not None and args:
                with recorder._lock:
                    recorder.tally.redis_commands[(role, str(args[0]).upper())] += 1
            return send_command(conn, *args, **kwargs)

        def hooked_pack_commands(conn: Any, commands: Any) -> Any:
            role = recorder.role
            if role is not None:
                with recorder._lock:
                    for command in commands:
                        recorder.tally.redis_commands[(role, str(command[0]).upper())] += 1
            return pack_commands(conn, commands)

        AbstractConnection.send_packed_command = hooked_send_packed  # type: ignore[method-assign]
        AbstractConnection.send_command = hooked_send_command  # type: ignore[method-assign, assignment]
        AbstractConnection.pack_commands = hooked_pack_commands  # type: ignore[method-assign]

        # Time spent in Redis calls, with BLPOP (the wait for the worker) apart.
        execute_command = redis.client.Redis.execute_command
        pipeline_execute = redis.client.Pipeline.execute

        def timed_execute_command(client: Any, *args: Any, **options: Any) -> Any:
            began = time.perf_counter()
            try:
                return execute_command(client, *args, **options)
            finally:
                stats = recorder._stats()
                if stats is not None:
                    elapsed = (time.perf_counter() - began) * 1000
                    if args and str(args[0]).upper() == "BLPOP":
                        stats.blpop_ms += elapsed
                    else:
                        stats.redis_ms += elapsed

        def timed_pipeline_execute(pipe: Any, *args: Any, **kwargs: Any) -> Any:
            began = time.perf_counter()
            try:
                return pipeline_execute(pipe, *args, **kwargs)
            finally:
                stats = recorder._stats()
                if stats is not None:
                    stats.redis_ms += (time.perf_counter() - began) * 1000

        redis.client.Redis.execute_command = timed_execute_command  # type: ignore[method-assign, assignment]
        redis.client.Pipeline.execute = timed_pipeline_execute  # type: ignore[method-assign, assignment]


class Harness:
    """The app in this process, an emulator beside it, a key with no practical limits."""

    def __init__(self, emulator_module: str = "infra.local.moto_server", batch: int = 10) -> None:
        self.batch = batch
        self.recorder = Recorder()
        self.emulator = MotoServer(module=emulator_module)
        self.emulator_module = emulator_module
        self.api_stats: list[CallStats] = []
        self.worker_stats: list[CallStats] = []
        self.esm_ms: list[float] = []
        self.batch_sizes: list[int] = []
        self._pool: ThreadPoolExecutor | None = None
        # Optional per-thread hooks around each invocation (the profiler uses them).
        self.wrap_api: Callable[[Callable[[], Any]], Any] = lambda run: run()
        self.wrap_worker: Callable[[Callable[[], Any]], Any] = lambda run: run()

    # ---- set up
    def start(self) -> Harness:
        from infra.local import emulator

        os.environ.update(
            {
                "AWS_DEFAULT_REGION": "us-east-1",
                "AWS_REGION": "us-east-1",
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "GPUCLOUD_STAGE": "bench",
                "ADMIN_TOKEN": "bench-admin-token",
                "RESULT_TIMEOUT_SECONDS": "20",
                "QUEUE_MAX_RECEIVES": "3",
            }
        )
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "JOBS_QUEUE_URL", "JOBS_DLQ_URL"):
            os.environ.pop(name, None)
        self.emulator.start()
        os.environ["AWS_ENDPOINT_URL"] = self.emulator.url
        outputs = emulator.deploy(
            self.emulator.url, "us-east-1", parameters={"VisibilityTimeout": "30", "MaxReceiveCount": "3"}
        )
        os.environ.update(emulator.environment_from_outputs(outputs))
        os.environ["REDIS_URL"] = stack_redis_url(INPROCESS_REDIS_DB)
        # Hooks first: every client the app builds from here on is counted.
        self.recorder.install()

        import boto3

        import app as application
        from chalicelib.deployments import ensure_default_deployments
        from chalicelib.keys import create_key
        from chalicelib.services import get_services
        from infra.local.gateway import ApiGatewayEmulator
        from infra.local.poller import EventSourcePoller

        self.app = application
        self.services = get_services()
        ensure_default_deployments(self.services.settings.default_models)
        self.key = create_key(
            "bench-inprocess",
            rate_limit_rpm=UNLIMITED["rate_limit_rpm"],
            rate_limit_tpm=UNLIMITED["rate_limit_tpm"],
        )["key"]
        # Chalice's own event converter, as API Gateway (and infra/local's gateway) build events;
        # it also makes the app's current_request thread-local for concurrent invocations.
        self.gateway = ApiGatewayEmulator(application.app)
        sqs = boto3.client("sqs", region_name="us-east-1", endpoint_url=self.emulator.url)
        self.poller = EventSourcePoller(sqs, os.environ["JOBS_QUEUE_URL"], self._worker_handler, "us-east-1")
        self._pool = ThreadPoolExecutor(max_workers=max(self.batch, 1), thread_name_prefix="api")
        return self

    def stop(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        self.emulator.stop()

    # ---- the two handlers
    def chat_event(self, key: str | None = None) -> dict[str, Any]:
        body = json.dumps({"messages": MESSAGES, "model": MODEL}).encode()
        headers = {
            **SDK_HEADERS,
            "authorization": f"Bearer {key or self.key}",
            "content-length": str(len(body)),
        }
        event: dict[str, Any] = self.gateway._converter.create_lambda_event(
            method="POST", path="/v1/chat/completions", headers=headers, body=body
        )
        event["requestContext"]["requestId"] = os.urandom(8).hex()
        return event

    def call_api(self, event: dict[str, Any] | None = None) -> CallStats:
        """One API Lambda invocation (event built outside the timed region)."""
        from chalice.local import LambdaContext

        event = event or self.chat_event()
        context = LambdaContext("api_handler", 512, 30_000)
        with self.recorder.invocation("api") as stats:
            response = self.wrap_api(lambda: self.app.app(event, context))
        stats.status = int(response["statusCode"])
        self.api_stats.append(stats)
        return stats

    def _worker_handler(self, event: dict[str, Any], context: Any) -> Any:
        with self.recorder.invocation("worker") as stats:
            result = self.wrap_worker(lambda: self.app.worker(event, context))
        self.worker_stats.append(stats)
        self.batch_sizes.append(len(event["Records"]))
        return result

    def poll(self) -> int:
        """One event-source poll: receive, invoke the worker, delete (as Lambda's ESM)."""
        began = time.perf_counter()
        with self.recorder.as_role("esm"):
            count = self.poller.poll_once()
        self.esm_ms.append((time.perf_counter() - began) * 1000)
        return count

    # ---- traffic shapes
    def round(self) -> list[CallStats]:
        """`batch` API calls in flight, then the worker takes their batch."""
        assert self._pool is not None
        with self.recorder.sent:
            self.recorder.sends = 0
        events = [self.chat_event() for _ in range(self.batch)]
        futures = [self._pool.submit(self.call_api, event) for event in events]
        with self.recorder.sent:
            self.recorder.sent.wait_for(lambda: self.recorder.sends >= self.batch, timeout=30)
        processed = 0
        deadline = time.monotonic() + 30
        while processed < self.batch and time.monotonic() < deadline:
            processed += self.poll()
        return [f.result(timeout=60) for f in futures]

    @contextmanager
    def background_worker(self) -> Iterator[None]:
        """A poller thread, as the local stack's: for one-at-a-time traffic."""
        stop = threading.Event()

        def run() -> None:
            while not stop.is_set():
                self.poll()

        thread = threading.Thread(target=run, name="esm", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(timeout=10)

    def clear_stats(self) -> None:
        self.api_stats.clear()
        self.worker_stats.clear()
        self.esm_ms.clear()
        self.batch_sizes.clear()
        self.recorder.reset()
