"""GET /health: no authentication, for load balancers and operators."""

from __future__ import annotations

from chalice import Blueprint, Response

from chalicelib.health import health_report
from chalicelib.http import guard
from chalicelib.services import get_services

health_api = Blueprint(__name__)


@health_api.route("/health", methods=["GET"])
@guard
def health() -> Response:
    status, body = health_report(get_services())
    return Response(body=body, status_code=status)
