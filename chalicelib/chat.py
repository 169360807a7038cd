"""POST /v1/chat/completions: the request path from key to answer."""

from __future__ import annotations

from typing import Any

from chalice.app import Request

from chalicelib import jobs
from chalicelib.deployments import resolve
from chalicelib.errors import ModelNotAllowed
from chalicelib.keys import ApiKey, authenticate
from chalicelib.openai_schema import ChatCompletionRequest, parse_chat_request, parse_json_body
from chalicelib.services import Services


def check_model_allowed(api_key: ApiKey, model: str) -> None:
    if api_key.allowed_models is not None and model not in api_key.allowed_models:
        raise ModelNotAllowed(
            f"This API key may not use the model '{model}'. It may use: {', '.join(api_key.allowed_models)}.",
            param="model",
        )


def parse(request: Request, services: Services) -> tuple[ApiKey, dict[str, Any], ChatCompletionRequest]:
    api_key = authenticate(request.headers.get("authorization"), services.key_cache)
    body = parse_json_body(request.raw_body, services.settings.max_body_bytes)
    chat = parse_chat_request(body, services.settings.max_n)
    check_model_allowed(api_key, chat.model)
    return api_key, body, chat


def create_chat_completion(request: Request, services: Services) -> dict[str, Any]:
    api_key, body, chat = parse(request, services)
    deployment = resolve(chat.model, services.deployment_cache)
    job = jobs.submit(services, api_key, deployment, "chat.completion", body)
    outcome = jobs.wait_for_outcome(services, job.job_id, services.settings.result_timeout_seconds)
    return jobs.result_or_error(job.job_id, outcome)
