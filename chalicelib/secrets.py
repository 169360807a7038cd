"""Upstream API keys live in Secrets Manager; deployments hold only the ARN."""

from __future__ import annotations

import threading
import time
from typing import Any

SECRET_PREFIX = "gpucloud/deployments/"  # noqa: S105 - a name prefix, not a secret
# Long enough to spare a read per job, short enough that a rotated key is
# picked up soon after.
_CACHE_SECONDS = 300


class SecretStore:
    def __init__(self, client: Any) -> None:
        self._client = client
        self._cache: dict[str, tuple[float, str]] = {}
        self._lock = threading.Lock()

    def put(self, name: str, value: str) -> str:
        """Create or replace the secret for a deployment; returns its ARN."""
        secret_id = SECRET_PREFIX + name
        try:
            arn: str = self._client.create_secret(Name=secret_id, SecretString=value)["ARN"]
        except self._client.exceptions.ResourceExistsException:
            arn = self._client.put_secret_value(SecretId=secret_id, SecretString=value)["ARN"]
        with self._lock:
            self._cache.pop(arn, None)
        return arn

    def get(self, arn: str) -> str:
        entry = self._cache.get(arn)
        if entry is not None and entry[0] > time.monotonic():
            return entry[1]
        value: str = self._client.get_secret_value(SecretId=arn)["SecretString"]
        with self._lock:
            self._cache[arn] = (time.monotonic() + _CACHE_SECONDS, value)
        return value

    def delete(self, arn: str) -> None:
        try:
            self._client.delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True)
        except self._client.exceptions.ResourceNotFoundException:
            pass
        with self._lock:
            self._cache.pop(arn, None)
