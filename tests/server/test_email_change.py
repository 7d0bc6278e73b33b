"""Changing the email address: confirmed from the new address, told to the old one."""

from __future__ import annotations

import pytest
from notefall.server.accounts.tokens import TokenPurpose
from notefall.server.kit.security import issue_token
from notefall.server.kit.settings import Settings

from .conftest import TEST_SECRET_KEY, TestClient, body_of, outbox_messages, token_in
from .test_app import assert_problem
from .test_two_factor import (
    ADA,
    BOB,
    ME,
    Clock,
    activity_kinds,
    install_clock,
    password_grant,
    sign_in,
    sign_up,
)

EMAIL = "/api/v1/me/email"
CONFIRM = "/api/v1/auth/verify-email-change"
NEW = "ada@example.org"


@pytest.fixture
def clock(client: TestClient) -> Clock:
    return install_clock(client)


@pytest.fixture
def ada(client: TestClient, settings: Settings, clock: Clock) -> dict[str, str]:
    sign_up(client, settings, ADA)
    return sign_in(client, ADA)


def _request_change(client: TestClient, settings: Settings, headers: dict, new: str = NEW) -> str:
    """Ask to move to ``new``; the token mailed there."""
    response = client.post(EMAIL, json={"new_email": new}, headers=headers)
    assert response.status_code == 202, response.text
    assert response.json()["new_email"] == new.lower()
    [confirmation] = [m for m in outbox_messages(settings) if m["To"] == new.lower()][-1:]
    return token_in(confirmation)


def test_the_new_address_gets_a_link_and_the_old_one_a_notice(
    client: TestClient, settings: Settings, ada: dict
):
    before = len(outbox_messages(settings))
    token = _request_change(client, settings, ada, "Ada@Example.ORG")
    mails = outbox_messages(settings)[before:]
    assert sorted(m["To"] for m in mails) == ["ada@example.com", NEW]
    confirmation = next(m for m in mails if m["To"] == NEW)
    notice = next(m for m in mails if m["To"] == "ada@example.com")
    assert f"http://notefall.test/verify-email-change?token={token}" in body_of(confirmation)
    assert token not in body_of(notice) and NEW in body_of(notice)
    # Nothing changes until the link is opened.
    assert client.get(ME, headers=ada).json()["email"] == "ada@example.com"
    assert "email_change_requested" in activity_kinds(client, ada)


def test_confirming_switches_the_address_and_ends_the_other_sessions(
    client: TestClient, settings: Settings, ada: dict
):
    other = sign_in(client, ADA)
    token = _request_change(client, settings, ada)
    response = client.post(CONFIRM, json={"token": token}, headers=ada)
    assert response.status_code == 200
    assert response.json() == {"email": NEW, "email_verified": True}
    profile = client.get(ME, headers=ada).json()
    assert (profile["email"], profile["email_verified"]) == (NEW, True)
    assert_problem(client.get(ME, headers=other), 401, "invalid_access_token")
    assert_problem(password_grant(client, ADA), 400, "invalid_grant")
    assert password_grant(client, {**ADA, "email": NEW}).status_code == 200
    kinds = activity_kinds(client, ada)
    assert "email_changed" in kinds
    changed = next(
        item
        for item in client.get("/api/v1/me/activity", headers=ada).json()["items"]
        if item["kind"] == "email_changed"
    )
    assert changed["detail"] == {"old_email": "ada@example.com", "new_email": NEW}


def test_a_link_opened_without_a_session_ends_every_session(
    client: TestClient, settings: Settings, ada: dict
):
    token = _request_change(client, settings, ada)
    assert client.post(CONFIRM, json={"token": token}).status_code == 200
    assert_problem(client.get(ME, headers=ada), 401, "invalid_access_token")


def test_the_link_works_once_and_expires(client: TestClient, settings: Settings, ada: dict, clock):
    token = _request_change(client, settings, ada)
    assert client.post(CONFIRM, json={"token": token}, headers=ada).status_code == 200
    assert_problem(client.post(CONFIRM, json={"token": token}, headers=ada), 400, "invalid_token")
    token = _request_change(client, settings, ada, "ada@example.net")
    clock.advance(hours=24, seconds=1)
    assert_problem(client.post(CONFIRM, json={"token": token}), 400, "invalid_token")


def test_a_newer_request_or_a_new_password_retires_the_pending_link(
    client: TestClient, settings: Settings, ada: dict
):
    first = _request_change(client, settings, ada)
    second = _request_change(client, settings, ada, "ada@example.net")
    assert_problem(client.post(CONFIRM, json={"token": first}), 400, "invalid_token")
    change = {"current_password": ADA["password"], "new_password": "a brand new grand piano"}
    assert client.post("/api/v1/me/password", json=change, headers=ada).status_code == 204
    assert_problem(client.post(CONFIRM, json={"token": second}), 400, "invalid_token")


def test_other_mailed_tokens_do_not_change_the_address(
    client: TestClient, settings: Settings, ada: dict
):
    verification = issue_token(TEST_SECRET_KEY, TokenPurpose.VERIFY_EMAIL).token
    assert_problem(client.post(CONFIRM, json={"token": verification}), 400, "invalid_token")
    token = _request_change(client, settings, ada)
    # An email-change token does not verify an address either.
    assert_problem(
        client.post("/api/v1/auth/verify-email", json={"token": token}), 400, "invalid_token"
    )
    assert client.get(ME, headers=ada).json()["email"] == "ada@example.com"


def test_an_address_in_use_is_refused_when_asked_and_when_confirmed(
    client: TestClient, settings: Settings, ada: dict
):
    sign_up(client, settings, BOB)
    taken = client.post(EMAIL, json={"new_email": "BOB@example.com"}, headers=ada)
    assert_problem(taken, 409, "email_taken")
    assert_problem(
        client.post(EMAIL, json={"new_email": ADA["email"]}, headers=ada), 409, "email_taken"
    )
    token = _request_change(client, settings, ada)
    # Someone signs up with the new address before Ada opens the link.
    sign_up(client, settings, {**BOB, "email": NEW})
    assert_problem(client.post(CONFIRM, json={"token": token}, headers=ada), 409, "email_taken")
    assert client.get(ME, headers=ada).json()["email"] == "ada@example.com"


def test_a_malformed_address_is_refused(client: TestClient, ada: dict):
    assert_problem(
        client.post(EMAIL, json={"new_email": "no-at-sign"}, headers=ada), 422, "invalid_request"
    )
