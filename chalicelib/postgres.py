"""Postgres access: versioned migrations (numbered SQL files, a table of applied ones)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import psycopg

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_MIGRATION_NAME = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")
# Any number works as long as every migrator uses the same one.
_MIGRATION_LOCK_ID = 7_411_902


def migration_files() -> list[tuple[int, Path]]:
    found = []
    for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
        match = _MIGRATION_NAME.match(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return found


def migrate(connection: psycopg.Connection[Any]) -> list[int]:
    """Apply the migrations not applied yet, each in its own transaction.

    An advisory lock serialises concurrent migrators (two stacks, a deploy
    and a test run), so each file runs exactly once.
    """
    applied_now = []
    with connection.transaction():
        connection.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK_ID,))
        connection.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY,"
            " name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        rows = connection.execute("SELECT version FROM schema_migrations").fetchall()
        applied = {row[0] for row in rows}
        for version, path in migration_files():
            if version in applied:
                continue
            connection.execute(path.read_text())
            connection.execute(
                "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                (version, path.name),
            )
            applied_now.append(version)
    return applied_now
