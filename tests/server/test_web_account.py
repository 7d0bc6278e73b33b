"""The account pages under /account, driven as a browser drives them: forms with the page's
CSRF token, answers followed by status, headers and the words on the page; their effects
checked through the API (the same services behind both)."""

from __future__ import annotations

import html
import io
import re
import uuid
from collections.abc import Iterator
from urllib.parse import quote, unquote, urlsplit

import pytest
from notefall.server.kit.app import create_app
from notefall.server.kit.settings import Settings
from notefall.server.profile.export_job import build_export
from notefall.server.web.account_devices import device_name
from PIL import Image

from .conftest import TestClient, make_settings, outbox_messages, signed_in_headers
from .test_browser_session import PASSWORD, browser_sign_in, hidden_field
from .test_two_factor import Clock, code_at, install_clock

pytestmark = pytest.mark.one_backend

ADA = "ada@example.com"
NEW_PASSWORD = "a quiet upright in the hall"
PAGES = [
    "/account",
    "/account/security",
    "/account/notifications",
    "/account/privacy",
    "/account/activity",
    "/account/data",
    "/account/confirm-password",
]
# Every change the pages make, with fields that would be accepted with the token.
POSTS = [
    ("/account/name", {"name": "Mallory"}),
    ("/account/avatar/remove", {}),
    ("/account/email", {"new_email": "mallory@example.com"}),
    ("/account/password", {"current_password": PASSWORD, "new_password": NEW_PASSWORD}),
    ("/account/confirm-password", {"password": PASSWORD, "next": "/account"}),
    ("/account/security/two-factor/setup", {}),
    ("/account/security/two-factor/enable", {"code": "123456"}),
    ("/account/security/two-factor/disable", {"code": "123456"}),
    ("/account/security/two-factor/recovery-codes", {}),
    ("/account/security/sessions/sign-out-others", {}),
    (f"/account/security/sessions/{uuid.uuid4()}/sign-out", {}),
    ("/account/notifications", {"news": "on"}),
    ("/account/privacy", {"product_analytics": "on"}),
    ("/account/data/export", {}),
    ("/account/data/delete", {"password": PASSWORD, "understood": "yes"}),
]


@pytest.fixture
def browser(settings: Settings) -> Iterator[TestClient]:
    # https: the sign-in cookie is Secure, so an http client would never send it back.
    with TestClient(create_app(settings), base_url="https://testserver") as test_client:
        yield test_client


@pytest.fixture
def clock(browser: TestClient) -> Clock:
    return install_clock(browser)


@pytest.fixture
def ada(browser: TestClient, settings: Settings, clock: Clock) -> dict[str, str]:
    """Ada signed in with the browser; the bearer header of her other (API) session."""
    bearer = signed_in_headers(browser, settings, ADA)
    assert browser_sign_in(browser, ADA).status_code == 303
    return bearer


def page_text(response) -> str:
    """The page's visible words, tags dropped and entities decoded, for plain assertions."""
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.text)))


def assert_page(response, status: int, *texts: str) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["cache-control"] == "no-store"
    assert "Traceback" not in response.text
    words = page_text(response)
    for text in texts:
        assert text in words, words
    return words


def submit(browser: TestClient, page: str, action: str, files=None, **fields: str):
    """Open ``page``, then send ``action`` with the page's CSRF token and ``fields``."""
    opened = browser.get(page)
    assert opened.status_code == 200, opened.text
    form = {"csrf_token": hidden_field(opened.text, "csrf_token"), **fields}
    return browser.post(action, data=form, files=files, follow_redirects=False)


def followed(browser: TestClient, response) -> object:
    assert response.status_code == 303, response.text
    return browser.get(response.headers["location"])


def confirm_password(browser: TestClient, back: str = "/account", **extra: str) -> None:
    done = submit(
        browser,
        "/account/confirm-password",
        "/account/confirm-password",
        password=PASSWORD,
        next=back,
        **extra,
    )
    assert done.headers["location"] == f"{back}?done=confirmed"


def me(browser: TestClient, bearer: dict[str, str]) -> dict:
    response = browser.get("/api/v1/me", headers=bearer)
    assert response.status_code == 200, response.text
    return response.json()


