"""Start the whole local stack as `make run` does, in a subprocess (tests, benchmarks)."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parents[2]
READY_MARK = "GPU Cloud is ready on "


@dataclass
class RunningStack:
    process: subprocess.Popen[str]
    api_url: str
    admin_token: str
    state: dict[str, object]
    log_path: Path
    state_dir: Path

    @property
    def base_url(self) -> str:
        return f"{self.api_url}/v1"

    def stop(self, timeout: float = 20) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def _pump(stream: IO[str], sink: IO[str], lines: queue.Queue[str]) -> None:
    for line in stream:
        sink.write(line)
        sink.flush()
        lines.put(line)


def start_stack(state_dir: Path, log_path: Path, timeout: float = 90, **env: str) -> RunningStack:
    state_dir.mkdir(parents=True, exist_ok=True)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    admin_token = env.pop("ADMIN_TOKEN", "stack-admin-token")
    inherited = dict(os.environ)
    # The stack picks its own emulator and table names unless the caller says otherwise.
    for name in ("AWS_ENDPOINT_URL", "JOBS_QUEUE_URL", "JOBS_DLQ_URL", "DATABASE_URL"):
        inherited.pop(name, None)
    child_env = {
        **inherited,
        "PORT": "0",
        "WORKERS": "2",
        "GPUCLOUD_STATE_DIR": str(state_dir),
        "LOCAL_DATABASE": "gpucloud_test",
        "ADMIN_TOKEN": admin_token,
        "PYTHONUNBUFFERED": "1",
        **env,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "infra.local"],
        cwd=ROOT,
        env=child_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    lines: queue.Queue[str] = queue.Queue()
    sink = log_path.open("w")
    threading.Thread(target=_pump, args=(process.stdout, sink, lines), daemon=True).start()
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or process.poll() is not None:
            process.kill()
            raise RuntimeError(f"the local stack did not become ready; see {log_path}")
        try:
            line = lines.get(timeout=min(remaining, 1.0))
        except queue.Empty:
            continue
        if READY_MARK in line:
            api_url = line.split(READY_MARK, 1)[1].split()[0]
            break
    state = json.loads((state_dir / "stack.json").read_text())
    return RunningStack(process, api_url, admin_token, state, log_path, state_dir)
