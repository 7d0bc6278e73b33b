"""Every page of the site, signed out and signed in, in its usual states and its error
states, at phone and desktop size: screenshots in out/screens/<name>-{phone,desktop}.png and
an axe-core scan of each (tests.support.browser.look); then the keyboard: Tab reaches the
skip link, the main navigation and the first form control, each with a visible focus."""

from __future__ import annotations

import hashlib
import re
import secrets
from base64 import urlsafe_b64encode
from typing import Any
from urllib.parse import urlencode

import pytest
from playwright.sync_api import Page, expect

from tests.support.browser import (
    PASSWORD,
    link_in,
    look,
    sign_up,
    totp_code,
    turn_on_two_factor,
    unique_email,
    wait_for_mail,
)

from .conftest import Web
from .test_end_to_end import RENDER_SECONDS
from .test_page_security import forge_csrf_tokens

pytestmark = pytest.mark.xdist_group("browser")


def heading(page: Page) -> str:
    return page.get_by_role("heading", level=1).first.inner_text()


def test_signed_out_pages_look_right(web: Web):
    page = web.page()
    page.goto("/signin")
    look(page, "signin")
    page.get_by_label("Email").fill("nobody@example.com")
    page.get_by_label("Password", exact=True).fill("not the password at all")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_be_visible()
    look(page, "signin-refused")

    page.goto("/signup")
    look(page, "signup")
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("alert")).to_be_visible()
    look(page, "signup-refused")

    email = unique_email("hanon")
    sign_up(page, "Charles-Louis Hanon", email)
    look(page, "signup-check-your-inbox")
    page.goto(link_in(wait_for_mail(web.server, email, "confirm"), web.server, "/verify-email"))
    look(page, "verify-email")
    page.get_by_role("button", name="Confirm my email address").click()
    expect(page.get_by_role("heading", name="Your address is confirmed")).to_be_visible()
    look(page, "verify-email-done")
    page.goto("/verify-email?token=not-a-real-token")
    look(page, "verify-email-invalid-link")

    page.goto("/forgot-password")
    look(page, "forgot-password")
    page.get_by_label("Email").fill(email)
    page.get_by_role("button", name="Mail me a link").click()
    look(page, "forgot-password-sent")
    reset = wait_for_mail(web.server, email, "password")
    page.goto(link_in(reset, web.server, "/reset-password"))
    expect(page.get_by_role("heading", name="Choose a new password")).to_be_visible()
    look(page, "reset-password")
    page.goto("/reset-password?token=not-a-real-token")
    look(page, "reset-password-invalid-link")
    page.goto("/verify-email-change?token=not-a-real-token")
    look(page, "verify-email-change-invalid-link")

    answer = page.goto("/no-such-page")
    assert answer is not None and answer.status == 404
    assert heading(page) == "Page not found"
    look(page, "not-found-signed-out")


def test_dashboard_project_and_shared_pages_look_right(web: Web):
    account = web.new_account(name="Erik Satie")
    page = account.page
    page.goto("/")
    look(page, "dashboard-empty")

    page.get_by_role("link", name="New project").first.click()
    look(page, "project-new")
    page.get_by_label("Name").fill("Not a song")
    page.get_by_label("MIDI file").set_input_files(
        {"name": "notes.mid", "mimeType": "audio/midi", "buffer": b"these are not MIDI bytes"}
    )
    page.get_by_role("button", name="Create project").click()
    expect(page.get_by_role("alert")).to_be_visible()
    look(page, "project-new-refused")

    project_id = account.create_project("Gymnopédie No. 1")
    for name in ("Gnossienne No. 1", "Vexations", "Je te veux"):
        account.create_project(name)
    page.goto("/")
    expect(page.get_by_text("Gymnopédie No. 1")).to_be_visible()
    look(page, "dashboard")

    page.goto(f"/projects/{project_id}")
    look(page, "project")
    page.get_by_role("button", name="Create share link").click()
    share = page.locator("input[readonly], input#new-share-url").first
    expect(share).to_be_visible()
    look(page, "project-share-link-made")
    shared_url = share.input_value()
    assert re.search(r"/s/\S+$", shared_url), shared_url

    page.goto(f"/projects/{project_id}/delete")
    look(page, "project-delete")

    visitor = web.page()
    visitor.goto(shared_url)
    expect(visitor.get_by_text("Gymnopédie No. 1").first).to_be_visible()
    look(visitor, "shared-project")
    answer = visitor.goto("/s/not-a-real-share-token")
    assert answer is not None and answer.status == 404
    look(visitor, "shared-project-not-found")


