"""The account panel against a real server: signed-out and signed-in states, the upgrade
through the local Stripe-compatible server (checkout, webhook, worker, new plan), the
past_due banner with Fix payment, and an upgrade that never gets confirmed."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from notefall.desktop.cloud.account_panel import AccountPanel
from notefall.desktop.cloud.session import CloudSession
from notefall.desktop.cloud.tokens import FileTokenStore, Tokens
from notefall.desktop.signals import app_signals

from tests.desktop.cloud_server import PASSWORD, CloudServer, running_cloud_server

pytestmark = pytest.mark.xdist_group("desktop-cloud")

# Bounds for the webhook to travel Stripe → API → worker (not speed assertions).
PAYMENT_WAIT_MS = 60_000


class OpenedUrls(list[str]):
    """Where the system browser would open: the test then acts as the payer."""

    def __call__(self, url: str) -> bool:
        self.append(url)
        return True


def signed_in_session(server: CloudServer, app_data: Path) -> CloudSession:
    session = CloudSession(
        server.url, app_data, app_data / "downloads", store=FileTokenStore(app_data)
    )
    session.client.sign_in_with_password("ada@example.com", PASSWORD)
    return session


@pytest.fixture
def server(tmp_path: Path) -> Iterator[CloudServer]:
    with running_cloud_server(tmp_path / "server") as running:
        running.sign_up("ada@example.com")
        yield running


@pytest.fixture
def paying_server(tmp_path: Path) -> Iterator[CloudServer]:
    with running_cloud_server(tmp_path / "server", with_stripe=True) as running:
        running.sign_up("ada@example.com")
        yield running


def test_signed_out_panel_offers_both_ways_to_sign_in(qtbot, desktop_env: Path, screenshot):
    session = CloudSession("http://127.0.0.1:9", desktop_env, desktop_env / "downloads")
    panel = AccountPanel(session)
    qtbot.addWidget(panel)
    panel.resize(460, 420)
    panel.show()
    assert panel.pages.currentIndex() == 0
    assert panel.browser_button.text() == "Sign in with your browser"
    assert panel.password_button.isVisible()
    assert "127.0.0.1:9" in panel.server_label.text()
    screenshot(panel, "account-signed-out")


def test_signed_in_panel_shows_name_plan_renders_left_and_storage(
    qtbot, server: CloudServer, desktop_env: Path, screenshot
):
    session = signed_in_session(server, desktop_env)
    tiers: list[object] = []
    app_signals().tier_changed.connect(tiers.append)
    panel = AccountPanel(session)
    qtbot.addWidget(panel)
    panel.resize(460, 420)
    panel.show()
    qtbot.waitUntil(lambda: bool(panel.renders_label.text()), timeout=20_000)
    assert panel.pages.currentIndex() == 1
    assert "Ada Lovelace" in panel.name_label.text()
    assert "Free" in panel.plan_label.text()
    usage = session.client.usage()
    limit = usage["renders"]["monthly_limit"]
    assert panel.renders_label.text() == f"{limit} of {limit} renders left this month"
    assert "0 bytes of" in panel.storage_bar.format()
    assert "private file" in panel.tokens_label.text()
    # This server sells no plans, so there is nothing to upgrade to.
    assert not panel.upgrade_button.isVisible()
    assert not panel.payment_banner.isVisible()
    assert tiers == ["free"]
    screenshot(panel, "account-signed-in")

    opened = OpenedUrls()
    panel._open = opened
    panel.manage_button.click()
    assert opened == [f"{server.url}/account"]

    with qtbot.waitSignal(session.signed_in_changed, timeout=20_000):
        panel.sign_out_button.click()
    assert panel.pages.currentIndex() == 0
    assert FileTokenStore(desktop_env).load(server.url) is None


def test_upgrade_waits_for_the_payment_confirmation_then_shows_pro_and_a_past_due_banner(
    qtbot, paying_server: CloudServer, desktop_env: Path, screenshot
):
    server = paying_server
    session = signed_in_session(server, desktop_env)
    opened = OpenedUrls()
    panel = AccountPanel(session, open_url=opened, upgrade_poll_ms=200)
    qtbot.addWidget(panel)
    panel.resize(460, 460)
    panel.show()
    qtbot.waitUntil(lambda: panel.upgrade_button.isVisible(), timeout=20_000)

    # Paid, but Stripe's webhooks are held back: the panel keeps waiting.
    server.stripe.control.pause_webhooks()
    panel.upgrade_button.click()
    qtbot.waitUntil(
        lambda: panel.waiting_for_payment or panel.upgrade_button.isEnabled(), timeout=20_000
    )
    assert panel.waiting_for_payment, panel.upgrade_status.text()
    (checkout_url,) = opened
    assert "Waiting for payment confirmation" in panel.upgrade_status.text()
    qtbot.wait(100)  # let the layout settle before the picture
    screenshot(panel, "account-upgrade-waiting")
    server.stripe.control.complete_checkout(checkout_url.rstrip("/").rsplit("/", 1)[-1])
    assert panel.waiting_for_payment

    with qtbot.waitSignal(panel.tier_changed, timeout=PAYMENT_WAIT_MS) as changed:
        server.stripe.control.resume_webhooks()
    assert changed.args == ["pro"]
    qtbot.waitUntil(lambda: not panel.waiting_for_payment, timeout=10_000)
    assert "you are on Pro now" in panel.upgrade_status.text()
    assert "Pro" in panel.plan_label.text()
    assert panel.upgrade_button.text() == "Change plan…" and panel.upgrade_button.isEnabled()
    qtbot.wait(100)
    screenshot(panel, "account-pro")

    # The next renewal is declined: the server's past_due banner, with Fix payment.
    client = server.stripe.client()
    customer = client.v1.customers.list().data[0].id
    subscription = client.v1.subscriptions.list(params={"customer": customer}).data[0].id
    server.stripe.control.set_card(customer, "declined")
    server.stripe.control.advance(to_period_end=subscription)

    def banner_shown() -> bool:
        panel.refresh()
        qtbot.wait(300)
        return panel.payment_banner.isVisible()

    qtbot.waitUntil(banner_shown, timeout=PAYMENT_WAIT_MS)
    assert "payment" in panel.payment_text.text().lower()
    screenshot(panel, "account-past-due")
    panel.fix_payment_button.click()
    assert opened[-1] == f"{server.url}/billing"
    # On Pro, "Change plan…" opens the billing page (a second checkout would be refused).
    panel.upgrade_button.click()
    assert opened[-1] == f"{server.url}/billing" and panel.waiting_for_payment


def test_an_upgrade_never_confirmed_ends_with_a_clear_message(
    qtbot, paying_server: CloudServer, desktop_env: Path
):
    session = signed_in_session(paying_server, desktop_env)
    opened = OpenedUrls()
    panel = AccountPanel(session, open_url=opened, upgrade_poll_ms=100, upgrade_timeout_seconds=1.0)
    qtbot.addWidget(panel)
    panel.show()
    qtbot.waitUntil(lambda: panel.upgrade_button.isVisible(), timeout=20_000)
    panel.upgrade_button.click()
    qtbot.waitUntil(lambda: bool(opened), timeout=20_000)
    qtbot.waitUntil(
        lambda: "No payment confirmation yet" in panel.upgrade_status.text(), timeout=20_000
    )
    assert not panel.waiting_for_payment and panel.upgrade_button.isEnabled()
    assert session.tier == "free"


def test_an_unreachable_server_shows_a_banner_with_retry_and_keeps_the_sign_in(
    qtbot, desktop_env: Path, screenshot
):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"
    FileTokenStore(desktop_env).save(url, Tokens("access", "refresh", expires_at=4e9))
    session = CloudSession(url, desktop_env, desktop_env / "downloads")
    panel = AccountPanel(session)
    qtbot.addWidget(panel)
    panel.resize(460, 300)
    panel.show()
    qtbot.waitUntil(lambda: panel.offline_banner.isVisible(), timeout=20_000)
    assert "Cannot reach the Notefall server" in panel.offline_text.text()
    assert panel.retry_button.text() == "Retry"
    assert session.signed_in  # offline is not signed out
    qtbot.wait(50)
    screenshot(panel, "account-offline")
    panel.retry_button.click()
    assert not panel.offline_banner.isVisible()  # hidden while trying again
    qtbot.waitUntil(lambda: panel.offline_banner.isVisible(), timeout=20_000)