def png(size: tuple[int, int] = (300, 200)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (40, 90, 200)).save(out, format="PNG")
    return out.getvalue()


# Access, headers, CSRF ---------------------------------------------------------------------


def test_signed_out_visitors_are_sent_to_sign_in_and_back(browser: TestClient):
    for path in PAGES:
        response = browser.get(path, follow_redirects=False)
        assert response.status_code == 303, path
        assert response.headers["location"] == "/signin?next=" + quote(path, safe="")


def test_every_account_page_is_private_framed_by_the_sub_navigation(browser: TestClient, ada: dict):
    for path in PAGES:
        response = browser.get(path)
        assert_page(response, 200, "Profile", "Security", "Notifications", "Your data")
        policy = response.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in policy and "unsafe-inline" not in policy
        assert "script-src 'self'" in policy
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["strict-transport-security"].startswith("max-age=")  # https
        assert " style=" not in response.text and "<script>" not in response.text
        assert '<script src="/static/js/account.js" defer></script>' in response.text
    security = browser.get("/account/security").text
    assert '<a href="/account/security" aria-current="page">Security</a>' in security


def test_every_change_without_the_pages_token_is_refused(browser: TestClient, ada: dict):
    for action, fields in POSTS:
        refused = browser.post(action, data=fields, follow_redirects=False)
        assert_page(refused, 403, "reload the page")
    # Nor with the token, from a page of another site.
    token = hidden_field(browser.get("/account").text, "csrf_token")
    foreign = browser.post(
        "/account/name",
        data={"csrf_token": token, "name": "Mallory"},
        headers={"Origin": "https://evil.example"},
        follow_redirects=False,
    )
    assert_page(foreign, 403, "another site")
    assert me(browser, ada)["name"] == "ada"  # nothing changed
    assert browser.get("/api/v1/me/sessions", headers=ada).status_code == 200


# Profile -----------------------------------------------------------------------------------


def test_renaming_is_saved_and_confirmed(browser: TestClient, ada: dict):
    done = submit(browser, "/account", "/account/name", name="  Ada Lovelace ")
    assert done.headers["location"] == "/account?done=name"
    page = assert_page(followed(browser, done), 200, "Your name is saved.")
    assert 'value="Ada Lovelace"' in browser.get("/account").text and "Ada Lovelace" in page
    assert me(browser, ada)["name"] == "Ada Lovelace"

    blank = submit(browser, "/account", "/account/name", name="   ")
    assert_page(blank, 422, "Enter your name: at most 200 characters, on one line.")
    assert me(browser, ada)["name"] == "Ada Lovelace"


def test_an_avatar_is_uploaded_shown_by_its_signed_link_and_removed(browser: TestClient, ada: dict):
    files = {"file": ("me.png", png(), "image/png")}
    done = submit(browser, "/account", "/account/avatar", files=files)
    assert done.headers["location"] == "/account?done=avatar"
    page = followed(browser, done)
    assert_page(page, 200, "Your new avatar is saved.", "Remove avatar")
    link = re.search(r'id="avatar-current" src="([^"]+)"', page.text)
    assert link, page.text
    url = urlsplit(html.unescape(link.group(1)))
    picture = browser.get(f"{url.path}?{url.query}")
    assert picture.status_code == 200
    assert Image.open(io.BytesIO(picture.content)).size == (256, 256)
    assert me(browser, ada)["avatar_url"] is not None

    removed = followed(browser, submit(browser, "/account", "/account/avatar/remove"))
    assert_page(removed, 200, "Your avatar is removed.")
    assert 'aria-label="No avatar yet"' in removed.text
    assert me(browser, ada)["avatar_url"] is None


def test_avatar_refusals_say_what_is_wrong(browser: TestClient, ada: dict):
    text = submit(
        browser,
        "/account",
        "/account/avatar",
        files={"file": ("notes.txt", b"hello", "text/plain")},
    )
    assert_page(text, 422, "This file is not a PNG, JPEG, WebP or GIF picture")
    big = submit(
        browser,
        "/account",
        "/account/avatar",
        files={"file": ("huge.png", b"\x89PNG" + b"0" * (5 * 1024 * 1024), "image/png")},
    )
    assert_page(big, 413, "Avatars may be at most 5 MB")
    nothing = submit(browser, "/account", "/account/avatar", files={"file": ("", b"", "")})
    assert_page(nothing, 422, "Choose a picture to upload first")
    assert me(browser, ada)["avatar_url"] is None


