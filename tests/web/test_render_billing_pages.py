"""The render and billing pages in real headless chromium against a live ``notefall stack``
(a real worker renders; the local Stripe server takes the payment and sends its webhooks):

- the progress page follows a render live over the WebSocket to the end, without a reload,
  and plays the video; a render is cancelled from its page with the keyboard;
- a Free user upgrades through Checkout on the local Stripe server's page, comes back to the
  return page, which turns into "You are on Pro" once the webhook landed, and the billing
  page shows Pro; a plan change is previewed on its confirmation page.

look() saves every page at phone and desktop size and fails on serious axe findings.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from notefall.server.accounts.models import User
from notefall.server.billing.models import BillingCustomer, Subscription
from playwright.sync_api import Page, WebSocketRoute, expect
from sqlalchemy import select

from tests.support.browser import PHONE, look
from tests.support.render_farm import tiny_midi

from .conftest import Web

pytestmark = pytest.mark.xdist_group("browser")

# Bounds for waiting on the live stack (a render, a webhook), not speed assertions.
RENDER_TIMEOUT_MS = 120_000
WEBHOOK_TIMEOUT_MS = 60_000


def stays_on_the_same_document(page: Page) -> None:
    """Mark the document, so a later check tells a live update from a reload."""
    page.evaluate("window.notefallMarker = 'first load'")


def was_not_reloaded(page: Page) -> bool:
    return bool(page.evaluate("window.notefallMarker === 'first load'"))


def wait_until(page: Page, script: str, timeout_ms: int = RENDER_TIMEOUT_MS) -> None:
    """Poll ``script`` in the page until it is true (wait_for_function evaluates a string,
    which the pages' CSP rightly forbids)."""
    waited = 0
    while not page.evaluate(script):
        assert waited < timeout_ms, f"still false after {timeout_ms} ms: {script}"
        page.wait_for_timeout(100)
        waited += 100


def test_the_progress_page_follows_a_render_live_and_plays_the_video(web: Web):
    account = web.new_account(viewport=PHONE)
    page = account.page
    render_id = account.start_render(account.create_project("Clair de lune"))
    page.goto(f"/renders/{render_id}")
    stays_on_the_same_document(page)
    expect(page.get_by_role("heading", name="Clair de lune")).to_be_visible()
    look(page, "render-progress")

    label = page.locator('[data-field="label"]')
    expect(label).to_have_text("Done", timeout=RENDER_TIMEOUT_MS)
    expect(page.locator("#render-progress")).to_have_attribute("value", "100")
    video = page.locator("video")
    expect(video).to_be_visible()
    expect(page.get_by_role("link", name="Download video")).to_be_visible()
    assert was_not_reloaded(page), "the page reloaded instead of updating live"
    assert page.locator('[data-field="cancel"]').is_hidden()

    # The video plays: its metadata loads through the signed link and time moves on.
    wait_until(page, "document.querySelector('video').readyState >= 1")
    duration = video.evaluate("v => v.duration")
    assert duration > 0
    video.evaluate("v => { v.muted = true; return v.play(); }")
    wait_until(page, "document.querySelector('video').currentTime > 0")
    assert video.evaluate("v => v.poster").startswith(web.url)
    look(page, "render-done")

    # Opened afresh (from the notification), the finished page is served with the video.
    page.goto(f"/renders/{render_id}")
    expect(page.locator("video")).to_have_attribute("src", re.compile(r"/files/"))
    page.goto("/renders")
    expect(page.get_by_role("link", name=re.compile("Clair de lune"))).to_be_visible()
    look(page, "render-list")


def test_a_render_is_cancelled_from_its_page_with_the_keyboard(web: Web):
    account = web.new_account()
    page = account.page
    # A nine-minute song at 720p: still running when the network drops and the cancel comes.
    project_id = account.create_project("Long etude", midi=tiny_midi(540))
    started = account.api(
        "POST",
        "/api/v1/renders",
        data={"project_id": project_id, "settings": {"resolution": "1280x720", "fps": 30}},
    )
    assert started.status == 202, started.text()
    render_id = started.json()["id"]
    # The page's sockets go through a proxy in the test, so one can be cut like a network drop.
    sockets: list[WebSocketRoute] = []

    def proxy(socket: WebSocketRoute) -> None:
        socket.connect_to_server()
        sockets.append(socket)

    page.route_web_socket(re.compile(r"/api/v1/renders/[^/]+/events"), proxy)
    page.goto(f"/renders/{render_id}")
    live = page.locator('[data-field="live"]')
    expect(live).to_have_text("Updating live.")
    expect(page.locator("#render")).to_have_attribute(
        "data-status", "running", timeout=RENDER_TIMEOUT_MS
    )

    # The connection drops: the page reconnects, asking for the events after the last it saw.
    expect(page.locator("#render")).to_have_attribute("data-last-event-id", re.compile(r"\d+-\d+"))
    sockets[0].close(code=4000, reason="the network dropped")
    waited = 0
    while len(sockets) < 2:
        assert waited < 30_000, "the page did not reconnect"
        page.wait_for_timeout(100)
        waited += 100
    expect(live).to_have_text("Updating live.")
    assert "last_event_id=" not in sockets[0].url
    assert re.search(r"\?last_event_id=\d+-\d+$", sockets[-1].url), [w.url for w in sockets]

    summary = page.locator("summary", has_text="Cancel render")
    summary.focus()
    page.keyboard.press("Enter")
    confirm = page.get_by_role("button", name="Yes, cancel it")
    expect(confirm).to_be_visible()
    look(page, "render-cancel-confirm")
    confirm.focus()
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/renders/{render_id}")
    expect(page.locator('[data-field="label"]')).to_have_text("Cancelled")
    expect(page.get_by_role("alert")).to_contain_text("nothing was charged")
    look(page, "render-cancelled")


def test_a_free_user_upgrades_through_checkout_and_the_billing_page_shows_pro(web: Web):
    account = web.new_account()
    page = account.page
    page.goto("/billing")
    expect(page.get_by_role("button", name="Upgrade to Pro")).to_be_visible()
    look(page, "billing-free")

    page.get_by_role("button", name="Upgrade to Pro").click()
    # The local Stripe server's Checkout page, paid as a person would.
    page.wait_for_url(f"{web.server.stripe.url}/checkout/**")
    page.get_by_role("button", name="Pay and subscribe").click()
    page.wait_for_url(re.compile(r"/billing/return\?session_id=cs_"))
    heading = page.get_by_role("heading", level=1)
    # "Payment received" until the webhook is processed; billing.js then says so in place.
    expect(heading).to_have_text("You are on Pro", timeout=WEBHOOK_TIMEOUT_MS)
    look(page, "billing-return-pro")

    page.goto("/billing")
    expect(page.locator(".plan-badge")).to_have_text("Pro")
    expect(page.get_by_text("You are on the Pro plan")).to_be_visible()
    expect(page.get_by_role("button", name="Upgrade to Enterprise")).to_be_visible()
    expect(page.get_by_role("link", name=re.compile("PDF"))).to_have_count(1)
    look(page, "billing-pro")

    # An upgrade is previewed on its own page before anything is charged.
    page.get_by_role("button", name="Upgrade to Enterprise").click()
    expect(page.get_by_role("heading", name="Upgrade from Pro to Enterprise")).to_be_visible()
    expect(page.get_by_text("Charged now")).to_be_visible()
    look(page, "billing-confirm-upgrade")
    page.get_by_role("link", name="Keep my plan").click()
    expect(page.locator(".plan-badge")).to_have_text("Pro")

    page.goto("/billing/return?canceled=true")
    expect(page.get_by_role("heading", name="No charge was made")).to_be_visible()
    look(page, "billing-return-canceled")


def wait_for_billing(account: Any, check: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """GET /api/v1/billing until ``check`` holds (the worker processes Stripe's webhooks)."""
    waited = 0
    while True:
        body: dict[str, Any] = account.api("GET", "/api/v1/billing").json()
        if check(body):
            return body
        assert waited < WEBHOOK_TIMEOUT_MS, f"billing is still {body}"
        account.page.wait_for_timeout(200)
        waited += 200


def test_a_failed_renewal_shows_the_banner_and_the_billing_page_says_how_to_fix_it(web: Web):
    account = web.new_account()
    page = account.page
    control = web.server.stripe.control
    started = account.api("POST", "/api/v1/billing/checkout", data={"tier": "pro"})
    assert started.ok, started.text()
    control.complete_checkout(started.json()["url"].rstrip("/").rsplit("/", 1)[-1])
    wait_for_billing(account, lambda body: body["tier"] == "pro")
    with web.server.database() as session:
        user_id = session.scalar(select(User.id).where(User.email == account.email))
        customer = session.scalar(
            select(BillingCustomer.stripe_customer_id).where(BillingCustomer.user_id == user_id)
        )
        subscription = session.scalar(
            select(Subscription.id).where(Subscription.user_id == user_id)
        )
    assert customer and subscription
    control.set_card(customer, "declined")
    control.advance(to_period_end=subscription)
    wait_for_billing(account, lambda body: (body["banner"] or {}).get("kind") == "past_due")

    page.goto("/renders")
    banner = page.locator(".billing-banner")
    expect(banner).to_contain_text("Your latest payment failed")
    look(page, "billing-banner-past-due")
    banner.get_by_role("link", name="Update your card").click()
    expect(page).to_have_url(re.compile(r"/billing$"))
    expect(page.get_by_text("past due", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="Add a card")).to_be_visible()
    expect(page.get_by_role("button", name=re.compile("Upgrade to Enterprise"))).to_have_count(0)
    expect(page.get_by_role("link", name=re.compile("Pay"))).to_have_count(1)  # the open invoice
    look(page, "billing-past-due")
