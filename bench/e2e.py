"""End to end through the local stack, against two floors measured in the same run.

The stack is started as `make run` starts it (moto server, real Redis, real
Postgres, N worker pollers; the default deployment is the simulated model with
zero latency). Official-SDK requests (`openai` client, non-streaming chat
completions) run at concurrency 1, 8 and 32, each level for a bounded time.

Floors, on the same machine in the same run:
- HTTP floor: the same SDK call with a malformed key. It goes through the same
  HTTP front (the API Gateway emulator) and the Chalice app's routing and
  middleware, and is answered 401 before any I/O.
- queue floor: the emulator's own SendMessage -> ReceiveMessage ->
  DeleteMessage round trip (boto3, one queue per client thread, never deep).

The ratios end-to-end / floor are the platform's own overhead, independent of
how fast this machine is today. The sequential run (concurrency 1) also gives
the figure the first version of this benchmark printed. Each e2e request is
then joined with its Job row (the answer's id is the job id) to split its
latency into segments, and the CPU each process of the stack used per request
is read from /proc.

Variants (`--variant`): `stock` is the stack as `make run` starts it;
`moto-as-shipped` runs the same stack against moto without
infra/local/moto_server.py's fixes, to compare.

Run: `.venv/bin/python -m bench e2e [--seconds 5] [--workers 2] [--variant moto-as-shipped] [--svg PATH]`.
"""

from __future__ import annotations

import argparse
import os
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
import openai
from botocore.config import Config

from bench import plot
from bench.common import (
    MESSAGES,
    MODEL,
    OTHERS,
    RESULTS,
    VARIANTS,
    admin_client,
    command_line,
    cpu_meter,
    create_key,
    emulator_client,
    fmt_ms,
    heading,
    load_average,
    machine,
    print_machine,
    redis_server_pid,
    save,
    stack_redis_url,
    stack_tables,
    start_stack,
    summary,
)

LEVELS = (1, 8, 32)
# Well formed but with a wrong checksum: 401 from the edge, no DynamoDB read.
MALFORMED_KEY = "gpc_" + "0" * 36


