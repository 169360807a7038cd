"""The dashboard as an operator uses it, in headless Chromium, against the running local stack.

Each test saves screenshots under test-output/screenshots/. Waiting is
Playwright's own (expect(...) retries until its timeout): no sleeps.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import openai
import pytest
from playwright.sync_api import Locator, Page, Route, expect

from infra.local.launcher import RunningStack
from tests.e2e.conftest import TOKEN_KEY, screenshot

pytestmark = pytest.mark.stack

KEY_PATTERN = re.compile(r"^gpc_[0-9A-Za-z]{36}$")
MESSAGES: Any = [{"role": "user", "content": "Hello from the dashboard test."}]
# Every form control a person can reach must have a name a screen reader reads out.
UNLABELLED_CONTROLS = """() => [...document.querySelectorAll('input, select, textarea, button')]
  .filter((el) => el.offsetParent !== null && el.type !== 'hidden')
  .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute('aria-label'))
  .filter((el) => !el.getAttribute('aria-labelledby') && !(el.tagName === 'BUTTON' && el.textContent.trim()))
  .map((el) => el.outerHTML.slice(0, 120))"""


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def open_page(page: Page, dashboard_url: str, name: str) -> Locator:
    """Go to a page of the dashboard and wait until its data is on screen."""
    page.goto(f"{dashboard_url}#/{name}")
    region = page.locator(f"main[data-page={name}] [data-state]").first
    expect(region).to_have_attribute("data-state", "ready")
    return region


def card(page: Page, test_id: str) -> Locator:
    return page.get_by_test_id(test_id)


def expect_totals(page: Page, totals: dict[str, Any]) -> None:
    """The overview's cards show exactly what /api/metrics returned."""
    for test_id, value in (
        ("total-requests", totals["requests"]),
        ("total-tokens", totals["total_tokens"]),
        ("total-errors", totals["errors"]),
    ):
        expect(card(page, test_id)).to_have_text(f"{value:,}")
    for name in ("p50", "p95"):
        latency = totals["latency_ms"][name]
        expect(card(page, f"latency-{name}")).to_have_text("—" if latency is None else f"{latency:,} ms")


def wait_ready(page: Page) -> None:
    expect(page.get_by_test_id("overview")).to_have_attribute("data-state", "ready")


def overview_after(page: Page, action: Callable[[], object]) -> dict[str, Any]:
    """Do `action`, wait for the overview to show the data it loaded, and return that /api/metrics answer."""
    with page.expect_response(lambda r: "/api/metrics?" in r.url and r.request.method == "GET") as answer:
        action()
    wait_ready(page)
    metrics: dict[str, Any] = answer.value.json()
    return metrics


def test_sign_in_rejects_a_wrong_token_and_sign_out_forgets_it(
    page: Page, dashboard_url: str, stack: RunningStack
) -> None:
    # GIVEN the dashboard, not signed in
    page.goto(dashboard_url)
    expect(page.get_by_role("heading", name="Sign in to the dashboard")).to_be_visible()
    expect(page.get_by_label("Admin token")).to_be_focused()

    # WHEN a wrong token is entered, THEN the page says so and stays on the form
    page.get_by_label("Admin token").fill("not-the-admin-token")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("That admin token is not correct. Check it and try again.")
    expect(page.get_by_label("Admin token")).to_have_attribute("aria-invalid", "true")
    screenshot(page, "01-sign-in-wrong-token")

    # WHEN the right one is entered, THEN the overview opens and the token is in session storage
    page.get_by_label("Admin token").fill(stack.admin_token)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Overview", level=1)).to_be_visible()
    expect(page.get_by_role("link", name="Overview")).to_have_attribute("aria-current", "page")
    assert page.evaluate(f"sessionStorage.getItem({TOKEN_KEY!r})") == stack.admin_token
    assert page.evaluate(f"localStorage.getItem({TOKEN_KEY!r})") is None

    # WHEN signing out, THEN the token is gone, also after a reload
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in to the dashboard")).to_be_visible()
    assert page.evaluate(f"sessionStorage.getItem({TOKEN_KEY!r})") is None
    page.reload()
    expect(page.get_by_label("Admin token")).to_be_visible()


