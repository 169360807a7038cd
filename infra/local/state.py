"""Where the local stack keeps its state (`.local/`), and how the command-line tools find it."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def state_dir() -> Path:
    return Path(os.environ.get("GPUCLOUD_STATE_DIR", ROOT / ".local"))


def admin_token(directory: Path, create: bool = False) -> str:
    """`ADMIN_TOKEN`, else the one `make run` keeps in the state directory (made there if `create`)."""
    if os.environ.get("ADMIN_TOKEN"):
        return os.environ["ADMIN_TOKEN"]
    token_file = directory / "admin_token"
    if token_file.exists() or not create:
        return token_file.read_text().strip()
    token = "gpcadmin_" + secrets.token_urlsafe(32)
    directory.mkdir(parents=True, exist_ok=True)
    token_file.write_text(token + "\n")
    token_file.chmod(0o600)
    return token


def running_stack() -> tuple[str, dict[str, str]]:
    """The running local stack's API URL and admin headers; OSError/ValueError/KeyError if there is none."""
    directory = state_dir()
    api_url: str = json.loads((directory / "stack.json").read_text())["api_url"]
    return api_url, {"Authorization": f"Bearer {admin_token(directory)}"}
