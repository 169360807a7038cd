"""Request validation names the offending parameter, as OpenAI does."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.errors import InvalidRequest, PayloadTooLarge
from chalicelib.openai_schema import parse_chat_request, parse_json_body

BASE: dict[str, Any] = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
        (
            {"messages": [{"role": "user", "content": [{"type": "image", "x": 1}]}]},
            "messages[0].content[0].type",
        ),
        ({"temperature": 2.5}, "temperature"),
        ({"top_p": -1}, "top_p"),
        ({"n": 0}, "n"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"stop": ["1", "2", "3", "4", "5"]}, "stop"),
        ({"presence_penalty": 3}, "presence_penalty"),
        ({"logprobs": True}, "logprobs"),
        ({"response_format": {"type": "xml"}}, "response_format.type"),
        ({"tool_choice": "required"}, "tool_choice"),
    ],
)
def test_invalid_parameters_name_the_param(change: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        parse_chat_request({**BASE, **change}, max_n=8, max_tokens_cap=4096)
    assert raised.value.param == param
    assert raised.value.status == 400
    assert param.split("[")[0].split(".")[0] in raised.value.message


def test_missing_model_is_named() -> None:
    with pytest.raises(InvalidRequest) as raised:
        parse_chat_request({"messages": BASE["messages"]}, max_n=8, max_tokens_cap=4096)
    assert raised.value.param == "model"
    assert "Missing required parameter" in raised.value.message


def test_unknown_fields_are_accepted_and_text_parts_work() -> None:
    parsed = parse_chat_request(
        {
            **BASE,
            "some_future_field": 1,
            "messages": [{"role": "user", "content": [{"type": "text", "text": "a"}]}],
        },
        max_n=8,
        max_tokens_cap=4096,
    )
    assert parsed.messages[0].text() == "a"


def test_n_above_the_documented_cap_is_rejected() -> None:
    with pytest.raises(InvalidRequest) as raised:
        parse_chat_request({**BASE, "n": 8}, max_n=4, max_tokens_cap=4096)
    assert raised.value.param == "n"


def test_body_limits_and_non_json() -> None:
    with pytest.raises(PayloadTooLarge):
        parse_json_body(b"x" * 101, max_bytes=100)
    with pytest.raises(InvalidRequest):
        parse_json_body(b"\xff\xfe", max_bytes=100)
    with pytest.raises(InvalidRequest):
        parse_json_body(b"[1, 2]", max_bytes=100)


def test_max_tokens_above_the_cap_is_refused_naming_the_param() -> None:
    for param in ("max_tokens", "max_completion_tokens"):
        with pytest.raises(InvalidRequest) as raised:
            parse_chat_request({**BASE, param: 5000}, max_n=8, max_tokens_cap=4096)
        assert raised.value.param == param
