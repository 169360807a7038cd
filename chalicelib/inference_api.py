"""POST /v1/chat/completions, /v1/completions, /v1/embeddings: key to answer.

All three take the same path: authenticate, validate, reserve against the
key's limits, resolve the deployment, queue a Job, then wait for the worker's
answer (or answer 202 at once for `X-GPUCloud-Async: true`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis
from chalice.app import Request, Response

from chalicelib import jobs
from chalicelib.admission import Admission, admit, with_limit_headers
from chalicelib.deployments import resolve
from chalicelib.errors import GpuCloudError, ModelNotAllowed
from chalicelib.inference import CHAT, EMBEDDING, TEXT
from chalicelib.job_api import job_view
from chalicelib.keys import ApiKey, authenticate
from chalicelib.openai_schema import (
    CompletionRequest,
    parse_chat_request,
    parse_completion_request,
    parse_embedding_request,
    parse_json_body,
)
from chalicelib.ratelimit import Settlement, current_month
from chalicelib.services import Services
from chalicelib.settings import Settings
from chalicelib.streaming import read_deltas, sse_body, text_sse_body
from chalicelib.tokens import MESSAGE_OVERHEAD_TOKENS, count_tokens, estimated_total_tokens

ASYNC_HEADER = "x-gpucloud-async"


@dataclass(frozen=True)
class Parsed:
    """A validated request: what to run, what it may cost, how to stream it."""

    model: str
    reserve_tokens: int
    stream: bool
    include_usage: bool
    render_stream: Callable[[dict[str, Any], dict[int, list[str]] | None, bool], str] | None


def _parse_chat(body: dict[str, Any], settings: Settings) -> Parsed:
    chat = parse_chat_request(body, settings.max_n, settings.max_tokens_cap)
    return Parsed(
        chat.model,
        estimated_total_tokens(chat, settings.default_max_tokens),
        bool(chat.stream),
        chat.wants_usage_chunk(),
        sse_body,
    )


def _parse_text(body: dict[str, Any], settings: Settings) -> Parsed:
    text = parse_completion_request(body, settings.max_n, settings.max_tokens_cap)
    answer = (text.max_tokens or CompletionRequest.DEFAULT_MAX_TOKENS) * (text.n or 1)
    reserve = sum(count_tokens(p) + MESSAGE_OVERHEAD_TOKENS + answer for p in text.prompts())
    return Parsed(text.model, reserve, bool(text.stream), text.wants_usage_chunk(), text_sse_body)


def _parse_embedding(body: dict[str, Any], settings: Settings) -> Parsed:
    embedding = parse_embedding_request(body)
    return Parsed(embedding.model, sum(count_tokens(i) for i in embedding.inputs()), False, False, None)


_PARSERS: dict[str, Callable[[dict[str, Any], Settings], Parsed]] = {
    CHAT: _parse_chat,
    TEXT: _parse_text,
    EMBEDDING: _parse_embedding,
}


def check_model_allowed(api_key: ApiKey, model: str) -> None:
    if api_key.allowed_models is not None and model not in api_key.allowed_models:
        raise ModelNotAllowed(
            f"This API key may not use the model '{model}'. It may use: {', '.join(api_key.allowed_models)}.",
            param="model",
        )


def wants_async(request: Request) -> bool:
    return (request.headers.get(ASYNC_HEADER) or "").strip().lower() in {"true", "1", "yes"}


def create(kind: str, request: Request, services: Services) -> Response:
    # The key first: a caller without one learns nothing about the body.
    authorization = request.headers.get("authorization")
    api_key = authenticate(authorization, services.key_cache)
    body = parse_json_body(request.raw_body, services.settings.max_body_bytes)
    parsed = _PARSERS[kind](body, services.settings)
    admission = admit(authorization, services, requests=1, tokens=parsed.reserve_tokens, api_key=api_key)
    try:
        return _serve(kind, request, services, admission, body, parsed)
    except NotQueued as refused:
        # Refused before it reached the queue: give the reserved tokens back (if any were: with Redis
        # down nothing was, and a refund would only spend another connection attempt on it).
        if admission.limits is not None:
            services.rate_limiter.settle(
                [Settlement(admission.api_key.id, admission.limits.month, parsed.reserve_tokens, 0)]
            )
        raise with_limit_headers(refused.error, admission) from None
    except GpuCloudError as error:
        raise with_limit_headers(error, admission) from None


class NotQueued(Exception):
    """A request refused after admission, before any job was written."""

    def __init__(self, error: GpuCloudError) -> None:
        super().__init__(error.message)
        self.error = error


def _serve(
    kind: str,
    request: Request,
    services: Services,
    admission: Admission,
    body: dict[str, Any],
    parsed: Parsed,
) -> Response:
    try:
        check_model_allowed(admission.api_key, parsed.model)
        deployment = resolve(parsed.model, services.deployment_cache)
        job = jobs.submit(
            services,
            admission.api_key,
            deployment,
            kind,
            body,
            # Only what the limiter reserved is settled by the worker: nothing when Redis was down.
            reserved_tokens=parsed.reserve_tokens if admission.limits is not None else 0,
            reserved_month=admission.limits.month if admission.limits is not None else current_month(),
        )
    except GpuCloudError as error:
        raise NotQueued(error) from None
    headers = admission.headers()
    if wants_async(request):
        return Response(
            body=job_view(job), status_code=202, headers={**headers, "Location": f"/v1/jobs/{job.job_id}"}
        )
    outcome = jobs.wait_for_outcome(services, job.job_id, services.settings.result_timeout_seconds)
    answer = jobs.result_or_error(job.job_id, outcome)
    if not parsed.stream or parsed.render_stream is None:
        return Response(body=answer, headers=headers)
    return Response(
        body=parsed.render_stream(answer, _stream_deltas(services, job.job_id), parsed.include_usage),
        headers={**headers, "Content-Type": "text/event-stream", "Cache-Control": "no-cache"},
    )


def _stream_deltas(services: Services, job_id: str) -> dict[int, list[str]] | None:
    try:
        return read_deltas(services.redis, job_id)
    except redis.RedisError:
        return None
