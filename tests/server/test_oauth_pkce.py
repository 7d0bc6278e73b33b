"""The desktop's browser sign-in: OAuth 2.0 authorization code with PKCE (S256) and a
loopback redirect URI, end to end through the sign-in and consent pages."""

from __future__ import annotations

import secrets
import warnings
from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from notefall.server.kit.app import create_app
from notefall.server.kit.models import utcnow
from notefall.server.kit.settings import Settings
from notefall.server.oauth.clients import is_loopback_redirect
from notefall.server.oauth.pkce import s256
from notefall.server.retention.runner import run_retention

from .conftest import signed_in_headers
from .test_browser_session import browser_sign_in, hidden_field

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

REDIRECT_URI = "http://127.0.0.1:53682/callback"


@pytest.fixture
def browser(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), base_url="https://testserver") as test_client:
        yield test_client


def authorize_params(verifier: str, **overrides: str) -> dict[str, str]:
    params = {
        "response_type": "code",
        "client_id": "notefall-desktop",
        "redirect_uri": REDIRECT_URI,
        "code_challenge": s256(verifier),
        "code_challenge_method": "S256",
        "state": "st-" + secrets.token_urlsafe(8),
        "scope": "projects",
    }
    return {**params, **overrides}


def query_of(location: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(location).query).items()}


def consent(browser: TestClient, params: dict[str, str], decision: str = "allow"):
    """Open the consent page (signed in) and answer it; the raw answer."""
    page = browser.get("/oauth/authorize", params=params)
    assert page.status_code == 200, page.text
    form = {name: hidden_field(page.text, name) for name in params}
    form["csrf_token"] = hidden_field(page.text, "csrf_token")
    form["decision"] = decision
    return browser.post("/oauth/authorize", data=form, follow_redirects=False)


def exchange(browser: TestClient, code: str, verifier: str, **overrides: str):
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "client_id": "notefall-desktop",
        "code_verifier": verifier,
        **overrides,
    }
    return browser.post("/api/v1/auth/token", data=form)


def code_for(browser: TestClient, settings: Settings, verifier: str) -> str:
    """Sign ada in with the browser and allow the desktop app: the authorization code."""
    signed_in_headers(browser, settings, "ada@example.com")
    assert browser_sign_in(browser, "ada@example.com").status_code == 303
    allowed = consent(browser, authorize_params(verifier))
    assert allowed.status_code == 302, allowed.text
    return query_of(allowed.headers["location"])["code"]


def test_the_whole_desktop_sign_in(browser: TestClient, settings: Settings):
    signed_in_headers(browser, settings, "ada@example.com")
    browser.cookies.clear()
    verifier = secrets.token_urlsafe(64)
    params = authorize_params(verifier)

    # Not signed in: off to the sign-in page, which comes back to the very same request.
    first = browser.get("/oauth/authorize", params=params, follow_redirects=False)
    assert first.status_code == 302
    next_path = query_of(first.headers["location"])["next"]
    assert urlsplit(first.headers["location"]).path == "/signin"
    signed_in = browser_sign_in(browser, "ada@example.com", next=next_path)
    assert signed_in.status_code == 303 and signed_in.headers["location"] == next_path
    assert query_of(next_path) == params

    page = browser.get(next_path)
    assert page.status_code == 200
    assert "Notefall Desktop" in page.text and "ada@example.com" in page.text
    assert "Allow" in page.text and "Deny" in page.text
    assert page.headers["x-frame-options"] == "DENY"

    allowed = consent(browser, params)
    assert allowed.status_code == 302
    location = allowed.headers["location"]
    assert location.startswith(REDIRECT_URI + "?")
    answer = query_of(location)
    assert answer["state"] == params["state"] and answer["code"]

    tokens = exchange(browser, answer["code"], verifier)
    assert tokens.status_code == 200, tokens.text
    assert tokens.headers["cache-control"] == "no-store"
    body = tokens.json()
    assert body["token_type"] == "bearer" and body["expires_in"] > 0
    desktop = TestClient(browser.app, base_url="https://testserver")
    bearer = {"Authorization": f"Bearer {body['access_token']}"}
    me = desktop.get("/api/v1/me", headers=bearer)
    assert me.status_code == 200 and me.json()["email"] == "ada@example.com"
    refreshed = desktop.post(
        "/api/v1/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": body["refresh_token"]},
    )
    assert refreshed.status_code == 200, refreshed.text
    # The desktop's session is listed with the others, and the grant is in the activity log.
    assert len(desktop.get("/api/v1/me/sessions", headers=bearer).json()) == 3
    kinds = [e["kind"] for e in desktop.get("/api/v1/me/activity", headers=bearer).json()["items"]]
    assert "app_authorized" in kinds


def test_deny_answers_access_denied(browser: TestClient, settings: Settings):
    signed_in_headers(browser, settings, "ada@example.com")
    assert browser_sign_in(browser, "ada@example.com").status_code == 303
    params = authorize_params("v" * 43)
    denied = consent(browser, params, decision="deny")
    assert denied.status_code == 302
    answer = query_of(denied.headers["location"])
    assert answer["error"] == "access_denied" and answer["state"] == params["state"]
    assert "code" not in answer


