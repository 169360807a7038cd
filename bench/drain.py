"""Backlog drain: 2,000 async jobs submitted at once, drained by the worker pollers; vs 20.

The stack is started as `make run` starts it. Its worker pollers are paused
(SIGSTOP) while the jobs are submitted (POST /v1/chat/completions with
`X-GPUCloud-Async: true`, answered 202), so the backlog is really all there at
once; then they are resumed (SIGCONT) and the clock starts. Progress is the
key's committed `request_count` (the counter the worker adds to in the
transaction that ends each job, read from the emulator every few ms), the
queue depth comes from GET /health (`checks.sqs.queue_depth`); afterwards each
job's `finished_at` (the Job rows) gives the drain curve: the rate at each
depth of the queue.

Variants: `stock` is the stack as `make run` starts it; `fast-emulator` runs
the same stack against moto with the fix this benchmark proposes
(infra/local/moto_server.py), to show where the time goes. The drain of 2,000 is
capped (`--cap`, default 300 s); a drain that does not finish reports its
partial progress.

Run: `.venv/bin/python -m bench drain [--jobs 2000] [--small 20] [--workers 2]
[--variants stock,fast-emulator] [--cap 300]`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import httpx

from bench.common import (
    MESSAGES,
    MODEL,
    ROOT,
    Stack,
    admin_client,
    command_line,
    create_key,
    emulator_client,
    heading,
    load_average,
    machine,
    print_machine,
    save,
    stack_tables,
    start_stack,
    summary,
)

ASYNC = {"X-GPUCloud-Async": "true"}


@contextmanager
def paused(pids: list[int]) -> Any:
    """Stop the pollers (they finish nothing until resumed); always resume them."""
    state = {"resumed": False}

    def resume() -> float:
        if not state["resumed"]:
            for pid in pids:
                os.kill(pid, signal.SIGCONT)
            state["resumed"] = True
        return time.time()

    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield resume
    finally:
        resume()


def submit(stack: Stack, key: str, count: int, threads: int, cap_s: float) -> dict[str, Any]:
    """POST `count` async chat completions from `threads` clients; bounded by `cap_s`."""
    body = json.dumps({"model": MODEL, "messages": MESSAGES})
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json", **ASYNC}
    job_ids: list[str] = []
    latencies: list[tuple[int, float]] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    next_index = iter(range(count))
    deadline = time.monotonic() + cap_s

    def run() -> None:
        with httpx.Client(base_url=stack.base_url, timeout=60) as client:
            while time.monotonic() < deadline:
                with lock:
                    index = next(next_index, None)
                if index is None:
                    return
                began = time.perf_counter()
                response = client.post("/chat/completions", content=body, headers=headers)
                elapsed = (time.perf_counter() - began) * 1000
                with lock:
                    statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                    latencies.append((index, elapsed))
                    if response.status_code == 202:
                        job_ids.append(response.json()["id"])

    began = time.perf_counter()
    workers = [threading.Thread(target=run, daemon=True) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    seconds = time.perf_counter() - began
    latencies.sort()
    tenth = max(len(latencies) // 10, 1)
    return {
        "requested": count,
        "accepted": len(job_ids),
        "statuses": statuses,
        "seconds": seconds,
        "rate_per_s": len(job_ids) / seconds if seconds else 0.0,
        "latency_ms": summary([ms for _, ms in latencies]),
        "latency_first_tenth_ms": summary([ms for _, ms in latencies[:tenth]]),
        "latency_last_tenth_ms": summary([ms for _, ms in latencies[-tenth:]]),
        "capped": len(latencies) < count,
        "job_ids": job_ids,
    }


def queue_depth(client: httpx.Client) -> int | None:
    try:
        body = client.get("/health", timeout=30).json()
        return int(body["checks"]["sqs"]["queue_depth"])
    except (httpx.HTTPError, KeyError, ValueError, TypeError):
        return None


class UsageProbe:
    """The key's committed request count, read straight from the emulator (a GetItem).

    The worker adds usage in the same transaction that ends the job, so this
    counts jobs really done; reading it through the API would add the HTTP
    front's own latency to every probe.
    """

    def __init__(self, stack: Stack, secret: str) -> None:
        endpoint = str(stack.state["aws_endpoint_url"])
        self.table = stack_tables(endpoint)["API_KEYS_TABLE"]
        self.key = {"key_hash": {"S": hashlib.sha256(secret.encode()).hexdigest()}}
        self.client = emulator_client("dynamodb", endpoint)

    def count(self) -> int:
        item = self.client.get_item(TableName=self.table, Key=self.key, ConsistentRead=True)["Item"]
        return int(item.get("request_count", {}).get("N", "0"))


def finished_times(stack: Stack, job_ids: list[str]) -> dict[str, float]:
    """Each job's finished_at (epoch seconds), from the Job rows in the emulator."""
    endpoint = str(stack.state["aws_endpoint_url"])
    table = stack_tables(endpoint)["JOBS_TABLE"]
    dynamodb = emulator_client("dynamodb", endpoint)
    wanted = set(job_ids)
    out: dict[str, float] = {}
    for page in dynamodb.get_paginator("scan").paginate(
        TableName=table,
        ProjectionExpression="job_id, finished_at, #s",
        ExpressionAttributeNames={"#s": "status"},
    ):
        for item in page["Items"]:
            job_id = item["job_id"]["S"]
            if job_id in wanted and "finished_at" in item:
                out[job_id] = datetime.strptime(
                    item["finished_at"]["S"], "%Y-%m-%dT%H:%M:%S.%f%z"
                ).timestamp()
    return out


