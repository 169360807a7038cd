"""The admin side of deployments: create, change, stop, delete, and provision.

Provisioning is asynchronous: the API writes the deployment as
`provisioning` and queues a provisioning message; the worker checks the
backend (an upstream must answer and serve the model) and moves it to
`running`, or to `failed` with the reason. A message is tied to the
deployment's `updated_at`, so a stale one (the config changed since) is a
no-op.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Literal

from chalice.app import Request
from pydantic import BaseModel, ConfigDict, Field, HttpUrl
from pynamodb.exceptions import DoesNotExist, PutError, UpdateError
from pynamodb.expressions.update import Action

from chalicelib.deployments import RUNNING
from chalicelib.errors import Conflict, InvalidRequest, NotFound
from chalicelib.models import DeploymentRecord, iso_utc, utcnow
from chalicelib.openai_schema import parse_json_body, validated
from chalicelib.services import Services

log = logging.getLogger(__name__)

PROVISIONING = "provisioning"
STOPPED = "stopped"
FAILED = "failed"
PROVISION_KIND = "deployment.provision"
# No "/": a model id is one URL path segment (GET /v1/models/{id}).
MODEL_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"


class SimulatedSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ttft_ms: float = Field(default=0, ge=0, le=60_000)
    per_token_ms: float = Field(default=0, ge=0, le=10_000)
    max_context: int = Field(default=8192, ge=1, le=1_000_000)


class UpstreamSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    base_url: HttpUrl
    model: str = Field(min_length=1, max_length=200)
    api_key: str | None = Field(default=None, min_length=1, max_length=4096)
    timeout_s: float = Field(default=60, gt=0, le=300)
    max_retries: int = Field(default=2, ge=0, le=5)


class DeploymentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=MODEL_NAME_PATTERN)
    backend: Literal["simulated", "openai"] = "simulated"
    config: dict[str, Any] = Field(default_factory=dict)


class DeploymentUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    config: dict[str, Any] | None = None
    status: Literal["running", "stopped"] | None = None


def _backend_config(backend: str, config: dict[str, Any], services: Services, name: str) -> dict[str, Any]:
    """Validated settings; an upstream API key goes to Secrets Manager, never the table."""
    if backend == "simulated":
        return dict(validated(SimulatedSettings, config, "config").model_dump())
    upstream = validated(UpstreamSettings, config, "config")
    stored = upstream.model_dump(mode="json", exclude={"api_key"})
    if upstream.api_key:
        stored["api_key_secret_arn"] = services.secrets.put(name, upstream.api_key)
    return stored


def deployment_view(record: DeploymentRecord) -> dict[str, Any]:
    config = _public_settings(record)
    if record.backend == "openai":
        config["api_key_set"] = bool((record.config or {}).get("api_key_secret_arn"))
    return {
        "id": record.name,
        "object": "deployment",
        "name": record.name,
        "backend": record.backend,
        "status": record.status,
        "status_reason": record.status_reason,
        "config": config,
        "created_at": iso_utc(record.created_at),
        "updated_at": iso_utc(record.updated_at),
    }


def _find(name: str) -> DeploymentRecord:
    try:
        return DeploymentRecord.get(name, consistent_read=True)
    except DoesNotExist:
        raise NotFound(f"No deployment named '{name}'.", param="name", code="deployment_not_found") from None


def _queue_provisioning(services: Services, record: DeploymentRecord) -> None:
    message = {"kind": PROVISION_KIND, "deployment": record.name, "updated_at": iso_utc(record.updated_at)}
    services.sqs.send_message(QueueUrl=services.queue_url(), MessageBody=json.dumps(message))


def create_deployment(request: Request, services: Services) -> dict[str, Any]:
    body = parse_json_body(request.raw_body, services.settings.max_body_bytes)
    spec = validated(DeploymentCreate, body)
    record = DeploymentRecord(
        name=spec.name,
        backend=spec.backend,
        status=PROVISIONING,
        config=_backend_config(spec.backend, spec.config, services, spec.name),
        created_at=utcnow(),
        updated_at=utcnow(),
    )
    try:
        record.save(condition=DeploymentRecord.name.does_not_exist())
    except PutError as exc:
        if exc.cause_response_code == "ConditionalCheckFailedException":
            raise Conflict(f"A deployment named '{spec.name}' already exists.", param="name") from None
        raise
    _queue_provisioning(services, record)
    return deployment_view(record)


def list_deployments() -> dict[str, Any]:
    records = sorted(DeploymentRecord.scan(), key=lambda r: r.name)
    return {"object": "list", "data": [deployment_view(r) for r in records]}


def get_deployment(name: str) -> dict[str, Any]:
    return deployment_view(_find(name))


def update_deployment(name: str, request: Request, services: Services) -> dict[str, Any]:
    body = parse_json_body(request.raw_body, services.settings.max_body_bytes)
    spec = validated(DeploymentUpdate, body)
    record = _find(name)
    if spec.config is None and spec.status is None:
        raise InvalidRequest("Send 'config' and/or 'status' to change.", param="config")
    reprovision = spec.config is not None or (spec.status == RUNNING and record.status != RUNNING)
    actions: list[Action] = [DeploymentRecord.updated_at.set(utcnow())]
    if spec.config is not None:
        merged = {**_public_settings(record), **spec.config}
        actions.append(DeploymentRecord.config.set(_backend_config(record.backend, merged, services, name)))
    if spec.status == STOPPED:
        actions.append(DeploymentRecord.status.set(STOPPED))
        actions.append(DeploymentRecord.status_reason.set("stopped by the operator"))
    elif reprovision:
        actions.append(DeploymentRecord.status.set(PROVISIONING))
        actions.append(DeploymentRecord.status_reason.remove())
    record.update(actions=actions)
    services.deployment_cache.discard(name)
    if reprovision and spec.status != STOPPED:
        _queue_provisioning(services, record)
    return deployment_view(record)


def _public_settings(record: DeploymentRecord) -> dict[str, Any]:
    """The stored settings as a client would send them (the secret stays put)."""
    return {k: v for k, v in (record.config or {}).items() if k != "api_key_secret_arn"}


def delete_deployment(name: str, services: Services) -> dict[str, Any]:
    record = _find(name)
    arn = (record.config or {}).get("api_key_secret_arn")
    record.delete()
    if arn:
        services.secrets.delete(arn)
    services.deployment_cache.discard(name)
    return {"id": name, "object": "deployment", "deleted": True}


def provision(message: dict[str, Any], services: Services) -> None:
    """Worker side: check the backend, then running or failed (idempotent)."""
    from chalicelib.backends import backend_for  # the worker's import, not the API's
    from chalicelib.backends.base import failure_reason

    try:
        record = DeploymentRecord.get(message["deployment"], consistent_read=True)
    except DoesNotExist:
        return  # deleted meanwhile
    if record.status != PROVISIONING or iso_utc(record.updated_at) != message.get("updated_at"):
        return  # stale message: a later change queued its own
    status, reason = RUNNING, None
    try:
        backend_for(record.backend, dict(record.config or {}), services).check()
    except Exception as exc:  # noqa: BLE001 - any failed check fails provisioning
        log.warning("provisioning %s failed: %s: %s", record.name, exc.__class__.__name__, exc)
        status, reason = FAILED, failure_reason(exc)
    try:
        record.update(
            actions=[
                DeploymentRecord.status.set(status),
                DeploymentRecord.status_reason.set(reason)
                if reason
                else DeploymentRecord.status_reason.remove(),
            ],
            condition=(DeploymentRecord.status == PROVISIONING)
            & (DeploymentRecord.updated_at == record.updated_at),
        )
    except UpdateError as exc:
        if exc.cause_response_code != "ConditionalCheckFailedException":
            raise
    log.info("deployment %s is %s", record.name, status)
