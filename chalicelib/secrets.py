"""Upstream API keys live in Secrets Manager; deployments hold only the ARN."""

from __future__ import annotations

from typing import Any

from chalicelib.cache import TtlCache

SECRET_PREFIX = "gpucloud/deployments/"  # noqa: S105 - a name prefix, not a secret
# Long enough to spare a read per job, short enough that a rotated key is
# picked up soon after.
_CACHE_SECONDS = 300


class SecretStore:
    def __init__(self, client: Any) -> None:
        self._client = client
        self._cache: TtlCache[str] = TtlCache(_CACHE_SECONDS)

    def put(self, name: str, value: str) -> str:
        """Create or replace the secret for a deployment; returns its ARN."""
        secret_id = SECRET_PREFIX + name
        try:
            arn: str = self._client.create_secret(Name=secret_id, SecretString=value)["ARN"]
        except self._client.exceptions.ResourceExistsException:
            arn = self._client.put_secret_value(SecretId=secret_id, SecretString=value)["ARN"]
        self._cache.discard(arn)
        return arn

    def get(self, arn: str) -> str:
        cached = self._cache.get(arn)
        if cached is not None:
            return cached
        value: str = self._client.get_secret_value(SecretId=arn)["SecretString"]
        self._cache.put(arn, value)
        return value

    def delete(self, arn: str) -> None:
        try:
            self._client.delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True)
        except self._client.exceptions.ResourceNotFoundException:
            pass
        self._cache.discard(arn)
