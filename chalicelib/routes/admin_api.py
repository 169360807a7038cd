"""The admin API under /api (the admin token is checked by the edge middleware)."""

from __future__ import annotations

from typing import Any

from chalice import Blueprint, Response

from chalicelib import admin, deployment_admin, dlq
from chalicelib.http import admin_cors, guard
from chalicelib.services import get_services

admin_api = Blueprint(__name__)
ADMIN_CORS = admin_cors()


@admin_api.route("/api/keys", methods=["POST"], content_types=["application/json"], cors=ADMIN_CORS)
@guard
def create_key() -> Response:
    return Response(body=admin.create_key(admin_api.current_request, get_services()), status_code=201)


@admin_api.route("/api/keys", methods=["GET"], cors=ADMIN_CORS)
@guard
def list_keys() -> dict[str, Any]:
    return admin.list_keys()


@admin_api.route("/api/keys/{key_id}", methods=["GET"], cors=ADMIN_CORS)
@guard
def get_key(key_id: str) -> dict[str, Any]:
    return admin.get_key(key_id)


@admin_api.route("/api/keys/{key_id}", methods=["PATCH"], content_types=["application/json"], cors=ADMIN_CORS)
@guard
def update_key(key_id: str) -> dict[str, Any]:
    return admin.update_key(key_id, admin_api.current_request, get_services())


@admin_api.route("/api/keys/{key_id}", methods=["DELETE"], cors=ADMIN_CORS)
@guard
def revoke_key(key_id: str) -> dict[str, Any]:
    return admin.revoke_key(key_id, get_services())


@admin_api.route("/api/deployments", methods=["POST"], content_types=["application/json"], cors=ADMIN_CORS)
@guard
def create_deployment() -> Response:
    created = deployment_admin.create_deployment(admin_api.current_request, get_services())
    return Response(body=created, status_code=201)


@admin_api.route("/api/deployments", methods=["GET"], cors=ADMIN_CORS)
@guard
def list_deployments() -> dict[str, Any]:
    return deployment_admin.list_deployments()


@admin_api.route("/api/deployments/{name}", methods=["GET"], cors=ADMIN_CORS)
@guard
def get_deployment(name: str) -> dict[str, Any]:
    return deployment_admin.get_deployment(name)


@admin_api.route(
    "/api/deployments/{name}", methods=["PATCH"], content_types=["application/json"], cors=ADMIN_CORS
)
@guard
def update_deployment(name: str) -> dict[str, Any]:
    return deployment_admin.update_deployment(name, admin_api.current_request, get_services())


@admin_api.route("/api/deployments/{name}", methods=["DELETE"], cors=ADMIN_CORS)
@guard
def delete_deployment(name: str) -> dict[str, Any]:
    return deployment_admin.delete_deployment(name, get_services())


@admin_api.route("/api/dlq", methods=["GET"], cors=ADMIN_CORS)
@guard
def list_dead_letters() -> dict[str, Any]:
    return dlq.list_dead_letters(get_services())


@admin_api.route("/api/dlq/redrive", methods=["POST"], cors=ADMIN_CORS)
@guard
def redrive_dead_letters() -> dict[str, Any]:
    return dlq.redrive(get_services())
