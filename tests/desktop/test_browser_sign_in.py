"""'Sign in with your browser' against a real server: PKCE, the loopback redirect, Deny,
a forged redirect and a timeout. The test plays the browser with httpx."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from notefall.desktop.cloud.browser_sign_in import BrowserSignIn, code_verifier, s256
from notefall.desktop.cloud.session import CloudSession
from notefall.desktop.cloud.tokens import FileTokenStore

from tests.desktop.cloud_server import Browser, CloudServer, running_cloud_server

pytestmark = pytest.mark.xdist_group("desktop-cloud")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[CloudServer]:
    with running_cloud_server(tmp_path / "server") as running:
        running.sign_up("ada@example.com")
        yield running


@pytest.fixture
def session(server: CloudServer, desktop_env: Path) -> CloudSession:
    return CloudSession(
        server.url, desktop_env, desktop_env / "downloads", store=FileTokenStore(desktop_env)
    )


class OpenedUrls(list[str]):
    """Stands where the system browser would be opened: the test opens the URL itself."""

    def __call__(self, url: str) -> bool:
        self.append(url)
        return True


def test_browser_sign_in_with_pkce_ends_signed_in_with_tokens_stored(
    qtbot, server: CloudServer, session: CloudSession
):
    opened = OpenedUrls()
    sign_in = BrowserSignIn(session.client, open_url=opened)
    sign_in.start()
    (url,) = opened
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert url.startswith(f"{server.url}/oauth/authorize?")
    assert query["client_id"] == "notefall-desktop"
    assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43
    assert query["redirect_uri"].startswith("http://127.0.0.1:")
    assert query["state"]

    browser = Browser(server)
    signin_page = browser.follow(url)  # signed out: the server asks for the password first
    assert "/signin" in str(signin_page.url)
    consent_page = browser.sign_in(signin_page, "ada@example.com")
    assert "Notefall Desktop" in consent_page.text and "Allow" in consent_page.text
    with qtbot.waitSignal(sign_in.succeeded, timeout=20_000) as signed:
        landing = browser.consent(consent_page, "allow")
    assert landing.status_code == 200 and "Signed in" in landing.text
    tokens = signed.args[0]
    assert session.client.tokens == tokens
    assert FileTokenStore(session.app_data).load(server.url) == tokens
    assert session.client.me()["email"] == "ada@example.com"
    # The state is spent: replaying the redirect is refused by the app's receiver.
    with pytest.raises(httpx.HTTPError):
        httpx.get(landing.url, timeout=2)  # the receiver stopped listening after one answer
    browser.close()


def test_deny_in_the_browser_leaves_the_app_signed_out_with_a_clear_message(
    qtbot, server: CloudServer, session: CloudSession
):
    opened = OpenedUrls()
    sign_in = BrowserSignIn(session.client, open_url=opened)
    sign_in.start()
    browser = Browser(server)
    consent_page = browser.sign_in(browser.follow(opened[0]), "ada@example.com")
    with qtbot.waitSignal(sign_in.failed, timeout=20_000) as failed:
        browser.consent(consent_page, "deny")
    assert "Deny" in failed.args[0]
    assert not session.signed_in
    browser.close()


def test_a_redirect_with_another_state_is_refused_and_the_app_keeps_waiting(
    qtbot, server: CloudServer, session: CloudSession
):
    opened = OpenedUrls()
    sign_in = BrowserSignIn(session.client, open_url=opened)
    sign_in.start()
    redirect_uri = parse_qs(urlsplit(opened[0]).query)["redirect_uri"][0]
    forged = httpx.get(redirect_uri, params={"code": "stolen", "state": "guessed"}, timeout=5)
    assert forged.status_code == 400 and "not recognised" in forged.text
    assert sign_in.active
    # The real answer still completes the sign-in.
    browser = Browser(server)
    consent_page = browser.sign_in(browser.follow(opened[0]), "ada@example.com")
    with qtbot.waitSignal(sign_in.succeeded, timeout=20_000):
        browser.consent(consent_page, "allow")
    browser.close()


def test_no_answer_from_the_browser_times_out_and_cancel_stops_listening(
    qtbot, session: CloudSession
):
    opened = OpenedUrls()
    sign_in = BrowserSignIn(session.client, open_url=opened, timeout_seconds=0.5)
    with qtbot.waitSignal(sign_in.failed, timeout=10_000) as failed:
        sign_in.start()
    assert "No answer from the browser" in failed.args[0]
    redirect_uri = parse_qs(urlsplit(opened[0]).query)["redirect_uri"][0]
    with pytest.raises(httpx.ConnectError):
        httpx.get(redirect_uri, timeout=2)

    again = BrowserSignIn(session.client, open_url=opened)
    again.start()
    with qtbot.waitSignal(again.cancelled, timeout=5_000):
        again.cancel()
    assert not again.active


def test_the_challenge_is_the_one_the_server_checks_the_verifier_against():
    from notefall.server.oauth.pkce import s256 as server_s256

    for _ in range(20):
        verifier = code_verifier()
        assert 43 <= len(verifier) <= 128
        assert s256(verifier) == server_s256(verifier)


def test_the_account_panel_waits_for_the_browser_then_shows_the_account(
    qtbot, server: CloudServer, session: CloudSession, screenshot
):
    from notefall.desktop.cloud.account_panel import AccountPanel

    opened = OpenedUrls()
    panel = AccountPanel(session, open_url=opened)
    qtbot.addWidget(panel)
    panel.resize(460, 360)
    panel.show()
    panel.browser_button.click()
    assert panel.waiting_label.isVisible() and panel.cancel_sign_in_button.isVisible()
    assert not panel.browser_button.isEnabled()
    qtbot.wait(50)
    screenshot(panel, "account-waiting-for-browser")

    browser = Browser(server)
    consent_page = browser.sign_in(browser.follow(opened[0]), "ada@example.com")
    browser.consent(consent_page, "allow")
    qtbot.waitUntil(lambda: "Ada Lovelace" in panel.name_label.text(), timeout=20_000)
    assert panel.pages.currentIndex() == 1 and "Free" in panel.plan_label.text()
    browser.close()
