"""GET /v1/models: the running deployments, in OpenAI's list/model shape."""

from __future__ import annotations

from typing import Any

from chalice.app import Request

from chalicelib.deployments import model_object, resolve, running_deployments
from chalicelib.keys import authenticate
from chalicelib.services import Services


def list_models(request: Request, services: Services) -> dict[str, Any]:
    api_key = authenticate(request.headers.get("authorization"), services.key_cache)
    visible = [
        d for d in running_deployments() if api_key.allowed_models is None or d.name in api_key.allowed_models
    ]
    return {"object": "list", "data": [model_object(d) for d in visible]}


def get_model(request: Request, services: Services, model_id: str) -> dict[str, Any]:
    authenticate(request.headers.get("authorization"), services.key_cache)
    return model_object(resolve(model_id, services.deployment_cache))
