"""Model backends: what actually runs a deployment's model."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chalicelib.backends.base import ModelBackend
from chalicelib.backends.simulated import SimulatedBackend

if TYPE_CHECKING:
    from chalicelib.services import Services


def backend_for(kind: str, config: dict[str, Any], services: Services) -> ModelBackend:
    if kind == "simulated":
        return SimulatedBackend(config)
    if kind == "openai":
        from chalicelib.backends.upstream import UpstreamBackend  # httpx only where used

        arn = config.get("api_key_secret_arn")
        return UpstreamBackend(config, services.secrets.get(arn) if arn else None)
    raise ValueError(f"unknown backend '{kind}'")