def test_a_key_from_creation_to_revocation_with_the_openai_sdk(
    signed_in: Page, dashboard_url: str, stack: RunningStack, admin: httpx.Client
) -> None:
    page = signed_in
    name = unique("e2e key")

    # GIVEN a key created in the dashboard with a limit and one allowed model
    open_page(page, dashboard_url, "keys")
    page.get_by_role("button", name="Create key").click()
    dialog = page.get_by_role("dialog", name="Create an API key")
    dialog.get_by_label("Name", exact=True).fill(name)
    dialog.get_by_label("Requests per minute").fill("120")
    dialog.get_by_label("gpt-3.5-turbo", exact=True).check()
    dialog.get_by_role("button", name="Create key").click()

    # THEN the full key is shown once, with a copy button and a warning
    shown = page.get_by_role("dialog", name="Your new API key")
    expect(shown).to_contain_text("It will not be shown again")
    secret = shown.get_by_test_id("new-key").input_value()
    assert KEY_PATTERN.match(secret), secret
    shown.get_by_role("button", name="Copy").click()
    expect(shown.get_by_role("status")).to_have_text("Copied to the clipboard.")
    screenshot(page, "02-key-created-dialog")
    shown.get_by_role("button", name="Done").click()
    expect(shown).to_be_hidden()

    row = page.locator(f"tr[data-key-name='{name}']")
    expect(row).to_contain_text("active")
    expect(row).to_contain_text(secret[:10] + "…")
    expect(row).to_contain_text("120 requests/min")
    expect(row).to_contain_text("Models: gpt-3.5-turbo")
    expect(row).to_contain_text("0 requests")
    key_id = row.get_attribute("data-key-id")
    assert key_id and secret not in page.content()

    # AND the overview, filtered to this key, shows no usage yet
    open_page(page, dashboard_url, "overview")
    page.get_by_label("API key").select_option(key_id)
    wait_ready(page)
    expect(card(page, "total-requests")).to_have_text("0")
    expect(page.get_by_text("No requests match these filters")).to_be_visible()

    # WHEN the key is used with the official SDK
    client = openai.OpenAI(base_url=stack.base_url, api_key=secret, max_retries=0)
    completion = client.chat.completions.create(model="gpt-3.5-turbo", messages=MESSAGES)
    assert completion.usage is not None

    # THEN the overview's counters move, to exactly what /api/metrics says
    overview_after(page, page.get_by_role("button", name="Refresh").click)
    expect(card(page, "total-requests")).to_have_text("1")
    expect(card(page, "total-tokens")).to_have_text(f"{completion.usage.total_tokens:,}")
    expect_totals(page, admin.get("/api/metrics", params={"hours": 24, "apiKeyId": key_id}).json()["totals"])
    everything = overview_after(page, lambda: page.get_by_label("API key").select_option(""))
    assert everything["totals"]["requests"] >= 1
    expect_totals(page, everything["totals"])
    expect(page.get_by_test_id("top-keys")).to_contain_text(name)
    expect(page.locator(".chart canvas")).to_have_count(4)
    screenshot(page, "03-overview-24h")
    # (7 days, not 30: without nightly rollups every hour is read from the live
    # counters, which takes seconds per week on the emulator; bench/ covers 30 days.)
    week = overview_after(page, page.get_by_role("button", name="7 days").click)
    assert len(week["series"]) == 7 * 24
    expect_totals(page, week["totals"])
    expect(page.get_by_role("button", name="7 days")).to_have_attribute("aria-pressed", "true")
    screenshot(page, "04-overview-7d")

    # AND the request is in the log, newest first, findable by key and status
    open_page(page, dashboard_url, "requests")
    page.get_by_label("API key").select_option(key_id)
    first = page.locator("tbody tr").first
    expect(first).to_have_attribute("data-key-id", key_id)
    expect(first).to_contain_text("succeeded")
    expect(first).to_contain_text(name)
    expect(page.locator("tbody tr")).to_have_count(1)
    screenshot(page, "05-requests")
    page.get_by_label("Status").select_option("failed")
    expect(page.get_by_text("No requests match these filters.")).to_be_visible()

    # WHEN the key's limit is edited
    open_page(page, dashboard_url, "keys")
    row.get_by_role("button", name=f"Edit key {name}").click()
    edit = page.get_by_role("dialog", name=f"Edit key “{name}”")
    edit.get_by_label("Requests per minute").fill("60")
    edit.get_by_role("button", name="Save changes").click()
    expect(edit).to_be_hidden()
    expect(row).to_contain_text("60 requests/min")
    expect(row).to_contain_text("1 request")
    assert admin.get(f"/api/keys/{key_id}").json()["rate_limit_rpm"] == 60

    # WHEN it is revoked, after a confirmation
    row.get_by_role("button", name=f"Revoke key {name}").click()
    confirm = page.get_by_role("alertdialog", name=f"Revoke key “{name}”?")
    expect(confirm).to_contain_text("cannot be restored")
    confirm.get_by_role("button", name="Revoke key").click()
    expect(row).to_contain_text("revoked")
    screenshot(page, "06-keys")

    # THEN the next SDK call is refused with 401
    with pytest.raises(openai.AuthenticationError) as refused:
        client.chat.completions.create(model="gpt-3.5-turbo", messages=MESSAGES)
    assert refused.value.status_code == 401


