"""Product errors, each rendered once as OpenAI's error body.

They subclass Chalice's `ChaliceUnhandledError` because that is the one
exception Chalice lets through to middleware; the edge middleware turns it
into `{"error": {"message", "type", "param", "code"}}` with the right status
(`chalicelib/http.py`, registered by `app.py`).
"""

from __future__ import annotations

import json
from typing import Any

from chalice import ChaliceUnhandledError


class GpuCloudError(ChaliceUnhandledError):
    status = 500
    type = "server_error"
    code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return error_body(self.message, self.type, self.param, self.code)


class InvalidRequest(GpuCloudError):
    status = 400
    type = "invalid_request_error"


class InvalidApiKey(GpuCloudError):
    status = 401
    type = "invalid_request_error"
    code = "invalid_api_key"


class AdminUnauthorized(GpuCloudError):
    status = 401
    type = "invalid_request_error"
    code = "invalid_admin_token"


class ModelNotAllowed(GpuCloudError):
    status = 403
    type = "invalid_request_error"
    code = "model_not_allowed"


class NotFound(GpuCloudError):
    status = 404
    type = "invalid_request_error"
    code = "not_found"


class ModelNotFound(NotFound):
    code = "model_not_found"


class UnknownUrl(NotFound):
    code = "unknown_url"

    def __init__(self, method: str, path: str) -> None:
        super().__init__(
            f"Unknown request URL: {method} {path}. See docs/openapi.yaml for the endpoints GPU Cloud serves."
        )


class Conflict(GpuCloudError):
    status = 409
    type = "invalid_request_error"
    code = "conflict"


class PayloadTooLarge(GpuCloudError):
    status = 413
    type = "invalid_request_error"
    code = "request_too_large"


class RateLimited(GpuCloudError):
    status = 429
    type = "requests"
    code = "rate_limit_exceeded"


class QuotaExceeded(GpuCloudError):
    status = 429
    type = "insufficient_quota"
    code = "insufficient_quota"


class JobFailed(GpuCloudError):
    status = 500
    type = "server_error"
    code = "job_failed"


class ServiceUnavailable(GpuCloudError):
    status = 503
    type = "server_error"
    code = "service_unavailable"


class JobTimeout(GpuCloudError):
    status = 504
    type = "server_error"
    code = "timeout"


def error_body(message: str, type_: str, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


# Chalice answers some requests itself ({"Code": ..., "Message": ...}) before
# our code runs: wrong method, unparsable JSON, unhandled exceptions.
_CHALICE_ERRORS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "The request could not be parsed."),
    405: ("invalid_request_error", "method_not_allowed", "This method is not allowed here."),
    415: ("invalid_request_error", "unsupported_media_type", "Send the body as application/json."),
    500: ("server_error", None, "The server had an error while processing your request."),
}


def openai_shape_of_chalice_error(status: int, body: Any) -> dict[str, Any] | None:
    """The OpenAI-shaped body for a Chalice-native error, or None if it is ours.

    Anything that is not already `{"error": ...}` is reshaped, a body that is not JSON included (with
    debug on, Chalice answers its own 500s with a plain-text traceback, which must not reach a client).
    """
    if isinstance(body, (bytes, str)):
        try:
            body = json.loads(body)
        except ValueError:
            body = None
    if not isinstance(body, dict):
        body = {}
    if "error" in body:
        return None
    type_, code, default_message = _CHALICE_ERRORS.get(
        status, ("server_error" if status >= 500 else "invalid_request_error", None, "Request failed.")
    )
    message = default_message
    if status < 500 and isinstance(body.get("Message"), str):
        message = f"{body['Message']}. {default_message}"
    return error_body(message, type_, None, code)
