"""The account pages in a real chromium against a live stack: two-factor set-up from the QR
page's key to the recovery codes, signing out elsewhere, the profile forms with the avatar
preview, the switches, the data export followed by its page, and deleting the account.
Every page is looked at (phone and desktop screenshots, axe) on the way."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pyotp
import pytest
from notefall.server.accounts.models import User
from notefall.server.kit.models import utcnow
from notefall.server.profile.models import DataExport, ExportStatus
from PIL import Image
from playwright.sync_api import Page, expect
from sqlalchemy import select

from tests.support.browser import look, sign_in

from .conftest import Web

pytestmark = pytest.mark.xdist_group("browser")


def confirm_password(page: Page, password: str) -> None:
    """From a page whose sensitive section is locked: confirm, and land back on it."""
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_label("Password", exact=True).press("Enter")
    expect(page.get_by_role("status")).to_contain_text("Password confirmed")


def picture() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (640, 480), (230, 120, 60)).save(out, format="JPEG")
    return out.getvalue()


def test_two_factor_set_up_with_the_key_an_app_would_scan(web: Web):
    account = web.new_account()
    page = account.page
    page.goto("/account/security")
    look(page, "account-security")
    page.get_by_role("link", name="Confirm password to set it up").click()
    look(page, "account-confirm-password")
    confirm_password(page, account.password)

    page.get_by_role("button", name="Set up two-factor sign-in").click()
    qr = page.get_by_role("img", name="QR code that adds Notefall to your authenticator app")
    expect(qr).to_be_visible()
    assert qr.evaluate("img => img.naturalWidth") > 100  # the data: image decoded
    look(page, "account-security-two-factor-setup")
    secret = page.locator("#two-factor-secret").inner_text().replace(" ", "")
    assert re.fullmatch(r"[A-Z2-7]{32}", secret)

    page.get_by_label("6-digit code").fill("000000")
    page.get_by_role("button", name="Turn on").click()
    expect(page.get_by_role("alert")).to_contain_text("This two-factor code is wrong")
    assert page.locator("#two-factor-secret").inner_text().replace(" ", "") == secret

    page.get_by_label("6-digit code").fill(pyotp.TOTP(secret).now())
    page.get_by_label("6-digit code").press("Enter")
    expect(page.get_by_role("heading", name="Save your recovery codes")).to_be_visible()
    codes = page.locator(".recovery-codes code").all_inner_texts()
    assert len(codes) == 10 and all(re.fullmatch(r"[a-z2-9]{5}-[a-z2-9]{5}", c) for c in codes)
    look(page, "account-recovery-codes")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download as a text file").click()
    saved = download.value
    assert saved.suggested_filename == "notefall-recovery-codes.txt"
    text = Path(saved.path()).read_text(encoding="utf-8")
    assert all(code in text for code in codes) and account.email in text

    page.get_by_role("link", name="I saved them").click()
    expect(page.locator(".state.on")).to_have_text("On")
    expect(page.get_by_text("10 of 10 recovery codes left")).to_be_visible()
    look(page, "account-security-two-factor-on")

    # Signing in again now asks for a code: a recovery code works once.
    other = web.page()
    other.goto("/signin")
    other.get_by_label("Email").fill(account.email)
    other.get_by_label("Password").fill(account.password)
    other.get_by_role("button", name="Sign in").click()
    other.get_by_label("Verification code").fill(codes[0])
    other.get_by_role("button", name="Verify and sign in").click()
    other.wait_for_url(lambda url: "/signin" not in url)


def test_signing_out_everywhere_else_leaves_only_this_browser(web: Web):
    account = web.new_account()
    elsewhere = web.page()
    sign_in(elsewhere, account.email)
    page = account.page
    page.goto("/account/security")
    sessions = page.locator(".session-list > li")
    expect(sessions).to_have_count(2)
    expect(sessions.first).to_contain_text("This browser")

    # By keyboard: the button is reachable and pressed with Enter.
    button = page.get_by_role("button", name="Sign out everywhere else")
    button.focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_contain_text("only this browser stays signed in")
    expect(sessions).to_have_count(1)

    elsewhere.goto("/account")
    expect(elsewhere).to_have_url(re.compile(r"/signin\?next=%2Faccount$"))
    page.goto("/account")
    expect(page.get_by_role("heading", name="Profile", exact=True)).to_be_visible()


def test_profile_preferences_and_activity_pages(web: Web):
    account = web.new_account(name="Clara Schumann")
    page = account.page
    page.goto("/account")
    look(page, "account-profile")

    page.get_by_label("Your name").fill("Clara Wieck")
    page.get_by_role("button", name="Save name").click()
    expect(page.get_by_role("status")).to_have_text("Your name is saved.")

    page.get_by_label("Choose a picture").set_input_files(
        {"name": "clara.jpg", "mimeType": "image/jpeg", "buffer": picture()}
    )
    preview = page.get_by_role("img", name="Preview of your new avatar")
    expect(preview).to_be_visible()  # shown before anything is uploaded
    page.get_by_role("button", name="Upload avatar").click()
    expect(page.get_by_role("status")).to_have_text("Your new avatar is saved.")
    current = page.get_by_role("img", name="Your current avatar")
    expect(current).to_be_visible()
    assert current.evaluate("img => img.naturalWidth") == 256  # its signed link loaded
    look(page, "account-profile-with-avatar")

    page.get_by_label("Choose a picture").set_input_files(
        {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"not a picture"}
    )
    expect(page.locator("#avatar-check")).to_contain_text("not a PNG, JPEG, WebP or GIF")

    page.get_by_label("New password", exact=True).fill("short")
    page.get_by_label("New password again").fill("short")
    page.get_by_label("Current password").fill(account.password)
    page.get_by_label("Current password").evaluate("input => input.form.noValidate = true")
    page.get_by_role("button", name="Change password").click()
    expect(page.get_by_role("alert")).to_contain_text("Use at least 10 characters")

    page.goto("/account/notifications")
    news = page.get_by_role("switch", name="Product news")
    was = news.is_checked()
    news.focus()
    page.keyboard.press("Space")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_have_text("Your notification settings are saved.")
    assert page.get_by_role("switch", name="Product news").is_checked() is not was
    look(page, "account-notifications")

    page.goto("/account/privacy")
    page.get_by_role("switch", name="Share anonymous usage statistics").check()
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_have_text("Your privacy settings are saved.")
    expect(page.get_by_role("switch", name="Share anonymous usage statistics")).to_be_checked()
    look(page, "account-privacy")

    page.goto("/account/activity")
    events = page.locator(".activity-list > li")
    expect(events.first).to_contain_text("Avatar changed")
    expect(page.get_by_text("Name changed")).to_be_visible()
    expect(page.get_by_text("Account created")).to_be_visible()
    look(page, "account-activity")


def test_a_data_export_shows_its_link_once_ready_then_the_account_is_deleted(web: Web):
    account = web.new_account()
    page = account.page
    page.goto("/account/data")
    page.get_by_role("button", name="Request a data export").click()
    expect(page.get_by_role("status")).to_have_text("Your data export is being prepared.")
    # The live stack's worker builds it (often before the page is even shown); while it is
    # pending, the page's poll brings the link without a reload by hand.
    download = page.get_by_role("link", name="Download zip")
    expect(download).to_be_visible(timeout=60_000)
    look(page, "account-data")
    zipped = page.request.get(download.get_attribute("href") or "")
    assert zipped.ok and zipped.body()[:2] == b"PK"

    page.get_by_label("Your password").fill("not my password")
    page.get_by_label("I understand").check()
    page.get_by_role("button", name="Delete my account").click()
    expect(page.get_by_role("alert")).to_contain_text("That is not your password")

    page.get_by_label("Your password").fill(account.password)
    page.get_by_label("I understand").check()
    page.get_by_role("button", name="Delete my account").click()
    expect(page.get_by_role("heading", name="Your account is deleted")).to_be_visible()
    look(page, "account-deleted")
    page.goto("/account")
    expect(page).to_have_url(re.compile(r"/signin"))
    page.get_by_label("Email").fill(account.email)
    page.get_by_label("Password").fill(account.password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("The email address or password is wrong")


def test_a_pending_export_updates_its_page_by_itself(web: Web):
    account = web.new_account()
    # A pending export no worker was asked for, so it stays pending until this test says.
    with web.server.database() as session:
        user = session.scalars(select(User).where(User.email == account.email)).one()
        export = DataExport(user_id=user.id, status=ExportStatus.PENDING.value, created_at=utcnow())
        session.add(export)
        session.flush()
        export_id = export.id
    page = account.page
    page.goto("/account/data")
    expect(page.get_by_text("Being prepared", exact=True)).to_be_visible()
    expect(page.get_by_role("link", name="Refresh to check")).to_be_visible()
    look(page, "account-data-pending")

    with web.server.database() as session:
        finished = session.get(DataExport, export_id)
        assert finished is not None
        finished.status = ExportStatus.FAILED.value
        finished.finished_at = utcnow()
    # No click, no reload by hand: the page's poll notices and shows the new state.
    expect(page.get_by_text("failed. Please ask for a new one")).to_be_visible(timeout=20_000)
    expect(page.get_by_role("button", name="Request a new export")).to_be_visible()
