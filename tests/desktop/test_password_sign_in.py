"""The password sign-in dialog against a real server, with and without two-factor sign-in."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyotp
import pytest
from notefall.desktop.cloud.password_dialog import PasswordSignInDialog
from notefall.desktop.cloud.session import CloudSession
from notefall.desktop.cloud.tokens import FileTokenStore
from notefall.desktop.ops import wait_for_operations
from PySide6.QtWidgets import QDialog

from tests.desktop.cloud_server import PASSWORD, CloudServer, running_cloud_server

pytestmark = pytest.mark.xdist_group("desktop-cloud")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[CloudServer]:
    with running_cloud_server(tmp_path / "server") as running:
        running.sign_up("ada@example.com")
        yield running


@pytest.fixture
def session(server: CloudServer, desktop_env: Path) -> CloudSession:
    store = FileTokenStore(desktop_env)
    return CloudSession(server.url, desktop_env, desktop_env / "downloads", store=store)


def fill_and_submit(qtbot, dialog: PasswordSignInDialog, email: str, password: str) -> None:
    qtbot.keyClicks(dialog.email, email)
    qtbot.keyClicks(dialog.password, password)
    dialog.submit()


def test_password_sign_in_signs_in_and_keeps_only_tokens(
    qtbot, server: CloudServer, session: CloudSession, desktop_env: Path, screenshot
):
    dialog = PasswordSignInDialog(session)
    qtbot.addWidget(dialog)
    dialog.show()
    screenshot(dialog, "password-sign-in")
    with qtbot.waitSignal(dialog.finished, timeout=20_000):
        fill_and_submit(qtbot, dialog, "ada@example.com", PASSWORD)
    assert dialog.result() == QDialog.DialogCode.Accepted
    assert session.signed_in
    stored = (desktop_env / "cloud-tokens.json").read_text()
    assert PASSWORD not in stored and "access_token" in stored


def test_a_wrong_password_shows_the_servers_message_and_stays_open(
    qtbot, session: CloudSession, screenshot
):
    dialog = PasswordSignInDialog(session)
    qtbot.addWidget(dialog)
    dialog.show()
    fill_and_submit(qtbot, dialog, "ada@example.com", "this is not her password")
    qtbot.waitUntil(lambda: dialog.error.isVisible(), timeout=20_000)
    assert "password is wrong" in dialog.error.text()
    assert dialog.isVisible() and not session.signed_in
    screenshot(dialog, "password-sign-in-refused")


def test_two_factor_accounts_are_asked_for_the_code_then_signed_in(
    qtbot, server: CloudServer, session: CloudSession, screenshot
):
    headers = server.bearer("ada@example.com")
    setup = server.http.post("/api/v1/me/2fa/setup", headers=headers)
    assert setup.status_code == 200, setup.text
    totp = pyotp.TOTP(setup.json()["secret"])
    now = datetime.now(UTC)
    enabled = server.http.post(
        "/api/v1/me/2fa/enable", json={"code": totp.at(now)}, headers=headers
    )
    assert enabled.status_code == 200, enabled.text

    dialog = PasswordSignInDialog(session)
    qtbot.addWidget(dialog)
    dialog.show()
    fill_and_submit(qtbot, dialog, "ada@example.com", PASSWORD)
    qtbot.waitUntil(lambda: dialog.asking_for_code, timeout=20_000)
    assert not session.signed_in
    screenshot(dialog, "password-sign-in-code")

    qtbot.keyClicks(dialog.code, "000000" if totp.at(now) != "000000" else "111111")
    dialog.submit()
    qtbot.waitUntil(lambda: dialog.error.isVisible(), timeout=20_000)
    assert "code" in dialog.error.text().lower()
    assert dialog.asking_for_code and not session.signed_in

    # A fresh code (the next time step: the one used to enable may not be replayed).
    dialog.code.clear()
    qtbot.keyClicks(dialog.code, totp.at(now + timedelta(seconds=30)))
    with qtbot.waitSignal(dialog.finished, timeout=20_000):
        dialog.submit()
    assert dialog.result() == QDialog.DialogCode.Accepted
    assert session.signed_in
    wait_for_operations(20_000)
