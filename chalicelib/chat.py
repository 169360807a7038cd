"""POST /v1/chat/completions: the request path from key to answer."""

from __future__ import annotations

from typing import Any

import redis
from chalice.app import Request, Response

from chalicelib import jobs
from chalicelib.deployments import resolve
from chalicelib.errors import ModelNotAllowed
from chalicelib.job_api import job_view
from chalicelib.keys import ApiKey, authenticate
from chalicelib.openai_schema import ChatCompletionRequest, parse_chat_request, parse_json_body
from chalicelib.services import Services
from chalicelib.streaming import read_deltas, sse_body


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


ASYNC_HEADER = "x-gpucloud-async"


def wants_async(request: Request) -> bool:
    return (request.headers.get(ASYNC_HEADER) or "").strip().lower() in {"true", "1", "yes"}


def create_chat_completion(request: Request, services: Services) -> Response:
    api_key, body, chat = parse(request, services)
    deployment = resolve(chat.model, services.deployment_cache)
    job = jobs.submit(services, api_key, deployment, "chat.completion", body)
    if wants_async(request):
        return Response(body=job_view(job), status_code=202, headers={"Location": f"/v1/jobs/{job.job_id}"})
    outcome = jobs.wait_for_outcome(services, job.job_id, services.settings.result_timeout_seconds)
    completion = jobs.result_or_error(job.job_id, outcome)
    if not chat.stream:
        return Response(body=completion)
    return Response(
        body=sse_body(completion, _stream_deltas(services, job.job_id), chat.wants_usage_chunk()),
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"},
    )


def _stream_deltas(services: Services, job_id: str) -> dict[int, list[str]] | None:
    try:
        return read_deltas(services.redis, job_id)
    except redis.RedisError:
        return None
