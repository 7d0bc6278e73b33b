"""Browser sign-in: the session cookie, its flags, the pages, sign-out and open redirects."""

from __future__ import annotations

import hashlib
import html
import re
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest
from notefall.server.kit.app import create_app
from notefall.server.kit.db import normalize_database_url
from notefall.server.kit.models import utcnow
from notefall.server.kit.settings import Settings
from notefall.server.web.pages import safe_next
from sqlalchemy import create_engine, text

from .conftest import make_settings, signed_in_headers

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

PASSWORD = "falling notes over a grand piano"  # what signed_in_headers signs up with
PUBLIC_ORIGIN = "http://notefall.test"  # the test settings' NOTEFALL_PUBLIC_URL


@pytest.fixture
def browser(settings: Settings) -> Iterator[TestClient]:
    # https: the cookies are Secure, so an http client would never send them back.
    with TestClient(create_app(settings), base_url="https://testserver") as test_client:
        yield test_client


def hidden_field(page: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert found, page
    return html.unescape(found.group(1))


def browser_sign_in(
    browser: TestClient, email: str, password: str = PASSWORD, next: str | None = None
):
    """Open the sign-in page (which sets its CSRF cookie) and submit it; the raw answer."""
    page = browser.get("/signin", params={"next": next} if next is not None else None)
    assert page.status_code == 200, page.text
    form = {
        "email": email,
        "password": password,
        "csrf_token": hidden_field(page.text, "csrf_token"),
        "next": hidden_field(page.text, "next"),
    }
    return browser.post("/signin", data=form, follow_redirects=False)


def new_account_signed_in(browser: TestClient, settings: Settings, email: str) -> dict[str, str]:
    """A confirmed account signed in with the browser; its bearer headers (another session)."""
    headers = signed_in_headers(browser, settings, email)
    response = browser_sign_in(browser, email)
    assert response.status_code == 303, response.text
    return headers


def session_cookie_header(response) -> str:
    cookies = [
        v for v in response.headers.get_list("set-cookie") if v.startswith("notefall_session=")
    ]
    assert len(cookies) == 1, response.headers
    return cookies[0]


def test_signing_in_sets_a_secure_httponly_lax_cookie_for_a_listed_session(
    browser: TestClient, settings: Settings
):
    bearer = signed_in_headers(browser, settings, "ada@example.com")
    response = browser_sign_in(browser, "ada@example.com")
    assert response.status_code == 303
    assert response.headers["location"] == "/"
    cookie = session_cookie_header(response)
    flags = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "secure", "samesite=lax", "path=/"} <= flags
    assert f"max-age={30 * 24 * 3600}" in flags

    me = browser.get("/api/v1/me")
    assert me.status_code == 200 and me.json()["email"] == "ada@example.com"
    # An ordinary session: the API lists it (as current for the cookie) next to the bearer one.
    sessions = browser.get("/api/v1/me/sessions").json()
    assert len(sessions) == 2 and sum(s["current"] for s in sessions) == 1
    listed = browser.get("/api/v1/me/sessions", headers=bearer).json()
    assert {s["id"] for s in listed} == {s["id"] for s in sessions}

    # Only the cookie's hash is stored.
    value = browser.cookies["notefall_session"]
    engine = create_engine(normalize_database_url(settings.database_url))
    with engine.connect() as connection:
        stored = (
            connection.execute(text("SELECT cookie_hash FROM browser_sessions")).scalars().all()
        )
    engine.dispose()
    assert stored == [hashlib.sha256(value.encode()).hexdigest()]

    home = browser.get("/")
    assert home.status_code == 200 and "ada@example.com" in home.text
    assert home.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in home.headers["content-security-policy"]


def test_a_wrong_password_is_answered_on_the_page(browser: TestClient, settings: Settings):
    signed_in_headers(browser, settings, "ada@example.com")
    response = browser_sign_in(browser, "ada@example.com", password="not the right one at all")
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/html")
    assert "email address or password is wrong" in response.text
    assert "Traceback" not in response.text
    assert 'value="ada@example.com"' in response.text  # kept; the password is not
    assert "notefall_session" not in browser.cookies
    assert browser.get("/api/v1/me").status_code == 401

    unknown = browser_sign_in(browser, "nobody@example.com")
    assert unknown.status_code == 400 and "email address or password is wrong" in unknown.text


def test_an_unconfirmed_address_is_told_on_the_page(browser: TestClient):
    signup = {"email": "new@example.com", "password": PASSWORD, "name": "New"}
    assert browser.post("/api/v1/auth/signup", json=signup).status_code == 201
    response = browser_sign_in(browser, "new@example.com")
    assert response.status_code == 403 and "Confirm your email address" in response.text


