from __future__ import annotations

import pytest

from chalicelib.http import admin_cors
from chalicelib.settings import get_settings


@pytest.fixture()
def fresh_settings() -> object:
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_admin_cors_allows_only_the_configured_dashboard_origin(
    monkeypatch: pytest.MonkeyPatch, fresh_settings: object
) -> None:
    monkeypatch.setenv("CORS_ALLOW_ORIGIN", "https://dashboard.example.com")
    cors = admin_cors()
    assert cors is not None
    headers = cors.get_access_control_headers()
    assert headers["Access-Control-Allow-Origin"] == "https://dashboard.example.com"
    assert "Authorization" in headers["Access-Control-Allow-Headers"]


def test_no_cors_without_a_configured_origin(monkeypatch: pytest.MonkeyPatch, fresh_settings: object) -> None:
    monkeypatch.delenv("CORS_ALLOW_ORIGIN", raising=False)
    assert admin_cors() is None
