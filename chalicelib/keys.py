"""API keys: format, hashing, authentication and the admin operations.

Format: `gpc_` + 30 base62 characters of randomness (~178 bits) + 6 base62
characters of CRC32 over the random part, like GitHub's tokens, so a typo is
rejected without a database read and secret scanners can spot a leaked key.
Regex: ``^gpc_[0-9A-Za-z]{36}$``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid
import zlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pynamodb.exceptions import DoesNotExist

from chalicelib.cache import TtlCache
from chalicelib.errors import InvalidApiKey, NotFound
from chalicelib.models import ApiKeyRecord, int_or_none, iso_utc, utcnow

__all__ = ["ApiKey", "ApiKeyRecord"]

KEY_PREFIX = "gpc_"
KEY_REGEX = re.compile(r"^gpc_[0-9A-Za-z]{36}$")
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_RANDOM_CHARS = 30
_CHECKSUM_CHARS = 6
# What lists show of a key: enough to tell keys apart, far too little to use.
DISPLAY_PREFIX_CHARS = len(KEY_PREFIX) + 6


def _base62(number: int, width: int) -> str:
    chars = []
    for _ in range(width):
        number, digit = divmod(number, 62)
        chars.append(_BASE62[digit])
    return "".join(reversed(chars))


def _checksum(random_part: str) -> str:
    return _base62(zlib.crc32(random_part.encode()), _CHECKSUM_CHARS)


def generate_key() -> str:
    random_part = "".join(secrets.choice(_BASE62) for _ in range(_RANDOM_CHARS))
    return KEY_PREFIX + random_part + _checksum(random_part)


def is_well_formed(key: str) -> bool:
    if not KEY_REGEX.match(key):
        return False
    body = key[len(KEY_PREFIX) :]
    random_part, checksum = body[:_RANDOM_CHARS], body[_RANDOM_CHARS:]
    return hmac.compare_digest(_checksum(random_part), checksum)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class ApiKey:
    """What a request knows about the key that made it."""

    id: str
    key_hash: str
    name: str
    rate_limit_rpm: int | None
    rate_limit_tpm: int | None
    monthly_token_quota: int | None
    allowed_models: tuple[str, ...] | None
    version: int = 0


def _from_record(record: ApiKeyRecord) -> ApiKey:
    return ApiKey(
        id=record.id,
        key_hash=record.key_hash,
        name=record.name,
        rate_limit_rpm=int(record.rate_limit_rpm) if record.rate_limit_rpm is not None else None,
        rate_limit_tpm=int(record.rate_limit_tpm) if record.rate_limit_tpm is not None else None,
        monthly_token_quota=(
            int(record.monthly_token_quota) if record.monthly_token_quota is not None else None
        ),
        allowed_models=tuple(str(m) for m in record.allowed_models) if record.allowed_models else None,
        version=int(record.version or 0),
    )


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def authenticate(authorization: str | None, cache: TtlCache[ApiKey]) -> ApiKey:
    """The key behind an `Authorization: Bearer ...` header, or InvalidApiKey."""
    key = bearer_token(authorization)
    if key is None:
        raise InvalidApiKey("You didn't provide an API key. Send it as 'Authorization: Bearer gpc_...'.")
    if not is_well_formed(key):
        raise InvalidApiKey(
            "Incorrect API key provided. GPU Cloud keys look like gpc_ followed by 36 "
            "letters and digits; check for a typo or create a new key."
        )
    digest = hash_key(key)
    cached = cache.get(digest)
    if cached is not None:
        return cached
    try:
        record = ApiKeyRecord.get(digest, consistent_read=True)
    except DoesNotExist:
        raise InvalidApiKey("Incorrect API key provided: this key does not exist.") from None
    # The lookup was by hash already; compare again in constant time so no
    # code path ever compares secrets byte by byte.
    if not hmac.compare_digest(record.key_hash, digest):
        raise InvalidApiKey("Incorrect API key provided.")
    if record.status != "active":
        raise InvalidApiKey("This API key has been revoked. Create a new key.")
    if record.expires_at is not None and record.expires_at <= utcnow():
        raise InvalidApiKey(f"This API key expired at {record.expires_at.isoformat()}. Create a new key.")
    api_key = _from_record(record)
    cache.put(digest, api_key)
    return api_key


# ---- admin operations -------------------------------------------------------


def key_public_view(record: ApiKeyRecord) -> dict[str, Any]:
    """What the admin API shows of a key: never the secret or its hash."""
    expired = record.expires_at is not None and record.expires_at <= utcnow()
    status = "expired" if record.status == "active" and expired else record.status
    return {
        "id": record.id,
        "object": "api_key",
        "name": record.name,
        "prefix": record.prefix,
        "status": status,
        "created_at": iso_utc(record.created_at),
        "last_used_at": iso_utc(record.last_used_at),
        "expires_at": iso_utc(record.expires_at),
        "rate_limit_rpm": int_or_none(record.rate_limit_rpm),
        "rate_limit_tpm": int_or_none(record.rate_limit_tpm),
        "monthly_token_quota": int_or_none(record.monthly_token_quota),
        "allowed_models": list(record.allowed_models) if record.allowed_models else None,
        "request_count": int(record.request_count or 0),
        "prompt_tokens": int(record.prompt_tokens or 0),
        "completion_tokens": int(record.completion_tokens or 0),
    }


def create_key(
    name: str,
    *,
    expires_at: datetime | None = None,
    rate_limit_rpm: int | None = None,
    rate_limit_tpm: int | None = None,
    monthly_token_quota: int | None = None,
    allowed_models: list[str] | None = None,
) -> dict[str, Any]:
    """Create a key; the only response that ever carries the full secret."""
    secret = generate_key()
    record = ApiKeyRecord(
        key_hash=hash_key(secret),
        id="key_" + uuid.uuid4().hex[:24],
        name=name,
        prefix=secret[:DISPLAY_PREFIX_CHARS],
        expires_at=expires_at,
        rate_limit_rpm=rate_limit_rpm,
        rate_limit_tpm=rate_limit_tpm,
        monthly_token_quota=monthly_token_quota,
        allowed_models=allowed_models or None,
    )
    record.save(condition=ApiKeyRecord.key_hash.does_not_exist())
    return {**key_public_view(record), "key": secret}


def find_key(key_id: str) -> ApiKeyRecord:
    for index_row in ApiKeyRecord.by_id.query(key_id, limit=1):
        try:
            return ApiKeyRecord.get(index_row.key_hash, consistent_read=True)
        except DoesNotExist:
            break
    raise NotFound(f"No API key with id '{key_id}'.", param="id", code="key_not_found")


def list_keys() -> list[dict[str, Any]]:
    records = sorted(ApiKeyRecord.scan(), key=lambda r: r.created_at, reverse=True)
    return [key_public_view(r) for r in records]


def update_key(key_id: str, changes: dict[str, Any]) -> ApiKeyRecord:
    """Apply `changes` (attribute name -> new value, None clears) and bump the version."""
    record = find_key(key_id)
    actions = [
        getattr(ApiKeyRecord, name).set(value) if value is not None else getattr(ApiKeyRecord, name).remove()
        for name, value in changes.items()
    ]
    actions.append(ApiKeyRecord.version.add(1))
    record.update(actions=actions, condition=ApiKeyRecord.key_hash.exists())
    return record


def revoke_key(key_id: str) -> ApiKeyRecord:
    return update_key(key_id, {"status": "revoked"})
