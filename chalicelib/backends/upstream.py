"""A real OpenAI-compatible upstream (vLLM, Ollama, llama.cpp, OpenAI, another GPU Cloud).

The worker calls `{base_url}/chat/completions` with httpx: bounded timeouts,
retries with exponential backoff on 429 and 5xx and on connection errors,
streaming passed through delta by delta, and the upstream's own `usage`
metered (asked for with `stream_options.include_usage` when streaming).
"""

from __future__ import annotations

import json
import random
import threading
import time
from typing import Any

import httpx

from chalicelib.backends.base import Choice, DeltaSink, Embeddings, Generation, ModelError
from chalicelib.openai_schema import ChatCompletionRequest

RETRY_STATUSES = {429, 500, 502, 503, 504}

_clients: dict[tuple[str, float], httpx.Client] = {}
_clients_lock = threading.Lock()


class UpstreamError(ModelError):
    """The upstream failed in a way a retry of the job may fix."""


def _client(base_url: str, timeout: float) -> httpx.Client:
    """One pooled client per upstream per process, not one per request."""
    key = (base_url, timeout)
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = httpx.Client(
                base_url=base_url.rstrip("/") + "/",
                timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            )
            _clients[key] = client
        return client


class UpstreamBackend:
    name = "openai"

    def __init__(self, config: dict[str, Any], api_key: str | None) -> None:
        self.base_url = str(config["base_url"])
        self.model = str(config.get("model") or "")
        self.timeout = float(config.get("timeout_s", 60))
        self.max_retries = int(config.get("max_retries", 2))
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}

    def check(self) -> None:
        """Provisioning: the upstream answers and serves the model."""
        response = self._send("GET", "models", None)
        listed = {m.get("id") for m in response.json().get("data", [])}
        if self.model and listed and self.model not in listed:
            raise UpstreamError(f"the upstream does not serve the model '{self.model}'")

    def embed(self, inputs: list[str], dimensions: int) -> Embeddings:
        body: dict[str, Any] = {"model": self.model, "input": inputs, "encoding_format": "float"}
        answer = self._send("POST", "embeddings", body).json()
        rows = sorted(answer.get("data", []), key=lambda row: row.get("index", 0))
        vectors = [list(row["embedding"])[:dimensions] for row in rows]
        return Embeddings(
            vectors=vectors, prompt_tokens=int((answer.get("usage") or {}).get("prompt_tokens", 0))
        )

    def chat(self, request: ChatCompletionRequest, on_delta: DeltaSink | None) -> Generation:
        body = request.model_dump(mode="json", exclude_none=True)
        body["model"] = self.model or request.model
        if on_delta is None:
            body.pop("stream", None)
            body.pop("stream_options", None)
            return _generation_of(self._send("POST", "chat/completions", body).json())
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
        return self._stream(body, on_delta)

    def _send(self, method: str, path: str, body: dict[str, Any] | None) -> httpx.Response:
        client = _client(self.base_url, self.timeout)
        for attempt in range(self.max_retries + 1):
            try:
                response = client.request(method, path, json=body, headers=self._headers)
            except httpx.TransportError as exc:
                if attempt == self.max_retries:
                    raise UpstreamError(f"the upstream did not answer ({_why(exc)})") from None
            else:
                if response.status_code < 400:
                    return response
                if response.status_code not in RETRY_STATUSES or attempt == self.max_retries:
                    raise UpstreamError(f"the upstream answered HTTP {response.status_code}")
            time.sleep(min(0.2 * 2**attempt, 2.0) * random.uniform(0.5, 1.0))
        raise UpstreamError("the upstream did not answer")

    def _stream(self, body: dict[str, Any], on_delta: DeltaSink) -> Generation:
        client = _client(self.base_url, self.timeout)
        contents: dict[int, list[str]] = {}
        finish: dict[int, str] = {}
        tool_calls: dict[int, list[dict[str, Any]]] = {}
        usage: dict[str, int] = {}
        try:
            with client.stream("POST", "chat/completions", json=body, headers=self._headers) as response:
                if response.status_code >= 400:
                    raise UpstreamError(f"the upstream answered HTTP {response.status_code}")
                for line in response.iter_lines():
                    if not line.startswith("data:"):
                        continue
                    payload = line[len("data:") :].strip()
                    if payload == "[DONE]":
                        break
                    chunk = json.loads(payload)
                    usage = chunk.get("usage") or usage
                    for choice in chunk.get("choices", []):
                        index = int(choice.get("index", 0))
                        delta = choice.get("delta") or {}
                        if delta.get("content"):
                            contents.setdefault(index, []).append(delta["content"])
                            on_delta(index, delta["content"])
                        for call_delta in delta.get("tool_calls") or []:
                            _merge_tool_call(tool_calls.setdefault(index, []), call_delta)
                        if choice.get("finish_reason"):
                            finish[index] = choice["finish_reason"]
        except httpx.TransportError as exc:
            raise UpstreamError(f"the upstream's stream broke off ({_why(exc)})") from None
        indexes = sorted(set(contents) | set(finish) | set(tool_calls)) or [0]
        choices = [
            Choice(
                index=i,
                content="".join(contents.get(i, [])) if i in contents or i not in tool_calls else None,
                tool_calls=tool_calls.get(i),
                finish_reason=finish.get(i, "stop"),
                completion_tokens=0,
            )
            for i in indexes
        ]
        return Generation(
            choices=choices,
            prompt_tokens=int(usage.get("prompt_tokens", 0)),
            completion_tokens=int(usage.get("completion_tokens", 0)),
        )


def _why(exc: httpx.TransportError) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    if isinstance(exc, httpx.ConnectError):
        return "connection refused or unreachable"
    return "connection lost"


def _merge_tool_call(calls: list[dict[str, Any]], delta: dict[str, Any]) -> None:
    """Tool calls stream as fragments: the first names it, the rest add arguments."""
    position = int(delta.get("index", len(calls)))
    while len(calls) <= position:
        calls.append({"id": "", "type": "function", "function": {"name": "", "arguments": ""}})
    call = calls[position]
    call["id"] = delta.get("id") or call["id"]
    function = delta.get("function") or {}
    call["function"]["name"] += function.get("name") or ""
    call["function"]["arguments"] += function.get("arguments") or ""


def _generation_of(completion: dict[str, Any]) -> Generation:
    usage = completion.get("usage") or {}
    choices = [
        Choice(
            index=int(c.get("index", i)),
            content=(c.get("message") or {}).get("content"),
            tool_calls=(c.get("message") or {}).get("tool_calls"),
            finish_reason=c.get("finish_reason") or "stop",
            completion_tokens=0,
        )
        for i, c in enumerate(completion.get("choices", []))
    ]
    return Generation(
        choices=choices,
        prompt_tokens=int(usage.get("prompt_tokens", 0)),
        completion_tokens=int(usage.get("completion_tokens", 0)),
    )
