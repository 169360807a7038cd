"""The dashboard in headless Chromium (Debian's, never a downloaded one), against the session's stack."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, ViewportSize, expect, sync_playwright

from infra.local.launcher import RunningStack
from tests.browser import CHROMIUM, CHROMIUM_ARGS
from tests.conftest import OUTPUT

SCREENSHOTS = OUTPUT / "screenshots"
DESKTOP: ViewportSize = {"width": 1280, "height": 900}
PHONE: ViewportSize = {"width": 390, "height": 844}
TOKEN_KEY = "gpucloud.adminToken"

# Provisioning and the worker take a moment; the page polls, the test waits.
expect.set_options(timeout=15_000)


@pytest.fixture(scope="session")
def chromium() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing: install Debian's chromium to run the dashboard's browser tests"
        print(reason)
        pytest.skip(reason)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def dashboard_url(stack: RunningStack) -> str:
    return f"{stack.api_url}/dashboard/"


def new_context(browser: Browser, viewport: ViewportSize, token: str | None = None) -> BrowserContext:
    context = browser.new_context(viewport=viewport, locale="en-US", timezone_id="UTC")
    context.set_default_timeout(15_000)
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    if token is not None:
        # Signed in as after the sign-in form (tested on its own): the token in session storage.
        context.add_init_script(f"sessionStorage.setItem({TOKEN_KEY!r}, {token!r})")
    return context


@pytest.fixture()
def page_errors() -> list[str]:
    return []


def _watch(page: Page, errors: list[str]) -> Page:
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return page


@pytest.fixture()
def page(chromium: Browser, page_errors: list[str]) -> Iterator[Page]:
    """A fresh tab, not signed in."""
    context = new_context(chromium, DESKTOP)
    yield _watch(context.new_page(), page_errors)
    context.close()
    assert page_errors == [], f"uncaught errors in the page: {page_errors}"


@pytest.fixture()
def signed_in(chromium: Browser, stack: RunningStack, page_errors: list[str]) -> Iterator[Page]:
    """A fresh tab with the admin token in session storage."""
    context = new_context(chromium, DESKTOP, stack.admin_token)
    yield _watch(context.new_page(), page_errors)
    context.close()
    assert page_errors == [], f"uncaught errors in the page: {page_errors}"


@pytest.fixture()
def phone(chromium: Browser, stack: RunningStack, page_errors: list[str]) -> Iterator[Page]:
    """A signed-in tab as wide as a phone."""
    context = new_context(chromium, PHONE, stack.admin_token)
    yield _watch(context.new_page(), page_errors)
    context.close()
    assert page_errors == [], f"uncaught errors in the page: {page_errors}"


def screenshot(page: Page, name: str) -> Path:
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
