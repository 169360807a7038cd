"""Admin operations on API keys, validated like every other request body."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from chalice.app import Request
from pydantic import BaseModel, ConfigDict, Field, field_validator

from chalicelib import keys
from chalicelib.errors import InvalidRequest
from chalicelib.openai_schema import parse_json_body, validated
from chalicelib.services import Services


class _KeyFields(BaseModel):
    # Strip before the length checks: a name of spaces is no name.
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str | None = Field(default=None, min_length=1, max_length=100)
    expires_at: datetime | None = None
    rate_limit_rpm: int | None = Field(default=None, ge=1, le=1_000_000)
    rate_limit_tpm: int | None = Field(default=None, ge=1, le=1_000_000_000)
    monthly_token_quota: int | None = Field(default=None, ge=0, le=10**15)
    allowed_models: list[Annotated[str, Field(min_length=1, max_length=128)]] | None = Field(
        default=None, max_length=100
    )

    @field_validator("name")
    @classmethod
    def _printable(cls, value: str | None) -> str | None:
        if value is not None and any(ch < " " or ch == "\x7f" for ch in value):
            raise ValueError("the name may not contain control characters or line breaks")
        return value.strip() if value is not None else None

    @field_validator("expires_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        try:
            return value.astimezone(UTC)
        except OverflowError:
            raise ValueError("the date is out of range") from None


_Spec = TypeVar("_Spec", bound=_KeyFields)


class KeyCreate(_KeyFields):
    name: str = Field(min_length=1, max_length=100)


class KeyUpdate(_KeyFields):
    """PATCH body: only the fields sent change; null clears a limit."""


def _parse(model: type[_Spec], request: Request, services: Services) -> _Spec:
    return validated(model, parse_json_body(request.raw_body, services.settings.max_body_bytes))


def create_key(request: Request, services: Services) -> dict[str, Any]:
    spec = _parse(KeyCreate, request, services)
    return keys.create_key(
        spec.name,
        expires_at=spec.expires_at,
        rate_limit_rpm=spec.rate_limit_rpm,
        rate_limit_tpm=spec.rate_limit_tpm,
        monthly_token_quota=spec.monthly_token_quota,
        allowed_models=spec.allowed_models,
    )


def list_keys() -> dict[str, Any]:
    return {"object": "list", "data": keys.list_keys()}


def get_key(key_id: str) -> dict[str, Any]:
    return keys.key_public_view(keys.find_key(key_id))


def update_key(key_id: str, request: Request, services: Services) -> dict[str, Any]:
    spec = _parse(KeyUpdate, request, services)
    changes = {name: getattr(spec, name) for name in spec.model_fields_set}
    if "name" in changes and changes["name"] is None:
        raise InvalidRequest("A key's name cannot be removed.", param="name")
    return _changed(keys.update_key(key_id, changes), services)


def revoke_key(key_id: str, services: Services) -> dict[str, Any]:
    return _changed(keys.revoke_key(key_id), services)


def _changed(record: keys.ApiKeyRecord, services: Services) -> dict[str, Any]:
    """Make every API instance see the change on its next request."""
    record.refresh(consistent_read=True)
    services.key_cache.discard(record.key_hash)
    services.rate_limiter.publish_key_version(record.id, int(record.version))
    return keys.key_public_view(record)
