"""The whole journey in a real browser against the whole server (``notefall stack``):
sign up, confirm the address from the mail, sign in, turn on two-factor sign-in, sign out and
back in with a code, create a project by uploading a MIDI file, render it while the progress
page follows along, download a real MP4, upgrade to Pro through Checkout on the local
Stripe server (its webhook delivered to the stack), and see Pro on the billing page."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from notefall.common.video.ffmpeg import probe
from playwright.sync_api import expect

from tests.support.browser import (
    PASSWORD,
    confirm_address,
    sign_up,
    totp_code,
    turn_on_two_factor,
    unique_email,
)
from tests.support.render_farm import tiny_midi

from .conftest import Web

pytestmark = pytest.mark.xdist_group("browser")

# Bounds for waiting on the farm and on Stripe's webhook, not speed assertions.
RENDER_SECONDS = 300
WEBHOOK_SECONDS = 60


# The render and the webhook have their own bounds; pytest's default 300 s is for quick tests.
@pytest.mark.timeout(900)
def test_sign_up_to_a_rendered_video_and_pro(web: Web, tmp_path: Path):
    page = web.page()
    email = unique_email("clara")

    # Sign up, confirm from the mail's link, sign in.
    sign_up(page, "Clara Schumann", email)
    confirm_address(page, web.server, email)
    page.goto("/signin")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Your projects")).to_be_visible()

    # Two-factor sign-in on; then out, and in again with the password and a code.
    secret = turn_on_two_factor(page)
    page.get_by_role("navigation", name="Main").get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/signin"))
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/signin\?next=%2F$"))
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Two-step verification")).to_be_visible()
    page.get_by_label("Verification code").fill(totp_code(secret, steps_ahead=1))
    page.get_by_role("button", name="Verify and sign in").click()
    expect(page.get_by_role("heading", name="Your projects")).to_be_visible()

    # A project by upload.
    page.get_by_role("link", name="New project").first.click()
    page.get_by_label("Name").fill("Träumerei")
    page.get_by_label("MIDI file").set_input_files(
        {"name": "traumerei.mid", "mimeType": "audio/midi", "buffer": tiny_midi(3.0)}
    )
    page.get_by_role("button", name="Create project").click()
    expect(page).to_have_url(re.compile(r"/projects/[0-9a-f-]{36}(\?.*)?$"))
    expect(page.get_by_role("heading", name="Träumerei", exact=True)).to_be_visible()

    # Render it; the progress page follows the render to the end by itself.
    page.get_by_role("button", name="Render the video").click()
    expect(page).to_have_url(re.compile(r"/renders/[0-9a-f-]{36}$"))
    status = page.locator("#render-stage [data-field=label]")
    assert status.inner_text() not in ("Done", "Failed"), status.inner_text()
    # A mark on this very document: it must still be there at the end, so the page
    # followed the render live rather than being reloaded.
    page.evaluate("() => { window.followedLive = true; }")
    download_link = page.get_by_role("link", name="Download video")
    expect(download_link).to_be_visible(timeout=RENDER_SECONDS * 1000)
    expect(status).to_have_text("Done")
    expect(page.locator("#render-progress")).to_have_attribute("value", "100")
    assert page.evaluate("() => window.followedLive === true"), "the page was reloaded"

    # The download is a real MP4 with H.264 video of the song's length.
    with page.expect_download() as download:
        download_link.click()
    video = tmp_path / download.value.suggested_filename
    download.value.save_as(video)
    assert video.suffix == ".mp4", video.name
    info = probe(video)
    assert "mp4" in info.container and info.video_codec == "h264", info
    assert info.duration is not None and info.duration >= 2.5, info

    # Upgrade through Checkout on the local Stripe server; its webhook reaches the stack.
    page.get_by_role("link", name="Billing", exact=True).click()
    expect(page.get_by_role("heading", name="Billing", exact=True)).to_be_visible()
    expect(page.locator(".plan-badge")).to_have_text("Free")
    page.get_by_role("button", name="Upgrade to Pro").click()
    expect(page).to_have_url(re.compile(rf"^{re.escape(web.server.stripe.url)}/checkout/"))
    page.get_by_role("button", name="Pay and subscribe").click()
    expect(page).to_have_url(re.compile(r"/billing/return\?session_id="))
    expect(page.get_by_role("heading", name="You are on Pro")).to_be_visible(
        timeout=WEBHOOK_SECONDS * 1000
    )

    # And the billing page says Pro.
    page.get_by_role("link", name="Go to billing").click()
    expect(page.locator(".plan-badge")).to_have_text("Pro")
    pro = page.locator("article.plan", has=page.get_by_role("heading", name="Pro", exact=True))
    expect(pro).to_contain_text("Your plan")
