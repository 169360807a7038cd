"""The HTTP edge: admin authentication and OpenAI-shaped errors, in one place."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable

from chalice.app import Request, Response

from chalicelib.errors import AdminUnauthorized, GpuCloudError, openai_shape_of_chalice_error
from chalicelib.keys import bearer_token
from chalicelib.settings import get_settings

log = logging.getLogger(__name__)

ADMIN_PREFIX = "/api/"


def require_admin(authorization: str | None, admin_token: str) -> None:
    token = bearer_token(authorization)
    if not admin_token:
        raise AdminUnauthorized("No admin token is configured on this deployment; set ADMIN_TOKEN.")
    if token is None:
        raise AdminUnauthorized(
            "This endpoint needs the admin token: send 'Authorization: Bearer <admin token>'."
        )
    if not hmac.compare_digest(token.encode(), admin_token.encode()):
        raise AdminUnauthorized("The admin token is not correct.")


def edge_middleware(event: Request, get_response: Callable[[Request], Response]) -> Response:
    """Authenticate admin routes, then render every error as OpenAI does."""
    try:
        if event.path.startswith(ADMIN_PREFIX):
            require_admin(event.headers.get("authorization"), get_settings().admin_token)
        response = get_response(event)
    except GpuCloudError as exc:
        headers: dict[str, str | list[str]] = {**exc.headers}
        return Response(body=exc.body(), status_code=exc.status, headers=headers)
    except Exception:  # noqa: BLE001 - the client gets a clean 500, the log the trace
        log.exception("unhandled error on %s %s", event.method, event.path)
        return Response(
            body=GpuCloudError(
                "The server had an error while processing your request. Retry, and tell the "
                "operator if it keeps happening."
            ).body(),
            status_code=500,
        )
    if response.status_code >= 400:
        shaped = openai_shape_of_chalice_error(response.status_code, response.body)
        if shaped is not None:
            response.body = shaped
            response.headers["Content-Type"] = "application/json"
    return response
