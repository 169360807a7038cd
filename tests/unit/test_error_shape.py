"""Every error body a client gets is OpenAI's shape, whoever wrote it first."""

from __future__ import annotations

import json

from chalicelib.errors import error_body, openai_shape_of_chalice_error


def test_chalice_own_errors_are_reshaped_and_ours_are_left_alone() -> None:
    chalice_405 = json.dumps({"Code": "MethodNotAllowedError", "Message": "Unsupported method: PUT"})
    shaped = openai_shape_of_chalice_error(405, chalice_405)
    assert shaped is not None and shaped["error"]["code"] == "method_not_allowed"
    assert shaped["error"]["message"].startswith("Unsupported method: PUT.")
    assert openai_shape_of_chalice_error(404, json.dumps(error_body("gone", "invalid_request_error"))) is None


def test_a_body_that_is_not_json_is_reshaped_without_its_text() -> None:
    # What Chalice answers for its own 500s with debug on: a traceback, never for a client's eyes.
    traceback = "Traceback (most recent call last):\n  File \"/var/task/app.py\" ..."
    for body in (traceback, traceback.encode(), None, ["not", "a", "dict"]):
        shaped = openai_shape_of_chalice_error(500, body)
        assert shaped is not None, body
        assert set(shaped["error"]) == {"message", "type", "param", "code"}
        assert shaped["error"]["type"] == "server_error" and "Traceback" not in shaped["error"]["message"]
