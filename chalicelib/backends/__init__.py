"""Model backends: what actually runs a deployment's model."""

from __future__ import annotations

from typing import Any

from chalicelib.backends.base import ModelBackend
from chalicelib.backends.simulated import SimulatedBackend


def backend_for(kind: str, config: dict[str, Any]) -> ModelBackend:
    if kind == "simulated":
        return SimulatedBackend(config)
    raise ValueError(f"unknown backend '{kind}'")
