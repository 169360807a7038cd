"""Model deployments: which models exist and what runs them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pynamodb.exceptions import DoesNotExist, PutError

from chalicelib.errors import ModelNotFound, ServiceUnavailable
from chalicelib.models import DeploymentRecord, utcnow

if TYPE_CHECKING:
    from chalicelib.cache import TtlCache

RUNNING = "running"


@dataclass(frozen=True)
class Deployment:
    name: str
    backend: str
    status: str
    config: dict[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None


def _from_record(record: DeploymentRecord) -> Deployment:
    return Deployment(
        name=record.name,
        backend=record.backend,
        status=record.status,
        config=dict(record.config or {}),
        created_at=record.created_at,
    )


def resolve(model: str, cache: TtlCache[Deployment]) -> Deployment:
    """The running deployment serving `model`, or the error a client should see."""
    deployment = cache.get(model)
    if deployment is None:
        try:
            deployment = _from_record(DeploymentRecord.get(model))
        except DoesNotExist:
            raise ModelNotFound(
                f"The model '{model}' does not exist. GET /v1/models lists the models you can use.",
                param="model",
            ) from None
        cache.put(model, deployment)
    if deployment.status != RUNNING:
        raise ServiceUnavailable(
            f"The model '{model}' is {deployment.status} and cannot serve requests right now.",
            code="model_not_running",
        )
    return deployment


def running_deployments() -> list[Deployment]:
    records = DeploymentRecord.scan(DeploymentRecord.status == RUNNING)
    return sorted((_from_record(r) for r in records), key=lambda d: d.name)


def ensure_default_deployments(names: tuple[str, ...]) -> None:
    """Create the default simulated deployments if they do not exist yet."""
    for name in names:
        record = DeploymentRecord(
            name=name, backend="simulated", status=RUNNING, config={}, updated_at=utcnow()
        )
        try:
            record.save(condition=DeploymentRecord.name.does_not_exist())
        except PutError as exc:
            if exc.cause_response_code != "ConditionalCheckFailedException":
                raise


def model_object(deployment: Deployment) -> dict[str, Any]:
    """A deployment in OpenAI's `model` shape."""
    created = deployment.created_at or utcnow()
    return {
        "id": deployment.name,
        "object": "model",
        "created": int(created.timestamp()),
        "owned_by": "gpucloud",
    }
