"""Admin operations on API keys, validated like every other request body."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from chalice.app import Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from chalicelib import keys
from chalicelib.openai_schema import parse_json_body, validation_error
from chalicelib.services import Services


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    expires_at: datetime | None = None
    rate_limit_rpm: int | None = Field(default=None, ge=1, le=1_000_000)
    rate_limit_tpm: int | None = Field(default=None, ge=1, le=1_000_000_000)
    monthly_token_quota: int | None = Field(default=None, ge=0)
    allowed_models: list[str] | None = Field(default=None, max_length=100)

    @field_validator("name")
    @classmethod
    def _printable(cls, value: str) -> str:
        if any(ch < " " or ch == "\x7f" for ch in value):
            raise ValueError("the name may not contain control characters or line breaks")
        return value.strip()

    @field_validator("expires_at")
    @classmethod
    def _aware_future(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _parse(model: type[KeyCreate], request: Request, services: Services) -> KeyCreate:
    body = parse_json_body(request.raw_body, services.settings.max_body_bytes)
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise validation_error(exc) from None


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


def revoke_key(key_id: str, services: Services) -> dict[str, Any]:
    revoked = keys.revoke_key(key_id)
    services.key_cache.clear()
    return revoked