def run_level(
    call: Callable[[], None],
    concurrency: int,
    seconds: float,
    warmup: float,
    cpu_groups: dict[str, list[int]],
) -> dict[str, Any]:
    """`concurrency` threads call `call` in a loop: `warmup` s unrecorded, then `seconds` s."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    began = time.perf_counter()
    window_start = began + warmup
    window_end = window_start + seconds

    def loop() -> None:
        while True:
            start = time.perf_counter()
            if start >= window_end:
                return
            try:
                call()
                failed = None
            except Exception as exc:
                failed = exc.__class__.__name__
            elapsed_ms = (time.perf_counter() - start) * 1000
            if start >= window_start:
                with lock:
                    if failed is None:
                        latencies.append(elapsed_ms)
                    else:
                        errors.append(failed)

    threads = [threading.Thread(target=loop, daemon=True) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    time.sleep(max(window_start - time.perf_counter(), 0))
    with cpu_meter(cpu_groups) as cpu:
        for thread in threads:
            thread.join(timeout=seconds + 120)
        finished = time.perf_counter()
    elapsed = finished - window_start
    result: dict[str, Any] = {
        "concurrency": concurrency,
        "seconds": round(elapsed, 2),
        "completed": len(latencies),
        "errors": len(errors),
        "error_kinds": sorted(set(errors)),
        "throughput_per_s": len(latencies) / elapsed if elapsed > 0 else 0.0,
        "latency_ms": summary(latencies),
        "cpu_seconds": {k: round(v, 3) for k, v in cpu.items()},
    }
    done = max(len(latencies), 1)
    ours = {k: v for k, v in cpu.items() if k != OTHERS}
    result["cpu_ms_per_call"] = {k: round(v * 1000 / done, 2) for k, v in ours.items()}
    cpus = os.cpu_count() or 1
    result["cpu_utilisation"] = round(sum(ours.values()) / elapsed / cpus, 3)
    result["foreign_cpu_utilisation"] = round(cpu.get(OTHERS, 0.0) / elapsed / cpus, 3)
    result["load_average_1m"] = load_average()
    return result


def _queue_floor_call(sqs: Any, urls: list[str]) -> Callable[[], None]:
    """One send -> receive -> delete round trip on the calling thread's own queue."""
    local = threading.local()
    counter = iter(range(1_000_000))
    counter_lock = threading.Lock()

    def call() -> None:
        if not hasattr(local, "url"):
            with counter_lock:
                local.url = urls[next(counter) % len(urls)]
        sqs.send_message(QueueUrl=local.url, MessageBody='{"bench":"queue floor"}')
        messages: list[dict[str, Any]] = []
        while not messages:
            messages = sqs.receive_message(QueueUrl=local.url, MaxNumberOfMessages=1, WaitTimeSeconds=1).get(
                "Messages", []
            )
        sqs.delete_message(QueueUrl=local.url, ReceiptHandle=messages[0]["ReceiptHandle"])

    return call


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench e2e")
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per level")
    parser.add_argument("--warmup", type=float, default=1.0, help="unrecorded seconds per level")
    parser.add_argument("--workers", type=int, default=2, help="worker pollers (make run's WORKERS)")
    parser.add_argument("--levels", default=",".join(map(str, LEVELS)))
    parser.add_argument(
        "--variant",
        choices=["stock", *sorted(VARIANTS)],
        default="stock",
        help="stock: as make run; moto-as-shipped: the same against unpatched moto",
    )
    parser.add_argument(
        "--svg", type=Path, default=None, help="where to write the plot (default .local/bench/)"
    )
    args = parser.parse_args(argv)
    levels = [int(x) for x in args.levels.split(",")]

    info = machine()
    heading("e2e: local stack, SDK non-streaming chat completions")
    print_machine(info)
    print(f"variant: {args.variant}")
    stack = start_stack(f"e2e-{args.variant}", workers=args.workers, variant=args.variant)
    try:
        groups = stack.pids()
        groups["client (this benchmark)"] = [os.getpid()]
        redis_pid = redis_server_pid(stack_redis_url())
        if redis_pid is not None:
            groups["redis-server"] = [redis_pid]
        with admin_client(stack) as admin:
            key = create_key(admin, "bench-e2e")["key"]
        client = openai.OpenAI(base_url=stack.base_url, api_key=key, max_retries=0, timeout=60)
        bad = openai.OpenAI(base_url=stack.base_url, api_key=MALFORMED_KEY, max_retries=0, timeout=60)
        for _ in range(20):  # warm up: clients, caches, Lua scripts, both pollers
            client.chat.completions.create(model=MODEL, messages=MESSAGES)  # type: ignore[arg-type]

        current_level = [0]
        traces: list[tuple[int, str, float, float]] = []

        def completion() -> None:
            began = time.time()
            answer = client.chat.completions.create(model=MODEL, messages=MESSAGES)  # type: ignore[arg-type]
            traces.append((current_level[0], answer.id.removeprefix("chatcmpl-"), began, time.time()))

        def http_floor() -> None:
            try:
                bad.chat.completions.create(model=MODEL, messages=MESSAGES)  # type: ignore[arg-type]
            except openai.AuthenticationError:
                return
            raise RuntimeError("the HTTP floor route answered something other than 401")

        sqs = boto3.client(
            "sqs",
            endpoint_url=str(stack.state["aws_endpoint_url"]),
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(max_pool_connections=64, retries={"max_attempts": 1, "mode": "standard"}),
        )
        tag = uuid.uuid4().hex[:8]
        floor_urls = [
            sqs.create_queue(QueueName=f"bench-floor-{tag}-{i}")["QueueUrl"] for i in range(max(levels))
        ]
        queue_floor = _queue_floor_call(sqs, floor_urls)
        for _ in range(10):
            queue_floor()

        results: dict[str, Any] = {"e2e": [], "http_floor": [], "queue_floor": []}
        for level in levels:
            current_level[0] = level
            for name, call in (("e2e", completion), ("http_floor", http_floor), ("queue_floor", queue_floor)):
                row = run_level(call, level, args.seconds, args.warmup, groups)
                results[name].append(row)
                lat = row["latency_ms"]
                print(
                    f"  {name:<11} c={level:<3} n={row['completed']:<5} err={row['errors']:<3} "
                    f"{row['throughput_per_s']:7.1f}/s  p50 {fmt_ms(lat.get('p50', 0))} "
                    f"p95 {fmt_ms(lat.get('p95', 0))} p99 {fmt_ms(lat.get('p99', 0))} ms  "
                    f"cpu {row['cpu_utilisation'] * 100:.0f}% "
                    f"(others {row['foreign_cpu_utilisation'] * 100:.0f}%)",
                    flush=True,
                )
        for url in floor_urls:
            sqs.delete_queue(QueueUrl=url)
        breakdown = where_the_time_goes(str(stack.state["aws_endpoint_url"]), traces, levels)
    finally:
        stack.close()

    report = {
        "machine": info,
        "command": command_line(),
        "workers": args.workers,
        "variant": args.variant,
        "seconds_per_level": args.seconds,
        "levels": levels,
        **results,
    }
    report["ratios"] = ratios(results)
    report["breakdown"] = breakdown
    print_report(report)
    save("e2e" if args.variant == "stock" else f"e2e-{args.variant}", report)
    svg = args.svg or RESULTS / (
        "perf-latency.svg" if args.variant == "stock" else f"perf-latency-{args.variant}.svg"
    )
    plot.write_latency_svg(report, svg)
    print(f"plot: {svg}")
    return report


SEGMENTS = (
    ("client -> Job created", "HTTP front, auth, rate limit, validation"),
    ("Job created -> worker starts", "PutItem, SendMessage, wait in queue, receive"),
    ("model", "simulated model, zero latency"),
    ("model done -> client has answer", "commit transaction, settle, LPUSH, BLPOP wakes, response"),
)


