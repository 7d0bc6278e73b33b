"""CSRF: changes made with the sign-in cookie need the session's token and our origin;
bearer-token requests need neither; the sign-in form has its own double-submit token."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator

import pytest
from notefall.server.kit.app import create_app
from notefall.server.kit.settings import Settings

from .test_browser_session import (
    PASSWORD,
    PUBLIC_ORIGIN,
    browser_sign_in,
    hidden_field,
    new_account_signed_in,
)

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

PROJECT = {"name": "Clair de lune"}


@pytest.fixture
def browser(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), base_url="https://testserver") as test_client:
        yield test_client


def csrf_of(browser: TestClient) -> str:
    response = browser.get("/api/v1/auth/csrf")
    assert response.status_code == 200, response.text
    return str(response.json()["csrf_token"])


def test_a_change_with_the_cookie_needs_the_sessions_token(browser: TestClient, settings: Settings):
    new_account_signed_in(browser, settings, "ada@example.com")
    assert browser.get("/api/v1/projects").status_code == 200  # reading needs no token

    missing = browser.post("/api/v1/projects", json=PROJECT)
    assert missing.status_code == 403
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.json()["code"] == "csrf_failed"
    wrong = browser.post("/api/v1/projects", json=PROJECT, headers={"X-CSRF-Token": "x" * 43})
    assert wrong.status_code == 403 and wrong.json()["code"] == "csrf_failed"
    assert browser.get("/api/v1/projects").json()["total"] == 0

    token = csrf_of(browser)
    # The page carries the same token, for scripts that read it from the meta tag.
    meta = re.search(r'<meta name="csrf-token" content="([^"]+)">', browser.get("/").text)
    assert meta and meta.group(1) == token
    made = browser.post("/api/v1/projects", json=PROJECT, headers={"X-CSRF-Token": token})
    assert made.status_code == 201, made.text
    deleted = browser.delete(
        f"/api/v1/projects/{made.json()['id']}", headers={"X-CSRF-Token": token}
    )
    assert deleted.status_code == 204


def test_the_origin_must_be_ours(browser: TestClient, settings: Settings):
    new_account_signed_in(browser, settings, "ada@example.com")
    token = csrf_of(browser)
    foreign = {"X-CSRF-Token": token, "Origin": "https://evil.example"}
    refused = browser.post("/api/v1/projects", json=PROJECT, headers=foreign)
    assert refused.status_code == 403 and refused.json()["code"] == "csrf_failed"
    referer = {"X-CSRF-Token": token, "Referer": "https://evil.example/page"}
    assert browser.post("/api/v1/projects", json=PROJECT, headers=referer).status_code == 403
    ours = {"X-CSRF-Token": token, "Origin": PUBLIC_ORIGIN}
    assert browser.post("/api/v1/projects", json=PROJECT, headers=ours).status_code == 201


def test_another_sessions_token_is_refused(browser: TestClient, settings: Settings):
    new_account_signed_in(browser, settings, "ada@example.com")
    first_token = csrf_of(browser)
    browser.cookies.clear()
    assert browser_sign_in(browser, "ada@example.com").status_code == 303
    second_token = csrf_of(browser)
    assert first_token != second_token
    stale = browser.post("/api/v1/projects", json=PROJECT, headers={"X-CSRF-Token": first_token})
    assert stale.status_code == 403


def test_the_token_may_come_as_a_form_field(browser: TestClient, settings: Settings):
    new_account_signed_in(browser, settings, "ada@example.com")
    refused = browser.post("/api/v1/auth/logout", data={"csrf_token": "forged"})
    assert refused.status_code == 403 and refused.json()["code"] == "csrf_failed"
    ended = browser.post("/api/v1/auth/logout", data={"csrf_token": csrf_of(browser)})
    assert ended.status_code == 204
    assert browser.get("/api/v1/me").status_code == 401


def test_bearer_requests_need_no_csrf_token(browser: TestClient, settings: Settings):
    bearer = new_account_signed_in(browser, settings, "ada@example.com")
    # The browser's cookie is present too: the bearer token decides, and it is not ambient.
    assert "notefall_session" in browser.cookies
    made = browser.post("/api/v1/projects", json=PROJECT, headers=bearer)
    assert made.status_code == 201
    browser.cookies.clear()
    assert browser.post("/api/v1/projects", json=PROJECT, headers=bearer).status_code == 201


def test_the_sign_in_form_is_protected_before_any_session(browser: TestClient, settings: Settings):
    new_account_signed_in(browser, settings, "ada@example.com")
    browser.cookies.clear()
    form = {"email": "ada@example.com", "password": PASSWORD, "next": "/"}

    no_token = browser.post("/signin", data=form, follow_redirects=False)
    assert no_token.status_code == 403 and "notefall_session" not in browser.cookies

    page = browser.get("/signin")
    token = hidden_field(page.text, "csrf_token")
    assert browser.cookies["notefall_signin_csrf"] == token
    mismatched = browser.post(
        "/signin", data={**form, "csrf_token": token[:-2] + "xx"}, follow_redirects=False
    )
    assert mismatched.status_code == 403
    foreign = browser.post(
        "/signin",
        data={**form, "csrf_token": token},
        headers={"Origin": "https://evil.example"},
        follow_redirects=False,
    )
    assert foreign.status_code == 403 and "notefall_session" not in browser.cookies
    # A forged cookie with a matching field: the cookie must be one we signed.
    browser.cookies.set("notefall_signin_csrf", "made.up", domain="testserver")
    forged = browser.post("/signin", data={**form, "csrf_token": "made.up"}, follow_redirects=False)
    assert forged.status_code == 403

    browser.cookies.clear()
    assert browser_sign_in(browser, "ada@example.com").status_code == 303
