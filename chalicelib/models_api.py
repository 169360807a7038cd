"""GET /v1/models: the running deployments, in OpenAI's list/model shape."""

from __future__ import annotations

from typing import Any

from chalice.app import Request, Response

from chalicelib.admission import answer
from chalicelib.deployments import model_object, resolve, running_deployments
from chalicelib.errors import ModelNotFound
from chalicelib.keys import ApiKey
from chalicelib.services import Services


def list_models(request: Request, services: Services) -> Response:
    return answer(
        request,
        services,
        lambda api_key: {
            "object": "list",
            "data": [
                model_object(d)
                for d in running_deployments()
                if api_key.allowed_models is None or d.name in api_key.allowed_models
            ],
        },
    )


def get_model(request: Request, services: Services, model_id: str) -> Response:
    def read(api_key: ApiKey) -> dict[str, Any]:
        if api_key.allowed_models is not None and model_id not in api_key.allowed_models:
            raise ModelNotFound(
                f"The model '{model_id}' does not exist or this key may not use it.", param="model"
            )
        return model_object(resolve(model_id, services.deployment_cache))

    return answer(request, services, read)
