"""GET /health names the dependency that is down."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from chalice.test import Client

from chalicelib.health import health_report
from chalicelib.services import Services


def test_health_is_200_when_every_dependency_answers(client: Client) -> None:
    response = client.http.get("/health")
    assert response.status_code == 200
    body = response.json_body
    assert body["status"] == "ok"
    assert {name: check["status"] for name, check in body["checks"].items()} == {
        "sqs": "ok",
        "dynamodb": "ok",
        "redis": "ok",
        "postgres": "ok",
    }
    assert body["checks"]["sqs"]["dlq_depth"] >= 0


def test_health_is_503_naming_redis_and_postgres_when_they_are_unreachable(services: Any) -> None:
    broken = Services(
        replace(
            services.settings,
            redis_url="redis://127.0.0.1:1/0",
            database_url="postgresql://postgres@127.0.0.1:1/postgres",
        )
    )
    status, body = health_report(broken)
    assert status == 503
    assert body["checks"]["redis"]["status"] == "down"
    assert body["checks"]["postgres"]["status"] == "down"
    assert body["checks"]["dynamodb"]["status"] == "ok"
    assert "redis" in body["error"]["message"] and "postgres" in body["error"]["message"]
    assert body["error"]["code"] == "service_unavailable"