def test_a_wrong_verifier_is_refused_and_leaves_the_code_usable(
    browser: TestClient, settings: Settings
):
    verifier = secrets.token_urlsafe(48)
    code = code_for(browser, settings, verifier)
    for wrong in (secrets.token_urlsafe(48), s256(verifier), "short"):
        refused = exchange(browser, code, wrong)
        assert refused.status_code == 400 and refused.json()["code"] == "invalid_grant"
    other_redirect = exchange(browser, code, verifier, redirect_uri="http://127.0.0.1:1/callback")
    assert other_redirect.status_code == 400 and other_redirect.json()["code"] == "invalid_grant"
    other_client = exchange(browser, code, verifier, client_id="someone-else")
    assert other_client.status_code == 400 and other_client.json()["code"] == "invalid_client"
    assert exchange(browser, "forged.code", verifier).json()["code"] == "invalid_grant"
    assert exchange(browser, code, verifier).status_code == 200


def test_a_second_use_of_a_code_revokes_what_the_first_issued(
    browser: TestClient, settings: Settings
):
    verifier = secrets.token_urlsafe(48)
    code = code_for(browser, settings, verifier)
    first = exchange(browser, code, verifier).json()
    bearer = {"Authorization": f"Bearer {first['access_token']}"}
    assert browser.get("/api/v1/me", headers=bearer).status_code == 200

    again = exchange(browser, code, verifier)
    assert again.status_code == 400 and again.json()["code"] == "invalid_grant"
    assert browser.get("/api/v1/me", headers=bearer).status_code == 401
    refresh = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    assert browser.post("/api/v1/auth/token", data=refresh).status_code == 400
    # The browser's own session is not the code's and stays.
    assert browser.get("/api/v1/me").status_code == 200


def test_a_code_expires_after_a_minute(browser: TestClient, settings: Settings):
    verifier = secrets.token_urlsafe(48)
    code = code_for(browser, settings, verifier)
    later = utcnow() + timedelta(seconds=61)
    browser.app.state.clock = lambda: later
    expired = exchange(browser, code, verifier)
    assert expired.status_code == 400 and expired.json()["code"] == "invalid_grant"


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"redirect_uri": "https://evil.example/callback"}, "not on this computer"),
        ({"redirect_uri": "http://localhost:53682/callback"}, "not on this computer"),
        ({"redirect_uri": "http://127.0.0.1.evil.example/cb"}, "not on this computer"),
        ({"client_id": "someone-else"}, "not registered"),
    ],
)
def test_an_untrusted_client_or_redirect_gets_a_page_and_no_redirect(
    client: TestClient, overrides: dict[str, str], reason: str
):
    response = client.get(
        "/oauth/authorize", params=authorize_params("v" * 43, **overrides), follow_redirects=False
    )
    assert response.status_code == 400
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")
    assert reason in response.text


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge_method": ""}, "invalid_request"),
        ({"code_challenge": "too-short"}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
    ],
)
def test_other_bad_requests_go_back_to_the_app_with_an_error(
    client: TestClient, overrides: dict[str, str], error: str
):
    params = authorize_params("v" * 43, **overrides)
    response = client.get("/oauth/authorize", params=params, follow_redirects=False)
    assert response.status_code == 302
    assert response.headers["location"].startswith(REDIRECT_URI + "?")
    answer = query_of(response.headers["location"])
    assert answer["error"] == error and answer["state"] == params["state"]


def test_the_consent_form_needs_the_csrf_token(browser: TestClient, settings: Settings):
    signed_in_headers(browser, settings, "ada@example.com")
    assert browser_sign_in(browser, "ada@example.com").status_code == 303
    params = authorize_params("v" * 43)
    forged = browser.post(
        "/oauth/authorize",
        data={**params, "decision": "allow", "csrf_token": "forged"},
        follow_redirects=False,
    )
    assert forged.status_code == 403 and "location" not in forged.headers


def test_an_ipv6_loopback_redirect_with_any_port_is_accepted(
    browser: TestClient, settings: Settings
):
    signed_in_headers(browser, settings, "ada@example.com")
    assert browser_sign_in(browser, "ada@example.com").status_code == 303
    params = authorize_params("v" * 43, redirect_uri="http://[::1]:61000/done?app=1")
    allowed = consent(browser, params)
    assert allowed.headers["location"].startswith("http://[::1]:61000/done?app=1&code=")


@pytest.mark.parametrize(
    ("uri", "accepted"),
    [
        ("http://127.0.0.1:1/", True),
        ("http://127.0.0.1:65535/cb", True),
        ("http://127.0.0.1/cb", True),
        ("http://[::1]:8080/cb", True),
        ("https://127.0.0.1:8080/cb", False),
        ("http://localhost:8080/cb", False),
        ("http://127.0.0.2:8080/cb", False),
        ("http://user@127.0.0.1:8080/cb", False),
        ("http://127.0.0.1:8080/cb#frag", False),
        ("http://127.0.0.1:99999/cb", False),
        ("http://0x7f.0.0.1:8080/cb", False),
        ("http://[::ffff:127.0.0.1]:8080/cb", False),
        ("notefall://callback", False),
        ("", False),
    ],
)
def test_loopback_redirect_uris(uri: str, accepted: bool):
    assert is_loopback_redirect(uri) is accepted


def test_retention_removes_old_codes_and_expired_cookies(browser: TestClient, settings: Settings):
    code_for(browser, settings, secrets.token_urlsafe(48))
    now = utcnow()
    soon = run_retention(settings, now + timedelta(hours=1))
    assert soon.deleted["oauth_authorization_codes"] == 0  # kept a day for replay detection
    later = run_retention(settings, now + timedelta(days=2))
    assert later.deleted["oauth_authorization_codes"] == 1
    assert later.deleted["browser_sessions"] == 0
    assert browser.get("/api/v1/me").status_code == 200
    expired = run_retention(settings, now + timedelta(days=31))
    assert expired.deleted["browser_sessions"] == 1
