"""The usage API under /api: rollups, metrics and the request log (admin token, by the middleware)."""

from __future__ import annotations

from typing import Any

from chalice import Blueprint

from chalicelib import metrics, request_log, rollup
from chalicelib.http import admin_cors, guard
from chalicelib.services import get_services

metrics_api = Blueprint(__name__)
ADMIN_CORS = admin_cors()


@metrics_api.route("/api/rollups", methods=["POST"], content_types=["application/json"], cors=ADMIN_CORS)
@guard
def run_rollups() -> dict[str, Any]:
    return rollup.run_requested(metrics_api.current_request, get_services())


@metrics_api.route("/api/metrics", methods=["GET"], cors=ADMIN_CORS)
@guard
def get_metrics() -> dict[str, Any]:
    return metrics.usage_series(metrics_api.current_request, get_services())


@metrics_api.route("/api/metrics/summary", methods=["GET"], cors=ADMIN_CORS)
@guard
def get_metrics_summary() -> dict[str, Any]:
    return metrics.usage_summary(metrics_api.current_request, get_services())


@metrics_api.route("/api/requests", methods=["GET"], cors=ADMIN_CORS)
@guard
def list_requests() -> dict[str, Any]:
    return request_log.list_requests(metrics_api.current_request, get_services())
