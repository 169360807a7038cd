"""What every benchmark shares: statistics, the machine, results on disk, stacks, keys.

Results are written as JSON under `.local/bench/` (ignored by git) so that
`docs/PERFORMANCE.md` and the latency plot can be regenerated from a run.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / ".local" / "bench"
STATE = ROOT / ".local" / "bench-state"
# Redis databases of our own: `make run` uses 0, the tests 1.
STACK_REDIS_DB = 3
INPROCESS_REDIS_DB = 4
BENCH_DATABASE = "gpucloud_bench"
MODEL = "gpt-3.5-turbo"
MESSAGES: list[dict[str, str]] = [{"role": "user", "content": "benchmark"}]
# High enough that the rate limiter never refuses a benchmark request.
UNLIMITED = {"rate_limit_rpm": 1_000_000, "rate_limit_tpm": 1_000_000_000}


# ---- statistics ---------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..1) of a non-empty list."""
    ordered = sorted(values)
    return ordered[min(int(round(q * (len(ordered) - 1))), len(ordered) - 1)]


def summary(values: list[float]) -> dict[str, float]:
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "mean": sum(values) / len(values),
        "min": min(values),
        "p50": percentile(values, 0.50),
        "p95": percentile(values, 0.95),
        "p99": percentile(values, 0.99),
        "max": max(values),
    }


def fmt_ms(value: float) -> str:
    return f"{value:.1f}" if value < 100 else f"{value:.0f}"


# ---- the machine --------------------------------------------------------------


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def machine() -> dict[str, Any]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in _read("/proc/cpuinfo").splitlines()
            if "model name" in line
        ),
        platform.processor() or platform.machine(),
    )
    mem_kb = next(
        (int(line.split()[1]) for line in _read("/proc/meminfo").splitlines() if line.startswith("MemTotal")),
        0,
    )
    commit = _git("rev-parse", "--short", "HEAD")
    dirty = bool(_git("status", "--porcelain", "--untracked-files=no"))
    return {
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "memory_gb": round(mem_kb / 1024 / 1024, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "commit": commit + ("+dirty" if dirty else ""),
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
    }


def _git(*args: str) -> str:
    # Read-only queries: the working tree is shared, git state is never changed here.
    try:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10, check=False
        ).stdout.strip()
    except OSError:
        return ""


def print_machine(info: dict[str, Any]) -> None:
    print(
        f"machine: {info['cpus']} x {info['cpu']}, {info['memory_gb']} GB, {info['os']}, "
        f"{info['python']}, commit {info['commit']}"
    )


# ---- results on disk ----------------------------------------------------------


