"""Who may call, and how much: the key, then its limits, in one place."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chalice.app import Request, Response

from chalicelib.errors import GpuCloudError
from chalicelib.keys import ApiKey, authenticate
from chalicelib.ratelimit import LimitStatus
from chalicelib.services import Services


@dataclass(frozen=True)
class Admission:
    api_key: ApiKey
    limits: LimitStatus | None

    def headers(self) -> dict[str, str | list[str]]:
        return {**self.limits.headers()} if self.limits is not None else {}


def admit(
    authorization: str | None,
    services: Services,
    requests: int = 0,
    tokens: int = 0,
    api_key: ApiKey | None = None,
) -> Admission:
    """Authenticate the key and reserve `requests` and `tokens` against its limits.

    With zero cost (reads like GET /v1/models) nothing is reserved, but the
    key's limits are reported in the headers all the same. The limiter also
    returns the key's version: if the key changed since this instance cached
    it (revoked, new limits), it is read again from DynamoDB at once.
    """
    if api_key is None:
        api_key = authenticate(authorization, services.key_cache)
    status = _reserve(services, api_key, requests, tokens)
    if status is not None and status.key_version > api_key.version:
        services.key_cache.discard(api_key.key_hash)
        fresh = authenticate(authorization, services.key_cache)
        if (fresh.rate_limit_rpm, fresh.rate_limit_tpm, fresh.monthly_token_quota) != (
            api_key.rate_limit_rpm,
            api_key.rate_limit_tpm,
            api_key.monthly_token_quota,
        ):
            status = _reserve(services, fresh, 0, 0)
        api_key = fresh
    return Admission(api_key, status)


def _reserve(services: Services, api_key: ApiKey, requests: int, tokens: int) -> LimitStatus | None:
    settings = services.settings
    return services.rate_limiter.check(
        api_key.id,
        rpm=api_key.rate_limit_rpm or settings.default_rpm,
        tpm=api_key.rate_limit_tpm or settings.default_tpm,
        requests=requests,
        tokens=tokens,
        monthly_quota=api_key.monthly_token_quota,
    )


def answer(
    request: Request, services: Services, produce: Callable[[ApiKey], Any], requests: int = 0
) -> Response:
    """Run a read for an admitted key; the answer (or error) carries its limit headers.

    A read costs no request unless `requests` says so (an expensive one).
    """
    admission = admit(request.headers.get("authorization"), services, requests=requests)
    try:
        body = produce(admission.api_key)
    except GpuCloudError as error:
        raise with_limit_headers(error, admission) from None
    return Response(body=body, headers=admission.headers())


def with_limit_headers(error: GpuCloudError, admission: Admission) -> GpuCloudError:
    error.headers = {**(admission.limits.headers() if admission.limits else {}), **error.headers}
    return error
