"""The browser pages behind the links in our mails: sign-up, email verification, a forgotten
password and its reset, the email-change confirmation; followed from the mails themselves."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from notefall.server.accounts.password_reset import RESET_ACCEPTED_DETAIL
from notefall.server.kit.app import create_app
from notefall.server.kit.models import utcnow
from notefall.server.kit.redis_server import RedisServer
from notefall.server.kit.settings import Settings

from .conftest import body_of, make_settings, outbox_messages, signed_in_headers
from .test_browser_session import PASSWORD, PUBLIC_ORIGIN, browser_sign_in, hidden_field

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

NEW_PASSWORD = "a quiet upright in the hall"
FORM_EXPIRED = "This form expired or was sent from another site"
DEAD_LINK = "This link no longer works"


@pytest.fixture
def browser(settings: Settings) -> Iterator[TestClient]:
    # https: the CSRF cookie is Secure, so an http client would never send it back.
    with TestClient(create_app(settings), base_url="https://testserver") as test_client:
        yield test_client


def link_in(settings: Settings, to: str, page: str) -> str:
    """The path and query of the newest link to ``page`` mailed to ``to``."""
    for message in reversed(outbox_messages(settings)):
        if message["To"] != to:
            continue
        for line in body_of(message).splitlines():
            if line.startswith(f"{PUBLIC_ORIGIN}{page}?token="):
                parts = urlsplit(line.strip())
                return f"{parts.path}?{parts.query}"
    raise AssertionError(f"no {page} link mailed to {to}")


def submit(browser: TestClient, page_path: str, action: str, **fields: str):
    """Open ``page_path`` (a form: it sets the CSRF cookie), then post its form with ``fields``
    plus its hidden fields."""
    page = browser.get(page_path)
    assert page.status_code == 200, page.text
    form = {"csrf_token": hidden_field(page.text, "csrf_token")}
    if 'name="token"' in page.text:
        form["token"] = hidden_field(page.text, "token")
    return browser.post(action, data={**form, **fields})


def sign_up_in_page(browser: TestClient, email: str, password: str = PASSWORD, name: str = "Ada"):
    return submit(browser, "/signup", "/signup", name=name, email=email, password=password)


def assert_page(response, status: int, *texts: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["cache-control"] == "no-store"
    assert "Traceback" not in response.text
    for text in texts:
        assert text in response.text, response.text


def test_the_forms_render_and_the_sign_in_page_links_to_them(browser: TestClient):
    signin = browser.get("/signin")
    assert 'href="/signup"' in signin.text and 'href="/forgot-password"' in signin.text
    for path, text in [
        ("/signup", "Create your Notefall account"),
        ("/forgot-password", "Forgot your password?"),
    ]:
        page = browser.get(path)
        assert_page(page, 200, text, 'name="csrf_token"')
        assert "notefall_signin_csrf=" in page.headers["set-cookie"]
        assert "secure" in page.headers["set-cookie"].lower()


def test_sign_up_confirm_and_sign_in_through_the_pages(browser: TestClient, settings: Settings):
    done = sign_up_in_page(browser, "Ada@Example.com")
    assert_page(done, 200, "Check your inbox", "ada@example.com")
    path = link_in(settings, "ada@example.com", "/verify-email")

    # Opening the link (twice: mail scanners do) confirms nothing.
    for _ in range(2):
        assert_page(browser.get(path), 200, "Confirm my email address")
    assert browser_sign_in(browser, "ada@example.com").status_code == 403

    confirmed = submit(browser, path, "/verify-email")
    assert_page(confirmed, 200, "Your address is confirmed", 'href="/signin"')
    assert browser_sign_in(browser, "ada@example.com").status_code == 303
    # The link is spent.
    assert_page(browser.get(path), 400, DEAD_LINK, 'href="/signup"')


def test_sign_up_refusals_are_shown_on_the_form(browser: TestClient, settings: Settings):
    weak = sign_up_in_page(browser, "ada@example.com", password="short")
    assert_page(weak, 422, "Use at least 10 characters", 'value="ada@example.com"')
    assert 'value="short"' not in weak.text  # a password is never echoed
    bad_address = sign_up_in_page(browser, "ada-at-example.com")
    assert_page(bad_address, 422, "Enter your email address")
    blank_name = sign_up_in_page(browser, "ada@example.com", name="   ")
    assert_page(blank_name, 422, "Enter your name")
    assert outbox_messages(settings) == []


def test_sign_up_answers_the_same_for_a_taken_address(browser: TestClient, settings: Settings):
    signed_in_headers(browser, settings, "ada@example.com")
    fresh = sign_up_in_page(browser, "bob@example.com")
    taken = sign_up_in_page(browser, "ada@example.com")
    assert taken.status_code == fresh.status_code == 200
    assert taken.text == fresh.text.replace("bob@example.com", "ada@example.com")
    # The owner is told by mail, as with the API.
    assert outbox_messages(settings)[-1]["Subject"].startswith("Someone tried to sign up")


def test_forgot_password_and_reset_through_the_pages(browser: TestClient, settings: Settings):
    bearer = signed_in_headers(browser, settings, "ada@example.com")
    known = submit(browser, "/forgot-password", "/forgot-password", email="ada@example.com")
    unknown = submit(browser, "/forgot-password", "/forgot-password", email="nobody@example.com")
    assert_page(known, 200, "Check your inbox", RESET_ACCEPTED_DETAIL)
    assert unknown.text == known.text  # says nothing about which addresses have accounts
    path = link_in(settings, "ada@example.com", "/reset-password")

    browser.get(path)  # opening the link spends nothing
    weak = submit(browser, path, "/reset-password", password="short", password_again="short")
    assert_page(weak, 422, "Use at least 10 characters", 'name="token"')
    differ = submit(
        browser, path, "/reset-password", password=NEW_PASSWORD, password_again="another one"
    )
    assert_page(differ, 422, "The two passwords differ")
    done = submit(
        browser, path, "/reset-password", password=NEW_PASSWORD, password_again=NEW_PASSWORD
    )
    assert_page(done, 200, "Your password is changed", 'href="/signin"')

    assert browser.get("/api/v1/me", headers=bearer).status_code == 401  # signed out everywhere
    assert browser_sign_in(browser, "ada@example.com").status_code == 400
    assert browser_sign_in(browser, "ada@example.com", NEW_PASSWORD).status_code == 303
    assert_page(browser.get(path), 400, DEAD_LINK, 'href="/forgot-password"')
    assert outbox_messages(settings)[-1]["Subject"] == "Your password was changed"


def test_a_used_reset_link_posted_again_gets_the_dead_link_page(
    browser: TestClient, settings: Settings
):
    signed_in_headers(browser, settings, "ada@example.com")
    submit(browser, "/forgot-password", "/forgot-password", email="ada@example.com")
    path = link_in(settings, "ada@example.com", "/reset-password")
    form_page = browser.get(path)
    form = {
        "csrf_token": hidden_field(form_page.text, "csrf_token"),
        "token": hidden_field(form_page.text, "token"),
        "password": NEW_PASSWORD,
        "password_again": NEW_PASSWORD,
    }
    assert browser.post("/reset-password", data=form).status_code == 200
    assert_page(browser.post("/reset-password", data=form), 400, DEAD_LINK)


@pytest.mark.parametrize("page", ["/verify-email", "/reset-password", "/verify-email-change"])
def test_forged_or_missing_tokens_get_a_page_saying_what_to_do(browser: TestClient, page: str):
    for query in ["", "?token=", "?token=not-a-token", "?token=" + "x" * 500]:
        assert_page(browser.get(page + query), 400, DEAD_LINK)
    form_page = browser.get("/forgot-password")
    posted = browser.post(
        page,
        data={
            "csrf_token": hidden_field(form_page.text, "csrf_token"),
            "token": "forged.token",
            "password": NEW_PASSWORD,
            "password_again": NEW_PASSWORD,
        },
    )
    assert_page(posted, 400, DEAD_LINK)


def _request_email_change(browser: TestClient, bearer: dict[str, str], new_email: str) -> None:
    reauth = browser.post("/api/v1/auth/reauth", json={"password": PASSWORD}, headers=bearer)
    assert reauth.status_code == 200, reauth.text
    asked = browser.post("/api/v1/me/email", json={"new_email": new_email}, headers=bearer)
    assert asked.status_code == 202, asked.text


def test_email_change_is_confirmed_by_the_button_not_the_link(
    browser: TestClient, settings: Settings
):
    bearer = signed_in_headers(browser, settings, "ada@example.com")
    _request_email_change(browser, bearer, "ada@example.org")
    path = link_in(settings, "ada@example.org", "/verify-email-change")

    for _ in range(2):
        assert_page(browser.get(path), 200, "ada@example.org", "Use this address")
    assert browser.get("/api/v1/me", headers=bearer).json()["email"] == "ada@example.com"

    done = submit(browser, path, "/verify-email-change")
    assert_page(done, 200, "Your email address is changed", "ada@example.org")
    assert browser.get("/api/v1/me", headers=bearer).status_code == 401  # other sessions end
    assert browser_sign_in(browser, "ada@example.org").status_code == 303
    assert_page(browser.get(path), 400, DEAD_LINK)


def test_confirming_in_the_signed_in_browser_keeps_that_sign_in(
    browser: TestClient, settings: Settings
):
    bearer = signed_in_headers(browser, settings, "ada@example.com")
    assert browser_sign_in(browser, "ada@example.com").status_code == 303
    _request_email_change(browser, bearer, "ada@example.org")
    path = link_in(settings, "ada@example.org", "/verify-email-change")

    assert submit(browser, path, "/verify-email-change").status_code == 200
    home = browser.get("/", follow_redirects=False)
    assert home.status_code == 200 and "ada@example.org" in home.text
    assert browser.get("/api/v1/me", headers=bearer).status_code == 401


def test_an_address_taken_since_the_request_is_refused_on_the_page(
    browser: TestClient, settings: Settings
):
    bearer = signed_in_headers(browser, settings, "ada@example.com")
    _request_email_change(browser, bearer, "shared@example.org")
    path = link_in(settings, "shared@example.org", "/verify-email-change")
    signed_in_headers(browser, settings, "shared@example.org")

    refused = submit(browser, path, "/verify-email-change")
    assert_page(refused, 409, "This address is taken", "choose a different one")
    assert browser.get("/api/v1/me", headers=bearer).json()["email"] == "ada@example.com"


def test_expired_links_get_the_dead_link_page(browser: TestClient, settings: Settings):
    sign_up_in_page(browser, "ada@example.com")
    path = link_in(settings, "ada@example.com", "/verify-email")
    form_page = browser.get(path)
    browser.app.state.clock = lambda: utcnow() + timedelta(hours=49)  # type: ignore[attr-defined]
    assert_page(browser.get(path), 400, DEAD_LINK)
    posted = browser.post(
        "/verify-email",
        data={
            "csrf_token": hidden_field(form_page.text, "csrf_token"),
            "token": hidden_field(form_page.text, "token"),
        },
    )
    assert_page(posted, 400, DEAD_LINK)


def test_every_form_refuses_a_post_without_its_csrf_token_or_from_another_site(
    browser: TestClient, settings: Settings
):
    bearer = signed_in_headers(browser, settings, "ada@example.com")
    submit(browser, "/forgot-password", "/forgot-password", email="ada@example.com")
    reset_path = link_in(settings, "ada@example.com", "/reset-password")
    _request_email_change(browser, bearer, "ada@example.org")
    change_path = link_in(settings, "ada@example.org", "/verify-email-change")
    mails = len(outbox_messages(settings))

    cases = [
        ("/signup", "/signup", {"name": "Bob", "email": "bob@example.com", "password": PASSWORD}),
        ("/forgot-password", "/forgot-password", {"email": "ada@example.com"}),
        (
            reset_path,
            "/reset-password",
            {"password": NEW_PASSWORD, "password_again": NEW_PASSWORD},
        ),
        (change_path, "/verify-email-change", {}),
    ]
    for page_path, action, fields in cases:
        page = browser.get(page_path)
        token = {"token": hidden_field(page.text, "token")} if 'name="token"' in page.text else {}
        good = hidden_field(page.text, "csrf_token")
        missing = browser.post(action, data={**token, **fields})
        assert_page(missing, 403, FORM_EXPIRED)
        # One character changed (a token that starts with "x" must still change).
        forged = ("y" if good.startswith("x") else "x") + good[1:]
        wrong = browser.post(action, data={**token, **fields, "csrf_token": forged})
        assert_page(wrong, 403, FORM_EXPIRED)
        foreign = browser.post(
            action,
            data={**token, **fields, "csrf_token": good},
            headers={"Origin": "https://evil.example"},
        )
        assert_page(foreign, 403, FORM_EXPIRED)

    # Nothing happened: no mail, the old password and address still work.
    assert len(outbox_messages(settings)) == mails
    assert browser.get("/api/v1/me", headers=bearer).json()["email"] == "ada@example.com"
    assert browser_sign_in(browser, "ada@example.com").status_code == 303


def test_verify_email_refuses_a_post_without_its_csrf_token(
    browser: TestClient, settings: Settings
):
    sign_up_in_page(browser, "ada@example.com")
    path = link_in(settings, "ada@example.com", "/verify-email")
    token = hidden_field(browser.get(path).text, "token")
    assert_page(browser.post("/verify-email", data={"token": token}), 403, FORM_EXPIRED)
    assert browser_sign_in(browser, "ada@example.com").status_code == 403  # still unconfirmed


def _limited_browser(tmp_path: Path, migrated_url: str, redis_url: str) -> TestClient:
    settings = make_settings(
        tmp_path / "data", migrated_url, redis_url=redis_url, rate_limit_scale=1.0
    )
    return TestClient(create_app(settings), base_url="https://testserver")


def test_the_forms_count_against_the_apis_limits(tmp_path: Path, migrated_url: str, redis_url: str):
    with _limited_browser(tmp_path, migrated_url, redis_url) as browser:
        # Three an hour per address, refused or not, as POST /auth/signup counts them.
        for _ in range(3):
            assert sign_up_in_page(browser, "ada@example.com", password="short").status_code == 422
        limited = sign_up_in_page(browser, "ada@example.com", password="short")
        assert_page(limited, 429, "Too many requests; try again in")
        assert int(limited.headers["retry-after"]) > 0

        def forgot():
            return submit(browser, "/forgot-password", "/forgot-password", email="x@example.com")

        assert [forgot().status_code for _ in range(4)] == [200, 200, 200, 429]
        over = browser.post("/api/v1/auth/password-reset/request", json={"email": "x@example.com"})
        assert over.status_code == 429  # the page and the API share the count


def test_without_redis_the_forms_fail_closed_with_a_page(tmp_path: Path, migrated_url: str):
    with (
        RedisServer(tmp_path / "redis", persistent=False) as own_redis,
        _limited_browser(tmp_path, migrated_url, own_redis.url) as browser,
    ):
        page = browser.get("/signup")
        own_redis.stop()
        form = {
            "csrf_token": hidden_field(page.text, "csrf_token"),
            "name": "Ada",
            "email": "ada@example.com",
            "password": PASSWORD,
        }
        assert_page(browser.post("/signup", data=form), 503, "try again in a minute")