def test_signing_out_ends_the_session_on_the_server(browser: TestClient, settings: Settings):
    bearer = new_account_signed_in(browser, settings, "ada@example.com")
    old_cookie = browser.cookies["notefall_session"]
    home = browser.get("/")
    token = hidden_field(home.text, "csrf_token")

    response = browser.post("/signout", data={"csrf_token": token}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/signin"
    cleared = session_cookie_header(response)
    assert "max-age=0" in cleared.lower() or "expires=thu, 01 jan 1970" in cleared.lower()
    assert "notefall_session" not in browser.cookies

    # The old cookie, replayed, opens nothing: the session itself is revoked.
    browser.cookies.set("notefall_session", old_cookie, domain="testserver")
    assert browser.get("/api/v1/me").status_code == 401
    assert browser.get("/", follow_redirects=False).headers["location"] == "/signin?next=%2F"
    assert len(browser.get("/api/v1/me/sessions", headers=bearer).json()) == 1


def test_signing_out_without_the_csrf_token_is_refused(browser: TestClient, settings: Settings):
    new_account_signed_in(browser, settings, "ada@example.com")
    response = browser.post("/signout", data={"csrf_token": "forged"}, follow_redirects=False)
    assert response.status_code == 403 and "reload the page" in response.text
    assert browser.get("/api/v1/me").status_code == 200


def test_ending_the_browser_session_from_the_list_ends_the_cookie(
    browser: TestClient, settings: Settings
):
    bearer = new_account_signed_in(browser, settings, "ada@example.com")
    cookie_session = next(s for s in browser.get("/api/v1/me/sessions").json() if s["current"])
    ended = browser.delete(f"/api/v1/me/sessions/{cookie_session['id']}", headers=bearer)
    assert ended.status_code == 204
    assert browser.get("/api/v1/me").status_code == 401


@pytest.mark.parametrize(
    "next_path",
    [
        "https://evil.example/phish",
        "//evil.example/phish",
        "/\\evil.example",
        "\\\\evil.example",
        "javascript:alert(1)",
        "evil.example",
        "/\tevil",
        "/\n/evil.example",
        "",
        None,
    ],
)
def test_next_is_only_ever_a_path_of_this_site(next_path: str | None):
    assert safe_next(next_path) == "/"


def test_signing_in_with_a_foreign_next_lands_home(browser: TestClient, settings: Settings):
    signed_in_headers(browser, settings, "ada@example.com")
    response = browser_sign_in(browser, "ada@example.com", next="//evil.example/phish")
    assert response.status_code == 303 and response.headers["location"] == "/"


def test_next_keeps_a_path_with_its_query(browser: TestClient, settings: Settings):
    signed_in_headers(browser, settings, "ada@example.com")
    response = browser_sign_in(browser, "ada@example.com", next="/projects?sort=-created")
    assert response.headers["location"] == "/projects?sort=-created"
    # Already signed in: the sign-in page sends the browser straight on.
    again = browser.get("/signin", params={"next": "//evil.example"}, follow_redirects=False)
    assert again.status_code == 303 and again.headers["location"] == "/"


def test_the_cookie_expires_unless_used_and_slides_when_used(
    browser: TestClient, settings: Settings
):
    new_account_signed_in(browser, settings, "ada@example.com")
    start = utcnow()
    browser.app.state.clock = lambda: start + timedelta(days=20)
    used = browser.get("/api/v1/me")
    assert used.status_code == 200
    assert "max-age=2592000" in session_cookie_header(used).lower()  # re-sent, 30 days again
    browser.app.state.clock = lambda: start + timedelta(days=20, hours=1)
    assert "set-cookie" not in browser.get("/api/v1/me").headers  # at most once a day
    browser.app.state.clock = lambda: start + timedelta(days=45)
    page = browser.get("/")  # past the first 30 days: it slid; pages slide it too
    assert page.status_code == 200 and "ada@example.com" in page.text
    assert "max-age=2592000" in session_cookie_header(page).lower()
    browser.app.state.clock = lambda: start + timedelta(days=76)
    assert browser.get("/api/v1/me").status_code == 401


def test_authorize_link_survives_the_sign_in_page(browser: TestClient, settings: Settings):
    """The `next` of an OAuth sign-in keeps the whole authorize query (see test_oauth_pkce)."""
    signed_in_headers(browser, settings, "ada@example.com")
    page = browser.get("/signin", params={"next": "/oauth/authorize?client_id=a&state=b"})
    assert "Notefall Desktop" in page.text
    next_value = hidden_field(page.text, "next")
    assert parse_qs(urlsplit(next_value).query) == {"client_id": ["a"], "state": ["b"]}


def test_an_account_with_two_factor_is_asked_for_its_code_on_the_same_page(
    browser: TestClient, settings: Settings
):
    start = datetime(2026, 11, 29, 12, 0, 0, tzinfo=UTC)  # the start of a 30-second step
    browser.app.state.clock = lambda: start
    bearer = signed_in_headers(browser, settings, "ada@example.com")
    secret = browser.post("/api/v1/me/2fa/setup", headers=bearer).json()["secret"]
    enable = {"code": pyotp.TOTP(secret).at(start)}
    assert browser.post("/api/v1/me/2fa/enable", json=enable, headers=bearer).status_code == 200
    browser.app.state.clock = lambda: start + timedelta(seconds=60)

    asked = browser_sign_in(browser, "ada@example.com")
    assert asked.status_code == 200 and "Two-step verification" in asked.text
    assert "notefall_session" not in browser.cookies
    # The page carries a proof of the password, never the password itself.
    assert PASSWORD not in asked.text and 'name="password"' not in asked.text
    form = {
        name: hidden_field(asked.text, name) for name in ("email", "pending", "csrf_token", "next")
    }
    wrong = browser.post("/signin", data={**form, "otp": "000000"}, follow_redirects=False)
    assert wrong.status_code == 400 and "Two-step verification" in wrong.text
    assert "Traceback" not in wrong.text and "notefall_session" not in browser.cookies

    code = pyotp.TOTP(secret).at(start + timedelta(seconds=60))
    right = browser.post("/signin", data={**form, "otp": code}, follow_redirects=False)
    assert right.status_code == 303 and "notefall_session" in browser.cookies
    assert browser.get("/api/v1/me").status_code == 200


def test_the_two_factor_step_expires_and_dies_with_a_password_change(
    browser: TestClient, settings: Settings
):
    start = datetime(2026, 11, 29, 12, 0, 0, tzinfo=UTC)
    browser.app.state.clock = lambda: start
    bearer = signed_in_headers(browser, settings, "ada@example.com")
    secret = browser.post("/api/v1/me/2fa/setup", headers=bearer).json()["secret"]
    enable = {"code": pyotp.TOTP(secret).at(start)}
    assert browser.post("/api/v1/me/2fa/enable", json=enable, headers=bearer).status_code == 200

    def second_step(asked, at: datetime):
        browser.app.state.clock = lambda: at
        form = {n: hidden_field(asked.text, n) for n in ("email", "pending", "csrf_token", "next")}
        return browser.post(
            "/signin", data={**form, "otp": pyotp.TOTP(secret).at(at)}, follow_redirects=False
        )

    browser.app.state.clock = lambda: start + timedelta(seconds=60)
    asked = browser_sign_in(browser, "ada@example.com")
    late = second_step(asked, start + timedelta(minutes=12))
    assert late.status_code == 400 and "enter your password again" in late.text
    assert "notefall_session" not in browser.cookies

    browser.app.state.clock = lambda: start + timedelta(minutes=13)
    asked = browser_sign_in(browser, "ada@example.com")
    browser.app.state.clock = lambda: start + timedelta(minutes=14)
    reauth = {"password": PASSWORD, "otp": pyotp.TOTP(secret).at(start + timedelta(minutes=14))}
    assert browser.post("/api/v1/auth/reauth", json=reauth, headers=bearer).status_code == 200
    change = {"current_password": PASSWORD, "new_password": "a whole new tune on the keys"}
    assert browser.post("/api/v1/me/password", json=change, headers=bearer).status_code == 204
    stale = second_step(asked, start + timedelta(minutes=15))
    assert stale.status_code == 400 and "notefall_session" not in browser.cookies


def test_the_sign_in_page_has_the_token_endpoints_backoff(
    tmp_path: Path, migrated_url: str, redis_url: str
):
    # Scale 0.4: two free failures per account, as in test_rate_limits.
    settings = make_settings(
        tmp_path / "data", migrated_url, redis_url=redis_url, rate_limit_scale=0.4
    )
    with TestClient(create_app(settings), base_url="https://testserver") as browser:
        signed_in_headers(browser, settings, "ada@example.com")
        for _ in range(3):
            assert browser_sign_in(browser, "ada@example.com", password="wrong!").status_code == 400
        locked = browser_sign_in(browser, "ada@example.com")
        assert locked.status_code == 429 and "Too many failed sign-ins" in locked.text
        assert "retry-after" in locked.headers
        assert "notefall_session" not in browser.cookies
