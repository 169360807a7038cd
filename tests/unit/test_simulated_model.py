"""The simulated model: deterministic, and honouring the request's limits."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib.backends.simulated import FAILURE_TRIGGER, SimulatedBackend, SimulatedFailure
from chalicelib.openai_schema import ChatCompletionRequest
from chalicelib.tokens import count_tokens


def request(**fields: Any) -> ChatCompletionRequest:
    body = {"model": "m", "messages": [{"role": "user", "content": "Tell me about queues"}], **fields}
    return ChatCompletionRequest.model_validate(body)


def generate(**fields: Any) -> Any:
    return SimulatedBackend({}).chat(request(**fields), on_delta=None)


def test_same_request_and_seed_give_the_same_answer() -> None:
    assert generate(seed=3) == generate(seed=3)
    assert generate(seed=3).choices[0].content != generate(seed=4).choices[0].content


def test_max_tokens_cuts_with_finish_reason_length() -> None:
    for field in ("max_tokens", "max_completion_tokens"):
        result = generate(**{field: 2})
        assert result.choices[0].finish_reason == "length"
        assert result.completion_tokens == 2


def test_usage_counts_the_text_it_returns() -> None:
    result = generate(seed=1)
    assert result.completion_tokens == count_tokens(result.choices[0].content)
    assert result.prompt_tokens > 0


def test_stop_cuts_before_the_stop_sequence() -> None:
    full = generate(seed=5).choices[0].content
    word = full.split()[2]
    stopped = generate(seed=5, stop=word).choices[0].content
    assert word not in stopped
    assert full.startswith(stopped)


def test_n_gives_n_distinct_choices() -> None:
    result = generate(n=3, seed=2)
    assert [c.index for c in result.choices] == [0, 1, 2]
    assert len({c.content for c in result.choices}) == 3
    assert result.completion_tokens == sum(c.completion_tokens for c in result.choices)


def test_json_object_format_returns_valid_json() -> None:
    content = generate(response_format={"type": "json_object"}).choices[0].content
    assert isinstance(json.loads(content), dict)


def test_required_tool_call_satisfies_its_schema() -> None:
    tool = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {
                "type": "object",
                "properties": {
                    "city": {"type": "string"},
                    "days": {"type": "integer", "minimum": 1, "maximum": 7},
                    "unit": {"type": "string", "enum": ["c", "f"]},
                },
                "required": ["city", "days", "unit"],
            },
        },
    }
    choice = generate(tools=[tool], tool_choice="required").choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.tool_calls[0]
    assert call["function"]["name"] == "get_weather"
    arguments = json.loads(call["function"]["arguments"])
    assert isinstance(arguments["city"], str)
    assert 1 <= arguments["days"] <= 7
    assert arguments["unit"] == "c"


def test_deltas_stream_out_the_same_text() -> None:
    pieces: list[str] = []
    result = SimulatedBackend({}).chat(request(seed=9), on_delta=lambda _i, piece: pieces.append(piece))
    assert "".join(pieces) == result.choices[0].content
    assert len(pieces) == result.completion_tokens


def test_a_prompt_can_ask_it_to_fail() -> None:
    with pytest.raises(SimulatedFailure):
        SimulatedBackend({}).chat(
            ChatCompletionRequest.model_validate(
                {"model": "m", "messages": [{"role": "user", "content": FAILURE_TRIGGER}]}
            ),
            on_delta=None,
        )
