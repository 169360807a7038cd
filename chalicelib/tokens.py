"""Token counting for metering and limits.

A word-and-punctuation count, documented as GPU Cloud's token unit for the
simulated model; an upstream backend reports its own tokenizer's usage and
that figure is metered instead.
"""

from __future__ import annotations

import re

from chalicelib.openai_schema import ChatCompletionRequest

TOKEN_PATTERN = re.compile(r"\w+|[^\w\s]")
# Per-message framing tokens, as chat templates add role markers.
MESSAGE_OVERHEAD_TOKENS = 3


def split_pieces(text: str) -> list[str]:
    """Text cut into the pieces that stream out, one per token, spaces kept."""
    pieces: list[str] = []
    last = 0
    for match in TOKEN_PATTERN.finditer(text):
        pieces.append(text[last : match.end()])
        last = match.end()
    if last < len(text):
        if pieces:
            pieces[-1] += text[last:]
        else:
            pieces.append(text[last:])
    return pieces


def count_tokens(text: str) -> int:
    return len(TOKEN_PATTERN.findall(text))


def prompt_tokens(request: ChatCompletionRequest) -> int:
    return sum(count_tokens(m.text()) + MESSAGE_OVERHEAD_TOKENS for m in request.messages)


def estimated_total_tokens(request: ChatCompletionRequest, default_max_tokens: int) -> int:
    """What a request may cost, reserved against the key's tokens-per-minute."""
    completion = request.token_limit() or default_max_tokens
    return prompt_tokens(request) + completion * (request.n or 1)