def test_changing_the_email_needs_the_password_again(
    browser: TestClient, settings: Settings, ada: dict, clock: Clock
):
    locked = browser.get("/account")
    assert_page(locked, 200, "Confirm password to change email")
    assert 'name="new_email"' not in locked.text
    # The form of a page opened earlier: sent back to confirm first, as the API's 403 says.
    early = submit(browser, "/account", "/account/email", new_email="ada@example.org")
    assert early.headers["location"] == "/account/confirm-password?next=/account&expired=1"

    wrong = submit(
        browser,
        "/account/confirm-password",
        "/account/confirm-password",
        password="not my password",
        next="/account",
    )
    assert_page(wrong, 400, "The password is wrong")
    confirm_password(browser, "/account")
    assert_page(browser.get("/account?done=confirmed"), 200, "Password confirmed")

    taken = signed_in_headers(browser, settings, "bob@example.com")
    assert taken
    refused = submit(browser, "/account", "/account/email", new_email="bob@example.com")
    assert_page(refused, 409, "Another Notefall account uses this email address")
    sent = submit(browser, "/account", "/account/email", new_email="ada@example.org")
    assert_page(followed(browser, sent), 200, "Check the inbox of your new address")
    assert outbox_messages(settings)[-2]["To"] == "ada@example.org"

    clock.advance(minutes=11)
    late = submit(browser, "/account", "/account/email", new_email="ada@example.net")
    assert late.headers["location"].startswith("/account/confirm-password")
    assert_page(followed(browser, late), 200, "more than 10 minutes old")


def test_changing_the_password_through_the_page(browser: TestClient, ada: dict):
    def change(current: str, new: str, again: str | None = None):
        return submit(
            browser,
            "/account",
            "/account/password",
            current_password=current,
            new_password=new,
            new_password_again=new if again is None else again,
        )

    assert_page(change("wrong", NEW_PASSWORD), 400, "The current password is wrong")
    assert_page(change(PASSWORD, "short"), 422, "Use at least 10 characters")
    assert_page(change(PASSWORD, NEW_PASSWORD, "another one"), 422, "The two new passwords differ")
    assert 'value="' + PASSWORD not in change(PASSWORD, "short").text  # never echoed
    assert browser.get("/api/v1/me", headers=ada).status_code == 200

    done = change(PASSWORD, NEW_PASSWORD)
    assert_page(followed(browser, done), 200, "Your password is changed")
    # The other session ended; this browser stays signed in.
    assert browser.get("/api/v1/me", headers=ada).status_code == 401
    assert browser.get("/account").status_code == 200


# Security ----------------------------------------------------------------------------------


def secret_on(page: str) -> str:
    found = re.search(r'id="two-factor-secret">([A-Z2-7 ]+)<', page)
    assert found, page
    return found.group(1).replace(" ", "")


