"""Typed models of the OpenAI request bodies we accept.

Validation errors become a 400 `invalid_request_error` naming the offending
`param` (as `messages[0].role`). Unknown fields are accepted and ignored, as
OpenAI does.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from chalicelib.errors import InvalidRequest, PayloadTooLarge


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="allow")


_R = TypeVar("_R", bound=BaseModel)


class TextPart(_Lenient):
    type: Literal["text"]
    text: str


class FunctionCall(_Lenient):
    name: str
    arguments: str


class ToolCall(_Lenient):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class Message(_Lenient):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)


class FunctionDefinition(_Lenient):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    description: str | None = None
    parameters: dict[str, Any] | None = None


class Tool(_Lenient):
    type: Literal["function"]
    function: FunctionDefinition


class NamedToolChoiceFunction(_Lenient):
    name: str


class NamedToolChoice(_Lenient):
    type: Literal["function"]
    function: NamedToolChoiceFunction


class ResponseFormat(_Lenient):
    type: Literal["text", "json_object"]


class StreamOptions(_Lenient):
    include_usage: bool | None = None


class _Generation(_Lenient):
    """What chat and legacy completions share: the model and how to sample."""

    model: str = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    # Its upper bound is the deployment's MAX_N setting, checked in _check_caps.
    n: int | None = Field(default=None, ge=1)
    stop: str | list[str] | None = None
    seed: int | None = None
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    user: str | None = None
    stream: bool | None = None
    stream_options: StreamOptions | None = None

    @field_validator("stop")
    @classmethod
    def _stop_at_most_four(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, list) and len(value) > 4:
            raise ValueError("at most 4 stop sequences are allowed")
        return value

    def stop_sequences(self) -> list[str]:
        # An empty stop sequence would match everywhere: it is ignored.
        if self.stop is None:
            return []
        stops = [self.stop] if isinstance(self.stop, str) else self.stop
        return [s for s in stops if s]

    def wants_usage_chunk(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


class ChatCompletionRequest(_Generation):
    messages: list[Message] = Field(min_length=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    response_format: ResponseFormat | None = None
    tools: list[Tool] | None = None
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None

    @field_validator("logprobs")
    @classmethod
    def _no_logprobs(cls, value: bool | None) -> bool | None:
        if value:
            raise ValueError("logprobs are not supported by GPU Cloud; omit it or set it to false")
        return value

    def token_limit(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens


def _param_of(loc: tuple[int | str, ...]) -> str:
    param = ""
    for part in loc:
        if isinstance(part, int):
            param += f"[{part}]"
        elif part in {"str", "list[TextPart]", "function-after", "literal", "NamedToolChoice"} or (
            "[" in part and part.startswith(("list", "Literal"))
        ):
            # pydantic names union branches in `loc`; they are not fields.
            continue
        else:
            param += ("." if param else "") + part
    return param


def validation_error(exc: ValidationError, prefix: str = "") -> InvalidRequest:
    """The 400 for a body that failed validation; `prefix` names where a nested body sits (`config`)."""
    # Of a union's failed branches, the deepest error says most about the fix.
    errors = exc.errors()
    first = max(errors, key=lambda e: len(e["loc"]))
    param = _param_of(tuple(first["loc"])) or None
    if prefix and param:
        param = f"{prefix}.{param}"
    message = first["msg"]
    if first["type"] == "missing":
        return InvalidRequest(f"Missing required parameter: '{param}'.", param=param)
    if first["type"] == "value_error":
        message = message.removeprefix("Value error, ")
    return InvalidRequest(f"Invalid value for '{param}': {message}.", param=param)


def parse_json_body(raw: bytes | str | None, max_bytes: int) -> dict[str, Any]:
    if raw is not None and len(raw) > max_bytes:
        raise PayloadTooLarge(f"The request body is {len(raw)} bytes; the limit is {max_bytes} bytes.")
    if not raw:
        raise InvalidRequest("The request body is empty; send a JSON object.")
    try:
        body = json.loads(raw)
    except RecursionError:
        raise InvalidRequest("The request body is nested too deeply to be a valid request.") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequest(
            f"The request body is not valid JSON ({exc.__class__.__name__}): check quoting and commas."
        ) from None
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    return body


class CompletionRequest(_Generation):
    """The legacy text completion (`POST /v1/completions`)."""

    prompt: str | list[str] = Field(min_length=1)
    logprobs: int | None = None
    echo: bool | None = None

    # OpenAI's default for this endpoint.
    DEFAULT_MAX_TOKENS: ClassVar[int] = 16

    @field_validator("logprobs")
    @classmethod
    def _no_logprobs(cls, value: int | None) -> int | None:
        if value:
            raise ValueError("logprobs are not supported by GPU Cloud; omit it")
        return value

    @field_validator("echo")
    @classmethod
    def _no_echo(cls, value: bool | None) -> bool | None:
        if value:
            raise ValueError("echo is not supported by GPU Cloud; omit it")
        return value

    def prompts(self) -> list[str]:
        return [self.prompt] if isinstance(self.prompt, str) else list(self.prompt)

    def as_chat(self, prompt: str) -> ChatCompletionRequest:
        """The same generation asked as a chat turn, for backends that only chat."""
        return ChatCompletionRequest(
            model=self.model,
            messages=[Message(role="user", content=prompt)],
            max_tokens=self.max_tokens or self.DEFAULT_MAX_TOKENS,
            n=self.n,
            stop=self.stop,
            seed=self.seed,
        )


EMBEDDING_DIMENSIONS = 256


class EmbeddingRequest(_Lenient):
    model: str = Field(min_length=1)
    input: str | list[str] = Field(min_length=1)
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(default=None, ge=1, le=EMBEDDING_DIMENSIONS)
    user: str | None = None

    @field_validator("input")
    @classmethod
    def _at_most_2048(cls, value: str | list[str]) -> str | list[str]:
        if isinstance(value, list) and len(value) > 2048:
            raise ValueError("at most 2048 inputs per request")
        if isinstance(value, list) and any(not item for item in value):
            raise ValueError("inputs may not be empty strings")
        return value

    def inputs(self) -> list[str]:
        return [self.input] if isinstance(self.input, str) else list(self.input)


def validated(model: type[_R], body: Any, prefix: str = "") -> _R:
    """`body` as `model`, or a 400 in OpenAI's shape naming the parameter to fix."""
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise validation_error(exc, prefix) from None


