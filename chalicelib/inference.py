"""What a job asks of its model, per kind, and the OpenAI body of the answer.

One place knows the three kinds the API serves: chat completions, legacy
text completions (asked of the deployment as a chat turn per prompt) and
embeddings.
"""

from __future__ import annotations

import base64
import struct
from dataclasses import dataclass
from typing import Any

from chalicelib.backends.base import DeltaSink, Generation, ModelBackend
from chalicelib.openai_schema import (
    EMBEDDING_DIMENSIONS,
    ChatCompletionRequest,
    CompletionRequest,
    EmbeddingRequest,
)
from chalicelib.responses import chat_completion_body, usage_body

CHAT = "chat.completion"
TEXT = "text_completion"
EMBEDDING = "embedding"


@dataclass(frozen=True)
class Answer:
    body: dict[str, Any]
    prompt_tokens: int
    completion_tokens: int


def perform(
    kind: str,
    request: dict[str, Any],
    backend: ModelBackend,
    job_id: str,
    model: str,
    created: int,
    on_delta: DeltaSink | None,
) -> Answer:
    if kind == CHAT:
        chat = ChatCompletionRequest.model_validate(request)
        generation = backend.chat(chat, on_delta=on_delta)
        body = chat_completion_body(job_id, model, created, generation)
        return Answer(body, generation.prompt_tokens, generation.completion_tokens)
    if kind == TEXT:
        return _text_completion(
            CompletionRequest.model_validate(request), backend, job_id, model, created, on_delta
        )
    if kind == EMBEDDING:
        return _embeddings(EmbeddingRequest.model_validate(request), backend, model)
    raise ValueError(f"unknown job kind '{kind}'")


def _text_completion(
    request: CompletionRequest,
    backend: ModelBackend,
    job_id: str,
    model: str,
    created: int,
    on_delta: DeltaSink | None,
) -> Answer:
    per_prompt = request.n or 1
    choices: list[dict[str, Any]] = []
    prompt_tokens = completion_tokens = 0
    for position, prompt in enumerate(request.prompts()):
        offset = position * per_prompt

        def shifted(index: int, piece: str, offset: int = offset) -> None:
            if on_delta is not None:
                on_delta(index + offset, piece)

        generation: Generation = backend.chat(request.as_chat(prompt), on_delta=shifted)
        prompt_tokens += generation.prompt_tokens
        completion_tokens += generation.completion_tokens
        for choice in generation.choices:
            choices.append(
                {
                    "text": choice.content or "",
                    "index": choice.index + offset,
                    "logprobs": None,
                    "finish_reason": choice.finish_reason,
                }
            )
    body = {
        "id": f"cmpl-{job_id}",
        "object": "text_completion",
        "created": created,
        "model": model,
        "choices": choices,
        "usage": usage_body(prompt_tokens, completion_tokens),
    }
    return Answer(body, prompt_tokens, completion_tokens)


def encode_base64(vector: list[float]) -> str:
    """As OpenAI sends it: little-endian float32, base64."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


def _embeddings(request: EmbeddingRequest, backend: ModelBackend, model: str) -> Answer:
    result = backend.embed(request.inputs(), request.dimensions or EMBEDDING_DIMENSIONS)
    data = [
        {
            "object": "embedding",
            "index": index,
            "embedding": encode_base64(vector) if request.encoding_format == "base64" else vector,
        }
        for index, vector in enumerate(result.vectors)
    ]
    body = {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": result.prompt_tokens, "total_tokens": result.prompt_tokens},
    }
    return Answer(body, result.prompt_tokens, 0)
