"""GET /health: the API and each dependency it needs, checked for real."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from chalicelib.errors import error_body
from chalicelib.models import DeploymentRecord
from chalicelib.services import Services


def _check(probe: Callable[[], dict[str, Any] | None]) -> dict[str, Any]:
    began = time.perf_counter()
    try:
        details = probe() or {}
        status: dict[str, Any] = {"status": "ok", **details}
    except Exception as exc:  # noqa: BLE001 - any failure means "down"
        status = {"status": "down", "error": exc.__class__.__name__}
    status["latency_ms"] = round((time.perf_counter() - began) * 1000, 1)
    return status


def _sqs(services: Services) -> dict[str, Any]:
    depth = {}
    for label, name in (("queue_depth", None), ("dlq_depth", services.dlq_name)):
        attributes = services.sqs.get_queue_attributes(
            QueueUrl=services.queue_url(name), AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        depth[label] = int(attributes["ApproximateNumberOfMessages"])
    return depth


def _dynamodb() -> None:
    DeploymentRecord.count(limit=1)


def _redis(services: Services) -> None:
    services.redis.ping()


def _postgres(services: Services) -> None:
    services.postgres().execute("SELECT 1")


def health_report(services: Services) -> tuple[int, dict[str, Any]]:
    checks = {
        "sqs": _check(lambda: _sqs(services)),
        "dynamodb": _check(lambda: _dynamodb()),
        "redis": _check(lambda: _redis(services)),
        "postgres": _check(lambda: _postgres(services)),
    }
    down = [name for name, check in checks.items() if check["status"] != "ok"]
    body: dict[str, Any] = {"status": "ok" if not down else "unavailable", "checks": checks}
    if not down:
        return 200, body
    body.update(
        error_body(
            f"Unavailable dependencies: {', '.join(down)}.", "server_error", None, "service_unavailable"
        )
    )
    return 503, body
