"""What every model backend returns, whatever runs the model."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from chalicelib.openai_schema import ChatCompletionRequest

# Called with (choice index, text piece) as the model produces each token.
DeltaSink = Callable[[int, str], None]


@dataclass(frozen=True)
class Choice:
    index: int
    content: str | None
    tool_calls: list[dict[str, Any]] | None
    finish_reason: str
    completion_tokens: int


@dataclass(frozen=True)
class Generation:
    choices: list[Choice]
    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True)
class Embeddings:
    vectors: list[list[float]]
    prompt_tokens: int


class ModelBackend(Protocol):
    name: str

    def embed(self, inputs: list[str], dimensions: int) -> Embeddings: ...

    def chat(self, request: ChatCompletionRequest, on_delta: DeltaSink | None) -> Generation: ...

    def check(self) -> None:
        """Raise if the backend cannot serve (provisioning)."""
