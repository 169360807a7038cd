"""`make run`'s stack: SIGTERM stops everything it started, cleanly."""

from __future__ import annotations

import os

import httpx

from infra.local.launcher import start_stack
from tests.conftest import OUTPUT, TEST_STATE


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie has exited but not been reaped yet: it is not running.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_sigterm_stops_the_stack_and_every_process_it_started() -> None:
    running = start_stack(TEST_STATE / "lifecycle", OUTPUT / "lifecycle.log", WORKERS="2")
    children = [int(pid) for pid in running.state["child_pids"]]  # type: ignore[attr-defined]
    assert len(children) == 3  # the emulator and two pollers
    assert httpx.get(f"{running.api_url}/health").status_code == 200
    assert running.stop() == 0
    assert not [pid for pid in children if _alive(pid)]
    assert "GPU Cloud stopped." in (OUTPUT / "lifecycle.log").read_text()
