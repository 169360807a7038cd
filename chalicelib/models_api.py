"""GET /v1/models: the running deployments, in OpenAI's list/model shape."""

from __future__ import annotations

from chalice.app import Request, Response

from chalicelib.admission import answer
from chalicelib.deployments import model_object, resolve, running_deployments
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
    return answer(request, services, lambda _key: model_object(resolve(model_id, services.deployment_cache)))
