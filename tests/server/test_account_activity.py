"""Every account event lands in the owner's activity log, and only there."""

from __future__ import annotations

import pytest
from notefall.server.kit.settings import Settings

from .conftest import TestClient, outbox_messages, token_in
from .test_app import assert_problem
from .test_two_factor import (
    ADA,
    BOB,
    DISABLE,
    TOKEN,
    Clock,
    activity_kinds,
    enable_two_factor,
    install_clock,
    password_grant,
    sign_in,
    sign_up,
)

ACTIVITY = "/api/v1/me/activity"
BROWSER = {"User-Agent": "Firefox/140.0 (activity test)"}


@pytest.fixture
def clock(client: TestClient) -> Clock:
    return install_clock(client)


def _items(client: TestClient, headers: dict) -> list[dict]:
    response = client.get(ACTIVITY, headers=headers, params={"limit": 200})
    assert response.status_code == 200, response.text
    return response.json()["items"]


def test_every_account_event_is_recorded_with_where_it_came_from(
    client: TestClient, settings: Settings, clock: Clock
):
    client.post("/api/v1/auth/signup", json=ADA, headers=BROWSER)
    token = token_in(outbox_messages(settings)[-1])
    client.post("/api/v1/auth/verify-email", json={"token": token})
    wrong = {**ADA, "password": "not the password at all"}
    assert_problem(password_grant(client, wrong), 400, "invalid_grant")
    form = {"grant_type": "password", "username": ADA["email"], "password": ADA["password"]}
    tokens = client.post(TOKEN, data=form, headers=BROWSER).json()
    ada = {"Authorization": f"Bearer {tokens['access_token']}"}
    # A refresh token exchanged twice: the second exchange ends the session.
    extra = client.post(TOKEN, data=form).json()
    refresh = {"grant_type": "refresh_token", "refresh_token": extra["refresh_token"]}
    assert client.post(TOKEN, data=refresh).status_code == 200
    assert_problem(client.post(TOKEN, data=refresh), 400, "refresh_token_reused")
    # A session ended from another, and one signed out.
    assert client.post(TOKEN, data=form).status_code == 200
    sessions = client.get("/api/v1/me/sessions", headers=ada).json()
    doomed = next(s["id"] for s in sessions if not s["current"])
    assert client.delete(f"/api/v1/me/sessions/{doomed}", headers=ada).status_code == 204
    leaving = sign_in(client, ADA)
    assert client.post("/api/v1/auth/logout", headers=leaving).status_code == 204
    # Two-factor on, a recovery code used, two-factor off.
    _, codes = enable_two_factor(client, ada, clock)
    assert password_grant(client, ADA, codes[0]).status_code == 200
    assert client.post(DISABLE, json={"code": codes[1]}, headers=ada).status_code == 204
    # Password changed, then reset by mail.
    change = {"current_password": ADA["password"], "new_password": "a brand new grand piano"}
    assert client.post("/api/v1/me/password", json=change, headers=ada).status_code == 204
    client.post("/api/v1/auth/password-reset/request", json={"email": ADA["email"]})
    reset = {"token": token_in(outbox_messages(settings)[-1]), "password": "yet another piano"}
    assert client.post("/api/v1/auth/password-reset/confirm", json=reset).status_code == 204
    # The reset ended every session: sign in again, then change the address.
    ada = sign_in(client, {**ADA, "password": "yet another piano"})
    client.post("/api/v1/me/email", json={"new_email": "ada@example.org"}, headers=ada)
    [change_mail] = [m for m in outbox_messages(settings) if m["To"] == "ada@example.org"]
    change_token = token_in(change_mail)
    confirmed = client.post(
        "/api/v1/auth/verify-email-change", json={"token": change_token}, headers=ada
    )
    assert confirmed.status_code == 200, confirmed.text

    items = _items(client, ada)
    assert {item["kind"] for item in items} == {
        "signed_up",
        "email_verified",
        "signed_in",
        "sign_in_failed",
        "refresh_token_reused",
        "session_ended",
        "signed_out",
        "two_factor_enabled",
        "recovery_code_used",
        "two_factor_disabled",
        "password_changed",
        "password_reset",
        "email_change_requested",
        "email_changed",
    }
    first_sign_in = next(
        item
        for item in reversed(items)
        if item["kind"] == "signed_in" and item["user_agent"] == BROWSER["User-Agent"]
    )
    assert first_sign_in["ip"] == "testclient" and first_sign_in["detail"]["via"] == "password"
    signed_up = next(item for item in items if item["kind"] == "signed_up")
    assert signed_up["user_agent"] == BROWSER["User-Agent"] and signed_up["ip"] == "testclient"
    failed = next(item for item in items if item["kind"] == "sign_in_failed")
    assert failed["detail"] == {"reason": "wrong_password"}
    # Nothing secret in any entry: no codes, tokens or passwords.
    text = str(items)
    for secret in [*codes, token, change_token, ADA["password"], "yet another piano"]:
        assert secret not in text


def test_the_log_is_newest_first_and_pages_back(
    client: TestClient, settings: Settings, clock: Clock
):
    sign_up(client, settings, ADA)
    for _ in range(3):
        clock.advance(minutes=1)
        ada = sign_in(client, ADA)
    first = client.get(ACTIVITY, headers=ada, params={"limit": 2}).json()
    assert [item["kind"] for item in first["items"]] == ["signed_in", "signed_in"]
    older = client.get(ACTIVITY, headers=ada, params={"limit": 10, "before": first["next_before"]})
    kinds = [item["kind"] for item in older.json()["items"]]
    # Sign-up and verification happened in the same instant, so their order is open.
    assert kinds[0] == "signed_in" and sorted(kinds[1:]) == ["email_verified", "signed_up"]


def test_nobody_sees_another_accounts_events(client: TestClient, settings: Settings, clock: Clock):
    sign_up(client, settings, ADA)
    sign_up(client, settings, BOB)
    ada = sign_in(client, ADA)
    assert_problem(
        password_grant(client, {**BOB, "password": "wrong wrong wrong"}), 400, "invalid_grant"
    )
    bob = sign_in(client, BOB)
    enable_two_factor(client, bob, clock)
    ada_kinds = activity_kinds(client, ada)
    bob_kinds = activity_kinds(client, bob)
    assert sorted(ada_kinds) == ["email_verified", "signed_in", "signed_up"]
    assert "sign_in_failed" in bob_kinds and "two_factor_enabled" in bob_kinds
    # The log reads only the caller's: no parameter names another account.
    other = client.get(ACTIVITY, headers=ada, params={"user_id": "anything", "limit": 200})
    assert sorted(item["kind"] for item in other.json()["items"]) == sorted(ada_kinds)
    assert_problem(client.get(ACTIVITY), 401, "invalid_access_token")
