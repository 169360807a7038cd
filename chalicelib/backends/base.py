"""What every model backend returns, whatever runs the model."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from chalicelib.openai_schema import ChatCompletionRequest


class ModelError(RuntimeError):
    """A failure of the model or its backend, worded for the client who asked."""


def failure_reason(exc: BaseException) -> str:
    """What a client may read about a failure: a ModelError's own words, and
    nothing of our internals (class names, traces) for anything else."""
    if isinstance(exc, ModelError):
        return str(exc)
    return "the model failed unexpectedly; the operator can find the details in the worker's log"


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