def test_deployments_are_created_and_watched_until_running(
    signed_in: Page, dashboard_url: str, admin: httpx.Client
) -> None:
    page = signed_in
    name = unique("e2e-sim")
    upstream = unique("e2e-upstream")
    open_page(page, dashboard_url, "deployments")
    page.evaluate("window.__sameDocument = true")

    # WHEN a simulated deployment is created
    page.get_by_role("button", name="Create deployment").click()
    dialog = page.get_by_role("dialog", name="Create a deployment")
    dialog.get_by_label("Name", exact=True).fill(name)
    dialog.get_by_label("Time to first token (ms)").fill("5")
    dialog.get_by_role("button", name="Create deployment").click()
    expect(dialog).to_be_hidden()

    # THEN its status goes from provisioning to running, without a reload
    status = page.locator(f"tr[data-deployment='{name}'] [data-testid=deployment-status]")
    expect(status).to_have_text(re.compile("provisioning|running"))
    expect(status).to_have_text("running")
    assert page.evaluate("window.__sameDocument") is True
    assert admin.get(f"/api/deployments/{name}").json()["status"] == "running"

    # AND an upstream that does not answer ends as failed, with the reason shown
    page.get_by_role("button", name="Create deployment").click()
    dialog = page.get_by_role("dialog", name="Create a deployment")
    dialog.get_by_label("Name", exact=True).fill(upstream)
    dialog.get_by_label("Upstream OpenAI-compatible URL").check()
    expect(dialog.get_by_label("Time to first token (ms)")).to_be_hidden()
    dialog.get_by_label("Base URL").fill("http://127.0.0.1:9/v1")
    dialog.get_by_label("Upstream model").fill("some-model")
    dialog.get_by_label("Upstream API key").fill("sk-upstream-secret")
    dialog.get_by_label("Timeout (seconds)").fill("2")
    dialog.get_by_label("Retries").fill("0")
    dialog.get_by_role("button", name="Create deployment").click()
    upstream_row = page.locator(f"tr[data-deployment='{upstream}']")
    expect(upstream_row.get_by_test_id("deployment-status")).to_have_text("failed")
    expect(upstream_row).to_contain_text("API key set")
    assert "sk-upstream-secret" not in page.content()
    screenshot(page, "07-deployments")

    # AND an API error is shown in words, next to the field it is about
    page.get_by_role("button", name="Create deployment").click()
    dialog = page.get_by_role("dialog", name="Create a deployment")
    dialog.get_by_label("Name", exact=True).fill(name)
    dialog.get_by_role("button", name="Create deployment").click()
    expect(dialog.get_by_role("alert")).to_have_text(f"A deployment named '{name}' already exists.")
    expect(dialog.get_by_label("Name", exact=True)).to_be_focused()
    screenshot(page, "08-deployment-error")
    dialog.get_by_role("button", name="Cancel").click()

    # WHEN stopped, then deleted after a confirmation
    page.get_by_role("button", name=f"Stop {name}").click()
    expect(status).to_have_text("stopped")
    for doomed in (name, upstream):
        page.get_by_role("button", name=f"Delete {doomed}").click()
        page.get_by_role("alertdialog").get_by_role("button", name="Delete deployment").click()
        expect(page.locator(f"tr[data-deployment='{doomed}']")).to_have_count(0)
    assert admin.get(f"/api/deployments/{name}").status_code == 404