def save(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
    return path


def load(name: str) -> dict[str, Any] | None:
    path = RESULTS / f"{name}.json"
    if not path.exists():
        return None
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


def command_line() -> str:
    return " ".join([".venv/bin/python", "-m", "bench", *sys.argv[1:]])


# ---- the local stack ----------------------------------------------------------


def stack_redis_url(database: int = STACK_REDIS_DB) -> str:
    from infra.local import dependencies

    url, _ = dependencies.redis_url(STATE, database=database)
    return url


@dataclass
class Stack:
    """A local stack started for a benchmark (by the project's launcher or, with
    an emulator of the benchmark's own, the same way without the endpoint reset)."""

    api_url: str
    admin_token: str
    state: dict[str, Any]
    stop: Callable[[], object]
    workers: int
    extra_stops: list[Callable[[], None]] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"{self.api_url}/v1"

    def pids(self) -> dict[str, list[int]]:
        """The stack's processes by role (children listed by the stack itself)."""
        children = [int(p) for p in self.state.get("child_pids", [])]
        pollers = children[-self.workers :] if self.workers else []
        return {
            "api (gateway + Chalice app)": [int(self.state["pid"])],
            "emulator (moto server)": [p for p in children if p not in pollers] + self._own_emulator(),
            "workers (SQS pollers)": pollers,
        }

    def _own_emulator(self) -> list[int]:
        pid = self.state.get("bench_emulator_pid")
        return [int(pid)] if pid else []

    def close(self) -> None:
        try:
            self.stop()
        finally:
            for extra in self.extra_stops:
                extra()


VARIANTS = {
    # name: emulator module; "stock" is the stack exactly as `make run` starts it.
    "moto-as-shipped": "moto.server",
    "fast-emulator": "infra.local.moto_server",
}


def start_stack(name: str, workers: int, variant: str = "stock", **env: str) -> Stack:
    """Start the whole local stack as `make run` does, in a subprocess.

    `stock` is `infra.local.launcher.start_stack` itself (the stack starts its
    own emulator, moto with infra/local/moto_server.py's fixes). The other
    variants start an emulator of the benchmark's own (`AWS_ENDPOINT_URL`,
    which the stack supports), e.g. moto as shipped, to compare.
    """
    from infra.local import launcher

    state_dir = STATE / name
    log_path = RESULTS / f"{name}.stack.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    if log_path.exists():
        log_path.unlink()
    base_env = {
        "WORKERS": str(workers),
        "REDIS_URL": stack_redis_url(),
        "LOCAL_DATABASE": BENCH_DATABASE,
        "LOG_LEVEL": "WARNING",
        **env,
    }
    if variant == "stock":
        running = launcher.start_stack(state_dir, log_path, timeout=90, **base_env)
        return Stack(running.api_url, running.admin_token, running.state, running.stop, workers)
    from infra.local.emulator import MotoServer

    emulator = MotoServer(module=VARIANTS[variant]).start()
    try:
        running = launcher.start_stack(
            state_dir,
            log_path,
            timeout=90,
            AWS_ENDPOINT_URL=emulator.url,
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",  # noqa: S106 - emulator only
            **base_env,
        )
    except BaseException:
        emulator.stop()
        raise
    stack = Stack(running.api_url, running.admin_token, running.state, running.stop, workers)
    stack.extra_stops.append(emulator.stop)
    assert emulator.process is not None
    stack.state["bench_emulator_pid"] = emulator.process.pid
    return stack


def admin_client(stack: Stack) -> httpx.Client:
    return httpx.Client(
        base_url=stack.api_url, headers={"Authorization": f"Bearer {stack.admin_token}"}, timeout=60
    )


def create_key(admin: httpx.Client, name: str) -> dict[str, Any]:
    response = admin.post("/api/keys", json={"name": name, **UNLIMITED})
    response.raise_for_status()
    created: dict[str, Any] = response.json()
    return created


# ---- process CPU (Linux /proc) --------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def process_cpu_seconds(pid: int) -> float:
    """user + system CPU seconds of a process (0 if it is gone or not Linux)."""
    raw = _read(f"/proc/{pid}/stat")
    if not raw:
        return 0.0
    fields = raw.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def redis_server_pid(url: str) -> int | None:
    import redis

    try:
        info = redis.Redis.from_url(url, socket_connect_timeout=1).info("server")
        return int(info["process_id"])
    except (redis.RedisError, KeyError, ValueError):
        return None


def system_busy_seconds() -> float:
    """CPU seconds the whole machine spent busy (all CPUs, /proc/stat), 0 if unknown."""
    first = _read("/proc/stat").splitlines()[:1]
    if not first:
        return 0.0
    ticks = [int(v) for v in first[0].split()[1:]]
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)
    return (sum(ticks[:8]) - idle) / _TICK


def load_average() -> float:
    raw = _read("/proc/loadavg").split()
    return float(raw[0]) if raw else 0.0


OTHERS = "other processes on the machine"


@contextmanager
def cpu_meter(groups: dict[str, list[int]]) -> Iterator[dict[str, float]]:
    """CPU seconds used by each group of processes while the block runs, and by
    everything else on the machine (the machine is shared: say how much)."""
    before = {name: sum(process_cpu_seconds(p) for p in pids) for name, pids in groups.items()}
    busy_before = system_busy_seconds()
    out: dict[str, float] = {}
    try:
        yield out
    finally:
        for name, pids in groups.items():
            out[name] = sum(process_cpu_seconds(p) for p in pids) - before[name]
        busy = system_busy_seconds() - busy_before
        out[OTHERS] = max(busy - sum(out.values()), 0.0)


def heading(title: str) -> None:
    print()
    print(f"== {title} " + "=" * max(0, 74 - len(title)))


def emulator_client(service: str, endpoint: str) -> Any:
    import boto3

    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def stack_tables(endpoint: str) -> dict[str, str]:
    """The stack's table and queue names, from the emulator's CloudFormation stack outputs."""
    from infra.local import emulator

    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")):
        os.environ.setdefault(name, value)
    return emulator.environment_from_outputs(emulator.deploy(endpoint, "us-east-1"))
