"""Soak: several clients and keys, mixed plain/streaming/async traffic, then an audit.

Run: `.venv/bin/python -m bench.soak --seconds 180 --clients 6 --keys 4`

Afterwards every accepted request must be accounted for (a result, or a failed
job with a reason), the request log (Job rows), the hourly counters and the
key totals must agree, no job may be left queued or running, and the RSS of
the API and worker processes is printed at start and end. Loopback only,
bounded in time.
"""

from __future__ import annotations

import argparse
import collections
import json
import random
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import httpx
import openai

from chalicelib.backends.simulated import FAILURE_TRIGGER
from infra.local.launcher import RunningStack, start_stack

MODEL = "gpt-3.5-turbo"


@dataclass
class Ledger:
    """What the clients saw: accepted job ids per key, and errors by kind."""

    accepted: dict[str, set[str]] = field(default_factory=lambda: collections.defaultdict(set))
    errors: collections.Counter[str] = field(default_factory=collections.Counter)
    modes: collections.Counter[str] = field(default_factory=collections.Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def accept(self, key_id: str, job_id: str, mode: str) -> None:
        with self.lock:
            self.accepted[key_id].add(job_id)
            self.modes[mode] += 1

    def error(self, kind: str) -> None:
        with self.lock:
            self.errors[kind] += 1


def worker_pids(stack_pid: int) -> list[int]:
    """The stack's poller processes now (a poller that died was replaced)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            command = (stat.parent / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if parent == stack_pid and b"spawn_main" in command:
            found.append(int(stat.parent.name))
    return sorted(found)


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _client_loop(
    stack: RunningStack, keys: list[dict[str, Any]], ledger: Ledger, deadline: float, seed: int
) -> None:
    rng = random.Random(seed)
    while time.monotonic() < deadline:
        key = rng.choice(keys)
        sdk = openai.OpenAI(base_url=stack.base_url, api_key=key["key"], max_retries=0)
        mode = rng.choices(["plain", "stream", "async", "poison"], weights=[45, 30, 24, 1])[0]
        content = f"soak {rng.random()}" + (f" {FAILURE_TRIGGER}" if mode == "poison" else "")
        messages: Any = [{"role": "user", "content": content}]
        try:
            if mode == "plain":
                completion = sdk.chat.completions.create(model=MODEL, messages=messages, max_tokens=32)
                ledger.accept(key["id"], completion.id.removeprefix("chatcmpl-"), mode)
            elif mode == "stream":
                chunks = list(sdk.chat.completions.create(model=MODEL, messages=messages, stream=True))
                ledger.accept(key["id"], chunks[0].id.removeprefix("chatcmpl-"), mode)
            elif mode == "async":
                response = httpx.post(
                    f"{stack.base_url}/chat/completions",
                    headers={"Authorization": f"Bearer {key['key']}", "X-GPUCloud-Async": "true"},
                    json={"model": MODEL, "messages": messages},
                    timeout=30,
                )
                if response.status_code != 202:
                    ledger.error(f"async HTTP {response.status_code}")
                    continue
                job_id = response.json()["id"]
                ledger.accept(key["id"], job_id, mode)
            else:
                sdk.chat.completions.create(model=MODEL, messages=messages)
                ledger.error("poison answered 200")
        except openai.InternalServerError as exc:
            job_id = exc.response.headers.get("x-gpucloud-job-id")
            if job_id:
                ledger.accept(key["id"], job_id, mode)
            ledger.error(f"{mode}: HTTP {exc.status_code} {exc.code}")
        except openai.APIStatusError as exc:
            ledger.error(f"{mode}: HTTP {exc.status_code} {exc.code}")
        except openai.APIConnectionError:
            ledger.error(f"{mode}: connection error")


def _wait_all(stack: RunningStack, keys: list[dict[str, Any]], ledger: Ledger, timeout: float) -> int:
    """Wait for every accepted job to end (async ones, and poisoned ones still
    being retried after their client got a 504); return how many did not."""
    secret = {key["id"]: key["key"] for key in keys}
    pending = [(secret[key_id], job_id) for key_id, ids in ledger.accepted.items() for job_id in ids]
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=stack.base_url, timeout=30) as client:
        while pending and time.monotonic() < deadline:
            still = []
            for key, job_id in pending:
                status = client.get(f"/jobs/{job_id}", headers={"Authorization": f"Bearer {key}"}).json()[
                    "status"
                ]
                if status in ("queued", "running"):
                    still.append((key, job_id))
            pending = still
            if pending:
                time.sleep(0.5)
    return len(pending)


def audit(stack: RunningStack, admin: httpx.Client, ledger: Ledger) -> dict[str, Any]:
    """Compare what clients saw with the request log, the counters and the key totals."""
    endpoint = str(stack.state["aws_endpoint_url"])
    # The stack's own emulator: any credentials do.
    dynamodb = boto3.resource(
        "dynamodb",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106 - emulator only
    )
    jobs: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
    for page in dynamodb.meta.client.get_paginator("scan").paginate(TableName="gpucloud-jobs"):
        for item in page["Items"]:
            jobs[item["key_id"]].append({"id": item["job_id"], "status": item["status"]})
    counters: collections.Counter[str] = collections.Counter()
    for page in dynamodb.meta.client.get_paginator("scan").paginate(TableName="gpucloud-usage"):
        for item in page["Items"]:
            counters[item["key_model"].split("#")[0]] += int(item.get("requests", 0))
    totals = {k["id"]: k["request_count"] for k in admin.get("/api/keys").json()["data"]}
    report: dict[str, Any] = {"keys": {}, "lost": 0, "stuck": 0}
    for key_id, accepted in ledger.accepted.items():
        rows = jobs.get(key_id, [])
        logged = {row["id"] for row in rows}
        lost = accepted - logged
        stuck = [row for row in rows if row["status"] in ("queued", "running")]
        report["lost"] += len(lost)
        report["stuck"] += len(stuck)
        report["keys"][key_id] = {
            "accepted": len(accepted),
            "request_log": len(rows),
            "counters": counters[key_id],
            "key_total": totals.get(key_id),
            "statuses": dict(collections.Counter(row["status"] for row in rows)),
        }
    return report


def soak(stack: RunningStack, seconds: float, clients: int, keys: int) -> dict[str, Any]:
    admin = httpx.Client(
        base_url=stack.api_url, headers={"Authorization": f"Bearer {stack.admin_token}"}, timeout=30
    )
    created = [
        admin.post(
            "/api/keys", json={"name": f"soak-{n}", "rate_limit_rpm": 100_000, "rate_limit_tpm": 100_000_000}
        ).json()
        for n in range(keys)
    ]
    api_pid = int(stack.state["pid"])  # type: ignore[call-overload]
    pids = {"api": api_pid}
    for n, pid in enumerate(worker_pids(api_pid)):
        pids[f"worker-{n}"] = pid
    ledger = Ledger()
    # Warm up (on a key of its own, left out of the audit) so the start RSS is
    # a running process's, not a fresh one's.
    warmup = admin.post("/api/keys", json={"name": "soak-warmup"}).json()
    _client_loop(stack, [warmup], Ledger(), time.monotonic() + 2, seed=-1)
    rss_start = {name: rss_kb(pid) for name, pid in pids.items()}
    began = time.monotonic()
    threads = [
        threading.Thread(target=_client_loop, args=(stack, created, ledger, began + seconds, seed))
        for seed in range(clients)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - began
    # A poisoned job is retried for up to maxReceiveCount x the visibility timeout.
    not_ended = _wait_all(stack, created, ledger, timeout=180)
    rss_end = {name: rss_kb(pid) for name, pid in pids.items()}
    report = audit(stack, admin, ledger)
    report.update(
        seconds=round(elapsed, 1),
        requests=sum(ledger.modes.values()),
        by_mode=dict(ledger.modes),
        errors=dict(ledger.errors),
        not_ended=not_ended,
        rss_kb_start=rss_start,
        rss_kb_end=rss_end,
    )
    return report


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=180)
    parser.add_argument("--clients", type=int, default=6)
    parser.add_argument("--keys", type=int, default=4)
    parser.add_argument("--workers", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as state:
        stack = start_stack(Path(state), Path(state) / "stack.log", WORKERS=str(args.workers))
        try:
            report = soak(stack, args.seconds, args.clients, args.keys)
        finally:
            stack.stop()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
