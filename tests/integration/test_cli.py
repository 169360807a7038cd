"""`make dlq`, `make redrive` and `make rollup` against a running stack, as a user types them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from infra.local.launcher import RunningStack
from tests.conftest import ROOT


def run_cli(stack: RunningStack, *args: str) -> tuple[int, str]:
    # As `make run` leaves it: the state directory, and the admin token the stack was started with.
    env = {**os.environ, "GPUCLOUD_STATE_DIR": str(stack.state_dir), "ADMIN_TOKEN": stack.admin_token}
    done = subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    return done.returncode, done.stdout + done.stderr


def test_the_dlq_and_rollup_commands_reach_the_running_stack(stack: RunningStack) -> None:
    code, out = run_cli(stack, "infra.local.dlq_cli", "list")
    assert code == 0, out
    assert json.loads(out)["object"] == "list"
    code, out = run_cli(stack, "infra.local.rollup_cli", "2025-01-01")
    assert code == 0, out
    assert [day["day"] for day in json.loads(out)["days"]] == ["2025-01-01"]


def test_without_a_stack_the_commands_say_how_to_start_one(tmp_path: Path) -> None:
    env = {**os.environ, "GPUCLOUD_STATE_DIR": str(tmp_path)}
    env.pop("ADMIN_TOKEN", None)
    for module in ("infra.local.dlq_cli", "infra.local.rollup_cli"):
        done = subprocess.run(
            [sys.executable, "-m", module], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 1 and "start it with `make run`" in done.stderr, module
