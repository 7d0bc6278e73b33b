"""Security of the pages as a browser meets it: forged forms refused, an expired session
sent to sign-in and back, other people's projects and renders hidden behind a 404 page,
and the protective headers on every page."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from notefall.server.accounts.models import AuthSession, User
from notefall.server.kit.models import utcnow
from notefall.server.web.models import BrowserSession
from playwright.sync_api import Page, expect
from sqlalchemy import select, update

from tests.support.browser import Account, sign_in

from .conftest import Web

pytestmark = pytest.mark.xdist_group("browser")

SIGNED_IN_PAGES = [
    "/",
    "/projects/new",
    "/renders",
    "/billing",
    "/account",
    "/account/security",
    "/account/notifications",
    "/account/privacy",
    "/account/activity",
    "/account/data",
    "/account/confirm-password?next=/account/security",
    "/billing/return?canceled=true",
]
SIGNED_OUT_PAGES = [
    "/signin",
    "/signup",
    "/forgot-password",
    "/reset-password?token=nonsense",
    "/verify-email?token=nonsense",
    "/verify-email-change?token=nonsense",
]


def forge_csrf_tokens(page: Page) -> None:
    """What a page of another site cannot know: every form's token replaced."""
    page.evaluate(
        "() => document.querySelectorAll('input[name=csrf_token]')"
        ".forEach(input => { input.value = 'forged-' + input.value.slice(7); })"
    )


def test_a_form_sent_with_a_wrong_token_is_refused_and_changes_nothing(web: Web):
    account = web.new_account(name="Fanny Mendelssohn")
    page = account.page
    page.goto("/account")
    forge_csrf_tokens(page)
    page.get_by_label("Your name").fill("Mallory")
    with page.expect_response(re.compile(r"/account/name$")) as sent:
        page.get_by_role("button", name="Save name").click()
    assert sent.value.status == 403
    expect(page.get_by_role("heading", level=1)).to_have_text("Not allowed")
    # A person is told what happened and what to do, not which header an API wants.
    message = page.locator("main").inner_text()
    assert "reload" in message.lower() or "another site" in message.lower(), message
    assert "X-CSRF-Token" not in message and "/api/v1" not in message, message

    page.goto("/account")
    expect(page.get_by_label("Your name")).to_have_value("Fanny Mendelssohn")
    expect(page.locator(".account-name")).to_have_text("Fanny Mendelssohn")


def test_sign_out_with_a_forged_token_keeps_the_session(web: Web):
    account = web.new_account()
    page = account.page
    page.goto("/renders")
    forge_csrf_tokens(page)
    page.get_by_role("navigation", name="Main").get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(re.compile("refused|Not allowed"))
    page.goto("/renders")
    expect(page).to_have_url(re.compile(r"/renders$"))


def expire_sessions_of(account: Account) -> None:
    with account.server.database() as session:
        user_id = session.scalars(select(User.id).where(User.email == account.email)).one()
        sessions = select(AuthSession.id).where(AuthSession.user_id == user_id)
        session.execute(
            update(BrowserSession)
            .where(BrowserSession.session_id.in_(sessions))
            .values(expires_at=utcnow() - timedelta(minutes=1))
        )


def test_an_expired_session_goes_to_sign_in_and_comes_back_to_the_page(web: Web):
    account = web.new_account()
    page = account.page
    page.goto("/account/notifications")
    expect(page.get_by_role("heading", level=1)).to_be_visible()

    expire_sessions_of(account)
    page.goto("/account/notifications")
    expect(page).to_have_url(re.compile(r"/signin\?next=%2Faccount%2Fnotifications$"))
    expect(page.get_by_role("heading", name="Sign in to Notefall")).to_be_visible()

    page.get_by_label("Email").fill(account.email)
    page.get_by_label("Password", exact=True).fill(account.password)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/account/notifications$"))


def test_someone_elses_project_and_render_are_a_not_found_page(web: Web):
    owner = web.new_account(name="Robert Schumann")
    project_id = owner.create_project("Kinderszenen")
    render_id = owner.start_render(project_id)
    owner.page.goto(f"/projects/{project_id}")
    expect(owner.page.get_by_role("heading", name="Kinderszenen", exact=True)).to_be_visible()

    stranger = web.new_account(name="Johannes Brahms")
    for path in (f"/projects/{project_id}", f"/renders/{render_id}"):
        answer = stranger.page.goto(path)
        assert answer is not None and answer.status == 404, path
        expect(stranger.page.get_by_role("heading", level=1)).to_have_text("Page not found")
        expect(stranger.page.locator("main")).not_to_contain_text("Kinderszenen")

    visitor = web.page()
    visitor.goto(f"/projects/{project_id}")
    expect(visitor).to_have_url(re.compile(rf"/signin\?next=%2Fprojects%2F{project_id}$"))


def csp_directives(header: str) -> dict[str, list[str]]:
    directives = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            directives[words[0].lower()] = words[1:]
    return directives


def assert_protective_headers(headers: dict[str, str], path: str, *, signed_in: bool) -> None:
    csp = csp_directives(headers.get("content-security-policy", ""))
    scripts = csp.get("script-src", csp.get("default-src"))
    assert scripts, f"{path}: no script-src or default-src in the CSP {csp}"
    assert "'unsafe-inline'" not in scripts and "'unsafe-eval'" not in scripts, (path, scripts)
    styles = csp.get("style-src", csp.get("default-src", []))
    assert "'unsafe-inline'" not in styles, (path, styles)
    assert csp.get("frame-ancestors") == ["'none'"], (path, csp)
    if signed_in:
        assert "no-store" in headers.get("cache-control", ""), (path, headers)


def test_every_page_sends_the_protective_headers(web: Web):
    account = web.new_account()
    project_id = account.create_project("Papillons")
    render_id = account.start_render(project_id)
    pages = [
        *SIGNED_IN_PAGES,
        f"/projects/{project_id}",
        f"/projects/{project_id}/delete",
        f"/renders/{render_id}",
    ]
    for path in pages:
        answer = account.page.goto(path)
        assert answer is not None and answer.status == 200, (path, answer and answer.status)
        assert_protective_headers(answer.headers, path, signed_in=True)

    visitor = web.page()
    for path in [*SIGNED_OUT_PAGES, "/no-such-page"]:
        answer = visitor.goto(path)
        assert answer is not None, path
        assert_protective_headers(answer.headers, path, signed_in=False)


def test_a_page_cannot_be_framed_by_another_site(web: Web):
    """frame-ancestors 'none' as chromium applies it: the sign-in form never shows inside
    another site's frame (clickjacking)."""
    page = web.page()
    # set_content returns once the document and its frames have loaded (or were refused).
    page.set_content(f'<iframe id="victim" src="{web.url}/signin"></iframe>', wait_until="load")
    [framed] = [frame for frame in page.frames if frame is not page.main_frame]
    assert not framed.url.startswith(web.url), framed.url
    expect(page.frame_locator("#victim").get_by_role("button", name="Sign in")).to_have_count(0)
    sign_in_page = web.page()
    sign_in_page.goto("/signin")
    expect(sign_in_page.get_by_role("button", name="Sign in")).to_have_count(1)


def test_signing_in_returns_to_the_page_asked_for(web: Web):
    account = web.new_account(signed_in=False)
    sign_in(account.page, account.email, next_path="%2Frenders")
    expect(account.page).to_have_url(re.compile(r"/renders$"))
