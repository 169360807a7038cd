"""The HTTP edge: admin authentication and OpenAI-shaped errors, in one place."""

from __future__ import annotations

import functools
import hmac
import logging
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from chalice.app import CORSConfig, Request, Response
from pynamodb.exceptions import PynamoDBException

from chalicelib.errors import (
    AdminUnauthorized,
    GpuCloudError,
    ServiceUnavailable,
    UnknownUrl,
    openai_shape_of_chalice_error,
)
from chalicelib.keys import bearer_token
from chalicelib.settings import get_settings

log = logging.getLogger(__name__)

ADMIN_PREFIX = "/api/"
# The HTTP API's catch-all route (infra/http_api.py): API Gateway sends every URL no route matches
# with this as the resource path, which Chalice's route table does not know.
CATCH_ALL_ROUTE = "$default"


def admin_cors() -> CORSConfig | None:
    """CORS for the dashboard's own origin only (CORS_ALLOW_ORIGIN), never `*`.

    Served by the local stack, the dashboard shares the API's origin and needs
    none; from S3 or CloudFront, set CORS_ALLOW_ORIGIN to its URL.
    """
    origin = get_settings().cors_allow_origin
    if not origin:
        return None
    return CORSConfig(
        allow_origin=origin,
        allow_headers=["Authorization", "Content-Type"],
        max_age=600,
        expose_headers=["x-gpucloud-job-id"],
    )


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


def guard(view: Callable[..., Any]) -> Callable[..., Any]:
    """Turn anything a view raises into a product error the middleware renders.

    Chalice turns a view's exceptions into its own 500 before middleware sees
    them; only ChaliceUnhandledError (our GpuCloudError) gets through. A
    storage service that is away becomes a 503, any other failure a clean 500.
    """

    @functools.wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        try:
            return view(*args, **kwargs)
        except GpuCloudError:
            raise
        except (PynamoDBException, BotoCoreError, ClientError) as exc:
            if not _is_unavailable(exc):
                log.exception("unexpected storage error in %s", view.__name__)
                raise _server_error() from None
            log.warning("a storage service failed in %s: %s", view.__name__, exc.__class__.__name__)
            raise ServiceUnavailable(
                "A storage service of the platform is unavailable right now; nothing was charged. "
                "Retry in a few seconds.",
                headers={"retry-after": "2"},
            ) from None
        except Exception:  # noqa: BLE001 - the client gets a clean 500, the log the trace
            log.exception("unhandled error in %s", view.__name__)
            raise _server_error() from None

    return guarded


def edge_middleware(event: Request, get_response: Callable[[Request], Response]) -> Response:
    """Authenticate admin routes, then render every error as OpenAI does."""
    try:
        if event.path == CATCH_ALL_ROUTE:
            raise UnknownUrl(event.method, str(event.to_original_event().get("path")))
        if event.path.startswith(ADMIN_PREFIX):
            require_admin(event.headers.get("authorization"), get_settings().admin_token)
        response = get_response(event)
    except GpuCloudError as exc:
        headers: dict[str, str | list[str]] = {**exc.headers, "Content-Type": "application/json"}
        return Response(body=exc.body(), status_code=exc.status, headers=headers)
    except Exception:  # noqa: BLE001 - the client gets a clean 500, the log the trace
        log.exception("unhandled error on %s %s", event.method, event.path)
        error = _server_error()
        return Response(
            body=error.body(), status_code=error.status, headers={"Content-Type": "application/json"}
        )
    if not any(name.lower() == "content-type" for name in response.headers):
        # API Gateway would default it; say it ourselves, whatever the front.
        response.headers["Content-Type"] = "application/json"
    if response.status_code >= 400:
        shaped = openai_shape_of_chalice_error(response.status_code, response.body)
        if shaped is not None:
            response.body = shaped
            response.headers["Content-Type"] = "application/json"
    return response


_UNAVAILABLE_CODES = {
    "ThrottlingException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
}


def _is_unavailable(exc: Exception) -> bool:
    """A dependency that is away or overloaded (503), not a bug of ours (500)."""
    cause: BaseException | None = exc
    while isinstance(cause, PynamoDBException) and cause.cause is not None:
        cause = cause.cause
    if isinstance(cause, BotoCoreError):
        return True
    if isinstance(cause, ClientError):
        return cause.response.get("Error", {}).get("Code") in _UNAVAILABLE_CODES
    return False


def _server_error() -> GpuCloudError:
    return GpuCloudError(
        "The server had an error while processing your request. Retry, and tell the "
        "operator if it keeps happening."
    )
