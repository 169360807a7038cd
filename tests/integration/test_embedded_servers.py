"""Where no Redis or Postgres answers, `make run` and the tests embed real ones."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
import redis

from infra.local import dependencies

NOBODY_LISTENS = 1  # a port no server is on


def test_embedded_redis_when_none_is_reachable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    url, stop = dependencies.redis_url(tmp_path, database=0, port=NOBODY_LISTENS)
    assert stop is not None and url.startswith("unix://")
    try:
        client = redis.Redis.from_url(url)
        assert client.ping()
        assert client.info("server")["redis_version"].startswith("6.2")
    finally:
        stop()


def test_embedded_postgres_when_none_is_reachable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    url, stop = dependencies.postgres_url(tmp_path, "gpucloud_embedded", port=NOBODY_LISTENS)
    assert stop is not None
    try:
        with psycopg.connect(url) as connection:
            assert connection.execute("SELECT current_database()").fetchone() == ("gpucloud_embedded",)
            assert connection.info.server_version >= 160000
    finally:
        stop()
