"""POST /v1/chat/completions: the request path from key to answer."""

from __future__ import annotations

from typing import Any

import redis
from chalice.app import Request, Response

from chalicelib import jobs
from chalicelib.admission import Admission, admit, with_limit_headers
from chalicelib.deployments import resolve
from chalicelib.errors import GpuCloudError, ModelNotAllowed
from chalicelib.job_api import job_view
from chalicelib.keys import ApiKey, authenticate
from chalicelib.openai_schema import ChatCompletionRequest, parse_chat_request, parse_json_body
from chalicelib.ratelimit import current_month
from chalicelib.services import Services
from chalicelib.streaming import read_deltas, sse_body
from chalicelib.tokens import estimated_total_tokens

ASYNC_HEADER = "x-gpucloud-async"


def check_model_allowed(api_key: ApiKey, model: str) -> None:
    if api_key.allowed_models is not None and model not in api_key.allowed_models:
        raise ModelNotAllowed(
            f"This API key may not use the model '{model}'. It may use: {', '.join(api_key.allowed_models)}.",
            param="model",
        )


def wants_async(request: Request) -> bool:
    return (request.headers.get(ASYNC_HEADER) or "").strip().lower() in {"true", "1", "yes"}


def create_chat_completion(request: Request, services: Services) -> Response:
    # The key first: a caller without one learns nothing about the body.
    authenticate(request.headers.get("authorization"), services.key_cache)
    body = parse_json_body(request.raw_body, services.settings.max_body_bytes)
    chat = parse_chat_request(body, services.settings.max_n)
    reserved = estimated_total_tokens(chat, services.settings.default_max_tokens)
    admission = admit(request.headers.get("authorization"), services, requests=1, tokens=reserved)
    try:
        return _serve(request, services, admission, body, chat, reserved)
    except GpuCloudError as error:
        raise with_limit_headers(error, admission) from None


def _serve(
    request: Request,
    services: Services,
    admission: Admission,
    body: dict[str, Any],
    chat: ChatCompletionRequest,
    reserved: int,
) -> Response:
    check_model_allowed(admission.api_key, chat.model)
    deployment = resolve(chat.model, services.deployment_cache)
    job = jobs.submit(
        services,
        admission.api_key,
        deployment,
        "chat.completion",
        body,
        reserved_tokens=reserved,
        reserved_month=current_month(),
    )
    headers = admission.headers()
    if wants_async(request):
        return Response(
            body=job_view(job), status_code=202, headers={**headers, "Location": f"/v1/jobs/{job.job_id}"}
        )
    outcome = jobs.wait_for_outcome(services, job.job_id, services.settings.result_timeout_seconds)
    completion = jobs.result_or_error(job.job_id, outcome)
    if not chat.stream:
        return Response(body=completion, headers=headers)
    return Response(
        body=sse_body(completion, _stream_deltas(services, job.job_id), chat.wants_usage_chunk()),
        headers={**headers, "Content-Type": "text/event-stream", "Cache-Control": "no-cache"},
    )


def _stream_deltas(services: Services, job_id: str) -> dict[int, list[str]] | None:
    try:
        return read_deltas(services.redis, job_id)
    except redis.RedisError:
        return None
