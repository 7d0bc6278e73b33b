"""The billing pages in a browser's shoes (TestClient over https, the sign-in cookie), against
the local Stripe-compatible server, a real uvicorn API receiving its signed webhooks and a
real worker processing them (the ``stack`` of test_billing_flows.py):

upgrading through Checkout (the plan changes when the webhook lands, never on the return
page), the proration preview confirmed on its own page, a downgrade scheduled and undone,
cancel and resume, cards added through setup-mode Checkout, made default and removed, the
portal, the failed-payment banner; and without Stripe keys, a page that says so plainly.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from urllib.parse import urlsplit

import pytest
from notefall.server.accounts.models import User
from notefall.server.billing.models import BillingCustomer, Subscription
from notefall.server.kit.db import Database, transaction_scope
from notefall.server.kit.settings import Settings
from sqlalchemy import select

from .conftest import TestClient, create_app, make_settings, signed_in_headers
from .test_billing_flows import Stack, _customer_id, _session_id, _subscription, subscribe
from .test_billing_flows import stack as stack  # the fixture, shared
from .test_browser_session import browser_sign_in, hidden_field

pytestmark = pytest.mark.one_backend

FORMS = [
    "/billing/checkout",
    "/billing/change-plan",
    "/billing/change-plan/confirm",
    "/billing/cancel",
    "/billing/resume",
    "/billing/portal",
    "/billing/payment-methods",
    "/billing/payment-methods/pm_123/default",
    "/billing/payment-methods/pm_123/remove",
]


@pytest.fixture
def browser(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), base_url="https://testserver") as client:
        yield client


@pytest.fixture
def stack_browser(stack: Stack) -> Iterator[TestClient]:
    """A browser on the same database, Redis and Stripe as the stack's API and worker."""
    with TestClient(create_app(stack.settings), base_url="https://testserver") as client:
        yield client


def sign_in_as(browser: TestClient, settings: Settings, email: str) -> dict[str, str]:
    headers = signed_in_headers(browser, settings, email)
    assert browser_sign_in(browser, email).status_code == 303
    return headers