def test_health_shows_each_dependency(signed_in: Page, dashboard_url: str) -> None:
    page = signed_in
    open_page(page, dashboard_url, "health")
    expect(page.get_by_test_id("health-summary")).to_have_text("All services are working.")
    for dependency in ("sqs", "dynamodb", "redis", "postgres"):
        expect(page.locator(f"[data-dependency={dependency}]")).to_contain_text("ok")
    queue = page.locator("[data-dependency=sqs]")
    expect(queue).to_contain_text("Jobs waiting")
    expect(queue).to_contain_text("Dead-letter queue")
    screenshot(page, "09-health")


def test_api_failures_and_empty_results_are_explained(signed_in: Page, dashboard_url: str) -> None:
    page = signed_in

    # GIVEN the request log's endpoint answers 503 in OpenAI's error shape
    def unavailable(route: Route) -> None:
        route.fulfill(
            status=503,
            json={
                "error": {
                    "message": "The request log (DynamoDB) is unavailable: ConnectionError.",
                    "type": "server_error",
                    "param": None,
                    "code": "dynamodb_unavailable",
                }
            },
        )

    page.route("**/api/requests?*", unavailable)
    page.goto(f"{dashboard_url}#/requests")
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("The request log could not be loaded.")
    expect(alert).to_contain_text("The request log (DynamoDB) is unavailable")
    expect(alert).to_contain_text("Check the Health page")
    screenshot(page, "10-requests-api-error")

    # AND when the API cannot be reached at all
    page.unroute("**/api/requests?*")
    page.route("**/api/requests?*", lambda route: route.abort())
    alert.get_by_role("button", name="Try again").click()
    expect(page.get_by_role("alert")).to_contain_text("Could not reach the GPU Cloud API")

    # WHEN it answers again, "Try again" recovers
    page.unroute("**/api/requests?*")
    page.get_by_role("button", name="Try again").click()
    expect(page.get_by_test_id("requests")).to_have_attribute("data-state", "ready")

    # AND an admin token that stops working sends the operator back to sign in
    page.route(
        "**/api/keys",
        lambda route: route.fulfill(
            status=401,
            json={
                "error": {
                    "message": "The admin token is not correct.",
                    "type": "invalid_request_error",
                    "param": None,
                    "code": "invalid_admin_token",
                }
            },
        ),
    )
    page.get_by_role("link", name="API keys").click()
    expect(page.get_by_role("heading", name="Sign in to the dashboard")).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text("Sign in again")


def test_phone_width_keyboard_and_labels(phone: Page, dashboard_url: str) -> None:
    page = phone
    for name, shot in (("overview", "11-overview-phone"), ("keys", "12-keys-phone"), ("requests", None)):
        open_page(page, dashboard_url, name)
        # Nothing wider than the screen: no sideways scrolling on a phone.
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"), name
        assert page.evaluate(UNLABELLED_CONTROLS) == [], name
        if shot:
            screenshot(page, shot)

    # The create-key form is labelled too, and Escape closes its dialog
    open_page(page, dashboard_url, "keys")
    page.get_by_role("button", name="Create key").click()
    dialog = page.get_by_role("dialog", name="Create an API key")
    expect(dialog.get_by_label("Name", exact=True)).to_be_focused()
    assert page.evaluate(UNLABELLED_CONTROLS) == []
    screenshot(page, "13-create-key-phone")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(page.get_by_role("button", name="Create key")).to_be_focused()

    # Keyboard: the first Tab reaches "Skip to content", which moves focus to the page
    page.reload()
    expect(page.get_by_test_id("keys")).to_have_attribute("data-state", "ready")
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#main")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Create key")).to_be_focused()