@pytest.mark.timeout(900)  # waits for a real render
def test_render_and_billing_pages_look_right(web: Web):
    account = web.new_account(name="Maurice Ravel")
    page = account.page
    page.goto("/renders")
    look(page, "renders-empty")

    project_id = account.create_project("Pavane")
    page.goto(f"/projects/{project_id}")
    page.get_by_role("button", name="Render the video").click()
    expect(page).to_have_url(re.compile(r"/renders/[0-9a-f-]{36}$"))
    look(page, "render-in-progress")
    expect(page.get_by_role("link", name="Download video")).to_be_visible(
        timeout=RENDER_SECONDS * 1000
    )
    look(page, "render-done")
    page.goto("/renders")
    look(page, "renders")
    page.goto(f"/projects/{project_id}")
    look(page, "project-with-history")

    page.goto("/billing")
    look(page, "billing-free")
    page.goto("/billing/return?canceled=true")
    look(page, "billing-checkout-canceled")
    page.goto("/billing/payment-methods/return?canceled=true")
    look(page, "billing-card-canceled")


def test_account_pages_look_right(web: Web):
    account = web.new_account(name="Lili Boulanger")
    page = account.page
    for path, name in [
        ("/account", "account-profile"),
        ("/account/security", "account-security"),
        ("/account/notifications", "account-notifications"),
        ("/account/privacy", "account-privacy"),
        ("/account/activity", "account-activity"),
        ("/account/data", "account-data"),
        ("/account/confirm-password?next=/account/security", "account-confirm-password"),
    ]:
        answer = page.goto(path)
        assert answer is not None and answer.status == 200, path
        look(page, name)

    page.goto("/account/security")
    page.get_by_role("link", name="Confirm password to set it up").click()
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Confirm").click()
    page.get_by_role("button", name="Set up two-factor sign-in").click()
    look(page, "account-two-factor-setup")
    page.get_by_label("6-digit code").fill("000000")
    page.get_by_role("button", name="Turn on").click()
    expect(page.get_by_role("alert")).to_be_visible()
    look(page, "account-two-factor-wrong-code")


def test_two_factor_sign_in_and_recovery_codes_look_right(web: Web):
    account = web.new_account(name="Nadia Boulanger")
    page = account.page
    page.goto("/account/security")
    secret = turn_on_two_factor(page, look_as="account-recovery-codes")
    look(page, "account-security-two-factor-on")

    visitor = web.page()
    visitor.goto("/signin")
    visitor.get_by_label("Email").fill(account.email)
    visitor.get_by_label("Password", exact=True).fill(PASSWORD)
    visitor.get_by_role("button", name="Sign in").click()
    expect(visitor.get_by_role("heading", name="Two-step verification")).to_be_visible()
    look(visitor, "signin-code-step")
    visitor.get_by_label("Verification code").fill("000000")
    visitor.get_by_role("button", name="Verify and sign in").click()
    expect(visitor.get_by_role("alert")).to_be_visible()
    look(visitor, "signin-code-wrong")
    visitor.get_by_label("Verification code").fill(totp_code(secret, steps_ahead=1))
    visitor.get_by_role("button", name="Verify and sign in").click()
    expect(visitor.get_by_role("heading", name="Your projects")).to_be_visible()


def pkce_challenge() -> str:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return urlsafe_b64encode(digest).rstrip(b"=").decode()