def assert_page(response, status: int, *texts: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["cache-control"] == "no-store"
    policy = response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy and "unsafe-inline" not in policy
    assert "Traceback" not in response.text
    for text in texts:
        assert text in response.text, response.text


def post_form(browser: TestClient, action: str, **fields: str):
    """POST a form of the billing page, with the page's CSRF token; the raw answer."""
    token = hidden_field(browser.get("/billing").text, "csrf_token")
    return browser.post(action, data={"csrf_token": token, **fields}, follow_redirects=False)


def tier_of(browser: TestClient) -> str:
    response = browser.get("/api/v1/billing")
    assert response.status_code == 200, response.text
    return str(response.json()["tier"])


def plan_badge(page: str) -> str:
    found = re.search(r'class="plan-badge[^"]*"[^>]*>([^<]+)<', page)
    assert found, page
    return found.group(1)


# Without Stripe ---------------------------------------------------------------------------------


def test_a_signed_out_visitor_is_sent_to_sign_in(browser: TestClient):
    for path in ("/billing", "/billing/return?session_id=cs_1", "/billing/payment-methods/return"):
        response = browser.get(path, follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/signin?next=%2Fbilling")


def test_without_stripe_keys_the_page_says_so_and_offers_no_buttons(
    browser: TestClient, settings: Settings
):
    sign_in_as(browser, settings, "ada@example.com")
    page = browser.get("/billing")
    assert_page(
        page,
        200,
        "does not sell paid plans",
        "Renders this month",
        "0 of 5",
        "500 MB",
        "$9.99",
        "$29.99",
        "Your plan",
    )
    for action in ("/billing/checkout", "/billing/payment-methods", "/billing/portal"):
        assert f'action="{action}"' not in page.text
    assert "Invoices" not in page.text
    # A form posted anyway (an old tab) gets the same plain words, not a broken page.
    refused = post_form(browser, "/billing/checkout", tier="pro")
    assert_page(refused, 503, "does not sell paid plans")
    assert tier_of(browser) == "free"
    back = browser.get("/billing/return?session_id=cs_test_123")
    assert_page(back, 404, "We could not find this checkout", "Free")


@pytest.mark.parametrize("action", FORMS)
def test_every_billing_form_refuses_a_missing_token_and_another_site(
    browser: TestClient, settings: Settings, action: str
):
    sign_in_as(browser, settings, "ada@example.com")
    missing = browser.post(action, data={"tier": "pro"})
    assert_page(missing, 403, "Not allowed")
    token = hidden_field(browser.get("/billing").text, "csrf_token")
    foreign = browser.post(
        action,
        data={"csrf_token": token, "tier": "pro"},
        headers={"Origin": "https://evil.example"},
    )
    assert_page(foreign, 403, "another site")


def test_the_return_pages_say_no_charge_was_made_when_checkout_is_left(
    browser: TestClient, settings: Settings
):
    sign_in_as(browser, settings, "ada@example.com")
    assert_page(browser.get("/billing/return?canceled=true"), 200, "No charge was made", "Free")
    assert_page(
        browser.get("/billing/payment-methods/return?canceled=true"), 200, "No card was added"
    )


@pytest.fixture
def stripe_down_settings(tmp_path, migrated_url: str, redis_url: str) -> Settings:
    """Billing configured, but nothing answers at Stripe's address."""
    return make_settings(
        tmp_path / "data",
        migrated_url,
        redis_url=redis_url,
        rate_limit_scale=1000.0,
        stripe_secret_key="sk_test_unit",
        stripe_webhook_secret="whsec_unit",
        stripe_api_base="http://127.0.0.1:9",
        stripe_price_pro="price_pro_unit",
        stripe_price_enterprise="price_enterprise_unit",
    )


def test_with_stripe_down_the_page_still_shows_the_plan_and_says_what_it_cannot(
    stripe_down_settings: Settings,
):
    settings = stripe_down_settings
    with TestClient(create_app(settings), base_url="https://testserver") as browser:
        sign_in_as(browser, settings, "ada@example.com")
        database = Database(settings.database_url)
        try:
            with transaction_scope(database) as session:
                user = session.scalar(select(User).where(User.email == "ada@example.com"))
                assert user is not None
                session.add(BillingCustomer(user_id=user.id, stripe_customer_id="cus_gone"))
                session.add(
                    Subscription(
                        id="sub_ended",
                        user_id=user.id,
                        stripe_customer_id="cus_gone",
                        status="canceled",
                        tier="pro",
                        price_id="price_pro_unit",
                        current_period_end=datetime(2026, 10, 31, tzinfo=UTC),
                    )
                )
        finally:
            database.dispose()
        page = browser.get("/billing")
        assert_page(
            page,
            200,
            "You are on the <strong>Free</strong> plan",
            "Ended on",
            "October 31, 2026",
            "Stripe does not answer right now",
            "Upgrade to Pro",
        )
        assert "Cancel subscription" not in page.text and "Renews on" not in page.text
        back = browser.get("/billing/return?session_id=cs_test_123")
        assert_page(back, 503, "We cannot check your payment right now", "Refresh this page")
        handoff = post_form(browser, "/billing/checkout", tier="pro")
        assert_page(handoff, 503, "Stripe", 'role="alert"')
        assert tier_of(browser) == "free"


# Against the local Stripe server -----------------------------------------------------------------


def test_upgrade_through_checkout_changes_the_plan_only_when_the_webhook_lands(
    stack: Stack,
    stack_browser: TestClient,
):
    browser = stack_browser
    sign_in_as(browser, stack.settings, "ada@example.com")
    page = browser.get("/billing")
    assert_page(page, 200, "Upgrade to Pro", "Upgrade to Enterprise", "No invoices yet")
    assert plan_badge(page.text) == "Free"

    handoff = post_form(browser, "/billing/checkout", tier="pro")
    assert handoff.status_code == 303
    location = handoff.headers["location"]
    assert location.startswith(stack.stripe.url)
    session_id = _session_id(location)

    # Paid at Stripe, webhooks held back: the return page says so, and changes nothing.
    stack.control.pause_webhooks()
    stack.control.complete_checkout(session_id)
    back = browser.get(f"/billing/return?session_id={session_id}")
    assert_page(back, 200, "Payment received", "as soon as Stripe confirms", "Refresh this page")
    assert 'data-await-tier="pro"' in back.text
    assert '<script src="/static/js/billing.js" defer>' in back.text
    for _ in range(3):
        browser.get(f"/billing/return?session_id={session_id}")
    assert tier_of(browser) == "free"
    assert plan_badge(browser.get("/billing").text) == "Free"

    stack.control.resume_webhooks()
    stack.settle()
    assert tier_of(browser) == "pro"
    landed = browser.get(f"/billing/return?session_id={session_id}")
    assert_page(landed, 200, "You are on Pro")
    assert "data-await-tier" not in landed.text

    billing = browser.get("/billing")
    assert_page(
        billing,
        200,
        "You are on the <strong>Pro</strong> plan",
        "Renews on",
        "0 of 50",
        "10 GB",
        "Cancel subscription",
        "Upgrade to Enterprise",
        "Cancel to move to Free",
        "customer portal",
        "$9.99",
    )
    assert plan_badge(billing.text) == "Pro"
    assert 'action="/billing/checkout"' not in billing.text  # no second subscription on offer
    assert re.search(r"Visa ending \d{4}|ending \d{4}", billing.text)
    links = re.findall(r'<td class="invoice-links">(.*?)</td>', billing.text, re.S)
    assert len(links) == 1 and "View" in links[0] and "PDF" in links[0]

    # Bob cannot read Ada's checkout through his own return page.
    browser.cookies.clear()
    sign_in_as(browser, stack.settings, "bob@example.com")
    assert_page(
        browser.get(f"/billing/return?session_id={session_id}"),
        404,
        "We could not find this checkout",
    )
    assert tier_of(browser) == "free"


def test_a_subscriber_confirms_the_previewed_upgrade_then_schedules_and_undoes_a_downgrade(
    stack: Stack,
    stack_browser: TestClient,
):
    browser = stack_browser
    ada = sign_in_as(browser, stack.settings, "ada@example.com")
    subscribe(stack, ada, "pro")
    stack.control.advance(15 * 86400)
    stack.settle()

    preview = post_form(browser, "/billing/change-plan", tier="enterprise")
    assert_page(preview, 200, "Upgrade from Pro to Enterprise", "Charged now", "$29.99")
    amount = re.search(r'class="amount-now">\$(\d+\.\d\d)<', preview.text)
    assert amount is not None and 5 < float(amount.group(1)) < 15
    assert tier_of(browser) == "pro"  # a preview changes nothing
    fields = {
        name: hidden_field(preview.text, name)
        for name in ("csrf_token", "tier", "when", "proration_date")
    }
    assert fields["tier"] == "enterprise" and fields["when"] == "now"
    done = browser.post("/billing/change-plan/confirm", data=fields, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/billing?done=plan_now"
    assert_page(browser.get(done.headers["location"]), 200, "as soon as Stripe")
    stack.settle()
    assert tier_of(browser) == "enterprise"
    invoices = stack.http.get("/api/v1/billing/invoices", headers=ada).json()["items"]
    assert f"{invoices[0]['amount_paid'] / 100:.2f}" == amount.group(1)

    downgrade = post_form(browser, "/billing/change-plan", tier="pro")
    assert_page(downgrade, 200, "You keep Enterprise until", "Move to Pro now instead")
    fields = {
        name: hidden_field(downgrade.text, name)
        for name in ("csrf_token", "tier", "when", "proration_date")
    }
    assert fields["when"] == "period_end"
    scheduled = browser.post("/billing/change-plan/confirm", data=fields, follow_redirects=False)
    assert scheduled.headers["location"] == "/billing?done=plan_scheduled"
    stack.settle()
    page = browser.get("/billing")
    assert_page(page, 200, "Scheduled change", "To Pro on", "Keep Enterprise", "From ")
    assert tier_of(browser) == "enterprise"

    keep = post_form(browser, "/billing/change-plan", tier="enterprise")
    assert_page(keep, 200, "Stay on Enterprise?")
    fields = {
        name: hidden_field(keep.text, name)
        for name in ("csrf_token", "tier", "when", "proration_date")
    }
    kept = browser.post("/billing/change-plan/confirm", data=fields, follow_redirects=False)
    assert kept.headers["location"] == "/billing?done=plan_kept"
    stack.settle()
    assert "Scheduled change" not in browser.get("/billing").text


def test_a_stale_preview_is_refused_on_the_billing_page_and_nothing_changes(
    stack: Stack,
    stack_browser: TestClient,
):
    browser = stack_browser
    ada = sign_in_as(browser, stack.settings, "ada@example.com")
    subscribe(stack, ada, "pro")
    token = hidden_field(browser.get("/billing").text, "csrf_token")
    stale = browser.post(
        "/billing/change-plan/confirm",
        data={"csrf_token": token, "tier": "enterprise", "when": "now", "proration_date": "1000"},
    )
    assert_page(stale, 409, "Billing", "Upgrade to Enterprise")
    assert 'role="alert"' in stale.text
    stack.settle()
    assert tier_of(browser) == "pro"


def test_cancel_resume_cards_and_the_portal_through_the_page(
    stack: Stack,
    stack_browser: TestClient,
):
    browser = stack_browser
    ada = sign_in_as(browser, stack.settings, "ada@example.com")
    subscribe(stack, ada, "pro")

    cancelled = post_form(browser, "/billing/cancel")
    assert cancelled.headers["location"] == "/billing?done=cancelled"
    page = browser.get("/billing?done=cancelled")
    assert_page(page, 200, "Your subscription ends", "Ends on", "Resume my subscription")
    resumed = post_form(browser, "/billing/resume")
    assert resumed.headers["location"] == "/billing?done=resumed"
    assert_page(browser.get("/billing"), 200, "Renews on", "Cancel subscription")
    again = post_form(browser, "/billing/resume")
    assert_page(again, 409, "nothing to resume")

    (first,) = stack.http.get("/api/v1/billing/payment-methods", headers=ada).json()["items"]
    handoff = post_form(browser, "/billing/payment-methods")
    assert handoff.status_code == 303 and handoff.headers["location"].startswith(stack.stripe.url)
    session_id = _session_id(handoff.headers["location"])
    stack.control.complete_checkout(session_id)
    stack.settle()
    back = browser.get(f"/billing/payment-methods/return?session_id={session_id}")
    assert_page(back, 200, "Your card is saved", "ending")
    cards = stack.http.get("/api/v1/billing/payment-methods", headers=ada).json()["items"]
    second = next(card for card in cards if card["id"] != first["id"])
    page = browser.get("/billing")
    assert f'action="/billing/payment-methods/{second["id"]}/default"' in page.text

    in_use = post_form(browser, f"/billing/payment-methods/{first['id']}/remove")
    assert_page(in_use, 409, "This card pays your subscription")
    made = post_form(browser, f"/billing/payment-methods/{second['id']}/default")
    assert made.headers["location"] == "/billing?done=card_default"
    removed = post_form(browser, f"/billing/payment-methods/{first['id']}/remove")
    assert removed.headers["location"] == "/billing?done=card_removed"
    left = stack.http.get("/api/v1/billing/payment-methods", headers=ada).json()["items"]
    assert [card["id"] for card in left] == [second["id"]]
    assert_page(post_form(browser, "/billing/payment-methods/pm_nobodys/remove"), 404)

    portal = post_form(browser, "/billing/portal")
    assert portal.status_code == 303 and portal.headers["location"].startswith(stack.stripe.url)


def test_a_failed_payment_shows_the_banner_on_every_page_with_how_to_fix_it(
    stack: Stack,
    stack_browser: TestClient,
):
    browser = stack_browser
    ada = sign_in_as(browser, stack.settings, "ada@example.com")
    subscribe(stack, ada, "pro")
    stack.control.set_card(_customer_id(stack), "declined")
    stack.control.advance(to_period_end=_subscription(stack)["id"])
    stack.settle()
    renders = browser.get("/renders")
    assert_page(renders, 200, "Your latest payment failed", "Update your card")
    assert 'class="billing-banner billing-banner-past_due"' in renders.text
    link = re.search(
        r'billing-banner-past_due".*?<a class="button" href="([^"]+)"', renders.text, re.S
    )
    assert link is not None and urlsplit(link.group(1)).path == "/billing"
    billing = browser.get("/billing")
    assert_page(billing, 200, "past due", "Update your card below", "Add a working card")
    # Plan changes wait until the payment is settled; the page says why.
    assert 'action="/billing/change-plan"' not in billing.text
    assert tier_of(browser) == "pro"  # Stripe still retries: the plan stays
    # Someone who would rather stop can: cancelling ends it at the period's end.
    assert post_form(browser, "/billing/cancel").headers["location"] == "/billing?done=cancelled"
    assert_page(browser.get("/billing"), 200, "Resume my subscription")