def test_two_factor_set_up_with_the_qr_code_then_codes_then_off(
    browser: TestClient, ada: dict, clock: Clock
):
    assert_page(browser.get("/account/security"), 200, "Off", "Confirm password to set it up")
    early = submit(browser, "/account/security", "/account/security/two-factor/setup")
    assert early.headers["location"].startswith("/account/confirm-password?next=/account/security")
    confirm_password(browser, "/account/security")

    started = submit(browser, "/account/security", "/account/security/two-factor/setup")
    assert_page(started, 200, "Scan this QR code", "Type this key into the app instead")
    assert re.search(r'<img class="qr" src="data:image/svg\+xml[^"]+" alt="QR code', started.text)
    secret = secret_on(started.text)
    # The half-done set-up is shown again, with the same key, while the password is confirmed.
    assert secret_on(browser.get("/account/security").text) == secret

    empty = submit(browser, "/account/security", "/account/security/two-factor/enable", code=" ")
    assert_page(empty, 422, "Enter the 6-digit code")
    wrong = submit(
        browser, "/account/security", "/account/security/two-factor/enable", code="000000"
    )
    assert_page(wrong, 400, "This two-factor code is wrong")
    assert secret_on(wrong.text) == secret

    enabled = submit(
        browser,
        "/account/security",
        "/account/security/two-factor/enable",
        code=code_at(secret, clock.now),
    )
    assert_page(enabled, 200, "Save your recovery codes", "They are shown only now")
    codes = re.findall(r"<li><code>([a-z2-9]{5}-[a-z2-9]{5})</code></li>", enabled.text)
    assert len(codes) == 10
    download = re.search(
        r'href="(data:text/plain;charset=utf-8,[^"]+)" download="([^"]+)"', enabled.text
    )
    assert download and download.group(2) == "notefall-recovery-codes.txt"
    assert all(code in unquote(html.unescape(download.group(1))) for code in codes)
    assert me(browser, ada)["two_factor_enabled"] is True
    assert_page(browser.get("/account/security"), 200, "On", "10 of 10 recovery codes left")

    renewed = submit(browser, "/account/security", "/account/security/two-factor/recovery-codes")
    assert_page(renewed, 200, "Your old recovery codes no longer work")
    new_codes = re.findall(r"<li><code>([a-z2-9-]{11})</code></li>", renewed.text)
    assert len(new_codes) == 10 and not set(new_codes) & set(codes)

    off_wrong = submit(
        browser, "/account/security", "/account/security/two-factor/disable", code=codes[0]
    )
    assert_page(off_wrong, 400, "This two-factor code is wrong")
    off = submit(
        browser, "/account/security", "/account/security/two-factor/disable", code=new_codes[0]
    )
    assert_page(followed(browser, off), 200, "Two-factor sign-in is off")
    assert me(browser, ada)["two_factor_enabled"] is False


def test_with_two_factor_on_confirming_the_password_needs_a_code(
    browser: TestClient, ada: dict, clock: Clock
):
    confirm_password(browser, "/account/security")
    started = submit(browser, "/account/security", "/account/security/two-factor/setup")
    secret = secret_on(started.text)
    submit(
        browser,
        "/account/security",
        "/account/security/two-factor/enable",
        code=code_at(secret, clock.now),
    )
    clock.advance(minutes=11)
    form = browser.get("/account/confirm-password?next=/account/security")
    assert_page(form, 200, "Two-factor code")
    no_code = submit(
        browser,
        "/account/confirm-password",
        "/account/confirm-password",
        password=PASSWORD,
        next="/account/security",
    )
    assert_page(no_code, 401, "Two-factor sign-in is on: enter the 6-digit code")
    wrong = submit(
        browser,
        "/account/confirm-password",
        "/account/confirm-password",
        password=PASSWORD,
        otp="000000",
        next="/account/security",
    )
    assert_page(wrong, 400, "This two-factor code is wrong")
    confirm_password(browser, "/account/security", otp=code_at(secret, clock.now))


def test_sessions_are_listed_and_signed_out_one_or_all_but_this_one(
    browser: TestClient, settings: Settings, ada: dict
):
    second = {"grant_type": "password", "username": ADA, "password": PASSWORD}
    other = browser.post("/api/v1/auth/token", data=second, headers={"User-Agent": "curl/8.5"})
    other_bearer = {"Authorization": f"Bearer {other.json()['access_token']}"}
    page = assert_page(browser.get("/account/security"), 200, "This browser", "curl", "3 sessions")
    assert "Sign out everywhere else" in page

    # As this browser sees them: the API session of the fixture is neither current nor curl.
    sessions = browser.get("/api/v1/me/sessions").json()
    first = next(s for s in sessions if s["user_agent"] != "curl/8.5" and not s["current"])
    ended = submit(
        browser, "/account/security", f"/account/security/sessions/{first['id']}/sign-out"
    )
    assert_page(followed(browser, ended), 200, "That session is signed out.", "2 sessions")
    assert browser.get("/api/v1/me", headers=ada).status_code == 401
    assert browser.get("/api/v1/me", headers=other_bearer).status_code == 200

    everywhere = submit(browser, "/account/security", "/account/security/sessions/sign-out-others")
    assert_page(
        followed(browser, everywhere), 200, "only this browser stays signed in", "1 session"
    )
    assert browser.get("/api/v1/me", headers=other_bearer).status_code == 401

    bob = signed_in_headers(browser, settings, "bob@example.com")
    bobs = browser.get("/api/v1/me/sessions", headers=bob).json()[0]["id"]
    not_yours = submit(browser, "/account/security", f"/account/security/sessions/{bobs}/sign-out")
    assert_page(not_yours, 404, "You have no active session with this id")
    assert browser.get("/api/v1/me", headers=bob).status_code == 200

    mine = next(s for s in browser.get("/api/v1/me/sessions").json() if s["current"])["id"]
    out = submit(browser, "/account/security", f"/account/security/sessions/{mine}/sign-out")
    assert out.headers["location"] == "/signin"
    assert browser.get("/account", follow_redirects=False).status_code == 303