def _parse_time(value: str) -> float:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()


def where_the_time_goes(
    endpoint: str, traces: list[tuple[int, str, float, float]], levels: list[int]
) -> list[dict[str, Any]]:
    """Join the client's timings with the Job rows' timestamps (same clock, same machine)."""
    table = stack_tables(endpoint)["JOBS_TABLE"]
    dynamodb = emulator_client("dynamodb", endpoint)
    rows: dict[str, dict[str, Any]] = {}
    for page in dynamodb.get_paginator("scan").paginate(
        TableName=table, ProjectionExpression="job_id, created_at, finished_at, queue_ms, model_ms"
    ):
        for item in page["Items"]:
            rows[item["job_id"]["S"]] = item
    out = []
    for level in levels:
        parts: dict[str, list[float]] = {name: [] for name, _ in SEGMENTS}
        for trace_level, job_id, began, ended in traces:
            item = rows.get(job_id)
            if trace_level != level or item is None or "finished_at" not in item:
                continue
            created = _parse_time(item["created_at"]["S"])
            finished = _parse_time(item["finished_at"]["S"])
            queue_ms = float(item["queue_ms"]["N"])
            model_ms = float(item["model_ms"]["N"])
            parts[SEGMENTS[0][0]].append((created - began) * 1000)
            parts[SEGMENTS[1][0]].append(queue_ms)
            parts[SEGMENTS[2][0]].append(model_ms)
            parts[SEGMENTS[3][0]].append((ended - finished) * 1000)
        out.append(
            {
                "concurrency": level,
                "segments": {name: {"what": what, **summary(parts[name])} for name, what in SEGMENTS},
            }
        )
    return out


def ratios(results: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    queue_c1 = results["queue_floor"][0]["latency_ms"]["p50"]
    for e2e, http, queue in zip(results["e2e"], results["http_floor"], results["queue_floor"], strict=True):
        p50 = e2e["latency_ms"]["p50"]
        rows.append(
            {
                "concurrency": e2e["concurrency"],
                "e2e_p50_over_http_floor_p50": p50 / http["latency_ms"]["p50"],
                "e2e_p50_over_queue_floor_p50": p50 / queue["latency_ms"]["p50"],
                "e2e_p50_over_queue_floor_c1_p50": p50 / queue_c1,
                "e2e_p99_over_queue_floor_p99": e2e["latency_ms"]["p99"] / queue["latency_ms"]["p99"],
                "e2e_throughput_over_queue_floor": e2e["throughput_per_s"] / queue["throughput_per_s"],
            }
        )
    return rows


def print_report(report: dict[str, Any]) -> None:
    e2e = report["e2e"]
    first = e2e[0]
    if first["concurrency"] == 1:
        lat = first["latency_ms"]
        print(f"non-streaming completion through the local stack, sequential, n={lat['n']}:")
        print(
            f"  median {lat['p50']:.1f} ms  p95 {lat['p95']:.1f} ms  min {lat['min']:.1f} ms  "
            f"max {lat['max']:.1f} ms"
        )
    print("ratios (the platform's own overhead):")
    for row in report["ratios"]:
        print(
            f"  c={row['concurrency']:<3} e2e/HTTP floor p50 {row['e2e_p50_over_http_floor_p50']:5.1f}x   "
            f"e2e/queue floor p50 {row['e2e_p50_over_queue_floor_p50']:5.1f}x "
            f"(vs queue floor at c=1: {row['e2e_p50_over_queue_floor_c1_p50']:5.1f}x)   "
            f"throughput e2e/queue floor {row['e2e_throughput_over_queue_floor']:4.2f}"
        )
    target = next((r for r in report["ratios"] if r["concurrency"] == 8), None)
    if target is not None:
        met = target["e2e_p50_over_queue_floor_c1_p50"] <= 3
        print(
            f"target: e2e p50 at c=8 within 3x the queue floor's round trip: "
            f"{target['e2e_p50_over_queue_floor_c1_p50']:.1f}x the uncontended round trip, "
            f"{target['e2e_p50_over_queue_floor_p50']:.1f}x the round trip at c=8 -> "
            f"{'MET' if met else 'NOT MET'}"
        )
    print("where the time goes (p50 / p95 ms of each segment, e2e requests joined with their Job rows):")
    for row in report["breakdown"]:
        parts = "  ".join(
            f"{name} {fmt_ms(seg.get('p50', 0))}/{fmt_ms(seg.get('p95', 0))}"
            for name, seg in row["segments"].items()
        )
        print(f"  c={row['concurrency']:<3} {parts}")
    print("CPU ms per call, by process (e2e):")
    for row in e2e:
        parts = ", ".join(f"{k} {v:.1f}" for k, v in row["cpu_ms_per_call"].items())
        print(f"  c={row['concurrency']:<3} {parts}")


if __name__ == "__main__":
    main()