def test_error_and_consent_pages_look_right(web: Web):
    account = web.new_account(name="Germaine Tailleferre")
    page = account.page
    answer = page.goto("/no-such-page")
    assert answer is not None and answer.status == 404
    look(page, "not-found")
    answer = page.goto("/projects/00000000-0000-0000-0000-000000000000")
    assert answer is not None and answer.status == 404
    look(page, "project-not-found")

    page.goto("/account")
    forge_csrf_tokens(page)
    page.get_by_role("button", name="Save name").click()
    expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()
    look(page, "forbidden")

    desktop_sign_in = {
        "response_type": "code",
        "client_id": "notefall-desktop",
        "redirect_uri": "http://127.0.0.1:53682/callback",
        "code_challenge": pkce_challenge(),
        "code_challenge_method": "S256",
        "state": "st-" + secrets.token_urlsafe(8),
        "scope": "projects",
    }
    page.goto("/oauth/authorize?" + urlencode(desktop_sign_in))
    expect(page.get_by_role("button", name="Allow")).to_be_visible()
    look(page, "oauth-consent")
    untrusted = {**desktop_sign_in, "redirect_uri": "https://evil.example.com/callback"}
    page.goto("/oauth/authorize?" + urlencode(untrusted))
    look(page, "oauth-untrusted-app")

    visitor = web.page()
    visitor.goto("/oauth/authorize?" + urlencode(desktop_sign_in))
    expect(visitor.get_by_text("Notefall Desktop")).to_be_visible()
    look(visitor, "signin-for-desktop")


# Keyboard -------------------------------------------------------------------------------

_FOCUSED = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const style = getComputedStyle(el);
  const outline = style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) > 0;
  const ring = style.boxShadow && style.boxShadow !== 'none';
  return {
    tag: el.tagName.toLowerCase(),
    name: (el.getAttribute('aria-label') || el.innerText || el.name || el.id || '').trim(),
    inNav: !!el.closest('nav[aria-label="Main"]'),
    inMain: !!el.closest('main'),
    control: ['input', 'select', 'textarea', 'button'].includes(el.tagName.toLowerCase()),
    visibleFocus: outline || ring,
    onScreen: el.getBoundingClientRect().width > 0 && el.getBoundingClientRect().height > 0,
  };
}"""


_TAB_SEEN_BEFORE = """() => {
  const el = document.activeElement;
  window.__tabStops = window.__tabStops || new Set();
  const seen = window.__tabStops.has(el);
  window.__tabStops.add(el);
  return seen;
}"""


def tab_round(page: Page, limit: int = 120) -> list[dict[str, Any]]:
    """Press Tab until the focus comes back round to where it has been (the browser wraps
    from the end of the document to its start): every stop of the page, in Tab order,
    starting wherever the page put the focus on load."""
    stops: list[dict[str, Any]] = []
    for _ in range(limit):
        page.keyboard.press("Tab")
        focused = page.evaluate(_FOCUSED)
        if focused is None:
            continue  # the document itself, between its last stop and its first
        if page.evaluate(_TAB_SEEN_BEFORE):
            return stops
        stops.append(focused)
    raise AssertionError(f"Tab never came round again in {limit} presses: {stops}")


def in_document_order(stops: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The stops rotated to start at the skip link, the first stop of every page."""
    names = [stop["name"] for stop in stops]
    assert "Skip to content" in names, f"Tab never reached the skip link: {names}"
    start = names.index("Skip to content")
    return stops[start:] + stops[:start]


@pytest.mark.parametrize("path", ["/account", "/billing", "/projects/new", "/renders"])
def test_tab_reaches_the_skip_link_the_navigation_and_the_first_control(web: Web, path: str):
    account = web.new_account()
    page = account.page
    page.goto(path)
    stops = in_document_order(tab_round(page))
    names = [stop["name"] for stop in stops]
    nav = [stop["name"] for stop in stops if stop["inNav"]]
    assert nav[:4] == ["Dashboard", "Renders", "Billing", "Account"], names
    # The skip link, the brand, then the navigation: before anything in main.
    first_in_main = next(i for i, stop in enumerate(stops) if stop["inMain"])
    assert names.index("Dashboard") < first_in_main, names
    if path != "/renders":  # a list without a form
        assert any(stop["control"] for stop in stops if stop["inMain"]), names
    unseen = [stop for stop in stops if not stop["visibleFocus"]]
    assert not unseen, f"focus not visible on {path}: {unseen}"
    hidden = [stop for stop in stops if not stop["onScreen"]]
    assert not hidden, f"Tab stops on something not shown on {path}: {hidden}"


def test_the_skip_link_moves_the_focus_to_the_content(web: Web):
    page = web.new_account().page
    page.goto("/renders")
    page.keyboard.press("Tab")
    first = page.evaluate(_FOCUSED)
    assert first and first["name"] == "Skip to content" and first["onScreen"], first
    page.keyboard.press("Enter")
    assert page.evaluate("() => document.activeElement.id") == "content"
    assert page.url.endswith("/renders#content"), page.url