def _check_caps(n: int | None, max_tokens: int | None, max_n: int, max_tokens_cap: int, param: str) -> None:
    if n is not None and n > max_n:
        raise InvalidRequest(f"Invalid value for 'n': at most {max_n} is supported.", param="n")
    if max_tokens is not None and max_tokens > max_tokens_cap:
        raise InvalidRequest(
            f"Invalid value for '{param}': at most {max_tokens_cap} tokens per answer are supported.",
            param=param,
        )


def parse_completion_request(body: dict[str, Any], max_n: int, max_tokens_cap: int) -> CompletionRequest:
    request = validated(CompletionRequest, body)
    _check_caps(request.n, request.max_tokens, max_n, max_tokens_cap, "max_tokens")
    return request


def parse_embedding_request(body: dict[str, Any]) -> EmbeddingRequest:
    return validated(EmbeddingRequest, body)


def _check_json_schema(schema: dict[str, Any] | None, param: str) -> None:
    """A tool's parameters must be a JSON Schema, as OpenAI requires."""
    if schema is None:
        return
    import jsonschema  # only requests with tools pay for it

    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        where = "/".join(str(p) for p in exc.path) or "the top level"
        raise InvalidRequest(
            f"Invalid schema for '{param}': {exc.message} (at {where}).", param=param
        ) from None


def parse_chat_request(body: dict[str, Any], max_n: int, max_tokens_cap: int) -> ChatCompletionRequest:
    request = validated(ChatCompletionRequest, body)
    param = "max_completion_tokens" if request.max_completion_tokens else "max_tokens"
    _check_caps(request.n, request.token_limit(), max_n, max_tokens_cap, param)
    for index, tool in enumerate(request.tools or []):
        _check_json_schema(tool.function.parameters, f"tools[{index}].function.parameters")
    if request.tool_choice not in (None, "none", "auto") and not request.tools:
        raise InvalidRequest(
            "'tool_choice' is set but 'tools' is empty: pass the tools to choose from.",
            param="tool_choice",
        )
    return request
