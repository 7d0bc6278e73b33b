"""Re-authentication: sensitive changes need the password again within ten minutes."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from notefall.server.kit.settings import Settings

from .conftest import TestClient
from .test_app import assert_problem
from .test_two_factor import (
    ADA,
    DISABLE,
    ENABLE,
    RECOVERY,
    SETUP,
    Clock,
    activity_kinds,
    code_at,
    enable_two_factor,
    install_clock,
    password_grant,
    refreshed,
    sign_in,
    sign_up,
)

REAUTH = "/api/v1/auth/reauth"
EMAIL = "/api/v1/me/email"
SENSITIVE = [
    (SETUP, None),
    (ENABLE, {"code": "123456"}),
    (DISABLE, {"code": "123456"}),
    (RECOVERY, None),
    (EMAIL, {"new_email": "ada@example.org"}),
]


@pytest.fixture
def clock(client: TestClient) -> Clock:
    return install_clock(client)


@pytest.fixture
def ada(client: TestClient, settings: Settings, clock: Clock) -> dict[str, str]:
    sign_up(client, settings, ADA)
    return sign_in(client, ADA)


def _reauth(client: TestClient, headers: dict, password: str, otp: str | None = None):
    body = {"password": password} | ({"otp": otp} if otp is not None else {})
    return client.post(REAUTH, json=body, headers=headers)


def test_a_fresh_sign_in_counts_for_ten_minutes_then_every_sensitive_change_is_refused(
    client: TestClient, ada: dict, clock: Clock
):
    clock.advance(minutes=10)
    assert client.post(SETUP, headers=ada).status_code == 200
    clock.advance(seconds=1)
    for path, body in SENSITIVE:
        refused = assert_problem(
            client.post(path, json=body, headers=ada), 403, "reauthentication_required"
        )
        assert "POST /api/v1/auth/reauth" in refused["detail"]


def test_reauthenticating_unlocks_changes_for_ten_minutes(
    client: TestClient, settings: Settings, clock: Clock
):
    sign_up(client, settings, ADA)
    tokens = client.post(
        "/api/v1/auth/token",
        data={"grant_type": "password", "username": ADA["email"], "password": ADA["password"]},
    ).json()
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    clock.advance(minutes=11)
    assert_problem(client.post(SETUP, headers=headers), 403, "reauthentication_required")
    response = _reauth(client, headers, ADA["password"])
    assert response.status_code == 200
    until = datetime.fromisoformat(response.json()["reauthenticated_until"])
    assert until - clock.now == timedelta(minutes=10)
    assert client.post(SETUP, headers=headers).status_code == 200
    # The stamp belongs to the session, so it outlives the access token that made it.
    clock.advance(minutes=9, seconds=59)
    tokens, headers = refreshed(client, tokens)
    assert client.post(SETUP, headers=headers).status_code == 200
    clock.advance(seconds=2)
    assert_problem(client.post(SETUP, headers=headers), 403, "reauthentication_required")


def test_a_wrong_password_does_not_reauthenticate_and_is_recorded(
    client: TestClient, ada: dict, clock: Clock
):
    clock.advance(minutes=11)
    assert_problem(_reauth(client, ada, "not the password at all"), 400, "wrong_password")
    assert_problem(client.post(SETUP, headers=ada), 403, "reauthentication_required")
    assert "sign_in_failed" in activity_kinds(client, ada)


def test_reauthentication_belongs_to_one_session(client: TestClient, ada: dict, clock: Clock):
    clock.advance(minutes=11)
    other = sign_in(client, ADA)  # a fresh sign-in: this session is unlocked...
    assert client.post(SETUP, headers=other).status_code == 200
    # ...and the older session still is not.
    assert_problem(client.post(SETUP, headers=ada), 403, "reauthentication_required")
    assert _reauth(client, ada, ADA["password"]).status_code == 200
    assert client.post(SETUP, headers=ada).status_code == 200


def test_with_two_factor_on_reauthentication_needs_a_code(
    client: TestClient, ada: dict, clock: Clock
):
    secret, codes = enable_two_factor(client, ada, clock)
    clock.advance(minutes=1)
    tokens = password_grant(client, ADA, code_at(secret, clock.now)).json()
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    clock.advance(minutes=11)
    assert_problem(_reauth(client, headers, ADA["password"]), 401, "otp_required")
    assert_problem(_reauth(client, headers, ADA["password"], "000000"), 400, "invalid_otp")
    assert _reauth(client, headers, ADA["password"], code_at(secret, clock.now)).status_code == 200
    new_codes = client.post(RECOVERY, headers=headers)
    assert new_codes.status_code == 200
    clock.advance(minutes=11)
    tokens, headers = refreshed(client, tokens)
    assert_problem(client.post(RECOVERY, headers=headers), 403, "reauthentication_required")
    # A recovery code is accepted too (the authenticator may be what was lost), but only
    # one of the current set.
    assert_problem(_reauth(client, headers, ADA["password"], codes[0]), 400, "invalid_otp")
    recovery = new_codes.json()["recovery_codes"][0]
    assert _reauth(client, headers, ADA["password"], recovery).status_code == 200
    assert client.post(RECOVERY, headers=headers).status_code == 200
