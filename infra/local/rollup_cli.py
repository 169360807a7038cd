"""`make rollup DAY=YYYY-MM-DD`: roll up a day now, on the running local stack.

Reads the stack's URL from `.local/stack.json` (written by `make run`) and the
admin token from `ADMIN_TOKEN` or `.local/admin_token`, then calls
`POST /api/rollups`. Without a day it rolls yesterday (UTC). Also takes a
range: `python -m infra.local.rollup_cli FROM TO`.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx

from infra.local.state import running_stack, state_dir

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_SECONDS = 900.0


def request_body(args: list[str], today: date) -> dict[str, str]:
    """The POST body for the command line's days (checked here for a clear message)."""
    days = [date.fromisoformat(arg).isoformat() for arg in args]
    if not days:
        return {"day": (today - timedelta(days=1)).isoformat()}
    if len(days) == 1:
        return {"day": days[0]}
    if len(days) == 2:
        return {"from": days[0], "to": days[1]}
    raise ValueError("give at most two days: DAY, or FROM TO")


def main(argv: list[str]) -> int:
    try:
        body = request_body(argv, datetime.now(UTC).date())
    except ValueError as exc:
        print(f"usage: make rollup DAY=YYYY-MM-DD ({exc})", file=sys.stderr)
        return 2
    try:
        api_url, admin = running_stack()
    except (OSError, ValueError, KeyError) as exc:
        print(f"No local stack state in {state_dir()} ({exc}); start it with `make run`.", file=sys.stderr)
        return 1
    try:
        response = httpx.post(
            f"{api_url}/api/rollups",
            json=body,
            headers=admin,
            timeout=TIMEOUT_SECONDS,
        )
    except httpx.HTTPError as exc:
        print(f"Cannot reach the stack at {api_url} ({exc}); is `make run` running?", file=sys.stderr)
        return 1
    try:
        print(json.dumps(response.json(), indent=2))
    except ValueError:
        print(response.text)
    return 0 if response.status_code == 200 else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
