"""OpenAI response bodies built from a model's Generation."""

from __future__ import annotations

from typing import Any

from chalicelib.backends.base import Generation

SYSTEM_FINGERPRINT = "fp_gpucloud"


def usage_body(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def chat_completion_body(job_id: str, model: str, created: int, generation: Generation) -> dict[str, Any]:
    choices = []
    for choice in generation.choices:
        message: dict[str, Any] = {
            "role": "assistant",
            "content": choice.content,
            "refusal": None,
        }
        if choice.tool_calls:
            message["tool_calls"] = choice.tool_calls
        choices.append(
            {
                "index": choice.index,
                "message": message,
                "logprobs": None,
                "finish_reason": choice.finish_reason,
            }
        )
    return {
        "id": f"chatcmpl-{job_id}",
        "object": "chat.completion",
        "created": created,
        "model": model,
        "system_fingerprint": SYSTEM_FINGERPRINT,
        "choices": choices,
        "usage": usage_body(generation.prompt_tokens, generation.completion_tokens),
    }
