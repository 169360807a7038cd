"""The simulated model: deterministic text that stands in for a GPU.

The same request and seed always give the same answer. It honours
`max_tokens`/`max_completion_tokens` (finish_reason `length`), `stop`, `n`,
`response_format: json_object` (valid JSON) and required tools (a tool call
whose arguments satisfy the tool's JSON schema). Latency is per deployment:
`ttft_ms` before the first token, `per_token_ms` after each token.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import time
from typing import Any

from chalicelib.backends.base import Choice, DeltaSink, Embeddings, Generation, ModelError
from chalicelib.openai_schema import ChatCompletionRequest
from chalicelib.tokens import count_tokens, prompt_tokens, split_pieces

_WORDS = (
    "the quick model answers every question with calm and careful words about "
    "clouds queues tokens latency graphs keys limits batches workers rollups "
    "and the gentle hum of a simulated GPU that never sleeps"
).split()
FAILURE_TRIGGER = "__gpucloud_fail__"


class SimulatedFailure(ModelError):
    """Raised when a prompt asks the simulated model to fail (for fault tests)."""


def _rng(request: ChatCompletionRequest, index: int) -> random.Random:
    material = json.dumps(
        {
            "messages": [m.model_dump(mode="json", exclude_none=True) for m in request.messages],
            "seed": request.seed,
            "index": index,
            "format": request.response_format.type if request.response_format else None,
        },
        sort_keys=True,
    )
    return random.Random(hashlib.sha256(material.encode()).digest())


def _value_for_schema(schema: dict[str, Any], rng: random.Random, depth: int = 0) -> Any:
    if "enum" in schema and schema["enum"]:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    kind = schema.get("type", "object" if "properties" in schema else "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    if kind == "object":
        properties = schema.get("properties", {}) if depth < 5 else {}
        return {
            name: _value_for_schema(sub if isinstance(sub, dict) else {}, rng, depth + 1)
            for name, sub in properties.items()
        }
    if kind == "array":
        item_schema = schema.get("items", {})
        count = max(int(schema.get("minItems", 1)), 1)
        return [_value_for_schema(item_schema, rng, depth + 1) for _ in range(count)]
    if kind == "integer":
        low = int(schema.get("minimum", 0))
        high = int(schema.get("maximum", low + 100))
        return rng.randint(low, max(low, high))
    if kind == "number":
        low_f = float(schema.get("minimum", 0))
        high_f = float(schema.get("maximum", low_f + 100))
        return round(rng.uniform(low_f, max(low_f, high_f)), 2)
    if kind == "boolean":
        return rng.random() < 0.5
    if kind == "null":
        return None
    return " ".join(rng.choice(_WORDS) for _ in range(2))


def _required_tool(request: ChatCompletionRequest) -> Any:
    if not request.tools or request.tool_choice in (None, "none", "auto"):
        return None
    if request.tool_choice == "required":
        return request.tools[0].function
    wanted = request.tool_choice.function.name  # type: ignore[union-attr]
    for tool in request.tools:
        if tool.function.name == wanted:
            return tool.function
    return request.tools[0].function


class SimulatedBackend:
    name = "simulated"

    def __init__(self, config: dict[str, Any]) -> None:
        self.ttft_ms = float(config.get("ttft_ms", 0))
        self.per_token_ms = float(config.get("per_token_ms", 0))

    def check(self) -> None:
        """Always ready: there is no model to load."""

    def embed(self, inputs: list[str], dimensions: int) -> Embeddings:
        """Deterministic unit-length vectors: the same text, the same vector."""
        vectors = []
        for text in inputs:
            rng = random.Random(hashlib.sha256(text.encode()).digest())
            raw = [rng.gauss(0.0, 1.0) for _ in range(dimensions)]
            norm = math.sqrt(sum(v * v for v in raw)) or 1.0
            vectors.append([v / norm for v in raw])
        return Embeddings(vectors=vectors, prompt_tokens=sum(count_tokens(t) for t in inputs))

    def chat(self, request: ChatCompletionRequest, on_delta: DeltaSink | None) -> Generation:
        if any(FAILURE_TRIGGER in m.text() for m in request.messages):
            raise SimulatedFailure("the simulated model was asked to fail by the prompt")
        if self.ttft_ms:
            time.sleep(self.ttft_ms / 1000)
        choices = [self._choice(request, index, on_delta) for index in range(request.n or 1)]
        return Generation(
            choices=choices,
            prompt_tokens=prompt_tokens(request),
            completion_tokens=sum(c.completion_tokens for c in choices),
        )

    def _choice(self, request: ChatCompletionRequest, index: int, on_delta: DeltaSink | None) -> Choice:
        rng = _rng(request, index)
        tool = _required_tool(request)
        if tool is not None:
            arguments = json.dumps(_value_for_schema(tool.parameters or {}, rng))
            call = {
                "id": f"call_{rng.getrandbits(64):016x}",
                "type": "function",
                "function": {"name": tool.name, "arguments": arguments},
            }
            return Choice(
                index=index,
                content=None,
                tool_calls=[call],
                finish_reason="tool_calls",
                completion_tokens=count_tokens(tool.name) + count_tokens(arguments),
            )
        words = [rng.choice(_WORDS) for _ in range(rng.randint(8, 40))]
        if request.response_format is not None and request.response_format.type == "json_object":
            text = json.dumps({"answer": " ".join(words)})
        else:
            text = " ".join(words).capitalize() + "."
        return self._emit(text, request, index, on_delta)

    def _emit(
        self, text: str, request: ChatCompletionRequest, index: int, on_delta: DeltaSink | None
    ) -> Choice:
        for stop in request.stop_sequences():
            cut = text.find(stop)
            if cut != -1:
                text = text[:cut]
        pieces = split_pieces(text)
        finish_reason = "stop"
        limit = request.token_limit()
        if limit is not None and len(pieces) > limit:
            pieces, finish_reason = pieces[:limit], "length"
        for piece in pieces:
            if self.per_token_ms:
                time.sleep(self.per_token_ms / 1000)
            if on_delta is not None:
                on_delta(index, piece)
        return Choice(
            index=index,
            content="".join(pieces),
            tool_calls=None,
            finish_reason=finish_reason,
            completion_tokens=len(pieces),
        )