# Preferences, activity ---------------------------------------------------------------------


def test_notification_and_privacy_switches_are_saved_with_a_confirmation(
    browser: TestClient, ada: dict
):
    done = submit(
        browser, "/account/notifications", "/account/notifications", billing="on", news="on"
    )
    assert done.headers["location"] == "/account/notifications?done=notifications"
    assert_page(followed(browser, done), 200, "Your notification settings are saved.")
    assert browser.get("/api/v1/me/notifications", headers=ada).json() == {
        "render_finished": False,
        "render_failed": False,
        "billing": True,
        "news": True,
    }
    page = browser.get("/account/notifications").text
    assert re.search(r'name="news" value="on"\s+aria-describedby="[^"]+" checked>', page)
    assert re.search(r'name="render_failed" value="on"\s+aria-describedby="[^"]+">', page)

    saved = submit(browser, "/account/privacy", "/account/privacy", product_analytics="on")
    assert_page(followed(browser, saved), 200, "Your privacy settings are saved.")
    assert browser.get("/api/v1/me/privacy", headers=ada).json() == {
        "show_name_on_shared_projects": False,
        "discoverable_by_email": False,
        "product_analytics": True,
    }


def test_activity_reads_in_words_newest_first_a_page_at_a_time(
    browser: TestClient, ada: dict, clock: Clock
):
    for n in range(52):
        clock.advance(seconds=1)
        submit(browser, "/account", "/account/name", name=f"Ada {n}")
    first_page = browser.get("/account/activity")
    first = assert_page(first_page, 200, "Name changed")
    assert first.count("Name changed") == 50  # one full page, of the newest
    older = re.search(r'href="/account/activity\?before=([^"]+)">Older events', first_page.text)
    assert older
    second = browser.get(f"/account/activity?before={html.unescape(older.group(1))}")
    words = assert_page(
        second,
        200,
        "Newest events",
        "Account created",
        "Email address confirmed",
        "Signed in on the website",
        "Signed in with the password (an app or the API)",
    )
    assert words.count("Name changed") == 2 and "Older events" not in words
    moments = re.findall(r'<time datetime="([^"]+)"', first_page.text + second.text)
    # Sign-up, confirmation and two sign-ins (API, browser) came first.
    assert len(moments) == 50 + 2 + 4 and moments == sorted(moments, reverse=True)

    broken = browser.get("/account/activity?before=yesterday")
    assert_page(broken, 400, "This link to older events is broken")


def test_failed_attempts_stand_out_in_the_activity_log(browser: TestClient, ada: dict):
    submit(
        browser,
        "/account/confirm-password",
        "/account/confirm-password",
        password="not it",
        next="/account",
    )
    page = browser.get("/account/activity").text
    assert '<li class="warn">' in page
    assert "Failed sign-in while confirming your password: wrong password" in page_text(
        browser.get("/account/activity")
    )


# Your data ---------------------------------------------------------------------------------


def test_a_data_export_is_requested_followed_and_downloaded(
    browser: TestClient, settings: Settings, ada: dict
):
    assert_page(browser.get("/account/data"), 200, "Request a data export")
    done = submit(browser, "/account/data", "/account/data/export")
    page = followed(browser, done)
    assert_page(
        page, 200, "Your data export is being prepared.", "Being prepared", "Refresh to check"
    )
    export_id = re.search(r'data-export-id="([0-9a-f-]+)" data-status="pending"', page.text)
    assert export_id
    again = browser.post(
        "/account/data/export",
        data={"csrf_token": hidden_field(page.text, "csrf_token")},
        follow_redirects=False,
    )
    assert_page(again, 409, "Your previous export is still being prepared")

    build_export(
        settings, browser.app.state.storage, uuid.UUID(export_id.group(1)), clock_now(browser)
    )
    ready = assert_page(
        browser.get("/account/data"), 200, "Ready", "Download zip", "Request a new export"
    )
    assert ready
    link = re.search(r'href="([^"]+)" download>Download zip', browser.get("/account/data").text)
    assert link
    url = urlsplit(html.unescape(link.group(1)))
    archive = browser.get(f"{url.path}?{url.query}")
    assert archive.status_code == 200 and archive.content[:2] == b"PK"


