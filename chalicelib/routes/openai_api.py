"""The OpenAI-compatible API under /v1."""

from __future__ import annotations

from chalice import Blueprint, Response

from chalicelib import inference_api, job_api, metrics, models_api
from chalicelib.http import guard
from chalicelib.inference import CHAT, EMBEDDING, TEXT
from chalicelib.services import get_services

openai_api = Blueprint(__name__)


@openai_api.route("/v1/chat/completions", methods=["POST"], content_types=["application/json"])
@guard
def chat_completions() -> Response:
    return inference_api.create(CHAT, openai_api.current_request, get_services())


@openai_api.route("/v1/completions", methods=["POST"], content_types=["application/json"])
@guard
def completions() -> Response:
    return inference_api.create(TEXT, openai_api.current_request, get_services())


@openai_api.route("/v1/embeddings", methods=["POST"], content_types=["application/json"])
@guard
def embeddings() -> Response:
    return inference_api.create(EMBEDDING, openai_api.current_request, get_services())


@openai_api.route("/v1/models", methods=["GET"])
@guard
def list_models() -> Response:
    return models_api.list_models(openai_api.current_request, get_services())


@openai_api.route("/v1/models/{model_id}", methods=["GET"])
@guard
def get_model(model_id: str) -> Response:
    return models_api.get_model(openai_api.current_request, get_services(), model_id)


@openai_api.route("/v1/jobs/{job_id}", methods=["GET"])
@guard
def get_job(job_id: str) -> Response:
    return job_api.get_job(openai_api.current_request, get_services(), job_id)


@openai_api.route("/v1/jobs/{job_id}", methods=["DELETE"])
@guard
def cancel_job(job_id: str) -> Response:
    return job_api.cancel_job(openai_api.current_request, get_services(), job_id)


@openai_api.route("/v1/usage", methods=["GET"])
@guard
def own_usage() -> Response:
    return metrics.own_usage(openai_api.current_request, get_services())