def drain_curve(started: float, finished: list[float], total: int, windows: int = 10) -> list[dict[str, Any]]:
    """Drain rate in `windows` equal slices of the backlog, with the depth each began at."""
    finished = sorted(finished)
    if not finished:
        return []
    size = max(total // windows, 1)
    rows = []
    previous_time = started
    for index in range(0, len(finished), size):
        chunk = finished[index : index + size]
        elapsed = chunk[-1] - previous_time
        rows.append(
            {
                "depth_from": total - index,
                "depth_to": total - index - len(chunk),
                "seconds": elapsed,
                "rate_per_s": len(chunk) / elapsed if elapsed > 0 else float("inf"),
            }
        )
        previous_time = chunk[-1]
    return rows


def backlog(
    stack: Stack, admin: httpx.Client, key: dict[str, Any], size: int, args: argparse.Namespace
) -> dict[str, Any]:
    pollers = stack.pids()["workers (SQS pollers)"]
    probe = UsageProbe(stack, key["key"])
    baseline = probe.count()
    with paused(pollers) as resume:
        submitted = submit(stack, key["key"], size, args.concurrency, args.submit_cap)
        depth_before = queue_depth(admin)
        started = resume()
    accepted = submitted["accepted"]
    cap = args.cap if size > 100 else 60.0
    interval = 0.2 if size > 100 else 0.005
    progress: list[tuple[float, int, int | None]] = []
    done = 0
    last_depth_probe = 0.0
    last_print = 0.0
    ended = started
    while True:
        now = time.time()
        done = probe.count() - baseline
        ended = time.time()
        depth = None
        if size > 100 and now - last_depth_probe >= 5:
            depth = queue_depth(admin)
            last_depth_probe = now
        progress.append((now - started, done, depth))
        if depth is not None and now - last_print >= 30:
            print(
                f"    t={now - started:5.0f} s  completed {done:5d}/{accepted}  queue depth {depth}",
                flush=True,
            )
            last_print = now
        if done >= accepted or now - started > cap:
            break
        time.sleep(interval)
    finished = finished_times(stack, submitted["job_ids"])
    times = sorted(finished.values())
    # Done = the last job's usage committed (the probe saw it), not its model's end.
    drain_s = ended - started
    return {
        "size": size,
        "submit": {k: v for k, v in submitted.items() if k != "job_ids"},
        "queue_depth_before": depth_before,
        "completed": done,
        "finished": done >= accepted,
        "drain_seconds": drain_s,
        "drain_rate_per_s": done / drain_s if drain_s > 0 else 0.0,
        "first_completion_s": (times[0] - started) if times else None,
        "curve": drain_curve(started, times, accepted),
        "progress": progress,
        "load_average_1m": load_average(),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench drain")
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--small", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=16, help="clients submitting the backlog")
    parser.add_argument("--variants", default="stock,moto-as-shipped")
    parser.add_argument("--cap", type=float, default=300.0, help="seconds the big drain may take")
    parser.add_argument("--submit-cap", type=float, default=180.0, help="seconds the submission may take")
    parser.add_argument(
        "--no-hotspots", dest="hotspots", action="store_false", help="skip the per-call emulator costs"
    )
    args = parser.parse_args(argv)
    info = machine()
    heading(f"drain: {args.jobs} and {args.small} async jobs, {args.workers} worker pollers")
    print_machine(info)
    report: dict[str, Any] = {
        "machine": info,
        "command": command_line(),
        "workers": args.workers,
        "variants": {},
    }
    for variant in args.variants.split(","):
        print(f"variant {variant}:", flush=True)
        stack = start_stack(f"drain-{variant}", workers=args.workers, variant=variant)
        try:
            with admin_client(stack) as admin:
                key = create_key(admin, f"bench-drain-{variant}")
                with httpx.Client(base_url=stack.base_url, timeout=60) as warm:
                    for _ in range(6):  # both pollers warm (imported, clients built)
                        warm.post(
                            "/chat/completions",
                            json={"model": MODEL, "messages": MESSAGES},
                            headers={"Authorization": f"Bearer {key['key']}"},
                        )
                time.sleep(1.5)
                results: dict[str, Any] = {}
                report["variants"][variant] = results
                for size in (args.small, args.jobs):
                    print(f"  backlog of {size}:", flush=True)
                    results[str(size)] = row = backlog(stack, admin, key, size, args)
                    print_row(row)
        except Exception as exc:  # a stack that died mid-run: report what was measured
            print(f"  variant {variant} interrupted: {exc.__class__.__name__}: {exc}", flush=True)
            report.setdefault("errors", {})[variant] = f"{exc.__class__.__name__}: {exc}"
        finally:
            stack.close()
    if args.hotspots:
        report["emulator_hotspots"] = emulator_hotspots(args.jobs)
    print_summary(report, args)
    save("drain", report)
    return report


def emulator_hotspots(depth: int) -> dict[str, Any]:
    """Per-call emulator cost at this depth, as shipped and patched (fresh interpreters)."""
    out = {}
    for label, extra in (("moto as shipped", []), ("patched (infra/local/moto_server.py)", ["--patched"])):
        result = subprocess.run(
            [sys.executable, "-m", "bench.emulator_hotspots", "--depth", str(depth), *extra],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        out[label] = (
            json.loads(result.stdout)["ms"] if result.returncode == 0 else {"error": result.stderr[-500:]}
        )
    return out


def print_row(row: dict[str, Any]) -> None:
    sub = row["submit"]
    print(
        f"    submitted {sub['accepted']}/{sub['requested']} (202) in {sub['seconds']:.1f} s = "
        f"{sub['rate_per_s']:.0f}/s; POST latency p50 first tenth "
        f"{sub['latency_first_tenth_ms'].get('p50', 0):.0f} ms, "
        f"last tenth {sub['latency_last_tenth_ms'].get('p50', 0):.0f} ms; statuses {sub['statuses']}"
    )
    state = "drained" if row["finished"] else f"NOT drained (cap): {row['completed']} done"
    print(
        f"    {state} in {row['drain_seconds']:.1f} s = {row['drain_rate_per_s']:.1f} jobs/s "
        f"(first completion after {row['first_completion_s'] or 0:.2f} s, queue depth at start "
        f"{row['queue_depth_before']})"
    )
    if row["size"] > 100 and len(row["curve"]) > 2:
        print(
            "    rate by queue depth: "
            + ", ".join(f"{c['depth_from']}->{c['depth_to']}: {c['rate_per_s']:.0f}/s" for c in row["curve"])
        )


def print_summary(report: dict[str, Any], args: argparse.Namespace) -> None:
    hotspots = report.get("emulator_hotspots")
    if hotspots:
        print(
            f"the emulator's own cost per call at depth / table size {args.jobs} (in-process moto, median):"
        )
        for label, figures in hotspots.items():
            print(
                f"  {label}: " + ", ".join(f"{k} {v:.1f}" for k, v in figures.items() if isinstance(v, float))
            )
    print("summary (jobs per second drained):")
    for variant, results in report["variants"].items():
        if str(args.jobs) not in results or str(args.small) not in results:
            print(f"  {variant:<14} incomplete: {report.get('errors', {}).get(variant, '?')}")
            continue
        big, small = results[str(args.jobs)], results[str(args.small)]
        ratio = big["drain_rate_per_s"] / small["drain_rate_per_s"] if small["drain_rate_per_s"] else 0.0
        print(
            f"  {variant:<14} {args.small} jobs: {small['drain_rate_per_s']:6.1f}/s   {args.jobs} jobs: "
            f"{big['drain_rate_per_s']:6.1f}/s{'' if big['finished'] else ' (partial)'}   ratio {ratio:.2f}"
        )


if __name__ == "__main__":
    main()
