"""`make bench`: start the local stack and print latency figures.

Run: `make bench` (or `.venv/bin/python -m bench --requests 50`).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from pathlib import Path

import httpx
import openai

from infra.local.launcher import start_stack


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(round(q * (len(ordered) - 1))), len(ordered) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as state:
        stack = start_stack(Path(state), Path(state) / "stack.log", WORKERS="2")
        try:
            admin = httpx.Client(
                base_url=stack.api_url, headers={"Authorization": f"Bearer {stack.admin_token}"}
            )
            key = admin.post("/api/keys", json={"name": "bench"}).json()["key"]
            client = openai.OpenAI(base_url=stack.base_url, api_key=key)
            messages: list = [{"role": "user", "content": "benchmark"}]
            client.chat.completions.create(model="gpt-3.5-turbo", messages=messages)  # warm up
            latencies = []
            for _ in range(args.requests):
                began = time.perf_counter()
                client.chat.completions.create(model="gpt-3.5-turbo", messages=messages)
                latencies.append((time.perf_counter() - began) * 1000)
        finally:
            stack.stop()
    print(f"machine: {platform.machine()} {platform.python_implementation()} {platform.python_version()}")
    print(f"non-streaming completion through the local stack, sequential, n={args.requests}:")
    print(
        f"  median {statistics.median(latencies):.1f} ms  p95 {percentile(latencies, 0.95):.1f} ms"
        f"  min {min(latencies):.1f} ms  max {max(latencies):.1f} ms"
    )


if __name__ == "__main__":
    main()
