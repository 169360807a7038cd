"""`make dlq` / `make redrive`: the DLQ of a running local stack, from the shell.

Usage: python -m infra.local.dlq_cli list|redrive
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import httpx

STATE = Path(__file__).resolve().parents[2] / ".local"


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "list"
    if command not in {"list", "redrive"}:
        print(__doc__)
        return 2
    try:
        stack = json.loads((STATE / "stack.json").read_text())
        token = (STATE / "admin_token").read_text().strip()
    except FileNotFoundError:
        print("No running local stack found (.local/stack.json): start it with `make run`.")
        return 1
    headers = {"Authorization": f"Bearer {token}"}
    url = stack["api_url"] + ("/api/dlq" if command == "list" else "/api/dlq/redrive")
    response = httpx.request("GET" if command == "list" else "POST", url, headers=headers, timeout=120)
    print(json.dumps(response.json(), indent=2))
    return 0 if response.status_code < 400 else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