def clock_now(browser: TestClient):
    return browser.app.state.clock()  # type: ignore[attr-defined]


def test_deleting_the_account_needs_the_password_and_code_then_says_goodbye(
    browser: TestClient, settings: Settings, ada: dict, clock: Clock
):
    def delete(**fields: str):
        return submit(browser, "/account/data", "/account/data/delete", **fields)

    words = assert_page(browser.get("/account/data"), 200, "This cannot be undone.")
    assert "your projects, with their MIDI and audio files" in words
    assert_page(delete(password=PASSWORD), 422, "Tick the box to confirm")
    assert_page(delete(password="not mine", understood="yes"), 400, "That is not your password")

    confirm_password(browser, "/account/security")
    secret = secret_on(
        submit(browser, "/account/security", "/account/security/two-factor/setup").text
    )
    submit(
        browser,
        "/account/security",
        "/account/security/two-factor/enable",
        code=code_at(secret, clock.now),
    )
    clock.advance(seconds=30)
    assert_page(delete(password=PASSWORD, understood="yes"), 401, "enter the 6-digit code")
    assert me(browser, ada)["email"] == ADA

    gone = delete(password=PASSWORD, understood="yes", otp=code_at(secret, clock.now))
    assert_page(gone, 200, "Your account is deleted", "Thank you for using Notefall")
    assert 'notefall_session=""' in gone.headers["set-cookie"]
    assert browser.get("/api/v1/me", headers=ada).status_code == 401
    assert browser.get("/account", follow_redirects=False).status_code == 303
    assert outbox_messages(settings)[-1]["Subject"] == "Your Notefall account was deleted"


def test_wrong_passwords_typed_on_the_pages_count_against_the_sign_in_backoff(
    tmp_path, migrated_url: str, redis_url: str
):
    # Scale 0.4: two free failures per account, as in test_rate_limits.
    settings = make_settings(
        tmp_path / "data", migrated_url, redis_url=redis_url, rate_limit_scale=0.4
    )
    with TestClient(create_app(settings), base_url="https://testserver") as browser:
        signed_in_headers(browser, settings, ADA)
        assert browser_sign_in(browser, ADA).status_code == 303
        for _ in range(3):
            wrong = submit(
                browser,
                "/account/confirm-password",
                "/account/confirm-password",
                password="not my password",
                next="/account",
            )
            assert wrong.status_code == 400
        locked = submit(
            browser,
            "/account/confirm-password",
            "/account/confirm-password",
            password=PASSWORD,
            next="/account",
        )
        assert_page(locked, 429, "Too many failed sign-ins")
        assert "retry-after" in locked.headers
        deleting = submit(
            browser, "/account/data", "/account/data/delete", password=PASSWORD, understood="yes"
        )
        assert_page(deleting, 429, "Too many failed sign-ins")
        assert browser.get("/account").status_code == 200  # still there, still signed in


@pytest.mark.parametrize(
    ("agent", "shown"),
    [
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0",
            "Firefox on Windows",
        ),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
            "Safari on iPhone",
        ),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like "
            "Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.2592.87",
            "Edge on macOS",
        ),
        (
            "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/126.0.0.0 Mobile Safari/537.36",
            "Chrome on Android",
        ),
        ("python-httpx/0.28.1", "Notefall Desktop or a script (python-httpx)"),
        ("curl/8.5.0", "curl"),
        (None, "Unknown device"),
        ("SomeRobot/" + "x" * 80, "SomeRobot/" + "x" * 47 + "…"),
    ],
)
def test_sessions_name_the_device_people_recognise(agent: str | None, shown: str):
    assert device_name(agent) == shown
