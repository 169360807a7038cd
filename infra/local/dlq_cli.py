"""`make dlq` / `make redrive`: the DLQ of a running local stack, from the shell.

Usage: python -m infra.local.dlq_cli list|redrive
"""

from __future__ import annotations

import json
import sys

import httpx

from infra.local.state import running_stack, state_dir


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "list"
    if command not in {"list", "redrive"}:
        print(__doc__)
        return 2
    try:
        api_url, admin = running_stack()
    except (OSError, ValueError, KeyError) as exc:
        print(f"No local stack state in {state_dir()} ({exc}); start it with `make run`.", file=sys.stderr)
        return 1
    url = api_url + ("/api/dlq" if command == "list" else "/api/dlq/redrive")
    response = httpx.request("GET" if command == "list" else "POST", url, headers=admin, timeout=120)
    print(json.dumps(response.json(), indent=2))
    return 0 if response.status_code < 400 else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
